"""Strategies built once and reused: the expression strategies draw from dozens of small strategies per
example, and Hypothesis validates every new strategy object on its first draw. Building them afresh
inside each draw cost more than running torch and the oracle (measured: profile of test_op_gradient)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

from hypothesis import strategies as st


@cache
def _sampled(key: tuple) -> st.SearchStrategy:
    return st.sampled_from(tuple(option for _, option in key))


def _identity(option) -> tuple:
    """What tells options apart for the cache: equal keys must mean the same draws. The type is part of it:
    (1, -1) and (1.0, -1.0) are equal tuples, but a float drawn where an int was asked for turns integer
    arithmetic on floats into float arithmetic (an ulp step of 27 at 2^50). So is a float's sign: -0.0 == 0.0,
    and without it whichever of two callers came first decided, for the whole process, which zero both drew
    (the draws of a test depended on the tests run before it)."""
    if isinstance(option, float):
        return (float, option, math.copysign(1.0, option))
    if isinstance(option, tuple):
        return (tuple, tuple(_identity(item) for item in option))
    return (type(option), option)


@cache
def _sampled_names(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


def choice(options: Iterable) -> st.SearchStrategy:
    """`st.sampled_from(options)`, one shared strategy per distinct tuple of (hashable) options."""
    options = tuple(options)
    # Strings and ints (bool is not int here) are equal only when they draw the same: the options are their
    # own key, with no `_identity` to build per option (the op names, every draw of every expression node).
    if all(type(option) is str or type(option) is int for option in options):
        return _sampled_names(options)
    try:
        return _sampled(tuple((_identity(option), option) for option in options))
    except TypeError:  # an unhashable option: a strategy of its own, as sampled_from would give
        return st.sampled_from(options)
