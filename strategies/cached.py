"""Strategies built once and reused: the expression strategies draw from dozens of small strategies per
example, and Hypothesis validates every new strategy object on its first draw. Building them afresh
inside each draw cost more than running torch and the oracle (measured: profile of test_op_gradient)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from hypothesis import strategies as st


@cache
def _sampled(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


def choice(options: Iterable) -> st.SearchStrategy:
    """`st.sampled_from(options)`, one shared strategy per distinct tuple of (hashable) options."""
    options = tuple(options)
    try:
        return _sampled(options)
    except TypeError:  # an unhashable option: a strategy of its own, as sampled_from would give
        return st.sampled_from(options)
