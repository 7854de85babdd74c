"""Judging torch's backward one step at a time, along torch's own forward values.

The whole-program enclosure (oracles.core.gradient_oracle) starts from the exact inputs, so every rounding
of torch's forward widens it: a deep low-precision chain compounds them until the enclosure is wider than
the gradient ("bound wider than the value"), and a kink that torch's rounded intermediate may have reached
on either side is undecidable ("singular"). Yet torch's backward is right when each of its steps is: every
op's backward, from the values torch itself computed forward and the gradient torch itself handed it,
returns what the op's formula gives in the dtype. Those values are read back (each op's output and, kept
with `retain_grad`, its `.grad`), and each step becomes a one-op case, judged by the same oracle as any
case: SymPy's exact vector-Jacobian product of the op at those values, the rounding model's enclosure of
torch's formula around it, and the same verdict rules. A tensor's `.grad` is what every op that read it
sent it, summed, so the step checks that sum.

An element of an input's `.grad` is settled when the step that sums into it and every step upstream of it
are verified (decided by tight enclosures, from values that were themselves verified): then torch's
gradient is the right one for the values torch computed, which is what its autograd promises; no
computation in the dtype does better at an ill-conditioned point. A step torch got wrong makes the elements
downstream of it wrong, naming the step. Anything else leaves the element as the whole-program oracle left
it. Only elements that oracle could not decide are settled this way: it judges every other element itself,
against the exact derivative at the exact inputs.

A NaN or inf of torch's is followed to the step where it arose: the step whose own gradient and inputs are
finite and which sends a non-finite value. Judged there like any step, it is wrong, or, where the step's model
foresees that torch's formula overflows at those values, the registered finding the judge names
(backward-intermediate-overflow); every step downstream of it is not judged (its upstream is not finite), and
the non-finite elements it sends inherit that state. So a NaN at a leaf that the whole-program oracle, undecided
earlier in the program, called wrong, is counted as the overflow the steps show it to be.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from flint import arb

from oracles.core.case import GradCase, all_indices, broadcast_source, flat_index
from oracles.core.expr import Apply, Const, Var
from oracles.core.gradient_oracle import Contributions, Term, expected_element, point_contributions
from oracles.core.render import TracedStep, torch_source
from oracles.core.verdict import (
    INTERMEDIATE_OVERFLOW,
    STEPWISE,
    ElementVerdict,
    Verdict,
    float64_values,
    judge_element,
)
from oracles.core.verdict import REGISTERED as REGISTERED_REASON
from oracles.numerics.dtypes import FloatFormat
from oracles.numerics.rounding import RoundingModel

# the whole-program oracle's reasons that torch's own forward values can settle
SETTLEABLE = frozenset({"bound wider than the value", "singular", "overflow"})

# a gradient element's state: settled; undecided only where a registered finding holds (its id says which);
# undecided; downstream of a wrong step
VERIFIED, REGISTERED, OPEN, WRONG = 0, 1, 2, 3
State = tuple[int, str]  # one of those, and why (a step's reason, or the finding's id)


def _no_registered_regions(op: str, dtype: str, point: tuple[float, ...]) -> str | None:
    return None


# The registered findings (findings.toml) are read above this layer: the runner that loads them installs the
# lookup (`use_registered_regions`), op, dtype and argument tuple -> the id of the finding whose region holds it.
_registered_region: Callable[[str, str, tuple[float, ...]], str | None] = _no_registered_regions


def registered_finding(op: str, dtype: str, point: tuple[float, ...]) -> str | None:
    """The id of the registered finding that holds `op` at `point` in `dtype` (`use_registered_regions`), if any."""
    return _registered_region(op, dtype, point)


def use_registered_regions(lookup: Callable[[str, str, tuple[float, ...]], str | None]) -> None:
    """Where a step torch took lies in a registered finding's region (tanh's backward where tanh rounds to ±1),
    the elements it leaves undecided are that finding's, counted under its id."""
    global _registered_region
    _registered_region = lookup


