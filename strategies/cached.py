"""Strategies built once and reused: the expression strategies draw from dozens of small strategies per
example, and Hypothesis validates every new strategy object on its first draw. Building them afresh
inside each draw cost more than running torch and the oracle (measured: profile of test_op_gradient)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from hypothesis import strategies as st


@cache
def _sampled(typed: tuple) -> st.SearchStrategy:
    return st.sampled_from(tuple(option for _, option in typed))


def choice(options: Iterable) -> st.SearchStrategy:
    """`st.sampled_from(options)`, one shared strategy per distinct tuple of (hashable) options. The cache
    key holds each option's type: (1, -1) and (1.0, -1.0) are equal tuples, but a float drawn where an int
    was asked for turns integer arithmetic on floats into float arithmetic (an ulp step of 27 at 2^50)."""
    options = tuple(options)
    try:
        return _sampled(tuple((type(option), option) for option in options))
    except TypeError:  # an unhashable option: a strategy of its own, as sampled_from would give
        return st.sampled_from(options)
