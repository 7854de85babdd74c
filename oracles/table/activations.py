"""Activation functions (torch.nn.functional) as entries of the elementwise op table.

Each entry is built with the builders of oracles.table.ops and registers itself into `OPS` when this module
is imported (oracles/table/__init__.py imports it). Forwards and local derivatives follow torch's CPU
kernels (aten/src/ATen/native/cpu/Activation.cpp) and derivatives.yaml; bfloat16 and float16 run those
kernels in float32 and round once at the end, which the per-operation rounding of the dtype encloses.
Conventions are in oracles.table.activation_conventions.
"""

from __future__ import annotations

import mpmath
import sympy
import torch
import torch.nn.functional as torch_nn_functional
from flint import arb

from oracles.numerics.rounding import FLOAT32, RoundingModel
from oracles.table import activation_conventions as pins
from oracles.table.domains import Domain, Kind, Special, kink
from oracles.table.ops import (
    NZ,
    ONE,
    PARAMETERS,
    R,
    Spelling,
    add_op,
    elu_expm1,
    nn_spelling,
    ref,
)

mp = mpmath.mp
OFF_SPECIALS, OFF_PARAMETERS = Domain.OFF_SPECIALS, Domain.OFF_PARAMETERS
# Sleef's vectorised exp, log1p and tanh (the `_u10` variants torch's Vectorized uses): 1 ulp each.
KERNEL_ULPS = 1
K = 2 * KERNEL_ULPS


def _exp(F, a):
    return F.round(a.exp(), K)


def _sigmoid(F, a):
    """1 / (1 + exp(-x)), as silu's and mish's kernels compute it."""
    return F.div(ONE, F.add(ONE, _exp(F, -a)))


# ---------------------------------------------------------------- silu: x / (1 + exp(-x))
def _silu_forward(F, a):
    # silu_kernel: x / (1 + exp(-x)), in float for bfloat16 and float16, rounded once
    G = F.opmath
    return F.store(G.div(a, G.add(ONE, _exp(G, -a))))


def _silu_grads(F, args, y):
    # silu_backward: sigmoid = 1 / (1 + exp(-x)); dy * sigmoid * (1 + x * (1 - sigmoid)). With grad mode on
    # (create_graph, forward AD, torch.func) torch runs infinitely_differentiable_silu_backward instead, the
    # same formula in ops of the dtype: modelled so, it encloses the kernel (in float for bfloat16 and
    # float16) too. Measured: jacfwd of mish in bfloat16 at 3 is 1.015625, its backward() 1.0234375.
    x = args[0]
    s = _sigmoid(F, x)
    return (F.mul(s, F.add(ONE, F.mul(x, F.sub(ONE, s)))),)


add_op("silu", [nn_spelling("silu")], lambda a: a / (1 + sympy.exp(-a)),
    _silu_forward, _silu_grads, (R,), ulps=KERNEL_ULPS,
    opinfo=("nn.functional.silu",), conventions=pins.SILU, findings=("silu-mish-double-backward-saturation",),
    references=(ref((0.75,), lambda a: (1 / (1 + mp.exp(-a)) * (1 + a * (1 - 1 / (1 + mp.exp(-a)))),)),
                ref((-2.5,), lambda a: ((1 + mp.exp(-a) + a * mp.exp(-a)) / (1 + mp.exp(-a)) ** 2,))),
    interval_formulas=True)


# ---------------------------------------------------------------- mish: x * tanh(log1p(exp(x)))
def _tanh_softplus(F, a):
    return F.round(F.round(_exp(F, a).log1p(), K).tanh(), K)


def _mish_forward(F, a):
    # mish_kernel: x * tanh(log1p(exp(x))), in float for bfloat16 and float16, rounded once
    return F.store(F.opmath.mul(a, _tanh_softplus(F.opmath, a)))


def _mish_grads(F, args, y):
    # mish_backward: sigmoid = 1 / (1 + exp(-x)); tanh_softplus = tanh(log1p(exp(x)));
    # dy * (tanh_softplus + x * sigmoid * (1 - tanh_softplus * tanh_softplus)); in ops of the dtype, as
    # infinitely_differentiable_mish_backward computes it with grad mode on (see `_silu_grads`)
    x = args[0]
    t = _tanh_softplus(F, x)
    return (F.add(t, F.mul(F.mul(x, _sigmoid(F, x)), F.sub(ONE, F.mul(t, t)))),)


