"""LAPACK's LU and Cholesky factorizations and triangular solves in the rounding model, for the linear-algebra
entries of the tensor-op table (oracles.table.linalg_ops).

torch evaluates det, slogdet, inv and solve through an LU factorization with partial pivoting (getrf on the
CPU, in MKL's or OpenBLAS's blocked, recursive or unblocked form, with or without FMA) and triangular solves
(getrs, trsm). Every such variant computes the same elements from the same formulas,

    u_kj = a'_kj - Σ_{m<k} l_km u_mj              (k <= j)
    l_ik = (a'_ik - Σ_{m<k} l_im u_mk) / u_kk     (i > k)

with a' the matrix's rows in pivot order, and they differ only in the order of the sums and the number of
roundings. Whatever the order (right-looking updates a_ij -= l_ik u_kj rounded one at a time, a Crout dot
product, a blocked GEMM update), a computed sum of t terms is their exact sum within (t - 1)·u·Σ|terms| (each of
the t - 1 additions errs by at most u times a partial sum, and a partial sum is at most Σ|terms|), and each
product l·u within u·|l·u| (`sum_any` of `mul`); an FMA only leaves roundings out. A quotient is a division or
(dgetf2, dgetrf2, OpenBLAS's trsm kernels) a product with the rounded reciprocal, whose relative error
(1 + u)² - 1 is below 3u (`_quotient`). The operands of each formula are themselves computed values, inside
the balls of the earlier steps, so every element's ball holds torch's value (Cholesky likewise, its square
roots correctly rounded): this is the componentwise
backward-error analysis of LU and of substitution (Higham, Accuracy and Stability of Numerical Algorithms, 2nd
ed., Thm 9.3 and Thm 8.5: L̂Û = A' + ΔA with |ΔA| <= γ_n |L̂||Û|), carried out element by element in ball
arithmetic at the exact inputs instead of bounded once a priori, so its enclosure is as tight as the
conditioning of the point allows and needs no constant chosen by hand.

Partial pivoting takes at step k a row whose |a^(k)_ik| is largest (idamax: the first of equal ones). The
model follows that choice where the balls decide it; where several rows may be the largest it follows each,
and every result is the union over the branches (`factorizations`). A pivot whose ball holds 0 is `Singular`.
torch factors Aᵀ rather than A where A is contiguous and real (one copy fewer; _linalg_det, _linalg_slogdet,
_linalg_solve_ex) and solves with the adjoint; the branches cover both orientations, so the model holds for
either. Tensors here are square numpy object arrays of balls, one matrix (a batch is handled by the caller).

What the model assumes of the library, and so what a 'verified' rests on: the factors are computed by these
formulas (every LAPACK variant of getrf and potrf does), pivots are chosen by largest magnitude, and triangular
solves substitute (reference trsm and the small-matrix kernels of OpenBLAS and MKL do). A trsm that inverted
diagonal blocks and multiplied by the inverses (some GPU libraries, for large blocks) forms other intermediates
and would need a model of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table.tensor_formulas import ZERO, is_exact_zero, mul, sum_any

# A division, or a product with the rounded reciprocal: (1 + u)^2 - 1 = 2u + u^2 < 3u.
K_QUOTIENT = 3


def _quotient(F: RoundingModel, numerator: arb, denominator: arb) -> arb:
    """numerator / denominator as LAPACK forms it; exactly 0 for an exact 0 (0 / x and 0 · (1 / x) are 0)."""
    if denominator.contains(0):
        raise Singular("a pivot or diagonal element may be 0 within the rounding model")
    if is_exact_zero(numerator):
        return ZERO
    return F.round(numerator / denominator, K_QUOTIENT)


def _reduced(F: RoundingModel, first: arb, pairs) -> arb:
    """first - Σ x·y, in any order, each product and addition rounded (module docstring)."""
    return sum_any(F, [first] + [-mul(F, x, y) for x, y in pairs])


@dataclass(frozen=True)
class LU:
    """One way torch's factorization of a matrix M may have gone: M's rows in the order `rows` are L·U, with
    L unit lower triangular (`lower`: below the diagonal) and U upper triangular (`upper`), balls."""

    rows: tuple[int, ...]
    lower: np.ndarray
    upper: np.ndarray
    transposed: bool  # M is Aᵀ (torch's choice for a contiguous A), else A

    @property
    def parity(self) -> int:
        """The sign of the row permutation (torch's lu_det_P)."""
        rows, sign = list(self.rows), 1
        for i in range(len(rows)):
            while rows[i] != i:
                j = rows[i]
                rows[i], rows[j] = rows[j], rows[i]
                sign = -sign
        return sign

    def diagonal(self) -> list[arb]:
        return [self.upper[k, k] for k in range(len(self.rows))]


def _branches(F: RoundingModel, m: np.ndarray, transposed: bool) -> list[LU]:
    """Every pivot sequence partial pivoting may take on M, with its factors (Crout order: the model's
    sums do not depend on the order anyway)."""
    n = m.shape[0]
    done: list[LU] = []

    def step(k: int, rows: list[int], lower: dict[int, list[arb]], upper: list[list[arb]]):
        if k == n:
            low, up = np.empty((n, n), dtype=object), np.empty((n, n), dtype=object)
            for i in range(n):
                for j in range(n):
                    low[i, j] = lower[rows[i]][j] if j < i else (arb(1) if i == j else ZERO)
                    up[i, j] = upper[i][j] if j >= i else ZERO
            done.append(LU(tuple(rows), low, up, transposed))
            return
        remaining = [r for r in range(n) if r not in rows]
        column = {r: _reduced(F, m[r, k], [(lower[r][j], upper[j][k]) for j in range(k)]) for r in remaining}
        # a row may be chosen unless another row's entry is certainly larger in magnitude
        candidates = [r for r in remaining if not any(abs(column[s]) > abs(column[r]) for s in remaining)]
        for p in candidates:
            pivot = column[p]
            if pivot.contains(0):
                raise Singular("a pivot of the LU factorization may be 0 within the rounding model")
            row = [ZERO] * k + [pivot] + [_reduced(F, m[p, j], [(lower[p][i], upper[i][j]) for i in range(k)])
                                          for j in range(k + 1, n)]
            extended = {r: lower[r] + [_quotient(F, column[r], pivot)] for r in remaining if r != p}
            step(k + 1, rows + [p], {**lower, **extended, p: lower[p]}, upper + [row])

    step(0, [], {r: [] for r in range(n)}, [])
    return done


def factorizations(F: RoundingModel, a: np.ndarray) -> list[LU]:
    """Every LU factorization of A or of Aᵀ torch may have computed (module docstring)."""
    return _branches(F, a, False) + _branches(F, a.T, True)


def cholesky(F: RoundingModel, a: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = A from A's lower triangle (potrf 'L', in any of its variants: the same formulas, sums in
    any order): l_jj = sqrt(a_jj - Σ l_jk²), correctly rounded; l_ij = (a_ij - Σ l_ik l_jk) / l_jj."""
    n = a.shape[0]
    low = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(i + 1, n):
            low[i, j] = ZERO
    for j in range(n):
        d = _reduced(F, a[j, j], [(low[j, k], low[j, k]) for k in range(j)])
        if not d > 0:
            raise Singular("a Cholesky pivot may be <= 0 within the rounding model")
        low[j, j] = F.round(d.sqrt())
        for i in range(j + 1, n):
            low[i, j] = _quotient(F, _reduced(F, a[i, j], [(low[i, k], low[j, k]) for k in range(j)]), low[j, j])
    return low


def _lower_solve(F: RoundingModel, entry, b: list[arb], unit: bool) -> list[arb]:
    """Forward substitution with the lower triangular T (entry(i, j) = T_ij)."""
    y: list[arb] = []
    for i in range(len(b)):
        s = _reduced(F, b[i], [(entry(i, j), y[j]) for j in range(i)])
        y.append(s if unit else _quotient(F, s, entry(i, i)))
    return y


def _upper_solve(F: RoundingModel, entry, b: list[arb], unit: bool) -> list[arb]:
    """Back substitution with the upper triangular T."""
    n = len(b)
    x: list[arb] = [ZERO] * n
    for i in reversed(range(n)):
        s = _reduced(F, b[i], [(entry(i, j), x[j]) for j in range(i + 1, n)])
        x[i] = s if unit else _quotient(F, s, entry(i, i))
    return x


def _lu_solve(F: RoundingModel, lu: LU, b: list[arb], adjoint: bool) -> list[arb]:
    """M x = b (getrs 'N': permute, L, then U) or Mᵀ x = b (getrs 'T': Uᵀ, Lᵀ, then permute back)."""
    low, up = lu.lower, lu.upper
    if not adjoint:
        y = _lower_solve(F, lambda i, j: low[i, j], [b[r] for r in lu.rows], unit=True)
        return _upper_solve(F, lambda i, j: up[i, j], y, unit=False)
    z = _lower_solve(F, lambda i, j: up[j, i], b, unit=False)
    w = _upper_solve(F, lambda i, j: low[j, i], z, unit=True)
    x: list[arb] = [ZERO] * len(b)
    for i, r in enumerate(lu.rows):
        x[r] = w[i]
    return x


def solve(F: RoundingModel, lu: LU, b: np.ndarray, transpose: bool = False) -> np.ndarray:
    """X with A X = B (`transpose`: Aᵀ X = B) for B of shape (n,) or (n, k), from a factorization of A or of
    Aᵀ: the solve of M or of Mᵀ that this asks for."""
    adjoint = lu.transposed != transpose
    columns = b.reshape(b.shape[0], -1)
    out = np.empty(columns.shape, dtype=object)
    for c in range(columns.shape[1]):
        out[:, c] = _lu_solve(F, lu, list(columns[:, c]), adjoint)
    return out.reshape(b.shape)


def triangular_solve(F: RoundingModel, t: np.ndarray, b: np.ndarray, upper: bool, unit: bool = False
                     ) -> np.ndarray:
    """X with T X = B for the triangle of T that `upper` names (trsm: the other triangle is not read)."""
    columns = b.reshape(b.shape[0], -1)
    out = np.empty(columns.shape, dtype=object)
    substitute = _upper_solve if upper else _lower_solve
    for c in range(columns.shape[1]):
        out[:, c] = substitute(F, lambda i, j: t[i, j], list(columns[:, c]), unit)
    return out.reshape(b.shape)


def matmul(F: RoundingModel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A B for matrices, each entry a dot product in any order (a GEMM, FMA or not)."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = sum_any(F, [mul(F, a[i, k], b[k, j]) for k in range(a.shape[1])])
    return out


def union(arrays: list[np.ndarray]) -> np.ndarray:
    """Elementwise, a ball holding each array's ball (torch took one of the branches)."""
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        ball = arrays[0][index]
        for other in arrays[1:]:
            ball = ball.union(other[index])
        out[index] = ball
    return out
