"""Singular value decompositions in the tensor-op table, one entry per output: the singular values
(linalg.svdvals, and S of linalg.svd and svd), the left singular vectors U and the right ones Vh (or svd's V) of
small full-rank matrices (sides 2 and 3, square or not, batches of at most two), after torch's kernels and
FunctionsManual.cpp (svd_backward).

As for the eigen-decompositions (oracles.table.spectra): the exact values and VJPs are rigorous arb enclosures
(`TensorOp.exact_vjp`), the rounding model evaluates svd_backward in ball arithmetic over the hull of LAPACK's
factors (gesdd, recomputed with the same call) and the exact ones, and the matrices are drawn with distinct
positive singular values by construction (strategies/spectra.py).

Conventions:
- signs: each pair (u_k, v_k) is defined up to a common sign; the exact side takes torch's (`spectra.aligned`);
- full_matrices=True: U and Vh have columns (rows) beyond min(m, n) that are no function of A (any orthonormal
  completion); torch narrows them away in the backward. The entries of U and Vh take full_matrices=True only for
  square matrices, where nothing is beyond; singular values take it for every shape (their gradient reads the
  first min(m, n) columns only).

torch's backward formulas (svd_backward, k = min(m, n), E_jk = S_k² - S_j² off the diagonal and 1 on it):
- S only: gA = U @ (gS.unsqueeze(-1) * Vh) where m >= n, else (U * gS.unsqueeze(-2)) @ Vh;
- U only: W = Uᵀ gU - (Uᵀ gU)ᵀ; R = (W / E) * S.unsqueeze(-2); where m > n, gA = (U @ R + gU / S - U @ (Uᵀ @
  (gU / S))) @ Vh, else U @ (R @ Vh) (m = n) or (U @ R) @ Vh (m < n);
- Vh only: W = Vh gVhᵀ - (Vh gVhᵀ)ᵀ; R = S.unsqueeze(-1) * (W / E); where m < n, gA = U @ (R @ Vh + gVh / S -
  ((gVh / S) @ Vhᵀ) @ Vh), else U @ (R @ Vh).
The exact side differentiates A = U S Vᵀ from first principles instead: with dP = Uᵀ dA V, the skew Ω_U = Uᵀ dU and
Ω_V = Vᵀ dV are (Ω_U)_jk = (dP_jk s_k + s_j dP_kj) / (s_k² - s_j²), (Ω_V)_jk = (s_j dP_jk + dP_kj s_k) / (s_k² - s_j²),
and dU = U Ω_U + (I - UUᵀ) dA V S⁻¹ (m > n), dV = V Ω_V + (I - VVᵀ) dAᵀ U S⁻¹ (m < n), per element of A
(`_differentials`); the VJP is ⟨G, dU⟩ (⟨G, dV⟩) over them. Singular values: Σ_k gS_k u_k v_kᵀ.
"""

from __future__ import annotations

import numpy as np
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO, mul, sum_any

OUTPUTS = ("S", "U", "Vh")


def _operands(shape):
    """From a drawn last side c (2 or 3): c x c and the rectangles with sides 2 and 3, or a batch of them."""
    c = min(max(shape[-1], 2), 3)
    sides = [(c, c)] + [(m, n) for m, n in ((c + 1, c), (c, c + 1), (c - 1, c), (c, c - 1))
                        if min(m, n) >= 2 and max(m, n) <= 3]
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    return [(lead + side,) for side in sides]


def _options(output: str):
    """full_matrices (for U and Vh only on square matrices); for Vh, whether the output is svd's V = Vhᵀ."""

    def options(shapes):
        a = shapes[0]
        if len(a) not in (2, 3) or min(a[-2:]) < 2:
            return []
        fulls = (False, True) if output == "S" or a[-1] == a[-2] else (False,)
        transposed = (False, True) if output == "Vh" else (False,)
        return [_params(full_matrices=full, V=v) for full in fulls for v in transposed]

    return options