add_op("mish", [nn_spelling("mish")], lambda a: a * sympy.tanh(sympy.log(1 + sympy.exp(a))),
    _mish_forward, _mish_grads, (R,), ulps=KERNEL_ULPS,
    opinfo=("nn.functional.mish",), conventions=pins.MISH, findings=("silu-mish-double-backward-saturation",),
    # d/dx x tanh(sp(x)) = tanh(sp(x)) + x sech(sp(x))^2 sigmoid(x), sp(x) = log(1 + e^x)
    references=(ref((0.75,), lambda a: (mp.tanh(mp.log(1 + mp.exp(a)))
                                        + a / mp.cosh(mp.log(1 + mp.exp(a))) ** 2 / (1 + mp.exp(-a)),)),),
    interval_formulas=True)


# ---------------------------------------------------------------- logsigmoid: min(x, 0) - log1p(exp(-|x|))
def _logsigmoid_forward(F, a):
    # in float for bfloat16 and float16, rounded once
    G = F.opmath
    z = _exp(G, -abs(a))
    return F.store(G.sub(a.min(arb(0)), G.round(z.log1p(), K)))


def _logsigmoid_branch(F, x, negative: bool):
    # log_sigmoid_backward (CPU): z = exp(-|x|), the forward's buffer (stored in the dtype);
    # x < 0 ? 1 - z / (1 + z) : z / (1 + z), in float for bfloat16 and float16 (the caller's product with
    # the gradient rounds it once)
    G = F.opmath
    z = F.store(_exp(G, x if negative else -x))
    ratio = G.div(z, G.add(ONE, z))
    return G.sub(ONE, ratio) if negative else ratio


def _logsigmoid_grads(F, args, y):
    x = args[0]
    if x < 0:
        return (_logsigmoid_branch(F, x, True),)
    if x >= 0:
        return (_logsigmoid_branch(F, x, False),)
    # the ball straddles 0, where the function is smooth: torch takes either branch, both near 1/2
    return (_logsigmoid_branch(F, x, True).union(_logsigmoid_branch(F, x, False)),)


add_op("logsigmoid", [nn_spelling("logsigmoid")], lambda a: -sympy.log(1 + sympy.exp(-a)),
    _logsigmoid_forward, _logsigmoid_grads, (R,), ulps=KERNEL_ULPS,
    opinfo=("nn.functional.logsigmoid",), conventions=pins.LOGSIGMOID, findings=("func-jvp-logsigmoid-upcast-crash",),
    higher_order_gap=(
        "torch differentiates log_sigmoid_backward with log_sigmoid_double_backward, sigmoid's (z - 1) * z, "
        "which cancels (13 float32 ulps at x = 4, forward over reverse); the jet model differentiates the "
        "exp-based first-order formula instead, and cannot carry its branch at 0"),
    references=(ref((0.75,), lambda a: (1 / (1 + mp.exp(a)),)), ref((-1.5,), lambda a: (1 / (1 + mp.exp(a)),))))


# ---------------------------------------------------------------- tanhshrink: x - tanh(x) (a Python composite)
def _tanhshrink_grads(F, args, y):
    # autograd through `input - input.tanh()`: grad from sub, plus -grad * (1 - t * t) from tanh_backward(grad, t).
    # t, torch's tanh(x), is x - y exactly (the ball of y encloses the rounding of x - t). Written so, on jets t's
    # derivative is torch's own 1 - t * t (the first-order local below, rounded), as torch differentiates
    # tanh_backward through its output t: the cancellation of 1 - t * t reaches the second derivative.
    # torch multiplies the upstream gradient into 1 - t * t before the two paths cancel: that product's
    # rounding (u relative to grad * (1 - t * t), so about u of grad) is charged here, as one more rounding
    # of 1 - t * t; the caller's product of grad and this factor then encloses the sum of the two paths.
    t = args[0] - y
    return (F.add(ONE, -F.round(F.sub(ONE, F.mul(t, t)))),)


