"""The rounding model at the extremes where the thorough run found it out of step with torch: the exact squares
and root of a norm, the order in which torch rounds the 2-norm's gradient, an overflow torch multiplies
by 0, an intermediate overflow of nested backward at a zero input, lgamma of a wide ball. Each case is a draw of
the thorough run; each test fails on the model as it was before."""

from __future__ import annotations

import torch
from flint import arb

from oracles.core.case import GradCase
from oracles.core.expr import Apply, Const, Var
from oracles.core.verdict import INTERMEDIATE_OVERFLOW, Verdict
from oracles.higher.nested import check_nested
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.special_functions import _lgamma
from oracles.table.tensor_ops import CallParams
from oracles.tensor.check import check_tensor_case
from oracles.tensor.program import Input, Tensor, TensorCase


def _verdicts(case) -> dict:
    return {(v.leaf, v.index): v for v in check_tensor_case(case, "cpu").verdicts}


def test_an_exact_result_the_format_holds_stays_exact():
    F = RoundingModel(format_named("float16"))
    assert F.correctly_rounded(arb(15)) == arb(15) and F.correctly_rounded(arb(15)).is_exact()
    assert F.correctly_rounded(arb(1) / 4).is_exact()
    assert not F.correctly_rounded(arb(1) / 3).is_exact()  # not a float16: rounded
    assert not F.correctly_rounded(arb(2049)).is_exact()  # needs 12 bits
    assert F.correctly_rounded(arb(2.0**-24)).is_exact()  # float16's smallest subnormal
    bfloat16 = RoundingModel(format_named("bfloat16"))  # may flush subnormals: never exact there
    assert bfloat16.format.flushes_subnormals and not bfloat16.correctly_rounded(arb(2.0**-133)).is_exact()


def test_renorm_at_a_norm_equal_to_maxnorm_is_decided():
    """A slice of norm exactly maxnorm (1) beside one whose self * grad overflows float16 (-21840 * 3): the tie is
    no longer undecidable, so torch's -inf is judged as the registered intermediate overflow it is, not wrong."""
    case = TensorCase(Tensor("renorm", (Input(0),), CallParams((("dim", 0), ("maxnorm", 1.0))), 0), ((3, 1),),
                      ((-21840.0, 1.0, 1.0),), "float16", (3.0, 1.0, 1.0))
    verdicts = _verdicts(case)
    assert verdicts[(0, (0, 0))].reason == INTERMEDIATE_OVERFLOW
    assert verdicts[(0, (1, 0))].verdict is Verdict.VERIFIED


def test_the_norms_gradient_rounds_the_quotient_first():
    """torch computes the 2-norm's gradient as (x / norm) * grad: at x = -2^-130 in float32 the quotient is a
    subnormal rounded before the upstream 4 scales its error (torch -699052 units of 2^-149, x * (4 / 3) would give
    -699051)."""
    x = torch.tensor([[3.0, -2.0**-130]], requires_grad=True)
    torch.linalg.matrix_norm(x).backward(torch.tensor(4.0))
    assert x.grad[0, 1].item() == -699052 * 2.0**-149
    case = TensorCase(Tensor("frobenius_norm", (Input(0),), CallParams((("keepdim", False),)), 0), ((1, 2),),
                      ((3.0, -2.0**-130),), "float32", (4.0,))
    assert _verdicts(case)[(0, (0, 1))].verdict is Verdict.VERIFIED


def test_an_overflow_that_torch_multiplies_by_zero_is_foreseen():
    """grid_sample's grid gradient at a coordinate border padding clips: torch forms the sum of corner terms
    (-32768 * 2 overflows float16) and multiplies it by 0, giving NaN where the exact gradient is 0."""
    case = TensorCase(Tensor("grid_sample_3d", (Input(0), Input(1)), CallParams(
        (("mode", "bilinear"), ("padding_mode", "border"), ("align_corners", False))), 0),
        ((1, 2, 2, 1, 1), (1, 1, 1, 2, 3)), ((1.0, -32768.0, 1.0, 1.0), (0.125,) * 5 + (0.625,)), "float16",
        (1.0, 2.0, 1.0, 1.0))
    verdicts = _verdicts(case)
    assert all(verdicts[(1, (0, 0, 0, 1, d))].reason == INTERMEDIATE_OVERFLOW for d in range(3))


