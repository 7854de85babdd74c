"""Arithmetic variants as entries of the elementwise op table (`OPS`, oracles.table.ops): reversed
subtraction, signs and angles, copysign, the remainders (fmod, remainder) and division with a rounding mode,
nan_to_num.

Each entry registers itself on import (oracles/table/__init__.py imports this module). Forwards and local
derivatives follow torch's CPU kernels (aten/src/ATen/native/cpu/BinaryOpsKernel.cpp, UnaryOpsKernel.cpp)
and derivatives.yaml, every float operation rounded by the `RoundingModel` `F`. Conventions live in
oracles.table.arithmetic_conventions.
"""

from __future__ import annotations

import math

import mpmath
import sympy
import torch
from flint import arb

from oracles.numerics.exact import STEP_EVALUATORS
from oracles.numerics.rounding import Overflow, Singular
from oracles.numerics.sympy_functions import Floor, RoundHalfEven, Trunc
from oracles.table import arithmetic_conventions as pins
from oracles.table.domains import Domain, Kind, Special, kink, pole
from oracles.table.ops import (
    NZ,
    ONE,
    ORDERED,
    PARAMETERS,
    SCALAR,
    ZERO,
    B,
    BlindSpot,
    R,
    Spelling,
    add_op,
    jumps,
    ref,
    unary_spellings,
)

OFF_INTEGERS = Domain.OFF_INTEGERS
mp = mpmath.mp

# ---------------------------------------------------------------- rsub(self, other) = other - self
# derivatives.yaml rsub.Tensor: self: -grad * alpha; other: grad (alpha = 1 here). torch.rsub takes a scalar
# `other` (rsub.Scalar, self: -grad * alpha), never a scalar `self`.
add_op("rsub", [Spelling("torch.rsub({0}, {1})", torch.rsub)], lambda a, b: b - a,
    lambda F, a, b: F.sub(b, a), lambda F, args, y: (-ONE, ONE), (R, R), operands=SCALAR, saves_tensors=False,
    references=(ref((0.75, -1.25), lambda a, b: (-1, 1)),))

# ---------------------------------------------------------------- signs and angles of real numbers
# sgn: sgn_backward(self, grad, result), for a real tensor an (efficient) zero tensor
add_op("sgn", unary_spellings("sgn"), sympy.sign, lambda F, a: arb(F.sign(a)), lambda F, args, y: (ZERO,), (NZ,),
    specials=(Special(Kind.JUMP, "x = 0", 0, (0.0,)),), conventions=pins.SGN,
    references=(ref((-0.5,), lambda a: (0,)),))


def _angle_forward(F, a):
    # angle_impl for real a: a < 0 ? pi : 0 (pi as the dtype holds it)
    return F.round(arb.pi()) if F.sign(a) < 0 else ZERO


# angle: angle_backward(grad, self), for a real tensor zeros
add_op("angle", unary_spellings("angle"), lambda a: sympy.Piecewise((sympy.pi, a < 0), (0, True)),
    _angle_forward, lambda F, args, y: (ZERO,), (NZ,),
    specials=(Special(Kind.JUMP, "x = 0: from pi below to 0 at and above", 0, (0.0,)),), conventions=pins.ANGLE,
    references=(ref((-0.5,), lambda a: (0,)), ref((2.0,), lambda a: (0,))))


# ---------------------------------------------------------------- copysign(a, b) = |a| sign(b), exactly
def _copysign_forward(F, a, b):
    return abs(a) if F.sign(b) > 0 else -abs(a)


def _copysign_grads(F, args, y):
    # copysign_tensor_self_backward: ratio = result / self (±1, exact), 0 where self == 0; other: zeros_like
    a, b = args
    if a.is_zero():
        return (ZERO, ZERO)
    return (arb(F.sign(a) * F.sign(b)), ZERO)


