"""Linear-algebra ops of the tensor-op table, one entry each: determinants, inverses, solves (general,
triangular, Cholesky) and Cholesky factors of small square matrices (n <= 3, batches of at most two), and
Vandermonde matrices, after torch's kernels and derivatives.yaml / FunctionsManual.cpp.

An entry is what the matrix function is (SymPy: the determinant's polynomial, the adjugate over it, the
Cholesky factor's square roots; SymPy derives the exact Jacobian per shape), how torch computes it and its
backward through LAPACK (oracles.table.factorizations: every element of the factors and of the solves enclosed
in the rounding model, over every pivot sequence and orientation torch may take), its spellings, and the
matrices the strategies draw for each argument (`matrix_domains`, oracles.table.tensor_ops: invertible,
positive definite or triangular by construction). LAPACK has no bfloat16 or float16 kernels: those entries are
drawn in float64 and float32 (`cpu_dtypes`).

torch's backward formulas, without create_graph (GradMode off: the lu_solve paths):
- det (linalg_det_backward): lu_solve(LU, pivots, diag(grad * det), adjoint) = grad·det·A⁻ᵀ;
- slogdet's logabsdet and logdet (slogdet_backward; logdet is where(sign == -1, nan, logabsdet)):
  lu_solve(LU, pivots, diag(grad), adjoint) = grad·A⁻ᵀ;
- inv (linalg_inv_ex: A): -inverseᵀ (grad inverseᵀ), two matrix products of the computed inverse;
- solve (linalg_solve_backward): gB = lu_solve(LU, pivots, gX, adjoint) = A⁻ᵀ gX, gA = -gB Xᵀ;
- solve_triangular and triangular_solve, cholesky, cholesky_solve, vander: at their sections below.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel
from oracles.table import factorizations as lapack
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_formulas import K_LOG, ZERO, mul, product, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, OptionSpace, TensorOp, kept_by_this_torch

NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS
FLOATS = ("float64", "float32")  # LAPACK's real types
NONE = (CallParams(),)


MAX_BATCH = 2


def _square(shapes) -> bool:
    a = shapes[0]
    return len(a) in (2, 3) and a[-1] == a[-2] and (len(a) == 2 or a[0] <= MAX_BATCH)


def _no_options(shapes):
    return NONE if _square(shapes) else ()


def _squared(shape) -> tuple[int, ...]:
    """The square matrix (or batch of at most MAX_BATCH) that a drawn shape of rank 2 or 3 stands for: its
    last side n gives n x n."""
    n = shape[-1]
    return (n, n) if len(shape) == 2 else (min(shape[0], MAX_BATCH), n, n)


def _matrix_operand(shape):
    return [(_squared(shape),)]


def _entry(name: str, sympy_side, forward, backward, spellings, opinfo, domains, shape, arity: int = 1,
           operand_shapes=_matrix_operand, options=_no_options, **kw):
    """One entry of a square matrix (ranks 2 and 3: a matrix or a batch), drawn in LAPACK's dtypes;
    `shape(argument shapes)` is the output's."""
    listed = functools.cache(lambda shapes: tuple(options(shapes)))
    TENSOR_OPS[name] = TensorOp(name, arity, tuple(spellings), sympy_side, forward, backward, OptionSpace(listed),
                                lambda shapes, p: shape(shapes), tuple(opinfo), ranks=(2, 3), cpu_dtypes=FLOATS,
                                operand_shapes=operand_shapes, matrix_domains=tuple(domains), **kw)
    NAMES.append(name)


def _batch(shapes):
    return shapes[0][:-2]


def _same(shapes):
    return shapes[0]


def _solution(shapes):
    return shapes[1]


# ------------------------------------------------------------------ batches
def _per_matrix(function):
    """A function of one matrix (and the other arguments' matching slices) applied to every matrix of a batch."""

    def batched(*args):
        *head, arrays, p = args
        if arrays[0].ndim == 2:
            return function(*head, arrays, p)
        pieces = [function(*head, [a[b] for a in arrays], p) for b in range(arrays[0].shape[0])]
        return _stack(pieces)

    return batched


def _per_matrix_backward(function):
    def batched(F, arrays, out, grad, p):
        if arrays[0].ndim == 2:
            return function(F, arrays, out, grad, p)
        pieces = [function(F, [a[b] for a in arrays], out[b, ...], grad[b, ...], p) for b in range(arrays[0].shape[0])]
        return tuple(_stack([piece[k] for piece in pieces]) for k in range(len(arrays)))

    return batched


