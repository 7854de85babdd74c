"""QR decompositions in the tensor-op table, one entry per output: Q and R of linalg.qr and qr (modes 'reduced' and,
where it is the same function, 'complete') of small full-rank matrices (sides 2 and 3, square or not, batches of
at most two), after torch's kernels (geqrf, orgqr) and FunctionsManual.cpp (linalg_qr_backward).

As for the spectral entries (oracles.table.spectra): the exact values and VJPs are rigorous arb enclosures
(`TensorOp.exact_vjp`), and the rounding model evaluates torch's backward formula in ball arithmetic over the hull
of LAPACK's factors (recomputed with the same call) and the exact ones; the matrices are drawn of full rank by
construction (strategies/spectra.py, "separated_singular"); a wide one needs its leading square block invertible
too, which the drawn rotations give except on a set of measure zero (there the exact side says `Singular`).

Conventions:
- signs: A = QR is unique once the signs of R's diagonal are fixed; Householder QR leaves them to the data, and the
  exact side takes torch's (Q D, D R with D = diag(sign(R̂_kk))), the derivative of that branch;
- mode 'complete' of a tall matrix adds columns to Q that are no function of A (torch refuses to differentiate
  it); for m <= n it is the reduced decomposition, and only there is it drawn.

Exact: Gram-Schmidt in ball arithmetic (R_jj = ‖a_j - Σ_{i<j} (q_i·a_j) q_i‖, q_j the normalized remainder), and the
differential from first principles: for m >= n, with X = Qᵀ dA R⁻¹ (its strictly lower part is that of the skew
Ω = Qᵀ dQ, since dR R⁻¹ is upper triangular), Ω = tril(X, -1) - tril(X, -1)ᵀ, dR = (X - Ω) R and
dQ = dA R⁻¹ - Q (X - Ω); for m < n, Q and R₁ come from the leading m x m block A₁ (X₁ = Qᵀ dA₁ R₁⁻¹, Ω as above),
dQ = Q Ω and dR = Qᵀ dA - Ω R.

torch's backward (linalg_qr_backward): G = gR Rᵀ (R only) or -Qᵀ gQ (Q only); for m >= n,
gA = (Q sym(triu(G)) [+ gQ]) R⁻ᵀ (sym: the upper triangle mirrored, its diagonal kept: exact), a triangular solve;
for m < n, gA = [Q tril(-G + Gᵀ) R₁⁻ᵀ, 0] [+ Q gR].
"""

from __future__ import annotations

import numpy as np
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Undecided
from oracles.table import factorizations as lapack
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO, is_exact_zero
from oracles.table.tensor_ops import kept_by_this_torch

OUTPUTS = ("Q", "R")


def _operands(shape):
    c = min(max(shape[-1], 2), 3)
    sides = [(c, c)] + [(m, n) for m, n in ((c + 1, c), (c, c + 1), (c - 1, c), (c, c - 1))
                        if min(m, n) >= 2 and max(m, n) <= 3]
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    return [(lead + side,) for side in sides]


def _options(shapes):
    a = shapes[0]
    if len(a) not in (2, 3) or min(a[-2:]) < 2:
        return []
    return [_params(mode=mode) for mode in ("reduced", "complete") if mode == "reduced" or a[-2] <= a[-1]]


def _shape(output: str):
    def shape(a, p):
        m, n = a[-2:]
        k = min(m, n)
        return a[:-2] + ((m, k) if output == "Q" else (k, n))

    return shape


def _qr(t: torch.Tensor, mode: str):
    return torch.linalg.qr(t, mode=mode)


def _torch_qr(F: RoundingModel, a: np.ndarray, mode: str):
    return spectra.recomputed(F, a, _qr, mode)


def _dot(x: list[arb], y: list[arb]) -> arb:
    return sum((u * v for u, v in zip(x, y)), ZERO)


