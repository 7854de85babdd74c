"""Backward accumulates into `.grad` (issue 4, part 1), checked against the exact oracle.

`.grad` is None before any backward; after a random plan of backward calls (the same graph kept with
`retain_graph=True`, fresh graphs, different expressions over shared leaves, with or without
`create_graph=True`) and resets (`.grad = None`, `.grad.zero_()`), every leaf's `.grad` is the sum of the
oracle gradients since its last reset, within the rounding model (one rounded addition per accumulation);
the accumulation happens in the same tensor object unless `create_graph=True`; a broadcast leaf's `.grad`
has the leaf's shape; a leaf used several times in one expression gets the sum of the contributions of its
occurrences, each differentiated (exactly, and in the rounding model) as if it were a separate input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest
import torch
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from conftest import CREATE_GRAPH_WARNING, FIXTURE_HEALTH
from oracles.core.case import GradCase
from oracles.core.expr import Apply, Var, walk
from oracles.core.gradient_oracle import ExpectedGrad, expected_gradients
from oracles.core.outcomes import assert_none_wrong
from oracles.core.render import run_torch
from oracles.core.verdict import judge
from oracles.higher.vjp import (
    LeafTerms,
    accumulate,
    overwrite_instead_of_accumulate,
    sources,
    summed,
    vjp_terms,
    zeros_expected,
)
from oracles.numerics.rounding import RoundingModel
from strategies import grad_cases
from strategies.backward import shared_leaf_cases, smooth

MAX_STEPS = 6


# ------------------------------------------------------------------ plans of backward calls and resets
@dataclass(frozen=True)
class Backward:
    output: int  # which of the expressions
    graph: str  # "kept": that expression's graph, reused with retain_graph=True; "fresh": built, freed after
    create_graph: bool

    def __str__(self):
        return f"backward(y{self.output}, {self.graph}{', create_graph' if self.create_graph else ''})"


@dataclass(frozen=True)
class Reset:
    leaf: int
    how: str  # "none": `.grad = None`; "zero": `.grad.zero_()` (when it is set, as optimizers do)

    def __str__(self):
        return f"x{self.leaf}.grad = None" if self.how == "none" else f"x{self.leaf}.grad.zero_()"


def plans(n_outputs: int, n_leaves: int):
    backward = st.builds(Backward, st.integers(0, n_outputs - 1), st.sampled_from(["kept", "fresh"]),
                         st.booleans())
    reset = st.builds(Reset, st.integers(0, n_leaves - 1), st.sampled_from(["none", "zero"]))
    return st.lists(st.one_of(backward, backward, reset), min_size=1, max_size=MAX_STEPS)


# ------------------------------------------------------------------ the property
def _backward(output: torch.Tensor, step: Backward) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CREATE_GRAPH_WARNING, category=UserWarning)
        output.sum().backward(retain_graph=step.graph == "kept", create_graph=step.create_graph)


def _check_grad_objects(leaves, before, used, step: Backward, context: str) -> None:
    """Accumulation happens in place (same tensor) unless create_graph=True; an untouched `.grad` stays."""
    for i, (leaf, old) in enumerate(zip(leaves, before)):
        if i not in used:
            assert leaf.grad is old, f"x{i} is not in y{step.output} but its .grad object changed, {context}"
        elif old is not None:
            same = leaf.grad is old
            assert same != step.create_graph, (
                f"x{i}.grad {'is' if same else 'is not'} the tensor it was before, but accumulation should be "
                f"{'out of place' if step.create_graph else 'in place'}, {context}")


def _check_layout(leaves, context: str) -> None:
    """`.grad` has its leaf's shape (a broadcast leaf's included), dtype and device."""
    for i, leaf in enumerate(leaves):
        if leaf.grad is not None:
            assert (leaf.grad.shape, leaf.grad.dtype, leaf.grad.device) == (leaf.shape, leaf.dtype, leaf.device), (
                f"x{i}.grad is {tuple(leaf.grad.shape)} {leaf.grad.dtype} on {leaf.grad.device}, "
                f"x{i} is {tuple(leaf.shape)} {leaf.dtype} on {leaf.device}, {context}")


def check_accumulation(cases: list[GradCase], plan: list, device: str = "cpu"):
    """Run `plan` over leaves shared by `cases`; after every step judge each `.grad` against the running
    sum of oracle gradients. Returns the verdicts; raises AssertionError on any violation."""
    base = cases[0]
    model = RoundingModel(base.format)
    leaves = base.make_leaves(device)
    for i, leaf in enumerate(leaves):
        assert leaf.grad is None, f"x{i}.grad is {leaf.grad} before any backward"
    oracle: dict[int, list[ExpectedGrad]] = {}
    held: list[ExpectedGrad | None] = [None] * len(leaves)  # the expected `.grad`; None: unset
    kept: dict[int, torch.Tensor] = {}
    verdicts = []
    for number, step in enumerate(plan):
        context = f"after step {number} of [{', '.join(map(str, plan))}] with {sources(cases)}"
        if isinstance(step, Reset):
            grad = leaves[step.leaf].grad
            if step.how == "none":
                leaves[step.leaf].grad = None
                held[step.leaf] = None
            elif grad is not None:
                with torch.no_grad():
                    grad.zero_()
                held[step.leaf] = zeros_expected(step.leaf, base.shapes[step.leaf])
        else:
            case = cases[step.output]
            if step.output not in oracle:
                oracle[step.output] = expected_gradients(case)
            output = kept.get(step.output) if step.graph == "kept" else None
            if output is None:
                output = run_torch(case.expr, leaves)
                if step.graph == "kept":
                    kept[step.output] = output
            before = [leaf.grad for leaf in leaves]
            _backward(output, step)
            _check_grad_objects(leaves, before, case.used, step, context)
            held = [accumulate(model, h, e) for h, e in zip(held, oracle[step.output])]
        _check_layout(leaves, context)
        expected = [h if h is not None else ExpectedGrad(i, False, None) for i, h in enumerate(held)]
        step_verdicts = judge(base, [leaf.grad for leaf in leaves], expected)
        assert_none_wrong(base, step_verdicts, context)
        verdicts += step_verdicts
    return verdicts


def split_occurrences(case: GradCase, leaf: int) -> tuple[GradCase, list[int]]:
    """`case` with every occurrence of x_leaf replaced by its own fresh input (same shape and values),
    numbered in tree order; returns the new case and the fresh inputs' indices."""
    fresh: list[int] = []
    n = len(case.shapes)

    def relabel(expr):
        if isinstance(expr, Var) and expr.index == leaf:
            fresh.append(n + len(fresh))
            return Var(fresh[-1])
        if isinstance(expr, Apply):
            return Apply(expr.op, tuple(relabel(a) for a in expr.args), expr.spelling)
        return expr

    expr = relabel(case.expr)
    copies = len(fresh)
    split = GradCase(expr, case.shapes + (case.shapes[leaf],) * copies, case.values + (case.values[leaf],) * copies,
                     case.dtype)
    return split, fresh


