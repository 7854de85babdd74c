"""The op table: one entry per op, read by strategies, both renderings, the error model and reports.

Adding an op is one `_op(...)` call below. An entry says:
- how torch users write it (`spellings`: display template + the call it makes; each hits torch's own
  dispatch path, e.g. `x ** 2` and `torch.square(x)`),
- what it is mathematically (`sympy`, from which SymPy derives the exact derivative),
- how torch computes it (`forward` and `local_grads`, written after torch's formulas in
  tools/autograd/derivatives.yaml, with every float operation rounded by the `RoundingModel`),
- where its arguments must lie (`domains`), which strategies satisfy by construction,
- torch's value at its kinks, poles, boundaries and saturation points (`conventions`, see
  oracles.table.conventions), pinned by tests/test_conventions.py and written out to docs/conventions.md.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch
import torch.nn.functional as torch_nn_functional
from flint import arb

from oracles.numerics.exact import STEP_EVALUATORS
from oracles.numerics.rounding import Singular, int_power
from oracles.numerics.sympy_functions import Ceil, Floor, RoundHalfEven, Trunc
from oracles.table.conventions import Convention
from oracles.table.op_conventions import CONVENTIONS


class Domain(enum.Enum):
    REAL = "any real value"
    POSITIVE = "bounded away from 0, positive"
    NONZERO = "bounded away from 0, either sign"
    UNIT = "inside (-0.9, 0.9)"
    # exp/sinh/cosh of a bounded argument cannot overflow in any dtype (exp(3) = 20), however deep the
    # composition: every generated expression is defined at its inputs by construction.
    BOUNDED = "inside (-3, 3)"
    OFF_PARAMETERS = "bounded away from each constant argument that follows (clamp's bounds)"
    OFF_INTEGERS = "at least 1/8 away from every integer"
    OFF_HALF_INTEGERS = "at least 1/8 away from every half-integer"


@dataclass(frozen=True)
class Spelling:
    template: str  # "{0}" and "{1}" are the rendered arguments
    call: Callable
    const_first: bool = False  # the first argument may be a Python scalar (`2 - x`, `2 ** x`)
    const_second: bool = True  # the second argument may be a Python scalar (`x - 2`)


@dataclass(frozen=True)
class OpSpec:
    name: str
    spellings: tuple[Spelling, ...]
    sympy: Callable  # sympy args -> sympy expression of exactly the function torch computes
    forward: Callable  # (RoundingModel, *arg balls) -> result ball
    local_grads: Callable  # (RoundingModel, arg balls, result ball) -> ∂result/∂arg_i, as torch computes them
    domains: tuple[Domain, ...]
    # "tensors": every argument is a subexpression; "scalar": the second may be a constant;
    # "exponent": the second is always a constant exponent; "ordered": the second is the first
    # plus a nonzero offset, so there is never a tie (maximum/minimum); "parameters": the arguments
    # after the first are constants drawn from `parameters` (clamp's bounds, leaky_relu's slope).
    operands: str = "tensors"
    ulps: float = 0.5  # torch kernel's accuracy in ulps (0.5 = correctly rounded)
    conventions: tuple[Convention, ...] = ()  # torch's values at kinks, poles, boundaries, saturation
    parameters: tuple[tuple[float, ...], ...] = ()  # choices of the constant arguments ("parameters")

    @property
    def arity(self) -> int:
        return len(self.domains)

    @property
    def constant_args(self) -> tuple[int, ...]:
        """Arguments that are always Python scalars, never tensors."""
        if self.operands == "exponent":
            return (1,)
        if self.operands == "parameters":
            return tuple(range(1, self.arity))
        return ()

    @property
    def k(self) -> float:
        """Allowed error of one evaluation in units of u (1 ulp = 2u)."""
        return 2 * self.ulps


OPS: dict[str, OpSpec] = {}


def _op(name, spellings, sympy_fn, forward, local_grads, domains, **extra) -> None:
    OPS[name] = OpSpec(name, tuple(spellings), sympy_fn, forward, local_grads, tuple(domains), **extra)


def _pin(name: str, *conventions: Convention) -> None:
    """Attach torch's conventions (written in oracles.table.op_conventions) to an op of the table."""
    OPS[name] = dataclasses.replace(OPS[name], conventions=OPS[name].conventions + conventions)