add_op("copysign", [Spelling("torch.copysign({0}, {1})", torch.copysign),
                 Spelling("{0}.copysign({1})", lambda a, b: a.copysign(b))],
    lambda a, b: sympy.Abs(a) * sympy.sign(b), _copysign_forward, _copysign_grads, (NZ, NZ), operands=SCALAR,
    specials=(kink("x0 = 0 (convex where x1 > 0, concave where x1 < 0)", 0.0),
              Special(Kind.JUMP, "x1 = 0: the sign of x1 flips the result (±0 pick the side)", 1, (0.0,))),
    conventions=pins.COPYSIGN,
    references=(ref((-0.75, 1.25), lambda a, b: (-1, 0)), ref((0.75, -1.25), lambda a, b: (-1, 0))))


# ---------------------------------------------------------------- remainders and rounded division by a constant
# The divisor is a constant integer, so every jump (a multiple of it) is an integer and OFF_INTEGERS keeps
# the dividend off them; a negative divisor flips remainder's and floor division's sides.
DIVISORS = ((1.0,), (2.0,), (3.0,), (-1.0,), (-2.0,))


def _trunc_quotient(a, b):
    """trunc(a / b), exactly; `Singular` where the ball straddles a jump."""
    return STEP_EVALUATORS[Trunc](a / b)


def _fmod_forward(F, a, b):
    # std::fmod: a - b * trunc(a / b), exact in IEEE arithmetic (every dtype holds the result)
    return a - b * _trunc_quotient(a, b)


def _remainder_forward(F, a, b):
    # remainder kernel: mod = fmod(a, b); (mod != 0 && (b < 0) != (mod < 0)) ? mod + b : mod; only the
    # addition rounds (remainder(-1e-20, 1) is 1)
    mod = _fmod_forward(F, a, b)
    if F.sign(mod) != F.sign(b):
        return F.add(mod, b)
    return mod


def _hull_of_step(step, value: arb) -> arb:
    """A monotone step function (floor, trunc) of every point of the ball: the hull of its ends' steps. Where
    torch's rounded quotient may fall on either side of a jump, the values of both sides."""
    low, high = value.lower(), value.upper()
    return step(low).union(step(high))


def _rounded_quotient_step(step):
    # div_trunc_kernel: trunc(a / b) of the rounded quotient, in float for bfloat16 and float16
    def forward(F, a, b):
        return F.store(_hull_of_step(step, F.opmath.div(a, b)))

    return forward


def _held(F, value: arb) -> bool:
    """The dtype holds the exact `value`."""
    return arb(F.format.round(float(value.mid()))) == value


def _floor_quotient(F, a, b):
    # div_floor_floating (c10/util/generic_math.h): mod = fmod(a, b); div = (a - mod) / b, one less where mod
    # and b differ in sign, then rounded to the nearest integer: Python's floor division, floor(a / b) of the
    # exact quotient wherever the dtype holds that integer and a - mod (= b trunc(a / b)); where it does not hold
    # a - mod, that subtraction rounds and the result may be the integer next to floor(a / b) (measured: float32
    # -33637028 // 3 is -11212342, floor is -11212343; 2076 of 14928 draws of [-2^26, 2^26] by 3); beyond the
    # integers the dtype holds, the division rounds too (the nearest-integer step errs by at most 1/2, under u
    # relative there)
    quotient = STEP_EVALUATORS[Floor](a / b)
    if _held(F, quotient) and _held(F, a - _fmod_forward(F, a, b)):
        return quotient
    return F.in_range(F.round(quotient, 3) + arb(0, 1))


def _constant_divisor_grads(F, args, y):
    # fmod.Scalar, remainder.Scalar: self: grad
    return (ONE, ZERO)