add_op("tanhshrink", [nn_spelling("tanhshrink")], lambda a: a - sympy.tanh(a),
    lambda F, a: F.sub(a, F.round(a.tanh(), K)), _tanhshrink_grads, (R,), ulps=KERNEL_ULPS,
    opinfo=("nn.functional.tanhshrink",), conventions=pins.TANHSHRINK, findings=("tanhshrink-cancellation-near-zero",),
    references=(ref((0.75,), lambda a: (mp.tanh(a) ** 2,)),))


# ---------------------------------------------------------------- celu: elu with input_scale 1/alpha
def _celu_forward(F, a, alpha):
    if F.sign(a) > 0:
        return a
    # elu kernel, negcoef = alpha, negiptcoef = 1/alpha: expm1(x * negiptcoef) * negcoef (float for bfloat16
    # and float16, rounded once)
    inner = F.opmath
    return F.store(inner.mul(elu_expm1(inner, inner.mul(a, inner.div(ONE, alpha))), alpha))


def _celu_grads(F, args, y):
    # elu_backward(grad, alpha, 1, 1/alpha, is_result=false, self): x <= 0 ?
    # grad * negiptcoef * negcoef * exp(x * negiptcoef) : grad
    a, alpha = args
    if F.sign(a) > 0:
        return (ONE, arb(0))
    inner = F.opmath
    inverse = inner.div(ONE, alpha)
    return (inner.mul(inner.mul(inverse, alpha), _exp(inner, inner.mul(a, inverse))), arb(0))


add_op("celu", [Spelling("torch.nn.functional.celu({0}, {1})", torch_nn_functional.celu)],
    lambda a, alpha: sympy.Piecewise((a, a > 0), (alpha * (sympy.exp(a / alpha) - 1), True)),
    _celu_forward, _celu_grads, (NZ, R), operands=PARAMETERS, parameters=((1.0,), (0.5,), (2.0,)),
    ulps=KERNEL_ULPS, opinfo=("nn.functional.celu",), conventions=pins.CELU,
    references=(ref((-0.5, 2.0), lambda a, alpha: (mp.exp(a / alpha),)), ref((0.75, 0.5), lambda a, alpha: (1,))),
    interval_formulas=True)


# ---------------------------------------------------------------- selu: elu(x, SELU_ALPHA, SELU_SCALE)
# at::selu's constants (aten/src/ATen/native/Activation.cpp), double literals; SymPy gets their exact values.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _selu_negcoef(F):
    # elu's kernels: negcoef = alpha.to<scalar_t>() * scale.to<scalar_t>() (float for bfloat16/float16)
    return F.mul(F.const(SELU_ALPHA), F.const(SELU_SCALE))


def _selu_forward(F, a):
    # elu kernel: x <= 0 ? expm1(x * negiptcoef) * negcoef : x * poscoef, negiptcoef = 1
    if F.sign(a) > 0:  # x * poscoef, in float for bfloat16 and float16, rounded once
        return F.store(F.opmath.mul(a, F.opmath.const(SELU_SCALE)))
    return F.store(F.opmath.mul(elu_expm1(F.opmath, a), _selu_negcoef(F.opmath)))


def _selu_grads(F, args, y):
    # elu_backward(grad, alpha, scale, 1, is_result=false, self): x <= 0 ? grad * 1 * negcoef * exp(x) : grad * poscoef
    a = args[0]
    if F.sign(a) > 0:
        return (F.opmath.const(SELU_SCALE),)
    return (F.opmath.mul(_selu_negcoef(F.opmath), _exp(F.opmath, a)),)


add_op("selu", [nn_spelling("selu"), Spelling("torch.selu({0})", torch.selu)],
    lambda a: sympy.Rational(SELU_SCALE) * sympy.Piecewise(
        (a, a > 0), (sympy.Rational(SELU_ALPHA) * (sympy.exp(a) - 1), True)),
    _selu_forward, _selu_grads, (NZ,), ulps=KERNEL_ULPS, opinfo=("nn.functional.selu",),
    specials=(kink("x = 0: slope scale * alpha = 1.758 below, scale = 1.051 above (concave)", 0.0),),
    conventions=pins.SELU, findings=("concave-kink-left-slope",),
    references=(ref((-0.5,), lambda a: (mp.mpf(SELU_SCALE) * mp.mpf(SELU_ALPHA) * mp.exp(a),)),
                ref((0.75,), lambda a: (mp.mpf(SELU_SCALE),))),
    interval_formulas=True)


