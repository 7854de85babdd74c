"""torch's conventions for the activation functions of oracles.table.activations, one tuple per op, in the
style of oracles.table.op_conventions: the point, torch's gradient there, the clause of the documented
rule that applies, the value that clause prescribes (derived here, in `why`, from the mathematics, never
read off torch), and torch's formula (derivatives.yaml and the CPU kernels of
aten/src/ATen/native/cpu/Activation.cpp) that explains torch's value.
"""

from __future__ import annotations

from oracles.table.conventions import Rule, conv, side

GRADIENT, SUB, SUPER, LIMIT, UNDEFINED = (Rule.GRADIENT, Rule.MIN_NORM_SUBGRADIENT,
                                          Rule.MIN_NORM_SUPERGRADIENT, Rule.LIMIT, Rule.UNDEFINED)

# ------------------------------------------------------------------ smooth: the gradient at 0
SILU = (
    conv(0.0, 0.5, GRADIENT, 0.5,
         "silu(x) = x sigmoid(x) is smooth: sigmoid(0) + 0 * sigmoid'(0) = 1/2. torch: silu_backward, "
         "sigmoid = 1 / (1 + exp(-x)); grad * sigmoid * (1 + x * (1 - sigmoid)) = 1/2 * (1 + 0).",
         approaches=(side(0, 1, 0.5), side(0, -1, 0.5))),
)
MISH = (
    conv(0.0, 0.6, GRADIENT, 0.6,
         "mish(x) = x tanh(softplus(x)) is smooth: tanh(softplus(0)) + 0 = tanh(log 2) = (2 - 1/2) / (2 + 1/2) "
         "= 3/5. torch: mish_backward, tanh_softplus + x * sigmoid * (1 - tanh_softplus^2) with "
         "tanh_softplus = tanh(log1p(exp(0))).",
         approaches=(side(0, 1, 0.6), side(0, -1, 0.6))),
)
LOGSIGMOID = (
    conv(0.0, 0.5, GRADIENT, 0.5,
         "log sigmoid(x) = -log(1 + e^-x) is smooth: its derivative 1 / (1 + e^x) is 1/2 at 0. torch: "
         "log_sigmoid_backward with buffer z = exp(-|x|) = 1: x < 0 is false, so 0 + z / (1 + z) = 1/2.",
         approaches=(side(0, 1, 0.5), side(0, -1, 0.5))),
)
TANHSHRINK = (
    conv(0.0, 0.0, GRADIENT, 0.0,
         "tanhshrink(x) = x - tanh(x) is smooth: 1 - sech(0)^2 = 0. torch: F.tanhshrink is input - "
         "input.tanh(), so autograd sums grad and -grad * (1 - tanh(0)^2) = -grad.",
         approaches=(side(0, 1, 0.0), side(0, -1, 0.0))),
)
# ------------------------------------------------------------------ C^1 at 0 although written piecewise
CELU = (
    conv((0.0, 1.0), 1.0, GRADIENT, 1.0,
         "celu(x, alpha) = x above 0 and alpha (e^(x/alpha) - 1) below: the left derivative e^(0/alpha) = 1 "
         "equals the right one, so celu is differentiable at 0 with derivative 1, for every alpha. torch: "
         "elu_backward(grad, alpha, 1, 1/alpha, is_result=false, self) takes x <= 0: "
         "grad * (1/alpha) * alpha * exp(0 * (1/alpha)) = 1 (1/alpha and the product exact here).",
         label="0,alpha=1", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv((0.0, 0.5), 1.0, GRADIENT, 1.0,
         "as for alpha = 1: e^(0/alpha) = 1 from the left, 1 from the right. torch: 2 * 0.5 * exp(0) = 1.",
         label="0,alpha=0.5", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv((0.0, 2.0), 1.0, GRADIENT, 1.0,
         "as for alpha = 1. torch: 0.5 * 2 * exp(0) = 1.",
         label="0,alpha=2", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
)
# ------------------------------------------------------------------ kinks
# at::selu's double constants (aten/src/ATen/native/Activation.cpp)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
SELU = (
    conv(0.0, _SELU_ALPHA * _SELU_SCALE, SUPER, _SELU_SCALE,
         "selu(x) = scale * x above 0 and scale * alpha * (e^x - 1) below: slope scale * alpha = 1.758 from "
         "the left, scale = 1.051 from the right. The slope falls, so the kink is concave; its "
         "superdifferential is [1.051, 1.758], of minimum norm scale = 1.051. torch: selu is elu(x, alpha, "
         "scale), whose elu_backward takes the x <= 0 branch at 0: grad * negcoef * exp(0) = alpha * scale.",
         approaches=(side(0, 1, _SELU_SCALE), side(0, -1, _SELU_ALPHA * _SELU_SCALE))),
)

# ------------------------------------------------------------------ kinks at fixed points
RELU6 = (
    conv(0.0, 0.0, SUB, 0.0,
         "relu6(x) = min(max(x, 0), 6) is max(x, 0) near 0: convex, subdifferential [0, 1], minimum norm 0. "
         "torch: relu6 is hardtanh(x, 0, 6), whose backward keeps grad only where 0 < x < 6.",
         approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
    conv(6.0, 0.0, SUPER, 0.0,
         "relu6 is min(x, 6) near 6: concave, superdifferential [0, 1], minimum norm 0. torch: hardtanh's "
         "open interval, as at 0.",
         approaches=(side(0, -1, 1.0), side(0, 1, 0.0))),
)
HARDSIGMOID = (
    conv(-3.0, 0.0, SUB, 0.0,
         "hardsigmoid(x) = min(max(x + 3, 0), 6) / 6 is max(x + 3, 0) / 6 near -3: convex, subdifferential "
         "[0, 1/6], minimum norm 0. torch: hardsigmoid_backward keeps grad / 6 only where -3 < x < 3.",
         approaches=(side(0, 1, 1 / 6), side(0, -1, 0.0))),
    conv(3.0, 0.0, SUPER, 0.0,
         "hardsigmoid is min(x + 3, 6) / 6 near 3: concave, superdifferential [0, 1/6], minimum norm 0. "
         "torch: the same open interval.",
         approaches=(side(0, -1, 1 / 6), side(0, 1, 0.0))),
)
HARDSWISH = (
    conv(-3.0, 0.0, SUPER, 0.0,
         "hardswish(x) = x min(max(x + 3, 0), 6) / 6 has slopes 0 below -3 and (2x + 3)/6 = -1/2 just above: "
         "the slope drops, a concave kink, superdifferential [-1/2, 0], minimum norm 0. torch: "
         "hardswish_backward gives 0 for x <= -3.",
         approaches=(side(0, 1, -0.5), side(0, -1, 0.0))),
    conv(3.0, 1.0, SUPER, 1.0,
         "slopes (2x + 3)/6 = 3/2 just below 3 and 1 above: concave, superdifferential [1, 3/2], minimum "
         "norm 1. torch: hardswish_backward gives grad (slope 1) for x >= 3.",
         approaches=(side(0, -1, 1.5), side(0, 1, 1.0))),
)

# ------------------------------------------------------------------ kinks and jumps at ±lambd
SOFTSHRINK = (
    conv((0.5, 0.5), 0.0, SUB, 0.0,
         "softshrink(x, 1/2) is 0 on [-1/2, 1/2] and x - 1/2 above: slopes 0 then 1 at 1/2, a convex kink, "
         "subdifferential [0, 1], minimum norm 0. torch: softshrink_backward zeroes grad for -lambd <= x <= lambd.",
         label="1/2,lambd=1/2", approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
    conv((-0.5, 0.5), 0.0, SUPER, 0.0,
         "slopes 1 (x + 1/2) then 0 at -1/2: concave, superdifferential [0, 1], minimum norm 0. torch: the same "
         "closed interval.", label="-1/2,lambd=1/2", approaches=(side(0, -1, 1.0), side(0, 1, 0.0))),
)
HARDSHRINK = (
    conv((0.5, 0.5), 0.0, UNDEFINED, None,
         "hardshrink(x, 1/2) jumps from 0 to 1/2 at x = 1/2: not continuous, so no derivative and no limit "
         "of the function; any value. torch: hardshrink_backward zeroes grad for -lambd <= x <= lambd.",
         label="1/2,lambd=1/2", approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
    conv((-0.5, 0.5), 0.0, UNDEFINED, None,
         "a jump from -1/2 to 0 at x = -1/2, as above.", label="-1/2,lambd=1/2",
         approaches=(side(0, -1, 1.0), side(0, 1, 0.0))),
)
THRESHOLD = (
    conv((0.5, 0.5, -1.0), 0.0, UNDEFINED, None,
         "threshold(x, 1/2, -1) jumps from -1 to 1/2 at x = 1/2: not continuous, so no derivative and no limit "
         "of the function; any value. torch: threshold_backward keeps grad only where x > threshold.",
         label="1/2,threshold=1/2,value=-1", approaches=(side(0, 1, 1.0), side(0, -1, 0.0))),
)
SOFTSIGN = (
    conv(0.0, 1.0, GRADIENT, 1.0,
         "softsign(x) = x / (1 + |x|) is differentiable at 0: 1 / (1 + |x|)^2 is continuous there, 1. torch, through "
         "the composite: div's grad / other = 1, plus abs's grad * sgn(0) = 0.",
         approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
    conv(-0.0, 1.0, GRADIENT, 1.0, "-0 is the point 0 (as above).", approaches=(side(0, 1, 1.0), side(0, -1, 1.0))),
)

# ------------------------------------------------------------------ rrelu without training: a leaky relu
RRELU = (
    conv((0.0, 0.125, 1 / 3), (0.125 + 1 / 3) / 2, SUB, (0.125 + 1 / 3) / 2,
         "rrelu without training is leaky_relu with slope s = (lower + upper) / 2 = 11/48 below 0 and 1 above: "
         "convex, subdifferential [s, 1], minimum norm s. torch: rrelu_with_noise_backward(training=false) is "
         "leaky_relu_backward, self > 0 ? grad : grad * s.",
         label="0,lower=1/8,upper=1/3", approaches=(side(0, 1, 1.0), side(0, -1, (0.125 + 1 / 3) / 2))),
)
