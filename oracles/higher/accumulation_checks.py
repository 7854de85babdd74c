"""Checks of backward's accumulation into `.grad` (torch's side against oracles.higher.vjp): a plan of
backward calls and resets over shared leaves, judged after every step, and a leaf used several times in
one expression. Each returns the Outcome of all the gradients it judged (every step asserted on the way)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from oracles.core.case import GradCase, flat_index
from oracles.core.check import grad_outcome
from oracles.core.expected import ExpectedGrad
from oracles.core.expr import Apply, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.core.render import run_torch
from oracles.core.stepwise import OPEN, Prior, State, Trace, leaf_states, settled, state_of
from oracles.core.verdict import ElementVerdict, float64_values, judge
from oracles.higher.nested import CREATE_GRAPH_WARNING
from oracles.higher.vjp import LeafTerms, accumulate, sources, summed, vjp_terms, zeros_expected
from oracles.numerics.rounding import RoundingModel


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


def check_accumulation(cases: list[GradCase], plan: list, device: str = "cpu") -> Outcome:
    """Run `plan` over leaves shared by `cases`; after every step judge each `.grad` against the running
    sum of oracle gradients (an AssertionError at the first violation). Where that sum is too wide to judge,
    each backward is judged step by step along torch's own values (oracles.core.stepwise), from the `.grad`
    it accumulated onto."""
    base = cases[0]
    model = RoundingModel(base.format)
    leaves = base.make_leaves(device)
    for i, leaf in enumerate(leaves):
        assert leaf.grad is None, f"x{i}.grad is {leaf.grad} before any backward"
    oracle: dict[int, list[ExpectedGrad]] = {}
    held: list[ExpectedGrad | None] = [None] * len(leaves)  # the expected `.grad`; None: unset
    kept: dict[int, Trace] = {}
    states: list[list[State] | None] = [None] * len(leaves)  # each `.grad` element's state when last judged
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
            trace = kept.get(step.output) if step.graph == "kept" else None
            if trace is None:
                trace = Trace(leaves)
                run_torch(case.expr, leaves, record=trace.steps)
                if step.graph == "kept":
                    kept[step.output] = trace
            for traced in trace.steps:  # each backward's own gradients: a retained one would accumulate
                traced.output.grad = None
            before = [leaf.grad for leaf in leaves]
            priors = [None if g is None else Prior(float64_values(g), states[i] or [(OPEN, "")] * g.numel())
                      for i, g in enumerate(before)]
            _backward(trace.steps[-1].output if trace.steps else run_torch(case.expr, leaves), step)
            _check_grad_objects(leaves, before, case.used, step, context)
            held = [accumulate(model, h, e) for h, e in zip(held, oracle[step.output])]
            fresh = leaf_states(trace, None, base.format, priors=priors) or [None] * len(leaves)
            states = [fresh[i] if i in case.used else states[i] for i in range(len(leaves))]
        _check_layout(leaves, context)
        expected = [h if h is not None else ExpectedGrad(i, False, None) for i, h in enumerate(held)]
        step_verdicts = settled(judge(base, [leaf.grad for leaf in leaves], expected), states, base.shapes)
        states = _states_of(step_verdicts, leaves)
        assert_gradients_match(grad_outcome(base, step_verdicts, device, context))
        verdicts += step_verdicts
    return grad_outcome(base, verdicts, device, f"[{', '.join(map(str, plan))}] with {sources(cases)}")


def _states_of(verdicts: list[ElementVerdict], leaves: list[torch.Tensor]) -> list[list[State] | None]:
    """Each leaf's `.grad` elements as just judged (None where it is unset)."""
    states: list[list[State] | None] = [None] * len(leaves)
    for v in verdicts:
        if leaves[v.leaf].grad is not None:
            per_leaf = states[v.leaf] = states[v.leaf] or [(OPEN, "")] * leaves[v.leaf].numel()
            per_leaf[flat_index(tuple(leaves[v.leaf].shape), v.index)] = state_of(v)
    return states


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


def check_repeated_use(case: GradCase, leaf: int, device: str = "cpu") -> Outcome:
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
    return grad_outcome(case, verdicts, device, f"x{leaf} occurs {len(fresh)} times, split: {sources([split])}")