def _shape(output: str):
    def shape(a, p):
        m, n = a[-2:]
        k = min(m, n)
        return a[:-2] + {"S": (k,), "U": (m, k), "Vh": (n, k) if p["V"] else (k, n)}[output]

    return shape


def _gesdd(t: torch.Tensor, full_matrices: bool):
    u, s, vh = torch.linalg.svd(t, full_matrices=full_matrices)
    k = s.shape[-1]
    return u[..., :k], s, vh[..., :k, :], torch.linalg.svdvals(t)


def _torch_svd(F: RoundingModel, a: np.ndarray, full_matrices: bool):
    """torch's U (first k columns), S, Vh (first k rows) as linalg.svd computes them (gesdd; autograd saves these
    and narrows them), and S as svdvals of a tensor that needs no gradient computes it (no vectors)."""
    return spectra.recomputed(F, a, _gesdd, full_matrices)


def _exact_svd(matrix: np.ndarray, torch_u, torch_vh):
    """(σ, u_k, v_k), each pair with the sign of torch's: v_k aligned with Vh's row k where A is tall (u_k = A v_k
    / σ_k follows), u_k with U's column k where it is wide."""
    sigmas, us, vs = spectra.singular_triples(matrix)
    m, n = matrix.shape
    for k in range(len(sigmas)):
        sign = (spectra.sign_towards(vs[k], torch_vh[k]) if m >= n
                else spectra.sign_towards(us[k], [torch_u[i][k] for i in range(m)]))
        if sign < 0:
            us[k], vs[k] = [-x for x in us[k]], [-x for x in vs[k]]
    return sigmas, us, vs


def _balls(F: RoundingModel, a: np.ndarray, p):
    """Per matrix: (U, S, S as the forward may give it, Vh) balls: hulls of torch's factors and the exact ones."""
    u, s, vh, plain = _torch_svd(F, a, p["full_matrices"])
    m, n = a.shape[-2:]
    out = {}
    for b in spectra.batches(a):
        tu, ts, tvh, tplain = (spectra.at(x, b) for x in (u, s, vh, plain))
        sigmas, us, vs = _exact_svd(a[b], tu, tvh)
        k = len(sigmas)
        ub, vhb = spectra.obj((m, k)), spectra.obj((k, n))
        for i, j in np.ndindex(m, k):
            ub[i, j] = spectra.hull(tu[i][j], us[j][i])
        for j, i in np.ndindex(k, n):
            vhb[j, i] = spectra.hull(tvh[j][i], vs[j][i])
        sb = [spectra.hull(ts[j], sigmas[j]) for j in range(k)]
        out[b] = (ub, sb, [sb[j].union(arb(tplain[j])) for j in range(k)], vhb)
    return out


def _forward(output: str):
    def forward(F, arrays, p):
        a = arrays[0]
        out = spectra.obj(_shape(output)(a.shape, p))
        for b, (u, _, s, vh) in _balls(F, a, p).items():
            value = {"S": _vector(s), "U": u, "Vh": vh.T if p["V"] else vh}[output]
            for index in np.ndindex(*value.shape):
                out[b + index] = value[index]
        return out

    return forward


def _vector(values: list[arb]) -> np.ndarray:
    out = spectra.obj((len(values),))
    for i, v in enumerate(values):
        out[i] = v
    return out


def _gaps(F: RoundingModel, s: list[arb]) -> np.ndarray:
    """E_jk = S_k² - S_j² (each square and the difference rounded), 1 on the diagonal."""
    squares = [mul(F, x, x) for x in s]
    k = len(s)
    e = spectra.obj((k, k))
    for j, i in np.ndindex(k, k):
        e[j, i] = arb(1) if i == j else F.sub(squares[i], squares[j])
        if e[j, i].contains(0):
            raise Singular("two singular values may be equal within the rounding model")
    return e


def _skew(F: RoundingModel, w: np.ndarray) -> np.ndarray:
    """W - Wᵀ: each difference rounded, the diagonal exactly 0."""
    out = spectra.obj(w.shape)
    for j, i in np.ndindex(*w.shape):
        out[j, i] = ZERO if i == j else F.sub(w[j, i], w[i, j])
    return out


