"""Square matrices inside a linear-algebra op's domain (oracles.table.tensor_ops `matrix_domains`), by
construction: strictly diagonally dominant, so invertible and as well conditioned as their dominance margin
says, with the rows permuted so that partial pivoting has work to do, and scaled by a power of two.

- "diagonally_dominant": each diagonal element, of a drawn sign, exceeds the sum of the magnitudes of its row's
  other elements by a margin (Lévy-Desplanques: nonsingular, and so is each of its triangles);
- "invertible": the same with the rows permuted;
- "positive_determinant": the same with positive diagonals (Gershgorin: every eigenvalue has a positive real
  part, so the determinant is positive), permuted by an even permutation, or by an odd one with a row negated;
- "positive_definite": symmetric with positive dominant diagonals (Gershgorin: positive eigenvalues);
- "cholesky_factor": lower triangular with positive dominant diagonals, exact zeros above (a Cholesky factor);
- "invertible_flat": a tensor of N² elements whose row-major values are one invertible N x N matrix (tensorinv,
  tensorsolve reshape it so);
- "nonconstant_rows": leaf values whose rows (along the last dim) spread enough for a variance the dtype holds
  (corrcoef's variances are positive);
- "positive_weights": cov's aweights, each one of `POSITIVE_WEIGHTS`;
- "norm_above_one": any off-diagonal leaf values and a diagonal of a drawn sign and a magnitude of 1 to 3, so that every
  row and every column sums to 1 or more in magnitude (matrix_exp: its 1-norm, and the ∞-norm that bounds the norm of
  its backward's block matrix from below, stay above the interval of the degree-8 approximant, where torch is wrong:
  finding matrix-exp-t8-coefficient; tests/test_matrix_exp_ops.py checks the smaller norms);
- "grid": grid_sample's sampling coordinates (`GRID_VALUES`), not square matrices: multiples of 1/8 in
  [-1.625, 1.625] that are no multiples of 1/2.

Most margins are 1/4 to 3 (condition numbers of a few tens); some are 2^-10 and 2^-20, near-singular matrices
whose gradients are large and whose enclosures widen by 10^3 to 10^6 (in float32 some are wider than the
value: unverified). Values are exact in the dtype: the off-diagonal elements are leaf values, each diagonal is
rounded to the dtype (by less than the smallest margin) and scaling by 2^e is exact.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import strategies as st

from oracles.numerics.dtypes import FloatFormat
from strategies import spectra
from strategies.cached import choice
from strategies.values import leaf_value_lists, leaf_values

MARGINS = (1.0, 0.5, 2.0, 0.25, 3.0, 1.5, 2.0**-10, 2.0**-20)
SCALES = (0, -1, 1, -4, 4)  # powers of two the whole matrix is scaled by
SIGNED = ("invertible", "diagonally_dominant")  # domains whose diagonal elements take either sign
PERMUTED = ("invertible", "positive_determinant")  # domains whose rows are permuted
LOWER = ("positive_definite", "cholesky_factor")  # domains drawn from their lower triangle
# grid_sample's kinks and jumps (pixel boundaries, cell centres, the clip and reflection edges) lie at multiples of
# 1/6 of the normalized coordinate for inputs of sides 1 to 3 with either align_corners: a multiple of 1/8 that is
# no multiple of 1/2 is at least 1/24 away from them, and its pixel coordinate is exact in every dtype. Beyond
# [-1, 1] the padding modes take over; the simplest first.
# cov's observation weights (aweights): positive, exact in every dtype, 1/8 to 4, the simplest first
POSITIVE_WEIGHTS = (1.0, 0.5, 2.0, 0.25, 1.5, 3.0, 0.75, 0.125, 4.0)
GRID_VALUES = tuple(sorted((j / 8 for j in range(-13, 14) if j % 4), key=lambda v: (abs(v), v < 0)))


def _parity(permutation: tuple[int, ...]) -> int:
    inversions = sum(1 for i, j in itertools.combinations(range(len(permutation)), 2)
                     if permutation[i] > permutation[j])
    return -1 if inversions % 2 else 1


@st.composite
def _matrix(draw, fmt: FloatFormat, n: int, domain: str) -> list[float]:
    """One n x n matrix of `domain`, row-major."""
    rows = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j and (domain not in LOWER or j < i):
                rows[i][j] = draw(leaf_values(fmt), label=f"a[{i}, {j}]")
    if domain == "positive_definite":
        for i in range(n):
            for j in range(i + 1, n):
                rows[i][j] = rows[j][i]
    for i in range(n):
        margin = draw(choice(MARGINS), label=f"margin of row {i}")
        positive = domain not in SIGNED or draw(st.booleans(), label=f"diagonal {i} positive")
        size = fmt.round(math.fsum(abs(v) for v in rows[i]) + margin)
        rows[i][i] = size if positive else -size
    if domain in PERMUTED:
        order = draw(choice(list(itertools.permutations(range(n)))), label="row order")
        rows = [rows[k] for k in order]
        if domain == "positive_determinant" and _parity(order) < 0:
            rows[0] = [-v for v in rows[0]]
    scale = 2.0 ** draw(choice(SCALES), label="scale")
    return [v * scale for row in rows for v in row]


@st.composite
def _nonconstant_rows(draw, fmt: FloatFormat, shape: tuple[int, ...]) -> list[float]:
    """Leaf values whose rows (along the last dim) spread by at least 4·sqrt(the smallest normal), so that no
    variance underflows (corrcoef divides by its square root; below that spread torch's gradient is NaN: finding
    corrcoef-variance-underflow): a row that spreads less has its last element replaced by the first plus 1 (a
    first element of magnitude 1 or more: by its negation)."""
    values = list(draw(leaf_value_lists(fmt, math.prod(shape)), label="values"))
    n, least = shape[-1], 4 * math.sqrt(fmt.smallest_normal)
    for start in range(0, len(values), n):
        row = values[start:start + n]
        if max(row) - min(row) < least:
            values[start + n - 1] = fmt.round(row[0] + 1.0) if abs(row[0]) < 1 else -row[0]
    return values


@st.composite
def _norm_above_one(draw, fmt: FloatFormat, n: int) -> list[float]:
    values = []
    for i, j in itertools.product(range(n), repeat=2):
        if i == j:
            sign = 1.0 if draw(st.booleans(), label=f"diagonal {i} positive") else -1.0
            values.append(sign * draw(choice((1.0, 2.0, 1.5, 3.0, 1.25)), label=f"|a[{i}, {i}]|"))
        else:
            values.append(draw(leaf_values(fmt), label=f"a[{i}, {j}]"))
    return values


@st.composite
def matrix_values(draw, fmt: FloatFormat, shape: tuple[int, ...], domain: str) -> list[float]:
    """Row-major values of a square matrix or a batch of them (shape (..., n, n)), each in `domain` (the spectral
    domains, rectangular too: strategies/spectra.py)."""
    if domain in spectra.DOMAINS:
        return draw(spectra.spectral_values(fmt, shape, domain), label="matrices")
    if domain == "invertible_flat":
        return draw(_matrix(fmt, math.isqrt(math.prod(shape)), "invertible"), label="matrix")
    if domain == "positive_weights":
        size = math.prod(shape)
        return draw(st.lists(choice(POSITIVE_WEIGHTS), min_size=size, max_size=size), label="weights")
    if domain == "nonconstant_rows":
        return draw(_nonconstant_rows(fmt, shape), label="rows")
    if domain == "norm_above_one":
        return [v for _ in range(math.prod(shape[:-2])) for v in draw(_norm_above_one(fmt, shape[-1]), label="matrix")]
    if domain == "grid":
        size = math.prod(shape)
        return draw(st.lists(choice(GRID_VALUES), min_size=size, max_size=size), label="grid")
    n = shape[-1]
    values: list[float] = []
    for b in range(math.prod(shape[:-2])):
        values += draw(_matrix(fmt, n, domain), label=f"matrix {b}")
    return values
