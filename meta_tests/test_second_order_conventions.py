"""The second derivative's limit at the convention points (oracles/core/pinning.py `second_derivative_limit`),
against values worked out by hand, and a double backward that breaks it caught."""

from __future__ import annotations

import math

import pytest

from oracles.core.pinning import pinned_named, second_derivative_limit, second_order_mismatches

BY_HAND = {
    "relu/0": [0.0],  # piecewise linear: 0 on both sides
    "abs/0": [0.0],
    "sinc/0": [-math.pi**2 / 3],  # analytic at 0: sinc''(0)
    "logaddexp/1:1": [0.25, 0.25],  # smooth at the tie: e^a e^b / (e^a + e^b)^2
    "sqrt/0": [-math.inf],  # -1/(4 x^1.5) from above
    "elu/0:alpha:1": [None],  # 0 from above, alpha e^x = 1 from below: no limit
    "atan2/0:0": [None, None],  # the first derivative is undefined there: nothing prescribed
}


@pytest.mark.parametrize("pin", list(BY_HAND))
def test_second_derivative_limits_by_hand(pin):
    pinned = pinned_named(pin, "float64")
    got = [second_derivative_limit(pinned, arg) for arg in pinned.tensor_args]
    for value, hand in zip(got, BY_HAND[pin], strict=True):
        assert (value is None) if hand is None else value == pytest.approx(hand, rel=2**-40), got


def test_a_double_backward_off_its_limit_is_caught(monkeypatch):
    """relu's double backward made 1 at 0 (the second derivative's limit is 0 on both sides) is reported."""
    from oracles.core import pinning

    monkeypatch.setattr(pinning, "torch_second_derivatives", lambda pinned, at, dtype, device="cpu": (1.0,))
    messages, judged = second_order_mismatches(pinned_named("relu/0", "float64"), "float64")
    assert judged == 1 and len(messages) == 1 and "its limit is 0" in messages[0]
