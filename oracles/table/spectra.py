"""Eigen-decompositions of symmetric matrices and singular value decompositions, exactly (rigorous enclosures in
arb) and as torch computed them (LAPACK's factors, recomputed), and what the spectral entries of the tensor-op
table share (oracles.table.spectral_ops, singular_ops, qr_ops, pinv_ops, householder_ops, ormqr_ops: `entry`,
`NAMES`, `recomputed`).

Exact: the eigenvalues and eigenvectors of a real symmetric matrix have no closed form SymPy could differentiate
beyond 2 x 2, but arb encloses them rigorously: `acb_mat.eig(right=True, algorithm="rump")` isolates each simple
eigenvalue in a ball and encloses an eigenvector of it (Rump's verified inclusion; it fails where eigenvalues are
not isolated, which here raises `Undecided`, so the exact pass retries at a higher precision and a truly repeated
eigenvalue ends as `Singular`: the spectral derivatives do not exist there). The enclosed eigenvector is complex
and arbitrarily scaled; turning its largest component real and positive and normalizing gives a ball around a
real unit eigenvector, whose sign is fixed afterwards (`aligned`). Singular triples come from the eigenvectors of
AᵀA (or of AAᵀ where A is wide): σ_k = sqrt(μ_k) and u_k = A v_k / σ_k (v_k = Aᵀ u_k / σ_k).

torch: LAPACK's eigensolvers and SVD (syevd, gesdd) are iterative, and no a-priori bound of their error is
rigorous without a constant the library does not state (Householder QR's bounds hold only up to such constants
too). So the backward's rounding model takes the factors torch computed as its inputs: the entries recompute them
with the same call on the same float matrix (`recomputed`; the CPU's LAPACK is deterministic for these sizes, and
tests/test_spectral_ops.py checks they are bit for bit the ones autograd saved) and enclose each factor element in
the hull of torch's value and the exact one. A ball that holds both holds what torch's formula multiplies and
what the exact derivative multiplies, so torch's formulas evaluated in ball arithmetic over these hulls, every
operation rounded, enclose both torch's gradient and the exact gradient; its width is the measured distance of
LAPACK's factors from the exact ones plus the rounding of the formula, no tuned constant. The factors can be
recomputed only where the op's argument is a float matrix known exactly (an input, as the strategies draw it):
elsewhere `Singular`. They are recomputed on the CPU: on another device (cuSOLVER) torch's factors differ in
their last bits and these enclosures do not hold them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from flint import acb, acb_mat, arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel, Singular, Undecided
from oracles.table.tensor_formulas import mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES: list[str] = []  # the entries of spectral_ops, singular_ops, qr_ops, pinv_ops, householder_ops, ormqr_ops
FLOATS = ("float64", "float32")  # LAPACK's real types
MAX_BATCH = 2


def _real_unit(column: list[acb]) -> list[arb]:
    """A real unit vector (up to sign) from an enclosure of a complex multiple of a real eigenvector: the largest
    component's phase divided out, the imaginary parts (balls around 0) dropped, normalized."""
    pivot = max(range(len(column)), key=lambda i: float(abs(column[i]).mid()))
    magnitude = abs(column[pivot])
    if magnitude.contains(0):
        raise Undecided("an eigenvector's enclosure holds 0")
    phase = column[pivot].conjugate() / magnitude
    real = [(c * phase).real for c in column]
    norm = sum((r * r for r in real), arb(0)).sqrt()
    return [r / norm for r in real]


def symmetric_eigen(a: np.ndarray) -> tuple[list[arb], list[list[arb]]]:
    """Eigenvalues of (A + Aᵀ) / 2 in ascending order and unit eigenvectors (vectors[k] goes with values[k]; signs
    arbitrary), enclosed; `Undecided` where two eigenvalues are not isolated from each other."""
    n = a.shape[0]
    symmetric = acb_mat([[acb((a[i, j] + a[j, i]) / 2) for j in range(n)] for i in range(n)])
    try:
        values, vectors = symmetric.eig(right=True, algorithm="rump")
    except ValueError as exc:
        raise Undecided(f"the eigenvalues are not isolated: {exc}") from exc
    pairs = [(values[k].real, _real_unit([vectors[i, k] for i in range(n)])) for k in range(n)]
    pairs.sort(key=lambda pair: float(pair[0].mid()))
    for (low, _), (high, _) in zip(pairs, pairs[1:]):
        if not low < high:
            raise Undecided("two eigenvalues may be equal (their derivative would not exist)")
    return [value for value, _ in pairs], [vector for _, vector in pairs]


def sign_towards(vector: list[arb], reference) -> int:
    """1 or -1: the sign that makes `vector` point the way of `reference` (torch's computed vector)."""
    dot = sum((v * arb(float(r)) for v, r in zip(vector, reference)), arb(0))
    if dot > 0:
        return 1
    if dot < 0:
        return -1
    raise Singular("torch's vector is not close to either sign of the exact one")


