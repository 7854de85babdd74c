"""LU factorizations in the tensor-op table, one entry per output: the packed LU of linalg.lu_factor,
linalg.lu_factor_ex and torch.lu (L below the diagonal, U on and above it), and L and U of linalg.lu and of lu_unpack
(of lu_factor's result), of small square matrices of full rank (sides 2 and 3, batches of at most two), after torch's
kernel (getrf) and FunctionsManual.cpp (lu_factor_ex_backward, linalg_lu_backward, lu_unpack_backward).

Convention: the pivot sequence. Partial pivoting makes LU a function of A only piecewise (where two rows tie for the
largest magnitude the factors jump); torch's pivots are read from its own output (recomputed with the same call, as
the spectral entries read their signs) and both sides take that branch: A' = PᵀA (A's rows in torch's pivot order)
is L U without pivoting, a rational function of A. The forward model is the factorization model's branch with
those rows (oracles.table.factorizations: every branch partial pivoting may take where the balls cannot decide);
torch's pivots outside every branch would be a choice no largest-magnitude rule makes, and the model says so.

Exact: Doolittle's formulas on A' in ball arithmetic, and the differential from dA' = dL U + L dU: with
X = L⁻¹ dA' U⁻¹, dL = L tril(X, -1) (L⁻¹ dL is strictly lower) and dU = triu(X) U (dU U⁻¹ is upper).

torch's backward (linalg_lu_backward, m = n; lu_factor_ex_backward passes gL = gU = the packed LU's gradient,
linalg.lu's only the gradients of the outputs used; lu_unpack_backward packs tril(gL, -1) + triu(gU), exactly, into
lu_factor's): G = tril(Lᵀ gL, -1) + triu(gU Uᵀ); X Uᵀ = G (a lower triangular solve from the right);
Lᵀ Y = X (unit upper); gA = P Y, a permutation of rows (exact: each sum of P's products has one term, times 1).
"""

from __future__ import annotations

import numpy as np
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Undecided
from oracles.table import factorizations as lapack
from oracles.table import spectra
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO


def _operands(shape):
    c = min(max(shape[-1], 2), 3)
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    return [(lead + (c, c),)]


def _options(shapes):
    a = shapes[0]
    return [_params()] if len(a) in (2, 3) and a[-1] == a[-2] >= 2 else []


def _shape(a, p):
    return a


def _lu_factor(t: torch.Tensor):
    return torch.linalg.lu_factor(t)


def _torch_rows(F: RoundingModel, a: np.ndarray) -> dict[tuple[int, ...], tuple[int, ...]]:
    """Per matrix of the batch, the order of A's rows that torch's pivots (LAPACK's ipiv: row k swapped with row
    ipiv[k] - 1, in turn) put them in."""
    _, pivots = spectra.recomputed(F, a, _lu_factor)
    out = {}
    for b in spectra.batches(a):
        rows = list(range(a.shape[-1]))
        for k, swap in enumerate(spectra.at(pivots, b)):
            j = int(swap) - 1
            rows[k], rows[j] = rows[j], rows[k]
        out[b] = tuple(rows)
    return out


def _branch(F: RoundingModel, a: np.ndarray, rows: tuple[int, ...]) -> lapack.LU:
    """The factorization model's branch of A itself (getrf factors the matrix it returns, never Aᵀ) in torch's row
    order."""
    for lu in lapack._branches(F, a, transposed=False):
        if lu.rows == rows:
            return lu
    raise ValueError(f"torch's pivot order {rows} is not one partial pivoting may take on this matrix")


