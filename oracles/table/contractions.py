"""Ops each of whose output elements is a sum of products of argument elements: matrix products and their
batched, scaled and accumulated forms (addmm, baddbmm, addr, ...), einsum and tensordot, kron, cross
products, linear and bilinear layers, convolutions, addcmul.

An op is its index map: numpy run on object arrays whose elements are `Terms` (one argument element each), so
`a @ b`, `np.einsum`, `np.kron` or a loop over a convolution's window build, per output element, the list
of products torch forms. The map runs once per shapes and parameters (`structure`); from that follow
- SymPy: the sum of the products (polynomials: SymPy's Jacobian is exact and cheap);
- torch's forward: every product rounded once per factor after the first (a coefficient such as addmm's
  alpha counts as a factor), the products summed in any order (`sum_any`). Terms are never merged: torch
  computes beta * c + alpha * (a @ b) with c and every a_ik b_kj separate, and merging equal products would
  hide a cancellation torch's rounding sees. Any bracketing torch uses (alpha applied after the sum, a
  bilinear form summed one index at a time, a GEMM's blocking, float accumulation for bfloat16) takes each
  term through at most as many roundings as this flat form charges it, each relative to at most the sum of
  the terms' magnitudes, so the flat form encloses it;
- torch's backward: the gradient of an argument element is the sum, over every product it is a factor of,
  of the output's gradient times the coefficient and the other factors (grad @ b^T for a matmul, a
  transposed convolution for a convolution: the same products, summed in any order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import numpy as np
import sympy
from flint import arb

from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import RoundingModel
from oracles.table.tensor_formulas import ZERO, fused_sum, is_exact_zero, product, sum_any


@dataclass(frozen=True)
class Computed:
    """A constant torch computes rather than takes (an FFT's twiddle factor cos(2πjk/n), a normalization
    1/sqrt(n)): its exact value, and how far torch's float may be from it, `roundings` times u of `scale` (a
    bound of its magnitude; also where the exact value is 0: sin(π) computes to 1.2e-16, not 0). A product of
    two computed constants adds their roundings and one for the product torch forms of them."""

    exact: sympy.Expr
    roundings: int
    scale: Real = 1

    def __mul__(self, other):
        if not isinstance(other, Real | Computed):  # Terms and arrays multiply it in themselves
            return NotImplemented
        if isinstance(other, Computed):
            return Computed(self.exact * other.exact, self.roundings + other.roundings + 1, self.scale * other.scale)
        return Computed(self.exact * other, self.roundings, self.scale * abs(other))

    __rmul__ = __mul__

    def __neg__(self):
        return Computed(-self.exact, self.roundings, self.scale)


Coefficient = Real | Computed


def _dropped(c: Coefficient) -> bool:
    """A coefficient torch's product is exactly 0 for: a Python 0 (a computed constant never is)."""
    return isinstance(c, Real) and c == 0


@dataclass(frozen=True)
class Terms:
    """A sum of products, each a coefficient and the ids of the argument elements it multiplies (a product
    of no elements is a constant). Index maps combine them with +, -, * and numbers, as numpy does for
    object arrays (`np.matmul` starts its sums from 0)."""

    terms: tuple[tuple[Coefficient, tuple[int, ...]], ...] = ()

    def __add__(self, other):
        if not isinstance(other, Terms):
            return self if _dropped(other) else self + constant(other)
        return Terms(self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self):
        return Terms(tuple((-c, f) for c, f in self.terms))

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, Terms):
            return Terms(tuple((c * other, f) for c, f in self.terms if not _dropped(c * other)))
        return Terms(tuple((c * d, f + g) for c, f in self.terms for d, g in other.terms))

    __rmul__ = __mul__


def constant(value: Coefficient) -> Terms:
    return Terms() if _dropped(value) else Terms(((value, ()),))


def _tokens(shapes) -> list[np.ndarray]:
    """Per argument, an object array of `Terms`, one per element: its global row-major id, argument after
    argument."""
    out, first = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=int))
        items = np.empty(size, dtype=object)
        for k in range(size):
            items[k] = Terms(((1, (first + k,)),))
        out.append(items.reshape(shape))
        first += size
    return out


@functools.lru_cache(maxsize=4096)  # per op, shapes and parameters: every forward and backward asks again
def structure(index_map: Callable, shapes: tuple[tuple[int, ...], ...], p) -> np.ndarray:
    """The op's output on `Terms` tokens, one `Terms` per element (shared: read only)."""
    out = np.asarray(index_map(_tokens(shapes), p), dtype=object)
    layout = np.empty(out.shape, dtype=object)
    for index in np.ndindex(*out.shape):
        item = out[index]
        layout[index] = item if isinstance(item, Terms) else constant(item)
    layout.flags.writeable = False
    return layout


