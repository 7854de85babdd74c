"""Checks of backward's `gradient=` argument (the vector-Jacobian product), torch's side against
oracles.higher.vjp: each runs one backward and returns its Outcome."""

from __future__ import annotations

import torch

from oracles.core.case import GradCase, numel
from oracles.core.check import grad_outcome
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome
from oracles.core.render import run_torch
from oracles.core.stepwise import Trace, settle
from oracles.core.verdict import judge
from oracles.higher.vjp import expected_vjp, sources


def gradient_tensor(values, shape, dtype, device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).to(device=device, dtype=dtype)


def check_vjp(case: GradCase, upstream, gradient_dtype: torch.dtype | None, device: str = "cpu") -> Outcome:
    """`y.backward(gradient=V)`: every `.grad` is the oracle VJP of V, in the leaf's dtype. `gradient_dtype`
    None: V has the output's dtype."""
    trace = Trace(case.make_leaves(device))
    out = run_torch(case.expr, trace.leaves, record=trace.steps)
    gradient = gradient_tensor(upstream, out.shape, gradient_dtype or out.dtype, device)
    out.backward(gradient=gradient)
    verdicts = judge(case, [leaf.grad for leaf in trace.leaves], expected_gradients(case, upstream))
    verdicts = settle(verdicts, trace, upstream, case.format)
    return grad_outcome(case, verdicts, device, f"y.backward(gradient={gradient})")


def check_scalar_output_scaled(case: GradCase, scale: float, device: str = "cpu") -> Outcome:
    """`y.sum().backward(gradient=torch.tensor(c))`: c times the plain gradient, i.e. the VJP of c·ones."""
    trace = Trace(case.make_leaves(device))
    total = run_torch(case.expr, trace.leaves, record=trace.steps).sum()
    total.backward(gradient=gradient_tensor([scale], (), total.dtype, device))
    upstream = (scale,) * numel(case.output_shape)
    verdicts = settle(judge(case, [leaf.grad for leaf in trace.leaves], expected_gradients(case, upstream)),
                      trace, upstream, case.format)
    return grad_outcome(case, verdicts, device, f"y.sum().backward(gradient=torch.tensor({scale}))")


def check_several_outputs(cases: list[GradCase], upstreams, device: str = "cpu") -> Outcome:
    """`torch.autograd.backward([y0, y1, ...], [v0, v1, ...])`: each leaf gets the sum of the VJPs."""
    leaves = cases[0].make_leaves(device)
    outputs = [run_torch(case.expr, leaves) for case in cases]
    gradients = [gradient_tensor(v, out.shape, out.dtype, device) for v, out in zip(upstreams, outputs)]
    torch.autograd.backward(outputs, gradients)
    expected = expected_vjp(list(zip(cases, upstreams)))
    verdicts = judge(cases[0], [leaf.grad for leaf in leaves], expected)
    call = f"torch.autograd.backward([y...], {gradients}) with {sources(cases)}"
    return grad_outcome(cases[0], verdicts, device, call)