def _selected(output: str, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The output's matrix: LU packed (L below the diagonal, U on and above it), L or U."""
    if output == "L":
        return lower
    if output == "U":
        return upper
    n = lower.shape[0]
    out = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        out[i, j] = lower[i, j] if i > j else upper[i, j]
    return out


def _forward(output: str):
    def forward(F, arrays, p):
        a = arrays[0]
        out = spectra.obj(a.shape)
        for b, rows in _torch_rows(F, a).items():
            lu = _branch(F, a[b], rows)
            chosen = _selected(output, lu.lower, lu.upper)
            for index in np.ndindex(*chosen.shape):
                out[b + index] = chosen[index]
        return out

    return forward


def _zeros(n: int) -> np.ndarray:
    out = spectra.obj((n, n))
    for index in np.ndindex(n, n):
        out[index] = ZERO
    return out


def _backward(output: str):
    """linalg_lu_backward with the gradients of L and U torch passes: both the packed LU's gradient
    (lu_factor_ex_backward), or one of them, the other undefined and so left out of the sum (here an exact 0:
    its products and sums are exactly 0 in the model too)."""

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        n = a.shape[-1]
        ga = spectra.obj(a.shape)
        for b, rows in _torch_rows(F, a).items():
            lu = _branch(F, a[b], rows)
            g_lower = grad[b] if output in ("LU", "L") else _zeros(n)
            g_upper = grad[b] if output in ("LU", "U") else _zeros(n)
            from_lower = spectra.matmul(F, lu.lower.T, g_lower)
            from_upper = spectra.matmul(F, g_upper, lu.upper.T)
            core = spectra.obj((n, n))
            for i, j in np.ndindex(n, n):
                core[i, j] = from_lower[i, j] if i > j else from_upper[i, j]
            # X Uᵀ = G: U Xᵀ = Gᵀ; then Lᵀ Y = X with L's unit diagonal
            x = lapack.triangular_solve(F, lu.upper, core.T, upper=True).T
            y = lapack.triangular_solve(F, lu.lower.T, x, upper=True, unit=True)
            for i, r in enumerate(rows):
                for j in range(n):
                    ga[b + (r, j)] = y[i, j]
        return (ga,)

    return backward


# ------------------------------------------------------------------ the exact side
def _exact_factors(matrix: np.ndarray, rows: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """L and U of A' = A's rows in `rows` (Doolittle, no pivoting), in ball arithmetic."""
    n = matrix.shape[0]
    lower, upper = spectra.obj((n, n)), spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        lower[i, j] = arb(1) if i == j else ZERO
        upper[i, j] = ZERO
    for k in range(n):
        for j in range(k, n):
            upper[k, j] = matrix[rows[k], j] - sum((lower[k, t] * upper[t, j] for t in range(k)), ZERO)
        if upper[k, k].contains(0):
            raise Undecided("a pivot of torch's branch may be 0")
        for i in range(k + 1, n):
            lower[i, k] = (matrix[rows[i], k] - sum((lower[i, t] * upper[t, k] for t in range(k)), ZERO)) / upper[k, k]
    return lower, upper


def _triangular_inverse(t: np.ndarray, upper: bool) -> np.ndarray:
    """T⁻¹ of a triangular T by substitution in ball arithmetic."""
    n = t.shape[0]
    inverse = spectra.obj((n, n))
    for j in range(n):
        for i in (reversed(range(n)) if upper else range(n)):
            others = range(i + 1, n) if upper else range(i)
            rhs = arb(int(i == j)) - sum((t[i, s] * inverse[s, j] for s in others), ZERO)
            inverse[i, j] = rhs / t[i, i]
    return inverse


def _differential(output: str, lower, upper, lower_inverse, upper_inverse, i: int, b: int) -> np.ndarray:
    """d of the output (packed LU, L or U) for dA' = e_i e_bᵀ (module docstring)."""
    n = lower.shape[0]
    x = [[lower_inverse[s, i] * upper_inverse[b, t] for t in range(n)] for s in range(n)]
    out = spectra.obj((n, n))
    for s, t in np.ndindex(n, n):
        if s > t and output != "U":  # (L tril(X, -1))_st
            out[s, t] = sum((lower[s, m] * x[m][t] for m in range(t + 1, s + 1)), ZERO)
        elif s <= t and output != "L":  # (triu(X) U)_st
            out[s, t] = sum((x[s][m] * upper[m, t] for m in range(s, t + 1)), ZERO)
        else:  # L's unit diagonal and zeros, U's zeros
            out[s, t] = ZERO
    return out


def _exact(output: str):
    def exact(fmt, arrays, p):
        a = arrays[0]
        n = a.shape[-1]
        factors = {b: (rows, *_exact_factors(a[b], rows)) for b, rows in _torch_rows(RoundingModel(fmt), a).items()}
        value = spectra.obj(a.shape)
        for b, (_, lower, upper) in factors.items():
            chosen = _selected(output, lower, upper)
            for index in np.ndindex(n, n):
                value[b + index] = chosen[index]

        def pullback(adjoint):
            ga = spectra.obj(a.shape)
            for b, (rows, lower, upper) in factors.items():
                lower_inverse = _triangular_inverse(lower, upper=False)
                upper_inverse = _triangular_inverse(upper, upper=True)
                g = adjoint[b]
                for i, column in np.ndindex(n, n):
                    d = _differential(output, lower, upper, lower_inverse, upper_inverse, i, column)
                    ga[b + (rows[i], column)] = sum((g[index] * d[index] for index in np.ndindex(n, n)), ZERO)
            return [ga]

        return value, pullback

    return exact


# ------------------------------------------------------------------ the entries
def _unpacked(k: int, name: str):
    """linalg.lu's output k, and lu_unpack's of lu_factor (P, L, U: the same factors from the same getrf)."""
    return [
        _spelling(f"torch.linalg.lu({{0}})[{k}]", lambda a: torch.linalg.lu(a)[k]),
        _spelling(f"torch.linalg.lu({{0}}).{name}", lambda a: getattr(torch.linalg.lu(a), name)),
        _spelling(f"torch.lu_unpack(*torch.linalg.lu_factor({{0}}))[{k}]",
                  lambda a: torch.lu_unpack(*torch.linalg.lu_factor(a))[k]),
        _spelling(f"torch.lu_unpack(*torch.linalg.lu_factor({{0}})).{name}",
                  lambda a: getattr(torch.lu_unpack(*torch.linalg.lu_factor(a)), name)),
    ]


_SPELLINGS = {
    "LU": [
        _spelling("torch.linalg.lu_factor({0})[0]", lambda a: torch.linalg.lu_factor(a)[0]),
        _spelling("torch.linalg.lu_factor({0}).LU", lambda a: torch.linalg.lu_factor(a).LU),
        _spelling("torch.linalg.lu_factor_ex({0}).LU", lambda a: torch.linalg.lu_factor_ex(a).LU),
        _spelling("torch.lu({0})[0]", lambda a: torch.lu(a)[0]),
        _spelling("{0}.lu()[0]", lambda a: a.lu()[0]),
    ],
    "L": _unpacked(1, "L"),
    "U": _unpacked(2, "U"),
}
_NAMES = {"LU": "lu_factor", "L": "lu_l", "U": "lu_u"}
_OPINFO = {"LU": ["linalg.lu_factor", "linalg.lu_factor_ex", "lu"], "L": ["linalg.lu", "lu_unpack"],
           "U": ["linalg.lu", "lu_unpack"]}

for _output, _name in _NAMES.items():
    spectra.entry(_name, _SPELLINGS[_output], _forward(_output), _backward(_output), _exact(_output), _OPINFO[_output],
                  "separated_singular", _operands, _options, _shape)