def _stack(pieces):
    out = np.empty((len(pieces),) + np.shape(pieces[0]), dtype=object)
    for b, piece in enumerate(pieces):
        piece = np.asarray(piece, dtype=object)
        for index in np.ndindex(*piece.shape):
            out[(b,) + index] = piece[index]
    return out


def _scalar(value) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def _diagonal_matrix(values: list[arb]) -> np.ndarray:
    n = len(values)
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            out[i, j] = values[i] if i == j else ZERO
    return out


def _identity(n: int) -> np.ndarray:
    return _diagonal_matrix([arb(1)] * n)


def _negated(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(*a.shape):
        out[index] = -a[index]
    return out


def _over_factorizations(F: RoundingModel, a: np.ndarray, per_branch) -> np.ndarray:
    """per_branch(LU) for every factorization torch may have computed, united (factorizations' docstring)."""
    return lapack.union([np.asarray(per_branch(lu), dtype=object) for lu in lapack.factorizations(F, a)])


# ------------------------------------------------------------------ determinants
def _sym_det(a) -> sympy.Expr:
    return sympy.Matrix(a.tolist()).det(method="berkowitz")


def _det_value(F: RoundingModel, lu: lapack.LU) -> arb:
    """lu_det_P(pivots) * prod(diag(LU)): the sign exact, the product n - 1 roundings."""
    value = product(F, lu.diagonal())
    return value if lu.parity > 0 else -value


def _logabsdet_value(F: RoundingModel, lu: lapack.LU) -> arb:
    """sum(log(abs(diag(LU)))): each log within the log kernel's accuracy, the sum in any order."""
    return sum_any(F, [F.round(abs(d).log(), K_LOG) for d in lu.diagonal()])


@_per_matrix
def _det_forward(F, arrays, p):
    return _over_factorizations(F, arrays[0], lambda lu: _scalar(_det_value(F, lu)))


@_per_matrix_backward
def _det_backward(F, arrays, out, grad, p):
    """lu_solve(LU, pivots, diag(grad * det)) with Aᵀ: grad * det rounded once, from the branch's own det."""
    a = arrays[0]
    n = a.shape[0]

    def branch(lu):
        d = mul(F, grad[()], _det_value(F, lu))
        return lapack.solve(F, lu, _diagonal_matrix([d] * n), transpose=True)

    return (_over_factorizations(F, a, branch),)


@_per_matrix_backward
def _logabsdet_backward(F, arrays, out, grad, p):
    a = arrays[0]
    d = _diagonal_matrix([grad[()]] * a.shape[0])
    return (_over_factorizations(F, a, lambda lu: lapack.solve(F, lu, d, transpose=True)),)


@_per_matrix
def _logabsdet_forward(F, arrays, p):
    return _over_factorizations(F, arrays[0], lambda lu: _scalar(_logabsdet_value(F, lu)))


# ------------------------------------------------------------------ inverses and solves
def _sym_solve(a, b):
    """A⁻¹ B as the adjugate over the determinant (B a vector or a matrix)."""
    m = sympy.Matrix(a.tolist())
    det = _sym_det(a)
    rhs = sympy.Matrix(b.tolist()) if b.ndim == 2 else sympy.Matrix(list(b))
    out = (m.adjugate() * rhs) / det
    result = np.empty(b.shape, dtype=object)
    for index in np.ndindex(*b.shape):
        result[index] = out[index if b.ndim == 2 else (index[0], 0)]
    return result


def _sym_inv(arrays, p):
    a = arrays[0]
    identity = np.array([[sympy.Integer(int(i == j)) for j in range(a.shape[0])] for i in range(a.shape[0])],
                        dtype=object)
    return _sym_solve(a, identity)


@_per_matrix
def _inv_forward(F, arrays, p):
    """linalg_inv_ex: linalg_solve_ex(A, I), an LU and its solve."""
    a = arrays[0]
    return _over_factorizations(F, a, lambda lu: lapack.solve(F, lu, _identity(a.shape[0])))


@_per_matrix_backward
def _inv_backward(F, arrays, out, grad, p):
    """-inverseᵀ (grad inverseᵀ), with the inverse the branch computed."""
    a = arrays[0]

    def branch(lu):
        inverse = lapack.solve(F, lu, _identity(a.shape[0]))
        return _negated(lapack.matmul(F, inverse.T, lapack.matmul(F, grad, inverse.T)))

    return (_over_factorizations(F, a, branch),)


@_per_matrix
def _sym_solve_batched(arrays, p):
    return _sym_solve(arrays[0], arrays[1])


@_per_matrix
def _solve_forward(F, arrays, p):
    a, b = arrays
    return _over_factorizations(F, a, lambda lu: lapack.solve(F, lu, b))


def _outer_negated(F, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """-g xᵀ for columns g, x of the same width (vectors: an outer product), each entry a dot product."""
    g2, x2 = g.reshape(g.shape[0], -1), x.reshape(x.shape[0], -1)
    return _negated(lapack.matmul(F, g2, x2.T))


@_per_matrix_backward
def _solve_backward(F, arrays, out, grad, p):
    """gB = A⁻ᵀ gX (the LU's adjoint solve), gA = -gB Xᵀ with the branch's own X."""
    a, b = arrays
    grads_a, grads_b = [], []
    for lu in lapack.factorizations(F, a):
        x = lapack.solve(F, lu, b)
        gb = lapack.solve(F, lu, grad, transpose=True)
        grads_a.append(_outer_negated(F, gb, x))
        grads_b.append(gb)
    return lapack.union(grads_a), lapack.union(grads_b)


def _solve_operands(shape):
    """A (..., n, n) with B (..., n), (..., n, 1) or (..., n, 2) of the same batch."""
    a = _squared(shape)
    return [(a, a[:-1]), (a, a[:-1] + (1,)), (a, a[:-1] + (2,))]


# ------------------------------------------------------------------ triangular solves
# Parameters: `upper` (which triangle of A is read), `left` (A X = B, else X A = B), `unitriangular` (the diagonal
# taken as ones, not read), `transpose` (the legacy triangular_solve's: Aᵀ X = B, else A X = B).
def _in_triangle(i: int, j: int, p) -> bool:
    """Whether A[i, j] is read: its triangle, without the diagonal where it is taken as ones."""
    offset = 1 if p["unitriangular"] else 0
    return j - i >= offset if p["upper"] else i - j >= offset


def _sym_triangle(a: np.ndarray, p) -> np.ndarray:
    """The triangular matrix torch solves with: A's triangle, ones on a unit diagonal, zeros elsewhere."""
    n = a.shape[0]
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            out[i, j] = a[i, j] if _in_triangle(i, j, p) else sympy.Integer(int(i == j and p["unitriangular"]))
    return out


@_per_matrix
def _sym_triangular(arrays, p):
    a, b = arrays
    t = _sym_triangle(a, p)
    t = t.T if p["transpose"] else t
    if p["left"]:
        return _sym_solve(t, b)
    return _sym_solve(t.T, b.T).T  # X T = B: Tᵀ Xᵀ = Bᵀ


def _effective(a: np.ndarray, p) -> tuple[np.ndarray, bool]:
    """(T, whether T is upper triangular) with T = A or Aᵀ as `transpose` says (trsm's 'N' or 'T')."""
    return (a.T, not p["upper"]) if p["transpose"] else (a, p["upper"])


def _trsm(F, t: np.ndarray, upper: bool, b: np.ndarray, left: bool, unit: bool) -> np.ndarray:
    """T X = B (`left`) or X T = B, the latter as Tᵀ Xᵀ = Bᵀ: the same sums and quotients per element."""
    if left:
        return lapack.triangular_solve(F, t, b, upper, unit)
    return lapack.triangular_solve(F, t.T, b.T, not upper, unit).T


@_per_matrix
def _triangular_forward(F, arrays, p):
    a, b = arrays
    t, upper = _effective(a, p)
    return _trsm(F, t, upper, b, p["left"], p["unitriangular"])


@_per_matrix_backward
def _triangular_backward(F, arrays, out, grad, p):
    """linalg_solve_triangular_backward and triangular_solve_backward: gB = T⁻ᵀ gX (left) or gX T⁻ᵀ, a
    triangular solve with the other triangle; gA = -gB Xᵀ (left) or -Xᵀ gB, transposed back where T = Aᵀ, and
    only A's triangle kept (triu / tril, without the diagonal where it is unit)."""
    a, _ = arrays
    t, upper = _effective(a, p)
    gb = _trsm(F, t.T, not upper, grad, p["left"], p["unitriangular"])
    ga = _negated(lapack.matmul(F, gb, out.T) if p["left"] else lapack.matmul(F, out.T, gb))
    ga = ga.T if p["transpose"] else ga
    for i, j in np.ndindex(*ga.shape):
        if not _in_triangle(i, j, p):
            ga[i, j] = ZERO
    return ga, gb


def _triangular_operands(shape):
    """A (..., n, n) with B (..., n, k) for a left solve or (..., k, n) for a right one, k = 1 or 2."""
    a = _squared(shape)
    return [(a, a[:-1] + (k,)) for k in (1, 2)] + [(a, a[:-2] + (k, a[-1])) for k in (1, 2)]


def _solve_triangular_options(shapes):
    if not _square(shapes):
        return []
    a, b = shapes
    sides = [left for left in (True, False) if (b[-2] if left else b[-1]) == a[-1]]
    return [_params(upper=upper, left=left, unitriangular=unit, transpose=False)
            for left in sides for upper in (True, False) for unit in (False, True)]


def _triangular_solve_options(shapes):
    if not _square(shapes) or shapes[1][-2] != shapes[0][-1]:
        return []
    return [_params(upper=upper, left=True, unitriangular=unit, transpose=transpose)
            for upper in (True, False) for transpose in (False, True) for unit in (False, True)]


# ------------------------------------------------------------------ Cholesky
# torch differentiates the Cholesky factor as a function of a symmetric matrix: the forward reads one triangle,
# the backward returns a symmetric gradient (cholesky_backward: the derivative along symmetric perturbations,
# shared evenly by A_ij and A_ji). That is the derivative of chol((A + Aᵀ) / 2), which equals chol(A) wherever
# A is symmetric, as the strategies draw it.
def _sym_symmetric_part(a: np.ndarray) -> sympy.Matrix:
    n = a.shape[0]
    return sympy.Matrix(n, n, lambda i, j: a[i, j] if i == j else (a[i, j] + a[j, i]) / 2)


@_per_matrix
def _sym_cholesky(arrays, p):
    low = _sym_symmetric_part(arrays[0]).cholesky(hermitian=False)
    out = np.array(low.tolist(), dtype=object)
    return out.T if p["upper"] else out


@_per_matrix
def _cholesky_forward(F, arrays, p):
    """potrf 'U' reads the upper triangle: U = chol(Aᵀ's lower)ᵀ."""
    a = arrays[0]
    return lapack.cholesky(F, a.T).T if p["upper"] else lapack.cholesky(F, a)


@_per_matrix_backward
def _cholesky_backward(F, arrays, out, grad, p):
    """cholesky_backward (L, gL transposed where upper): gA = tril(Lᵀ gL); gA = 0.5 (gA + tril(gA, -1)ᵀ) (a copy
    of the strict lower triangle, exact, and a halving); then Lᵀ X = gA and G L = X, two triangular solves."""
    low, g = (out.T, grad.T) if p["upper"] else (out, grad)
    n = low.shape[0]
    m = lapack.matmul(F, low.T, g)
    half = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            half[i, j] = mul(F, arb(0.5), m[max(i, j), min(i, j)])
    x = lapack.triangular_solve(F, low.T, half, upper=True)
    return (lapack.triangular_solve(F, low.T, x.T, upper=True).T,)  # G L = X: Lᵀ Gᵀ = Xᵀ


def _upper_options(shapes):
    return [_params(upper=upper) for upper in (False, True)] if _square(shapes) else []


# cholesky_solve(B, L) reads L's lower triangle (potrs: two triangular solves), but cholesky_solve_backward returns
# -(S L) for every element of L (S = gB Xᵀ + X gBᵀ), the derivative of (L Lᵀ)⁻¹ B in every element of a full L,
# not only those the forward reads: that is the function whose derivative the exact side takes, and the
# strategies draw L triangular (its upper elements exactly 0), where it is the value torch computes.
@_per_matrix
def _sym_cholesky_solve(arrays, p):
    b, low = arrays
    return _sym_solve(low.T, _sym_solve(low, b))


def _potrs(F, low: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L Y = B, then Lᵀ X = Y."""
    return lapack.triangular_solve(F, low.T, lapack.triangular_solve(F, low, b, upper=False), upper=True)


@_per_matrix
def _cholesky_solve_forward(F, arrays, p):
    b, low = arrays
    return _potrs(F, low, b)


@_per_matrix_backward
def _cholesky_solve_backward(F, arrays, out, grad, p):
    """cholesky_solve_backward: gB = cholesky_solve(gX, L); S = gB Xᵀ + (gB Xᵀ)ᵀ; gL = -S L."""
    _, low = arrays
    gb = _potrs(F, low, grad)
    common = lapack.matmul(F, gb, out.T)
    n = common.shape[0]
    symmetric = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            symmetric[i, j] = F.add(common[i, j], common[j, i])
    return gb, _negated(lapack.matmul(F, symmetric, low))


def _cholesky_solve_operands(shape):
    """B (..., n, k), k = 1 or 2, with L (..., n, n)."""
    a = _squared(shape)
    return [(a[:-1] + (k,), a) for k in (1, 2)]


def _factor_square(shapes):
    return NONE if _square(shapes[1:]) else ()


# ------------------------------------------------------------------ Vandermonde matrices
# linalg_vander: cat([1, x, ..., x], -1).cumprod(-1), N columns (default: x's last side); the backward is
# cumprod_backward of that row, then the copies of x summed (expand's backward).
def _vander_columns(shape, p) -> int:
    return shape[-1] if p["N"] is None else p["N"]


def _sym_vander(arrays, p):
    x = arrays[0]
    columns = _vander_columns(x.shape, p)
    out = np.empty(x.shape + (columns,), dtype=object)
    for index in np.ndindex(*x.shape):
        for k in range(columns):
            out[index + (k,)] = x[index] ** k
    return out


def _vander_forward(F, arrays, p):
    """Each power x^k (k >= 1) a product of k factors x (the leading 1 multiplies exactly)."""
    x = arrays[0]
    columns = _vander_columns(x.shape, p)
    out = np.empty(x.shape + (columns,), dtype=object)
    for index in np.ndindex(*x.shape):
        out[index + (0,)] = arb(1)
        for k in range(1, columns):
            out[index + (k,)] = product(F, [x[index]] * k)
    return out


def _vander_backward(F, arrays, out, grad, p):
    x = arrays[0]
    columns = _vander_columns(x.shape, p)
    g = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        row = [arb(1)] + [x[index]] * (columns - 1)
        grads = formula.cumprod_backward(F, row, [out[index + (k,)] for k in range(columns)],
                                         [grad[index + (k,)] for k in range(columns)], p)
        g[index] = sum_any(F, grads[1:])
    return (g,)


def _vander_options(shapes):
    """N = None (x's last side, at least 2), 2, 3, 4: one column of ones alone would not depend on x."""
    return ([_params(N=None)] if shapes[0][-1] >= 2 else []) + [_params(N=n) for n in (2, 3, 4)]


# ------------------------------------------------------------------ the Frobenius norm
# matrix_norm(ord='fro'), linalg.norm(ord='fro' or a matrix's default) and torch.norm(p='fro') are
# linalg_vector_norm(A, 2, dim=(-2, -1)): the 2-norm of each matrix's elements, norm_backward's A / norm.
def _per_matrix_elements(function):
    """A function of the list of one matrix's elements, for each matrix of a batch; keepdim adds two sides."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = np.empty(a.shape[:-2], dtype=object)
        for b in np.ndindex(*out.shape):
            out[b] = function(*head, list(a[b].reshape(-1)), p)
        return out.reshape(out.shape + (1, 1)) if p["keepdim"] else out

    return apply


def _frobenius_backward(F, arrays, out, grad, p):
    a = arrays[0]
    g = np.empty(a.shape, dtype=object)
    for b in np.ndindex(*a.shape[:-2]):
        y, gb = (out[b + (0, 0)], grad[b + (0, 0)]) if p["keepdim"] else (out[b], grad[b])
        matrix = a[b]
        grads = formula.norm_backward(F, list(matrix.reshape(-1)), y, gb, p)
        for k, index in enumerate(np.ndindex(*matrix.shape)):
            g[b + index] = grads[k]
    return (g,)


def _frobenius_options(shapes):
    return [_params(keepdim=keepdim) for keepdim in (False, True)] if len(shapes[0]) in (2, 3) else []


def _is_matrix(shapes, p):
    return len(shapes[0]) == 2 and not p["keepdim"]


# ------------------------------------------------------------------ tensorinv and tensorsolve
# linalg_tensorinv: linalg_inv_ex of A reshaped to N x N (N = the product of its first `ind` sides), reshaped
# back; linalg_tensorsolve: linalg_solve of A reshaped to (B's size, X's size) and B flattened. Reshapes copy
# exactly, in the forward and in the backward, so the entries are inv's and solve's on the reshaped arguments.
def _side(shape) -> int:
    return int(np.prod(shape, dtype=int))


def _tensorinv_options(shapes):
    shape = shapes[0]
    return [_params(ind=ind) for ind in range(1, len(shape)) if _side(shape[:ind]) == _side(shape[ind:])]


def _tensorinv_operands(shape):
    """From a side n: (n, n), (n, 1, n), (1, n, n) and (n, n, 1)."""
    n = shape[-1]
    return [((n, n),), ((n, 1, n),), ((1, n, n),), ((n, n, 1),)]


def _tensorinv_shape(shape, p):
    return shape[p["ind"]:] + shape[:p["ind"]]


def _sym_tensorinv(arrays, p):
    a = arrays[0]
    n = _side(a.shape[:p["ind"]])
    return _sym_inv([a.reshape(n, n)], p).reshape(_tensorinv_shape(a.shape, p))


def _tensorinv_forward(F, arrays, p):
    a = arrays[0]
    n = _side(a.shape[:p["ind"]])
    return _inv_forward(F, [a.reshape(n, n)], p).reshape(_tensorinv_shape(a.shape, p))


def _tensorinv_backward(F, arrays, out, grad, p):
    a = arrays[0]
    n = _side(a.shape[:p["ind"]])
    (g,) = _inv_backward(F, [a.reshape(n, n)], out.reshape(n, n), grad.reshape(n, n), p)
    return (g.reshape(a.shape),)


def _tensorsolve_split(shapes) -> tuple[tuple[int, ...], int]:
    """X's shape (A's sides after B's) and N, the size of B and of X."""
    a, b = shapes
    return a[len(b):], _side(b)


def _tensorsolve_options(shapes):
    a, b = shapes
    return NONE if a[:len(b)] == b and _side(a[len(b):]) == _side(b) else ()


def _sym_tensorsolve(arrays, p):
    a, b = arrays
    x_shape, n = _tensorsolve_split((a.shape, b.shape))
    return _sym_solve(a.reshape(n, n), b.reshape(n)).reshape(x_shape)


def _tensorsolve_forward(F, arrays, p):
    a, b = arrays
    x_shape, n = _tensorsolve_split((a.shape, b.shape))
    return _solve_forward(F, [a.reshape(n, n), b.reshape(n)], p).reshape(x_shape)


def _tensorsolve_backward(F, arrays, out, grad, p):
    a, b = arrays
    _, n = _tensorsolve_split((a.shape, b.shape))
    ga, gb = _solve_backward(F, [a.reshape(n, n), b.reshape(n)], out.reshape(n), grad.reshape(n), p)
    return ga.reshape(a.shape), gb.reshape(b.shape)


def _tensorsolve_operands(shape):
    """B of n elements (n,) or (1, n); A of B's shape then X's: (n, n), (n, 1, n), (n, n, 1), (1, n, n)."""
    n = shape[-1]
    return [((n, n), (n,)), ((n, 1, n), (n,)), ((n, n, 1), (n,)), ((1, n, n), (1, n))]


# ------------------------------------------------------------------ the entries
def _sym_per_matrix(function):
    """A SymPy function of one matrix, 0-d results as arrays."""
    return _per_matrix(lambda arrays, p: np.asarray(function(arrays[0]), dtype=object))


_entry("det", _sym_per_matrix(_sym_det), _det_forward, _det_backward,
       [_spelling("torch.linalg.det({0})", torch.linalg.det), _spelling("torch.det({0})", torch.det),
        _spelling("{0}.det()", torch.Tensor.det)],
       ["linalg.det"], ["invertible"], _batch, backward_divides=True)  # det·A^-T, solved with A's LU
_entry("slogdet", _sym_per_matrix(lambda a: sympy.log(_sym_det(a) ** 2) / 2), _logabsdet_forward,
       _logabsdet_backward,
       [_spelling("torch.linalg.slogdet({0})[1]", lambda a: torch.linalg.slogdet(a)[1]),
        _spelling("torch.linalg.slogdet({0}).logabsdet", lambda a: torch.linalg.slogdet(a).logabsdet),
        _spelling("torch.slogdet({0})[1]", lambda a: torch.slogdet(a)[1]),
        _spelling("{0}.slogdet()[1]", lambda a: a.slogdet()[1])],
       ["linalg.slogdet"], ["invertible"], _batch)
_entry("logdet", _sym_per_matrix(lambda a: sympy.log(_sym_det(a))), _logabsdet_forward, _logabsdet_backward,
       [_spelling("torch.logdet({0})", torch.logdet), _spelling("{0}.logdet()", torch.Tensor.logdet)],
       ["logdet"], ["positive_determinant"], _batch)
_entry("inv", _per_matrix(_sym_inv), _inv_forward, _inv_backward,
       [_spelling("torch.linalg.inv({0})", torch.linalg.inv), _spelling("torch.inverse({0})", torch.inverse),
        _spelling("{0}.inverse()", torch.Tensor.inverse),
        _spelling("torch.linalg.inv_ex({0})[0]", lambda a: torch.linalg.inv_ex(a)[0]),
        _spelling("torch.linalg.inv_ex({0}).inverse", lambda a: torch.linalg.inv_ex(a).inverse)],
       ["linalg.inv", "linalg.inv_ex"], ["invertible"], _same)
_entry("solve", _sym_solve_batched, _solve_forward, _solve_backward,
       [_spelling("torch.linalg.solve({0}, {1})", torch.linalg.solve),
        _spelling("torch.linalg.solve_ex({0}, {1})[0]", lambda a, b: torch.linalg.solve_ex(a, b)[0]),
        _spelling("torch.linalg.solve_ex({0}, {1}).result", lambda a, b: torch.linalg.solve_ex(a, b).result)],
       ["linalg.solve", "linalg.solve_ex"], ["invertible", ""], _solution, arity=2, operand_shapes=_solve_operands)
_entry("solve_triangular", _sym_triangular, _triangular_forward, _triangular_backward,
       [_spelling("torch.linalg.solve_triangular({0}, {1}, upper={upper}, left={left}, unitriangular={unitriangular})",
                  lambda a, b, upper, left, unitriangular, transpose:
                  torch.linalg.solve_triangular(a, b, upper=upper, left=left, unitriangular=unitriangular)),
        _spelling("torch.linalg.solve_triangular({0}, {1}, upper={upper})",
                  lambda a, b, upper, left, unitriangular, transpose: torch.linalg.solve_triangular(a, b, upper=upper),
                  _with(left=True, unitriangular=False))],
       ["linalg.solve_triangular"], ["diagonally_dominant", ""], _solution, arity=2,
       operand_shapes=_triangular_operands, options=_solve_triangular_options)
_entry("triangular_solve", _sym_triangular, _triangular_forward, _triangular_backward,
       [_spelling("torch.triangular_solve({1}, {0}, upper={upper}, transpose={transpose}, "
                  "unitriangular={unitriangular})[0]",
                  lambda a, b, upper, left, unitriangular, transpose:
                  torch.triangular_solve(b, a, upper=upper, transpose=transpose, unitriangular=unitriangular)[0]),
        _spelling("{1}.triangular_solve({0}, upper={upper}).solution",
                  lambda a, b, upper, left, unitriangular, transpose: b.triangular_solve(a, upper=upper).solution,
                  _with(transpose=False, unitriangular=False))],
       ["triangular_solve"], ["diagonally_dominant", ""], _solution, arity=2,
       operand_shapes=_triangular_operands, options=_triangular_solve_options)
_entry("cholesky", _sym_cholesky, _cholesky_forward, _cholesky_backward,
       [_spelling("torch.linalg.cholesky({0}, upper={upper})",
                  lambda a, upper: torch.linalg.cholesky(a, upper=upper)),
        _spelling("torch.linalg.cholesky({0})", lambda a, upper: torch.linalg.cholesky(a), _with(upper=False)),
        _spelling("torch.linalg.cholesky_ex({0}, upper={upper})[0]",
                  lambda a, upper: torch.linalg.cholesky_ex(a, upper=upper)[0]),
        _spelling("torch.linalg.cholesky_ex({0}).L", lambda a, upper: torch.linalg.cholesky_ex(a).L,
                  _with(upper=False))]
       + ([_spelling("torch.cholesky({0}, upper={upper})", lambda a, upper: torch.cholesky(a, upper=upper)),
           _spelling("{0}.cholesky()", lambda a, upper: a.cholesky(), _with(upper=False))]
          if kept_by_this_torch(lambda: torch.cholesky(torch.eye(1))) else []),
       ["linalg.cholesky", "linalg.cholesky_ex", "cholesky"], ["positive_definite"], _same,
       options=_upper_options)
_entry("cholesky_solve", _sym_cholesky_solve, _cholesky_solve_forward, _cholesky_solve_backward,
       [_spelling("torch.cholesky_solve({0}, {1})", torch.cholesky_solve),
        _spelling("{0}.cholesky_solve({1})", torch.Tensor.cholesky_solve),
        _spelling("torch.cholesky_solve({0}, {1}, upper=False)",
                  lambda b, low: torch.cholesky_solve(b, low, upper=False))],
       ["cholesky_solve"], ["", "cholesky_factor"], _same, arity=2,
       operand_shapes=_cholesky_solve_operands, options=_factor_square)
TENSOR_OPS["vander"] = TensorOp(
    "vander", 1,
    (_spelling("torch.linalg.vander({0}, N={N})", lambda x, N: torch.linalg.vander(x, N=N)),
     _spelling("torch.linalg.vander({0})", lambda x, N: torch.linalg.vander(x), _with(N=None))),
    _sym_vander, _vander_forward, _vander_backward, OptionSpace(functools.cache(lambda s: tuple(_vander_options(s)))),
    lambda shapes, p: shapes[0] + (_vander_columns(shapes[0], p),), ("linalg.vander",),
    zero_rule="cumprod_backward's first-zero formula", cpu_dtypes=FLOATS,  # no Half or BFloat16 kernel
    backward_divides=True)  # the powers come from cumprod, whose backward divides
NAMES.append("vander")
TENSOR_OPS["frobenius_norm"] = TensorOp(
    "frobenius_norm", 1,
    (_spelling("torch.linalg.matrix_norm({0}, ord='fro', keepdim={keepdim})",
               lambda a, keepdim: torch.linalg.matrix_norm(a, ord="fro", keepdim=keepdim)),
     _spelling("torch.linalg.matrix_norm({0})", lambda a, keepdim: torch.linalg.matrix_norm(a), _with(keepdim=False)),
     _spelling("torch.linalg.norm({0}, ord='fro', dim=(-2, -1), keepdim={keepdim})",
               lambda a, keepdim: torch.linalg.norm(a, ord="fro", dim=(-2, -1), keepdim=keepdim)),
     _spelling("torch.linalg.norm({0})", lambda a, keepdim: torch.linalg.norm(a), _is_matrix),
     _spelling("torch.norm({0}, p='fro', dim=(-2, -1), keepdim={keepdim})",
               lambda a, keepdim: torch.norm(a, p="fro", dim=(-2, -1), keepdim=keepdim)),
     _spelling("{0}.norm(p='fro')", lambda a, keepdim: a.norm(p="fro"), _is_matrix)),
    _per_matrix_elements(lambda a, p: formula.NORM.math(a, p)),
    _per_matrix_elements(lambda F, a, p: formula.norm_forward(F, a, p)), _frobenius_backward,
    OptionSpace(functools.cache(lambda s: tuple(_frobenius_options(s)))),
    lambda shapes, p: shapes[0][:-2] + ((1, 1) if p["keepdim"] else ()),
    ("linalg.matrix_norm", "linalg.norm", "norm[fro]"), ranks=(2, 3))
NAMES.append("frobenius_norm")
TENSOR_OPS["tensorinv"] = TensorOp(
    "tensorinv", 1, (_spelling("torch.linalg.tensorinv({0}, ind={ind})",
                               lambda a, ind: torch.linalg.tensorinv(a, ind=ind)),),
    _sym_tensorinv, _tensorinv_forward, _tensorinv_backward,
    OptionSpace(functools.cache(lambda s: tuple(_tensorinv_options(s)))),
    lambda shapes, p: _tensorinv_shape(shapes[0], p), ("linalg.tensorinv",), ranks=(1,), cpu_dtypes=FLOATS,
    operand_shapes=_tensorinv_operands, matrix_domains=("invertible_flat",))
TENSOR_OPS["tensorsolve"] = TensorOp(
    "tensorsolve", 2, (_spelling("torch.linalg.tensorsolve({0}, {1})", torch.linalg.tensorsolve),),
    _sym_tensorsolve, _tensorsolve_forward, _tensorsolve_backward,
    OptionSpace(functools.cache(lambda s: tuple(_tensorsolve_options(s)))),
    lambda shapes, p: _tensorsolve_split(shapes)[0], ("linalg.tensorsolve",), ranks=(1,), cpu_dtypes=FLOATS,
    operand_shapes=_tensorsolve_operands, matrix_domains=("invertible_flat", ""))
NAMES += ["tensorinv", "tensorsolve"]
