"""The fast pass (oracles.core.fast_pass) verifies only what the exact path verifies: on random compositions of
the ops it follows, with torch's own `.grad` and with `.grad` moved far off, every element it decides the exact
path judges verified; it decides nearly every element of a smooth chain; and its intervals contain arb's
values of every function they follow."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.expressions import chain_expression, grid
from oracles.core.case import GradCase
from oracles.core.chain_rule import op_forms
from oracles.core.check import torch_gradients
from oracles.core.expr import Apply, Const, Var
from oracles.core.fast_pass import fast_verdicts, follows
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.verdict import Verdict, judge
from oracles.numerics.bounds import DOUBLE, LONG_DOUBLE, Bounds
from oracles.numerics.bounds_exact import compile_bounds
from oracles.numerics.exact import compile_sympy
from oracles.numerics.long_double_erf import erf_enclosure
from oracles.numerics.rounding import Singular
from oracles.table.ops import OPS
from strategies import compositions, grad_cases

FOLLOWED = tuple(name for name, op in OPS.items() if op.interval_formulas)
KINKED = tuple(name for name in FOLLOWED if any(s.kind.name in ("KINK", "JUMP", "TIE") for s in OPS[name].specials))
SMOOTH = tuple(name for name in FOLLOWED if name not in KINKED)
DTYPES = ("float64", "float32", "bfloat16", "float16")


def _exact_path_verdicts(case, grads):
    return {(v.leaf, i): v for v in judge(case, grads, expected_gradients(case))
            for i in [_flat(case, v)]}


def _flat(case, verdict) -> int:
    shape = case.shapes[verdict.leaf]
    return int(np.ravel_multi_index(verdict.index, shape)) if shape else 0


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_fast_pass_verifies_only_what_the_exact_path_verifies(dtype, data):
    case = data.draw(grad_cases(dtype, lambda n: compositions(n, max_depth=4, ops=FOLLOWED)), label="case")
    grads = torch_gradients(case)
    moved = data.draw(st.sampled_from([1.0, 1 + 2.0**-6, -1.0]), label="factor applied to torch's .grad")
    if moved != 1.0:
        grads = [None if g is None else g * moved for g in grads]
    decided = fast_verdicts(case, grads)
    exact = _exact_path_verdicts(case, grads)
    for key, verdict in decided.items():
        assert verdict.verdict is Verdict.VERIFIED
        assert exact[key].verdict is Verdict.VERIFIED, (case.source, key, verdict, exact[key])


@st.composite
def _across_a_kink(draw, n_inputs: int):
    """A kinked op (relu, clamp, maximum, ...) of smooth compositions, which take both signs at the drawn values
    (the op table's strategies keep a kink's argument on one side), maybe under one more smooth op."""
    op = OPS[draw(st.sampled_from(KINKED), label="kinked op")]
    parameters = draw(st.sampled_from(op.parameters), label="parameters") if op.parameters else ()
    inner = tuple(draw(compositions(n_inputs, max_depth=2, ops=SMOOTH), label=f"argument {k}")
                  for k in range(op.arity - len(parameters)))
    expr = Apply(op.name, inner + tuple(Const(p) for p in parameters), 0)
    if draw(st.booleans(), label="under a smooth op"):
        expr = Apply(draw(st.sampled_from([n for n in SMOOTH if OPS[n].arity == 1]), label="outer op"), (expr,), 0)
    return expr


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_across_kinks_the_fast_pass_verifies_only_what_the_exact_path_verifies(dtype, data):
    """As above, where the points fall on both sides of a kink: the pass splits them at every decision."""
    case = data.draw(grad_cases(dtype, _across_a_kink), label="case")
    grads = torch_gradients(case)
    moved = data.draw(st.sampled_from([1.0, 1 + 2.0**-6, -1.0]), label="factor applied to torch's .grad")
    grads = [None if g is None else g * moved for g in grads]
    exact = _exact_path_verdicts(case, grads)
    for key, verdict in fast_verdicts(case, grads).items():
        assert exact[key].verdict is Verdict.VERIFIED, (case.source, key, verdict, exact[key])


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_pass_decides_nearly_all_of_a_smooth_chain(dtype):
    case = GradCase(chain_expression(20), ((200,),), (grid(200),), dtype)
    assert follows(case.expr)
    decided = fast_verdicts(case, torch_gradients(case))
    # measured: all 200 in every dtype (1,000 points: 996, those at 0, whose exact value is 0, go to the exact path)
    assert len(decided) >= 190, len(decided)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", ["relu", "maximum", "clamp"])
def test_a_kink_splits_the_points_and_each_side_is_decided(op, dtype):
    """A decision that differs between the points (relu's sign, maximum's comparison, clamp's bounds) runs the pass
    again on each side: every element whose exact gradient is not 0 is decided, and soundly."""
    sin, cos = Apply("sin", (Var(0),), 0), Apply("cos", (Var(0),), 0)
    args = {"relu": (sin,), "maximum": (sin, cos), "clamp": (sin, Const(-0.5), Const(0.5))}[op]
    case = GradCase(Apply(op, args, 0), ((200,),), (grid(200),), dtype)
    grads = torch_gradients(case)
    decided = fast_verdicts(case, grads)
    exact = _exact_path_verdicts(case, grads)
    nonzero = [key for key, v in exact.items() if v.verdict is Verdict.VERIFIED and v.exact != 0]
    assert len(decided) >= 0.95 * len(nonzero), (len(decided), len(nonzero))
    assert all(exact[key].verdict is Verdict.VERIFIED for key in decided)


@pytest.mark.parametrize("name", KINKED)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_intervals_of_kinked_forms_bound_arbs_values(name, data):
    """The op's SymPy value and partials (steps, extrema, Piecewise) over intervals, at a point: NaN, or the point
    arb's exact evaluator gives; NaN wherever arb cannot decide (on a kink, a tie, a branch boundary)."""
    op = OPS[name]
    constants = data.draw(st.sampled_from(op.parameters), label="parameters") if op.parameters else ()
    constants = (None,) * (op.arity - len(constants)) + tuple(Fraction(c) for c in constants)
    function, partials = op_forms(name, constants)
    kinks = [v for s in op.specials for v in s.at] + [0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -0.5]
    point = tuple(data.draw(st.sampled_from(kinks) | st.floats(-8, 8), label=f"x{i}") if c is None else 0.0
                  for i, c in enumerate(constants))
    for form in (function, *(p for p in partials if p is not None)):
        evaluate = compile_bounds(form)
        assert evaluate is not None, form
        result = evaluate(tuple(Bounds.points([x], LONG_DOUBLE) for x in point))
        if not isinstance(result, Bounds):  # a constant form: arb's own ball
            assert result.overlaps(compile_sympy(form)(tuple(arb(x) for x in point))), form
            continue
        ends = result.ends
        try:
            value = compile_sympy(form)(tuple(arb(x) for x in point))
        except Singular:
            assert np.isnan(ends).all(), (form, point, ends)
            continue
        if np.isnan(ends).any():
            continue
        a, b, c, d = (_exact(end) for end in ends[:, 0])
        assert a <= value and value <= b and c <= value and value <= d, (form, point, ends, value)


FUNCTIONS = ("exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "tan", "tanh", "sinh", "cosh", "atan", "asinh", "sin",
             "cos", "erf", "erfc")


def _exact(end: np.floating) -> arb:
    numerator, denominator = end.as_integer_ratio()  # a long double is dyadic: exact in arb
    return arb(numerator) * arb(2) ** -(denominator.bit_length() - 1)


@pytest.mark.parametrize("precision", [LONG_DOUBLE, DOUBLE], ids=["long_double", "double"])
@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=60, deadline=None)
@given(x=st.floats(-50, 50, allow_subnormal=True) | st.floats(-1e300, 1e300))
def test_intervals_bound_arbs_value_at_a_point(name, precision, x):
    """At a point x the interval is the point f(x): a <= f(x) <= b and c <= f(x) <= d."""
    ends = getattr(Bounds.points([x], precision), name)().ends[:, 0]
    value = getattr(arb(x), name)()
    if np.isnan(ends).any() or not value.is_finite():
        return  # outside what the pass follows there: the exact path decides
    a, b, c, d = (_exact(end) for end in ends)
    assert a <= value and value <= b and c <= value and value <= d, (ends, value)


