"""Running and judging nested `torch.autograd.grad` calls: torch's side of
oracles.higher.higher_order.

`nested_grads` runs g = grad(y, xs, U, create_graph=True), then grad(g, xs, V, ...) and so on, as a user
computing Hessian-vector products or third derivatives writes it. A derivative torch returns without a
grad_fn is a constant: torch cannot (and must not) be asked to differentiate it again (it raises "element
0 of tensors does not require grad"), and the oracle must agree that every derivative of it is exactly 0
(`structurally_zero`). A `None` (allow_unused) is torch saying "does not depend on this input": judged as
zeros, like `materialize_grads=True` returns.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import torch

from oracles.core.case import GradCase, all_indices
from oracles.core.check import grad_outcome
from oracles.core.expected import ExpectedGrad
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome
from oracles.core.render import run_torch, torch_source
from oracles.core.verdict import ElementVerdict, Verdict, float64_values, judge, judge_element
from oracles.higher.higher_order import (
    KNOWN_DEVIATION,
    PointJets,
    expected_nested,
    expected_terms,
    point_jets,
    structurally_zero,
)
from oracles.higher.vjp import accumulate
from oracles.numerics.rounding import RoundingModel

# torch warns on every backward(create_graph=True) (a .grad <-> graph reference cycle); the checks that
# exercise exactly that call silence it (a regex: the message's parentheses escaped).
CREATE_GRAPH_WARNING = re.escape("Using backward() with create_graph=True will create a reference cycle")


def weights_tensor(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(like.shape).to(like)


@dataclass
class NestedRun:
    """torch's results of the last grad call, per input (zeros where torch said "unused"), and for each
    level the inputs whose derivative came back without grad_fn (left out of the next call)."""

    results: list[torch.Tensor | None]
    constant: list[list[int]] = field(default_factory=list)  # per level: inputs with a grad_fn-less result
    taken: list[list[int]] = field(default_factory=list)  # per level: inputs whose result went on


def nested_grads(case: GradCase, upstream: Sequence[float] | None, levels: Sequence[Sequence[Sequence[float] | None]],
                 device: str = "cpu", materialize: bool = False, overrides=None, program=None) -> NestedRun:
    """grad(y, xs, U, create_graph=True), then per level grad(previous, xs, W) over the previous results that
    have a grad_fn and a weight. Results of the last call, per input. `program(leaves)` computes y (default:
    the case's expression, with `overrides`)."""
    leaves = case.make_leaves(device)
    used = list(case.used)
    inputs = [leaves[i] for i in used]
    y = program(leaves) if program is not None else run_torch(case.expr, leaves, overrides)
    u = torch.ones_like(y) if upstream is None else weights_tensor(upstream, y)
    current = dict(zip(used, torch.autograd.grad(y, inputs, u, create_graph=bool(levels), allow_unused=True)))
    run = NestedRun([])
    for depth, level in enumerate(levels):
        last = depth == len(levels) - 1
        outputs, weights, taken, constant = [], [], [], []
        for i in used:
            if level[i] is None:
                continue
            if current[i] is None or current[i].grad_fn is None:  # torch: a constant (0 if None)
                constant.append(i)
                continue
            outputs.append(current[i])
            weights.append(weights_tensor(level[i], current[i]))
            taken.append(i)
        run.constant.append(constant)
        run.taken.append(taken)
        if not outputs:
            current = {i: None for i in used}
            continue
        grads = torch.autograd.grad(outputs, inputs, weights, create_graph=not last, allow_unused=True,
                                    materialize_grads=materialize)
        current = dict(zip(used, grads))
    run.results = [current.get(i) if i in current else None for i in range(len(case.shapes))]
    return run


def effective_levels(case: GradCase, levels, run: NestedRun):
    """The levels as torch ran them: weights of the results left out (no grad_fn) set to None."""
    out = []
    for level, taken in zip(levels, run.taken):
        out.append([level[i] if i in taken else None for i in range(len(case.shapes))])
    return out


def judge_nested(case: GradCase, run: NestedRun, expected: list[ExpectedGrad],
                 jets: dict[tuple[int, ...], PointJets]) -> list[ElementVerdict]:
    """Verdicts for every element of every used input's result, and one verdict per grad_fn-less result
    (verified when the oracle agrees every derivative of it is exactly 0, wrong otherwise)."""
    verdicts = []
    for depth, constant in enumerate(run.constant):
        for i in constant:
            offending = structurally_zero(case, [*run.taken[:depth], [i]], jets)
            if offending:
                index, value = offending[0]
                verdicts.append(ElementVerdict(i, index, Verdict.WRONG, reason=(
                    f"torch's derivative for x{i} at level {depth + 1} has no grad_fn (a constant), but a "
                    f"derivative of it is {value.str(10)} at point {list(index)}")))
            else:
                verdicts.append(ElementVerdict(i, (), Verdict.VERIFIED, reason="constant derivative, as exact"))
    for exp in expected:
        if not exp.used:
            continue
        result = run.results[exp.leaf]
        shape = case.shapes[exp.leaf]
        if result is None:
            values = [0.0] * len(exp.elements)
        else:
            if tuple(result.shape) != shape or result.dtype != case.format.torch_dtype:
                verdicts.append(ElementVerdict(exp.leaf, (), Verdict.WRONG, reason=(
                    f"result for x{exp.leaf} has shape {tuple(result.shape)} and dtype {result.dtype}")))
                continue
            values = float64_values(result)
        for flat, (index, element) in enumerate(zip(all_indices(shape), exp.elements)):
            verdicts.append(judged(exp.leaf, index, values[flat], element, case))
    return verdicts


def judged(leaf: int, index, value: float, element, case: GradCase) -> ElementVerdict:
    """`verdict.judge_element`; a known torch deviation (a registered finding) is registered under its reason,
    not "singular"."""
    verdict = judge_element(leaf, index, value, element, case.format)
    if verdict.verdict is Verdict.UNVERIFIED and element.reason.startswith(KNOWN_DEVIATION):
        return dataclasses.replace(verdict, verdict=Verdict.REGISTERED, reason=element.reason)
    return verdict


def check_nested(case: GradCase, upstream, levels, device: str = "cpu", materialize: bool = False,
                 overrides=None) -> tuple[Outcome, NestedRun]:
    """Nested grads against the oracle: the outcome (its reproducer runs the same grad calls) and torch's run."""
    run = nested_grads(case, upstream, levels, device, materialize, overrides)
    jets = point_jets(case, len(levels) + 1, routes=True)
    expected = expected_nested(case, effective_levels(case, levels, run), upstream, jets)
    outcome = grad_outcome(case, judge_nested(case, run, expected, jets), device,
                           f"order-{len(levels) + 1} derivative (nested torch.autograd.grad)",
                           partial(nested_reproducer, case, upstream, levels, device))
    return outcome, run


def nested_reproducer(case: GradCase, upstream, levels, device: str = "cpu") -> str:
    """A copy-paste script running the same nested grad calls."""
    lines = ["import torch", ""]
    lines += [f"x{leaf} = {case.input_literal(leaf, device)}" for leaf in range(len(case.shapes))]
    used = list(case.used)
    xs = "[" + ", ".join(f"x{i}" for i in used) + "]"
    lines.append(f"y = {torch_source(case.expr)}")
    u = "torch.ones_like(y)" if upstream is None else f"torch.tensor({list(upstream)}).reshape(y.shape).to(y)"
    lines.append(f"g = torch.autograd.grad(y, {xs}, {u}, create_graph=True, allow_unused=True)")
    for depth, level in enumerate(levels):
        pairs = [(k, level[i]) for k, i in enumerate(used) if level[i] is not None]
        outs = "[" + ", ".join(f"g[{k}]" for k, _ in pairs) + "]"
        ws = "[" + ", ".join(f"torch.tensor({list(w)}).reshape(g[{k}].shape).to(g[{k}])" for k, w in pairs) + "]"
        last = depth == len(levels) - 1
        lines.append(f"g = torch.autograd.grad({outs}, {xs}, {ws}, create_graph={not last}, allow_unused=True)")
    lines.append("print(g)")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ Hessian entries, mixed partials
def hessian_entries(case: GradCase, device: str = "cpu") -> Outcome:
    """0-d inputs: H_ij = grad(grad(y, x_i, create_graph=True)[0], x_j) for every ordered pair (i, j),
    each judged on its own (torch computes H_ij and H_ji along different paths)."""
    leaves = case.make_leaves(device)
    y = run_torch(case.expr, leaves)
    used = list(case.used)
    jets = point_jets(case, 2)
    verdicts = []
    for i in used:
        (g,) = torch.autograd.grad(y, leaves[i], create_graph=True)
        if g.grad_fn is None:
            offending = structurally_zero(case, [[i]], jets)
            verdicts.append(ElementVerdict(i, (), Verdict.WRONG if offending else Verdict.VERIFIED,
                                           reason=f"∂y/∂x{i} has no grad_fn" + (
                                               f" but ∂²y/∂x{i}∂x at {offending[0][0]} is "
                                               f"{offending[0][1].str(10)}" if offending else "")))
            continue
        for j in used:
            (h,) = torch.autograd.grad(g, leaves[j], retain_graph=True, allow_unused=True)
            value = 0.0 if h is None else h.item()
            expected = expected_terms(case, jets, [((), (i, j), 1.0)], f"∂²/∂x{i}∂x{j} of {torch_source(case.expr)}")
            verdict = judge_element(j, (), value, expected, case.format)
            verdicts.append(verdict if verdict.verdict is not Verdict.WRONG else ElementVerdict(
                j, (), Verdict.WRONG, value, verdict.exact, verdict.bound, f"∂²y/∂x{i}∂x{j}: {verdict.reason}"))
    return grad_outcome(case, verdicts, device, "Hessian entries ∂²y/∂x_i∂x_j")


# ------------------------------------------------------------------ accumulation of double backward
def double_backward_into_grad(case: GradCase, upstream, weights, device: str = "cpu") -> Outcome:
    """y.backward(U, create_graph=True); then torch.autograd.backward([x_i.grad ...], [V_i ...]): each leaf's
    `.grad` becomes g + h (first derivative plus the Hessian-vector product, one rounded addition)."""
    leaves = case.make_leaves(device)
    y = run_torch(case.expr, leaves)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CREATE_GRAPH_WARNING)
        y.backward(weights_tensor(upstream, y), create_graph=True)
    outputs, grads, taken = [], [], []
    for i in case.used:
        grad = leaves[i].grad
        if weights[i] is not None and grad is not None and grad.grad_fn is not None:
            outputs.append(grad)
            grads.append(weights_tensor(weights[i], grad))
            taken.append(i)
    constant = [i for i in case.used if weights[i] is not None and i not in taken]
    if outputs:
        torch.autograd.backward(outputs, grads)
    levels = [[weights[i] if i in taken else None for i in range(len(case.shapes))]]
    jets = point_jets(case, 2, routes=True)
    first = expected_gradients(case, upstream)
    second = expected_nested(case, levels, upstream, jets) if taken else \
        [ExpectedGrad(i, False, case.expr) for i in range(len(case.shapes))]
    model = RoundingModel(case.format)
    expected = [accumulate(model, f, s) for f, s in zip(first, second)]
    verdicts = judge(case, [leaf.grad for leaf in leaves], expected)
    for i in constant:  # left out of the second backward: the oracle must agree they are constants
        offending = structurally_zero(case, [[i]], jets)
        verdicts.append(ElementVerdict(i, (), Verdict.WRONG if offending else Verdict.VERIFIED,
                                       reason=f"x{i}.grad has no grad_fn" + (" but its derivative is not 0"
                                                                              if offending else "")))
    return grad_outcome(case, verdicts, device, "x.grad after backward(create_graph=True) and backward of x.grad")