add_op("fmod", [Spelling("torch.fmod({0}, {1})", torch.fmod), Spelling("{0}.fmod({1})", lambda a, b: a.fmod(b))],
    lambda a, b: a - b * Trunc(a / b), _fmod_forward, _constant_divisor_grads, (OFF_INTEGERS, R),
    operands=PARAMETERS, parameters=DIVISORS, parameter_points=lambda divisor: (),
    specials=(jumps("x0 = a nonzero multiple of the divisor x1 (an integer)", 1.0),), conventions=pins.FMOD,
    saves_tensors=False,
    references=(ref((2.5, 2.0), lambda a, b: (1,)), ref((-0.25, 1.0), lambda a, b: (1,))))
add_op("remainder", [Spelling("torch.remainder({0}, {1})", torch.remainder),
                  Spelling("{0}.remainder({1})", lambda a, b: a.remainder(b)),
                  Spelling("{0} % {1}", lambda a, b: a % b)],
    lambda a, b: a - b * Floor(a / b), _remainder_forward, _constant_divisor_grads, (OFF_INTEGERS, R),
    operands=PARAMETERS, parameters=DIVISORS, parameter_points=lambda divisor: (),
    specials=(jumps("x0 = a multiple of the divisor x1 (an integer)", 0.0),), conventions=pins.REMAINDER,
    saves_tensors=False,
    references=(ref((-0.25, 1.0), lambda a, b: (1,)), ref((2.5, -2.0), lambda a, b: (1,))))


def _rmod_grads(F, args, y):
    # self.__rmod__(other) is remainder.Tensor(other, self): other (the dividend): grad; self (the divisor):
    # -grad * other.div(self, rounding_mode='floor')
    divisor, dividend = args
    return (-_floor_quotient(F, dividend, divisor), ONE)


# x0.__rmod__(x1) = x1 % x0 with both tensors (a Python scalar dividend, remainder.Scalar_Tensor, has no derivative
# in torch: it raises). The function jumps where x1 / x0 is an integer, a relation between the arguments that the
# random programs cannot keep them off: such points are undecided where a ball may hold one.
add_op("rmod", [Spelling("{0}.__rmod__({1})", lambda a, b: a.__rmod__(b), const_second=False),
                Spelling("torch.Tensor.__rmod__({0}, {1})", lambda a, b: torch.Tensor.__rmod__(a, b),
                         const_second=False)],
    lambda a, b: b - a * Floor(b / a), lambda F, a, b: _remainder_forward(F, b, a), _rmod_grads, (NZ, R),
    opinfo=("__rmod__",), specials=(Special(Kind.JUMP, "x1 = k x0 for an integer k (the remainder restarts)",
                                            None, multiples=(1, 0)),),
    conventions=pins.RMOD,
    # the random programs' simple values (1, 2, 0.5, ...) make the quotient an integer often: measured 29 of 68
    # elements singular, 53% averaged over the distinct programs (40 examples). Over the whole domain x1 is drawn
    # between the multiples of x0 (`multiples`): where |x1| is far above |x0| every float is a multiple.
    blind_spots=(BlindSpot("test_op_gradient", "float32",
                           "x1 / x0 is an integer (a jump) wherever the drawn subtrees take simple values"),),
    references=(ref((1.5, 2.5), lambda a, b: (-mp.floor(b / a), 1)), ref((-2.0, 3.0), lambda a, b: (2, 1))))


def _div_spellings(mode: str) -> list[Spelling]:
    return [Spelling(f"torch.div({{0}}, {{1}}, rounding_mode={mode!r})",
                     lambda a, b: torch.div(a, b, rounding_mode=mode)),
            Spelling(f"{{0}}.div({{1}}, rounding_mode={mode!r})", lambda a, b: a.div(b, rounding_mode=mode))]


# div.Scalar_mode: self: grad * 0 (with a rounding mode)
add_op("div_trunc", _div_spellings("trunc"), lambda a, b: Trunc(a / b), _rounded_quotient_step(STEP_EVALUATORS[Trunc]),
    lambda F, args, y: (ZERO, ZERO), (OFF_INTEGERS, R), operands=PARAMETERS, parameters=DIVISORS,
    parameter_points=lambda divisor: (), opinfo=("div[trunc_rounding]",),
    specials=(jumps("x0 = a nonzero multiple of the divisor x1 (an integer)", 1.0),), conventions=pins.DIV_TRUNC,
    saves_tensors=False, references=(ref((2.5, 2.0), lambda a, b: (0,)),))
