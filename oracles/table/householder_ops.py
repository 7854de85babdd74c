"""linalg.householder_product in the tensor-op table: the first n columns of Q = H_1 ... H_k, H_i = I - τ_i v_i v_iᵀ,
with v_i the i-th column of A below the diagonal and a 1 on it (A m x n, k = len(τ) <= n <= m, sides 2 and 3, batches
of at most two), after torch's kernel (LAPACK's orgqr) and FunctionsManual.cpp (householder_product_backward).

Exact: Q is a polynomial in A's strictly lower triangle and τ, so SymPy takes its Jacobian like any closed form (the
diagonal and upper triangle of A are not read: their derivative is 0, as torch's backward says with its tril).

torch: orgqr's forward is recomputed and enclosed with the exact value (as for the spectral entries,
oracles.table.spectra). The backward, modelled operation by operation with the forward's result Q, the loop of
householder_product_backward without create_graph (K updated in place):
- V = tril(A, -1) with ones on the diagonal; ‖v_i‖² = Σ v_i * v_i; σ_i = τ_i / (τ_i ‖v_i‖² - 1), so H(σ_i) = H(τ_i)⁻¹;
- K = Q gradᵀ; K <- H(σ_0) K;
- for each i: vHK = v_i[i:]ᵀ K[i:, :], Kv = K[:, i:] v_i[i:], gA[:, i] = (-τ_i vHK)ᵀ - τ_i Kv,
  gτ_i = -(vHK[i:] · v_i[i:]); then (not after the last) K <- H(σ_{i+1}) K and K <- K H(τ_i), where the left
  update subtracts (t v[j:]) u from K[j:, :] with u = v[j:]ᵀ K[j:, :], and the right one u v[j:]ᵀ from K[:, j:]
  with u = K[:, j:] (t v[j:]);
- gA = tril(gA, -1), zero in the columns beyond k.
The backward assumes every H(τ_i) invertible (τ_i ‖v_i‖² ≠ 1; true of geqrf's output, where it is 2), though the
product is differentiable everywhere: where H(τ_i) is singular torch's τ gradient is NaN (finding
householder-product-singular-reflector). The strategies draw τ away from there (strategies/spectra.py,
"householder_scalars"); where τ_i ‖v_i‖² may be 1 within the model's rounding the model raises `Singular`.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO, is_exact_zero, mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp


def _reflector_columns(a: np.ndarray, k: int, one) -> list[list]:
    """v_i for i < k: zeros above the diagonal, `one` on it, A's entries below."""
    m = a.shape[0]
    return [[a[r, i] if r > i else (one if r == i else 0 * one) for r in range(m)] for i in range(k)]


def _product(a: np.ndarray, tau, one, zero) -> np.ndarray:
    """The first n columns of (I - τ_1 v_1 v_1ᵀ) ... (I - τ_k v_k v_kᵀ), in whatever arithmetic the entries have."""
    m, n = a.shape
    k = len(tau)
    q = [[one if r == c else zero for c in range(n)] for r in range(m)]
    for i, v in reversed(list(enumerate(_reflector_columns(a, k, one)))):  # H_i (H_{i+1} ... E), right to left
        w = [sum((v[r] * q[r][c] for r in range(m)), zero) for c in range(n)]
        q = [[q[r][c] - tau[i] * v[r] * w[c] for c in range(n)] for r in range(m)]
    out = spectra.obj((m, n))
    for r, c in np.ndindex(m, n):
        out[r, c] = q[r][c]
    return out


def _per_matrix(function):
    def batched(arrays, p):
        a, tau = arrays
        out = spectra.obj(a.shape)
        for b in spectra.batches(a):
            piece = function(a[b], [tau[b + (i,)] for i in range(tau.shape[-1])])
            for index in np.ndindex(*a.shape[-2:]):
                out[b + index] = piece[index]
        return out

    return batched


_sym = _per_matrix(lambda a, tau: _product(a, tau, sympy.Integer(1), sympy.Integer(0)))
_exact = _per_matrix(lambda a, tau: _product(a, tau, arb(1), ZERO))


def _forward(F: RoundingModel, arrays, p):
    """torch's Q (orgqr, recomputed) and the exact one, united."""
    a, tau = arrays
    joined = np.concatenate([a.reshape(a.shape[:-2] + (-1,)), tau], axis=-1)
    (recomputed,) = spectra.recomputed(F, joined, _split_orgqr, a.shape[-2:])
    exact = _exact(arrays, p)
    out = spectra.obj(a.shape)
    for index in np.ndindex(*a.shape):
        out[index] = spectra.hull(spectra.at(recomputed, index), exact[index])
    return out


def _split_orgqr(t: torch.Tensor, shape):
    m, n = shape
    a = t[..., :m * n].reshape(t.shape[:-1] + (m, n)).contiguous()
    return (torch.linalg.householder_product(a, t[..., m * n:].contiguous()),)


