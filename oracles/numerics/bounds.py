"""Interval arithmetic over many points at once, in numpy's long doubles or doubles, for the oracle's fast pass.

Ball arithmetic in arb (oracles.numerics.exact, oracles.numerics.rounding) costs ~15 us per op and point from
Python. `Bounds` evaluates the same formulas over a whole vector of points in C loops. Its semantics is
*exact interval arithmetic*: every value is an interval T = [L, H] of reals, each op the exact image of its
operands' intervals. arb's balls contain these intervals (an arb op encloses the image of its operand balls,
which contain the operands' intervals), so a value inside T is inside arb's ball.

A float cannot hold L and H exactly, so each end is itself known within bounds: `ends` holds, per point,
four numbers a <= L <= b and c <= H <= d. Then [a, d] encloses T (the outer hull: where the exact value lies),
and [b, c], when b <= c, lies inside T (the inner part: a torch value there is inside arb's ball too). Ends
stay valid bounds whether or not b <= c, so a point value (a = b = c = d up to rounding) passes through.

Rounding (`Precision`: x87 long doubles for float64 cases, doubles for the narrower dtypes): +, -, *, / are
correctly rounded; every result end is moved outward (a, c down; b, d up) by twice the unit roundoff of its
size. Functions come from the C library's long double functions (glibc's x87 `sinl`, `expl`, ...: documented
errors of a few ulps) or numpy's double ones; numpy has no erf: in long doubles oracles.numerics.long_double_erf
encloses it rigorously, in doubles Python's `math.erf` at directed-rounded arguments serves. Their ends move by
the margins of `Precision` and `MATH_MODULE_PAD`, hundreds of times the documented errors. That margin is the
one assumption beyond IEEE arithmetic; meta_tests/test_fast_pass.py checks the intervals against arb.

Where a point leaves what this pass can follow (outside a function's domain, a non-monotone stretch, an
overflow), its ends become NaN and the exact path decides it; so do steps and extrema (`heaviside`, `sign`,
`extremum`) where a point's interval touches the kink. A branch of Python code on an interval raises
`NotVectorizable`; the fast pass's model raises `Split` where a sign or comparison differs between the points.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from flint import arb

from oracles.numerics.directed import (
    DOUBLE,
    LD,
    LONG_DOUBLE,
    MATH_MODULE_PAD,
    MATH_MODULE_TINY,
    PRECISIONS,
    Precision,
    down,
    outward,
    up,
)
from oracles.numerics.long_double_erf import erf_enclosure


class NotVectorizable(Exception):
    """The formula needs a decision (a branch on a sign, a comparison) that is not the same for every point."""


class Split(NotVectorizable):
    """A decision (a sign, a comparison) that differs between points. `groups`: boolean masks over the points, each
    the points that decide it one way; a point in no group may decide it either way (its interval straddles the
    kink), and is left to the exact path. The pass runs again on each group (oracles.core.fast_pass)."""

    def __init__(self, groups: tuple[np.ndarray, ...]):
        super().__init__("a decision that differs between points")
        self.groups = groups


def _constant_ends(value: arb, dtype: np.dtype) -> np.ndarray:
    """Bounds (4, 1) of an arb ball [L, H]: exact for a ball that is a double (constants such as 2, -0.5), else
    each end bracketed by the doubles on either side of its nearest double."""
    if value.is_exact():
        f = float(value.mid())
        if arb(f) == value:
            return np.full((4, 1), f, dtype=dtype)
    lo, hi = float(value.lower()), float(value.upper())
    ends = [np.nextafter(lo, -math.inf), np.nextafter(lo, math.inf), np.nextafter(hi, -math.inf),
            np.nextafter(hi, math.inf)]
    return np.array(ends, dtype=dtype).reshape(4, 1)


def as_bounds(value, dtype: np.dtype) -> Bounds:
    """`value` (an interval, an arb ball, a Python number) as `Bounds` whose ends are held in `dtype`."""
    if isinstance(value, Bounds):
        return value
    if isinstance(value, (int, float)):
        value = arb(value)
    if isinstance(value, arb):
        return Bounds(_constant_ends(value, dtype))
    raise NotVectorizable(f"no interval for {type(value).__name__}")


def _where_direction(direction: np.ndarray, increasing: np.ndarray, decreasing: np.ndarray) -> np.ndarray:
    """Per point: the ends of an increasing image, of a decreasing one, or NaN where neither is known."""
    if np.all(direction > 0):
        return increasing
    nan = np.full_like(increasing, np.nan)
    return np.where(direction > 0, increasing, np.where(direction < 0, decreasing, nan))


def _sure_sign(at_a: np.ndarray, at_d: np.ndarray, a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Whether a slope (cos or -sin, 1-Lipschitz) evaluated in doubles at the hull's ends keeps one sign over a hull
    narrower than 1: the same sign at both ends leaves an even number of zeros between, and two lie pi apart. Up to
    2^20 the ends' rounding to doubles moves the slope by less than 2^-33, well under the 1e-9 required; beyond,
    nothing is sure."""
    small = (np.abs(a) < 2.0**20) & (np.abs(d) < 2.0**20)
    return small & (np.abs(at_a) > 1e-9) & (np.abs(at_d) > 1e-9) & (np.sign(at_a) == np.sign(at_d)) & (d - a < 1)