add_op("div_floor", _div_spellings("floor"), lambda a, b: Floor(a / b),
    _floor_quotient, lambda F, args, y: (ZERO, ZERO), (OFF_INTEGERS, R),
    operands=PARAMETERS, parameters=DIVISORS, parameter_points=lambda divisor: (), opinfo=("div[floor_rounding]",),
    specials=(jumps("x0 = a multiple of the divisor x1 (an integer)", 0.0),), conventions=pins.DIV_FLOOR,
    saves_tensors=False, references=(ref((-0.25, 1.0), lambda a, b: (0,)),))

# ---------------------------------------------------------------- nan_to_num: the identity on finite inputs
# nan_to_num: grad * at::isfinite(self)
add_op("nan_to_num", unary_spellings("nan_to_num"),
    lambda a: a, lambda F, a: a, lambda F, args, y: (ONE,), (R,), conventions=pins.NAN_TO_NUM,
    references=(ref((-1.25,), lambda a: (1,)),))


# ---------------------------------------------------------------- round(x, decimals=-3): to a multiple of 1000
def _round_to_thousands(F, a):
    # round_decimals_kernel for decimals < 0, in opmath (float for bfloat16 and float16), ten_pow = 1000 exactly:
    # nearbyint(x / ten_pow) * ten_pow, to nearest even, of the rounded quotient (so either side of a jump where that
    # may fall: `_hull_of_step`)
    inner, thousand = F.opmath, arb(1000)
    return F.store(inner.mul(_hull_of_step(STEP_EVALUATORS[RoundHalfEven], inner.div(a, thousand)), thousand))


# round.decimals: zeros_like(grad). Drawn over the reals (R): its jumps (k + 1/2) 1000 lie beyond what compositions
# reach.
add_op("round_decimals_neg_3", [Spelling("torch.round({0}, decimals=-3)", lambda a: torch.round(a, decimals=-3)),
                                Spelling("{0}.round(decimals=-3)", lambda a: a.round(decimals=-3))],
    lambda a: RoundHalfEven(a / 1000) * 1000, _round_to_thousands, lambda F, args, y: (ZERO,), (R,),
    opinfo=("round[decimals_neg_3]",),
    specials=(Special(Kind.JUMP, "x = (k + 1/2) 1000", 0, (500.0,), period=1000.0),),
    conventions=pins.ROUND_DECIMALS_NEG_3, references=(ref((1250.0,), lambda a: (0,)),))


# ---------------------------------------------------------------- round(x, decimals=3): to a multiple of 1/1000
def _round_to_thousandths(F, a):
    # round_decimals_kernel for decimals > 0, in opmath: nearbyint(x * ten_pow) / ten_pow with ten_pow = 1000 exactly,
    # to nearest even, of the rounded product (either side of a jump where that may fall: `_hull_of_step`)
    inner, thousand = F.opmath, arb(1000)
    return F.store(inner.div(_hull_of_step(STEP_EVALUATORS[RoundHalfEven], inner.mul(a, thousand)), thousand))


# round.decimals: zeros_like(grad). Drawn over the reals (R): few of its jumps (k + 1/2) / 1000 are floats (0.0625 is),
# and a drawn value near one meets it through the rounding of x * 1000, which the forward's hull follows.
add_op("round_decimals_3", [Spelling("torch.round({0}, decimals=3)", lambda a: torch.round(a, decimals=3)),
                            Spelling("{0}.round(decimals=3)", lambda a: a.round(decimals=3))],
    lambda a: RoundHalfEven(a * 1000) / 1000, _round_to_thousandths, lambda F, args, y: (ZERO,), (R,),
    opinfo=("round[decimals_3]",),
    specials=(Special(Kind.JUMP, "x = (k + 1/2) / 1000", 0, (0.0625,), period=0.001),),
    conventions=pins.ROUND_DECIMALS_3, references=(ref((1.25,), lambda a: (0,)),))


