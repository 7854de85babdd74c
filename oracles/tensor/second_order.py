"""Second derivatives of a tensor op applied to its inputs, exact, where its Hessian is a constant.

Every output element y_o of an op is a SymPy expression in per-element symbols (oracles.tensor.oracle.op_sympy).
Where each is a polynomial of degree at most 2 in them (a view, an index, a sum, a matmul, a convolution, a
product of two elements, a variance), its Hessian H_o is a matrix of rational constants (`quadratic_form`), and
every second derivative torch can return is a sum of products of those constants with the numbers the caller
passes in: double backward's Σ_o u_o H_o w, torch.func.hessian's Σ_o u_o H_o, forward-over-forward's vᵀ H_o w.

Rounding: torch's second-order formulas are not in the rounding model. The stated assumption is that they add up
the products of the op's formula as SymPy builds it, each of at most three factors (u, w and a constant the formula
computes, such as 2/(n-1)) and costing at most `TERM_ROUNDINGS` rounded operations, in any order and grouping: with
n - 1 additions and one store, the result lies within k·u·Σ|products| of the exact sum for k = n + TERM_ROUNDINGS
(Higham 3.1, the first-order form the rounding model uses for every sum). The products are those of the op's form
with every constant made positive (`spans`), so that products which cancel in the Hessian (a backward that takes
differences first) count too. A linear op's Hessian is 0: torch must return exactly 0.
Where some output's Hessian varies with the point (a quotient, a square root, a degree-3 product), where the op's
form as written is no polynomial although its value is (logsumexp of one element, log(exp(x))), or where torch's
backward formula divides although the op is a polynomial (`TensorOp.backward_divides`), `quadratic_form` is None:
torch's second-order formulas there are not modelled and are not judged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sympy
from flint import arb

from oracles.core.expected import ExpectedElement, Status
from oracles.core.render import symbol
from oracles.numerics.dtypes import FloatFormat
from oracles.numerics.rounding import Overflow, RoundingModel
from oracles.table.tensor_ops import TENSOR_OPS, OpParams
from oracles.tensor.oracle import elements_of, op_sympy, symbol_arrays
from oracles.tensor.program import Input, Tensor, TensorCase

# rounded operations allowed per product u_o·w_p·c: two multiplications and up to four computing the constant c
TERM_ROUNDINGS = 6


@dataclass(frozen=True)
class QuadraticForm:
    # per output element (row-major): its nonzero second partials {(p, q): ∂²y/∂x_p∂x_q} over symbol indices,
    # both orders of a mixed pair present
    hessians: tuple[dict[tuple[int, int], sympy.Rational], ...]
    # the same of the absolute form (`_absolute`): the magnitudes of the products a formula shaped like the op's
    # adds up, also those that cancel in the Hessian (trapezoid's (x1 - x0)·y0 + (x2 - x1)·y1 has no x1·y... term
    # where y0 = y1, but a backward that takes differences first adds both)
    spans: tuple[dict[tuple[int, int], sympy.Rational], ...]
    owners: tuple[tuple[int, int], ...]  # per symbol index: (argument, flat index in it)

    @property
    def linear(self) -> bool:
        return not any(self.hessians)


def _absolute(expr: sympy.Expr) -> sympy.Expr:
    """The polynomial with every constant replaced by its magnitude, its structure kept (a difference becomes a sum)."""
    if expr.is_Number:
        return abs(expr)
    if expr.is_Add or expr.is_Mul:
        return expr.func(*(_absolute(a) for a in expr.args))
    if expr.is_Pow:
        return _absolute(expr.base) ** expr.exp
    return expr


def _hessian(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> dict[tuple[int, int], sympy.Rational] | None:
    if not expr.is_polynomial(*symbols):
        return None
    poly = sympy.Poly(expr, *symbols)
    if poly.total_degree() > 2:
        return None
    entries = {}
    for monomial, coefficient in poly.terms():
        if sum(monomial) != 2:
            continue
        if not coefficient.is_Rational:
            return None
        p, q = [i for i, power in enumerate(monomial) for _ in range(power)]
        if p == q:
            entries[(p, p)] = 2 * coefficient
        else:
            entries[(p, q)] = entries[(q, p)] = coefficient
    return entries


@functools.cache
def quadratic_form(name: str, params: OpParams, shapes: tuple[tuple[int, ...], ...]) -> QuadraticForm | None:
    """The op's constant Hessians at these shapes, or None where one varies with the point (module docstring)."""
    if TENSOR_OPS[name].exact_vjp is not None or TENSOR_OPS[name].backward_divides:  # no SymPy form; or torch's
        return None  # formula is not a polynomial
    exprs, owners = op_sympy(name, params, shapes)
    symbols = [symbol(i) for i in range(len(owners))]
    hessians = []
    for expr in exprs:
        hessian = _hessian(expr, symbols)
        if hessian is None:
            return None
        hessians.append(hessian)
    shaped = _as_written(name, params, shapes)
    spans = tuple(_hessian(_absolute(expr), symbols) for expr in (shaped or exprs))
    if None in spans:  # as written the op is no polynomial (logsumexp of one element: log(exp(x))), nor is torch's
        return None
    return QuadraticForm(tuple(hessians), spans, owners)


