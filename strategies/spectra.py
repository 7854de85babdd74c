"""Matrices with well-separated spectra, by construction, for the spectral ops (oracles.table.spectral_ops), where
the derivatives of eigenvalues, eigenvectors and singular values exist (they do not at a repeated one):

- "symmetric_separated": Qᵀ diag(λ) Q with distinct drawn λ (one pair maybe only 2^-10 apart, so that eigenvector
  derivatives, which divide by the gaps, are large) and a drawn rotation Q;
- "separated_singular": P diag(σ) Qᵀ (m x n, the first min(m, n) columns of P and Q) with distinct positive σ;
- "householder_scalars": householder_product's τ, in [-3, 0] or (1, 3]: a reflector's v has ‖v‖² >= 1 (its 1 on the
  diagonal), so τ ‖v‖² is never 1 and every H(τ) = I - τ v vᵀ is invertible, as torch's backward assumes (where
  one is not, torch's gradient is NaN: finding householder-product-singular-reflector).

The rotations are products of Givens rotations whose cosines and sines are Pythagorean fractions (3/5, 4/5, ...),
so the product is computed exactly (fractions) and rounded to the dtype once per element (symmetrically). The
exact spectrum is then that of the rounded matrix, which the oracle encloses itself; rounding moves each eigenvalue
or singular value by less than u·‖A‖, far less than the smallest gap drawn, so they stay distinct.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from hypothesis import strategies as st

from oracles.numerics.dtypes import FloatFormat
from strategies.cached import choice
from strategies.values import leaf_values

DOMAINS = ("symmetric_separated", "separated_singular", "householder_scalars")
TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (20, 21, 29), (7, 24, 25))
# No eigenvalue 0: an enclosure of an exact 0 never excludes 0, so an elementwise op with a kink or branch at 0
# after the op (abs, sign) would leave the case unverified after retrying up to the highest precision.
EIGENVALUES = tuple(Fraction(v) for v in (1, -1, 2, 3, Fraction(1, 2), -2, 4, Fraction(-1, 2), Fraction(3, 2), -3))
SINGULAR_VALUES = tuple(Fraction(v) for v in (1, 2, 3, Fraction(1, 2), 4, Fraction(3, 2), Fraction(1, 4)))
CLOSE = Fraction(1, 2**10)  # the gap of a close pair
SCALES = (0, -1, 1, -4, 4)  # powers of two the whole matrix is scaled by


def _identity(n: int) -> list[list[Fraction]]:
    return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]


def _product(x, y):
    return [[sum((x[i][k] * y[k][j] for k in range(len(y))), Fraction(0)) for j in range(len(y[0]))]
            for i in range(len(x))]


@st.composite
def _rotation(draw, n: int) -> list[list[Fraction]]:
    """A product of Givens rotations in the planes (0, 1), (1, 2), (0, 2) (those of an n x n matrix)."""
    q = _identity(n)
    for p, r in [(p, r) for p, r in ((0, 1), (1, 2), (0, 2)) if r < n]:
        a, b, h = draw(choice(TRIPLES), label=f"rotation in plane {p}, {r}")
        c, s = (Fraction(a, h), Fraction(b, h)) if draw(st.booleans(), label="cosine first") else \
            (Fraction(b, h), Fraction(a, h))
        s = s if draw(st.booleans(), label="sine positive") else -s
        g = _identity(n)
        g[p][p], g[p][r], g[r][p], g[r][r] = c, -s, s, c
        q = _product(g, q)
    return q


@st.composite
def _distinct(draw, values: tuple, k: int, label: str) -> list[Fraction]:
    drawn = draw(st.lists(choice(values), min_size=k, max_size=k, unique=True), label=label)
    if k >= 2 and draw(st.booleans(), label="a close pair"):
        drawn[1] = drawn[0] + CLOSE  # the others are multiples of 1/4: still distinct (and positive, for σ)
    return drawn


@st.composite
def _spectral_matrix(draw, fmt: FloatFormat, m: int, n: int, domain: str) -> list[float]:
    """One m x n matrix of `domain`, row-major."""
    scale = Fraction(2) ** draw(choice(SCALES), label="scale")
    if domain == "symmetric_separated":
        q = draw(_rotation(n), label="eigenvectors")
        lam = draw(_distinct(EIGENVALUES, n, "eigenvalues"), label="eigenvalues")
        a = [[sum((q[k][i] * lam[k] * q[k][j] for k in range(n)), Fraction(0)) for j in range(n)] for i in range(n)]
    else:
        k = min(m, n)
        p, q = draw(_rotation(m), label="left vectors"), draw(_rotation(n), label="right vectors")
        sigma = draw(_distinct(SINGULAR_VALUES, k, "singular values"), label="singular values")
        a = [[sum((p[i][t] * sigma[t] * q[j][t] for t in range(k)), Fraction(0)) for j in range(n)] for i in range(m)]
    rounded = [[fmt.round(float(a[min(i, j)][max(i, j)] if domain == "symmetric_separated" else a[i][j]) * scale)
                for j in range(n)] for i in range(m)]
    return [v for row in rounded for v in row]


@functools.cache  # one strategy object per format (strategies/cached.py)
def _reflector_scalars(fmt: FloatFormat) -> st.SearchStrategy[float]:
    """The leaf values, those in (0, 1] moved to [2, 3] (x + 1 would round to 1 for tiny x)."""
    return leaf_values(fmt).map(lambda x: fmt.round(2 + x) if 0 < x <= 1 else x)


@st.composite
def spectral_values(draw, fmt: FloatFormat, shape: tuple[int, ...], domain: str) -> list[float]:
    """Row-major values of a matrix or a batch of them (shape (..., m, n)), each in `domain`."""
    if domain == "householder_scalars":
        size = math.prod(shape)
        return draw(st.lists(_reflector_scalars(fmt), min_size=size, max_size=size), label="scalars")
    m, n = shape[-2:]
    values: list[float] = []
    for b in range(math.prod(shape[:-2])):
        values += draw(_spectral_matrix(fmt, m, n, domain), label=f"matrix {b}")
    return values
