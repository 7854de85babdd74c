"""Spectral ops of the tensor-op table, one entry each: the eigenvalues and eigenvectors of symmetric matrices
(linalg.eigvalsh, linalg.eigh) and singular values (linalg.svdvals), of small matrices (sides 2 and 3, batches of
at most two), after torch's kernels and FunctionsManual.cpp.

What each entry is exactly and how torch computes it are in oracles.table.spectra: the exact values and VJPs are
rigorous arb enclosures (`TensorOp.exact_vjp`: SymPy has no practical closed form beyond 2 x 2), and the rounding
model evaluates torch's backward formula in ball arithmetic over the hull of LAPACK's factors (recomputed) and the
exact ones. The matrices are drawn with well-separated spectra by construction (strategies/spectra.py), where the
derivatives exist.

Conventions:
- symmetric input: syevd reads one triangle (UPLO), but torch's backward returns a symmetric gradient, the
  derivative of the spectrum of (A + Aᵀ) / 2 (as for cholesky); the exact side differentiates that function, which
  equals the one LAPACK evaluates wherever A is symmetric, as the strategies draw it;
- eigenvector signs: a unit eigenvector is defined up to its sign; torch's (LAPACK's) choice is a locally constant
  gauge, and the exact side takes each eigenvector with the sign torch returned (`spectra.aligned`), the
  derivative of that branch.

torch's backward formulas (linalg_eig_backward with is_hermitian, svd_backward), without create_graph:
- eigenvalues only (gV undefined): gA = (V * gL.unsqueeze(-2)) @ Vᵀ;
- eigenvectors only (gL undefined): W = Vᵀ gV; W = 0.5 (W - Wᵀ); W_ij /= (L_j - L_i) off the diagonal (its
  diagonal is 0 - 0 = 0, divided by 1); gA = V @ (W @ Vᵀ);
- singular values only: gA = U @ (gS.unsqueeze(-1) * Vh) where m >= n, else (U * gS.unsqueeze(-2)) @ Vh.
On the exact side these are Σ_k gL_k v_k v_kᵀ, the symmetric part of Σ_k Σ_{j≠k} (v_jᵀ g_k) / (λ_k - λ_j) v_j v_kᵀ,
and Σ_k gS_k u_k v_kᵀ.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO, mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS
FLOATS = ("float64", "float32")  # LAPACK's real types
MAX_BATCH = 2


def _obj(shape) -> np.ndarray:
    return np.empty(shape, dtype=object)


def _batches(a: np.ndarray):
    return list(np.ndindex(*a.shape[:-2]))


# ------------------------------------------------------------------ symmetric eigen-decompositions
def _uplo_options(shapes):
    a = shapes[0]
    square = len(a) in (2, 3) and a[-1] == a[-2] and a[-1] >= 2
    return [_params(UPLO=uplo) for uplo in ("L", "U")] if square else []


def _square_operands(shape):
    """n x n (n = the drawn last side, at least 2), or a batch of at most MAX_BATCH of them."""
    n = min(max(shape[-1], 2), 3)
    return [((n, n),)] if len(shape) == 2 else [((min(shape[0], MAX_BATCH), n, n),)]


def _torch_eigh(F: RoundingModel, a: np.ndarray, p):
    """torch's eigenvalues and eigenvectors as the autograd path computes them (syevd with vectors), and its
    eigenvalues without vectors (eigvalsh of a tensor that needs no gradient: syevd 'N', other last bits)."""
    t = spectra.torch_matrix(F, a)
    values, vectors = torch.linalg.eigh(t, UPLO=p["UPLO"])
    plain = torch.linalg.eigvalsh(t, UPLO=p["UPLO"])
    return spectra.as_floats(values), spectra.as_floats(vectors), spectra.as_floats(plain)


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
    for b in _batches(a):
        torch_values, torch_vectors, torch_plain = (_at(x, b) for x in (values, vectors, plain))
        exact_values, exact_vectors = _exact_eigen(a[b], torch_vectors)
        n = len(exact_values)
        lam = [spectra.hull(torch_values[k], exact_values[k]) for k in range(n)]
        v = _obj((n, n))
        for i in range(n):
            for k in range(n):
                v[i, k] = spectra.hull(torch_vectors[i][k], exact_vectors[k][i])
        out[b] = (lam, v, [lam[k].union(arb(torch_plain[k])) for k in range(n)])
    return out


def _at(nested, b: tuple):
    for i in b:
        nested = nested[i]
    return nested


def _eigvalsh_forward(F, arrays, p):
    a = arrays[0]
    out = _obj(a.shape[:-1])
    for b, (_, _, forward) in _eigen_balls(F, a, p).items():
        for k, ball in enumerate(forward):
            out[b + (k,)] = ball
    return out


def _eigvalsh_backward(F, arrays, out, grad, p):
    """(V * gL.unsqueeze(-2)) @ Vᵀ: each V_ik gL_k rounded, then a dot product in any order."""
    a = arrays[0]
    ga = _obj(a.shape)
    for b, (_, v, _) in _eigen_balls(F, a, p).items():
        n = v.shape[0]
        scaled = [[mul(F, v[i, k], grad[b + (k,)]) for k in range(n)] for i in range(n)]
        for i in range(n):
            for j in range(n):
                ga[b + (i, j)] = sum_any(F, [mul(F, scaled[i][k], v[j, k]) for k in range(n)])
    return (ga,)


def _eigh_vectors_forward(F, arrays, p):
    a = arrays[0]
    out = _obj(a.shape)
    for b, (_, v, _) in _eigen_balls(F, a, p).items():
        for index in np.ndindex(*v.shape):
            out[b + index] = v[index]
    return out


def _matmul(F, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = _obj((x.shape[0], y.shape[1]))
    for i in range(x.shape[0]):
        for j in range(y.shape[1]):
            out[i, j] = sum_any(F, [mul(F, x[i, k], y[k, j]) for k in range(x.shape[1])])
    return out


def _eigh_vectors_backward(F, arrays, out, grad, p):
    """W = Vᵀ gV; W = 0.5 (W - Wᵀ); W_ij / (L_j - L_i) off the diagonal, 0 on it; gA = V @ (W @ Vᵀ)."""
    a = arrays[0]
    ga = _obj(a.shape)
    for b, (lam, v, _) in _eigen_balls(F, a, p).items():
        n = v.shape[0]
        w = _matmul(F, v.T, grad[b])
        projected = _obj((n, n))
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
        result = _matmul(F, v, _matmul(F, projected, v.T))
        for index in np.ndindex(n, n):
            ga[b + index] = result[index]
    return (ga,)


def _eigvalsh_exact(fmt, arrays, p):
    """λ_k; the VJP Σ_k g_k v_k v_kᵀ (whatever the signs of the v_k)."""
    a = arrays[0]
    eigen = {b: spectra.symmetric_eigen(a[b]) for b in _batches(a)}
    value = _obj(a.shape[:-1])
    for b, (lam, _) in eigen.items():
        for k, ball in enumerate(lam):
            value[b + (k,)] = ball

    def pullback(adjoint):
        ga = _obj(a.shape)
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
    eigen = {b: _exact_eigen(a[b], _at(torch_vectors, b)) for b in _batches(a)}
    value = _obj(a.shape)
    for b, (_, vectors) in eigen.items():
        for i, k in np.ndindex(a.shape[-2:]):
            value[b + (i, k)] = vectors[k][i]

    def pullback(adjoint):
        ga = _obj(a.shape)
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


# ------------------------------------------------------------------ singular values
def _svd_operands(shape):
    """From a drawn last side c (2 or 3): c x c, (c + 1) x c and c x (c + 1) with sides at most 3, or a batch."""
    c = min(max(shape[-1], 2), 3)
    sides = [(c, c)] + [(m, n) for m, n in ((c + 1, c), (c, c + 1), (c - 1, c), (c, c - 1)) if 2 <= min(m, n)
                                                                                             and max(m, n) <= 3]
    lead = () if len(shape) == 2 else (min(shape[0], MAX_BATCH),)
    return [(lead + side,) for side in sides]


def _svd_options(shapes):
    a = shapes[0]
    return [_params()] if len(a) in (2, 3) and min(a[-2:]) >= 2 else []


def _torch_svd(F: RoundingModel, a: np.ndarray):
    """torch's U, S, Vh as the autograd path computes them (gesdd, reduced) and its S without vectors
    (svdvals of a tensor that needs no gradient)."""
    t = spectra.torch_matrix(F, a)
    u, s, vh = torch.linalg.svd(t, full_matrices=False)
    return tuple(spectra.as_floats(x) for x in (u, s, vh, torch.linalg.svdvals(t)))


def _exact_svd(matrix: np.ndarray, torch_u, torch_vh):
    """(σ, u_k, v_k), each pair with the sign of torch's: v_k aligned with Vh's row k where A is tall (then u_k
    = A v_k / σ_k follows), u_k with U's column k where A is wide."""
    sigmas, us, vs = spectra.singular_triples(matrix)
    m, n = matrix.shape
    for k in range(len(sigmas)):
        sign = (spectra.sign_towards(vs[k], torch_vh[k]) if m >= n
                else spectra.sign_towards(us[k], [torch_u[i][k] for i in range(m)]))
        if sign < 0:
            us[k], vs[k] = [-x for x in us[k]], [-x for x in vs[k]]
    return sigmas, us, vs


