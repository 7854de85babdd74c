"""The shared strategy cache (strategies/cached.py) must never hand one caller another's options: a test's
draws may not depend on which tests ran before it in the same process."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.cached import choice


def _draws(strategy) -> list:
    seen = []

    @settings(max_examples=20, derandomize=True, database=None)
    @given(st.data())
    def collect(data):
        seen.append(data.draw(strategy))

    collect()
    return seen


def test_signed_zeros_get_their_own_strategies():
    negative, positive = choice((-0.0, 1.0)), choice((0.0, 1.0))
    assert negative is not positive
    zeros = [v for v in _draws(positive) if v == 0]
    assert zeros and all(math.copysign(1.0, v) == 1.0 for v in zeros)


def test_signed_zeros_inside_tuples_get_their_own_strategies():
    assert choice(((-0.0, 2.0), (1.0, 2.0))) is not choice(((0.0, 2.0), (1.0, 2.0)))


def test_ints_and_equal_floats_get_their_own_strategies():
    choice((1.0, -1.0))  # asked for first, as another test may have
    assert all(type(v) is int for v in _draws(choice((1, -1))))


def test_equal_options_share_one_strategy():
    assert choice([0.5, "a", (1, 2)]) is choice((0.5, "a", (1, 2)))


def test_bools_and_equal_ints_get_their_own_strategies():
    """True == 1: the names-and-ints shortcut takes ints only, so a bool option never draws an int."""
    choice((1, 0))
    assert all(type(v) is bool for v in _draws(choice((True, False))))
    assert choice(["sin", 2]) is choice(("sin", 2))
