"""The exact derivatives the verdicts use equal SymPy's own whole-tree derivative: SymPy's per-op partials
chained exactly (oracles.core.chain_rule), and the reverse-mode gradient of a SymPy expression that tensor
ops' Jacobians use (oracles.numerics.exact.compile_gradient), on random compositions and polynomials and at
pinned ties and kinks."""

from __future__ import annotations

import pytest
import sympy
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.core.case import all_indices
from oracles.core.chain_rule import exact_gradient
from oracles.core.render import derivative, symbol, to_sympy
from oracles.numerics.exact import compile_gradient, compile_sympy
from oracles.numerics.rounding import Singular
from strategies import compositions, grad_cases, polynomials

ONE = arb(1)


def _drawn_case(data):
    """A float64 case of a random composition or polynomial (both derivations' properties draw the same)."""
    expressions = data.draw(st.sampled_from([lambda n: compositions(n, max_depth=4), polynomials]),
                            label="expression kind")
    return data.draw(grad_cases("float64", expressions), label="case")


def _points(case):
    """The exact point behind each output element: every used input's value there (0 for unused ones)."""
    for out_index in all_indices(case.output_shape):
        yield tuple(arb(case.value_at(i, out_index)) if i in case.used else arb(0) for i in range(len(case.shapes)))


def _compare(case) -> tuple[int, int]:
    """(points compared, points singular for either derivation); asserts agreement where both are defined."""
    compared = singular = 0
    whole_tree = {}
    for i in case.used:
        try:
            whole_tree[i] = compile_sympy(derivative(case.expr, i))
        except NotImplementedError:
            # SymPy leaves some whole-tree derivatives unevaluated (sign of a composite gives
            # Derivative(sign(u), u)); the per-op partial (DiracDelta) is what the oracle uses there.
            continue
    for point in _points(case):
        try:
            chained = exact_gradient(case.expr, point, ONE)
            reference = {i: f(point) for i, f in whole_tree.items()}
        except Singular:
            singular += 1
            continue
        for i in whole_tree:
            if not (chained[i].is_finite() and reference[i].is_finite()):
                singular += 1
                continue
            assert chained[i].overlaps(reference[i]), (
                f"d/dx{i} of {case.expr} at {[float(p.mid()) for p in point]}: chain rule {chained[i].str(25)} "
                f"vs SymPy {derivative(case.expr, i)} = {reference[i].str(25)}")
            assert chained[i].rad() < 1e-40 * max(1, abs(float(chained[i].mid())))
            compared += 1
    return compared, singular


@settings(max_examples=60)
@given(data=st.data())
def test_chain_rule_matches_sympy_whole_tree_derivative(data):
    compared, singular = _compare(_drawn_case(data))
    assert compared >= singular, f"{singular} singular points against {compared} compared"


# ------------------------------------------------------------------ reverse mode over a SymPy expression
def _singular_or(evaluate):
    try:
        return evaluate()
    except Singular:
        return "singular"


def _gradients_agree(expr, point) -> bool:
    """compile_gradient's partials at `point` are SymPy's diff of the whole expression, variable by variable,
    or both derivations find the point singular (a tie, a kink, a branch point)."""
    variables = sorted(expr.free_symbols, key=lambda s: int(s.name[1:]))
    reverse = _singular_or(lambda: compile_gradient(expr)(point))
    forward = _singular_or(lambda: {int(s.name[1:]): compile_sympy(sympy.diff(expr, s))(point) for s in variables})
    if reverse == "singular" or forward == "singular":
        return reverse == forward
    return all(reverse.get(i, arb(0)).overlaps(value) for i, value in forward.items())


@settings(max_examples=60)
@given(data=st.data())
def test_reverse_mode_gradient_matches_sympy_diff(data):
    case = _drawn_case(data)
    expr = to_sympy(case.expr)
    for point in _points(case):
        assert _gradients_agree(expr, point), f"{expr} at {[float(p.mid()) for p in point]}"


_X = [symbol(i) for i in range(4)]


@pytest.mark.parametrize("expr", [
    sympy.Max(_X[0], _X[1], _X[2]) * _X[3],
    sympy.Min(_X[0], 2 * _X[1], sympy.Rational(1, 2)),
    sympy.Max(_X[0] * _X[1], 0) ** 2,
    sympy.Abs(_X[0] - _X[1]) * sympy.exp(_X[2]),
    sympy.sqrt(_X[0] ** 2 + _X[1] ** 2),
    sympy.Piecewise((_X[0] ** 2, _X[0] > _X[1]), (3 * _X[1], True)) + _X[0],
    _X[2] ** _X[1],
])
@pytest.mark.parametrize("values", [(0.75, 1.25, -0.5, 2.5), (1.25, 1.25, 0.5, -2.0), (0.0, 0.0, 0.5, 1.0)])
def test_reverse_mode_gradient_at_ties_and_kinks(expr, values):
    """Pinned points: a Max/Min tie among several arguments, a kink of Abs, a Piecewise boundary, sqrt at 0."""
    assert _gradients_agree(expr, tuple(arb(v) for v in values))
