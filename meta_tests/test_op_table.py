"""The op table against its own promises: every capability derives from every entry, every entry has a
hand-written reference derivative, every special point that can be pinned is pinned by a convention, the
strategies draw every argument inside its interval and off its special points, and queries reject what
they do not know."""

from __future__ import annotations

import pytest
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled_examples
from oracles.core.expr import Const
from oracles.core.render import to_sympy
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import Singular
from oracles.table.domains import Interval, Kind
from oracles.table.ops import CAPABILITIES, OPS, Operands, ops_where
from oracles.table.reduction_conventions import PINNED_ONLY
from oracles.table.selection_ops import TieRule
from oracles.table.tensor_ops import TENSOR_OPS
from strategies import compositions, grad_cases


@pytest.mark.parametrize("op", list(OPS))
def test_every_capability_derives_from_the_entry(op):
    values = {flag: getattr(OPS[op], flag) for flag in CAPABILITIES}
    assert all(isinstance(v, bool) for v in values.values()), values


@pytest.mark.parametrize("op", list(OPS))
def test_every_entry_has_a_reference_derivative(op):
    """Its `references` are checked against the oracle in meta_tests/test_oracle_self.py."""
    entry = OPS[op]
    assert entry.references, f"{op}: no hand-written reference derivative"
    for reference in entry.references:
        assert len(reference.point) == entry.arity, f"{op}: reference point {reference.point} has the wrong arity"


@pytest.mark.parametrize("op", list(OPS))
def test_every_special_point_is_pinned(op):
    """An op with a kink, jump, pole, edge, tie, ... where torch's value can be pinned has conventions,
    and each listed float point of a special has a convention there (up to the special's period)."""
    entry = OPS[op]
    pinnable = [s for s in entry.specials if s.pinned]
    if pinnable:
        assert entry.conventions, f"{op} has {', '.join(s.kind.value for s in pinnable)} but pins no convention"
    for special in pinnable:
        if special.arg is None:
            continue
        for point in special.at:
            assert any(special.covers(c.at[special.arg]) and (c.at[special.arg] == point or special.period)
                       for c in entry.conventions), f"{op}: no convention at its {special.kind.value} {point}"


def test_capability_queries():
    assert set(ops_where(smooth=False)) == {op for op, e in OPS.items()
                                           if any(s.kind in (Kind.KINK, Kind.JUMP, Kind.TIE) for s in e.specials)}
    assert set(ops_where(second_order=False)) == {op for op, e in OPS.items() if e.higher_order_gap
                                                  or any(s.kind is Kind.JUMP for s in e.specials)}
    assert {"sign", "floor", "frac"} <= set(ops_where(second_order=False))
    assert set(ops_where(every_dtype=False)) == {op for op, e in OPS.items() if e.backward_dtypes is not None}
    assert set(ops_where(saves_tensors=False)) == {op for op, e in OPS.items() if not e.saves_tensors}
    with pytest.raises(ValueError, match="unknown capability 'smoothe'"):
        ops_where(smoothe=True)


def test_interval_membership():
    closed = Interval(-1.0, 1.0, True, True)
    assert -1.0 in closed and 1.0 in closed and 1.5 not in closed
    assert 0.0 not in Interval(0.0) and 0.0 in Interval(0.0, low_closed=True)


def _ball_inside(ball: arb, interval: Interval) -> bool:
    low_ok = ball > interval.low or (interval.low_closed and ball >= interval.low)
    high_ok = ball < interval.high or (interval.high_closed and ball <= interval.high)
    return bool(low_ok and high_ok)


def _nearest(special, value: arb) -> list[float]:
    """The special's float points nearest `value` (for a periodic special: the nearest repetition)."""
    if special.period is None:
        return list(special.at)
    mid = float(value.mid())
    return [p + round((mid - p) / special.period) * special.period for p in special.at]


def _natural_power(entry, expr) -> bool:
    """pow_scalar with an exponent 0, 1, 2, ...: its pole at 0 (negative or fractional exponents) is none."""
    if entry.operands is not Operands.EXPONENT:
        return False
    exponent = expr.args[1].value
    return exponent >= 0 and float(exponent).is_integer()


@pytest.mark.parametrize("op", list(OPS))
def test_strategies_draw_inside_the_interval_and_off_the_specials(op):
    """Every argument the composition strategy builds for `op` (at the root) lies, exactly, inside the
    argument's interval and not on a float point of its specials."""
    entry = OPS[op]

    @settings(settings(), max_examples=scaled_examples(10), database=None)
    @given(data=st.data())
    def check(data):
        case = data.draw(grad_cases("float64", lambda n: compositions(n, max_depth=2, root=op)), label="case")
        point = tuple(arb(v[0]) for v in case.values)  # the first element of each input
        for position, arg in enumerate(case.expr.args):
            if isinstance(arg, Const) and position in entry.constant_args:
                continue
            try:
                value = compile_sympy(to_sympy(arg))(point)
            except Singular:
                continue  # a kink inside the argument itself: its own op's business
            interval = entry.intervals[position]
            assert _ball_inside(value, interval), f"{op} argument {position} = {value} outside {interval}"
            for special in entry.specials:
                if special.arg == position and not _natural_power(entry, case.expr):
                    assert not any(value.contains(p) for p in _nearest(special, value)), (
                        f"{op} argument {position} = {value} may be its {special.kind.value} {special.where}")

    check()


@pytest.mark.parametrize("op", list(TENSOR_OPS))
def test_every_tensor_op_kink_is_pinned(op):
    """A tensor op that is not differentiable somewhere (`ties`: amax's ties, a norm's zero vector, a
    constant slice's std) names the pinned-only entries that pin torch's value there, and they pin some; except
    where the rule is the index torch returns with the values (sort, topk): no value can be pinned, and every
    tie drawn is judged against the index its own call returned (step by step)."""
    entry = TENSOR_OPS[op]
    if entry.ties and entry.ties != TieRule.RETURNED.value:
        assert entry.pinned_as, f"{op}: {entry.ties!r}, but no pinned convention is named"
    for name in entry.pinned_as:
        assert name in PINNED_ONLY and PINNED_ONLY[name].conventions, f"{op}: no pinned-only entry {name!r}"