def _unary_spellings(name: str, *more: Spelling, method: bool = True) -> list[Spelling]:
    fn = getattr(torch, name)
    spellings = [Spelling(f"torch.{name}({{0}})", fn)]
    if method:
        spellings.append(Spelling(f"{{0}}.{name}()", lambda a, _n=name: getattr(a, _n)()))
    return spellings + list(more)


def _binary_spellings(name: str, operator: str | None = None, **flags) -> list[Spelling]:
    fn = getattr(torch, name)
    spellings = []
    if operator is not None:
        spellings.append(Spelling(f"{{0}} {operator} {{1}}", _OPERATORS[operator], const_first=True))
    spellings.append(Spelling(f"torch.{name}({{0}}, {{1}})", fn, **flags))
    spellings.append(Spelling(f"{{0}}.{name}({{1}})", lambda a, b, _n=name: getattr(a, _n)(b), **flags))
    return spellings


_OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}

R, P, NZ, U, B = Domain.REAL, Domain.POSITIVE, Domain.NONZERO, Domain.UNIT, Domain.BOUNDED
ONE = arb(1)


# ---------------------------------------------------------------- arithmetic (correctly rounded)
_op("add", _binary_spellings("add", "+"), lambda a, b: a + b,
    lambda F, a, b: F.add(a, b), lambda F, args, y: (ONE, ONE), (R, R), operands="scalar")
_op("sub", _binary_spellings("sub", "-"), lambda a, b: a - b,
    lambda F, a, b: F.sub(a, b), lambda F, args, y: (ONE, -ONE), (R, R), operands="scalar")
_op("mul", _binary_spellings("mul", "*"), lambda a, b: a * b,
    lambda F, a, b: F.mul(a, b), lambda F, args, y: (args[1], args[0]), (R, R), operands="scalar")
# derivatives.yaml: self: grad / other; other: -grad * ((self / other) / other)
_op("div", _binary_spellings("div", "/") + [Spelling("torch.true_divide({0}, {1})", torch.true_divide)],
    lambda a, b: a / b, lambda F, a, b: F.div(a, b),
    lambda F, args, y: (F.div(ONE, args[1]), -F.div(F.div(args[0], args[1]), args[1])),
    (R, NZ), operands="scalar")
_op("neg", [Spelling("-{0}", lambda a: -a), *_unary_spellings("neg")[0:2],
            Spelling("torch.negative({0})", torch.negative)],
    lambda a: -a, lambda F, a: -a, lambda F, args, y: (-ONE,), (R,))
# pow(Tensor, Scalar): grad * exponent * self.pow(exponent - 1); integer, negative and rational exponents
def _power(base: arb, exponent: arb) -> arb:
    """base ** exponent; an exact integer exponent needs no logarithm (so 0 ** 2 and (-2) ** 3 work). On a
    jet (the second-order model), each further derivative's exponent is rounded as torch rounds it."""
    if hasattr(base, "power"):  # an oracles.higher.jets.Jet (not imported: jets imports this table's module)
        return base.power(exponent, lower=_double_minus_one)
    if exponent.is_exact() and exponent.is_integer():
        return int_power(base, int(exponent.unique_fmpz()))
    return base**exponent


def _double_minus_one(exponent: arb) -> arb:
    """`exponent - 1` as torch computes it, on the double Scalar: rounded unless a double holds it
    (x ** (1/3) at x = 5e-324 in float64: the rounding of 1/3 - 1 moves the gradient by 2e2 ulps)."""
    exact = exponent - 1
    if exact.is_exact() and arb(float(exact.mid())) == exact:
        return exact
    return exact * (1 + arb(0, 2.0**-53))


_op("pow_scalar", [Spelling("{0} ** {1}", _OPERATORS["**"]), Spelling("torch.pow({0}, {1})", torch.pow),
                   Spelling("{0}.pow({1})", lambda a, b: a.pow(b))],
    lambda a, c: a**c,
    lambda F, a, c: F.round(_power(a, c), 2),
    lambda F, args, y: (F.mul(args[1], F.round(_power(args[0], _double_minus_one(args[1])), 2)),),
    (R, R), operands="exponent", ulps=1)