def _as_written(name: str, params: OpParams, shapes) -> tuple | None:
    """The op's SymPy form as its table entry writes it, unevaluated, so that SymPy's automatic simplification does
    not cancel products first ((y0 + y1)(x1 - x0) + (y1 + y2)(x2 - x1) keeps both x1·y1); None where the entry's form
    needs evaluation to be built."""
    arrays, _ = symbol_arrays(shapes)
    try:
        with sympy.evaluate(False):
            out = TENSOR_OPS[name].sympy(arrays, params)
    except (TypeError, ValueError, AttributeError):
        return None
    return elements_of(out)


def case_form(case: TensorCase) -> QuadraticForm | None:
    """`quadratic_form` of a program that is one op applied to inputs themselves, its arguments in input order."""
    node = case.program
    if not isinstance(node, Tensor) or [a.index if isinstance(a, Input) else None for a in node.args] != list(
            range(len(node.args))):
        return None
    return quadratic_form(node.op, node.params, case.shapes)


def sum_of_products(terms: list[arb], spans: list[arb], fmt: FloatFormat) -> ExpectedElement:
    """The exact sum of `terms`, and every value torch's evaluation of it may take: `spans` are the magnitudes of
    the products torch adds up (module docstring), one per product."""
    if not spans:
        return ExpectedElement(Status.OK, arb(0), arb(0))
    exact, magnitude = sum(terms, arb(0)), sum((s.abs_upper() for s in spans), arb(0))
    try:
        enclosure = RoundingModel(fmt).round(exact, len(spans) + TERM_ROUNDINGS, magnitude)
    except Overflow as exc:
        return ExpectedElement(Status.OVERFLOW, exact, reason=str(exc))
    return ExpectedElement(Status.OK, exact, enclosure)


def _rational(c: sympy.Rational) -> arb:
    return arb(c.p) / c.q


def _contracted(form: QuadraticForm, weight, place, size: int, fmt: FloatFormat) -> list[ExpectedElement]:
    """Per place, Σ weight(o, p, q)·H_o[p, q] over the (o, p, q) that `place` sends there, and the products'
    magnitudes |weight|·|H|_o[p, q] from the absolute form."""
    terms: list[list[arb]] = [[] for _ in range(size)]
    spans: list[list[arb]] = [[] for _ in range(size)]
    for o, (hessian, span) in enumerate(zip(form.hessians, form.spans)):
        for (p, q), c in span.items():
            factor = weight(o, p, q)
            if factor == 0:
                continue
            i = place(o, p, q)
            spans[i].append(abs(factor) * _rational(c))
            if (p, q) in hessian:
                terms[i].append(factor * _rational(hessian[p, q]))
    return [sum_of_products(t, s, fmt) for t, s in zip(terms, spans)]


def _flat(form: QuadraticForm, vectors: dict[int, Sequence[float]]) -> list[arb]:
    """Per symbol index, its element of the per-argument `vectors` (0 for an argument without one)."""
    return [arb(vectors[k][i]) if k in vectors else arb(0) for k, i in form.owners]


def expected_double_backward(form: QuadraticForm, upstream: Sequence[float], directions: dict[int, Sequence[float]],
                             fmt: FloatFormat) -> dict[int, list[ExpectedElement]]:
    """autograd.grad(Jᵀu, inputs, w): per argument, row-major, Σ_o u_o Σ_p w_p H_o[p, q] at each element q."""
    u, w = [arb(x) for x in upstream], _flat(form, directions)
    elements = _contracted(form, lambda o, p, q: u[o] * w[p], lambda o, p, q: q, len(form.owners), fmt)
    out: dict[int, list[ExpectedElement]] = {}
    for (k, _), element in zip(form.owners, elements):
        out.setdefault(k, []).append(element)
    return out


def expected_hessian(form: QuadraticForm, upstream: Sequence[float], fmt: FloatFormat) -> list[list[ExpectedElement]]:
    """The Hessian of Σ_o u_o y_o over all symbols: Σ_o u_o H_o[p, q], rows p and columns q."""
    n, u = len(form.owners), [arb(x) for x in upstream]
    flat = _contracted(form, lambda o, p, q: u[o], lambda o, p, q: p * n + q, n * n, fmt)
    return [flat[p * n:(p + 1) * n] for p in range(n)]


def expected_second_directional(form: QuadraticForm, first: dict[int, Sequence[float]],
                                second: dict[int, Sequence[float]], fmt: FloatFormat) -> list[ExpectedElement]:
    """Forward mode twice (jvp of jvp): per output element o, Σ_pq v_p H_o[p, q] w_q."""
    v, w = _flat(form, first), _flat(form, second)
    return _contracted(form, lambda o, p, q: v[p] * w[q], lambda o, p, q: o, len(form.hessians), fmt)
