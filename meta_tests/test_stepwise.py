"""Self-tests of judging torch's backward step by step along its own forward values (oracles.core.stepwise):
it settles what the whole-program enclosure could not, catches a wrong step that enclosure hides, leaves a
step it cannot decide undecided, and follows a `.grad` that accumulates over backward calls."""

from __future__ import annotations

import math

import torch

from oracles.core import stepwise
from oracles.core.case import GradCase
from oracles.core.check import check_case, torch_gradients
from oracles.core.expr import Apply, Const, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.render import run_torch, traced
from oracles.core.stepwise import OPEN, REGISTERED, VERIFIED, WRONG, Prior, Trace, leaf_states
from oracles.core.verdict import INTERMEDIATE_OVERFLOW, STEPWISE, Verdict, judge
from oracles.faults.planted import planted_backward_error

# sin(300.3 x) at x = 1 in bfloat16: torch rounds the product to 300, and the model must allow it an error of
# 2^-8 relative (1.2 in absolute terms), over which cos swings through its whole range
SIN_OF_PRODUCT = GradCase(Apply("sin", (Apply("mul", (Var(0), Const(300.3))),)), ((),), ((1.0,),), "bfloat16")


def _whole_program_verdicts(case: GradCase):
    return judge(case, torch_gradients(case), expected_gradients(case))


def test_settles_what_the_whole_program_enclosure_cannot():
    [before] = _whole_program_verdicts(SIN_OF_PRODUCT)
    assert (before.verdict, before.reason) == (Verdict.UNVERIFIED, "bound wider than the value")
    [after] = check_case(SIN_OF_PRODUCT).verdicts
    assert (after.verdict, after.reason) == (Verdict.VERIFIED, STEPWISE)


def test_a_wrong_step_is_caught_where_the_whole_program_enclosure_hides_it():
    """sin's backward 3% off (8 ulps of bfloat16): inside the whole-program enclosure, outside sin's step."""
    faulty = {"sin": planted_backward_error("sin", 2.0**-5)}
    [hidden] = judge(SIN_OF_PRODUCT, torch_gradients(SIN_OF_PRODUCT, overrides=faulty),
                     expected_gradients(SIN_OF_PRODUCT))
    assert hidden.verdict is Verdict.UNVERIFIED
    [caught] = check_case(SIN_OF_PRODUCT, overrides=faulty).verdicts
    assert caught.verdict is Verdict.WRONG
    assert caught.reason.startswith("the backward of torch.sin(x0) gives"), caught.reason


def test_a_wrong_step_upstream_makes_the_leaf_wrong():
    """The fault in the outer op: the step into the leaf is right for the gradient it got, which was wrong."""
    case = GradCase(Apply("exp", (Apply("sin", (Apply("mul", (Var(0), Const(300.0))),)),)), ((),), ((1.0,),),
                    "bfloat16")
    [caught] = check_case(case, overrides={"exp": planted_backward_error("exp", 2.0**-5)}).verdicts
    assert caught.verdict is Verdict.WRONG
    assert "torch.exp(x0)" in caught.reason, caught.reason


def _step_state(case: GradCase):
    trace = Trace()
    torch_gradients(case, trace=trace)
    [[state]] = leaf_states(trace, None, case.format)
    return state


def _tanh_of_product(x: float, dtype: str) -> GradCase:
    return GradCase(Apply("tanh", (Apply("mul", (Var(0), Const(4.0))),)), ((),), ((x,),), dtype)


def test_a_step_that_cancels_stays_undecided(monkeypatch):
    """sigmoid's backward (1 - y) y from the rounded y (float16, 4 x = 8): 0.00049 where the derivative is 0.00034;
    with no registered regions installed, nothing accounts for it."""
    monkeypatch.setattr(stepwise, "_registered_region", stepwise._no_registered_regions)
    case = GradCase(Apply("sigmoid", (Apply("mul", (Var(0), Const(4.0))),)), ((),), ((2.0,),), "float16")
    state, why = _step_state(case)
    assert state == OPEN and why.startswith("torch.sigmoid(x0)"), why
    assert check_case(case).verdicts[0].verdict is Verdict.UNVERIFIED