def _svd_balls(F: RoundingModel, a: np.ndarray):
    """Per matrix: (U balls, S balls for the forward, Vh balls): hulls of torch's factors and the exact ones."""
    u, s, vh, plain = _torch_svd(F, a)
    out = {}
    for b in _batches(a):
        tu, ts, tvh, tplain = (_at(x, b) for x in (u, s, vh, plain))
        sigmas, us, vs = _exact_svd(a[b], tu, tvh)
        m, n = a.shape[-2:]
        k = len(sigmas)
        ub, vhb = _obj((m, k)), _obj((k, n))
        for i in range(m):
            for j in range(k):
                ub[i, j] = spectra.hull(tu[i][j], us[j][i])
        for j in range(k):
            for i in range(n):
                vhb[j, i] = spectra.hull(tvh[j][i], vs[j][i])
        forward = [spectra.hull(ts[j], sigmas[j]).union(arb(tplain[j])) for j in range(k)]
        out[b] = (ub, forward, vhb)
    return out


def _svdvals_forward(F, arrays, p):
    a = arrays[0]
    out = _obj(a.shape[:-2] + (min(a.shape[-2:]),))
    for b, (_, forward, _) in _svd_balls(F, a).items():
        for k, ball in enumerate(forward):
            out[b + (k,)] = ball
    return out


