"""ormqr in the tensor-op table: op(Q) C (left) or C op(Q) (right), op(Q) = Q or Qᵀ (transpose), for the m x m
Q = H_1 ... H_k of the reflectors in A (m x n, k = min(m, n)) and τ, as householder_product defines them
(oracles.table.householder_ops); sides 2 and 3, C of 1 or 2 columns (rows), after torch's kernel (LAPACK's ormqr)
and FunctionsManual.cpp (ormqr_backward).

Exact: a polynomial in A's strictly lower triangle, τ and C; SymPy takes its Jacobian.

torch: the forward, and the backward's gradient of C (ormqr(A, τ, grad, left, not transpose)), are modelled as
LAPACK's unblocked ormqr (dorm2r: for these k the blocked code is not used) applies them: one reflector at a time,
in the order op(Q) needs, each as dlarf does, w = Cᵀ v (or C v) and C - τ v wᵀ (or C - τ w vᵀ): every dot product
in any order, every update a product of three factors (two roundings, in any order) and one subtraction. Measured
first: MKL's ormqr results of 3600 elements (float64 and float32, every side and transpose, 3 x 1 to 3 x 3 A) all
lay in this model's enclosure. A's and τ's gradients are householder_product_backward's loop
(householder_ops.backward_of_product) on (grad, result) as ormqr_backward passes them: where left differs from
transpose, grad and the result (transposed where transpose), in order; else the result's and grad's transposes
(untransposed where transpose) with the walk flipped. The reflectors are drawn invertible ("householder_scalars"),
as that loop assumes (finding householder-product-singular-reflector).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel
from oracles.table import spectra
from oracles.table.householder_ops import _product, _reflector_columns, backward_of_product
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import is_exact_zero, mul, product, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp


def _full(a: np.ndarray, tau, one, zero) -> np.ndarray:
    """The whole m x m Q = H_1 ... H_k."""
    m = a.shape[0]
    square = spectra.obj((m, m))
    for r, c in np.ndindex(m, m):
        square[r, c] = a[r, c] if c < a.shape[1] else zero
    return _product(square, tau, one, zero)


def _sym_ormqr(arrays, p):
    a, tau, c = arrays
    q = sympy.Matrix(_full(a, list(tau), sympy.Integer(1), sympy.Integer(0)).tolist())
    q = q.T if p["transpose"] else q
    result = q * sympy.Matrix(c.tolist()) if p["left"] else sympy.Matrix(c.tolist()) * q
    out = spectra.obj(c.shape)
    for index in np.ndindex(*c.shape):
        out[index] = result[index]
    return out


def _sym_batched(arrays, p):
    a, tau, c = arrays
    out = spectra.obj(c.shape)
    for b in spectra.batches(a):
        piece = _sym_ormqr([a[b], tau[b], c[b]], p)
        for index in np.ndindex(*piece.shape):
            out[b + index] = piece[index]
    return out


def apply_reflectors(F: RoundingModel, a: np.ndarray, tau: list, c: np.ndarray, left: bool, transpose: bool):
    """op(Q) C or C op(Q) as dorm2r computes it (module docstring)."""
    m = a.shape[0]
    vs = _reflector_columns(a, len(tau), arb(1))
    order = list(range(len(tau)))
    if left != transpose:  # Q C = H_1 (... (H_k C)) and C Qᵀ = ((C H_k) ...) H_1: the last reflector first
        order.reverse()
    c = c.copy()
    for i in order:
        v = vs[i]
        if left:
            w = [sum_any(F, [mul(F, v[r], c[r, j]) for r in range(m)]) for j in range(c.shape[1])]
        else:
            w = [sum_any(F, [mul(F, c[r, j], v[j]) for j in range(m)]) for r in range(c.shape[0])]
        for r, j in np.ndindex(*c.shape):
            factors = [tau[i], v[r], w[j]] if left else [tau[i], w[r], v[j]]
            if not any(is_exact_zero(x) for x in factors):
                c[r, j] = F.sub(c[r, j], product(F, factors))
    return c


def _forward(F, arrays, p):
    a, tau, c = arrays
    out = spectra.obj(c.shape)
    for b in spectra.batches(a):
        piece = apply_reflectors(F, a[b], [tau[b + (i,)] for i in range(tau.shape[-1])], c[b], p["left"],
                                 p["transpose"])
        for index in np.ndindex(*piece.shape):
            out[b + index] = piece[index]
    return out


def _backward(F, arrays, out, grad, p):
    """ormqr_backward: C's gradient is ormqr(A, τ, grad, left, not transpose); A's and τ's householder_product's
    backward on the (grad, result) pair it passes."""
    a, tau, c = arrays
    left, transpose = p["left"], p["transpose"]
    ga, gtau, gc = spectra.obj(a.shape), spectra.obj(tau.shape), spectra.obj(c.shape)
    for b in spectra.batches(a):
        taus = [tau[b + (i,)] for i in range(tau.shape[-1])]
        g, result = grad[b], out[b]
        other = apply_reflectors(F, a[b], taus, g, left, not transpose)
        if left != transpose:
            pair, flip = ((g, result) if not transpose else (g.T, result.T)), False
        else:
            pair, flip = ((result.T, g.T) if not transpose else (result, g)), True
        gai, gti = backward_of_product(F, a[b], taus, pair[1], pair[0], flip)
        for index in np.ndindex(*gai.shape):
            ga[b + index] = gai[index]
        for i, value in enumerate(gti):
            gtau[b + (i,)] = value
        for index in np.ndindex(*other.shape):
            gc[b + index] = other[index]
    return ga, gtau, gc


def _operands(shape):
    """A (m, n) with m 2 or 3, τ of min(m, n) values, C (m, 1 or 2) or (1 or 2, m), batched alike."""
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    m = min(max(shape[-1], 2), 3)
    out = []
    for n in range(1, m + 1):
        for p in (1, 2):
            out += [(lead + (m, n), lead + (min(m, n),), lead + (m, p)),
                    (lead + (m, n), lead + (min(m, n),), lead + (p, m))]
    return out


def _options(shapes):
    a, tau, c = shapes
    if len(a) not in (2, 3) or tau[:-1] != a[:-2] or c[:-2] != a[:-2] or tau[-1] != min(a[-2:]):
        return []
    sides = [left for left in (True, False) if (c[-2] if left else c[-1]) == a[-2]]
    return [_params(left=left, transpose=t) for left in sides for t in (False, True)]


TENSOR_OPS["ormqr"] = TensorOp(
    "ormqr", 3,
    (_spelling("torch.ormqr({0}, {1}, {2}, left={left}, transpose={transpose})",
               lambda a, tau, c, left, transpose: torch.ormqr(a, tau, c, left=left, transpose=transpose)),
     _spelling("torch.ormqr({0}, {1}, {2})", lambda a, tau, c, left, transpose: torch.ormqr(a, tau, c),
               _with(left=True, transpose=False)),
     _spelling("{0}.ormqr({1}, {2}, {left}, {transpose})",
               lambda a, tau, c, left, transpose: a.ormqr(tau, c, left, transpose))),
    _sym_batched, _forward, _backward, OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))),
    lambda shapes, p: shapes[2], ("ormqr",), ranks=(2, 3), cpu_dtypes=spectra.FLOATS, operand_shapes=_operands,
    matrix_domains=("", "householder_scalars", ""))
spectra.NAMES.append("ormqr")