def test_a_step_in_a_registered_region_counts_as_that_finding():
    """The same in bfloat16 at 4 x = 8, where tanh rounds to 1: tanh-sigmoid-saturation's region (the plugin
    installs the registry's regions)."""
    assert _step_state(_tanh_of_product(2.0, "bfloat16")) == (REGISTERED, "tanh-sigmoid-saturation")
    [v] = check_case(_tanh_of_product(2.0, "bfloat16")).verdicts
    assert (v.verdict, v.reason) == (Verdict.REGISTERED, "registered finding tanh-sigmoid-saturation")


def test_the_step_into_a_leaf_includes_the_gradient_it_accumulated_onto():
    """A second backward adds onto `.grad`: the leaf is judged against what it held plus the step's part; a
    `.grad` that forgot what it held is wrong."""
    case = SIN_OF_PRODUCT
    leaves = case.make_leaves()
    run_torch(case.expr, leaves).sum().backward()
    held = leaves[0].grad.item()
    trace = Trace(leaves)
    run_torch(case.expr, leaves, record=trace.steps).sum().backward()
    [[(state, _)]] = leaf_states(trace, None, case.format, priors=[Prior([held], [(VERIFIED, "")])])
    assert state == VERIFIED
    [[(state, why)]] = leaf_states(trace, None, case.format, priors=[Prior([0.0], [(VERIFIED, "")])])
    assert state == WRONG, why
    [[(state, _)]] = leaf_states(trace, None, case.format, priors=[Prior([held], [(OPEN, "undecided")])])
    assert state == OPEN


def test_steps_that_return_what_they_read_are_not_read_apart():
    """An op that hands back a tensor it read leaves no step to judge apart: the trace is refused, not misread."""
    x = torch.tensor(1.0, dtype=torch.bfloat16, requires_grad=True)
    y = x * 2
    steps = [traced(Apply("mul", (Var(0), Const(2.0))), (x, 2.0), y), traced(Apply("neg", (Var(0),)), (y,), y)]
    trace = Trace([x], steps)
    y.backward()
    assert leaf_states(trace, None, SIN_OF_PRODUCT.format) is None


def test_a_tie_is_judged_by_the_index_torch_returned(monkeypatch):
    """topk's smallest of (1, 1, 2): the whole-program oracle cannot know which tied element torch picks; the step
    reads the index the call returned and judges the gradient by it, and a backward that routes the gradient
    anywhere else (planted here as indices that name the other tied element) is wrong."""
    from dataclasses import replace

    from oracles.table.selection_ops import SelectionParams
    from oracles.table.tensor_ops import TENSOR_OPS
    from oracles.tensor.check import check_tensor_case
    from oracles.tensor.check import torch_gradients as tensor_gradients
    from oracles.tensor.oracle import expected_tensor_gradients
    from oracles.tensor.program import Input, Tensor, TensorCase

    case = TensorCase(Tensor("topk", (Input(0),), SelectionParams(-1, k=1, largest=False), 0), ((3,),),
                      ((1.0, 1.0, 2.0),), "bfloat16", (5.0,))
    whole = judge(case, tensor_gradients(case), expected_tensor_gradients(case))
    assert {v.reason for v in whole} == {"singular"}
    verdicts = check_tensor_case(case).verdicts
    assert [(v.verdict, v.torch_value) for v in verdicts] == [(Verdict.VERIFIED, 5.0), (Verdict.VERIFIED, 0.0),
                                                              (Verdict.VERIFIED, 0.0)]
    op = TENSOR_OPS["topk"]
    other = replace(op.spellings[0], indices=lambda a, p: torch.tensor([1]))
    monkeypatch.setitem(TENSOR_OPS, "topk", replace(op, spellings=(other,) + op.spellings[1:]))
    verdicts = check_tensor_case(case).verdicts
    assert [v.verdict for v in verdicts] == [Verdict.WRONG, Verdict.WRONG, Verdict.VERIFIED]


