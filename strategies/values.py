"""Input values: exactly representable in the dtype under test, simple ones first."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from oracles.numerics.dtypes import FloatFormat
from strategies.cached import choice

# Shrink targets first: small integers and halves make counterexamples readable.
SIMPLE_VALUES = (1.0, 2.0, 0.5, 0.0, -1.0, -2.0, -0.5, 3.0, 1.5, -1.5, 0.25)
VALUE_RANGE = 3.0  # large enough to reach every regime of the op table, small enough not to overflow


@cache  # one strategy object per format: see strategies/cached.py
def leaf_values(fmt: FloatFormat) -> st.SearchStrategy[float]:
    """A float whose exact value the dtype holds: drawn in float64, then rounded to the format."""
    arbitrary = st.floats(-VALUE_RANGE, VALUE_RANGE, allow_nan=False, allow_infinity=False)
    return st.one_of(choice(SIMPLE_VALUES), arbitrary.map(fmt.round))


@cache
def leaf_value_lists(fmt: FloatFormat, size: int) -> st.SearchStrategy[list[float]]:
    """`size` leaf values (a tensor's elements, flattened)."""
    return st.lists(leaf_values(fmt), min_size=size, max_size=size)