def test_an_arb_function_is_never_called_on_an_interval():
    """python-flint's arb functions do not check their argument's type: called on an interval they crash the
    process, so only entries flagged `interval_formulas` reach the pass."""
    case = GradCase(chain_expression(5), ((3,),), ((0.5, 1.0, 1.5),), "float32")
    assert follows(case.expr)
    unflagged = next(name for name, op in OPS.items() if not op.interval_formulas and op.arity == 1)
    other = GradCase(type(case.expr)(unflagged, (case.expr,), 0), ((3,),), ((0.5, 1.0, 1.5),), "float32")
    assert not follows(other.expr)
    assert fast_verdicts(other, [torch.zeros(3, dtype=torch.float32)]) == {}


def test_long_double_erf_encloses_arbs_erf():
    """oracles.numerics.long_double_erf on 3,000 points of (-7, 7), at the anchors' edges (k/8 ± 1/16) and near 0:
    every enclosure holds arb's erf, and below 6 it is within 2^-57 of the value (float64's model needs ~2^-53)."""
    rng = np.random.default_rng(20261205)
    edges = [k / 8 + s / 16 for k in range(-48, 49) for s in (-1, 1)]
    points = np.concatenate([rng.uniform(-7, 7, 3000), edges, [0.0, 5e-324, -1e-300, 1e-8, 6.0, -6.0]])
    x = points.astype(np.longdouble) * np.longdouble(1 + 2.0**-62)  # long doubles that are not doubles
    low, high = erf_enclosure(x)
    for point, lo, hi in zip(x, low, high):
        value = _exact(point).erf()
        assert _exact(lo) <= value and value <= _exact(hi), (point, lo, hi, value)
        if 0 < abs(point) < 6:
            assert (hi - lo) <= abs(lo) * 2.0**-57, (point, lo, hi)