def _threshold_of_a_polygamma_square() -> GradCase:
    """threshold(polygamma(4, tanh(x) * 0.375 - 0.5) ** 2 + 1.5, 0.5, -1) at x = 0 in float16: the whole-program
    model is undecided at threshold's comparison; torch's polygamma step forms -6.95 * polygamma(5, -0.5), beyond
    float16's range (-inf, rightly rounded), which tanh's factor 0.375 would have brought back to -40052."""
    inner = Apply("add", (Apply("mul", (Apply("tanh", (Var(0),)), Const(0.375))), Const(-0.5)))
    square = Apply("pow_scalar", (Apply("polygamma_n_4", (inner,)), Const(2.0)))
    body = Apply("add", (Apply("add", (square, Const(1.0))), Const(0.5)))
    return GradCase(Apply("threshold", (body, Const(0.5), Const(-1.0))), ((),), ((0.0,),), "float16")


def test_a_nonfinite_gradient_is_followed_to_the_step_where_it_arose():
    case = _threshold_of_a_polygamma_square()
    [whole] = _whole_program_verdicts(case)
    assert whole.verdict is Verdict.WRONG and whole.torch_value == -math.inf
    [settled_verdict] = check_case(case).verdicts
    assert settled_verdict.reason == INTERMEDIATE_OVERFLOW


def test_a_nonfinite_gradient_from_a_wrong_step_stays_wrong():
    """The same program with the square's backward planted 3% off: the step that forms the inf rounds right, but
    from a wrong gradient, so the leaf's -inf is not the registered overflow."""
    faulty = {"pow_scalar": planted_backward_error("pow_scalar", 2.0**-5)}
    [caught] = check_case(_threshold_of_a_polygamma_square(), overrides=faulty).verdicts
    assert caught.verdict is Verdict.WRONG


def test_a_foreseen_overflow_under_an_undecided_gradient_is_the_finding():
    """exp(tanh(maximum(p + x0^2 + 1, p)) * 3), p = polygamma(4, tanh(x1 - x0) 0.375 + 0.5), at x0 = 1, x1 = 0.5 in
    float16: -6456 + 2 rounds back to -6456, so maximum meets a tie of torch's making (its split undecided), and
    tanh's factor 0 reaches polygamma's backward, which forms 0 * polygamma(5, 0.33) = 0 * inf: NaN where the
    exact value is -0. The NaN is polygamma's foreseen overflow whatever the undecided 0 upstream of it."""
    p = Apply("polygamma_n_4", (Apply("add", (Apply("mul", (Apply("tanh", (Apply("sub", (Var(1), Var(0))),)),
                                                             Const(0.375))), Const(0.5))),))
    body = Apply("maximum", (Apply("add", (p, Apply("add", (Apply("pow_scalar", (Var(0), Const(2.0))), Const(1.0))))),
                             p))
    case = GradCase(Apply("exp", (Apply("mul", (Apply("tanh", (body,)), Const(3.0))),)), ((), (2, 1)),
                    ((1.0,), (0.5, 1.0)), "float16")
    [whole, *_] = _whole_program_verdicts(case)
    assert whole.verdict is Verdict.WRONG and math.isnan(whole.torch_value)
    [leaf, *_] = check_case(case).verdicts
    assert leaf.reason == INTERMEDIATE_OVERFLOW


def test_a_tensor_step_at_a_finding_of_its_first_input_counts_as_that_finding():
    """polar((2 x0).abs(), x1) at x0 = 5e-324 in float64: polar's abs gradient is inf at the subnormal abs 1e-323
    (registered: polar-abs-zero-gradient), met inside a program, where the root's inputs are not polar's."""
    from oracles.table.tensor_ops import CallParams
    from oracles.tensor.check import check_tensor_case
    from oracles.tensor.program import Input, Map, Tensor, TensorCase

    doubled = Map(Apply("mul", (Const(2.0), Var(0))), (Input(0),))
    case = TensorCase(Tensor("polar", (doubled, Input(1)), CallParams(()), 0), ((1,), (1,)), ((5e-324,), (1.0,)),
                      "float64", None)
    first = next(v for v in check_tensor_case(case).verdicts if v.leaf == 0)
    assert first.reason == "registered finding polar-abs-zero-gradient", first
