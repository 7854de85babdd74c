"""linalg.lu_solve and the older lu_solve in the tensor-op table: X with op(A) X = B (left) or X op(A) = B (right),
op(A) = A or Aᵀ (adjoint), where A = P L U is given by its packed LU factors (L unit lower triangular below the
diagonal, U upper triangular on and above it) and LAPACK's pivots, for small matrices (sides 1 to 3, batches of at
most two), after torch's kernel (getrs) and FunctionsManual.cpp (linalg_lu_solve_LU).

As in torch's OpInfo, the packed LU is a free input: gradients flow to every element of it (the strictly lower part
is L's, the rest U's) and to B; the pivots are a parameter (an int32 tensor, any sequence LAPACK's ipiv may hold: row
k swapped with row ipiv[k] - 1 >= k, in turn), not differentiated. The LU is drawn diagonally dominant (U's diagonal
away from 0: an invertible A).

The forward model is getrs (oracles.table.factorizations: permute, then the unit lower and the upper substitution,
or Uᵀ, Lᵀ and the permutation back for the adjoint); torch solves X A = B as Aᵀ Xᵀ = Bᵀ (the adjoint flipped).
The gradient of B is that solve of the gradient with the adjoint flipped (derivatives.yaml). linalg_lu_solve_LU, real
dtypes (mH = mT), P the permutation with A = P L U:
- left != adjoint: gR = U⁻ᵀ R with R = -(gX Xᵀ) (left) or -(gXᵀ X); gLU = tril(L⁻ᵀ (gR Uᵀ), -1) + triu(gR);
- left == adjoint: gR = -Pᵀ M P with M = X gXᵀ (left) or Xᵀ gX, then gR ← gR L⁻ᵀ (a unit triangular solve from the
  right) and gLU = tril(gR, -1) + triu((Lᵀ gR) U⁻ᵀ).
The products with P permute (exact), the triangular solves substitute (trsm, oracles.table.linalg_ops._trsm), the
matrix products are GEMMs (sums in any order).

Exact: A⁻¹ = U⁻¹ L⁻¹ Pᵀ by substitution in ball arithmetic, X from it, and the pullback derived by hand (not torch's
rearrangement): with S = op(A)⁻¹, gB = Sᵀ gX (left) or gX Sᵀ, g_op(A) = -gB Xᵀ (left) or -Xᵀ gB, gA its transpose
where op(A) = Aᵀ; then dA = P (dL U + L dU) gives gLU = tril(Pᵀ gA Uᵀ, -1) + triu(Lᵀ Pᵀ gA). The SymPy form (the
substitution formulas on symbols) is checked against it by tests/test_lu_solve_ops.py.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from flint import arb

from oracles.table import factorizations as lapack
from oracles.table import linalg_ops, spectra
from oracles.table.linalg_ops import FLOATS, _negated, _square, _triangular_operands, _trsm
from oracles.table.lu_ops import _triangular_inverse
from oracles.table.shape_ops import Indices, _nested, _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp


@dataclass(frozen=True, repr=False)  # the repr is the source text of the int32 tensor torch requires
class Pivots(Indices):
    """LAPACK's pivots (1-based), one row per matrix of a batch."""

    torch_dtype = torch.int32

    def __repr__(self) -> str:
        return f"torch.tensor({_nested(self.values)}, dtype=torch.int32)"


def _sequences(n: int) -> list[tuple[int, ...]]:
    """Every ipiv of an n x n getrf: row k swapped with a row at or below it, identity first."""
    return list(itertools.product(*[range(k + 1, n + 1) for k in range(n)]))


def rows(ipiv) -> tuple[int, ...]:
    """The order of A's rows that are L U's rows (A = P L U: A[rows[i]] = (L U)[i]), from the swaps in turn."""
    order = list(range(len(ipiv)))
    for k, swap in enumerate(ipiv):
        order[k], order[swap - 1] = order[swap - 1], order[k]
    return tuple(order)


def _options(shapes):
    if not _square(shapes[:1]):
        return []
    a, b = shapes
    n, batch = a[-1], a[:-2]
    if len(b) != len(a) or b[:-2] != batch:
        return []
    sides = [left for left in (True, False) if (b[-2] if left else b[-1]) == n]
    per_matrix = _sequences(n)
    pivots = [Pivots(tuple(choice[0]) if not batch else tuple(choice))
              for choice in itertools.product(per_matrix, repeat=max(1, int(np.prod(batch, dtype=int))))]
    return [_params(pivots=p, left=left, adjoint=adjoint)
            for left in sides for adjoint in (False, True) for p in pivots]