def _exact_qr(matrix: np.ndarray, torch_r) -> tuple[np.ndarray, np.ndarray]:
    """Q (m x k) and R (k x n) of Gram-Schmidt in ball arithmetic, R's diagonal signs torch's."""
    m, n = matrix.shape
    k = min(m, n)
    columns = [[matrix[i, j] for i in range(m)] for j in range(n)]
    q: list[list[arb]] = []
    r = spectra.obj((k, n))
    for j in range(n):
        for i in range(k):
            r[i, j] = _dot(q[i], columns[j]) if i < min(j, k) else ZERO
        if j < k:
            remainder = [columns[j][t] - sum((r[i, j] * q[i][t] for i in range(j)), ZERO) for t in range(m)]
            norm = _dot(remainder, remainder).sqrt()
            if not norm > 0:
                raise Undecided("a column may depend on the columns before it (R's diagonal may be 0)")
            sign = 1 if torch_r[j][j] > 0 else -1  # torch's sign of R_jj (never 0 where the exact norm is not)
            r[j, j] = sign * norm
            q.append([sign * x / norm for x in remainder])
    for j in range(k, n):
        for i in range(k):
            r[i, j] = _dot(q[i], columns[j])
    qm = spectra.obj((m, k))
    for t, i in np.ndindex(m, k):
        qm[t, i] = q[i][t]
    return qm, r


def _balls(F: RoundingModel, a: np.ndarray, p):
    """Per matrix: Q and R balls, hulls of torch's factors and the exact ones."""
    q, r = _torch_qr(F, a, p["mode"])
    out = {}
    for b in spectra.batches(a):
        tq, tr = spectra.at(q, b), spectra.at(r, b)
        eq, er = _exact_qr(a[b], tr)
        qb, rb = spectra.obj(eq.shape), spectra.obj(er.shape)
        for index in np.ndindex(*eq.shape):
            qb[index] = spectra.hull(tq[index[0]][index[1]], eq[index])
        for index in np.ndindex(*er.shape):
            rb[index] = ZERO if index[0] > index[1] else spectra.hull(tr[index[0]][index[1]], er[index])
        out[b] = qb, rb
    return out


def _forward(output: str):
    def forward(F, arrays, p):
        a = arrays[0]
        out = spectra.obj(_shape(output)(a.shape, p))
        for b, factors in _balls(F, a, p).items():
            value = factors[OUTPUTS.index(output)]
            for index in np.ndindex(*value.shape):
                out[b + index] = value[index]
        return out

    return forward


def _negated(x: np.ndarray) -> np.ndarray:
    out = spectra.obj(x.shape)
    for index in np.ndindex(*x.shape):
        out[index] = -x[index]
    return out


def _backward(output: str):
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        m, n = a.shape[-2:]
        ga = spectra.obj(a.shape)
        for b, (q, r) in _balls(F, a, p).items():
            g = grad[b]
            core = spectra.matmul(F, g, r.T) if output == "R" else _negated(spectra.matmul(F, q.T, g))
            k = core.shape[0]
            if m >= n:
                mirrored = spectra.obj((k, k))
                for i, j in np.ndindex(k, k):
                    mirrored[i, j] = core[min(i, j), max(i, j)]
                inner = spectra.matmul(F, q, mirrored)
                if output == "Q":
                    inner = _sum(F, inner, g)
                result = lapack.triangular_solve(F, r, inner.T, upper=True).T  # X Rᵀ = inner: R Xᵀ = innerᵀ
            else:
                skew = spectra.obj((k, k))
                for i, j in np.ndindex(k, k):
                    skew[i, j] = F.sub(core[j, i], core[i, j]) if i > j else ZERO
                inner = spectra.matmul(F, q, skew)
                solved = lapack.triangular_solve(F, r[:, :m], inner.T, upper=True).T
                result = spectra.obj((m, n))
                for i, j in np.ndindex(m, n):
                    result[i, j] = solved[i, j] if j < m else ZERO
                if output == "R":
                    result = _sum(F, result, spectra.matmul(F, q, g))
            for index in np.ndindex(m, n):
                ga[b + index] = result[index]
        return (ga,)

    return backward


