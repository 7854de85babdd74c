"""Running torch's second-order derivatives of a tensor program and judging them: torch's side of
oracles.tensor.second_order (and of oracles.tensor.forward for double backward's upstream part).

Each check returns (a description of the call, the element verdicts): the caller tallies and asserts them."""

from __future__ import annotations

import torch
import torch.func
from hypothesis import event

from oracles.core.case import numel
from oracles.core.unsupported import missing_kernel
from oracles.core.verdict import ElementVerdict, Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.tensor.forward import expected_jvp, in_output_dtype, jacobian_rows
from oracles.tensor.program import TensorCase, run_program
from oracles.tensor.second_order import (
    QuadraticForm,
    case_form,
    expected_double_backward,
    expected_hessian,
    expected_second_directional,
)

NOT_MODELLED = "second derivatives varying: not judged"


def _tensor(values, shape, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).to(like)


def _values(tensor: torch.Tensor | None, n: int) -> list[float]:
    """A gradient's row-major values; None (not in the graph: its derivative is 0) as zeros, and so a zero tensor
    without storage (torch.func returns one for a derivative it knows is 0)."""
    if tensor is None or tensor._is_zerotensor():
        return [0.0] * n
    return tensor.detach().to("cpu", torch.float64).reshape(-1).tolist()


def _shape_verdict(what: str, tensor: torch.Tensor, shape, dtype: torch.dtype) -> ElementVerdict | None:
    if tuple(tensor.shape) == tuple(shape) and tensor.dtype == dtype:
        return None
    return ElementVerdict(-1, (), Verdict.WRONG, reason=(
        f"{what} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}, expected {tuple(shape)} and {dtype}"))


def double_backward(case: TensorCase, upstream, directions, factor: float, device: str = "cpu",
                    overrides=None) -> tuple[str, list[ElementVerdict]]:
    """autograd.grad(g, (inputs, u), w) for g = autograd.grad(op(inputs), inputs, u, create_graph=True): the
    upstream part is J·w, judged as forward mode is (oracles.tensor.forward, with its foreign-code `factor`), the
    inputs' part Σ_o u_o H_o w (exact where H is constant, else not judged: an event). `overrides` replace ops
    (oracles.tensor.program; faults)."""
    used = list(case.used)
    leaves = case.make_leaves(device)
    y = run_program(case.program, leaves, overrides)
    u = _tensor(upstream, y.shape, y).requires_grad_()
    grads = torch.autograd.grad(y, [leaves[i] for i in used], u, create_graph=True)
    connected = [k for k, g in enumerate(grads) if g.requires_grad]
    outs = torch.autograd.grad([grads[k] for k in connected], [leaves[i] for i in used] + [u],
                               [_tensor(directions[used[k]], case.shapes[used[k]], grads[k]) for k in connected],
                               allow_unused=True) if connected else [None] * (len(used) + 1)
    # a gradient that is not in the graph (an argument read for its shape only) takes no direction
    w = {i: directions[i] if k in connected else (0.0,) * numel(case.shapes[i]) for k, i in enumerate(used)}
    out_dtype = str(y.dtype).removeprefix("torch.")
    verdicts = []
    # the upstream's part: J·w
    bad = outs[-1] is not None and _shape_verdict("the upstream's gradient", outs[-1], y.shape, y.dtype)
    if bad:
        verdicts.append(bad)
    else:
        rows_case = in_output_dtype(case, out_dtype)
        expected = expected_jvp(rows_case, jacobian_rows(rows_case), w, factor)
        fmt = format_named(out_dtype)
        verdicts += [judge_element(-1, (o,), v, e, fmt)
                     for o, (v, e) in enumerate(zip(_values(outs[-1], len(expected)), expected))]
    form = case_form(case)
    if form is None:
        event(NOT_MODELLED)
    else:
        expected = expected_double_backward(form, upstream, w, case.format)
        for k, i in enumerate(used):
            grad = outs[k]
            bad = grad is not None and _shape_verdict(f"x{i}'s second derivative", grad, case.shapes[i],
                                                      leaves[i].dtype)
            if bad:
                verdicts.append(bad)
                continue
            verdicts += [judge_element(i, (a,), v, e, case.format)
                         for a, (v, e) in enumerate(zip(_values(grad, len(expected[i])), expected[i]))]
    return f"double backward: u {upstream}, w {w} (index -1: u's gradient)", verdicts