def _elementwise(function, *arrays) -> np.ndarray:
    out = spectra.obj(arrays[0].shape)
    for index in np.ndindex(*out.shape):
        out[index] = function(index, *(x[index] for x in arrays))
    return out


def _s_backward(F, u, s, vh, g, m, n):
    if m >= n:
        return spectra.matmul(F, u, _elementwise(lambda ji, x: mul(F, g[ji[0]], x), vh))
    return spectra.matmul(F, _elementwise(lambda ij, x: mul(F, x, g[ij[1]]), u), vh)


def _u_backward(F, u, s, vh, g, m, n):
    e = _gaps(F, s)
    w = _skew(F, spectra.matmul(F, u.T, g))
    r = _elementwise(lambda jk, x, y: mul(F, F.div(x, y), s[jk[1]]), w, e)
    if m > n:
        scaled = _elementwise(lambda ik, x: F.div(x, s[ik[1]]), g)
        projected = spectra.matmul(F, u, spectra.matmul(F, u.T, scaled))
        inner = _elementwise(lambda ik, x, y, z: F.sub(F.add(x, y), z), spectra.matmul(F, u, r), scaled, projected)
        return spectra.matmul(F, inner, vh)
    if m == n:
        return spectra.matmul(F, u, spectra.matmul(F, r, vh))
    return spectra.matmul(F, spectra.matmul(F, u, r), vh)


def _vh_backward(F, u, s, vh, g, m, n):
    e = _gaps(F, s)
    w = _skew(F, spectra.matmul(F, vh, g.T))
    r = _elementwise(lambda jk, x, y: mul(F, s[jk[0]], F.div(x, y)), w, e)
    if m < n:
        scaled = _elementwise(lambda ki, x: F.div(x, s[ki[0]]), g)
        projected = spectra.matmul(F, spectra.matmul(F, scaled, vh.T), vh)
        inner = _elementwise(lambda ki, x, y, z: F.sub(F.add(x, y), z), spectra.matmul(F, r, vh), scaled, projected)
        return spectra.matmul(F, u, inner)
    return spectra.matmul(F, u, spectra.matmul(F, r, vh))


_BACKWARDS = {"S": _s_backward, "U": _u_backward, "Vh": _vh_backward}


def _backward(output: str):
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        m, n = a.shape[-2:]
        ga = spectra.obj(a.shape)
        for b, (u, s, _, vh) in _balls(F, a, p).items():
            g = grad[b]
            g = [g[j] for j in range(len(s))] if output == "S" else (g.T if p["V"] else g)
            result = _BACKWARDS[output](F, u, s, vh, g, m, n)
            for index in np.ndindex(m, n):
                ga[b + index] = result[index]
        return (ga,)

    return backward


# ------------------------------------------------------------------ the exact side
def _differentials(shape, sigmas, us, vs):
    """Per element (a, b) of A: (dU, dV) for dA = e_a e_bᵀ, dU[i][k] = ∂u_k[i]/∂A_ab (module docstring)."""
    m, n = shape
    k = len(sigmas)
    out = {}
    for a, b in np.ndindex(m, n):
        dp = [[us[j][a] * vs[c][b] for c in range(k)] for j in range(k)]
        gap = [[sigmas[c] ** 2 - sigmas[j] ** 2 for c in range(k)] for j in range(k)]
        omega_u = [[ZERO if j == c else (dp[j][c] * sigmas[c] + sigmas[j] * dp[c][j]) / gap[j][c]
                    for c in range(k)] for j in range(k)]
        omega_v = [[ZERO if j == c else (sigmas[j] * dp[j][c] + dp[c][j] * sigmas[c]) / gap[j][c]
                    for c in range(k)] for j in range(k)]
        du = [[sum((us[j][i] * omega_u[j][c] for j in range(k)), ZERO) for c in range(k)] for i in range(m)]
        dv = [[sum((vs[j][i] * omega_v[j][c] for j in range(k)), ZERO) for c in range(k)] for i in range(n)]
        if m > n:
            for i, c in np.ndindex(m, k):
                outside = (arb(int(i == a)) - sum((us[j][i] * us[j][a] for j in range(k)), ZERO)) * vs[c][b]
                du[i][c] += outside / sigmas[c]
        if m < n:
            for i, c in np.ndindex(n, k):
                outside = (arb(int(i == b)) - sum((vs[j][i] * vs[j][b] for j in range(k)), ZERO)) * us[c][a]
                dv[i][c] += outside / sigmas[c]
        out[a, b] = du, dv
    return out


