"""The error model: ball arithmetic in which every floating-point operation torch performs may err.

A `RoundingModel` turns an exact arb ball into the set of values a float operation of the format under
test could return: each result is widened by k·u·|value| (+ k·η for underflow), where u is the unit
roundoff and k the operation's allowed error in half-ulps. Evaluating torch's own forward and backward
formulas with these operations encloses every result any computation with that per-op accuracy could
produce: tight where the problem is well conditioned, wide where it is not.
"""

from __future__ import annotations

import functools
import math

from flint import arb, ctx

from oracles.numerics.dtypes import FloatFormat, format_named

# Working precision of all ball arithmetic: far beyond float64, so arb's own rounding never matters.
WORKING_PRECISION_BITS = 192
ctx.prec = WORKING_PRECISION_BITS
FLOAT32 = format_named("float32")


def int_power(base: arb, n: int) -> arb:
    """base ** n by repeated squaring. python-flint 0.9's `arb ** n` returns NaN for a ball whose midpoint
    is exactly 0 but whose radius is not (e.g. sin(0) in the rounding model), which would silently turn
    such points into "singular" ones."""
    if n < 0:
        return 1 / int_power(base, -n)
    result = arb(1)
    while n:
        if n & 1:
            result *= base
        n >>= 1
        if n:
            base = base * base
    return result


class Singular(Exception):
    """The point is (or, within the rounding model, may be) a kink, tie, pole or branch point."""


class Undecided(Singular):
    """An exact evaluation whose balls, at the working precision, hold points on both sides of a jump, kink
    or branch boundary: the point may be off it by less than the balls' radius (1 / (1 + 2^-640) against 1),
    so more precision may decide (chain_rule.at_rising_precision retries)."""


class Overflow(Exception):
    """A value torch computes on the way may exceed the dtype's finite range."""


class EpsilonUnderflow(Singular):
    """A formula's small constant (a loss's or a norm's eps) rounds to 0 in the dtype where torch may divide by
    it: where the divisor it guards may be 0, torch may divide 0 by 0. Elsewhere a plain `Singular`."""


class RoundingModel:
    def __init__(self, fmt: FloatFormat):
        self.format = fmt
        self.u = arb(fmt.unit_roundoff)
        self.eta = arb(fmt.absolute_error)
        self.limit = arb(fmt.max_finite)

    @functools.cached_property
    def opmath(self) -> RoundingModel:
        """The model of the arithmetic inside one of torch's kernels. bfloat16 and float16 kernels convert their
        inputs to float (at::opmath_type), compute in float and round the result once (`store`); float32 and
        float64 kernels compute in their own format. A backward kernel's factor of the gradient may be computed
        here and multiplied in by the caller's `mul` of the format: rounding a real z to float and then to a
        format of p <= 11 bits errs by at most u·|z| (float's 24 bits exceed 2p + 2: the double rounding is
        innocuous), so that product encloses the kernel's."""
        if self.format.mantissa_bits >= FLOAT32.mantissa_bits:
            return self
        return RoundingModel(FLOAT32)

    def store(self, value: arb) -> arb:
        """A kernel's result computed in `opmath`, as the tensor holds it: rounded once more where opmath is
        float and the format narrower."""
        return value if self.opmath is self else self.round(value)

    def holds(self, value: arb) -> bool:
        """Whether `value` is exactly one of the format's finite floats (a subnormal only where the format keeps
        subnormals)."""
        if not value.is_exact():
            return False
        f = float(value.mid())
        if arb(f) != value or not math.isfinite(f):
            return False
        fmt = self.format
        if f == 0:
            return True
        if abs(f) > fmt.max_finite:
            return False
        if abs(f) < fmt.smallest_normal:
            return not fmt.flushes_subnormals and (f / fmt.min_subnormal).is_integer()
        return (math.frexp(f)[0] * 2.0 ** fmt.mantissa_bits).is_integer()

    def correctly_rounded(self, value: arb) -> arb:
        """The result of one correctly rounded IEEE operation (+, -, *, /, sqrt) on floats torch holds, whose exact
        result is `value`: that value itself where the format holds it (the operation returns it unrounded, in any
        wider working format too, fused or not), else `round`. For operands that are floats torch computed, not
        for a Python constant standing for a real (1 / N as a double is not 1 / N: the exact derivative uses the
        real, so `round` must cover the difference)."""
        return self.in_range(value) if self.holds(value) else self.round(value)

    def round(self, value: arb, k: float = 1, magnitude: arb | None = None) -> arb:
        """`value` after one operation whose relative error is at most k·u (of `magnitude`, default |value|)."""
        if k == 0:
            return self.in_range(value)
        mag = value.abs_upper() if magnitude is None else magnitude
        return self.in_range(value + arb(0, k * (self.u * mag + self.eta)))

    def in_range(self, value: arb) -> arb:
        """`value`, unless torch could overflow computing it (then nothing can be said)."""
        if value.is_nan():
            raise Singular("a value is undefined within the rounding model (outside an op's domain)")
        if not value.is_finite() or value.abs_upper() > self.limit:
            raise Overflow(f"a value may exceed the {self.format.name} range ({value.str(3)})")
        return value

    # Correctly rounded IEEE operations (k = 1): one addition of two floats errs by at most u·|a + b|, also
    # where it cancels (Sterbenz: a - b is then exact). (Sums of more terms: `sum`.)
    def add(self, a: arb, b: arb) -> arb:
        return self.round(a + b)

    def sub(self, a: arb, b: arb) -> arb:
        return self.round(a - b)

    def mul(self, a: arb, b: arb) -> arb:
        return self.round(a * b)

    def div(self, a: arb, b: arb) -> arb:
        return self.round(a / b)

    def times_local(self, adjoint: arb, local: arb) -> arb:
        """A backward step's adjoint · local derivative: exact where the local derivative is exactly ±1 (add, sub,
        neg; mul by an operand equal to ±1), else one rounded multiplication."""
        if local.is_exact() and abs(local) == 1:
            return self.in_range(adjoint * local)
        return self.mul(adjoint, local)

    def const(self, value: float) -> arb:
        """A Python scalar as torch uses it: exact where the format holds it, else possibly rounded."""
        if self.format.round(value) == value:
            return arb(value)
        return self.round(arb(value))

    def sum(self, terms: list[arb]) -> arb:
        """Sum in any order: each of the n-1 additions errs by at most u·Σ|terms|."""
        total = arb(0)
        magnitude = arb(0)
        for term in terms:
            total += term
            magnitude += term.abs_upper()
        return self.round(total, max(len(terms) - 1, 0), magnitude)

    @staticmethod
    def sign(a: arb) -> int:
        """The sign of a ball that excludes 0; a ball touching 0 is a kink of the rounding model."""
        if a > 0:
            return 1
        if a < 0:
            return -1
        raise Singular("argument may be 0")

    @staticmethod
    def greater(a: arb, b: arb) -> bool:
        """a > b, decided for every value in both balls, else a tie is possible."""
        if a > b:
            return True
        if a <= b:
            return False
        raise Singular("comparison may tie")