# ---------------------------------------------------------------- addcdiv(self, tensor1, tensor2, value)
# addcdiv_cpu_kernel (PointwiseOpsKernel.cpp): self + value * tensor1 / tensor2, left to right, each operation
# rounded in float64 and float32; bfloat16 and float16 compute it in float and round once. derivatives.yaml:
# self: grad; tensor1: grad * (value / tensor2) (the scalar filled into a tensor, then divided);
# tensor2: -grad * (value * tensor1 / (tensor2 * tensor2))
def _addcdiv_forward(value: float):
    def forward(F, a, b, c):
        G = F.opmath
        return F.store(G.add(a, G.div(G.mul(arb(value), b), c)))

    return forward


def _addcdiv_grads(value: float):
    def grads(F, args, y):
        _, b, c = args
        return ONE, F.div(arb(value), c), -F.div(F.mul(b, arb(value)), F.mul(c, c))

    return grads


def _add_addcdiv(name: str, value: float, spellings: list[Spelling]) -> None:
    add_op(name, spellings, lambda a, b, c: a + sympy.Rational(value) * b / c, _addcdiv_forward(value),
        _addcdiv_grads(value), (R, R, NZ), opinfo=("addcdiv",), specials=(pole("x2 = 0", 0.0, arg=2),),
        conventions=pins.addcdiv(value),
        findings=("addcdiv-divisor-square", "forward-mode-zero-tangent-times-inf"),
        references=(ref((0.5, 0.75, -1.25), lambda a, b, c: (1, value / c, -value * b / c**2)),))


_add_addcdiv("addcdiv", 1.0, [Spelling("torch.addcdiv({0}, {1}, {2})", torch.addcdiv),
                              Spelling("{0}.addcdiv({1}, {2})", lambda a, b, c: a.addcdiv(b, c)),
                              Spelling("torch.addcdiv({0}, {1}, {2}, value=1)",
                                       lambda a, b, c: torch.addcdiv(a, b, c, value=1))])


# ---------------------------------------------------------------- ldexp(self, other) = self * 2 ** other
POW_ULPS = 1  # pow(2.0, other): std::pow, accurate to an ulp


def _power_of_two(F, b):
    """at::pow(2.0, other) of a floating exponent, in float for bfloat16 and float16, rounded once."""
    return F.store(F.opmath.round((b * arb(2).log()).exp(), 2 * POW_ULPS))  # 2 ** b, on balls and jets


def _ldexp_grads(F, args, y):
    # ldexp.Tensor: self: grad * at::pow(2, other); other: grad * result * M_LN2 (M_LN2 in opmath)
    return _power_of_two(F, args[1]), F.mul(y, F.opmath.round(arb(2).log()))


# at::ldexp is at::mul(self, at::pow(2.0, other)); the exponent is drawn bounded (B), so 2 ** other stays finite
add_op("ldexp", [Spelling("torch.ldexp({0}, {1})", torch.ldexp, const_second=False),
                 Spelling("{0}.ldexp({1})", lambda a, b: a.ldexp(b), const_second=False)],
    lambda a, b: a * 2**b, lambda F, a, b: F.mul(a, _power_of_two(F, b)), _ldexp_grads, (R, B),
    findings=("backward-intermediate-overflow",),
    references=(ref((0.75, -1.5), lambda a, b: (2**b, a * 2**b * mp.log(2))),))


