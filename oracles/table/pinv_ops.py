"""Pseudo-inverses and least squares in the tensor-op table: linalg.pinv (and pinverse), linalg.pinv with
hermitian=True, and linalg.lstsq's solution and residuals, of small full-rank matrices (sides 2 and 3, square or
not, batches of at most two), after torch's kernels and FunctionsManual.cpp (pinv_backward, linalg_lstsq_backward).

Exact: on full-rank matrices these are rational functions, so SymPy takes their Jacobians like inv's: pinv(A) =
(AᵀA)⁻¹Aᵀ (m >= n; A⁻¹ where square) or Aᵀ(AAᵀ)⁻¹ (m < n), X = pinv(A) B and the residuals ‖A X - B‖² per column.

torch: the forward goes through an SVD (pinv), an eigen-decomposition (hermitian) or a LAPACK least-squares driver
(gels, gelss, gelsd; not gelsy, see DRIVERS), and as for the spectral entries (oracles.table.spectra) the model
takes the results torch computed as inputs: recomputed with the same call, each element enclosed in the hull of
torch's value and the exact one (arb's rigorous solve). The backward formulas are plain matrix products of those
and of A and B, modelled operation by operation:
- pinv_backward(grad, pinvA, A) with P = pinvA, G = grad: for m <= n, K = Gᵀ P, KPᵀ = K Pᵀ and
  gA = ((-(P K)ᵀ + KPᵀ) - (A P) KPᵀ) + (Pᵀ P)(Gᵀ - K A); for m > n, K = P Gᵀ, PᵀK = Pᵀ K and
  gA = ((-(K P)ᵀ + ((Gᵀ - A K) P) Pᵀ) + PᵀK) - (PᵀK P) A;
- linalg_lstsq_backward: the solution's gradient through P = linalg_pinv(A) computed again in the backward:
  gA = pinv_backward(gX Bᵀ, P, A), gB = Pᵀ gX; the residuals' through r = A X - B (X torch's solution):
  gA = 2 (gL * r) Xᵀ, gB = -2 gL * r.
Conventions: pinv with hermitian=True reads one triangle (eigh), but pinv_backward is the derivative of the
pseudo-inverse of the whole matrix, which the exact side takes (equal to what torch computes wherever A is
symmetric, as the strategies draw it).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb, arb_mat

from oracles.numerics.rounding import RoundingModel
from oracles.table import singular_ops, spectra
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO, is_exact_zero, mul
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

# gelsy, the CPU's default driver (driver=None), is left out: its results are not reproducible (on this torch's
# LAPACK, repeated calls on the same 2 x 2 to 3 x 3 matrices differ in their last bits in 15 to 30 of 30 draws, in
# float64 and float32; torch's lstsq backward avoids it for that reason), so the model cannot recompute them.
# gels, gelss and gelsd gave the same bits in every repetition.
DRIVERS = ("gels", "gelss", "gelsd")


# ------------------------------------------------------------------ exact
def _sym_pinv(a: np.ndarray) -> sympy.Matrix:
    m, n = a.shape
    matrix = sympy.Matrix(a.tolist())
    if m == n:
        return matrix.adjugate() / matrix.det(method="berkowitz")
    gram = matrix.T * matrix if m > n else matrix * matrix.T
    inverse = gram.adjugate() / gram.det(method="berkowitz")
    return inverse * matrix.T if m > n else matrix.T * inverse


def _array(matrix: sympy.Matrix) -> np.ndarray:
    out = spectra.obj(matrix.shape)
    for index in np.ndindex(*matrix.shape):
        out[index] = matrix[index]
    return out


def _per_matrix(function):
    """function(list of one matrix per argument, params) -> array, over a batch."""
    return lambda arrays, p: spectra.per_batch(lambda *matrices: function(list(matrices), p), *arrays)


def _sym_solution(arrays, p):
    a, b = arrays
    return _array(_sym_pinv(a) * sympy.Matrix(b.tolist()))


def _sym_residuals(arrays, p):
    a, b = arrays
    bm = sympy.Matrix(b.tolist())
    r = sympy.Matrix(a.tolist()) * _sym_pinv(a) * bm - bm
    return _array(sympy.Matrix([[sum(r[i, c] ** 2 for i in range(r.rows)) for c in range(r.cols)]]))[0]


def _exact_pinv(a: np.ndarray) -> np.ndarray:
    """pinv(A) of a full-rank A in ball arithmetic (arb's solve of the normal equations)."""
    m, n = a.shape
    rows = arb_mat([[a[i, j] for j in range(n)] for i in range(m)])
    solved = (rows.transpose() * rows).solve(rows.transpose()) if m >= n else \
        (rows * rows.transpose()).solve(rows).transpose()
    out = spectra.obj((n, m))
    for index in np.ndindex(n, m):
        out[index] = solved[index]
    return out


def _exact_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = spectra.obj((x.shape[0], y.shape[1]))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = sum((x[i, t] * y[t, j] for t in range(x.shape[1])), ZERO)
    return out


# ------------------------------------------------------------------ torch's results as balls
def _pinv(t: torch.Tensor, hermitian: bool):
    return (torch.linalg.pinv(t, hermitian=hermitian),)


def _hull(torch_values, exact: np.ndarray) -> np.ndarray:
    out = spectra.obj(exact.shape)
    for index in np.ndindex(*exact.shape):
        out[index] = spectra.hull(spectra.at(torch_values, index), exact[index])
    return out


def _pinv_balls(F: RoundingModel, a: np.ndarray, hermitian: bool) -> np.ndarray:
    """torch's pinv of the one matrix `a` (recomputed) and the exact one, united."""
    (recomputed,) = spectra.recomputed(F, a, _pinv, hermitian)
    return _hull(recomputed, _exact_pinv(a))


def _negated(x: np.ndarray) -> np.ndarray:
    out = spectra.obj(x.shape)
    for index in np.ndindex(*x.shape):
        out[index] = -x[index]
    return out


def _elementwise(F, operation, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = spectra.obj(x.shape)
    for index in np.ndindex(*x.shape):
        a, b = x[index], y[index]
        out[index] = (b if operation == "add" else -b) if is_exact_zero(a) else (
            a if is_exact_zero(b) else (F.add(a, b) if operation == "add" else F.sub(a, b)))
    return out


def pinv_backward(F: RoundingModel, grad: np.ndarray, pinv: np.ndarray, a: np.ndarray) -> np.ndarray:
    """FunctionsManual's pinv_backward, each product and sum rounded (module docstring)."""
    m, n = a.shape
    mm = functools.partial(spectra.matmul, F)
    if m <= n:
        k = mm(grad.T, pinv)
        k_pinv = mm(k, pinv.T)
        total = _elementwise(F, "add", _negated(mm(pinv, k).T), k_pinv)
        total = _elementwise(F, "sub", total, mm(mm(a, pinv), k_pinv))
        return _elementwise(F, "add", total, mm(mm(pinv.T, pinv), _elementwise(F, "sub", grad.T, mm(k, a))))
    k = mm(pinv, grad.T)
    pinv_k = mm(pinv.T, k)
    total = _elementwise(F, "add", _negated(mm(k, pinv).T),
                         mm(mm(_elementwise(F, "sub", grad.T, mm(a, k)), pinv), pinv.T))
    total = _elementwise(F, "add", total, pinv_k)
    return _elementwise(F, "sub", total, mm(mm(pinv_k, pinv), a))


# ------------------------------------------------------------------ pinv
def _forward_pinv(hermitian: bool):
    def forward(F, arrays, p):
        return _per_matrix(lambda xs, q: _pinv_balls(F, xs[0], hermitian))(arrays, p)

    return forward


def _pinv_backward(hermitian: bool):
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        ga = spectra.obj(a.shape)
        for b in spectra.batches(a):
            result = pinv_backward(F, grad[b], out[b], a[b])
            for index in np.ndindex(*a.shape[-2:]):
                ga[b + index] = result[index]
        return (ga,)

    return backward


# ------------------------------------------------------------------ lstsq
def _lstsq(t: torch.Tensor, b: torch.Tensor, driver):
    result = torch.linalg.lstsq(t, b, driver=driver)
    return result.solution, result.residuals


def _lstsq_balls(F: RoundingModel, a: np.ndarray, b: np.ndarray, driver):
    """(torch's solution and residuals, recomputed) of one system, as nested lists."""
    joined = np.concatenate([a, b], axis=1)  # one exact-float check and cache key for both
    return spectra.recomputed(F, joined, _split_lstsq, a.shape[1], driver)


def _split_lstsq(t: torch.Tensor, columns: int, driver):
    return _lstsq(t[..., :columns].contiguous(), t[..., columns:].contiguous(), driver)


def _exact_solution(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _exact_product(_exact_pinv(a), b)


def _exact_residuals(a: np.ndarray, b: np.ndarray) -> list[arb]:
    r = _exact_product(a, _exact_solution(a, b)) - b
    return [sum((r[i, c] ** 2 for i in range(r.shape[0])), ZERO) for c in range(r.shape[1])]


def _solution_forward(F, arrays, p):
    def one(xs, q):
        a, b = xs
        solution, _ = _lstsq_balls(F, a, b, p["driver"])
        return _hull(solution, _exact_solution(a, b))

    return _per_matrix(one)(arrays, p)


def _residuals_forward(F, arrays, p):
    def one(xs, q):
        a, b = xs
        _, residuals = _lstsq_balls(F, a, b, p["driver"])
        exact = _exact_residuals(a, b)
        vector = spectra.obj((len(exact),))
        for c, value in enumerate(exact):
            vector[c] = value
        return _hull(residuals, vector)

    return _per_matrix(one)(arrays, p)


def _solution_backward(F, arrays, out, grad, p):
    """gA = pinv_backward(gX Bᵀ, P, A), gB = Pᵀ gX, with P = linalg_pinv(A) as the backward computes it."""
    a, b = arrays
    ga, gb = spectra.obj(a.shape), spectra.obj(b.shape)
    for index in spectra.batches(a):
        pinv = _pinv_balls(F, a[index], False)
        g = grad[index]
        gai = pinv_backward(F, spectra.matmul(F, g, b[index].T), pinv, a[index])
        gbi = spectra.matmul(F, pinv.T, g)
        for k in np.ndindex(*gai.shape):
            ga[index + k] = gai[k]
        for k in np.ndindex(*gbi.shape):
            gb[index + k] = gbi[k]
    return ga, gb


def _residuals_backward(F, arrays, out, grad, p):
    """r = A X - B with torch's X; gA = 2 (gL * r) Xᵀ, gB = -2 gL * r (the factors 2 exact)."""
    a, b = arrays
    ga, gb = spectra.obj(a.shape), spectra.obj(b.shape)
    for index in spectra.batches(a):
        ai, bi = a[index], b[index]
        exact_solution = _exact_solution(ai, bi)
        for v in exact_solution.reshape(-1):  # torch holds X in the dtype: beyond its range X is inf (and r NaN)
            F.in_range(v)
        solution, _ = _lstsq_balls(F, ai, bi, p["driver"])
        x = _hull(solution, exact_solution)
        r = _elementwise(F, "sub", spectra.matmul(F, ai, x), bi)
        g = grad[index]
        weighted = spectra.obj(r.shape)
        for i, c in np.ndindex(*r.shape):
            weighted[i, c] = mul(F, g[c], r[i, c])
        gai = spectra.matmul(F, weighted, x.T)
        for k in np.ndindex(*gai.shape):
            ga[index + k] = 2 * gai[k]
        for i, c in np.ndindex(*r.shape):
            gb[index + (i, c)] = mul(F, -2 * g[c], r[i, c])
    return ga, gb


# ------------------------------------------------------------------ the entries
def _operands(shape):
    """A as for the SVD (full rank, sides 2 and 3) with B of 1 or 2 columns (lstsq)."""
    return [(a[0], a[0][:-1] + (k,)) for a in singular_ops._operands(shape) for k in (1, 2)]


def _lstsq_options(residuals: bool):
    def options(shapes):
        a, b = shapes
        if len(a) not in (2, 3) or min(a[-2:]) < 2 or b[:-1] != a[:-1]:
            return []
        if residuals and a[-2] <= a[-1]:
            return []  # no residuals: LAPACK returns them only for m > n
        return [_params(driver=d) for d in DRIVERS]

    return options


def _pinv_options(shapes):
    a = shapes[0]
    return [_params()] if len(a) in (2, 3) and min(a[-2:]) >= 2 else []


def _hermitian_options(shapes):
    a = shapes[0]
    return [_params()] if len(a) in (2, 3) and a[-1] == a[-2] >= 2 else []


def _register(name, arity, spellings, sympy_side, forward, backward, options, shape, opinfo, domains, operands):
    TENSOR_OPS[name] = TensorOp(
        name, arity, tuple(spellings), sympy_side, forward, backward,
        OptionSpace(functools.cache(lambda shapes: tuple(options(shapes)))), shape, tuple(opinfo), ranks=(2, 3),
        cpu_dtypes=spectra.FLOATS, operand_shapes=operands, matrix_domains=domains)
    spectra.NAMES.append(name)


def _pinv_shape(shapes, p):
    a = shapes[0]
    return a[:-2] + (a[-1], a[-2])


_register("pinv", 1,
          [_spelling("torch.linalg.pinv({0})", torch.linalg.pinv),
           _spelling("torch.pinverse({0})", torch.pinverse),
           _spelling("{0}.pinverse()", torch.Tensor.pinverse),
           _spelling("torch.linalg.pinv({0}, hermitian=False)", lambda a: torch.linalg.pinv(a, hermitian=False))],
          _per_matrix(lambda xs, p: _array(_sym_pinv(xs[0]))), _forward_pinv(False), _pinv_backward(False),
          _pinv_options, _pinv_shape, ["linalg.pinv", "pinverse"], ("separated_singular",),
          lambda shape: [(a[0],) for a in _operands(shape)[::2]])
_register("pinv_hermitian", 1,
          [_spelling("torch.linalg.pinv({0}, hermitian=True)", lambda a: torch.linalg.pinv(a, hermitian=True))],
          _per_matrix(lambda xs, p: _array(_sym_pinv(xs[0]))), _forward_pinv(True), _pinv_backward(True),
          _hermitian_options, _pinv_shape, ["linalg.pinv[hermitian]"], ("symmetric_separated",),
          lambda shape: [(a[0],) for a in _operands(shape)[::2] if a[0][-1] == a[0][-2]])
_register("lstsq",
          2, [_spelling("torch.linalg.lstsq({0}, {1}, driver={driver}).solution",
                        lambda a, b, driver: torch.linalg.lstsq(a, b, driver=driver).solution),
              _spelling("torch.linalg.lstsq({0}, {1}, driver={driver})[0]",
                        lambda a, b, driver: torch.linalg.lstsq(a, b, driver=driver)[0])],
          _per_matrix(_sym_solution), _solution_forward, _solution_backward, _lstsq_options(False),
          lambda shapes, p: shapes[0][:-2] + (shapes[0][-1], shapes[1][-1]),
          ["linalg.lstsq", "linalg.lstsq[grad_oriented]"], ("separated_singular", ""), _operands)
_register("lstsq_residuals",
          2, [_spelling("torch.linalg.lstsq({0}, {1}, driver={driver}).residuals",
                        lambda a, b, driver: torch.linalg.lstsq(a, b, driver=driver).residuals),
              _spelling("torch.linalg.lstsq({0}, {1}, driver={driver})[1]",
                        lambda a, b, driver: torch.linalg.lstsq(a, b, driver=driver)[1])],
          _per_matrix(_sym_residuals), _residuals_forward, _residuals_backward, _lstsq_options(True),
          lambda shapes, p: shapes[0][:-2] + (shapes[1][-1],),
          ["linalg.lstsq", "linalg.lstsq[grad_oriented]"], ("separated_singular", ""), _operands)