def _pivots_of(p, b: tuple[int, ...]) -> tuple[int, ...]:
    return spectra.at(p["pivots"].values, b)


# ------------------------------------------------------------------ the model
def _factors(a: np.ndarray, ipiv) -> lapack.LU:
    """The packed matrix's L (unit diagonal, zeros above) and U (zeros below) as the getrs model takes them."""
    n = a.shape[0]
    lower, upper = spectra.obj((n, n)), spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        lower[i, j] = a[i, j] if i > j else (arb(1) if i == j else ZERO)
        upper[i, j] = a[i, j] if i <= j else ZERO
    return lapack.LU(rows(ipiv), lower, upper, transposed=False)


def _getrs(F, lu: lapack.LU, b: np.ndarray, left: bool, adjoint: bool) -> np.ndarray:
    """op(A) X = B, or X op(A) = B as op(A)ᵀ Xᵀ = Bᵀ (torch flips the adjoint and transposes)."""
    if left:
        return lapack.solve(F, lu, b, transpose=adjoint)
    return lapack.solve(F, lu, b.T, transpose=not adjoint).T


def _per_matrix(function):
    """function(matrix index, LU, the other arguments' matrices) over a batch: its result, or each of its results,
    stacked."""

    def batched(a: np.ndarray, *others):
        pieces = [function(b, a[b], *[o[b] for o in others]) for b in spectra.batches(a)]
        if a.ndim == 2:
            return pieces[0]
        if isinstance(pieces[0], tuple):
            return tuple(linalg_ops._stack([piece[k] for piece in pieces]) for k in range(len(pieces[0])))
        return linalg_ops._stack(pieces)

    return batched


def _forward(F, arrays, p):
    return _per_matrix(lambda b, a, rhs: _getrs(F, _factors(a, _pivots_of(p, b)), rhs, p["left"], p["adjoint"]))(
        *arrays)


def _packed(lower_part: np.ndarray, upper_part: np.ndarray) -> np.ndarray:
    """tril(lower_part, -1) + triu(upper_part): one of the two is 0 at each place, so the sum is exact."""
    n = lower_part.shape[0]
    out = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        out[i, j] = lower_part[i, j] if i > j else upper_part[i, j]
    return out


def _lu_gradient(F, lu: lapack.LU, x: np.ndarray, g: np.ndarray, left: bool, adjoint: bool) -> np.ndarray:
    """linalg_lu_solve_LU (module docstring)."""
    low, up = lu.lower, lu.upper
    if left != adjoint:
        r = _negated(lapack.matmul(F, g, x.T) if left else lapack.matmul(F, g.T, x))
        g_r = _trsm(F, up.T, False, r, left=True, unit=False)
        g_l = _trsm(F, low.T, True, lapack.matmul(F, g_r, up.T), left=True, unit=True)
        return _packed(g_l, g_r)
    m = lapack.matmul(F, x, g.T) if left else lapack.matmul(F, x.T, g)
    order = lu.rows
    n = m.shape[0]
    permuted = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        permuted[i, j] = -m[order[i], order[j]]
    g_r = _trsm(F, low.T, True, permuted, left=False, unit=True)
    g_u = _trsm(F, up.T, False, lapack.matmul(F, low.T, g_r), left=False, unit=False)
    return _packed(g_r, g_u)


def _backward(F, arrays, out, grad, p):
    def per_matrix(b, a, x, g):
        lu = _factors(a, _pivots_of(p, b))
        return _lu_gradient(F, lu, x, g, p["left"], p["adjoint"]), _getrs(F, lu, g, p["left"], not p["adjoint"])

    return _per_matrix(per_matrix)(arrays[0], out, grad)


# ------------------------------------------------------------------ the exact side
def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = spectra.obj((x.shape[0], y.shape[1]))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = sum((x[i, k] * y[k, j] for k in range(x.shape[1])), ZERO)
    return out