# pow(Tensor, Tensor): self: grad * exponent * self.pow(exponent - 1); exponent: grad * result * self.log()
_op("pow", [Spelling("{0} ** {1}", _OPERATORS["**"], const_first=True, const_second=False),
            Spelling("torch.pow({0}, {1})", torch.pow, const_first=True, const_second=False),
            Spelling("{0}.pow({1})", lambda a, b: a.pow(b), const_second=False)],
    lambda a, b: a**b,
    lambda F, a, b: F.round((b * a.log()).exp(), 2),
    lambda F, args, y: (F.mul(args[1], F.round((F.sub(args[1], ONE) * args[0].log()).exp(), 2)),
                        F.mul(y, F.round(args[0].log(), 2))),
    (P, B), ulps=1)
_op("reciprocal", _unary_spellings("reciprocal"), lambda a: 1 / a,
    lambda F, a: F.div(ONE, a), lambda F, args, y: (-F.mul(y, y),), (NZ,))
_op("square", _unary_spellings("square"), lambda a: a**2,
    lambda F, a: F.mul(a, a), lambda F, args, y: (F.mul(arb(2), args[0]),), (R,))
_op("sqrt", _unary_spellings("sqrt"), sympy.sqrt,
    lambda F, a: F.round(a.sqrt()), lambda F, args, y: (F.div(ONE, F.mul(arb(2), y)),), (P,))
# rsqrt: -0.5 * grad * result.pow(3)
_op("rsqrt", _unary_spellings("rsqrt"), lambda a: 1 / sympy.sqrt(a),
    lambda F, a: F.round(a.rsqrt(), 2), lambda F, args, y: (F.mul(arb(-0.5), F.round(int_power(y, 3), 2)),),
    (P,), ulps=1)

# ---------------------------------------------------------------- transcendental
def _unary(name, sympy_fn, arb_function, local, domain=R, ulps=1.0, spellings=None):
    """A unary op whose forward is one torch kernel accurate to `ulps`, modelled by `arb_function`."""

    def forward(F, a, _f=arb_function, _name=name):
        return F.round(_f(a), OPS[_name].k)

    _op(name, spellings or _unary_spellings(name), sympy_fn, forward, local, (domain,), ulps=ulps)


def _k(name):
    return OPS[name].k


_unary("exp", sympy.exp, arb.exp, lambda F, args, y: (y,), B)
_unary("expm1", lambda a: sympy.exp(a) - 1, arb.expm1, lambda F, args, y: (F.add(y, ONE),), B)
_unary("log", sympy.log, arb.log, lambda F, args, y: (F.div(ONE, args[0]),), P)
_unary("log1p", lambda a: sympy.log(1 + a), arb.log1p,
       lambda F, args, y: (F.div(ONE, F.add(args[0], ONE)),), P)
_unary("sin", sympy.sin, arb.sin, lambda F, args, y: (F.round(args[0].cos(), _k("sin")),))
_unary("cos", sympy.cos, arb.cos, lambda F, args, y: (-F.round(args[0].sin(), _k("cos")),))
_unary("tan", sympy.tan, arb.tan, lambda F, args, y: (F.add(ONE, F.mul(y, y)),), U)
_unary("tanh", sympy.tanh, arb.tanh, lambda F, args, y: (F.sub(ONE, F.mul(y, y)),))
_unary("sinh", sympy.sinh, arb.sinh, lambda F, args, y: (F.round(args[0].cosh(), _k("sinh")),), B)
_unary("cosh", sympy.cosh, arb.cosh, lambda F, args, y: (F.round(args[0].sinh(), _k("cosh")),), B)
_unary("atan", sympy.atan, arb.atan,
       lambda F, args, y: (F.div(ONE, F.add(F.mul(args[0], args[0]), ONE)),))
_unary("asin", sympy.asin, arb.asin,
       lambda F, args, y: (F.round(F.sub(ONE, F.mul(args[0], args[0])).rsqrt(), 2),), U)
_unary("acos", sympy.acos, arb.acos,
       lambda F, args, y: (-F.round(F.sub(ONE, F.mul(args[0], args[0])).rsqrt(), 2),), U)
_unary("asinh", sympy.asinh, arb.asinh,
       lambda F, args, y: (F.round(F.add(F.mul(args[0], args[0]), ONE).rsqrt(), 2),))