def check_repeated_use(case: GradCase, leaf: int, device: str = "cpu"):
    """x_leaf's `.grad` is the sum of the gradients of its occurrences, each taken as a separate input
    (the oracle differentiates the split expression once per occurrence; torch sums them in one backward)."""
    split, fresh = split_occurrences(case, leaf)
    terms = vjp_terms(split)
    merged = LeafTerms(leaf, case.expr, [type(e)() for e in terms[fresh[0]].elements])
    for k in fresh:
        merged = merged.merge(terms[k])
    expected = summed(case, {leaf: merged})[leaf]
    leaves = case.make_leaves(device)
    run_torch(case.expr, leaves).sum().backward()
    verdicts = judge(case, [leaves[leaf].grad], [expected])
    assert_none_wrong(case, verdicts, f"x{leaf} occurs {len(fresh)} times in {sources([case])}, "
                                      f"split: {sources([split])}")
    return verdicts


# ------------------------------------------------------------------ tests
@FIXTURE_HEALTH
@given(data=st.data())
def test_grad_is_the_sum_of_backward_calls(dtype, device, verdict_log, data):
    """The core of part 1: any interleaving of backward calls and resets over shared leaves."""
    cases = data.draw(shared_leaf_cases(dtype), label="cases")
    plan = data.draw(plans(len(cases), len(cases[0].shapes)), label="plan")
    if any(len(s) and s != cases[0].output_shape for s in cases[0].shapes):
        event("a leaf is broadcast")
    verdict_log.add(check_accumulation(cases, plan, device))


def _most_used_leaf(case: GradCase) -> int:
    counts = {i: sum(1 for node in walk(case.expr) if node == Var(i)) for i in case.used}
    return max(counts, key=lambda i: (counts[i], -i))


@FIXTURE_HEALTH
@given(data=st.data())
def test_repeated_leaf_gets_the_sum_of_its_uses(dtypes, device, verdict_log, data):
    """Few inputs, so leaves recur: the most used leaf is checked against its split expression."""
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    case = data.draw(grad_cases(dtype, smooth(3), max_inputs=2), label="case")
    leaf = _most_used_leaf(case)
    event(f"the checked leaf occurs {sum(1 for node in walk(case.expr) if node == Var(leaf))} times")
    verdict_log.add(check_repeated_use(case, leaf, device))


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=10, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)


def test_overwrite_instead_of_accumulate_is_caught(device):
    """With `.grad` overwritten (in place) by each backward, the accumulation property fails; the same
    examples pass without the fault."""

    @FAULT_RUN
    @given(data=st.data())
    def prop(data):
        cases = data.draw(shared_leaf_cases("float32"), label="cases")
        check_accumulation(cases, data.draw(plans(len(cases), len(cases[0].shapes)), label="plan"), device)

    prop()  # passes without the fault
    with overwrite_instead_of_accumulate(), pytest.raises(CAUGHT):
        prop()