def _left(F, k: np.ndarray, j: int, v: list, t: arb) -> None:
    """K[j:, :] -= (t v[j:]) u with u = v[j:]ᵀ K[j:, :], in place (apply_simple_transformation, left)."""
    m = k.shape[0]
    u = [sum_any(F, [mul(F, v[r], k[r, c]) for r in range(j, m)]) for c in range(k.shape[1])]
    for r in range(j, m):
        scaled = mul(F, t, v[r])
        for c in range(k.shape[1]):
            k[r, c] = _minus(F, k[r, c], mul(F, scaled, u[c]))


def _right(F, k: np.ndarray, j: int, v: list, t: arb) -> None:
    """K[:, j:] -= u v[j:]ᵀ with u = K[:, j:] (t v[j:]), in place (apply_simple_transformation, right)."""
    m = k.shape[1]
    scaled = [mul(F, t, v[c]) for c in range(m)]
    u = [sum_any(F, [mul(F, k[r, c], scaled[c]) for c in range(j, m)]) for r in range(k.shape[0])]
    for r in range(k.shape[0]):
        for c in range(j, m):
            k[r, c] = _minus(F, k[r, c], mul(F, u[r], v[c]))


def _minus(F, x: arb, y: arb) -> arb:
    if is_exact_zero(y):
        return x
    return -y if is_exact_zero(x) else F.sub(x, y)


def backward_of_product(F: RoundingModel, a: np.ndarray, tau: list, result: np.ndarray, grad: np.ndarray,
                        flip: bool = False):
    """householder_product_backward(grad, result, A, τ, flip_order): (A's gradient, τ's) as torch computes them
    (module docstring); `flip` (ormqr's) walks the reflectors from the last and swaps the sides of the updates."""
    m, n = a.shape
    count = len(tau)
    vs = _reflector_columns(a, count, arb(1))
    sigma = []
    for i in range(count):
        norm = sum_any(F, [mul(F, x, x) for x in vs[i]])
        denominator = F.sub(mul(F, tau[i], norm), arb(1))
        if denominator.contains(0):
            raise Singular("τ ‖v‖² may be 1: H(τ) may not be invertible, as householder_product_backward assumes")
        sigma.append(F.div(tau[i], denominator))
    order = list(reversed(range(count))) if flip else list(range(count))
    update = {True: _left, False: _right}
    k = spectra.matmul(F, result, grad.T)
    update[not flip](F, k, order[0], vs[order[0]], sigma[order[0]])
    ga, gtau = spectra.obj((m, n)), [ZERO] * count
    for index in np.ndindex(m, n):
        ga[index] = ZERO
    for step, i in enumerate(order):
        v = vs[i]
        vhk = [sum_any(F, [mul(F, v[r], k[r, c]) for r in range(i, m)]) for c in range(m)]
        kv = [sum_any(F, [mul(F, k[r, c], v[c]) for c in range(i, m)]) for r in range(m)]
        for r in range(m):
            if r > i:  # tril(-1): the rest is discarded
                ga[r, i] = _minus(F, mul(F, -tau[i], vhk[r]), mul(F, tau[i], kv[r]))
        gtau[i] = -sum_any(F, [mul(F, vhk[c], v[c]) for c in range(i, m)])
        if step != count - 1:
            following = order[step + 1]
            update[not flip](F, k, following, vs[following], sigma[following])
            update[flip](F, k, i, v, tau[i])
    return ga, gtau


def _backward(F, arrays, out, grad, p):
    a, tau = arrays
    ga, gtau = spectra.obj(a.shape), spectra.obj(tau.shape)
    for b in spectra.batches(a):
        taus = [tau[b + (i,)] for i in range(tau.shape[-1])]
        gai, gti = backward_of_product(F, a[b], taus, out[b], grad[b])
        for index in np.ndindex(*gai.shape):
            ga[b + index] = gai[index]
        for i, g in enumerate(gti):
            gtau[b + (i,)] = g
    return ga, gtau


def _operands(shape):
    """A (m, n), n <= m, sides 2 and 3, with τ of 1 to n values (of the same batch)."""
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    c = min(max(shape[-1], 2), 3)
    sides = [(c, c)] + [(m, n) for m, n in ((c + 1, c), (c, c - 1)) if 2 <= n <= m <= 3]
    return [(lead + side, lead + (k,)) for side in sides for k in range(1, side[1] + 1)]


def _options(shapes):
    a, tau = shapes
    fits = len(a) in (2, 3) and a[-1] <= a[-2] and tau[:-1] == a[:-2] and 1 <= tau[-1] <= a[-1]
    return [_params()] if fits else []


TENSOR_OPS["householder_product"] = TensorOp(
    "householder_product", 2,
    (_spelling("torch.linalg.householder_product({0}, {1})", torch.linalg.householder_product),
     _spelling("torch.orgqr({0}, {1})", torch.orgqr),
     _spelling("{0}.orgqr({1})", torch.Tensor.orgqr)),
    _sym, _forward, _backward, OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))),
    lambda shapes, p: shapes[0], ("linalg.householder_product",), ranks=(2, 3), cpu_dtypes=spectra.FLOATS,
    operand_shapes=_operands, matrix_domains=("", "householder_scalars"))
spectra.NAMES.append("householder_product")
