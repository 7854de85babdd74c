"""Symmetric eigen-decompositions in the tensor-op table, one entry per output: the eigenvalues (linalg.eigvalsh,
linalg.eigh's first output) and the eigenvectors (linalg.eigh's second) of small symmetric matrices (sides 2 and
3, batches of at most two), after torch's kernels and FunctionsManual.cpp.

What each entry is exactly and how torch computes it are in oracles.table.spectra: the exact values and VJPs are
rigorous arb enclosures (`TensorOp.exact_vjp`: SymPy has no practical closed form beyond 2 x 2), and the rounding
model evaluates torch's backward formula in ball arithmetic over the hull of LAPACK's factors (recomputed) and the
exact ones. The matrices are drawn with well-separated eigenvalues by construction (strategies/spectra.py), where
the derivatives exist.

Conventions:
- symmetric input: syevd reads one triangle (UPLO), but torch's backward returns a symmetric gradient, the
  derivative of the spectrum of (A + Aᵀ) / 2 (as for cholesky); the exact side differentiates that function, which
  equals the one LAPACK evaluates wherever A is symmetric, as the strategies draw it;
- eigenvector signs: a unit eigenvector is defined up to its sign; torch's (LAPACK's) choice is a locally constant
  gauge, and the exact side takes each eigenvector with the sign torch returned (`spectra.aligned`), the
  derivative of that branch.

torch's backward formulas (linalg_eig_backward with is_hermitian), without create_graph:
- eigenvalues only (gV undefined): gA = (V * gL.unsqueeze(-2)) @ Vᵀ;
- eigenvectors only (gL undefined): W = Vᵀ gV; W = 0.5 (W - Wᵀ); W_ij /= (L_j - L_i) off the diagonal (its
  diagonal is 0 - 0 = 0, divided by 1); gA = V @ (W @ Vᵀ).
On the exact side these are Σ_k gL_k v_k v_kᵀ and the symmetric part of Σ_k Σ_{j≠k} (v_jᵀ g_k) / (λ_k - λ_j) v_j v_kᵀ
(dv_k = Σ_{j≠k} v_j v_jᵀ dA v_k / (λ_k - λ_j) for a symmetric dA).
"""

from __future__ import annotations

import numpy as np
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO, mul, sum_any


# ------------------------------------------------------------------ symmetric eigen-decompositions
def _uplo_options(shapes):
    a = shapes[0]
    square = len(a) in (2, 3) and a[-1] == a[-2] and a[-1] >= 2
    return [_params(UPLO=uplo) for uplo in ("L", "U")] if square else []


def _square_operands(shape):
    """n x n (n = the drawn last side, at least 2), or a batch of at most MAX_BATCH of them."""
    n = min(max(shape[-1], 2), 3)
    return [((n, n),)] if len(shape) == 2 else [((min(shape[0], spectra.MAX_BATCH), n, n),)]


def _eigh(t: torch.Tensor, uplo: str):
    values, vectors = torch.linalg.eigh(t, UPLO=uplo)
    return values, vectors, torch.linalg.eigvalsh(t, UPLO=uplo)


def _torch_eigh(F: RoundingModel, a: np.ndarray, p):
    """torch's eigenvalues and eigenvectors as the autograd path computes them (syevd with vectors), and its
    eigenvalues without vectors (eigvalsh of a tensor that needs no gradient: syevd 'N', other last bits)."""
    return spectra.recomputed(F, a, _eigh, p["UPLO"])


def _exact_eigen(matrix: np.ndarray, torch_vectors) -> tuple[list[arb], list[list[arb]]]:
    """The exact eigenvalues (ascending, as torch's) and eigenvectors, each with the sign of torch's."""
    values, vectors = spectra.symmetric_eigen(matrix)
    n = len(values)
    return values, [spectra.aligned(vectors[k], [torch_vectors[i][k] for i in range(n)]) for k in range(n)]


def _eigen_balls(F: RoundingModel, a: np.ndarray, p):
    """Per matrix: (eigenvalue balls, eigenvector balls V[i, k], the forward's eigenvalue balls): the hulls of
    torch's factors and the exact ones (oracles.table.spectra)."""
    values, vectors, plain = _torch_eigh(F, a, p)
    out = {}
    for b in spectra.batches(a):
        torch_values, torch_vectors, torch_plain = (spectra.at(x, b) for x in (values, vectors, plain))
        exact_values, exact_vectors = _exact_eigen(a[b], torch_vectors)
        n = len(exact_values)
        lam = [spectra.hull(torch_values[k], exact_values[k]) for k in range(n)]
        v = spectra.obj((n, n))
        for i in range(n):
            for k in range(n):
                v[i, k] = spectra.hull(torch_vectors[i][k], exact_vectors[k][i])
        out[b] = (lam, v, [lam[k].union(arb(torch_plain[k])) for k in range(n)])
    return out


def _eigvalsh_forward(F, arrays, p):
    a = arrays[0]
    out = spectra.obj(a.shape[:-1])
    for b, (_, _, forward) in _eigen_balls(F, a, p).items():
        for k, ball in enumerate(forward):
            out[b + (k,)] = ball
    return out


def _eigvalsh_backward(F, arrays, out, grad, p):
    """(V * gL.unsqueeze(-2)) @ Vᵀ: each V_ik gL_k rounded, then a dot product in any order."""
    a = arrays[0]
    ga = spectra.obj(a.shape)
    for b, (_, v, _) in _eigen_balls(F, a, p).items():
        n = v.shape[0]
        scaled = [[mul(F, v[i, k], grad[b + (k,)]) for k in range(n)] for i in range(n)]
        for i in range(n):
            for j in range(n):
                ga[b + (i, j)] = sum_any(F, [mul(F, scaled[i][k], v[j, k]) for k in range(n)])
    return (ga,)