def _exact(output: str):
    """The output's value and VJP: Σ_k gS_k u_k v_kᵀ for S, ⟨G, ∂U/∂A_ab⟩ and ⟨G, ∂V/∂A_ab⟩ for the vectors."""

    def exact(fmt, arrays, p):
        a = arrays[0]
        m, n = a.shape[-2:]
        if output == "S":
            triples = {b: spectra.singular_triples(a[b]) for b in spectra.batches(a)}
        else:
            u, _, vh, _ = _torch_svd(RoundingModel(fmt), a, p["full_matrices"])
            triples = {b: _exact_svd(a[b], spectra.at(u, b), spectra.at(vh, b)) for b in spectra.batches(a)}
        value = spectra.obj(_shape(output)(a.shape, p))
        for b, (sigmas, us, vs) in triples.items():
            for index in np.ndindex(*value.shape[len(b):]):
                if output == "S":
                    value[b + index] = sigmas[index[0]]
                elif output == "U":
                    value[b + index] = us[index[1]][index[0]]
                else:
                    i, c = index if p["V"] else index[::-1]
                    value[b + index] = vs[c][i]

        def pullback(adjoint):
            ga = spectra.obj(a.shape)
            for b, (sigmas, us, vs) in triples.items():
                k = len(sigmas)
                if output == "S":
                    for i, j in np.ndindex(m, n):
                        ga[b + (i, j)] = sum((adjoint[b + (c,)] * us[c][i] * vs[c][j] for c in range(k)), ZERO)
                    continue
                g = adjoint[b]
                for (i, j), (du, dv) in _differentials((m, n), sigmas, us, vs).items():
                    if output == "U":
                        terms = (g[r, c] * du[r][c] for r, c in np.ndindex(m, k))
                    else:
                        terms = (g[(r, c) if p["V"] else (c, r)] * dv[r][c] for r, c in np.ndindex(n, k))
                    ga[b + (i, j)] = sum(terms, ZERO)
            return [ga]

        return value, pullback

    return exact


# ------------------------------------------------------------------ the entries
def _svd(full, output):
    """torch.linalg.svd(A, full_matrices=full)'s output (U, S, Vh by name)."""
    return lambda a, full_matrices, V: getattr(torch.linalg.svd(a, full_matrices=full), output)


def _legacy(output, some=True):
    """torch.svd(A, some)'s output (U, S, V by name)."""
    return lambda a, full_matrices, V: getattr(torch.svd(a, some=some), output)