def contracted_shape(index_map: Callable, shapes, p) -> tuple[int, ...]:
    return structure(index_map, tuple(map(tuple, shapes)), p).shape


def _coefficient(F: RoundingModel, c: Computed) -> arb:
    """A computed constant as torch has it: computed in its kernels' float type (at::opmath_type, float for
    bfloat16 and float16), then used in that type."""
    inner = F.opmath
    value = compile_sympy(sympy.sympify(c.exact))(())
    return inner.in_range(value + arb(0, c.roundings * (inner.u * c.scale + inner.eta)))


def _term(F: RoundingModel, coefficient: Coefficient, factors: list[arb]) -> arb:
    """coefficient × factors as torch forms it: exactly 0 when a factor is exactly 0 (IEEE), a sign change
    exact, any other coefficient one more factor (a Python scalar, maybe rounded to the format; a computed
    constant, within its roundings)."""
    if any(is_exact_zero(f) for f in factors):
        # 0, unless a product of the other factors, formed first, overflows (inf * 0 is NaN: bilinear's gradient
        # in x1 at the upstream 0 forms x0 W = 1.8e308 * ... first): then nothing can be said
        product(F, [f for f in factors if not is_exact_zero(f)] or [arb(1)])
        return ZERO
    if isinstance(coefficient, Computed):
        return product(F, [_coefficient(F, coefficient)] + factors)
    if coefficient in (1, -1):
        value = product(F, factors) if factors else arb(1)
        return value if coefficient == 1 else -value
    return product(F, [F.const(float(coefficient))] + factors)


def _exact(c: Coefficient) -> sympy.Expr:
    return c.exact if isinstance(c, Computed) else sympy.Rational(c)


def _fused_sum(F: RoundingModel, terms: list[tuple[Coefficient, list[arb]]]) -> arb:
    """Σ coefficient × factors as one kernel that forms and adds every product in its float type
    (at::opmath_type: float for bfloat16 and float16) and rounds the sum once."""
    return fused_sum(F, [_term(F.opmath, c, f) for c, f in terms])


def _sum(F: RoundingModel, terms: list[tuple[Coefficient, list[arb]]]) -> arb:
    """Σ coefficient × factors, every product and every addition rounded in the format."""
    return sum_any(F, [_term(F, c, f) for c, f in terms])


def contracted(index_map: Callable, fused: bool = False, fused_backward: bool = False):
    """SymPy side, forward and backward of the op `index_map(arrays, params)` (module docstring). `fused`:
    torch's forward is one kernel per output that accumulates in float and rounds once (`_fused_sum`), as
    CPU matrix products, convolutions and addcmul are (measured: their bfloat16 and float16 results are the
    float-accumulated value rounded once); `fused_backward`: so is each argument's gradient (the matrix
    products, with scalars that are powers of two: scaling by them is exact)."""
    forward_sum = _fused_sum if fused else _sum
    backward_sum = _fused_sum if fused_backward else _sum

    def layout_of(arrays, p):
        return structure(index_map, tuple(a.shape for a in arrays), p)

    def sympy_side(arrays, p):
        flat = [v for a in arrays for v in a.reshape(-1)]
        layout = layout_of(arrays, p)
        out = np.empty(layout.shape, dtype=object)
        for o in np.ndindex(*layout.shape):
            out[o] = sympy.Add(*(_exact(c) * sympy.Mul(*(flat[e] for e in f)) for c, f in layout[o].terms))
        return out

    def forward(F, arrays, p):
        flat = [v for a in arrays for v in a.reshape(-1)]
        layout = layout_of(arrays, p)
        out = np.empty(layout.shape, dtype=object)
        for o in np.ndindex(*layout.shape):
            out[o] = forward_sum(F, [(c, [flat[e] for e in f]) for c, f in layout[o].terms])
        return out

    def backward(F, arrays, out, grad, p):
        flat = [v for a in arrays for v in a.reshape(-1)]
        layout = layout_of(arrays, p)
        collected: list[list] = [[] for _ in flat]
        for o in np.ndindex(*layout.shape):
            g = grad[o]
            for c, f in layout[o].terms:
                for position, element in enumerate(f):
                    others = [flat[e] for k, e in enumerate(f) if k != position]
                    collected[element].append((c, [g] + others))
        grads, first = [], 0
        for a in arrays:
            g = np.empty(a.shape, dtype=object)
            for k, index in enumerate(np.ndindex(*a.shape)):
                g[index] = backward_sum(F, collected[first + k])
            grads.append(g)
            first += a.size
        return tuple(grads)

    return sympy_side, forward, backward