def _function_of_inputs(case: TensorCase, device: str, overrides):
    leaves = [leaf.detach() for leaf in case.make_leaves(device)]
    return (lambda *xs: run_program(case.program, list(xs), overrides)), leaves


def hessian(case: TensorCase, form: QuadraticForm, upstream, device: str = "cpu",
            overrides=None) -> tuple[str, list[ElementVerdict]]:
    """torch.func.hessian of Σ_o u_o y_o: block (i, j) against Σ_o u_o H_o over x_i's and x_j's elements."""
    f, primals = _function_of_inputs(case, device, overrides)
    weights = _tensor(upstream, case.output_shape, primals[0])
    n = len(primals)
    blocks = torch.func.hessian(lambda *xs: (f(*xs) * weights).sum(), argnums=tuple(range(n)))(*primals)
    expected = expected_hessian(form, upstream, case.format)
    offsets = [0]
    for shape in case.shapes:
        offsets.append(offsets[-1] + numel(shape))
    verdicts = []
    for i in range(n):
        for j in range(n):
            block, shape = blocks[i][j], case.shapes[i] + case.shapes[j]
            bad = _shape_verdict(f"the Hessian block ({i}, {j})", block, shape, primals[i].dtype)
            if bad:
                verdicts.append(bad)
                continue
            values = _values(block, numel(shape))
            for a in range(numel(case.shapes[i])):
                for b in range(numel(case.shapes[j])):
                    verdicts.append(judge_element(i, (j, a, b), values[a * numel(case.shapes[j]) + b],
                                                  expected[offsets[i] + a][offsets[j] + b], case.format))
    return f"torch.func.hessian of (y * u).sum(), u {upstream} (index: (j, element of x_i, element of x_j))", verdicts


def forward_twice(case: TensorCase, form: QuadraticForm, first, second, device: str = "cpu",
                  overrides=None) -> tuple[str, list[ElementVerdict]]:
    """torch.func.jvp of torch.func.jvp: per output element, vᵀ H_o w."""
    f, primals = _function_of_inputs(case, device, overrides)
    v = tuple(_tensor(first[i], case.shapes[i], p) for i, p in enumerate(primals))
    w = tuple(_tensor(second[i], case.shapes[i], p) for i, p in enumerate(primals))
    primal_out, out = torch.func.jvp(lambda *xs: torch.func.jvp(f, xs, v), tuple(primals), w)
    call = f"torch.func.jvp of torch.func.jvp, v {first}, w {second}"
    out = out[1]
    # the tangents have the output's dtype (softmax(x, dtype=torch.float64) of a float32 x: computed in float64)
    bad = _shape_verdict("the second directional derivative", out, case.output_shape, primal_out[0].dtype)
    if bad:
        return call, [bad]
    fmt = format_named(str(out.dtype).removeprefix("torch."))
    expected = expected_second_directional(form, first, second, fmt)
    values = _values(out, len(expected))
    return call, [judge_element(-1, (o,), x, e, fmt) for o, (x, e) in enumerate(zip(values, expected))]


# vmap refuses, by design, an as_strided that reads storage outside its tensor (a partial view's)
VMAP_REFUSES = "This is not supported inside of vmap"


def unless_refused(step):
    """The step's (call, verdicts), or None where the installed torch lacks a derivative it needs, or vmap refuses
    the op by design (an event either way)."""
    try:
        return step()
    except (RuntimeError, NotImplementedError) as error:
        if VMAP_REFUSES in str(error):
            event("torch.func's vmap refuses the op here")
            return None
        unsupported = missing_kernel(error)
        if unsupported is None:
            raise
        event(str(unsupported))
        return None
