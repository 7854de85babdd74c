"""Multivariate polynomials with integer and rational coefficients, written as torch users write them.

`3 * x0 ** 2 * x1 - 2 * x1 / 3 + 1`: each power drawn as `x ** k`, `x * x`, `torch.square(x)` or
`torch.pow(x, k)`; a rational coefficient p/q as `p * m / q` (torch rounds twice, SymPy is exact).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

from hypothesis import strategies as st

from oracles.core.expr import Apply, Const, Expr, Var
from oracles.table.ops import OPS
from strategies.cached import choice

MAX_DEGREE = 5
MAX_TERMS = 4


def _spelled(draw, name, *args):
    valid = [i for i, s in enumerate(OPS[name].spellings)
             if (s.const_first or not isinstance(args[0], Const))
             and (s.const_second or len(args) < 2 or not isinstance(args[1], Const))]
    return Apply(name, args, draw(choice(valid), label=f"{name} spelling"))


def _power(draw, var: int, exponent: int) -> Expr:
    x = Var(var)
    if exponent == 1:
        return x
    form = draw(choice(["pow", "repeated mul", "square"] if exponent == 2 else ["pow", "repeated mul"]),
                label="power form")
    if form == "pow":
        return _spelled(draw, "pow_scalar", x, Const(float(exponent)))
    if form == "square":
        return _spelled(draw, "square", x)
    product: Expr = x
    for _ in range(exponent - 1):
        product = _spelled(draw, "mul", product, x)
    return product


def _monomial(draw, exponents: dict[int, int]) -> Expr:
    factors = [_power(draw, v, e) for v, e in sorted(exponents.items()) if e > 0]
    product = factors[0]
    for factor in factors[1:]:
        product = _spelled(draw, "mul", product, factor)
    return product


def _coefficient(draw) -> Fraction:
    numerator = draw(choice([1, 2, -1, 3, -2, 5, -3, 4, -4, -5]), label="numerator")
    denominator = draw(choice([1, 1, 2, 3, 7]), label="denominator")
    return Fraction(numerator, denominator)


def _term(draw, n_vars: int, max_degree: int, first: bool) -> Expr:
    exponents: dict[int, int] = {}
    if first:  # the first term has a variable, so every polynomial depends on an input
        exponents[draw(st.integers(0, n_vars - 1), label="variable")] = draw(st.integers(1, max_degree), label="degree")
    for v in range(n_vars):
        if sum(exponents.values()) < max_degree and v not in exponents:
            exponents[v] = draw(st.integers(0, max_degree - sum(exponents.values())), label=f"x{v} degree")
    coefficient = _coefficient(draw)
    if not any(exponents.values()):
        return Const(float(coefficient.numerator)) if coefficient.denominator == 1 else \
            _spelled(draw, "div", Const(float(coefficient.numerator)), Const(float(coefficient.denominator)))
    term = _monomial(draw, exponents)
    if coefficient.numerator != 1:
        term = _spelled(draw, "mul", Const(float(coefficient.numerator)), term)
    if coefficient.denominator != 1:
        term = _spelled(draw, "div", term, Const(float(coefficient.denominator)))
    return term


def polynomials(n_vars: int, max_degree: int = MAX_DEGREE, max_terms: int = MAX_TERMS) -> st.SearchStrategy[Expr]:
    if n_vars < 1:
        raise ValueError(f"n_vars must be at least 1, got {n_vars!r}")
    if max_degree < 1 or max_terms < 1:
        raise ValueError(f"max_degree and max_terms must be at least 1, got {max_degree!r}, {max_terms!r}")
    return _polynomials(n_vars, max_degree, max_terms)


@cache  # one strategy object per configuration: see strategies/cached.py
def _polynomials(n_vars: int, max_degree: int, max_terms: int) -> st.SearchStrategy[Expr]:
    @st.composite
    def draw_polynomial(draw):
        n_terms = draw(st.integers(1, max_terms), label="terms")
        poly = _term(draw, n_vars, max_degree, first=True)
        for _ in range(n_terms - 1):
            poly = _spelled(draw, "add", poly, _term(draw, n_vars, max_degree, first=False))
        return poly

    return draw_polynomial()
