"""Backward accumulates into `.grad`, checked against the exact oracle.

`.grad` is None before any backward; after a random plan of backward calls (the same graph kept with
`retain_graph=True`, fresh graphs, different expressions over shared leaves, with or without
`create_graph=True`) and resets (`.grad = None`, `.grad.zero_()`), every leaf's `.grad` is the sum of the
oracle gradients since its last reset, within the rounding model (one rounded addition per accumulation);
the accumulation happens in the same tensor object unless `create_graph=True`; a broadcast leaf's `.grad`
has the leaf's shape; a leaf used several times in one expression gets the sum of the contributions of its
occurrences, each differentiated (exactly, and in the rounding model) as if it were a separate input.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH
from oracles.core.case import GradCase
from oracles.core.expr import Var, walk
from oracles.core.outcomes import assert_gradients_match
from oracles.higher.accumulation_checks import Backward, Reset, check_accumulation, check_repeated_use
from oracles.higher.vjp import overwrite_instead_of_accumulate
from strategies import grad_cases
from strategies.backward import shared_leaf_cases, smooth

MAX_STEPS = 6


# ------------------------------------------------------------------ plans of backward calls and resets
def plans(n_outputs: int, n_leaves: int):
    backward = st.builds(Backward, st.integers(0, n_outputs - 1), st.sampled_from(["kept", "fresh"]),
                         st.booleans())
    reset = st.builds(Reset, st.integers(0, n_leaves - 1), st.sampled_from(["none", "zero"]))
    return st.lists(st.one_of(backward, backward, reset), min_size=1, max_size=MAX_STEPS)


# ------------------------------------------------------------------ tests
@FIXTURE_HEALTH
@given(data=st.data())
def test_grad_is_the_sum_of_backward_calls(dtype, device, verdict_log, data):
    """The core of part 1: any interleaving of backward calls and resets over shared leaves."""
    cases = data.draw(shared_leaf_cases(dtype), label="cases")
    plan = data.draw(plans(len(cases), len(cases[0].shapes)), label="plan")
    if any(len(s) and s != cases[0].output_shape for s in cases[0].shapes):
        event("a leaf is broadcast")
    assert_gradients_match(check_accumulation(cases, plan, device), verdict_log)


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
    assert_gradients_match(check_repeated_use(case, leaf, device), verdict_log)


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
        plan = data.draw(plans(len(cases), len(cases[0].shapes)), label="plan")
        assert_gradients_match(check_accumulation(cases, plan, device))

    prop()  # passes without the fault
    with overwrite_instead_of_accumulate(), pytest.raises(CAUGHT):
        prop()