_FULL, _REDUCED = _with(full_matrices=True), _with(full_matrices=False)
_spellings = {
    "S": [_spelling("torch.linalg.svdvals({0})", lambda a, full_matrices, V: torch.linalg.svdvals(a), _REDUCED),
          _spelling("torch.linalg.svd({0}, full_matrices={full_matrices})[1]",
                    lambda a, full_matrices, V: torch.linalg.svd(a, full_matrices=full_matrices)[1]),
          _spelling("torch.linalg.svd({0}).S", _svd(True, "S"), _FULL),
          _spelling("torch.svd({0})[1]", lambda a, full_matrices, V: torch.svd(a)[1], _REDUCED),
          _spelling("torch.svd({0}, some=False).S", _legacy("S", some=False), _FULL)],
    "U": [_spelling("torch.linalg.svd({0}, full_matrices={full_matrices})[0]",
                    lambda a, full_matrices, V: torch.linalg.svd(a, full_matrices=full_matrices)[0]),
          _spelling("torch.linalg.svd({0}).U", _svd(True, "U"), _FULL),
          _spelling("torch.svd({0})[0]", lambda a, full_matrices, V: torch.svd(a)[0], _REDUCED),
          _spelling("torch.svd({0}, some=False).U", _legacy("U", some=False), _FULL)],
    "Vh": [_spelling("torch.linalg.svd({0}, full_matrices={full_matrices})[2]",
                     lambda a, full_matrices, V: torch.linalg.svd(a, full_matrices=full_matrices)[2], _with(V=False)),
           _spelling("torch.linalg.svd({0}).Vh", _svd(True, "Vh"), _with(full_matrices=True, V=False)),
           _spelling("torch.svd({0})[2]", lambda a, full_matrices, V: torch.svd(a)[2],
                     _with(full_matrices=False, V=True)),
           _spelling("torch.svd({0}, some=False).V", _legacy("V", some=False), _with(full_matrices=True, V=True))],
}
_OPINFO = {"S": ["linalg.svdvals", "linalg.svd", "svd"], "U": ["linalg.svd", "svd"], "Vh": ["linalg.svd", "svd"]}

for _output, _name in zip(OUTPUTS, ("svdvals", "svd_u", "svd_vh")):
    spectra.entry(_name, _spellings[_output], _forward(_output), _backward(_output), _exact(_output), _OPINFO[_output],
                  "separated_singular", _operands, _options(_output), _shape(_output))


# ------------------------------------------------------------------ functions of the singular values
# matrix_norm with ord 2, -2 and 'nuc' (linalg_matrix_norm): amax, amin or sum of svdvals(A); cond with p None, 2 or
# -2 (linalg_cond): s_max / s_min or s_min / s_max of svdvals(A). Their backward is the reduction's or div's, then
# svd_backward with gS only (U @ (gS.unsqueeze(-1) * Vh)). amax and amin of distinct values pass the gradient to
# the one extremum unchanged (scale_grad_by_count: g / 1, times 1 or 0, exact), sum copies it; div's: grad / other
# for self and -grad * ((self / other) / other) for other.
def _ratio(top: int, bottom: int):
    """(value, its derivatives by σ) of σ_top / σ_bottom; torch's forward and gS (div's backward)."""

    def value(F, s):
        return F.div(s[top], s[bottom])

    def gs(F, s, g):
        out = [ZERO] * len(s)
        out[top] = F.div(g, s[bottom])
        out[bottom] = mul(F, -g, F.div(F.div(s[top], s[bottom]), s[bottom]))
        return out

    def exact(s):
        partials = [ZERO] * len(s)
        partials[top], partials[bottom] = 1 / s[bottom], -s[top] / s[bottom] ** 2
        return s[top] / s[bottom], partials

    return value, gs, exact


def _picked(k: int):
    """σ_k itself (amax: k = 0, amin: the last)."""

    def gs(F, s, g):
        return [g if j == k % len(s) else ZERO for j in range(len(s))]

    def exact(s):
        return s[k], [arb(int(j == k % len(s))) for j in range(len(s))]

    return (lambda F, s: s[k]), gs, exact


_NUCLEAR = (lambda F, s: sum_any(F, list(s)), lambda F, s, g: [g] * len(s),
            lambda s: (sum(s, ZERO), [arb(1)] * len(s)))


def _norm_function(p):
    ord_ = p["ord"]
    if p.get("kind") == "cond":
        return _ratio(-1, 0) if ord_ == -2 else _ratio(0, -1)
    return _NUCLEAR if ord_ == "nuc" else _picked(0 if ord_ == 2 else -1)


_SVDVALS = {"full_matrices": False}  # what svdvals computes (gesdd, reduced)


def _reduced_shape(a, p):
    return a[:-2] + ((1, 1) if p.get("keepdim") else ())


def _index(b, p):
    return b + ((0, 0) if p.get("keepdim") else ())


