"""torch's conventions per op of the table, one tuple per op, named after it and read by its entry in
oracles.table.ops (see oracles.table.conventions).

Each entry: the point, torch's gradient there, the clause of the documented rule that applies, the
value that clause prescribes (derived here, in `why`, from the mathematics, never read off torch), and
torch's formula (tools/autograd/derivatives.yaml, FunctionsManual.cpp) that explains torch's value.
Approaches give the one-sided limits of the gradient, pinned at generated points a few ulps away.
"""

from __future__ import annotations

import math

from oracles.table.conventions import Rule, conv, side

GRADIENT, SUB, SUPER, LIMIT, UNDEFINED = (Rule.GRADIENT, Rule.MIN_NORM_SUBGRADIENT,
                                          Rule.MIN_NORM_SUPERGRADIENT, Rule.LIMIT, Rule.UNDEFINED)
INF, NAN = math.inf, math.nan
F64, F32, BF16, F16 = "float64", "float32", "bfloat16", "float16"


def _sech2(x: float) -> float:
    """tanh'(x) = sech(x)^2 = 4 / (e^x + e^-x)^2, written so it does not cancel."""
    return 4.0 / (math.exp(x) + math.exp(-x)) ** 2


def _sigmoid_prime(x: float) -> float:
    """sigmoid'(x) = e^-x / (1 + e^-x)^2 (for x > 0 without cancellation)."""
    return math.exp(-x) / (1.0 + math.exp(-x)) ** 2 if x > 0 else math.exp(x) / (1.0 + math.exp(x)) ** 2


CLAMP_ISSUE = "https://github.com/pytorch/pytorch/issues/184574"