# erf: 2.0 / sqrt(M_PI) * exp(-(self.pow(2))) * grad
_unary("erf", sympy.erf, arb.erf,
       lambda F, args, y: (F.mul(F.const(2 / 3.141592653589793**0.5),
                                 F.round((-F.mul(args[0], args[0])).exp(), 2)),),
       spellings=_unary_spellings("erf", Spelling("torch.special.erf({0})", torch.special.erf)), ulps=2)
# bfloat16/float16 erf on CPU runs Vectorized<float>::erf, the Abramowitz-Stegun 7.1.26 formula whose
# error bound 1.5e-7 is *absolute*: near 0 it loses every digit (bf16 erf(1e-10) = 0). That accuracy is
# modelled here, so such points come out unverified, and the loss itself is a registered finding
# (findings.toml: erf-half-precision-near-zero, cf. pytorch/pytorch#198183).
# The formula's own bound (1.5e-7) plus float32 evaluation of 1 - p(t)exp(-x^2), whose terms are near 1
# (a few roundings of 2^-24 each): bf16 erf(1.5e-7) returns 0, 1.7e-7 off.
ERF_HALF_ABSOLUTE_ERROR = 1.5e-7 + 4 * 2.0**-24


def _erf_forward(F, a):
    value = F.round(a.erf(), OPS["erf"].k)
    if F.format.name in ("bfloat16", "float16"):
        value = F.in_range(value + arb(0, ERF_HALF_ABSOLUTE_ERROR))
    return value


OPS["erf"] = dataclasses.replace(OPS["erf"], forward=_erf_forward)
# sigmoid_backward: grad * (1 - y) * y
_unary("sigmoid", lambda a: 1 / (1 + sympy.exp(-a)), lambda a: 1 / (1 + (-a).exp()),
       lambda F, args, y: (F.mul(F.sub(ONE, y), y),),
       spellings=_unary_spellings("sigmoid", Spelling("torch.special.expit({0})", torch.special.expit),
                                  Spelling("torch.nn.functional.sigmoid({0})", torch_nn_functional.sigmoid)),
       ulps=2)

# softplus(beta=1, threshold=20) is linear above the threshold: that *is* the function torch computes.
SOFTPLUS_THRESHOLD = 20


def _softplus_forward(F, a):
    if F.greater(a, arb(SOFTPLUS_THRESHOLD)):
        return a
    return F.round(a.exp().log1p(), OPS["softplus"].k)


def _softplus_grads(F, args, y):
    # softplus_backward: z = exp(x); x > threshold ? grad : grad * z / (z + 1)
    if F.greater(args[0], arb(SOFTPLUS_THRESHOLD)):
        return (ONE,)
    z = F.round(args[0].exp(), 2)
    return (F.div(z, F.add(z, ONE)),)


_op("softplus", [Spelling("torch.nn.functional.softplus({0})", torch_nn_functional.softplus)],
    lambda a: sympy.Piecewise((a, a > SOFTPLUS_THRESHOLD), (sympy.log(1 + sympy.exp(a)), True)),
    _softplus_forward, _softplus_grads, (R,), ulps=2)


def _abs_grads(F, args, y):
    return (arb(F.sign(args[0])),)


_op("abs", [Spelling("abs({0})", abs), *_unary_spellings("abs")[0:2]], sympy.Abs,
    lambda F, a: abs(a), _abs_grads, (NZ,))

# ---------------------------------------------------------------- binary, non-arithmetic
# atan2_backward: recip = (self * self + other * other).reciprocal(); grad * other * recip, grad * -self * recip
def _atan2_grads(F, args, y):
    a, b = args
    recip = F.div(ONE, F.add(F.mul(a, a), F.mul(b, b)))
    return (F.mul(b, recip), -F.mul(a, recip))


def _atan2_forward(F, y, x):
    # The value jumps across the branch cut y = 0, x < 0 (and ±0 pick the side).
    if y.contains(0) and not x > 0:
        raise Singular("atan2 on its branch cut")
    return F.round(arb.atan2(y, x), OPS["atan2"].k)


# y bounded away from 0: every quadrant, never the origin nor the branch cut.
_op("atan2", _binary_spellings("atan2", const_second=False)
    + [Spelling("torch.arctan2({0}, {1})", torch.arctan2, const_second=False)],
    sympy.atan2, _atan2_forward, _atan2_grads, (NZ, R), ulps=2)