# ---------------------------------------------------------------- kinks at fixed points
def _between(F, a, low: float, high: float) -> bool:
    """low < a < high, deciding a ball that may touch either kink as `Singular`."""
    return F.greater(a, arb(low)) and F.greater(arb(high), a)


def _relu6_forward(F, a):
    if not F.greater(a, arb(0)):
        return arb(0)
    return a if F.greater(arb(6), a) else arb(6)


# relu6 = hardtanh(x, 0, 6): hardtanh_backward keeps grad where 0 < x < 6
add_op("relu6", [nn_spelling("relu6")], lambda a: sympy.Min(sympy.Max(a, 0), 6), _relu6_forward,
       lambda F, args, y: (ONE if _between(F, args[0], 0.0, 6.0) else arb(0),), (OFF_SPECIALS,),
       opinfo=("nn.functional.relu6",), specials=(kink("x = 0 and x = 6", 0.0, 6.0),), conventions=pins.RELU6,
       references=(ref((2.0,), lambda a: (1,)), ref((7.0,), lambda a: (0,)), ref((-1.0,), lambda a: (0,))),
    interval_formulas=True)


def _hardsigmoid_forward(F, a):
    # min(max(x + 3, 0), 6) / 6 (in float for bfloat16 and float16, the result rounded once)
    if not F.greater(a, arb(-3)):
        return arb(0)
    if not F.greater(arb(3), a):
        return ONE
    G = F.opmath
    return F.store(G.div(G.add(a, arb(3)), arb(6)))


# hardsigmoid_backward: -3 < x < 3 ? grad * one_sixth : 0, one_sixth = 1.0f / 6.0f computed in float in every
# dtype, double too: within float's rounding of 1/6 (finding hardsigmoid-float64-float-sixth)
_FLOAT_SIXTH = RoundingModel(FLOAT32).round(arb(1) / 6)
add_op("hardsigmoid", [nn_spelling("hardsigmoid")], lambda a: sympy.Min(sympy.Max(a + 3, 0), 6) / 6,
       _hardsigmoid_forward,
       lambda F, args, y: (_FLOAT_SIXTH if _between(F, args[0], -3.0, 3.0) else arb(0),),
       (OFF_SPECIALS,), opinfo=("nn.functional.hardsigmoid",), specials=(kink("x = -3 and x = 3", -3.0, 3.0),),
       conventions=pins.HARDSIGMOID, findings=("hardsigmoid-float64-float-sixth",),
       higher_order_gap="torch implements no derivative of hardsigmoid_backward (double backward raises)",
       references=(ref((1.0,), lambda a: (mp.mpf(1) / 6,)), ref((4.0,), lambda a: (0,)),
                   ref((-4.0,), lambda a: (0,))),
    interval_formulas=True)


def _hardswish_forward(F, a):
    # x * min(max(x + 3, 0), 6) / 6, each operation rounded (in float for bfloat16 and float16, the result
    # rounded once: measured equal to the float32 kernel rounded once for every finite value of either)
    if not F.greater(a, arb(-3)):
        return arb(0)
    if not F.greater(arb(3), a):
        return a
    G = F.opmath
    return F.store(G.div(G.mul(a, G.add(a, arb(3))), arb(6)))


def _hardswish_grads(F, args, y):
    # hardswish_backward: x < -3 ? 0 : (x <= 3 ? grad * ((x / 3) + 0.5) : grad), in float for bfloat16 and
    # float16 (the caller's product with grad rounds it once; measured as the forward)
    x = args[0]
    if not F.greater(x, arb(-3)):
        return (arb(0),)
    if not F.greater(arb(3), x):
        return (ONE,)
    G = F.opmath
    return (G.add(G.div(x, arb(3)), arb(0.5)),)


add_op("hardswish", [nn_spelling("hardswish")],
       lambda a: sympy.Piecewise((0, a <= -3), (a, a >= 3), (a * (a + 3) / 6, True)),
       _hardswish_forward, _hardswish_grads, (OFF_SPECIALS,), opinfo=("nn.functional.hardswish",),
       specials=(kink("x = -3 and x = 3", -3.0, 3.0),), conventions=pins.HARDSWISH,
       references=(ref((1.0,), lambda a: (mpmath.mpf(5) / 6,)), ref((-4.0,), lambda a: (0,)),
                   ref((4.0,), lambda a: (1,))),
    interval_formulas=True)


