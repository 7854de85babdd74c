"""torch's conventions for the entries of oracles.table.special_functions, one tuple per op, in the style of
oracles.table.op_conventions: the point, torch's gradient there, the clause of the documented rule that
applies, the value that clause prescribes (derived here, in `why`, from the mathematics, never read off
torch), and torch's formula (derivatives.yaml) that explains torch's value.
"""

from __future__ import annotations

import math

from oracles.table.conventions import Rule, conv, side

LIMIT, SUPER, UNDEFINED = Rule.LIMIT, Rule.MIN_NORM_SUPERGRADIENT, Rule.UNDEFINED
INF, NAN = math.inf, math.nan
F64, F32, BF16, F16 = "float64", "float32", "bfloat16", "float16"

XLOGY = (
    conv((1.0, 0.0), (-INF, INF), UNDEFINED, (None, None),
         "x log y is not defined at y = 0 for x != 0 (log 0 = -inf). torch: xlogy(grad, other) = log 0 = -inf "
         "and grad * self / other = 1/0 = +inf, the one-sided limits from y > 0.",
         approaches=(side(1, 1, -INF, INF),)),
    conv((-1.0, 0.0), (-INF, -INF), UNDEFINED, (None, None),
         "as at (1, 0), x < 0: torch's log 0 = -inf and -1/0 = -inf.", approaches=(side(1, 1, -INF, -INF),)),
    conv((0.0, 0.0), (0.0, NAN), UNDEFINED, (None, None),
         "xlogy(0, 0) = 0 by definition, but x log y has no limit at the origin (along y = e^(-1/x) it tends to "
         "-1): no derivative. torch: the x-gradient is masked to 0 where self == 0 and other <= 0; the y-gradient "
         "is grad * self / other = 0/0 = NaN."),
)
XLOG1PY = (
    conv((1.0, -1.0), (-INF, INF), UNDEFINED, (None, None),
         "x log(1 + y) is not defined at y = -1 for x != 0. torch: xlog1py(grad, other) = log1p(-1) = -inf and "
         "grad * self / (other + 1) = 1/0 = +inf, the one-sided limits from y > -1.",
         approaches=(side(1, 1, -INF, INF),)),
    conv((0.0, -1.0), (0.0, NAN), UNDEFINED, (None, None),
         "xlog1py(0, -1) = 0 by definition; no limit at (0, -1), as xlogy's at the origin. torch: the x-gradient "
         "masked to 0 (self == 0 and other <= -1); grad * 0 / 0 = NaN."),
)
ENTR = (
    conv(0.0, INF, LIMIT, INF,
         "entr(x) = -x log x is defined on [0, inf) (0 at 0) and continuous at 0; its derivative -(1 + log x) -> "
         "+inf as x -> 0+: the one-sided limit. torch: grad * (-(1 + log 0)) = +inf.",
         approaches=(side(0, 1, INF),)),
    conv(-0.0, INF, LIMIT, INF, "-0 is the point 0 (entr(-0) = 0); log(-0) = -inf, so +inf as at 0.",
         approaches=(side(0, 1, INF),)),
)
ERFINV = (
    conv(1.0, INF, UNDEFINED, None,
         "erfinv(1) = +inf is no real number: undefined. torch: 0.5 * sqrt(pi) * exp(erfinv(1)^2) = +inf, the "
         "limit from inside.", approaches=(side(0, -1, INF),)),
    conv(-1.0, INF, UNDEFINED, None, "as at 1 (erfinv(-1) = -inf, squared +inf).", approaches=(side(0, 1, INF),)),
)
DIGAMMA = (
    conv(0.0, INF, UNDEFINED, None,
         "digamma has a pole at 0 (and at every negative integer): undefined. torch: grad * polygamma(1, 0); "
         "calc_trigamma's pi^2 / sin(0)^2 = +inf, the limit from both sides (trigamma > 0 everywhere).",
         approaches=(side(0, 1, INF), side(0, -1, INF))),
    conv(-0.0, INF, UNDEFINED, None, "-0 is the pole 0 (as above).", approaches=(side(0, 1, INF), side(0, -1, INF))),
)
LGAMMA = (
    conv(0.0, -INF, UNDEFINED, None,
         "lgamma(0) = log|Gamma(0)| = +inf: a pole, undefined. torch: grad * digamma(0) = -inf, the limit from "
         "above (from below digamma -> +inf).", approaches=(side(0, 1, -INF), side(0, -1, INF))),
    conv(-0.0, INF, UNDEFINED, None,
         "-0 is the pole 0; torch's digamma(-0) = +inf (calc_digamma returns copysign(inf, -x)), the limit from "
         "below.", approaches=(side(0, 1, -INF), side(0, -1, INF))),
)
_I0E_WHY = ("i0e(x) = exp(-|x|) I0(x) = 1 - |x| + O(x^2) has a concave kink at 0: superdifferential [-1, 1], "
            "minimum norm 0. torch: special_i1e(0) - sgn(0) * result = 0 - 0.")
_I0E_SIDES = (side(0, 1, -1.0), side(0, -1, 1.0))
I0E = (
    conv(0.0, 0.0, SUPER, 0.0, _I0E_WHY, dtypes=(F64, F32, F16), approaches=_I0E_SIDES),
    conv(-0.0, 0.0, SUPER, 0.0, "-0 is the point 0 (as above).", dtypes=(F64, F32, F16), approaches=_I0E_SIDES),
    # bfloat16's i0e kernel gives i0e(0) = 0.9921875, 2 ulps below 1 (within its measured accuracy), so its
    # one-sided limits are -+0.9921875, not the -+1 a few ulps would show
    conv(0.0, 0.0, SUPER, 0.0, _I0E_WHY, dtypes=(BF16,)),
    conv(-0.0, 0.0, SUPER, 0.0, "-0 is the point 0 (as above).", dtypes=(BF16,)),
)

def _polygamma_pole(n: int):
    """polygamma(n, x) near its pole 0: its derivative polygamma(n + 1, x) ~ (-1)^n (n + 1)! / x^(n + 2)."""
    above = -INF if n % 2 else INF
    below = INF
    why = (f"polygamma({n}, x) has a pole at 0: undefined. torch: grad * polygamma({n + 1}, 0), Cephes' "
           f"zeta({n + 2}, 0) = inf, so {'-' if n % 2 else '+'}inf, the limit from above; from below the derivative "
           "tends to +inf.")
    sides = (side(0, 1, above), side(0, -1, below))
    return (conv(0.0, above, UNDEFINED, None, why, approaches=sides),
            conv(-0.0, above, UNDEFINED, None, "-0 is the pole 0 (as above).", approaches=sides))


POLYGAMMA = {n: _polygamma_pole(n) for n in (1, 2, 3, 4)}
NDTRI = (
    conv(0.0, INF, UNDEFINED, None,
         "ndtri(0) = -inf is no real number: undefined. torch: grad * sqrt(2 pi) * exp(result^2 / 2) = +inf, the "
         "limit from inside.", dtypes=(F64, F32), approaches=(side(0, 1, INF),)),
    conv(1.0, INF, UNDEFINED, None, "as at 0 (ndtri(1) = +inf, squared +inf).", dtypes=(F64, F32),
         approaches=(side(0, -1, INF),)),
)