# ------------------------------------------------------------------ kinks of piecewise-linear ops
ABS = (
    conv(0.0, 0.0, SUB, 0.0,
         "|x| is convex; its subdifferential at 0 is [-1, 1], of minimum norm 0. torch: grad * self.sgn(), "
         "sgn(0) = 0.", approaches=(side(0, 1, 1.0), side(0, -1, -1.0))),
    conv(-0.0, 0.0, SUB, 0.0,
         "-0 is the point 0 (as above); sgn(-0) = 0.", approaches=(side(0, 1, 1.0), side(0, -1, -1.0))),
)
RELU = (
    conv(0.0, 0.0, SUB, 0.0,
         "max(x, 0) is convex; subdifferential [0, 1] at 0, minimum norm 0. torch: threshold_backward("
         "grad, result, 0) zeroes grad where result <= 0.",
         approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
    conv(-0.0, 0.0, SUB, 0.0, "-0 is the point 0; result = -0 <= 0, so 0.",
         approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
)
CLAMP = (
    conv((0.0, 0.0, 1.0), 1.0, SUB, 0.0,
         "clamp(x, 0, 1) is max(x, 0) near 0: convex, subdifferential [0, 1], minimum norm 0. torch: "
         "clamp_backward keeps grad where (self >= min) & (self <= max), on purpose (derivatives.yaml: "
         "'we return the subgradient 1 for these cases', PR #7049 for issue #7002).",
         label="0,lo=0,hi=1", approaches=(side(0, 1, 1.0), side(0, -1, 0.0)), upstream=CLAMP_ISSUE),
    conv((1.0, 0.0, 1.0), 1.0, SUPER, 0.0,
         "clamp(x, 0, 1) is min(x, 1) near 1: concave, superdifferential [0, 1], minimum norm 0. "
         "torch: clamp_backward's closed interval, as at the lower bound.",
         label="1,lo=0,hi=1", approaches=(side(0, -1, 1.0), side(0, 1, 0.0)), upstream=CLAMP_ISSUE),
)
CLAMP_MIN = (
    conv((0.0, 0.0), 1.0, SUB, 0.0,
         "clamp_min(x, 0) = max(x, 0), relu: convex, minimum-norm subgradient 0 (relu gives 0). torch: "
         "grad * (self >= min).",
         label="0,min=0", approaches=(side(0, 1, 1.0), side(0, -1, 0.0)), upstream=CLAMP_ISSUE),
)
CLAMP_MAX = (
    conv((0.0, 0.0), 1.0, SUPER, 0.0,
         "clamp_max(x, 0) = min(x, 0): concave, superdifferential [0, 1], minimum norm 0. torch: "
         "grad * (self <= max).",
         label="0,max=0", approaches=(side(0, -1, 1.0), side(0, 1, 0.0)), upstream=CLAMP_ISSUE),
)
HARDTANH = (
    conv((-1.0, -1.0, 1.0), 0.0, SUB, 0.0,
         "hardtanh = clamp(x, -1, 1) is max(x, -1) near -1: convex, minimum-norm subgradient 0. torch: "
         "hardtanh_backward zeroes grad where self <= min_val or self >= max_val.",
         label="-1,lo=-1,hi=1", approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
    conv((1.0, -1.0, 1.0), 0.0, SUPER, 0.0,
         "min(x, 1) near 1: concave, minimum-norm supergradient 0. torch: as at the lower bound.",
         label="1,lo=-1,hi=1", approaches=(side(0, -1, 1.0), side(0, 1, 0.0))),
)
LEAKY_RELU = (
    conv((0.0, 0.01), 0.01, SUB, 0.01,
         "max(x, 0.01 x) is convex; subdifferential [0.01, 1] at 0, minimum norm 0.01. torch: self > 0 ? "
         "grad : grad * negative_slope.",
         label="0,slope=0.01", approaches=(side(0, 1, 1.0), side(0, -1, 0.01))),
    conv((0.0, 2.0), 2.0, SUPER, 1.0,
         "slope 2 below 0 and 1 above: concave, superdifferential [1, 2], minimum norm 1. torch's "
         "formula takes the left slope at 0 whatever its value.",
         label="0,slope=2", approaches=(side(0, 1, 1.0), side(0, -1, 2.0))),
)
ELU = (
    conv((0.0, 1.0), 1.0, GRADIENT, 1.0,
         "with alpha = 1, elu is differentiable at 0: alpha e^0 = 1 from the left, 1 from the right. "
         "torch: elu_backward, x <= 0 ? grad * alpha * exp(x) : grad.",
         label="0,alpha=1", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv((0.0, 0.5), 0.5, SUB, 0.5,
         "alpha = 0.5: slope 0.5 from the left, 1 from the right, convex; subdifferential [0.5, 1], "
         "minimum norm 0.5. torch: the x <= 0 branch, alpha * exp(0).",
         label="0,alpha=0.5", approaches=(side(0, 1, 1.0), side(0, -1, 0.5))),
    conv((0.0, 2.0), 2.0, SUPER, 1.0,
         "alpha = 2: slope 2 from the left, 1 from the right, concave; superdifferential [1, 2], "
         "minimum norm 1. torch takes the x <= 0 branch: alpha * exp(0) = 2.",
         label="0,alpha=2", approaches=(side(0, 1, 1.0), side(0, -1, 2.0))),
)
MAXIMUM = (
    conv((1.0, 1.0), (0.5, 0.5), SUB, (0.5, 0.5),
         "max(a, b) is convex; at a tie its subdifferential is {(t, 1 - t) : t in [0, 1]}, minimum norm "
         "(1/2, 1/2). torch: the gradient is split evenly where self == other.",
         approaches=(side(0, 1, 1.0, 0.0), side(0, -1, 0.0, 1.0))),
    conv((0.0, -0.0), (0.5, 0.5), SUB, (0.5, 0.5),
         "+0 and -0 tie as real numbers (as above); torch compares them equal.",
         approaches=(side(0, 1, 1.0, 0.0), side(0, -1, 0.0, 1.0))),
)
MINIMUM = (
    conv((1.0, 1.0), (0.5, 0.5), SUPER, (0.5, 0.5),
         "min(a, b) is concave; at a tie its superdifferential is {(t, 1 - t)}, minimum norm (1/2, 1/2). "
         "torch: split evenly.", approaches=(side(0, 1, 0.0, 1.0), side(0, -1, 1.0, 0.0))),
)
FMAX = (
    conv((1.0, 1.0), (1.0, 0.0), SUB, (0.5, 0.5),
         "as maximum: the minimum-norm subgradient at a tie is (1/2, 1/2). torch's fmax backward sends "
         "grad to self where self >= other (or other is NaN), to other elsewhere: the tie goes to self.",
         approaches=(side(0, 1, 1.0, 0.0), side(0, -1, 0.0, 1.0))),
    conv((1.0, NAN), (1.0, 0.0), (GRADIENT, UNDEFINED), (1.0, None),
         "fmax ignores a NaN operand: fmax(a, NaN) = a for every a, so the gradient for a is 1; a NaN is no "
         "point of the real line, so the clause for it is 'undefined' (the output does not move with it: "
         "torch 2.13 gives 0). torch: the mask self >= other or other is NaN sends grad to self only.",
         label="1,nan"),
    conv((NAN, 1.0), (0.0, 1.0), (UNDEFINED, GRADIENT), (None, 1.0),
         "fmax(NaN, b) = b for every b: the gradient for b is 1, the NaN's clause 'undefined' (torch 2.13: 0).",
         label="nan,1"),
)
FMIN = (
    conv((1.0, 1.0), (1.0, 0.0), SUPER, (0.5, 0.5),
         "as minimum: (1/2, 1/2) at a tie. torch's fmin backward sends grad to self where self <= other: "
         "the tie goes to self.", approaches=(side(0, 1, 0.0, 1.0), side(0, -1, 1.0, 0.0))),
    conv((1.0, NAN), (1.0, 0.0), (GRADIENT, UNDEFINED), (1.0, None),
         "fmin ignores a NaN operand: fmin(a, NaN) = a, gradient 1 for a; the NaN's clause is 'undefined' "
         "(torch 2.13: 0, its mask self <= other or other is NaN).", label="1,nan"),
    conv((NAN, 1.0), (0.0, 1.0), (UNDEFINED, GRADIENT), (None, 1.0),
         "fmin(NaN, b) = b: gradient 1 for b; the NaN's clause 'undefined' (torch 2.13: 0).", label="nan,1"),
)
# ------------------------------------------------------------------ steps: jumps, derivative 0 around
SIGN = (
    conv(0.0, 0.0, LIMIT, 0.0,
         "sign is defined at 0 (sign(0) = 0) but jumps; its derivative is 0 on both sides, so the limit "
         "clause gives 0. torch: zeros_like(grad).", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
FLOOR = (
    conv(1.0, 0.0, LIMIT, 0.0, "floor jumps at integers; derivative 0 on both sides. torch: zeros_like(grad).",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
CEIL = (
    conv(1.0, 0.0, LIMIT, 0.0, "ceil jumps at integers; derivative 0 on both sides. torch: zeros_like(grad).",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
TRUNC = (
    conv(1.0, 0.0, LIMIT, 0.0, "trunc jumps at nonzero integers; derivative 0 on both sides. torch: "
         "zeros_like(grad).", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv(0.0, 0.0, GRADIENT, 0.0, "trunc is 0 on (-1, 1): differentiable at 0 with derivative 0.",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
ROUND = (
    conv(0.5, 0.0, LIMIT, 0.0, "round (half to even) jumps at half-integers; derivative 0 on both sides. "
         "torch: zeros_like(grad).", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
FRAC = (
    conv(1.0, 1.0, LIMIT, 1.0, "frac = x - trunc(x) jumps at integers; derivative 1 on both sides. torch: "
         "grad.", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
)
# ------------------------------------------------------------------ boundaries of the domain
SQRT = (
    conv(0.0, INF, LIMIT, INF,
         "sqrt is defined on [0, inf); 1/(2 sqrt x) -> +inf as x -> 0+. torch: grad / (2 * result) = 1/0.",
         approaches=(side(0, 1, INF),)),
    conv(-0.0, -INF, LIMIT, INF,
         "-0 is the point 0, where the limit is +inf. torch: result = sqrt(-0) = -0 (IEEE), and "
         "grad / (2 * -0) = -inf: the sign of zero leaks into the gradient.",
         approaches=(side(0, 1, INF),)),
)
POW_SCALAR = (
    conv((0.0, 0.5), INF, LIMIT, INF,
         "x ** 0.5 = sqrt x, defined at 0; 0.5 x^-0.5 -> +inf. torch: pow_backward, 0.5 * 0 ** -0.5 = inf.",
         label="0**0.5", approaches=(side(0, 1, INF),)),
    conv((-0.0, 0.5), -INF, LIMIT, INF,
         "-0 is the point 0, limit +inf. torch: pow_backward computes self.pow(-0.5) with the rsqrt "
         "kernel (pow special-cases the exponent -0.5), and rsqrt(-0) = -inf.",
         label="-0**0.5", dtypes=(F64, F32, BF16), approaches=(side(0, 1, INF),)),
    conv((-0.0, 0.5), INF, LIMIT, INF,
         "-0 is the point 0, limit +inf; float16's pow takes no rsqrt shortcut: (-0) ** -0.5 = +inf (IEEE).",
         label="-0**0.5", dtypes=(F16,), approaches=(side(0, 1, INF),)),
    conv((0.0, 0.0), 0.0, GRADIENT, 0.0,
         "x ** 0 = 1 for every x (0 ** 0 = 1 in torch), a constant: derivative 0. torch: pow_backward "
         "returns zeros when the exponent is 0.", label="0**0", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv((0.0, 1.5), 0.0, LIMIT, 0.0,
         "x ** 1.5 is defined on [0, inf) (torch: NaN below 0); 1.5 sqrt x -> 0. torch: 1.5 * 0 ** 0.5.",
         label="0**1.5", approaches=(side(0, 1, 0.0),)),
    conv((0.0, 2.0), 0.0, GRADIENT, 0.0, "x ** 2 is differentiable: 2x = 0.",
         label="0**2", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv((0.0, 0.25), INF, LIMIT, INF,
         "x ** 0.25: torch's pow of a negative base with a non-integer exponent is NaN, so the domain is "
         "[0, inf); 0.25 x^(-3/4) -> +inf. torch: 0.25 * 0 ** -0.75 = inf.",
         label="0**0.25", approaches=(side(0, 1, INF),)),
    conv((0.0, -1.0), -INF, UNDEFINED, None,
         "x ** -1 has a pole at 0: undefined. torch: -1 * 0 ** -2 = -inf, both one-sided limits of -x^-2.",
         label="0**-1", approaches=(side(0, 1, -INF), side(0, -1, -INF))),
)
POW = (
    conv((0.0, 0.0), (0.0, 0.0), (GRADIENT, UNDEFINED), (0.0, None),
         "base: x ** 0 = 1 for every x, so 0 (pow_backward_self masks exponent == 0). exponent: y -> 0 ** y "
         "is 0 for y > 0, 1 at 0 and inf for y < 0: no limit, arbitrary; torch's pow_backward_exponent "
         "gives 0 where base == 0 and exponent >= 0."),
    conv((0.0, 0.5), (INF, 0.0), (LIMIT, GRADIENT), (INF, 0.0),
         "base: as sqrt at 0, +inf. exponent: 0 ** y = 0 for every y > 0, so d/dy = 0 (torch: the same "
         "base == 0 and exponent >= 0 mask)."),
    conv((0.0, 2.0), (0.0, 0.0), GRADIENT, (0.0, 0.0),
         "base: 2x = 0. exponent: 0 ** y = 0 for y > 0, so 0."),
    conv((0.0, -1.0), (-INF, -INF), UNDEFINED, (None, None),
         "base: pole of x ** -1. exponent: 0 ** y = inf for y < 0, undefined. torch: -1 * 0 ** -2 = -inf "
         "and result * log(0) = inf * -inf = -inf."),
    conv((-2.0, 2.0), (-4.0, NAN), (GRADIENT, UNDEFINED), (-4.0, None),
         "base: x ** 2 -> 2x = -4. exponent: (-2) ** y is not real for non-integer y: undefined; torch: "
         "result * log(-2) = NaN."),
)
ASIN = (
    conv(1.0, INF, LIMIT, INF,
         "asin is defined on [-1, 1]; 1/sqrt(1 - x^2) -> +inf at 1. torch: grad * (-self * self + 1).rsqrt().",
         approaches=(side(0, -1, INF),)),
    conv(-1.0, INF, LIMIT, INF, "as at 1: +inf at -1.", approaches=(side(0, 1, INF),)),
)
ACOS = (
    conv(1.0, -INF, LIMIT, -INF, "acos is defined on [-1, 1]; -1/sqrt(1 - x^2) -> -inf. torch: "
         "grad * -((-self * self + 1).rsqrt()).", approaches=(side(0, -1, -INF),)),
    conv(-1.0, -INF, LIMIT, -INF, "as at 1: -inf at -1.", approaches=(side(0, 1, -INF),)),
)
# ------------------------------------------------------------------ poles: not defined at the point
RSQRT = (
    conv(0.0, -INF, UNDEFINED, None,
         "1/sqrt x is not defined at 0 (a pole). torch: -0.5 * grad * result.pow(3) with result = inf: "
         "-inf, the one-sided limit.", approaches=(side(0, 1, -INF),)),
    conv(-0.0, INF, UNDEFINED, None,
         "as at 0; result = rsqrt(-0) = -inf, so -0.5 * (-inf)^3 = +inf.", approaches=(side(0, 1, -INF),)),
)
LOG = (
    conv(0.0, INF, UNDEFINED, None,
         "log is not defined at 0 (log 0 = -inf is no real number). torch: grad / self = 1/0 = +inf, "
         "the one-sided limit.", approaches=(side(0, 1, INF),)),
    conv(-0.0, -INF, UNDEFINED, None, "as at 0; grad / -0 = -inf.", approaches=(side(0, 1, INF),)),
)
LOG2 = (
    conv(0.0, INF, UNDEFINED, None,
         "log2 is not defined at 0. torch: grad / (self * M_LN2) = 1/0 = +inf, the one-sided limit.",
         approaches=(side(0, 1, INF),)),
    conv(-0.0, -INF, UNDEFINED, None, "as at 0; -0 * M_LN2 = -0, so -inf.", approaches=(side(0, 1, INF),)),
)
LOG10 = (
    conv(0.0, INF, UNDEFINED, None,
         "log10 is not defined at 0. torch: grad / (self * M_LN10) = 1/0 = +inf, the one-sided limit.",
         approaches=(side(0, 1, INF),)),
    conv(-0.0, -INF, UNDEFINED, None, "as at 0; -0 * M_LN10 = -0, so -inf.", approaches=(side(0, 1, INF),)),
)
LOG1P = (
    conv(-1.0, INF, UNDEFINED, None,
         "log(1 + x) is not defined at -1. torch: log1p_backward, grad / (self + 1) = 1/0 = +inf.",
         approaches=(side(0, 1, INF),)),
)
RECIPROCAL = (
    conv(0.0, -INF, UNDEFINED, None,
         "1/x is not defined at 0. torch: -grad * result * result = -(inf * inf) = -inf, which is both "
         "one-sided limits of -1/x^2.", approaches=(side(0, 1, -INF), side(0, -1, -INF))),
    conv(-0.0, -INF, UNDEFINED, None, "as at 0: result = -inf, -(-inf)^2 = -inf.",
         approaches=(side(0, 1, -INF), side(0, -1, -INF))),
)
DIV = (
    conv((1.0, 0.0), (INF, -INF), UNDEFINED, (None, None),
         "a / b is not defined at b = 0. torch: grad / other = +inf and -grad * self / (other * other) "
         "= -inf.", approaches=(side(1, 1, INF, -INF),)),
)
ATANH = (
    conv(1.0, INF, UNDEFINED, None,
         "atanh has poles at +-1. torch: grad / (1 - self.pow(2)) = 1/0 = +inf, the limit from inside.",
         approaches=(side(0, -1, INF),)),
    conv(-1.0, INF, UNDEFINED, None, "as at 1.", approaches=(side(0, 1, INF),)),
)
# ------------------------------------------------------------------ binary ops at the origin
ATAN2 = (
    conv((0.0, 0.0), (0.0, -0.0), UNDEFINED, (None, None),
         "atan2(y, x) has no limit at the origin and its gradient (x, -y)/(x^2 + y^2) is unbounded "
         "there: undefined. torch: atan2_backward computes recip = 1/(x^2 + y^2) and masks it to 0 "
         "where x^2 + y^2 == 0, so (x * 0, -y * 0) = (0, -0). Approaching the origin the exact gradient "
         "tends to infinity, but torch's mask also fires wherever x^2 + y^2 underflows.",
         label="0,0", approaches=(side(1, 1, INF, 0.0), side(0, 1, 0.0, -INF))),
    conv((-0.0, 0.0), (0.0, 0.0), UNDEFINED, (None, None), "as at (0, 0); -(-0) * 0 = 0.", label="-0,0"),
    conv((0.0, -0.0), (-0.0, -0.0), UNDEFINED, (None, None), "as at (0, 0); -0 * 0 = -0.", label="0,-0"),
)
HYPOT = (
    conv((0.0, 0.0), (NAN, NAN), SUB, (0.0, 0.0),
         "hypot(a, b) = |(a, b)| is convex; at the origin its subdifferential is the unit disc, of minimum "
         "norm (0, 0) (the 2-norm, torch.linalg.vector_norm, gives exactly that at 0). torch: grad * "
         "self / result = 0/0 = NaN.",
         label="0,0", approaches=(side(0, 1, 1.0, 0.0), side(0, -1, -1.0, 0.0))),
)
LOGADDEXP = (
    conv((1.0, 1.0), (0.5, 0.5), GRADIENT, (0.5, 0.5),
         "log(e^a + e^b) is smooth, also at a tie: e^a / (e^a + e^b) = 1/2. torch: grad / (1 + exp(other "
         "- self)) = 1/2.", approaches=(side(0, 1, 0.5, 0.5), side(0, -1, 0.5, 0.5))),
    conv((-INF, -INF), (NAN, NAN), UNDEFINED, (None, None),
         "infinite inputs are no real point: undefined (along the diagonal the limit is (1/2, 1/2)). "
         "torch: exp(other - self) = exp(-inf + inf) = NaN.", label="-inf,-inf"),
    conv((INF, INF), (NAN, NAN), UNDEFINED, (None, None),
         "undefined, as at (-inf, -inf): exp(inf - inf) = NaN.", label="inf,inf"),
)
SINC = (
    conv(0.0, 0.0, GRADIENT, 0.0,
         "sinc(x) = sin(pi x)/(pi x) extends smoothly to 0 (sinc(0) = 1) and is even: derivative 0. "
         "torch: sinc_backward's formula is 0/0 there and is replaced by 0 where self * self * pi == 0.",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
GELU = (
    conv(0.0, 0.5, GRADIENT, 0.5,
         "gelu(x) = x Phi(x) is smooth: Phi(0) + 0 * phi(0) = 1/2. torch: gelu_backward, cdf + x * pdf.",
         approaches=(side(0, 1, 0.5), side(0, -1, 0.5))),
)
SOFTPLUS = (
    conv(20.0, 1 / (1 + math.exp(-20.0)), LIMIT, 1 / (1 + math.exp(-20.0)),
         "torch's softplus (threshold 20) is log1p(e^x) up to 20 and x above: it jumps by about 2e-9 at "
         "20 and is continuous from the left, so the gradient by continuity is sigmoid(20). torch: "
         "softplus_backward, x > threshold ? grad : grad * z / (z + 1) with z = exp(x).",
         approaches=(side(0, 1, 1.0), side(0, -1, 1 / (1 + math.exp(-20.0))))),
)
# ------------------------------------------------------------------ saturation and overflow
TANH = (
    conv(20.0, 0.0, GRADIENT, _sech2(20.0),
         "tanh is smooth: sech(20)^2 = 1.7e-17, representable in every dtype but float16. torch: "
         "tanh_backward, grad * (1 - y * y) from the output y, which rounds to 1: every digit cancels.",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv(-20.0, 0.0, GRADIENT, _sech2(20.0), "as at 20 (y rounds to -1).",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv(10.0, 0.0, GRADIENT, _sech2(10.0),
         "sech(10)^2 = 8.2e-9; in float32 and bfloat16 tanh(10) rounds to 1, so 1 - y * y = 0.",
         dtypes=(F32, BF16, F16), approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
SIGMOID = (
    conv(40.0, 0.0, GRADIENT, _sigmoid_prime(40.0),
         "sigmoid'(40) = e^-40/(1 + e^-40)^2 = 4.2e-18. torch: sigmoid_backward, grad * (1 - y) * y from "
         "the output y, which rounds to 1: 1 - y = 0.", approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
    conv(-40.0, _sigmoid_prime(40.0), GRADIENT, _sigmoid_prime(40.0),
         "the same gradient at -40, where y = 4.2e-18 is held with full relative precision: (1 - y) * y "
         "is accurate. Saturation costs accuracy on the positive side only.", dtypes=(F64, F32, BF16)),
)
ATAN = (
    conv(2.0 ** 520, 0.0, GRADIENT, 2.0 ** -1040,
         "1/(1 + x^2) = 2^-1040, a float64 subnormal. torch: grad / (self * self + 1), and self * self "
         "overflows to inf.", label="2^520", dtypes=(F64,)),
    conv(2.0 ** 66, 0.0, GRADIENT, 2.0 ** -132,
         "1/(1 + x^2) = 2^-132, a float32 subnormal; self * self overflows.", label="2^66", dtypes=(F32, BF16)),
    conv(512.0, 0.0, GRADIENT, 1 / (1 + 512.0 ** 2),
         "1/(1 + 512^2) = 3.8e-6, a float16 subnormal; self * self = 2^18 overflows float16 (max 65504).",
         label="512", dtypes=(F16,)),
)
ASINH = (
    conv(2.0 ** 520, 0.0, GRADIENT, 2.0 ** -520,
         "1/sqrt(1 + x^2) = 2^-520, a normal float64. torch: grad * (self.pow(2) + 1).rsqrt(): the "
         "square overflows and rsqrt(inf) = 0.", label="2^520", dtypes=(F64,)),
    conv(2.0 ** 66, 0.0, GRADIENT, 2.0 ** -66,
         "1/sqrt(1 + x^2) = 2^-66, a normal float32; the square overflows.", label="2^66", dtypes=(F32, BF16)),
    conv(512.0, 0.0, GRADIENT, 1 / math.sqrt(1 + 512.0 ** 2),
         "1/sqrt(1 + 512^2) = 1.95e-3, a normal float16; 512^2 overflows float16.",
         label="512", dtypes=(F16,)),
)

# atan2 far from and near the origin: the exact gradient is a normal number, torch's denominator
# x^2 + y^2 overflows (recip = 1/inf = 0) or underflows (masked to 0).
ATAN2 += (
    conv((2.0 ** 520, 2.0 ** 520), (0.0, -0.0), GRADIENT, (2.0 ** -521, -(2.0 ** -521)),
         "x/(x^2 + y^2) = 2^-521, normal in float64. torch: x^2 + y^2 overflows, recip = 0.",
         label="2^520,2^520", dtypes=(F64,)),
    conv((2.0 ** -540, 2.0 ** -540), (0.0, -0.0), GRADIENT, (2.0 ** 539, -(2.0 ** 539)),
         "x/(x^2 + y^2) = 2^539, normal in float64. torch: x^2 + y^2 underflows to 0 and is masked to 0.",
         label="2^-540,2^-540", dtypes=(F64,)),
    conv((2.0 ** 66, 2.0 ** 66), (0.0, -0.0), GRADIENT, (2.0 ** -67, -(2.0 ** -67)),
         "2^-67, normal in float32; x^2 + y^2 overflows.", label="2^66,2^66", dtypes=(F32, BF16)),
    conv((2.0 ** -80, 2.0 ** -80), (0.0, -0.0), GRADIENT, (2.0 ** 79, -(2.0 ** 79)),
         "2^79, normal in float32; x^2 + y^2 = 2^-159 underflows and is masked to 0.",
         label="2^-80,2^-80", dtypes=(F32, BF16)),
    conv((512.0, 512.0), (0.0, -0.0), GRADIENT, (2.0 ** -10, -(2.0 ** -10)),
         "2^-10, normal in float16; x^2 + y^2 = 2^19 overflows float16.", label="512,512", dtypes=(F16,)),
    conv((2.0 ** -14, 2.0 ** -14), (0.0, -0.0), GRADIENT, (2.0 ** 13, -(2.0 ** 13)),
         "2^13, normal in float16; x^2 = 2^-28 underflows float16 and the sum is masked to 0.",
         label="2^-14,2^-14", dtypes=(F16,)),
)