# ---------------------------------------------------------------- shrinkage: kinks or jumps at ±lambd
def _outside(F, a, lambd) -> bool:
    """|a| > lambd, deciding a ball that may touch ±lambd as `Singular`."""
    return F.greater(a, lambd) or F.greater(-lambd, a)


def _softshrink_forward(F, a, lambd):
    # a > lambd ? a - lambd : (a < -lambd ? a + lambd : 0)
    if F.greater(a, lambd):
        return F.sub(a, lambd)
    if F.greater(-lambd, a):
        return F.add(a, lambd)
    return arb(0)


SHRINK_LAMBDAS = ((0.5,), (1.0,), (0.25,))


def _plus_minus(parameters):
    return (-parameters[0], parameters[0])


# softshrink_backward / hardshrink_backward: (x >= -lambd && x <= lambd) ? 0 : grad
add_op("softshrink", [Spelling("torch.nn.functional.softshrink({0}, {1})", torch_nn_functional.softshrink)],
       lambda a, lambd: sympy.Piecewise((a - lambd, a > lambd), (a + lambd, a < -lambd), (0, True)),
       _softshrink_forward, lambda F, args, y: (ONE if _outside(F, args[0], args[1]) else arb(0), arb(0)),
       (OFF_PARAMETERS, R), operands=PARAMETERS, parameters=SHRINK_LAMBDAS, parameter_points=_plus_minus,
       opinfo=("nn.functional.softshrink",), specials=(kink("x0 = ±lambd (the constant argument)"),),
       conventions=pins.SOFTSHRINK,
       references=(ref((0.75, 0.5), lambda a, lambd: (1,)), ref((0.25, 0.5), lambda a, lambd: (0,)),
                   ref((-1.5, 1.0), lambda a, lambd: (1,))),
    interval_formulas=True)
add_op("hardshrink", [Spelling("torch.nn.functional.hardshrink({0}, {1})", torch_nn_functional.hardshrink)],
       lambda a, lambd: sympy.Piecewise((a, a > lambd), (a, a < -lambd), (0, True)),
       lambda F, a, lambd: a if _outside(F, a, lambd) else arb(0),
       lambda F, args, y: (ONE if _outside(F, args[0], args[1]) else arb(0), arb(0)),
       (OFF_PARAMETERS, R), operands=PARAMETERS, parameters=SHRINK_LAMBDAS, parameter_points=_plus_minus,
       opinfo=("nn.functional.hardshrink",),
       specials=(Special(Kind.JUMP, "x0 = ±lambd (the constant argument)", 0),), conventions=pins.HARDSHRINK,
       references=(ref((0.75, 0.5), lambda a, lambd: (1,)), ref((0.25, 0.5), lambda a, lambd: (0,))),
    interval_formulas=True)


# threshold(x, threshold, value): x > threshold ? x : value; threshold_backward: x > threshold ? grad : 0
THRESHOLDS = ((0.5, -1.0), (-1.0, 2.0), (0.0, 0.5))


def _above(F, a, threshold) -> bool:
    return F.greater(a, threshold)


add_op("threshold", [Spelling("torch.nn.functional.threshold({0}, {1}, {2})", torch_nn_functional.threshold)],
       lambda a, threshold, value: sympy.Piecewise((a, a > threshold), (value, True)),
       lambda F, a, threshold, value: a if _above(F, a, threshold) else value,
       lambda F, args, y: (ONE if _above(F, args[0], args[1]) else arb(0), arb(0), arb(0)),
       (OFF_PARAMETERS, R, R), operands=PARAMETERS, parameters=THRESHOLDS,
       parameter_points=lambda parameters: (parameters[0],), opinfo=("nn.functional.threshold",),
       specials=(Special(Kind.JUMP, "x0 = threshold (the constant argument)", 0),), conventions=pins.THRESHOLD,
       references=(ref((0.75, 0.5, -1.0), lambda a, threshold, value: (1,)),
                   ref((0.25, 0.5, -1.0), lambda a, threshold, value: (0,))),
    interval_formulas=True)