@dataclass
class Trace:
    """What torch ran for one backward: the leaves and every op, children before parents (the last is the
    output's), each keeping its output's `.grad`."""

    leaves: list[torch.Tensor] = field(default_factory=list)
    steps: list[TracedStep] = field(default_factory=list)


class StepGradient(NamedTuple):
    """What one step's backward sends one tensor it read."""

    tensor: torch.Tensor
    contributions: list[Contributions]  # per element of the tensor, row-major
    sources: list[list[int]] | None  # per element, the output elements it is computed from; None: all of them
    label: str  # the step, for a report
    # element -> the registered finding whose region the step is in there; asked only where the step is undecided
    registered: Callable[[int], str | None] | None = None


Backward = Callable[[TracedStep, str], list[StepGradient]]


def elementwise_step(step: TracedStep, dtype: str) -> list[StepGradient]:
    """An op of the op table as a one-op case: its tensor arguments become the inputs x0, x1, ... at the values
    torch computed, its Python scalars stay constants, and torch's gradient of its output is the upstream."""
    args, tensors = [], []
    for arg, value in zip(step.node.args, step.inputs):
        if isinstance(value, torch.Tensor):
            args.append(Var(len(tensors)))
            tensors.append(value)
        else:
            args.append(arg)  # a Const: torch received the Python scalar
    expr = Apply(step.node.op, tuple(args), step.node.spelling)
    case = GradCase(expr, tuple(tuple(t.shape) for t in tensors),
                    tuple(tuple(float64_values(t)) for t in tensors), dtype)
    contributions = point_contributions(case, float64_values(step.output.grad))
    out_indices = list(all_indices(case.output_shape))
    gradients = []
    for k, per_element in contributions.items():
        shape = case.shapes[k]
        sources = [[] for _ in per_element]
        for out_flat, out_index in enumerate(out_indices):
            sources[flat_index(shape, broadcast_source(shape, out_index))].append(out_flat)

        def registered(flat: int, read=sources) -> str | None:
            points = (_point(expr, case, out_indices[o]) for o in read[flat])
            return next(filter(None, (_registered_region(expr.op, dtype, p) for p in points)), None)

        gradients.append(StepGradient(tensors[k], per_element, sources, torch_source(expr), registered))
    return gradients


def _point(expr: Apply, case: GradCase, out_index: tuple[int, ...]) -> tuple[float, ...]:
    """The op's arguments at one element of its output, in argument order (a Const as its value)."""
    return tuple(arg.value if isinstance(arg, Const) else case.value_at(arg.index, out_index) for arg in expr.args)


class _Pending(NamedTuple):
    gradient: StepGradient
    upstream: list[State]  # the state of each element of the step's output's gradient


def _merged(parts: Sequence[Contributions]) -> Contributions:
    merged = Contributions()
    for part in parts:
        merged.terms += part.terms
        merged.unmodelled += part.unmodelled
        merged.failure = merged.failure or part.failure
    return merged


class Prior(NamedTuple):
    """A leaf's `.grad` before a backward that accumulates into it: torch's values and their states."""

    values: list[float]
    states: list[State]