# ---------------------------------------------------------------- nextafter(self, other): self one float closer
# to other. On the reals it is a staircase; torch's formula differentiates it as the identity in self (the
# float it moves to lies within an ulp), so that is the function modelled: a kernel of 1-ulp accuracy for self.
def _nextafter_grads(F, args, y):
    # nextafter: self: at::where(self != other, grad, 0); other: zeros_like(other)
    a, b = args
    if a.is_exact() and b.is_exact() and a == b:  # torch's 0 there is a convention (pinned), no derivative
        raise Singular("x0 = x1: nextafter returns x1 (the identity in x0 does not hold there)")
    F.greater(a, b)  # raises Singular where the two balls may tie
    return (ONE, ZERO)


add_op("nextafter", [Spelling("torch.nextafter({0}, {1})", torch.nextafter, const_second=False),
                     Spelling("{0}.nextafter({1})", lambda a, b: a.nextafter(b), const_second=False)],
    lambda a, b: a, lambda F, a, b: F.round(a, 2), _nextafter_grads, (R, R), operands=ORDERED, ulps=1,
    specials=(Special(Kind.TIE, "x0 = x1: nextafter returns x1, and torch's gradient for x0 is 0", arg=None),),
    conventions=pins.NEXTAFTER, references=(ref((0.75, 2.0), lambda a, b: (1, 0)),))


# ---------------------------------------------------------------- frexp(self).mantissa = self / 2 ** exponent
# exponent = floor(log2 |self|) + 1, so the mantissa is in [1/2, 1) in magnitude: linear between powers of two,
# where it falls from 1 to 1/2 (a jump), and 0 at 0. The strategies keep the argument off ±1/2, ±1 and 0 (drawn
# in the gaps between them and beyond); other powers of two are undecided (`Singular`) where a ball may hold one.
def _frexp_exponent(x: arb) -> int:
    """frexp's exponent, the same for every value in the ball."""
    if x.contains(0):
        raise Singular("frexp at (or near) 0")
    exponent = math.frexp(float(abs(x).mid()))[1]
    low, high = arb(2) ** (exponent - 1), arb(2) ** exponent
    if not (abs(x).lower() >= low and abs(x).upper() < high):
        raise Singular("the argument may cross a power of two, where frexp's mantissa jumps")
    return exponent


def _frexp_grads(F, args, y):
    # frexp.Tensor: self: grad / exponent.exp2(), the int exponent's exp2 in float32 (the default dtype): inf from
    # 2^128 on (the gradient 0), 0 below 2^-149 (grad / 0 = inf); findings frexp-exponent-float32-overflow and
    # -underflow, excused in their regions
    exponent = _frexp_exponent(args[0])
    if exponent >= 128:
        raise Overflow("frexp's exponent.exp2() overflows float32 (torch's gradient is 0)")
    if exponent <= -150:
        raise Singular("frexp's exponent.exp2() underflows to 0 in float32 (torch divides by 0)")
    return (F.in_range(arb(2) ** -exponent),)


add_op("frexp", [Spelling("torch.frexp({0}).mantissa", lambda a: torch.frexp(a).mantissa),
                 Spelling("{0}.frexp()[0]", lambda a: a.frexp()[0])],
    lambda a: a * 2 ** -(Floor(sympy.log(sympy.Abs(a)) / sympy.log(2)) + 1),
    lambda F, a: a * arb(2) ** -_frexp_exponent(a), _frexp_grads, (Domain.OFF_SPECIALS,),
    specials=(Special(Kind.JUMP, "x = ±2^k for every integer k (the mantissa falls from 1 to 1/2; ±1/2 and ±1 "
                                 "kept off by the strategies) and x = 0 (frexp(0) = 0)", 0,
                      (-1.0, -0.5, 0.0, 0.5, 1.0), every_binade=True),),
    conventions=pins.FREXP, saves_tensors=False,
    findings=("frexp-exponent-float32-overflow", "frexp-exponent-float32-underflow"),
    references=(ref((0.75,), lambda a: (1,)), ref((3.0,), lambda a: (0.25,)), ref((-0.375,), lambda a: (2,))))