# hypot: grad * self / result, grad * other / result
_op("hypot", _binary_spellings("hypot", const_second=False),
    lambda a, b: sympy.sqrt(a**2 + b**2),
    lambda F, a, b: F.round((a * a + b * b).sqrt(), OPS["hypot"].k),
    lambda F, args, y: (F.div(args[0], y), F.div(args[1], y)), (R, NZ), ulps=1)
def _logaddexp_forward(F, a, b):
    # torch: m = max(a, b); m + log1p(exp(-|a - b|)). The final sum can cancel (a = b = -log 2 / 2),
    # so the kernel is accurate relative to |m| + log1p(...), not to the result.
    m = a.max(b)
    tail = F.round(F.round((-abs(F.sub(a, b))).exp(), 2).log1p(), 2)
    return F.add(m, tail)


# logaddexp: grad / (1 + exp(other - self)), grad / (1 + exp(self - other))
_op("logaddexp", _binary_spellings("logaddexp", const_second=False),
    lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)),
    _logaddexp_forward,
    lambda F, args, y: (F.div(ONE, F.add(ONE, F.round(F.sub(args[1], args[0]).exp(), 2))),
                        F.div(ONE, F.add(ONE, F.round(F.sub(args[0], args[1]).exp(), 2)))),
    (R, R), ulps=2)


def _select_grads(first_wins: Callable[[arb, arb], bool]):
    def grads(F, args, y):
        return (ONE, arb(0)) if first_wins(F, *args) else (arb(0), ONE)

    return grads


_op("maximum", _binary_spellings("maximum", const_second=False)
    + [Spelling("torch.max({0}, {1})", torch.max, const_second=False)],
    sympy.Max, lambda F, a, b: a if F.greater(a, b) else b,
    _select_grads(lambda F, a, b: F.greater(a, b)), (R, R), operands="ordered")
_op("minimum", _binary_spellings("minimum", const_second=False)
    + [Spelling("torch.min({0}, {1})", torch.min, const_second=False)],
    sympy.Min, lambda F, a, b: b if F.greater(a, b) else a,
    _select_grads(lambda F, a, b: not F.greater(a, b)), (R, R), operands="ordered")
# fmax/fmin: maximum/minimum that ignore NaN; their backward sends a tie's gradient to `self` only.
_op("fmax", [Spelling("torch.fmax({0}, {1})", torch.fmax, const_second=False),
             Spelling("{0}.fmax({1})", lambda a, b: a.fmax(b), const_second=False)],
    sympy.Max, lambda F, a, b: a if F.greater(a, b) else b,
    _select_grads(lambda F, a, b: F.greater(a, b)), (R, R), operands="ordered")
_op("fmin", [Spelling("torch.fmin({0}, {1})", torch.fmin, const_second=False),
             Spelling("{0}.fmin({1})", lambda a, b: a.fmin(b), const_second=False)],
    sympy.Min, lambda F, a, b: b if F.greater(a, b) else a,
    _select_grads(lambda F, a, b: not F.greater(a, b)), (R, R), operands="ordered")

# ---------------------------------------------------------------- kinks, bounds and steps
# Every kink is decided by `F.sign`/`F.greater`, which raise `Singular` when the argument's ball may
# touch it; the domains keep generated arguments away from the kinks by construction.
OFF_PARAMETERS, OFF_INTEGERS, OFF_HALF_INTEGERS = (
    Domain.OFF_PARAMETERS, Domain.OFF_INTEGERS, Domain.OFF_HALF_INTEGERS)
ZERO = arb(0)


def _nn(name: str) -> Spelling:
    return Spelling(f"torch.nn.functional.{name}({{0}})", getattr(torch_nn_functional, name))


# relu: threshold_backward(grad, result, 0), i.e. 0 where result <= 0
_op("relu", _unary_spellings("relu") + [_nn("relu")], lambda a: sympy.Max(a, 0),
    lambda F, a: a if F.sign(a) > 0 else ZERO,
    lambda F, args, y: (ONE if F.sign(args[0]) > 0 else ZERO,), (NZ,))
# sign, floor, ceil, trunc, round: zeros_like(grad)
_op("sign", _unary_spellings("sign"), sympy.sign,
    lambda F, a: arb(F.sign(a)), lambda F, args, y: (ZERO,), (NZ,))


