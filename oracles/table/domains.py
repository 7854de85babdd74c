"""An op's domain as data: where each argument may lie, and the points where the calculus needs care.

Two descriptions per argument, each with its own job:
- `Interval`: the mathematical domain (where the function is defined), with open or closed ends;
- `Special`: the points (or sets) where it is not smooth or torch's formulas misbehave: poles, domain
  edges, kinks, jumps, removable singularities, ties between arguments, branch cuts, saturation.
- `Domain`: the region the strategies draw the argument from, by construction (a sampling choice, kept
  inside the interval and away from the specials; the suite's self-tests check both).
Capabilities of an entry (smooth, second order, ...) and the conventions it must pin derive from these.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class Domain(enum.Enum):
    """Where the strategies draw an argument (strategies/expressions.py builds each by construction)."""

    REAL = "any real value"
    POSITIVE = "bounded away from 0, positive"
    NONZERO = "bounded away from 0, either sign"
    UNIT = "inside (-0.9, 0.9)"
    # exp/sinh/cosh of a bounded argument cannot overflow in any dtype (exp(3) = 20), however deep the
    # composition: every generated expression is defined at its inputs by construction.
    BOUNDED = "inside (-3, 3)"
    ABOVE_ONE = "at least 1/2 above 1 (acosh's domain, off its edge)"
    ABOVE_TWO = "at least 1/2 above 2 (mvlgamma's domain for p = 5, off its edge)"
    INSIDE_UNIT_INTERVAL = "inside (0.05, 0.95) (logit's domain, off its poles at 0 and 1)"
    OFF_PARAMETERS = "bounded away from each constant argument that follows (clamp's bounds)"
    OFF_SPECIALS = "bounded away from each float point of the argument's specials (relu6's kinks at 0 and 6)"
    OFF_INTEGERS = "at least 1/8 away from every integer"
    OFF_HALF_INTEGERS = "at least 1/8 away from every half-integer"


@dataclass(frozen=True)
class Interval:
    """The set an argument's real values may take: (low, high) with each end open or closed."""

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.low or (self.low_closed and x == self.low)
        below = x < self.high or (self.high_closed and x == self.high)
        return above and below

    def __str__(self) -> str:
        return (f"{'[' if self.low_closed else '('}{self.low:g}, {self.high:g}"
                f"{']' if self.high_closed else ')'}")


REALS = Interval()


class Kind(enum.Enum):
    POLE = "pole"  # the function or its derivative is unbounded there
    EDGE = "domain edge"  # an end of the interval, where the derivative is one-sided or infinite
    KINK = "kink"  # continuous, the derivative jumps
    JUMP = "jump"  # the function jumps; piecewise constant or linear on each side
    REMOVABLE = "removable singularity"  # a formula's 0/0 where the function itself is analytic
    TIE = "tie"  # two arguments equal: which one the gradient goes to is a convention
    BRANCH_CUT = "branch cut"  # the function jumps across a curve in the plane of two arguments
    SATURATION = "saturation"  # far out, the result rounds to its limit and the formula's derivative to 0


# Kinds at which the function is not continuously differentiable (jumps included).
NOT_SMOOTH = frozenset({Kind.KINK, Kind.JUMP, Kind.TIE})


@dataclass(frozen=True)
class Special:
    """A point or set of an op's domain where the calculus needs care.

    `arg`: the argument it concerns (None: a relation between arguments, such as a tie); `at`: its float
    values of that argument (empty for a set without float points, e.g. tan's poles at π/2 + kπ, or one
    given only in words, e.g. clamp's kinks at its bounds); `period`: `at` repeats with this period
    (floor jumps at every integer: at=(0.0,), period=1). `pinned`: torch's value there is pinned by the
    entry's conventions (tan's poles are not floats, so nothing can be pinned). `multiples`: a relation whose
    period is another argument's value (x1 % x0 jumps wherever x1 is a multiple of x0); `every_binade`: the
    points are every power of two, of either sign."""

    kind: Kind
    where: str
    arg: int | None = 0
    at: tuple[float, ...] = ()
    period: float | None = None
    pinned: bool = True
    # a relation (arg None) of the form "argument a jumps at every integer multiple of argument b": (a, b)
    multiples: tuple[int, int] | None = None
    every_binade: bool = False  # the special repeats at ±2^k for every integer k (frexp's mantissa)

    def covers(self, value: float) -> bool:
        """Whether `value` is one of the float points of this special."""
        if self.period is None:
            return value in self.at
        return any(math.remainder(value - point, self.period) == 0 for point in self.at)


def pole(where: str, *at: float, arg: int = 0) -> Special:
    return Special(Kind.POLE, where, arg, at)


def edge(where: str, *at: float, arg: int = 0) -> Special:
    return Special(Kind.EDGE, where, arg, at)


def kink(where: str, *at: float, arg: int | None = 0) -> Special:
    return Special(Kind.KINK, where, arg, at)
