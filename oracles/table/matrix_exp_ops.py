"""matrix_exp (torch.matrix_exp, torch.linalg.matrix_exp) in the tensor-op table, for small square matrices (sides 2 and
3, batches of at most two), after LinearAlgebra.cpp (mexp) and FunctionsManual.cpp (linalg_matrix_exp_differential).

Exact: python-flint's rigorous `arb_mat.exp`; the VJP of exp at A is the Fréchet derivative of exp at Aᵀ applied to
the gradient, the upper right block of exp([[Aᵀ, G], [0, Aᵀ]]) (Mathias 1996), again by `arb_mat.exp` (over the balls
of G where the upstream gradient is an enclosure).

torch: mexp, the optimized Taylor approximants of Bader, Blanes and Casas (Computing the Matrix Exponential with an
Optimized Taylor Polynomial Approximation, Mathematics 2019, 7, 1174): T1, T2, T4, T8 and T12 by the 1-norm of A
(‖A‖₁ in (θ_{k-1}, θ_k], the θ per dtype), else T18 of A / 2^s, squared s times, s = max(0, ceil(log2(‖A‖₁ / θ18))).
A batch of more than one matrix always takes T18 with scaling and squaring (compute_highest_degree_approx). Each
approximant is a fixed sequence of matrix products (GEMMs: sums in any order) and linear combinations of the powers
with constant coefficients (each product and the sum rounded), which the model replays in ball arithmetic at every
branch the balls of the norm cannot decide (the union of the branches). The coefficients are the dtype's roundings of
the published values; T8's are the paper's closed forms in √177 (tests/test_matrix_exp_ops.py checks every approximant
at the top of its norm interval against exp: within the rounding there). A model of the algorithm in ball arithmetic
encloses what the algorithm computes, not exp(A) itself (the truncation error, below u by the choice of the θ), so the
enclosure is that united with the exact value.

torch's backward (linalg_matrix_exp_differential, adjoint): the upper right n x n block of mexp of the 2n x 2n
[[Aᵀ, G], [0, Aᵀ]] (copies: exact), the same algorithm on the larger matrix, whose norm (and so branch) depends on G.

The model, unlike torch 2.13's compute_T8, uses the x7 of the paper, (89 - √177) / 2240: torch divides by 5040·x3
instead of 5040·x3², so T8's coefficients of A⁵ to A⁸ are wrong (finding matrix-exp-t8-coefficient): where an unbatched
matrix, or the backward's block matrix, has a 1-norm in T8's interval, torch's result is outside the enclosure; the
property tests draw matrices whose row and column sums exceed 1 ("norm_above_one"), and tests/test_matrix_exp_ops.py
the smaller norms of the other approximants.
LAPACK plays no part, but the CPU's half-precision mexp reads the double coefficients as halves (finding
matrix-exp-half-coefficients): float64 and float32 only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from flint import arb, arb_mat

from oracles.numerics.rounding import RoundingModel
from oracles.table import factorizations as lapack
from oracles.table import linalg_ops, spectra
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO, mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

# The upper ends of the norm intervals of T1, T2, T4, T8, T12 and θ18, per dtype (mexp's thetas).
THETAS = {
    "float64": (2.220446049250313e-16, 2.580956802971767e-08, 3.397168839976962e-04, 4.991228871115323e-02,
                2.996158913811580e-01, 1.090863719290036e+00),
    "float32": (1.192092800768788e-07, 5.978858893805233e-04, 5.116619363445086e-02, 5.800524627688768e-01,
                1.461661507209034e+00, 3.010066362817634e+00),
}
# T12 = B0 + (B1 + B2') B2' with B2' = B2 + B3², and T18 = B1 + (B2 + B3') B3' with B3' = B3 + B0 B4, where B_i is
# the combination of I, A, A², A³ (and A⁶) with row i of these (the paper's tables, as mexp holds them).
T12 = ((9.0198e-16, 0.46932117595418237389, -0.20099424927047284052, -0.04623946134063071740),
       (5.31597895759871264183, 1.19926790417132231573, 0.01179296240992997031, 0.01108844528519167989),
       (0.18188869982170434744, 0.05502798439925399070, 0.09351590770535414968, 0.00610700528898058230),
       (-2.0861320e-13, -0.13181061013830184015, -0.02027855540589259079, -0.00675951846863086359))
T18 = ((0.0, -1.00365581030144618291e-01, -8.02924648241156932449e-03, -8.92138498045729985177e-04, 0.0),
       (0.0, 3.97849749499645077844e-01, 1.36783778460411720168e+00, 4.98289622525382669416e-01,
        -6.37898194594723280150e-04),
       (-1.09676396052962061844e+01, 1.68015813878906206114e+00, 5.71779846478865511061e-02,
        -6.98210122488052056106e-03, 3.34975017086070470649e-05),
       (-9.04316832390810593223e-02, -6.76404519071381882256e-02, 6.75961301770459654925e-02,
        2.95552570429315521194e-02, -1.39180257516060693404e-05),
       (0.0, 0.0, -9.23364619367118555360e-02, -1.69364939002081722752e-02, -1.40086798182036094347e-05))
K_LOG2 = 4  # log2 of the norm over θ18, within 2 ulps (only which integer it rounds up to matters)


def t8_coefficients() -> dict[str, arb]:
    """x1 ... x7 and y2 of T8 = I + A + y2 A² + (x3 A² + A4)(x4 I + x5 A + x6 A² + x7 A4), A4 = A² (x1 A + x2 A²),
    exactly (balls of √177)."""
    root, x3 = arb(177).sqrt(), arb(2) / 3
    return {"x1": x3 * (1 + root) / 88, "x2": x3 * (1 + root) / 352, "x3": x3,
            "x4": (-271 + 29 * root) / (315 * x3), "x5": (-11 + 11 * root) / (1260 * x3),
            "x6": (-99 + 11 * root) / (5040 * x3), "x7": (89 - root) / (5040 * x3 * x3),
            "y2": (857 - 58 * root) / 630}


def _coefficient(F: RoundingModel, value) -> arb:
    """A constant as the dtype holds it: a float rounded to it exactly, an irrational one within the rounding (its
    compile-time expression rounds a few times: 4 units)."""
    if isinstance(value, arb):
        return F.round(value, 4)
    return arb(F.format.round(value))


# ------------------------------------------------------------------ the algorithm in balls
def _gemm(F: RoundingModel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """X Y as a GEMM computes it, each entry a dot product of t terms in any order, FMA or not: the exact product of
    the balls (arb_mat), widened by what `mul` and `sum_any` allow for its t products and t - 1 additions,
    t·u·(1 + u)·(|X||Y|)_ij + 2t·η (the same bound, in one step per entry rather than per term: the products of the
    approximants are most of the model's time)."""
    t = x.shape[1]
    exact = arb_mat(x.tolist()) * arb_mat(y.tolist())
    magnitude = (arb_mat([[arb(v.abs_upper()) for v in row] for row in x])
                 * arb_mat([[arb(v.abs_upper()) for v in row] for row in y]))
    factor = t * F.u * (1 + F.u)
    out = spectra.obj((x.shape[0], y.shape[1]))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = F.in_range(exact[i, j] + arb(0, factor * magnitude[i, j] + 2 * t * F.eta))
    return out


def _identity(n: int) -> np.ndarray:
    out = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        out[i, j] = arb(int(i == j))
    return out


def _combination(F, coefficients, matrices) -> np.ndarray:
    """Σ c_k M_k: each product and the sum rounded, in any order (a coefficient 1 multiplies exactly, 0 adds
    nothing)."""
    out = spectra.obj(matrices[0].shape)
    for index in np.ndindex(*out.shape):
        terms = [m[index] if c == 1 else mul(F, c, m[index]) for c, m in zip(coefficients, matrices) if c != 0]
        out[index] = sum_any(F, terms)
    return out


def _sum(F, *matrices) -> np.ndarray:
    return _combination(F, [1] * len(matrices), matrices)


def _approximant(F: RoundingModel, degree: int, a: np.ndarray) -> np.ndarray:
    """T_degree(A) evaluated as mexp evaluates it (module docstring)."""
    eye = _identity(a.shape[0])
    a2 = _gemm(F, a, a)
    if degree == 1:
        return _sum(F, eye, a)
    if degree == 2:
        return _sum(F, eye, a, _combination(F, [arb(1) / 2], [a2]))  # A² / 2: a division by 2, exact
    if degree == 4:
        inner = _combination(F, [_coefficient(F, 1 / 2.0), _coefficient(F, 1 / 6.0), _coefficient(F, 1 / 24.0)],
                             [eye, a, a2])
        return _sum(F, eye, a, _gemm(F, a2, inner))
    if degree == 8:
        x = {name: _coefficient(F, value) for name, value in t8_coefficients().items()}
        a4 = _gemm(F, a2, _combination(F, [x["x1"], x["x2"]], [a, a2]))
        a8 = _gemm(F, _combination(F, [x["x3"], 1], [a2, a4]),
                           _combination(F, [x["x4"], x["x5"], x["x6"], x["x7"]], [eye, a, a2, a4]))
        return _combination(F, [1, 1, x["y2"], 1], [eye, a, a2, a8])
    powers = [eye, a, a2, _gemm(F, a, a2)]
    if degree == 12:
        b = [_combination(F, [_coefficient(F, c) for c in row], powers) for row in T12]
        b2 = _sum(F, b[2], _gemm(F, b[3], b[3]))
        return _sum(F, b[0], _gemm(F, _sum(F, b[1], b2), b2))
    powers.append(_gemm(F, powers[3], powers[3]))
    b = [_combination(F, [_coefficient(F, c) for c in row], powers) for row in T18]
    b3 = _sum(F, b[3], _gemm(F, b[0], b[4]))
    return _sum(F, b[1], _gemm(F, _sum(F, b[2], b3), b3))


def _scalings(F: RoundingModel, norm: arb, theta: float) -> list[int]:
    """The s = max(0, ceil(log2(norm / θ18))) the rounded quotient and logarithm may give (ceil(x) = s where
    s - 1 < x <= s)."""
    ratio = F.round(norm / arb(theta))
    if not ratio > 0:
        return [0]
    log = F.round(ratio.log() / arb(2).log(), K_LOG2)
    low, high = math.floor(float(log.lower())), math.ceil(float(log.upper()))
    return sorted({max(0, s) for s in range(low, high + 1) if log.upper() > s - 1 and log.lower() <= s})


def _scaled_and_squared(F: RoundingModel, a: np.ndarray, s: int) -> np.ndarray:
    scaled = spectra.obj(a.shape)
    for index in np.ndindex(*a.shape):
        scaled[index] = F.round(a[index] / 2**s)  # exact unless it falls below the normal range
    out = _approximant(F, 18, scaled)
    for _ in range(s):
        out = _gemm(F, out, out)
    return out


def mexp(F: RoundingModel, a: np.ndarray, highest: bool) -> np.ndarray:
    """torch's mexp of one matrix in the model: the union over every branch the balls of its 1-norm allow."""
    n = a.shape[0]
    columns = [sum_any(F, [abs(a[i, j]) for i in range(n)]) for j in range(n)]
    norm = arb(max(c.lower() for c in columns)).union(arb(max(c.upper() for c in columns)))
    thetas = [F.format.round(t) for t in THETAS[F.format.name]]
    branches = []
    if not highest:  # T_k where the norm may lie in (θ_{k-1}, θ_k] and below θ12 (from θ12 on, T18 overwrites it)
        for k, degree in enumerate((1, 2, 4, 8, 12)):
            lower = -1.0 if k == 0 else thetas[k - 1]
            if norm.upper() > lower and norm.lower() <= thetas[k] and norm.lower() < thetas[4]:
                branches.append(_approximant(F, degree, a))
    if highest or norm.upper() >= thetas[4]:
        branches += [_scaled_and_squared(F, a, s) for s in _scalings(F, norm, thetas[5])]
    return lapack.union(branches)


def _exp(matrix: np.ndarray) -> np.ndarray:
    n = matrix.shape[0]
    value = arb_mat([[matrix[i, j] for j in range(n)] for i in range(n)]).exp()
    out = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        out[i, j] = value[i, j]
    return out


def _block(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """[[Aᵀ, G], [0, Aᵀ]]."""
    n = a.shape[0]
    out = spectra.obj((2 * n, 2 * n))
    for i, j in np.ndindex(n, n):
        out[i, j] = out[n + i, n + j] = a[j, i]
        out[i, n + j] = g[i, j]
        out[n + i, j] = ZERO
    return out


def _upper_right(m: np.ndarray) -> np.ndarray:
    n = m.shape[0] // 2
    return m[:n, n:]


def _united(model: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return lapack.union([model, exact])


def _highest(a: np.ndarray) -> bool:
    return a.ndim == 3 and a.shape[0] > 1


def _forward(F, arrays, p):
    a = arrays[0]
    highest = _highest(a)
    return _per_matrix(a, lambda m: _united(mexp(F, m, highest), _exp(m)))


def _backward(F, arrays, out, grad, p):
    a = arrays[0]
    highest = _highest(a)
    pieces = {b: _block(a[b], grad[b]) for b in spectra.batches(a)}
    result = spectra.obj(a.shape)
    for b, block in pieces.items():
        united = _united(_upper_right(mexp(F, block, highest)), _upper_right(_exp(block)))
        for index in np.ndindex(*united.shape):
            result[b + index] = united[index]
    return (result,)


def _per_matrix(a: np.ndarray, function) -> np.ndarray:
    out = spectra.obj(a.shape)
    for b in spectra.batches(a):
        piece = function(a[b])
        for index in np.ndindex(*piece.shape):
            out[b + index] = piece[index]
    return out


def _exact(fmt, arrays, p):
    a = arrays[0]
    value = _per_matrix(a, _exp)

    def pullback(adjoint):
        out = spectra.obj(a.shape)
        for b in spectra.batches(a):
            piece = _upper_right(_exp(_block(a[b], adjoint[b])))
            for index in np.ndindex(*piece.shape):
                out[b + index] = piece[index]
        return [out]

    return value, pullback


def _sympy(arrays, p):
    raise NotImplementedError("no SymPy form: the exact pass uses the entry's exact_vjp (arb_mat.exp)")


def _options(shapes):
    a = shapes[0]
    square = len(a) in (2, 3) and a[-1] == a[-2] >= 2 and (len(a) == 2 or a[0] <= spectra.MAX_BATCH)
    return [_params()] if square else []


def _operands(shape):
    n = min(max(shape[-1], 2), 3)
    return [((n, n),)] if len(shape) == 2 else [((min(shape[0], spectra.MAX_BATCH), n, n),)]


TENSOR_OPS["matrix_exp"] = TensorOp(
    "matrix_exp", 1,
    (_spelling("torch.matrix_exp({0})", torch.matrix_exp),
     _spelling("torch.linalg.matrix_exp({0})", torch.linalg.matrix_exp),
     _spelling("{0}.matrix_exp()", torch.Tensor.matrix_exp)),
    _sympy, _forward, _backward, OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))),
    lambda shapes, p: shapes[0], ("matrix_exp",), ranks=(2, 3), cpu_dtypes=linalg_ops.FLOATS, operand_shapes=_operands,
    matrix_domains=("norm_above_one",), exact_vjp=_exact)
linalg_ops.NAMES.append("matrix_exp")
