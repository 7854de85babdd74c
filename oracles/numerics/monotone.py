"""A function of a wide ball, tightly: the hull of its values at the ball's two ends, for a function monotone
on the ball.

arb encloses f(x) for a ball x from f's value at the midpoint and a bound on f' over the ball; for the special
functions that bound is crude, and the rounding model's balls (a dtype's rounding, widened op by op) are wide.
Measured on balls of radius 0.2-1% of their midpoint, against |f'(mid)| times the radius: digamma 7-10x too
wide, erfcx 3-9x, erfinv 4x, exp(-x) I_0(x) 8-28x. A result that wide makes gradients unjudgeable ("bound
wider than the value") that the dtype's rounding alone leaves judgeable. Where f is monotone on the ball, its
values at the two (exact) ends enclose every value, as tight as arb evaluates a point.
"""

from __future__ import annotations

from collections.abc import Callable

from flint import arb


def monotone(f: Callable[[arb], arb], x: arb) -> arb:
    """f over the ball x, for f monotone (either way) on it. Anything but a ball (the jet model's Taylor
    polynomials, oracles.higher.jets) is evaluated as it is."""
    if not isinstance(x, arb) or x.is_exact():
        return f(x)
    return f(arb(x.lower())).union(f(arb(x.upper())))


def monotone_in_magnitude(f: Callable[[arb], arb], x: arb) -> arb:
    """f over the ball x, for an f of |x| monotone (either way) on [0, inf): at the ends of |x|'s range, from 0
    where the ball holds 0. Anything but a ball is evaluated as it is."""
    if not isinstance(x, arb) or x.is_exact():
        return f(abs(x))
    low, high = abs(arb(x.lower())), abs(arb(x.upper()))
    nearest = arb(0) if x.contains(0) else low.min(high)
    return f(nearest).union(f(low.max(high)))