def _step_op(name: str, sympy_fn, domain: Domain) -> None:
    step = STEP_EVALUATORS[sympy_fn]
    _op(name, _unary_spellings(name), sympy_fn, lambda F, a: step(a), lambda F, args, y: (ZERO,), (domain,))


_step_op("floor", Floor, OFF_INTEGERS)
_step_op("ceil", Ceil, OFF_INTEGERS)
_step_op("trunc", Trunc, OFF_INTEGERS)
_step_op("round", RoundHalfEven, OFF_HALF_INTEGERS)
# frac = self - trunc(self) (exact in floating point); frac: grad
_op("frac", _unary_spellings("frac"), lambda a: a - Trunc(a),
    lambda F, a: F.sub(a, STEP_EVALUATORS[Trunc](a)), lambda F, args, y: (ONE,), (OFF_INTEGERS,))


def _inside(F, a, lower, upper) -> bool:
    """lower < a < upper (either bound may be None), deciding ties as `Singular`."""
    return (lower is None or F.greater(a, lower)) and (upper is None or F.greater(upper, a))


def _clamp_forward(lower_arg, upper_arg):
    def forward(F, a, *bounds):
        lower = bounds[lower_arg - 1] if lower_arg else None
        upper = bounds[upper_arg - 1] if upper_arg else None
        if lower is not None and not F.greater(a, lower):
            return lower
        if upper is not None and not F.greater(upper, a):
            return upper
        return a

    return forward


def _clamp_grads(lower_arg, upper_arg):
    # clamp_backward: grad * ((self >= min) & (self <= max)); hardtanh_backward: 0 where self <= min or
    # self >= max. They differ only at the bounds themselves, which are Singular here.
    def grads(F, args, y):
        lower = args[lower_arg] if lower_arg else None
        upper = args[upper_arg] if upper_arg else None
        return (ONE if _inside(F, args[0], lower, upper) else ZERO,) + (ZERO,) * (len(args) - 1)

    return grads


CLAMP_BOUNDS = ((0.0, 1.0), (-1.0, 1.0), (-2.0, 0.5))
_op("clamp", [Spelling("torch.clamp({0}, {1}, {2})", torch.clamp),
              Spelling("{0}.clamp({1}, {2})", lambda a, lo, hi: a.clamp(lo, hi)),
              Spelling("torch.clip({0}, {1}, {2})", torch.clip)],
    lambda a, lo, hi: sympy.Min(sympy.Max(a, lo), hi), _clamp_forward(1, 2), _clamp_grads(1, 2),
    (OFF_PARAMETERS, R, R), operands="parameters", parameters=CLAMP_BOUNDS)
_op("clamp_min", [Spelling("torch.clamp_min({0}, {1})", torch.clamp_min),
                  Spelling("{0}.clamp_min({1})", lambda a, lo: a.clamp_min(lo)),
                  Spelling("torch.clamp({0}, {1})", torch.clamp)],
    sympy.Max, _clamp_forward(1, 0), _clamp_grads(1, 0),
    (OFF_PARAMETERS, R), operands="parameters", parameters=((0.0,), (-1.0,), (0.5,)))
_op("clamp_max", [Spelling("torch.clamp_max({0}, {1})", torch.clamp_max),
                  Spelling("{0}.clamp_max({1})", lambda a, hi: a.clamp_max(hi)),
                  Spelling("torch.clamp({0}, max={1})", lambda a, hi: torch.clamp(a, max=hi))],
    sympy.Min, _clamp_forward(0, 1), _clamp_grads(0, 1),
    (OFF_PARAMETERS, R), operands="parameters", parameters=((0.0,), (1.0,), (-0.5,)))
_op("hardtanh", [Spelling("torch.nn.functional.hardtanh({0}, {1}, {2})", torch_nn_functional.hardtanh)],
    lambda a, lo, hi: sympy.Min(sympy.Max(a, lo), hi), _clamp_forward(1, 2), _clamp_grads(1, 2),
    (OFF_PARAMETERS, R, R), operands="parameters", parameters=((-1.0, 1.0), (0.0, 6.0), (-2.0, 0.5)))


# leaky_relu: self > 0 ? grad : grad * negative_slope
_op("leaky_relu", [Spelling("torch.nn.functional.leaky_relu({0}, {1})", torch_nn_functional.leaky_relu)],
    lambda a, slope: sympy.Piecewise((a, a > 0), (slope * a, True)),
    lambda F, a, slope: a if F.sign(a) > 0 else F.mul(a, slope),
    lambda F, args, y: ((ONE if F.sign(args[0]) > 0 else args[1]), ZERO),
    (NZ, R), operands="parameters", parameters=((0.01,), (0.25,), (0.5,)))