def _exact_matrix(a: np.ndarray, ipiv, b: np.ndarray, left: bool, adjoint: bool):
    """(X, its pullback gX -> (gLU, gB)) for one matrix (module docstring)."""
    lu = _factors(a, ipiv)
    order, n = lu.rows, a.shape[0]
    product = _matmul(_triangular_inverse(lu.upper, upper=True), _triangular_inverse(lu.lower, upper=False))
    inverse = spectra.obj((n, n))  # A⁻¹ = U⁻¹ L⁻¹ Pᵀ: column rows[k] of A⁻¹ is column k of U⁻¹ L⁻¹
    for i, k in np.ndindex(n, n):
        inverse[i, order[k]] = product[i, k]
    s = inverse.T if adjoint else inverse
    x = _matmul(s, b) if left else _matmul(b, s)

    def pullback(g):
        gb = _matmul(s.T, g) if left else _matmul(g, s.T)
        g_op = _negated(_matmul(gb, x.T) if left else _matmul(x.T, gb))
        ga = g_op.T if adjoint else g_op
        permuted = spectra.obj((n, n))  # Pᵀ gA: row i is gA's row rows[i]
        for i, j in np.ndindex(n, n):
            permuted[i, j] = ga[order[i], j]
        return _packed(_matmul(permuted, lu.upper.T), _matmul(lu.lower.T, permuted)), gb

    return x, pullback


def _exact(fmt, arrays, p):
    a, b = arrays
    pieces = {m: _exact_matrix(a[m], _pivots_of(p, m), b[m], p["left"], p["adjoint"]) for m in spectra.batches(a)}
    value = pieces[()][0] if a.ndim == 2 else linalg_ops._stack([pieces[m][0] for m in spectra.batches(a)])

    def pullback(adjoint):
        grads = {m: pieces[m][1](adjoint[m]) for m in pieces}
        if a.ndim == 2:
            return list(grads[()])
        return [linalg_ops._stack([grads[m][k] for m in spectra.batches(a)]) for k in range(2)]

    return value, pullback


# ------------------------------------------------------------------ SymPy: the substitution formulas on symbols
def _sym_matrix(a: np.ndarray, ipiv, b: np.ndarray, left: bool, adjoint: bool) -> np.ndarray:
    """X of op(P L U) by SymPy's own Gaussian elimination (exact arithmetic: any correct solve is the same rational
    function); the right solve as the transposed left one."""
    n = a.shape[0]
    lower = sympy.Matrix(n, n, lambda i, j: a[i, j] if i > j else int(i == j))
    upper = sympy.Matrix(n, n, lambda i, j: a[i, j] if i <= j else 0)
    permutation = sympy.zeros(n)
    for i, r in enumerate(rows(ipiv)):
        permutation[r, i] = 1
    matrix = permutation * lower * upper
    matrix = matrix.T if adjoint else matrix
    rhs = sympy.Matrix(b.tolist())
    if not left:  # X M = B: Mᵀ Xᵀ = Bᵀ
        return np.array(matrix.T.LUsolve(rhs.T).T.tolist(), dtype=object)
    return np.array(matrix.LUsolve(rhs).tolist(), dtype=object)


def _sympy(arrays, p):
    a, b = arrays
    pieces = [_sym_matrix(a[m], _pivots_of(p, m), b[m], p["left"], p["adjoint"]) for m in spectra.batches(a)]
    return pieces[0] if a.ndim == 2 else linalg_ops._stack(pieces)


# ------------------------------------------------------------------ the entry
def _solution(shapes, p):
    return shapes[1]


_LEGACY = _with(left=True, adjoint=False)
TENSOR_OPS["lu_solve"] = TensorOp(
    "lu_solve", 2,
    (_spelling("torch.linalg.lu_solve({0}, {pivots}, {1}, left={left}, adjoint={adjoint})",
               lambda lu, b, pivots, left, adjoint: torch.linalg.lu_solve(lu, pivots, b, left=left, adjoint=adjoint)),
     _spelling("torch.linalg.lu_solve({0}, {pivots}, {1})",
               lambda lu, b, pivots, left, adjoint: torch.linalg.lu_solve(lu, pivots, b), _LEGACY),
     _spelling("torch.lu_solve({1}, {0}, {pivots})",
               lambda lu, b, pivots, left, adjoint: torch.lu_solve(b, lu, pivots), _LEGACY),
     _spelling("{1}.lu_solve({0}, {pivots})", lambda lu, b, pivots, left, adjoint: b.lu_solve(lu, pivots), _LEGACY)),
    _sympy, _forward, _backward, OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))), _solution,
    ("linalg.lu_solve", "lu_solve"), ranks=(2, 3), cpu_dtypes=FLOATS, operand_shapes=_triangular_operands,
    matrix_domains=("diagonally_dominant", ""), exact_vjp=_exact)
linalg_ops.NAMES.append("lu_solve")