def _at_most_one(low, high, a, d):
    return 1


def _double_down(x: np.ndarray) -> np.ndarray:
    d = x.astype(np.float64)
    return np.where(d.astype(x.dtype) > x, np.nextafter(d, -math.inf), d)


def _double_up(x: np.ndarray) -> np.ndarray:
    d = x.astype(np.float64)
    return np.where(d.astype(x.dtype) < x, np.nextafter(d, math.inf), d)


_math_erf = np.frompyfunc(math.erf, 1, 1)
_math_erfc = np.frompyfunc(math.erfc, 1, 1)


class Bounds:
    """A vector of intervals, each end known within bounds (the module's docstring). `ends` has shape (4, n)
    (or (4, 1) for a constant, broadcast against vectors)."""

    __slots__ = ("ends",)
    __array_ufunc__ = None  # numpy scalars on the left defer to our reflected operators

    def __init__(self, ends: np.ndarray):
        self.ends = ends

    @classmethod
    def points(cls, values, precision: Precision = LONG_DOUBLE) -> Bounds:
        """Exact points (doubles), one per position."""
        row = np.asarray(values, dtype=np.float64).astype(precision.dtype)
        return cls(np.stack([row, row, row, row]))

    @property
    def precision(self) -> Precision:
        return PRECISIONS[self.ends.dtype]

    def _like(self, value) -> Bounds:
        return as_bounds(value, self.ends.dtype)

    # ------------------------------------------------------------------ what the ends say
    @property
    def outer(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ends[0], self.ends[3]

    def max_abs(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on max |T| over the interval: at least the larger lower bound of |L| and |H| (|L| >= a where
        a > 0, >= -b where b < 0, else >= 0), at most the larger of |a| and |d|."""
        a, b, c, d = self.ends
        low = np.maximum(np.maximum(a, -b), np.maximum(c, -d))
        return np.maximum(low, 0, out=low), np.maximum(np.abs(a), np.abs(d))

    def excludes_zero(self) -> np.ndarray:
        a, _, _, d = self.ends
        return (a > 0) | (d < 0)

    def invalidate(self, where: np.ndarray) -> Bounds:
        return Bounds(np.where(where, np.nan, self.ends)) if where.any() else self

    def take(self, points: np.ndarray) -> Bounds:
        """The intervals at those points (positions); a constant stays itself."""
        return self if self.ends.shape[1] == 1 else Bounds(self.ends[:, points])

    # ------------------------------------------------------------------ steps and extrema, point by point
    def _step(self, above: float, below: float) -> Bounds:
        """`above` where the whole interval is above 0, `below` where it is below, NaN where it may touch 0 (the
        exact path decides there: a tie, or the value at 0)."""
        a, _, _, d = self.ends
        value = np.where(a > 0, above, np.where(d < 0, below, np.nan)).astype(self.ends.dtype)
        return Bounds(np.broadcast_to(value, self.ends.shape).copy())

    def heaviside(self) -> Bounds:
        return self._step(1, 0)

    def sign(self) -> Bounds:
        return self._step(1, -1)

    def extremum(self, other, largest: bool) -> Bounds:
        """max(x, y) (or min) is non-decreasing in both: each end of the result is the max of the ends, exactly."""
        other = self._like(other)
        return Bounds((np.maximum if largest else np.minimum)(self.ends, other.ends))

    # ------------------------------------------------------------------ arithmetic
    def __neg__(self) -> Bounds:
        return Bounds(-self.ends[::-1])

    def __add__(self, other) -> Bounds:
        return Bounds(outward(self.ends + self._like(other).ends))

    __radd__ = __add__

    def __sub__(self, other) -> Bounds:
        return self + (-self._like(other))

    def __rsub__(self, other) -> Bounds:
        return self._like(other) + (-self)

    def __mul__(self, other) -> Bounds:
        """[L1, H1]·[L2, H2] = [min, max] of the four end products; each end product, of two uncertain ends,
        ranges over its four corner products."""
        other = self._like(other)
        for scaled, factor in ((self, other), (other, self)):
            if factor.ends.shape[1] == 1 and factor.ends[0, 0] == factor.ends[3, 0]:  # a constant that is a double
                c = factor.ends[0, 0]
                return Bounds(outward((scaled.ends if c >= 0 else scaled.ends[::-1]) * c))
        p = self.ends.reshape(2, 2, 1, 1, -1)  # [end L or H, its lower or upper bound]
        q = other.ends.reshape(1, 1, 2, 2, -1)
        corners = (p * q).transpose(0, 2, 1, 3, 4)  # [end of p, end of q, bound of p, bound of q]
        corners = corners.reshape(4, 4, corners.shape[-1])  # the four end products, four corners each
        low, high = corners.min(axis=1), corners.max(axis=1)
        ends = np.stack([low.min(axis=0), high.min(axis=0), low.max(axis=0), high.max(axis=0)])
        return Bounds(outward(ends))

    __rmul__ = __mul__

    def reciprocal(self) -> Bounds:
        a, b, c, d = self.ends
        with np.errstate(all="ignore"):
            ends = outward(np.stack([1 / d, 1 / c, 1 / b, 1 / a]))
        return Bounds(ends).invalidate(~self.excludes_zero())

    def __truediv__(self, other) -> Bounds:
        return self * self._like(other).reciprocal()

    def __rtruediv__(self, other) -> Bounds:
        return self._like(other) * self.reciprocal()

    def __pow__(self, exponent) -> Bounds:
        if isinstance(exponent, int) or (isinstance(exponent, arb) and exponent.is_exact() and exponent.is_integer()):
            n = int(exponent) if isinstance(exponent, int) else int(exponent.unique_fmpz())
            if n == 0:
                return self._like(1)
            power = self._integer_power(abs(n))
            return power if n > 0 else power.reciprocal()
        return (self._like(exponent) * self.log()).exp()

    def _integer_power(self, n: int) -> Bounds:
        """x^n for n >= 1: the exact image (increasing for odd n; for even n, by the sign of the hull), not the
        product of n independent intervals, which is wider than the image an enclosure of x^n must contain."""
        a, _, _, d = self.ends
        direction = np.ones(a.shape) if n % 2 else np.where(a >= 0, 1, np.where(d <= 0, -1, 0))
        image = self._monotone(lambda x: functools.reduce(np.multiply, [x] * n), direction, rounded=True)
        return Bounds(outward(image.ends, (n - 1) * self.precision.arithmetic)) if n > 2 else image

    def square(self) -> Bounds:
        """x², which unlike x·x knows that the image of an interval around 0 starts at 0."""
        return self._integer_power(2)

    def __abs__(self) -> Bounds:
        a, _, _, d = self.ends
        return self._monotone(np.abs, np.where(a >= 0, 1, np.where(d <= 0, -1, 0)), rounded=True)

    def __bool__(self):
        raise NotVectorizable("a branch on an interval")

    def _compare(self, other):
        raise NotVectorizable("a comparison of intervals")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __getattr__(self, name):
        # any other arb method (is_exact, contains, erfinv, ...) the table's formulas may call
        if name.startswith("_"):  # probes of other libraries (arb looks for mpmath's _mpf_)
            raise AttributeError(name)
        raise NotVectorizable(f"intervals have no {name}")

    # ------------------------------------------------------------------ functions
    def _monotone(self, function: Callable[[np.ndarray], np.ndarray], direction: np.ndarray, rounded: bool = False,
                  domain: np.ndarray | None = None, slope: Callable | None = None) -> Bounds:
        """The image under a function that is increasing (direction > 0) or decreasing (< 0) over each point's
        outer hull; NaN where the direction is 0 or the hull leaves `domain`. An increasing f takes
        L in [a, b] to [f(a), f(b)]; a decreasing one takes H in [c, d] to L' in [f(d), f(c)].

        With `slope` (f's bounds at a and d, low and high, and the hull -> a bound on |f'| over the hull), f is
        evaluated at a and d only: f(b) is within (b - a)·|f'| of f(a), and b - a is a few ulps of a long double
        (the library's functions are ~20 times the cost of arithmetic). `rounded`: f is a correctly rounded
        operation, not a library function."""
        precision = self.precision
        pad = precision.arithmetic if rounded else precision.library
        with np.errstate(all="ignore"):
            if slope is None:
                raw = function(self.ends)
                ends = _where_direction(direction, outward(raw, pad), outward(raw[::-1], pad))
            else:
                a, b, c, d = self.ends
                at_ends = function(np.stack([a, d]))
                magnitude = np.abs(at_ends) * pad + precision.tiny
                low, high = at_ends - magnitude, at_ends + magnitude
                bound = slope(low, high, a, d)
                # moved up past their own rounding: where f(a) + near_a cancels, a pad relative to the sum is not
                near_a, near_d = (up((b - a) * bound), up((d - c) * bound))
                increasing = np.stack([low[0], high[0] + near_a, low[1] - near_d, high[1]])
                decreasing = np.stack([low[1], high[1] + near_d, low[0] - near_a, high[0]])
                ends = outward(_where_direction(direction, increasing, decreasing))
        result = Bounds(ends)
        return result if domain is None else result.invalidate(~domain)

    def _increasing(self, function, domain=None, rounded=False, slope=None) -> Bounds:
        return self._monotone(function, np.ones(self.ends.shape[1:]), rounded, domain, slope)

    def exp(self) -> Bounds:
        return self._increasing(np.exp, slope=lambda low, high, a, d: high[1])  # exp' = exp, largest at d

    def expm1(self) -> Bounds:
        return self._increasing(np.expm1, slope=lambda low, high, a, d: high[1] + 1)

    def log(self) -> Bounds:
        return self._increasing(np.log, self.ends[0] > 0, slope=lambda low, high, a, d: up(1 / a))

    def log1p(self) -> Bounds:
        return self._increasing(np.log1p, self.ends[0] > -1, slope=lambda low, high, a, d: up(1 / down(1 + a)))

    def sqrt(self) -> Bounds:
        return self._increasing(np.sqrt, self.ends[0] >= 0, rounded=True)

    def rsqrt(self) -> Bounds:
        return self.sqrt().reciprocal()

    def tanh(self) -> Bounds:
        return self._increasing(np.tanh, slope=_at_most_one)

    def sinh(self) -> Bounds:
        # sinh' = cosh <= |sinh| + 1
        return self._increasing(np.sinh, slope=lambda low, high, a, d: np.maximum(np.abs(low), np.abs(high)).max(0) + 1)

    def atan(self) -> Bounds:
        return self._increasing(np.arctan, slope=_at_most_one)

    def asinh(self) -> Bounds:
        return self._increasing(np.arcsinh, slope=_at_most_one)

    def tan(self) -> Bounds:
        """Increasing on each branch: where cos keeps one sign over the hull (`_sure_sign`); tan' = 1 + tan² there."""
        a, _, _, d = self.ends
        with np.errstate(all="ignore"):
            at_a, at_d = np.cos(a.astype(np.float64)), np.cos(d.astype(np.float64))
        sure = _sure_sign(at_a, at_d, a, d)
        return self._monotone(np.tan, np.where(sure, 1, 0),
                              slope=lambda low, high, a, d: 1 + np.maximum(low * low, high * high).max(0))

    def cosh(self) -> Bounds:
        # |cosh'| = |sinh| <= cosh
        a, _, _, d = self.ends
        return self._monotone(np.cosh, np.where(a >= 0, 1, np.where(d <= 0, -1, 0)),
                              slope=lambda low, high, a, d: high.max(0))

    def _periodic(self, function, slope) -> Bounds:
        """sin or cos: monotone where the slope keeps its sign over the hull (`_sure_sign`); |sin'|, |cos'| <= 1."""
        a, _, _, d = self.ends
        with np.errstate(all="ignore"):
            at_a, at_d = slope(a.astype(np.float64)), slope(d.astype(np.float64))
        sure = _sure_sign(at_a, at_d, a, d)
        return self._monotone(function, np.where(sure, np.sign(at_a), 0), slope=_at_most_one)

    def sin(self) -> Bounds:
        return self._periodic(np.sin, np.cos)

    def cos(self) -> Bounds:
        return self._periodic(np.cos, lambda x: -np.sin(x))

    def erf(self) -> Bounds:
        if self.precision is DOUBLE:
            return self._double_monotone(_math_erf, 1)
        # long doubles: math.erf's doubles are too coarse for float64's model; erf' <= 2/sqrt(pi) < 1.1284
        a, b, c, d = self.ends
        low, high = erf_enclosure(np.concatenate([a, d]))
        n = a.shape[0]
        slope = LD(1.1284)
        with np.errstate(all="ignore"):
            ends = np.stack([low[:n], high[:n] + up((b - a) * slope), low[n:] - up((d - c) * slope), high[n:]])
        return Bounds(outward(ends))

    def erfc(self) -> Bounds:
        return self._double_monotone(_math_erfc, -1)

    def _double_monotone(self, function, direction: int) -> Bounds:
        """A double-precision function of Python's math module, at the ends rounded to doubles in the direction
        that keeps each result a bound: f(a) below for an increasing f needs a rounded down."""
        a, b, c, d = self.ends
        if direction > 0:
            args = np.stack([_double_down(a), _double_up(b), _double_down(c), _double_up(d)])
        else:  # L' in [f(d), f(c)], H' in [f(b), f(a)]
            args = np.stack([_double_up(d), _double_down(c), _double_up(b), _double_down(a)])
        with np.errstate(all="ignore"):
            finite = np.isfinite(args)
            values = function(np.where(finite, args, 0.0)).astype(np.float64).astype(self.ends.dtype)
            return Bounds(outward(np.where(finite, values, np.nan), MATH_MODULE_PAD, MATH_MODULE_TINY))