# ---------------------------------------------------------------- softsign: input / (input.abs() + 1), a composite
def _magnitude(F, x):
    """|x| as torch's abs computes it, exactly. On a jet (the second-order model), x times its sign: the
    derivative of abs is sgn, constant on each side of 0, where the second derivative jumps."""
    return abs(x) if isinstance(x, arb) else x * F.sign(x)


def _softsign_grads(F, args, y):
    # autograd through the composite: div's self: grad / other, plus div's other: -grad * ((self / other) / other)
    # times abs's grad * self.sgn(), accumulated into x.grad: 1/d - (|x| / d) / d either side of 0, and 1/d at 0
    # (sgn(0) = 0), so torch's value on either side of 0 is this one.
    magnitude = _magnitude(F, args[0])
    denominator = F.add(magnitude, ONE)
    return (F.sub(F.div(ONE, denominator), F.div(F.div(magnitude, denominator), denominator)),)


# Drawn off 0 (NZ): softsign is C¹, but its second derivative -2 sgn(x) / (1 + |x|)³ jumps there; the first
# derivative at 0 is pinned by the convention.
add_op("softsign", [nn_spelling("softsign")], lambda a: a / (1 + sympy.Abs(a)),
    lambda F, a: F.div(a, F.add(_magnitude(F, a), ONE)), _softsign_grads, (NZ,), opinfo=("nn.functional.softsign",),
    conventions=pins.SOFTSIGN, findings=("softsign-gradient-cancellation",),
    references=(ref((0.75,), lambda a: (1 / (1 + abs(a)) ** 2,)), ref((-2.0,), lambda a: (1 / (1 + abs(a)) ** 2,))),
    interval_formulas=True)


# ---------------------------------------------------------------- rrelu (eval): a leaky relu
def _slope(F, slope: float):
    """The slope as leaky_relu's kernel sees it: the double Scalar converted to scalar_t, or to float for bfloat16
    and float16 (which compute in float and round once)."""
    return F.opmath.const(slope)


def _rrelu_slope(lower: float, upper: float) -> float:
    """rrelu_with_noise without training: negative_slope = (lower + upper) / 2, in double."""
    return (float(lower) + float(upper)) / 2


def _rrelu_forward(F, a, lower, upper):
    # leaky_relu(self, (lower + upper) / 2): self > 0 ? self : self * negval, in float for bfloat16 and float16
    if F.sign(a) > 0:
        return a
    return F.store(F.opmath.mul(a, _slope(F, _rrelu_slope(lower.mid(), upper.mid()))))


def _rrelu_grads(F, args, y):
    # rrelu_with_noise_backward(training=false) is leaky_relu_backward(grad, self, (lower + upper) / 2):
    # self > 0 ? grad : grad * negval
    a, lower, upper = args
    if F.sign(a) > 0:
        return (ONE, arb(0), arb(0))
    return (_slope(F, _rrelu_slope(lower.mid(), upper.mid())), arb(0), arb(0))


add_op("rrelu", [Spelling("torch.nn.functional.rrelu({0}, {1}, {2})", torch_nn_functional.rrelu),
                 Spelling("torch.nn.functional.rrelu({0}, {1}, {2}, training=False)",
                          lambda a, lower, upper: torch_nn_functional.rrelu(a, lower, upper, training=False)),
                 Spelling("torch.rrelu({0}, {1}, {2})", torch.rrelu)],
    lambda a, lower, upper: sympy.Piecewise(
        (a, a > 0), (sympy.Rational(_rrelu_slope(lower, upper)) * a, True)),
    _rrelu_forward, _rrelu_grads, (NZ, R, R), operands=PARAMETERS,
    parameters=((0.125, 1 / 3), (0.1, 0.3), (0.25, 0.75)), opinfo=("nn.functional.rrelu",),
    specials=(kink("x0 = 0", 0.0),), conventions=pins.RRELU,
    # found by a thorough run (jacfwd and hessian of a composition holding rrelu)
    vmap_refusal="vmap: we do not yet support aten::rrelu_with_noise (torch 2.13 and 2.15)",
    references=(ref((-0.5, 0.125, 1 / 3), lambda a, lower, upper: ((lower + upper) / 2,)),
                ref((0.5, 0.1, 0.3), lambda a, lower, upper: (1,))))

