"""Selective and functional forms of backward, against the exact oracle.

- `backward(inputs=[...])` accumulates into exactly the listed tensors (once, even if listed twice; a
  listed intermediate gets the derivative with respect to it); every other `.grad` stays as it was.
- `torch.autograd.grad` returns the oracle's VJP and touches no `.grad`; an unused input raises (naming
  its position), is None with `allow_unused=True`, or zeros with `materialize_grads=True`.
- A non-leaf's `.grad` is None, with torch's warning, unless `retain_grad()`: then it is the oracle
  derivative with respect to that intermediate (the expression with the intermediate replaced by a fresh
  input holding torch's value of it).
- `detach()` and `no_grad()` cut the graph: the oracle treats that subexpression as a constant input
  (and if no input is left, the output does not require grad and backward raises).
- Tensor hooks see the gradient with respect to their tensor and may replace it (on a leaf: what is
  accumulated; on the output: the seed); post-accumulate-grad hooks see the accumulated `.grad` once per
  backward and may change it in place.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH
from oracles.core.case import GradCase, numel
from oracles.core.expr import Const, Var, variables
from oracles.core.outcomes import assert_gradients_match
from oracles.higher.selective_checks import (
    check_autograd_grad,
    check_backward_inputs,
    check_cut,
    check_intermediate_hook,
    check_leaf_hook,
    check_non_leaf_grad,
    check_output_hook,
    check_post_accumulate_hooks,
)
from oracles.higher.vjp import overwrite_instead_of_accumulate, replace, subexpression, tensor_paths
from strategies import grad_cases
from strategies.backward import shared_leaf_cases, smooth, upstream_values


def _case(data, dtypes, expressions=None, max_inputs: int = 4) -> GradCase:
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    return data.draw(grad_cases(dtype, expressions or smooth(), max_inputs=max_inputs), label="case")


def with_unused_input(case: GradCase) -> GradCase:
    """`case` plus an input the expression never uses (a copy of x0's shape and values)."""
    return GradCase(case.expr, case.shapes + (case.shapes[0],), case.values + (case.values[0],), case.dtype)


# ------------------------------------------------------------------ backward(inputs=[...])
@FIXTURE_HEALTH
@given(data=st.data())
def test_backward_inputs_accumulates_into_exactly_those(dtypes, device, verdict_log, data):
    case = with_unused_input(_case(data, dtypes, max_inputs=3))
    listed = data.draw(st.lists(st.integers(0, len(case.shapes) - 1), min_size=1, max_size=4), label="inputs")
    first_full = data.draw(st.booleans(), label="full backward first")
    intermediate = data.draw(st.none() | st.sampled_from(_operation_paths(case)), label="also list the intermediate at")
    assert_gradients_match(check_backward_inputs(case, listed, first_full, intermediate, device), verdict_log)


# ------------------------------------------------------------------ torch.autograd.grad
@FIXTURE_HEALTH
@given(data=st.data())
def test_autograd_grad_returns_the_vjp_and_touches_no_grad(dtypes, device, verdict_log, data):
    case = with_unused_input(_case(data, dtypes, max_inputs=3))
    wanted = data.draw(st.lists(st.integers(0, len(case.shapes) - 1), min_size=1, max_size=4), label="inputs")
    upstream = data.draw(st.none() | upstream_values(numel(case.output_shape)), label="grad_outputs")
    mode = data.draw(st.sampled_from(["default", "allow_unused", "materialize"]), label="unused inputs")
    preset = data.draw(st.booleans(), label="a backward first, so .grad is set")
    assert_gradients_match(check_autograd_grad(case, upstream, wanted, mode, preset, device), verdict_log)


# ------------------------------------------------------------------ non-leaf .grad and retain_grad()
def _operation_paths(case: GradCase) -> list[tuple]:
    """Paths to the nodes torch computes by an operation (non-leaf tensors), the output included."""
    return [p for p in tensor_paths(case.expr) if not isinstance(subexpression(case.expr, p), Var)]


@FIXTURE_HEALTH
@given(data=st.data())
def test_non_leaf_grad_is_none_unless_retained(dtypes, device, verdict_log, data):
    case = _case(data, dtypes, smooth(3))
    path = data.draw(st.sampled_from(_operation_paths(case)), label="intermediate")
    retain = data.draw(st.booleans(), label="retain_grad")
    assert_gradients_match(check_non_leaf_grad(case, path, retain, device), verdict_log)


# ------------------------------------------------------------------ detach() and no_grad()
@FIXTURE_HEALTH
@given(data=st.data())
def test_detach_and_no_grad_cut_the_graph(dtypes, device, verdict_log, data):
    case = _case(data, dtypes, smooth(3))
    # detach() cuts at an input too; no_grad() only stops recording operations (an input stays itself),
    # so it needs an operation below the root
    below_root = [p for p in _operation_paths(case) if p]
    how = data.draw(st.sampled_from(["detach", "no_grad"] if below_root else ["detach"]), label="cut by")
    candidates = [p for p in tensor_paths(case.expr) if p] if how == "detach" else below_root
    # Half the time cut where some input occurrence stays outside the cut (when there is such a place).
    keeps_input = [p for p in candidates if variables(replace(case.expr, p, Const(0.0)))]
    if keeps_input and data.draw(st.booleans(), label="leave an input outside the cut"):
        candidates = keeps_input
    path = data.draw(st.sampled_from(candidates), label="cut at")
    event("an input is left" if path in keeps_input else "every input is cut off")
    assert_gradients_match(check_cut(case, path, how, device), verdict_log)


# ------------------------------------------------------------------ tensor hooks
HOOK_FACTORS = (1.0, 2.0, -1.0, 0.0)  # 1.0: the hook only looks (returns None)


@FIXTURE_HEALTH
@given(data=st.data())
def test_tensor_hooks_see_and_replace_gradients(dtypes, device, verdict_log, data):
    case = _case(data, dtypes)
    where = data.draw(st.sampled_from(["leaf", "output", "intermediate"]), label="hook on")
    if where == "leaf":
        leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
        outcome = check_leaf_hook(case, leaf, data.draw(st.sampled_from(HOOK_FACTORS), label="factor"), device)
    elif where == "output":
        upstream = data.draw(upstream_values(numel(case.output_shape)), label="gradient values")
        factor = data.draw(st.sampled_from(HOOK_FACTORS), label="factor")
        outcome = check_output_hook(case, upstream, factor, device)
    else:
        path = data.draw(st.sampled_from(_operation_paths(case)), label="intermediate")
        outcome = check_intermediate_hook(case, path, device)
    assert_gradients_match(outcome, verdict_log)


# ------------------------------------------------------------------ post-accumulate-grad hooks
@FIXTURE_HEALTH
@given(data=st.data())
def test_post_accumulate_grad_hooks(dtypes, device, verdict_log, data):
    cases = data.draw(shared_leaf_cases(data.draw(st.sampled_from(dtypes), label="dtype")), label="cases")
    calls = data.draw(st.lists(st.integers(0, len(cases) - 1), min_size=1, max_size=3), label="backward calls")
    zero = data.draw(st.booleans(), label="zero .grad in the hook")
    assert_gradients_match(check_post_accumulate_hooks(cases, calls, zero, device), verdict_log)


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=10, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)


def test_overwrite_fault_is_caught_by_selective_backward_and_hooks(device):
    """Accumulation replaced by overwrite also breaks backward(inputs=...) after a full backward, and what
    post-accumulate hooks see over several backward calls."""

    @FAULT_RUN
    @given(data=st.data())
    def selective(data):
        case = with_unused_input(data.draw(grad_cases("float64", smooth(), max_inputs=3), label="case"))
        assert_gradients_match(check_backward_inputs(case, list(case.used), True, None, device))

    @FAULT_RUN
    @given(data=st.data())
    def post_hooks(data):
        cases = data.draw(shared_leaf_cases("float64"), label="cases")
        assert_gradients_match(check_post_accumulate_hooks(cases, [0, 0], False, device))

    for prop in (selective, post_hooks):
        prop()  # passes without the fault
        with overwrite_instead_of_accumulate(), pytest.raises(CAUGHT):
            prop()