def _svdvals_backward(F, arrays, out, grad, p):
    """U @ (gS.unsqueeze(-1) * Vh) where m >= n, else (U * gS.unsqueeze(-2)) @ Vh."""
    a = arrays[0]
    m, n = a.shape[-2:]
    ga = _obj(a.shape)
    for b, (u, _, vh) in _svd_balls(F, a).items():
        k = vh.shape[0]
        g = [grad[b + (j,)] for j in range(k)]
        if m >= n:
            right = _obj((k, n))
            for j, i in np.ndindex(k, n):
                right[j, i] = mul(F, g[j], vh[j, i])
            result = _matmul(F, u, right)
        else:
            left = _obj((m, k))
            for i, j in np.ndindex(m, k):
                left[i, j] = mul(F, u[i, j], g[j])
            result = _matmul(F, left, vh)
        for index in np.ndindex(m, n):
            ga[b + index] = result[index]
    return (ga,)


def _svdvals_exact(fmt, arrays, p):
    """σ_k; the VJP Σ_k g_k u_k v_kᵀ (whatever the sign of each pair)."""
    a = arrays[0]
    triples = {b: spectra.singular_triples(a[b]) for b in _batches(a)}
    value = _obj(a.shape[:-2] + (min(a.shape[-2:]),))
    for b, (sigmas, _, _) in triples.items():
        for k, ball in enumerate(sigmas):
            value[b + (k,)] = ball

    def pullback(adjoint):
        ga = _obj(a.shape)
        for b, (sigmas, us, vs) in triples.items():
            for i, j in np.ndindex(*a.shape[-2:]):
                ga[b + (i, j)] = sum((adjoint[b + (k,)] * us[k][i] * vs[k][j] for k in range(len(sigmas))), ZERO)
        return [ga]

    return value, pullback


# ------------------------------------------------------------------ the entries
def _entry(name, spellings, forward, backward, exact, opinfo, domain, operands, options, shape):
    TENSOR_OPS[name] = TensorOp(
        name, 1, tuple(spellings), _no_closed_form, forward, backward,
        OptionSpace(functools.cache(lambda shapes: tuple(options(shapes)))), lambda shapes, p: shape(shapes[0]),
        tuple(opinfo), ranks=(2, 3), cpu_dtypes=FLOATS, operand_shapes=operands, matrix_domains=(domain,),
        exact_vjp=exact)
    NAMES.append(name)


def _no_closed_form(arrays, p):
    raise NotImplementedError("no SymPy form: the exact pass uses the entry's exact_vjp")


_entry("eigvalsh",
       [_spelling("torch.linalg.eigvalsh({0}, UPLO={UPLO})", lambda a, UPLO: torch.linalg.eigvalsh(a, UPLO=UPLO)),
        _spelling("torch.linalg.eigvalsh({0})", lambda a, UPLO: torch.linalg.eigvalsh(a), _with(UPLO="L")),
        _spelling("torch.linalg.eigh({0}, UPLO={UPLO})[0]", lambda a, UPLO: torch.linalg.eigh(a, UPLO=UPLO)[0]),
        _spelling("torch.linalg.eigh({0}).eigenvalues", lambda a, UPLO: torch.linalg.eigh(a).eigenvalues,
                  _with(UPLO="L"))],
       _eigvalsh_forward, _eigvalsh_backward, _eigvalsh_exact, ["linalg.eigvalsh", "linalg.eigh"],
       "symmetric_separated", _square_operands, _uplo_options, lambda a: a[:-1])
_entry("eigh_vectors",
       [_spelling("torch.linalg.eigh({0}, UPLO={UPLO})[1]", lambda a, UPLO: torch.linalg.eigh(a, UPLO=UPLO)[1]),
        _spelling("torch.linalg.eigh({0}).eigenvectors", lambda a, UPLO: torch.linalg.eigh(a).eigenvectors,
                  _with(UPLO="L"))],
       _eigh_vectors_forward, _eigh_vectors_backward, _eigh_vectors_exact, ["linalg.eigh"],
       "symmetric_separated", _square_operands, _uplo_options, lambda a: a)
_entry("svdvals",
       [_spelling("torch.linalg.svdvals({0})", lambda a: torch.linalg.svdvals(a))],
       _svdvals_forward, _svdvals_backward, _svdvals_exact, ["linalg.svdvals"],
       "separated_singular", _svd_operands, _svd_options, lambda a: a[:-2] + (min(a[-2:]),))