def _eigh_vectors_forward(F, arrays, p):
    a = arrays[0]
    out = spectra.obj(a.shape)
    for b, (_, v, _) in _eigen_balls(F, a, p).items():
        for index in np.ndindex(*v.shape):
            out[b + index] = v[index]
    return out


def _eigh_vectors_backward(F, arrays, out, grad, p):
    """W = Vᵀ gV; W = 0.5 (W - Wᵀ); W_ij / (L_j - L_i) off the diagonal, 0 on it; gA = V @ (W @ Vᵀ)."""
    a = arrays[0]
    ga = spectra.obj(a.shape)
    for b, (lam, v, _) in _eigen_balls(F, a, p).items():
        n = v.shape[0]
        w = spectra.matmul(F, v.T, grad[b])
        projected = spectra.obj((n, n))
        for i in range(n):
            for j in range(n):
                if i == j:
                    projected[i, j] = ZERO  # 0.5 (x - x) is exactly 0, and 0 / 1 is 0
                    continue
                gap = F.sub(lam[j], lam[i])
                if gap.contains(0):
                    raise Singular("two eigenvalues may be equal within the rounding model")
                skew = mul(F, arb(0.5), F.sub(w[i, j], w[j, i]))
                projected[i, j] = ZERO if skew.is_exact() and skew.is_zero() else F.div(skew, gap)
        result = spectra.matmul(F, v, spectra.matmul(F, projected, v.T))
        for index in np.ndindex(n, n):
            ga[b + index] = result[index]
    return (ga,)


def _eigvalsh_exact(fmt, arrays, p):
    """λ_k; the VJP Σ_k g_k v_k v_kᵀ (whatever the signs of the v_k)."""
    a = arrays[0]
    eigen = {b: spectra.symmetric_eigen(a[b]) for b in spectra.batches(a)}
    value = spectra.obj(a.shape[:-1])
    for b, (lam, _) in eigen.items():
        for k, ball in enumerate(lam):
            value[b + (k,)] = ball

    def pullback(adjoint):
        ga = spectra.obj(a.shape)
        for b, (lam, vectors) in eigen.items():
            n = len(lam)
            for i in range(n):
                for j in range(n):
                    ga[b + (i, j)] = sum((adjoint[b + (k,)] * vectors[k][i] * vectors[k][j] for k in range(n)), ZERO)
        return [ga]

    return value, pullback


def _eigh_vectors_exact(fmt, arrays, p):
    """V (signs torch's); the VJP: the symmetric part of Σ_k Σ_{j≠k} (v_jᵀ g_k) / (λ_k - λ_j) v_j v_kᵀ."""
    a = arrays[0]
    _, torch_vectors, _ = _torch_eigh(RoundingModel(fmt), a, p)
    eigen = {b: _exact_eigen(a[b], spectra.at(torch_vectors, b)) for b in spectra.batches(a)}
    value = spectra.obj(a.shape)
    for b, (_, vectors) in eigen.items():
        for i, k in np.ndindex(a.shape[-2:]):
            value[b + (i, k)] = vectors[k][i]

    def pullback(adjoint):
        ga = spectra.obj(a.shape)
        for b, (lam, vectors) in eigen.items():
            n = len(lam)
            g = [[adjoint[b + (i, k)] for i in range(n)] for k in range(n)]  # g[k]: the gradient of v_k
            c = [[sum((vectors[j][i] * g[k][i] for i in range(n)), ZERO) / (lam[k] - lam[j]) if j != k else ZERO
                  for k in range(n)] for j in range(n)]
            for r in range(n):
                for s in range(n):
                    ga[b + (r, s)] = sum((c[j][k] * (vectors[j][r] * vectors[k][s] + vectors[k][r] * vectors[j][s])
                                          for j in range(n) for k in range(n) if j != k), ZERO) / 2
        return [ga]

    return value, pullback


# ------------------------------------------------------------------ the entries
spectra.entry("eigvalsh",
       [_spelling("torch.linalg.eigvalsh({0}, UPLO={UPLO})", lambda a, UPLO: torch.linalg.eigvalsh(a, UPLO=UPLO)),
        _spelling("torch.linalg.eigvalsh({0})", lambda a, UPLO: torch.linalg.eigvalsh(a), _with(UPLO="L")),
        _spelling("torch.linalg.eigh({0}, UPLO={UPLO})[0]", lambda a, UPLO: torch.linalg.eigh(a, UPLO=UPLO)[0]),
        _spelling("torch.linalg.eigh({0}).eigenvalues", lambda a, UPLO: torch.linalg.eigh(a).eigenvalues,
                  _with(UPLO="L"))],
       _eigvalsh_forward, _eigvalsh_backward, _eigvalsh_exact, ["linalg.eigvalsh", "linalg.eigh"],
       "symmetric_separated", _square_operands, _uplo_options, lambda a, p: a[:-1])
spectra.entry("eigh_vectors",
       [_spelling("torch.linalg.eigh({0}, UPLO={UPLO})[1]", lambda a, UPLO: torch.linalg.eigh(a, UPLO=UPLO)[1]),
        _spelling("torch.linalg.eigh({0}).eigenvectors", lambda a, UPLO: torch.linalg.eigh(a).eigenvectors,
                  _with(UPLO="L"))],
       _eigh_vectors_forward, _eigh_vectors_backward, _eigh_vectors_exact, ["linalg.eigh"],
       "symmetric_separated", _square_operands, _uplo_options, lambda a, p: a)
