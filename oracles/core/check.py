"""Running torch on an elementwise case and judging its `.grad`: `check_case` is the one call that does
both; `grad_outcome` wraps verdicts a test gathered itself (other calls than `y.sum().backward()`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch

from oracles.core.case import GradCase, numel
from oracles.core.fast_pass import fast_verdicts, points_reading
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Note, Outcome
from oracles.core.render import run_torch
from oracles.core.report import derivative_note, grad_reproducer
from oracles.core.stepwise import Trace, settle
from oracles.core.verdict import ElementVerdict, judge

# The fast pass costs ~0.3 ms per op whatever the points, the arb path ~15 us per op and point: measured on
# chains of 3 to 20 ops, the fast pass is the cheaper from 25 to 30 points
FAST_PASS_MIN_POINTS = 32


def torch_gradients(case: GradCase, device: str = "cpu", overrides: Mapping[str, Callable] | None = None,
                    upstream: Sequence[float] | None = None, trace: Trace | None = None):
    """Run the drawn torch program and backpropagate: from the sum of its output (grad of exact ones),
    or with `gradient=upstream` (row-major over the output shape). `trace` collects the leaves and the ops
    torch ran, each keeping its gradient."""
    leaves = case.make_leaves(device)
    if trace is not None:
        trace.leaves = leaves
    out = run_torch(case.expr, leaves, overrides, None if trace is None else trace.steps)
    if upstream is None:
        out.sum().backward()
    else:
        gradient = torch.tensor(upstream, dtype=torch.float64).reshape(out.shape).to(out)
        out.backward(gradient=gradient)
    return [leaf.grad for leaf in leaves]


def grad_outcome(case: GradCase, verdicts: list[ElementVerdict], device: str = "cpu", call: str = "",
                 reproducer: Note | None = None) -> Outcome:
    """The outcome of an elementwise case: a failure report carries its SymPy derivative, and `reproducer`
    where the test can write one for what it ran."""
    return Outcome(case, verdicts, device, call, partial(derivative_note, case), reproducer)


def judge_fast_then_exact(case: GradCase, grads: list, upstream: Sequence[float] | None = None) -> list[ElementVerdict]:
    """Every element judged: those the fast pass verifies (oracles.core.fast_pass, on cases of
    FAST_PASS_MIN_POINTS points or more) as it did, the rest by the exact path at the points that read them."""
    decided = fast_verdicts(case, grads, upstream) if numel(case.output_shape) >= FAST_PASS_MIN_POINTS else {}
    if not decided:
        return judge(case, grads, expected_gradients(case, upstream))
    undecided = {leaf: {flat for flat in range(numel(case.shapes[leaf])) if (leaf, flat) not in decided}
                 for leaf in case.used}
    return judge(case, grads, expected_gradients(case, upstream, points_reading(case, undecided)), decided)


def check_case(case: GradCase, device: str = "cpu", overrides: Mapping[str, Callable] | None = None,
               upstream: Sequence[float] | None = None) -> Outcome:
    """Every element of every input's `.grad` judged: by the whole-program oracle, and where that cannot
    decide, step by step along torch's own forward values (oracles.core.stepwise)."""
    trace = Trace()
    grads = torch_gradients(case, device, overrides, upstream, trace)
    verdicts = settle(judge_fast_then_exact(case, grads, upstream), trace, upstream, case.format)
    return grad_outcome(case, verdicts, device, reproducer=partial(grad_reproducer, case, device, upstream))