def _scalar_forward(F, arrays, p):
    a = arrays[0]
    value = _norm_function(p)[0]
    out = spectra.obj(_reduced_shape(a.shape, p))
    for b, (_, _, s, _) in _balls(F, a, _SVDVALS).items():
        out[_index(b, p)] = value(F, s)
    return out


def _scalar_backward(F, arrays, out, grad, p):
    a = arrays[0]
    m, n = a.shape[-2:]
    gs = _norm_function(p)[1]
    ga = spectra.obj(a.shape)
    for b, (u, s, _, vh) in _balls(F, a, _SVDVALS).items():
        result = _s_backward(F, u, s, vh, gs(F, s, grad[_index(b, p)]), m, n)
        for index in np.ndindex(m, n):
            ga[b + index] = result[index]
    return (ga,)


def _scalar_exact(fmt, arrays, p):
    a = arrays[0]
    exact = _norm_function(p)[2]
    triples = {b: spectra.singular_triples(a[b]) for b in spectra.batches(a)}
    value = spectra.obj(_reduced_shape(a.shape, p))
    partials = {}
    for b, (sigmas, _, _) in triples.items():
        value[_index(b, p)], partials[b] = exact(sigmas)

    def pullback(adjoint):
        ga = spectra.obj(a.shape)
        for b, (sigmas, us, vs) in triples.items():
            g = adjoint[_index(b, p)]
            for i, j in np.ndindex(*a.shape[-2:]):
                ga[b + (i, j)] = sum((g * partials[b][c] * us[c][i] * vs[c][j] for c in range(len(sigmas))), ZERO)
        return [ga]

    return value, pullback


def _norm_options(shapes):
    a = shapes[0]
    if len(a) not in (2, 3) or min(a[-2:]) < 2:
        return []
    return [_params(ord=o, keepdim=k) for o in (2, -2, "nuc") for k in (False, True)]


def _cond_options(shapes):
    a = shapes[0]
    if len(a) not in (2, 3) or min(a[-2:]) < 2:
        return []
    return [_params(kind="cond", ord=o) for o in (None, 2, -2)]


def _is_matrix(shapes, p):
    return len(shapes[0]) == 2 and not p["keepdim"]


spectra.entry(
    "spectral_norm",
    [_spelling("torch.linalg.matrix_norm({0}, ord={ord}, keepdim={keepdim})",
               lambda a, ord, keepdim: torch.linalg.matrix_norm(a, ord=ord, keepdim=keepdim)),
     _spelling("torch.linalg.norm({0}, ord={ord}, dim=(-2, -1), keepdim={keepdim})",
               lambda a, ord, keepdim: torch.linalg.norm(a, ord=ord, dim=(-2, -1), keepdim=keepdim)),
     _spelling("torch.linalg.norm({0}, ord={ord})", lambda a, ord, keepdim: torch.linalg.norm(a, ord=ord), _is_matrix),
     _spelling("torch.norm({0}, p='nuc', dim=(-2, -1), keepdim={keepdim})",
               lambda a, ord, keepdim: torch.norm(a, p="nuc", dim=(-2, -1), keepdim=keepdim), _with(ord="nuc")),
     _spelling("{0}.norm(p='nuc')", lambda a, ord, keepdim: a.norm(p="nuc"),
               lambda shapes, p: p["ord"] == "nuc" and _is_matrix(shapes, p))],
    _scalar_forward, _scalar_backward, _scalar_exact, ["linalg.matrix_norm", "linalg.norm", "norm[nuc]"],
    "separated_singular", _operands, _norm_options, _reduced_shape)
spectra.entry(
    "cond",
    [_spelling("torch.linalg.cond({0}, p={ord})", lambda a, kind, ord: torch.linalg.cond(a, p=ord)),
     _spelling("torch.linalg.cond({0})", lambda a, kind, ord: torch.linalg.cond(a), _with(ord=None))],
    _scalar_forward, _scalar_backward, _scalar_exact, ["linalg.cond"], "separated_singular", _operands,
    _cond_options, _reduced_shape)
