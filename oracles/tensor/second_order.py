"""Second derivatives of a tensor op applied to its inputs, exact, where its Hessian is a constant.

Every output element y_o of an op is a SymPy expression in per-element symbols (oracles.tensor.oracle.op_sympy).
Where each is a polynomial of degree at most 2 in them (a view, an index, a sum, a matmul, a convolution, a
product of two elements, a variance), its Hessian H_o is a matrix of rational constants (`quadratic_form`), and
every second derivative torch can return is a sum of products of those constants with the numbers the caller
passes in: double backward's Σ_o u_o H_o w, torch.func.hessian's Σ_o u_o H_o, forward-over-forward's vᵀ H_o w.

Rounding: torch's second-order formulas are not in the rounding model; whatever order they take, they add up the
same n products, each of at most three factors (u, w and a constant the formula computes, such as 2/(n-1)). The
stated assumption is that each product costs at most `TERM_ROUNDINGS` rounded operations; with n - 1 additions and
one store, the result lies within k·u·Σ|products| of the exact sum for k = n + TERM_ROUNDINGS (Higham 3.1, the
first-order form the rounding model uses for every sum). A linear op's Hessian is 0: torch must return exactly 0.
Where some output's Hessian varies with the point (a quotient, a square root, a degree-3 product), or where torch's
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
from oracles.tensor.oracle import op_sympy
from oracles.tensor.program import Input, Tensor, TensorCase

# rounded operations allowed per product u_o·w_p·c: two multiplications and up to four computing the constant c
TERM_ROUNDINGS = 6


@dataclass(frozen=True)
class QuadraticForm:
    # per output element (row-major): its nonzero second partials {(p, q): ∂²y/∂x_p∂x_q} over symbol indices,
    # both orders of a mixed pair present
    hessians: tuple[dict[tuple[int, int], sympy.Rational], ...]
    owners: tuple[tuple[int, int], ...]  # per symbol index: (argument, flat index in it)

    @property
    def linear(self) -> bool:
        return not any(self.hessians)


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
    return QuadraticForm(tuple(hessians), owners)


def case_form(case: TensorCase) -> QuadraticForm | None:
    """`quadratic_form` of a program that is one op applied to inputs themselves, its arguments in input order."""
    node = case.program
    if not isinstance(node, Tensor) or [a.index if isinstance(a, Input) else None for a in node.args] != list(
            range(len(node.args))):
        return None
    return quadratic_form(node.op, node.params, case.shapes)


def sum_of_products(terms: list[arb], fmt: FloatFormat) -> ExpectedElement:
    """The exact sum of the products, and every value torch's evaluation of it may take (module docstring)."""
    exact, magnitude = arb(0), arb(0)
    for term in terms:
        exact += term
        magnitude += term.abs_upper()
    if not terms:
        return ExpectedElement(Status.OK, exact, exact)
    try:
        enclosure = RoundingModel(fmt).round(exact, len(terms) + TERM_ROUNDINGS, magnitude)
    except Overflow as exc:
        return ExpectedElement(Status.OVERFLOW, exact, reason=str(exc))
    return ExpectedElement(Status.OK, exact, enclosure)


def _flat(form: QuadraticForm, vectors: dict[int, Sequence[float]]) -> list[float]:
    """Per symbol index, its element of the per-argument `vectors` (0 for an argument without one)."""
    return [vectors[k][i] if k in vectors else 0.0 for k, i in form.owners]


def expected_double_backward(form: QuadraticForm, upstream: Sequence[float], directions: dict[int, Sequence[float]],
                             fmt: FloatFormat) -> dict[int, list[ExpectedElement]]:
    """autograd.grad(Jᵀu, inputs, w): per argument, row-major, Σ_o u_o Σ_p w_p H_o[p, q] at each element q."""
    w = _flat(form, directions)
    terms: list[list[arb]] = [[] for _ in form.owners]
    for u, hessian in zip(upstream, form.hessians):
        for (p, q), c in hessian.items():
            if u and w[p]:
                terms[q].append(arb(u) * arb(w[p]) * arb(c.p) / c.q)
    out: dict[int, list[ExpectedElement]] = {}
    for (k, _), element_terms in zip(form.owners, terms):
        out.setdefault(k, []).append(sum_of_products(element_terms, fmt))
    return out


def expected_hessian(form: QuadraticForm, upstream: Sequence[float], fmt: FloatFormat) -> list[list[ExpectedElement]]:
    """The Hessian of Σ_o u_o y_o over all symbols: Σ_o u_o H_o[p, q], rows p and columns q."""
    n = len(form.owners)
    terms: list[list[list[arb]]] = [[[] for _ in range(n)] for _ in range(n)]
    for u, hessian in zip(upstream, form.hessians):
        for (p, q), c in hessian.items():
            if u:
                terms[p][q].append(arb(u) * arb(c.p) / c.q)
    return [[sum_of_products(t, fmt) for t in row] for row in terms]


def expected_second_directional(form: QuadraticForm, first: dict[int, Sequence[float]],
                                second: dict[int, Sequence[float]], fmt: FloatFormat) -> list[ExpectedElement]:
    """Forward mode twice (jvp of jvp): per output element o, Σ_pq v_p H_o[p, q] w_q."""
    v, w = _flat(form, first), _flat(form, second)
    return [sum_of_products([arb(v[p]) * arb(w[q]) * arb(c.p) / c.q for (p, q), c in hessian.items()
                             if v[p] and w[q]], fmt) for hessian in form.hessians]