def _elu_forward(F, a, alpha):
    if F.sign(a) > 0:
        return a
    # expm1(x) or exp(x) - 1 (both are within this enclosure), times alpha
    return F.mul(alpha, F.sub(F.round(a.exp(), OPS["elu"].k), ONE))


def _elu_grads(F, args, y):
    # elu_backward (is_result=False): x <= 0 ? grad * input_scale * alpha * exp(x * input_scale) : grad
    a, alpha = args
    if F.sign(a) > 0:
        return (ONE, ZERO)
    return (F.mul(alpha, F.round(a.exp(), OPS["elu"].k)), ZERO)


_op("elu", [Spelling("torch.nn.functional.elu({0}, {1})", torch_nn_functional.elu)],
    lambda a, alpha: sympy.Piecewise((a, a > 0), (alpha * (sympy.exp(a) - 1), True)),
    _elu_forward, _elu_grads, (NZ, R), operands="parameters", parameters=((1.0,), (0.5,), (2.0,)), ulps=1)


def _pi(F) -> arb:
    """torch's M_PI as the dtype sees it: π rounded (the exact π lies in the same ball)."""
    return F.round(arb.pi())


def _sinc_forward(F, a):
    product = F.mul(_pi(F), a)
    return F.div(F.round(product.sin(), OPS["sinc"].k), product)


def _sinc_grads(F, args, y):
    # sinc_backward: self_pi = self * pi; self_squared_pi = self * self * pi;
    # out = grad * (self_pi * cos(self_pi) - sin(self_pi)) / self_squared_pi, 0 where self_squared_pi == 0
    x = args[0]
    self_pi = F.mul(x, _pi(F))
    squared_pi = F.mul(F.mul(x, x), _pi(F))
    if squared_pi.contains(0):
        raise Singular("self * self * pi may underflow to 0, where torch returns 0")
    k = OPS["sinc"].k
    numerator = F.sub(F.mul(self_pi, F.round(self_pi.cos(), k)), F.round(self_pi.sin(), k))
    return (F.div(numerator, squared_pi),)


_op("sinc", _unary_spellings("sinc", Spelling("torch.special.sinc({0})", torch.special.sinc)),
    lambda a: sympy.sin(sympy.pi * a) / (sympy.pi * a), _sinc_forward, _sinc_grads, (NZ,), ulps=1)
# atanh: grad * 1 / (1 - self.pow(2))
_unary("atanh", sympy.atanh, arb.atanh,
       lambda F, args, y: (F.div(ONE, F.sub(ONE, F.mul(args[0], args[0]))),), U,
       spellings=_unary_spellings("atanh", Spelling("torch.arctanh({0})", torch.arctanh)))


def _gelu_cdf(F, a):
    """0.5 * (1 + erf(x * M_SQRT1_2))."""
    scaled = F.mul(a, F.round(1 / arb(2).sqrt()))
    return F.mul(arb(0.5), F.add(ONE, F.round(scaled.erf(), OPS["gelu"].k)))


def _gelu_grads(F, args, y):
    # gelu_backward (approximate='none'): cdf + x * exp(-0.5 * x * x) * M_2_SQRTPI * M_SQRT1_2 * 0.5
    a = args[0]
    pdf = F.mul(F.round((F.mul(arb(-0.5), F.mul(a, a))).exp(), OPS["gelu"].k),
                F.round(1 / (2 * arb.pi()).sqrt()))
    return (F.add(_gelu_cdf(F, a), F.mul(a, pdf)),)


_op("gelu", [_nn("gelu")], lambda a: a * (1 + sympy.erf(a / sympy.sqrt(2))) / 2,
    lambda F, a: F.mul(a, _gelu_cdf(F, a)), _gelu_grads, (R,), ulps=2)

for _name, _conventions in CONVENTIONS.items():
    if _name not in OPS:
        raise ValueError(f"oracles.table.op_conventions pins {_name!r}, which the op table lacks")
    _pin(_name, *_conventions)


def op_named(name: str) -> OpSpec:
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; the op table has {', '.join(sorted(OPS))}") from None
