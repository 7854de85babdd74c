"""The monotone-function enclosures of the rounding model (oracles/numerics/monotone.py): they hold every value
of the function over the ball, and they are as tight as the function's slope allows where arb's own are not."""

from __future__ import annotations

import pytest
from flint import arb

from oracles.numerics.exact import arb_erfcx
from oracles.numerics.monotone import monotone, monotone_in_magnitude

FUNCTIONS = {  # name: (f, a ball on which f is monotone)
    "digamma": (arb.digamma, arb(1.15625, 0.0045)),
    "erfinv": (arb.erfinv, arb(0.9, 0.03)),
    "erfcx": (arb_erfcx, arb(0.6, 0.002)),
    "i1": (lambda v: v.bessel_i(1), arb(-2.5, 0.01)),
}


def _points(ball: arb, n: int = 41) -> list[arb]:
    low, high = arb(ball.lower()), arb(ball.upper())
    return [low + (high - low) * k / (n - 1) for k in range(n)]


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_the_hull_holds_every_value_and_is_tighter_than_arbs(name):
    f, ball = FUNCTIONS[name]
    hull = monotone(f, ball)
    assert all(hull.contains(f(point)) for point in _points(ball)), name
    slope = abs(f(arb(ball.upper())) - f(arb(ball.lower()))) / 2  # the half-width a tight enclosure has
    assert hull.rad() < 1.01 * slope.upper() + 1e-30
    assert hull.rad() < f(ball).rad(), f"{name}: arb's own enclosure is not wider here"


def test_a_function_of_the_magnitude_over_a_ball_holding_zero_includes_its_value_at_zero():
    """I_0 is even with its minimum 1 at 0: over [-0.1, 0.3] it is [1, I_0(0.3)], not the hull of the ends."""
    i0 = lambda v: v.bessel_i(0)  # noqa: E731
    ball = arb(0.1, 0.2)
    hull = monotone_in_magnitude(i0, ball)
    assert hull.contains(arb(1)) and hull.contains(i0(arb(0.3))) and hull.contains(i0(arb(-0.1)))
    assert all(hull.contains(i0(point)) for point in _points(ball))
    assert hull.lower() > 1 - 1e-9  # the hull of [1, I_0(0.3)], up to arb's outward rounding of a union


def test_an_exact_argument_is_evaluated_as_it_is():
    assert monotone(arb.digamma, arb(2)).contains(arb(2).digamma()) and monotone(arb.digamma, arb(2)).rad() < 1e-50