def _states(tensor: torch.Tensor, pending: list[_Pending], fmt: FloatFormat, prior: Prior | None = None) -> list[State]:
    """Each element of `tensor.grad`: judged against the sum of what the steps that read `tensor` sent it (and
    the `prior` gradient it accumulated onto), then no better than the gradients those steps started from."""
    if tensor.grad is None or not pending:
        return [(OPEN, "")] * tensor.numel()
    observed = float64_values(tensor.grad)
    model = RoundingModel(fmt)
    label = " and ".join(dict.fromkeys(p.gradient.label for p in pending))
    states = []
    for flat, value in enumerate(observed):
        upstream = max((_upstream_state(p, flat) for p in pending), default=(VERIFIED, ""))
        contributions = _merged([p.gradient.contributions[flat] for p in pending])
        if prior is not None:  # torch adds this backward's gradient to the one held
            held = arb(prior.values[flat])
            contributions.terms.append(Term(held, [held]))
            upstream = max(upstream, prior.states[flat])
        expected = expected_element(model, contributions.exact, contributions.rounded, contributions.failure,
                                    f"the gradient {label} sends element {flat}", lambda: label)
        verdict = judge_element(0, (), value, expected, fmt)
        if verdict.verdict is Verdict.WRONG:
            own = (WRONG, f"the backward of {label} gives {value!r} at element {flat} of its input, where the "
                          f"exact value from torch's own values is {verdict.exact!r} ({verdict.reason})")
        elif verdict.verdict is Verdict.VERIFIED:
            own = (VERIFIED, "")
        elif verdict.verdict is Verdict.REGISTERED:  # a NaN or inf the step's model foresaw
            own = (REGISTERED, verdict.reason.removeprefix(f"{REGISTERED_REASON} "))
        else:
            own = (OPEN, f"{label}: {verdict.reason}")
        if own[0] != VERIFIED:
            finding = next(filter(None, (p.gradient.registered(flat) for p in pending if p.gradient.registered)), None)
            own = (REGISTERED, finding) if finding else own
        if own[0] == REGISTERED and upstream[0] == OPEN and not math.isfinite(value):
            # the NaN or inf arose here, from a finite gradient whose own value is undecided: non-finite whatever
            # that value, it is the finding's (a wrong gradient upstream still makes it wrong)
            states.append(own)
        else:
            states.append(max(own, upstream))
    return states


def _upstream_state(pending: _Pending, flat: int) -> State:
    sources = pending.gradient.sources
    read = pending.upstream if sources is None else [pending.upstream[o] for o in sources[flat]]
    return max(read, default=(VERIFIED, ""))


def leaf_states(trace: Trace, upstream: Sequence[float] | None, fmt: FloatFormat, backward: Backward = elementwise_step,
                priors: Sequence[Prior | None] | None = None) -> list[list[State] | None] | None:
    """Per leaf, per element of its `.grad` (row-major): its state; None where the leaf is not in the trace, and
    None altogether where torch's steps cannot be read apart (no op ran, or an op returned a tensor it read).
    `priors`: per leaf, the `.grad` the backward accumulated onto (None: it started unset)."""
    steps = trace.steps
    if not steps or any(s.output is x for s in steps for x in s.inputs):
        return None
    root = steps[-1].output
    pending: dict[int, list[_Pending]] = {}
    # tensors read by a step whose upstream gradient holds a NaN or inf of torch's: per element, the state it
    # inherits from the non-finite upstream elements it is computed from (None: from none of them)
    inherited: dict[int, list[State | None]] = {}

    def states_of(tensor: torch.Tensor, prior: Prior | None = None) -> list[State]:
        judged = _states(tensor, pending.pop(id(tensor), []), fmt, prior)
        held = inherited.get(id(tensor))
        return judged if held is None else [j if h is None else h for j, h in zip(judged, held)]

    for step in reversed(steps):
        if step.output.grad is None:
            continue
        if step.output is root:
            seed = [1.0] * root.numel() if upstream is None else [fmt.round(v) for v in upstream]
            given = float64_values(root.grad)
            states = [(VERIFIED, "") if g == s else (WRONG, f"backward started from {g!r} instead of {s!r}")
                      for g, s in zip(given, seed)]
        else:
            states = states_of(step.output)
        grad = step.output.grad
        bad = {o for o, g in enumerate(float64_values(grad)) if not math.isfinite(g)}
        if bad:  # judged without them (their elements are overridden by what they inherit)
            step = TracedStep(step.node, step.inputs, _with_grad(step.output, torch.where(
                torch.isfinite(grad), grad, torch.zeros_like(grad))))
        for gradient in backward(step, fmt.name):
            if bad:
                _inherit(gradient, states, bad, inherited)
            pending.setdefault(id(gradient.tensor), []).append(_Pending(gradient, states))
    return [states_of(leaf, priors[i] if priors else None)
            if id(leaf) in pending or id(leaf) in inherited else None
            for i, leaf in enumerate(trace.leaves)]