def _sum(F: RoundingModel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = spectra.obj(x.shape)
    for index in np.ndindex(*x.shape):
        out[index] = y[index] if is_exact_zero(x[index]) else F.add(x[index], y[index])  # 0 + y is exact
    return out


# ------------------------------------------------------------------ the exact side
def _upper_inverse(r: np.ndarray) -> np.ndarray:
    """R⁻¹ of an upper triangular k x k R, by back substitution in ball arithmetic."""
    k = r.shape[0]
    inverse = spectra.obj((k, k))
    for j in range(k):
        for i in reversed(range(k)):
            rhs = arb(int(i == j)) - sum((r[i, t] * inverse[t, j] for t in range(i + 1, k)), ZERO)
            inverse[i, j] = rhs / r[i, i]
    return inverse


def _differentials(q: np.ndarray, r: np.ndarray):
    """Per element (a, b) of A: (dQ, dR) for dA = e_a e_bᵀ (module docstring)."""
    m, k = q.shape
    n = r.shape[1]
    r_inverse = _upper_inverse(r[:, :k])
    out = {}
    for a, b in np.ndindex(m, n):
        if m >= n or b < k:
            # X = Qᵀ e_a e_bᵀ R₁⁻¹ (zero where b is beyond the leading block of a wide A)
            x = [[q[a, i] * r_inverse[b, j] for j in range(k)] for i in range(k)]
        else:
            x = [[ZERO] * k for _ in range(k)]
        omega = [[x[i][j] if i > j else (-x[j][i] if i < j else ZERO) for j in range(k)] for i in range(k)]
        if m >= n:
            upper = [[x[i][j] - omega[i][j] for j in range(k)] for i in range(k)]
            dr = [[sum((upper[i][t] * r[t, j] for t in range(k)), ZERO) for j in range(n)] for i in range(k)]
            dq = [[(r_inverse[b, j] if i == a else ZERO) - sum((q[i, t] * upper[t][j] for t in range(k)), ZERO)
                   for j in range(k)] for i in range(m)]
        else:
            dq = [[sum((q[i, t] * omega[t][j] for t in range(k)), ZERO) for j in range(k)] for i in range(m)]
            dr = [[(q[a, i] if j == b else ZERO) - sum((omega[i][t] * r[t, j] for t in range(k)), ZERO)
                   for j in range(n)] for i in range(k)]
        out[a, b] = dq, dr
    return out


def _exact(output: str):
    def exact(fmt, arrays, p):
        a = arrays[0]
        m, n = a.shape[-2:]
        _, r = _torch_qr(RoundingModel(fmt), a, p["mode"])
        factors = {b: _exact_qr(a[b], spectra.at(r, b)) for b in spectra.batches(a)}
        value = spectra.obj(_shape(output)(a.shape, p))
        for b, pair in factors.items():
            chosen = pair[OUTPUTS.index(output)]
            for index in np.ndindex(*chosen.shape):
                value[b + index] = chosen[index]

        def pullback(adjoint):
            ga = spectra.obj(a.shape)
            for b, (q, r) in factors.items():
                g = adjoint[b]
                for (i, j), (dq, dr) in _differentials(q, r).items():
                    d = dq if output == "Q" else dr
                    ga[b + (i, j)] = sum((g[index] * d[index[0]][index[1]] for index in np.ndindex(*g.shape)), ZERO)
            return [ga]

        return value, pullback

    return exact


# ------------------------------------------------------------------ the entries
_REDUCED = _with(mode="reduced")


_TORCH_QR = kept_by_this_torch(lambda: torch.qr(torch.eye(1)))


def _spellings(output: str):
    k = OUTPUTS.index(output)
    deprecated = [
        _spelling(f"torch.qr({{0}})[{k}]", lambda a, mode: torch.qr(a)[k], _REDUCED),
        _spelling(f"torch.qr({{0}}, some=False)[{k}]", lambda a, mode: torch.qr(a, some=False)[k],
                  _with(mode="complete")),
        _spelling(f"{{0}}.qr().{output}", lambda a, mode: getattr(a.qr(), output), _REDUCED),
    ]
    return [
        _spelling(f"torch.linalg.qr({{0}}, mode={{mode}})[{k}]", lambda a, mode: torch.linalg.qr(a, mode=mode)[k]),
        _spelling(f"torch.linalg.qr({{0}}).{output}", lambda a, mode: getattr(torch.linalg.qr(a), output), _REDUCED),
    ] + (deprecated if _TORCH_QR else [])


for _output in OUTPUTS:
    spectra.entry(f"qr_{_output.lower()}", _spellings(_output), _forward(_output), _backward(_output),
                  _exact(_output), ["linalg.qr", "qr"], "separated_singular", _operands, _options, _shape(_output))
