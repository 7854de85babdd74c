"""The two steps every oracle shares (oracles.core.expected): a kink, pole or overflow in either pass is a
status with its reason (the exact value kept where it exists), an exact value outside the model's enclosure
is our bug, raised by name, in every pipeline that uses them; and torch's NaN or inf where the exact value
is finite is never hidden behind a status."""

from __future__ import annotations

import dataclasses
import math

import pytest
from flint import arb

from oracles.core.case import GradCase
from oracles.core.expected import ExpectedElement, OracleInconsistency, Status, model_then_exact, reconcile
from oracles.core.expr import Apply, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.verdict import INTERMEDIATE_OVERFLOW, Verdict, faithfully_rounded, judge_element
from oracles.higher.higher_order import expected_nested
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import EpsilonUnderflow, Overflow, Singular
from oracles.table import ops


def _raise(exc):
    def run():
        raise exc

    return run


def test_failures_of_either_pass_become_statuses():
    assert model_then_exact(lambda: 1, lambda: 2) == (1, 2, None)
    # a model failure still computes the exact value, where it exists: torch's NaN or inf there is judged
    assert model_then_exact(_raise(Singular("at a kink")), lambda: 2) == (None, 2, (Status.SINGULAR, "at a kink"))
    assert model_then_exact(_raise(Overflow("x² overflows")), lambda: 2) == (None, 2, (Status.OVERFLOW, "x² overflows"))
    assert model_then_exact(_raise(Overflow("x² overflows")), _raise(Singular("a pole")))[1:] == (
        None, (Status.OVERFLOW, "x² overflows"))
    assert model_then_exact(lambda: 1, _raise(Singular("a pole")))[2] == (Status.SINGULAR, "exact derivative: a pole")
    assert model_then_exact(_raise(EpsilonUnderflow("eps is 0")), lambda: 2) == (
        None, 2, (Status.EPSILON_UNDERFLOW, "eps is 0"))


def test_reconcile():
    inside = reconcile(arb(1), arb(1, 1e-10), lambda: "x0")
    assert inside.status is Status.OK and inside.exact == arb(1)
    assert reconcile(arb("inf"), arb(1), lambda: "x0").status is Status.SINGULAR
    with pytest.raises(OracleInconsistency, match=r"x0\[1\]: exact 1.*outside the model enclosure"):
        reconcile(arb(1), arb(2, 1e-10), lambda: "x0[1]")


@pytest.fixture
def sin_with_a_wrong_formula(monkeypatch):
    """sin's entry with torch's backward formula off by 1%: the table disagrees with SymPy's calculus."""
    wrong = dataclasses.replace(ops.OPS["sin"], local_grads=lambda F, args, y: (F.mul(args[0].cos(), arb(1.01)),))
    monkeypatch.setitem(ops.OPS, "sin", wrong)


def test_a_wrong_table_formula_is_an_inconsistency_at_first_and_second_order(sin_with_a_wrong_formula):
    case = GradCase(Apply("sin", (Var(0),), 0), ((),), ((0.5,),), "float64")
    with pytest.raises(OracleInconsistency, match="x0 element 0"):
        expected_gradients(case)
    with pytest.raises(OracleInconsistency):
        expected_nested(case, [[(1.0,)]])  # d²/dx² through torch's (wrong) sin formula on jets


@pytest.mark.parametrize("status, torch_value, exact, verdict, reason", [
    (Status.OVERFLOW, math.inf, 38967.9, Verdict.REGISTERED, INTERMEDIATE_OVERFLOW),
    # the overflow's inf met an underflowed 0 on the way: the same registered deviation
    (Status.OVERFLOW, math.nan, 38967.9, Verdict.REGISTERED, INTERMEDIATE_OVERFLOW),
    (Status.SINGULAR, -math.inf, 2.5, Verdict.WRONG, "-inf where the exact value 2.5 is finite"),
    (Status.SINGULAR, math.nan, 2.5, Verdict.WRONG, "nan where the exact value 2.5 is finite"),
    # float16 cannot hold the exact value: inf is what rounding to nearest gives
    (Status.OVERFLOW, math.inf, 1e300, Verdict.VERIFIED, "faithfully rounded"),
    (Status.OVERFLOW, -math.inf, 1e300, Verdict.UNVERIFIED, "overflow"),
    (Status.SINGULAR, math.nan, None, Verdict.UNVERIFIED, "singular"),  # no exact value: a real kink or pole
])
def test_a_nan_or_inf_where_the_exact_value_is_finite_is_never_hidden(status, torch_value, exact, verdict, reason):
    expected = ExpectedElement(status, None if exact is None else arb(exact), reason="a value may exceed the range")
    judged = judge_element(0, (), torch_value, expected, format_named("float16"))
    assert judged.verdict is verdict and reason in judged.reason, judged


@pytest.mark.parametrize("torch_value, exact, faithful", [
    (1.0, 1.0, True),
    (1.0, 1.0 + 2**-11, True),  # float16's next float above 1 is 1 + 2^-10
    (1.0, 1.0 - 2**-12, True),  # ... and below, 1 - 2^-11
    (1.0, 1.0 + 2**-10, False),  # the neighbour itself is closer
    (0.0, 1e-9, True),  # below the smallest subnormal, 6e-8: 0 is a neighbour
    (-0.0, -1e-9, True),
    (0.0, 1e-7, False),
    (65504.0, 65519.0, True),  # float16's largest float; from 65520 on, rounding gives inf
    (math.inf, 65520.0, True),
    (math.inf, 65519.0, False),
    (-math.inf, -1e300, True),
    (math.nan, 1.0, False),
])
def test_faithful_rounding_is_decided_without_the_model(torch_value, exact, faithful):
    assert faithfully_rounded(torch_value, arb(exact), format_named("float16")) is faithful


def test_a_faithfully_rounded_value_is_verified_where_the_enclosure_is_too_wide():
    wide = ExpectedElement(Status.OK, arb(1e-5), arb(0, 0.3))  # a saturated tanh's 1 - y²
    fmt = format_named("float16")
    assert judge_element(0, (), 1.0013580322265625e-05, wide, fmt).verdict is Verdict.VERIFIED  # the float next to 1e-5
    assert judge_element(0, (), 0.0, wide, fmt).verdict is Verdict.UNVERIFIED
    assert judge_element(0, (), 0.5, wide, fmt).verdict is Verdict.WRONG


def test_an_overflow_rounded_to_inf_is_verified_with_no_error():
    """The exact value beyond the dtype's largest float rounds to inf: torch's inf is then as right as a value can
    be, verified with an error of 0 ulps (not inf ulps in the worst-error figures)."""
    fmt = format_named("float32")
    element = ExpectedElement(Status.OVERFLOW, arb(1e39), reason="may overflow")
    v = judge_element(0, (0,), math.inf, element, fmt)
    assert v.verdict is Verdict.VERIFIED and v.error_ulps == 0.0