def _with_grad(tensor: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    stand_in = tensor.detach().clone()
    stand_in.grad = grad
    return stand_in


def _inherit(gradient: StepGradient, upstream: list[State], bad: set[int],
             inherited: dict[int, list[State | None]]) -> None:
    """What a step sends a tensor from upstream elements that hold torch's NaN or inf (`bad`) is not judged: each
    element computed from such an element inherits, where its own gradient is NaN or inf, the worst of their
    states (a foreseen overflow stays that finding; anything undecided stays undecided), and is undecided where
    it is finite. An upstream inf that was verified is the right rounding of an intermediate beyond the dtype's
    range: what it makes non-finite further down, where the gradient itself fits, is backward-intermediate-overflow."""
    values = float64_values(gradient.tensor.grad)
    held = inherited.setdefault(id(gradient.tensor), [None] * len(values))
    for i, value in enumerate(values):
        read = range(len(upstream)) if gradient.sources is None else gradient.sources[i]
        poisoned = [upstream[o] for o in read if o in bad]
        if not poisoned:
            continue
        worst = max(poisoned)
        if worst[0] == VERIFIED:
            worst = (REGISTERED, INTERMEDIATE_OVERFLOW.removeprefix(f"{REGISTERED_REASON} "))
        mine = worst if not math.isfinite(value) else (OPEN, "")
        held[i] = mine if held[i] is None else max(held[i], mine)


def settle(verdicts: list[ElementVerdict], trace: Trace, upstream: Sequence[float] | None, fmt: FloatFormat,
           backward: Backward = elementwise_step) -> list[ElementVerdict]:
    """`verdicts` with each element the whole-program oracle left unverified (for a reason in SETTLEABLE)
    settled from torch's steps where they decide it: verified, or wrong naming the step; and each NaN or inf it
    called wrong counted as the registered finding of the step where it arose, where that step foresaw it."""
    if not any(_settleable(v) or _nonfinite_wrong(v) for v in verdicts):
        return verdicts
    states = leaf_states(trace, upstream, fmt, backward)
    return verdicts if states is None else settled(verdicts, states, [tuple(x.shape) for x in trace.leaves])


def settled(verdicts: list[ElementVerdict], states: Sequence[list[State] | None],
            shapes: Sequence[tuple[int, ...]]) -> list[ElementVerdict]:
    """`verdicts` with the unverified elements (for a reason in SETTLEABLE) whose state decides them settled."""
    result = []
    for v in verdicts:
        if _nonfinite_wrong(v):
            per_leaf = states[v.leaf]
            state, why = per_leaf[flat_index(shapes[v.leaf], v.index)] if per_leaf is not None else (OPEN, "")
            result.append(replace(v, verdict=Verdict.REGISTERED, reason=f"{REGISTERED_REASON} {why}")
                          if state == REGISTERED else v)
            continue
        per_leaf = states[v.leaf] if _settleable(v) else None
        state, why = per_leaf[flat_index(shapes[v.leaf], v.index)] if per_leaf is not None else (OPEN, "")
        if state == VERIFIED:
            result.append(replace(v, verdict=Verdict.VERIFIED, reason=STEPWISE))
        elif state == REGISTERED:
            result.append(replace(v, verdict=Verdict.REGISTERED, reason=f"{REGISTERED_REASON} {why}"))
        elif state == WRONG:
            result.append(replace(v, verdict=Verdict.WRONG, reason=why))
        else:
            result.append(v)
    return result


def _settleable(v: ElementVerdict) -> bool:
    return v.verdict is Verdict.UNVERIFIED and v.reason in SETTLEABLE


def _nonfinite_wrong(v: ElementVerdict) -> bool:
    """A NaN or inf of torch's that the whole-program oracle judged wrong: the steps may show where it arose."""
    return v.verdict is Verdict.WRONG and v.torch_value is not None and not math.isfinite(v.torch_value)


def state_of(verdict: ElementVerdict) -> State:
    """An element's state once judged, for a later step that starts from it."""
    if verdict.verdict is Verdict.VERIFIED:
        return VERIFIED, ""
    if verdict.verdict is Verdict.REGISTERED:
        return REGISTERED, verdict.reason.removeprefix(f"{REGISTERED_REASON} ")
    return (WRONG, verdict.reason) if verdict.verdict is Verdict.WRONG else (OPEN, verdict.reason)
