"""A tensor op's arguments over the dtype's whole range of magnitudes, not only [-3, 3].

Each argument tensor is drawn one of two ways, simple values first so failures shrink to a readable point:
- `spread`: every element on its own, log-uniformly over the binades from the smallest subnormal to the
  overflow threshold, either sign, or a simple value (0, ±1, 2, ...): wildly different magnitudes within one
  tensor, where sums cancel, squares overflow and small members underflow against large ones;
- `scaled`: the ordinary values of the tensor strategies times 2^k, k drawn over every binade the values can
  be moved to exactly (no element overflows or leaves the normal range), in three bands drawn as often: where
  the largest element's square underflows, where it overflows, and between: the same ties, zeros and
  cancellations at every scale, where a formula's intermediates (a sum of squares, a product of two
  arguments) overflow or underflow before the result does.
An argument an op takes from a restricted set of matrices (`TensorOp.matrix_domains`) is drawn from that set
and scaled by 2^k where the set is a cone (an invertible, positive definite, diagonally dominant matrix stays
one; its singular values and eigenvalue gaps scale with it), and left as drawn where it is not (Householder
scalars, sampling grids: their meaning is tied to their size).
"""

from __future__ import annotations

import math
from functools import cache

from hypothesis import strategies as st

from oracles.numerics.dtypes import FloatFormat
from oracles.table.domains import REALS
from strategies.cached import choice
from strategies.matrices import matrix_values
from strategies.values import SIMPLE_VALUES, leaf_value_lists
from strategies.whole_domain import ArgumentPlan, argument_value, segments_between

# the matrix sets that multiplying by a positive power of two maps onto themselves
SCALABLE_MATRICES = frozenset({"invertible", "invertible_flat", "diagonally_dominant", "positive_determinant",
                               "positive_definite", "cholesky_factor", "symmetric_separated", "separated_singular"})
KINDS = ("scaled", "spread")  # scaled first: it shrinks to the ordinary values times 1
BANDS = ("middle", "small", "large")


@cache
def _spread_plan(fmt: FloatFormat) -> ArgumentPlan:
    """Simple values, else a distance from 0 drawn binade by binade up to the largest finite float."""
    return ArgumentPlan(SIMPLE_VALUES, segments_between([0.0], REALS, fmt), (), REALS)


def _binade(x: float) -> int:
    return math.frexp(abs(x))[1] - 1


def exact_scales(values: list[float], fmt: FloatFormat) -> tuple[int, int]:
    """The exponents k for which every value times 2^k is a normal float of the format (or 0): the scaling is
    exact there, so the scaled tensor keeps every relation of the drawn one (ties, signs, rank)."""
    nonzero = [abs(v) for v in values if v != 0]
    if not nonzero:
        return 0, 0
    # a value of the format has at most its mantissa's bits, so 2^k times it is finite while its binade is at
    # most the largest finite float's, and exact while it stays at or above the smallest normal's
    low = _binade(fmt.smallest_normal) - min(_binade(v) for v in nonzero)
    high = _binade(fmt.max_finite) - max(_binade(v) for v in nonzero)
    return (low, high) if low <= high else (0, 0)


def scale_bands(values: list[float], fmt: FloatFormat) -> dict[str, tuple[int, int]]:
    """The exact scales 2^k split where the largest element's square underflows ("small": below the square root
    of the smallest normal), overflows ("large": above the square root of the largest finite float) or neither:
    each band is drawn as often, since squares and products that leave the range are where formulas break."""
    low, high = exact_scales(values, fmt)
    top = max((_binade(v) for v in values if v), default=0)
    small = _binade(math.sqrt(fmt.smallest_normal)) - top - 1  # the largest below sqrt(smallest normal)
    large = _binade(math.sqrt(fmt.max_finite)) - top + 1  # the largest above sqrt(max)
    bands = {"middle": (max(low, small + 1), min(high, large - 1)), "small": (low, min(high, small)),
             "large": (max(low, large), high)}
    return {name: band for name, band in bands.items() if band[0] <= band[1]} or {"middle": (0, 0)}


def _scaled(draw, values: list[float], fmt: FloatFormat, band: str, label: str) -> list[float]:
    bands = scale_bands(values, fmt)
    low, high = bands.get(band) or next(iter(bands.values()))
    k = draw(st.integers(low, high), label=f"{label}: scale 2^k") if low < high else low
    return [math.ldexp(v, k) for v in values]


def ways(draw) -> tuple[str, str]:
    """How a case's arguments are drawn, once for all of them (so that every argument is tiny together, as a
    product's underflow needs): the kind, and the scale band of the scaled ones."""
    return draw(choice(KINDS), label="kind of values"), draw(choice(BANDS), label="scale band")


@st.composite
def whole_range_values(draw, fmt: FloatFormat, size: int, way: tuple[str, str], matrix_domain: str = "", shape=(),
                       label: str = "x"):
    """`size` row-major element values of one argument (a matrix set's, for `matrix_domain`, of `shape`), drawn
    the `way` (`ways`) of its case."""
    kind, band = way
    if matrix_domain:
        values = draw(matrix_values(fmt, shape, matrix_domain), label=f"{label}: matrices")
        return _scaled(draw, values, fmt, band, label) if matrix_domain in SCALABLE_MATRICES else values
    if kind == "scaled":
        return _scaled(draw, draw(leaf_value_lists(fmt, size), label=f"{label}: values"), fmt, band, label)
    plan = _spread_plan(fmt)
    return [argument_value(draw, plan, fmt, f"{label}[{i}]") for i in range(size)]