def test_nested_backward_at_a_zero_input_foresees_the_overflow_before_the_zero():
    """The third derivative of 3 x^4 at x = 0 with weights 43, 1, 43 in float16: torch's partial product
    43 * 516 * 3 overflows before the factor 2 x = 0 meets it (NaN), where the exact value is 0."""
    case = GradCase(Apply("mul", (Const(3.0), Apply("pow_scalar", (Var(0), Const(4.0)), 0)), 0), ((),), ((0.0,),),
                    "float16")
    outcome, _ = check_nested(case, (43.0,), [[(1.0,)], [(43.0,)]], "cpu")
    [verdict] = outcome.verdicts
    assert verdict.reason == INTERMEDIATE_OVERFLOW and verdict.exact == 0.0


def test_lgamma_of_a_wide_ball_above_its_minimum_is_finite():
    """arb's lgamma of 140 ± 4.65 is NaN; lgamma increases beyond 1.4616, so the ends enclose it."""
    F = RoundingModel(format_named("float32"))
    value = _lgamma(F, arb(140, 4.65))
    assert value.is_finite() and value.contains(arb(140).lgamma())


def test_corrcoef_of_a_constant_variable_is_undefined_not_one():
    """A program can hand corrcoef a constant row (gather(x, [[0, 0]]) at x = (1, 1)): c / c is 0/0 there, so the
    exact value is undefined and torch's NaN no verdict; SymPy's form had said 1, everywhere."""
    from oracles.core.verdict import Verdict as V

    params = CallParams(())
    constant = TensorCase(Tensor("corrcoef", (Input(0),), params, 0), ((1, 2),), ((2.0, 2.0),), "float64", None)
    assert {(v.verdict, v.reason) for v in check_tensor_case(constant, "cpu").verdicts} == {(V.UNVERIFIED, "singular")}
    varying = TensorCase(Tensor("corrcoef", (Input(0),), params, 0), ((1, 2),), ((1.0, 2.0),), "float64", None)
    assert {v.verdict for v in check_tensor_case(varying, "cpu").verdicts} == {V.VERIFIED}


def test_a_product_that_overflows_before_a_zero_upstream_is_foreseen():
    """bilinear with the upstream 0: every gradient is 0, but torch forms x0 W (1.8e308 beyond float64's range)
    before the 0 meets it, so x1's gradient is NaN: the registered intermediate overflow, not wrong."""
    case = TensorCase(Tensor("bilinear", tuple(Input(k) for k in range(4)), CallParams(()), 0),
                      ((1, 2), (1, 2), (1, 2, 2), (1,)),
                      ((1.0, -2.704867999414606e+272), (1.0, 0.0), (1.0, 1.0, 1.0, -6.64613997892458e+35), (1.0,)),
                      "float64", (0.0,))
    assert _verdicts(case)[(1, (0, 1))].reason == INTERMEDIATE_OVERFLOW


def test_nextafter_at_a_tie_is_a_convention_point_not_an_inconsistency():
    """nextafter(x0, x1) at x0 = x1 returns x1: torch's 0 for x0 is its pinned convention, while the identity's
    derivative is 1. The model said 0 there and the two passes disagreed (OracleInconsistency, met step by step
    where torch's two arguments rounded to the same float); now the point is undecided."""
    from oracles.core.check import check_case
    from oracles.core.verdict import Verdict as V

    case = GradCase(Apply("nextafter", (Var(0), Var(1)), 0), ((), ()), ((1.0,), (1.0,)), "float16")
    first = next(v for v in check_case(case).verdicts if v.leaf == 0)
    assert (first.verdict, first.reason) == (V.UNVERIFIED, "singular")
