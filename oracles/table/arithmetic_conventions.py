"""torch's conventions for the entries of oracles.table.arithmetic, one tuple per op, in the style of
oracles.table.op_conventions: the point, torch's gradient there, the clause of the documented rule that
applies, the value that clause prescribes (derived here, in `why`, from the mathematics, never read off
torch), and torch's formula (derivatives.yaml) that explains torch's value.
"""

from __future__ import annotations

import math

from oracles.table.conventions import Rule, conv, side

GRADIENT, SUB, SUPER, LIMIT, UNDEFINED = (Rule.GRADIENT, Rule.MIN_NORM_SUBGRADIENT, Rule.MIN_NORM_SUPERGRADIENT,
                                          Rule.LIMIT, Rule.UNDEFINED)
INF, NAN = math.inf, math.nan
_FLAT = (side(0, 1, 0.0), side(0, -1, 0.0))

SGN = (
    conv(0.0, 0.0, LIMIT, 0.0,
         "sgn of a real number is sign: defined at 0 (sgn(0) = 0) but jumps; its derivative is 0 on both sides, "
         "so the limit clause gives 0. torch: sgn_backward is a zero tensor for real inputs.", approaches=_FLAT),
    conv(-0.0, 0.0, LIMIT, 0.0, "-0 is the point 0 (as above).", approaches=_FLAT),
)
ANGLE = (
    conv(0.0, 0.0, LIMIT, 0.0,
         "the angle of a real number is pi below 0 and 0 from 0 on: it jumps at 0, with derivative 0 on both "
         "sides, so the limit clause gives 0. torch: angle_backward is zeros for real inputs.", approaches=_FLAT),
    conv(-0.0, 0.0, LIMIT, 0.0, "-0 is the point 0 (angle(-0) = 0, as at 0).", approaches=_FLAT),
)
COPYSIGN = (
    conv((0.0, 1.0), (0.0, 0.0), (SUB, GRADIENT), (0.0, 0.0),
         "copysign(x0, 1) = |x0| is convex at 0: subdifferential [-1, 1], minimum norm 0; at x0 = 0 the value is "
         "0 whatever x1, so its x1-derivative is 0. torch: copysign_tensor_self_backward masks result / self "
         "to 0 where self == 0; other: zeros_like.",
         approaches=(side(0, 1, 1.0, 0.0), side(0, -1, -1.0, 0.0))),
    conv((0.0, -1.0), (0.0, 0.0), (SUPER, GRADIENT), (0.0, 0.0),
         "copysign(x0, -1) = -|x0| is concave at 0: superdifferential [-1, 1], minimum norm 0; the x1-derivative "
         "is 0 as above. torch: as above.",
         approaches=(side(0, 1, -1.0, 0.0), side(0, -1, 1.0, 0.0))),
    conv((1.0, 0.0), (1.0, 0.0), (GRADIENT, UNDEFINED), (1.0, None),
         "at x1 = +0 copysign(x0, x1) = |x0|, slope 1 at x0 = 1; as x1 crosses 0 the value jumps from -1 to 1, "
         "so no x1-derivative and no limit: any value. torch: result / self = 1; other: zeros_like.",
         approaches=(side(1, 1, 1.0, 0.0), side(1, -1, -1.0, 0.0))),
    conv((1.0, -0.0), (-1.0, 0.0), (GRADIENT, UNDEFINED), (-1.0, None),
         "x1 = -0 takes the negative side: copysign(x0, -0) = -|x0|, slope -1 at x0 = 1; the jump in x1 as at "
         "+0. torch: result / self = -1; other: zeros_like."),
)
FMOD = (
    conv((1.0, 1.0), 1.0, LIMIT, 1.0,
         "fmod(x, 1) = x - trunc(x) jumps from 1 to 0 at x = 1; the derivative is 1 on both sides, so the limit "
         "clause gives 1. torch: fmod.Scalar's self: grad.", label="1,divisor=1",
         approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv((-2.0, 2.0), 1.0, LIMIT, 1.0,
         "fmod(x, 2) jumps from 0 to -2 at x = -2 (the result takes the dividend's sign); derivative 1 on both "
         "sides. torch: grad.", label="-2,divisor=2", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
)
REMAINDER = (
    conv((0.0, 1.0), 1.0, LIMIT, 1.0,
         "remainder(x, 1) = x - floor(x) jumps from 1 to 0 at x = 0; the derivative is 1 on both sides, so the "
         "limit clause gives 1. torch: remainder.Scalar's self: grad.", label="0,divisor=1",
         approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv((2.0, -2.0), 1.0, LIMIT, 1.0,
         "remainder(x, -2) takes the divisor's sign: it jumps from 0 to -2 at x = 2; derivative 1 on both sides. "
         "torch: grad.", label="2,divisor=-2", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
)
RMOD = (
    conv((1.0, 2.0), (-2.0, 1.0), UNDEFINED, (None, None),
         "x0.__rmod__(x1) = x1 - x0 floor(x1 / x0) at x1 / x0 = 2: as x1 rises past 2 x0 the remainder restarts "
         "from x0 to 0, so it is not continuous in either argument: no derivative, any value. torch: "
         "remainder.Tensor, other: -grad * floor(x1 / x0) = -2 (the piece that starts there); self: grad.",
         label="1,2"),
)
DIV_TRUNC = (
    conv((1.0, 1.0), 0.0, LIMIT, 0.0,
         "trunc(x / 1) jumps at x = 1; the derivative is 0 on both sides, so the limit clause gives 0. torch: "
         "div.Scalar_mode with a rounding mode: grad * 0.", label="1,divisor=1", approaches=_FLAT),
)
DIV_FLOOR = (
    conv((0.0, 1.0), 0.0, LIMIT, 0.0,
         "floor(x / 1) jumps at x = 0; the derivative is 0 on both sides, so the limit clause gives 0. torch: "
         "div.Scalar_mode with a rounding mode: grad * 0.", label="0,divisor=1", approaches=_FLAT),
    conv((-2.0, -2.0), 0.0, LIMIT, 0.0,
         "floor(x / -2) jumps at x = -2 (from 0 above to 1 at and below); derivative 0 on both sides. torch: "
         "grad * 0.", label="-2,divisor=-2", approaches=_FLAT),
)
NAN_TO_NUM = (
    conv(INF, 0.0, UNDEFINED, None,
         "+inf is no real number, so no derivative: any value. nan_to_num maps it to the largest float, a "
         "constant. torch: grad * isfinite(self) = 0.", label="inf"),
    conv(NAN, 0.0, UNDEFINED, None,
         "NaN is no real number: any value. torch: grad * isfinite(self) = 0 (a NaN's replacement is a "
         "constant).", label="nan"),
)
ROUND_DECIMALS_NEG_3 = (
    conv(500.0, 0.0, LIMIT, 0.0,
         "round(x, -3) jumps at x = 500 (x / 1000 = 0.5, half to even: 0 at, 1000 above); derivative 0 on both "
         "sides. torch: zeros_like(grad).", approaches=_FLAT),
)

ROUND_DECIMALS_3 = (
    conv(0.0625, 0.0, LIMIT, 0.0,
         "round(x, 3) jumps where x * 1000 is a half-integer: at 1/16, x * 1000 = 62.5 exactly (half to even: "
         "0.062, 0.063 just above). The derivative is 0 on both sides. torch: zeros_like(grad).", approaches=_FLAT),
)


def addcdiv(value: float) -> tuple:
    """At tensor2 = 0, approached from above with self = tensor1 = 1."""
    sign = 1 if value > 0 else -1
    return (
        conv((1.0, 1.0, 0.0), (1.0, sign * INF, -sign * INF), UNDEFINED, (None, None, None),
             "self + value * tensor1 / tensor2 is not defined at tensor2 = 0. torch: grad for self, "
             "grad * (value / tensor2) = value/0 and -grad * (value * tensor1 / (tensor2 * tensor2)) = -value/0, "
             "the one-sided limits from tensor2 > 0.", approaches=(side(2, 1, 1.0, sign * INF, -sign * INF),)),
    )
NEXTAFTER = (
    conv((1.0, 1.0), (0.0, 0.0), (UNDEFINED, GRADIENT), (None, 0.0),
         "nextafter(x0, x1) at x0 = x1 returns x1. On the reals nextafter is a staircase (a step of one float "
         "towards x1, which jumps where x0 crosses x1), so no derivative in x0 exists at the tie and the rule "
         "prescribes nothing; off the tie torch differentiates it as the identity in x0. It does not depend on x1 "
         "except through that jump: 0. torch: self: at::where(self != other, grad, 0); other: zeros_like(other).",
         label="1,1", approaches=(side(0, 1, 1.0, 0.0), side(0, -1, 1.0, 0.0))),
)
_FREXP_WHY = ("frexp's mantissa x / 2^(floor(log2 |x|) + 1) falls from 1 to 1/2 in magnitude at every power of two: "
              "not continuous, no derivative, any value. torch: grad / exponent.exp2(), the derivative of the piece "
              "that starts there.")
FREXP = (
    conv(1.0, 0.5, UNDEFINED, None, _FREXP_WHY + " At 1 the exponent is 1: 1/2.",
         approaches=(side(0, 1, 0.5), side(0, -1, 1.0))),
    conv(0.5, 1.0, UNDEFINED, None, "as at 1; the exponent of 1/2 is 0: 1.",
         approaches=(side(0, 1, 1.0), side(0, -1, 2.0))),
    conv(-1.0, 0.5, UNDEFINED, None, "the mirror of 1 (the mantissa is odd).",
         approaches=(side(0, 1, 1.0), side(0, -1, 0.5))),
    conv(-0.5, 1.0, UNDEFINED, None, "the mirror of 1/2.", approaches=(side(0, 1, 2.0), side(0, -1, 1.0))),
    conv(0.0, 1.0, UNDEFINED, None,
         "frexp(0) = (0, 0); near 0 the mantissa sweeps [1/2, 1) in every binade, so it has no limit and no "
         "derivative at 0: any value. torch: grad / 2^0 = 1."),
)