def aligned(vector: list[arb], reference) -> list[arb]:
    """`vector` or its negative, whichever points the way of `reference`."""
    return vector if sign_towards(vector, reference) > 0 else [-v for v in vector]


def singular_triples(a: np.ndarray) -> tuple[list[arb], list[list[arb]], list[list[arb]]]:
    """(σ descending, u_k, v_k) of A (m x n) for its min(m, n) singular values, enclosed, each (u_k, v_k) pair of
    one sign (arbitrary); `Undecided` where singular values are not isolated or one may be 0."""
    m, n = a.shape
    tall = m >= n
    side = a if tall else a.T
    gram = np.empty((side.shape[1], side.shape[1]), dtype=object)
    for i in range(side.shape[1]):
        for j in range(side.shape[1]):
            gram[i, j] = sum((side[k, i] * side[k, j] for k in range(side.shape[0])), arb(0))
    values, vectors = symmetric_eigen(gram)
    if not values[0] > 0:
        raise Undecided("a singular value may be 0")
    sigmas, near, far = [], [], []
    for mu, x in reversed(list(zip(values, vectors))):
        sigma = mu.sqrt()
        y = [sum((side[i, k] * x[k] for k in range(len(x))), arb(0)) / sigma for i in range(side.shape[0])]
        sigmas.append(sigma)
        near.append(x)
        far.append(y)
    return (sigmas, far, near) if tall else (sigmas, near, far)


# ------------------------------------------------------------------ torch's factors, recomputed
def recomputed(F: RoundingModel, a: np.ndarray, factorize, *options) -> tuple:
    """`factorize(tensor, *options)` (torch's calls, a tuple of tensors) on the float tensor whose exact values the
    balls `a` are, as nested lists of floats; `Singular` where the balls are not exact (torch's factors of a computed
    matrix cannot be recomputed from an enclosure of it). Cached: the model's forward and backward and the exact
    pass ask for the same factors (and torch's QR costs milliseconds where it runs on two threads)."""
    if not all(v.is_exact() for v in a.reshape(-1)):
        raise Singular("LAPACK's factors are recomputed only for a matrix the op receives exactly (an input)")
    return _recomputed(factorize, F.format.name, a.shape, tuple(float(v.mid()) for v in a.reshape(-1)), options)


@functools.lru_cache(maxsize=256)
def _recomputed(factorize, dtype: str, shape, values, options) -> tuple:
    t = torch.tensor(values, dtype=torch.float64).reshape(shape).to(format_named(dtype).torch_dtype)
    return tuple(x.to(torch.float64).tolist() for x in factorize(t, *options))


def hull(value: float, exact: arb) -> arb:
    return arb(value).union(exact)


# ------------------------------------------------------------------ shared by the entries
def obj(shape) -> np.ndarray:
    return np.empty(shape, dtype=object)


def batches(a: np.ndarray) -> list[tuple[int, ...]]:
    """The index of each matrix of a batch ((), for one matrix)."""
    return list(np.ndindex(*a.shape[:-2]))


def per_batch(function, *arrays: np.ndarray) -> np.ndarray:
    """function(one matrix of each argument) for every matrix of a batch (the arguments' leading dims), stacked."""
    pieces = {b: np.asarray(function(*(x[b] for x in arrays)), dtype=object) for b in batches(arrays[0])}
    shape = next(iter(pieces.values())).shape
    out = obj(arrays[0].shape[:-2] + shape)
    for b, piece in pieces.items():
        for index in np.ndindex(*shape):
            out[b + index] = piece[index]
    return out


def at(nested, b: tuple):
    """The matrix `b` of a batch of nested lists (torch's tolist())."""
    for i in b:
        nested = nested[i]
    return nested


def matmul(F: RoundingModel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """X Y, each entry a dot product in any order (a GEMM, FMA or not)."""
    out = obj((x.shape[0], y.shape[1]))
    for i in range(x.shape[0]):
        for j in range(y.shape[1]):
            out[i, j] = sum_any(F, [mul(F, x[i, k], y[k, j]) for k in range(x.shape[1])])
    return out


def _no_closed_form(arrays, p):
    raise NotImplementedError("no SymPy form: the exact pass uses the entry's exact_vjp")


def entry(name, spellings, forward, backward, exact, opinfo, domain, operands, options, shape):
    """One spectral entry of one matrix argument (ranks 2 and 3: a matrix or a batch) in LAPACK's dtypes, its
    matrices drawn in `domain`; `shape(argument shape, params)` is the output's."""
    TENSOR_OPS[name] = TensorOp(
        name, 1, tuple(spellings), _no_closed_form, forward, backward,
        OptionSpace(functools.cache(lambda shapes: tuple(options(shapes)))), lambda shapes, p: shape(shapes[0], p),
        tuple(opinfo), ranks=(2, 3), cpu_dtypes=FLOATS, operand_shapes=operands, matrix_domains=(domain,),
        exact_vjp=exact)
    NAMES.append(name)
