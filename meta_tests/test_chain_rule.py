"""The exact derivative the verdicts use (SymPy's per-op partials chained exactly, oracles.core.chain_rule)
equals SymPy's own whole-tree derivative on random compositions and polynomials."""

from __future__ import annotations

from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.core.case import all_indices
from oracles.core.chain_rule import exact_gradient
from oracles.core.render import derivative
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import Singular
from strategies import compositions, grad_cases, polynomials

ONE = arb(1)


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
    for out_index in all_indices(case.output_shape):
        point = tuple(arb(case.value_at(i, out_index)) if i in case.used else arb(0)
                      for i in range(len(case.shapes)))
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
    expressions = data.draw(st.sampled_from([lambda n: compositions(n, max_depth=4), polynomials]),
                            label="expression kind")
    case = data.draw(grad_cases("float64", expressions), label="case")
    compared, singular = _compare(case)
    assert compared >= singular, f"{singular} singular points against {compared} compared"
