"""The op table: one entry per op, read by strategies, both renderings, the error model and reports.

Adding an op is one `_op(...)` call below. An entry says:
- how torch users write it (`spellings`: display template + the call it makes; each hits torch's own
  dispatch path, e.g. `x ** 2` and `torch.square(x)`),
- what it is mathematically (`sympy`, from which SymPy derives the exact derivative),
- how torch computes it (`forward` and `local_grads`, written after torch's formulas in
  tools/autograd/derivatives.yaml, with every float operation rounded by the `RoundingModel`),
- where its arguments must lie (`domains`), which strategies satisfy by construction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

import sympy
import torch
import torch.nn.functional as torch_nn_functional
from flint import arb

from oracles.rounding import RoundingModel, Singular


class Domain(enum.Enum):
    REAL = "any real value"
    POSITIVE = "bounded away from 0, positive"
    NONZERO = "bounded away from 0, either sign"
    UNIT = "inside (-0.9, 0.9)"


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
    # plus a nonzero offset, so there is never a tie (maximum/minimum).
    operands: str = "tensors"
    ulps: float = 0.5  # torch kernel's accuracy in ulps (0.5 = correctly rounded)

    @property
    def arity(self) -> int:
        return len(self.domains)

    @property
    def k(self) -> float:
        """Allowed error of one evaluation in units of u (1 ulp = 2u)."""
        return 2 * self.ulps


OPS: dict[str, OpSpec] = {}


def _op(name, spellings, sympy_fn, forward, local_grads, domains, **extra) -> None:
    OPS[name] = OpSpec(name, tuple(spellings), sympy_fn, forward, local_grads, tuple(domains), **extra)


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

R, P, NZ, U = Domain.REAL, Domain.POSITIVE, Domain.NONZERO, Domain.UNIT
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
    """base ** exponent; an exact integer exponent needs no logarithm (so 0 ** 2 and (-2) ** 3 work)."""
    if exponent.is_exact() and exponent.is_integer():
        return base ** int(exponent.unique_fmpz())
    return base**exponent


_op("pow_scalar", [Spelling("{0} ** {1}", _OPERATORS["**"]), Spelling("torch.pow({0}, {1})", torch.pow),
                   Spelling("{0}.pow({1})", lambda a, b: a.pow(b))],
    lambda a, c: a**c,
    lambda F, a, c: F.round(_power(a, c), 2),
    lambda F, args, y: (F.mul(args[1], F.round(_power(args[0], args[1] - 1), 2)),),
    (R, R), operands="exponent", ulps=1)
# pow(Tensor, Tensor): self: grad * exponent * self.pow(exponent - 1); exponent: grad * result * self.log()
_op("pow", [Spelling("{0} ** {1}", _OPERATORS["**"], const_first=True, const_second=False),
            Spelling("torch.pow({0}, {1})", torch.pow, const_first=True, const_second=False),
            Spelling("{0}.pow({1})", lambda a, b: a.pow(b), const_second=False)],
    lambda a, b: a**b,
    lambda F, a, b: F.round((b * a.log()).exp(), 2),
    lambda F, args, y: (F.mul(args[1], F.round((( args[1] - 1) * args[0].log()).exp(), 2)),
                        F.mul(y, F.round(args[0].log(), 2))),
    (P, R), ulps=1)
_op("reciprocal", _unary_spellings("reciprocal"), lambda a: 1 / a,
    lambda F, a: F.div(ONE, a), lambda F, args, y: (-F.mul(y, y),), (NZ,))
_op("square", _unary_spellings("square"), lambda a: a**2,
    lambda F, a: F.mul(a, a), lambda F, args, y: (F.mul(arb(2), args[0]),), (R,))
_op("sqrt", _unary_spellings("sqrt"), sympy.sqrt,
    lambda F, a: F.round(a.sqrt()), lambda F, args, y: (F.div(ONE, F.mul(arb(2), y)),), (P,))
# rsqrt: -0.5 * grad * result.pow(3)
_op("rsqrt", _unary_spellings("rsqrt"), lambda a: 1 / sympy.sqrt(a),
    lambda F, a: F.round(a.rsqrt(), 2), lambda F, args, y: (F.mul(arb(-0.5), F.round(y**3, 2)),),
    (P,), ulps=1)

# ---------------------------------------------------------------- transcendental
def _unary(name, sympy_fn, arb_function, local, domain=R, ulps=1.0, spellings=None):
    """A unary op whose forward is one torch kernel accurate to `ulps`, modelled by `arb_function`."""

    def forward(F, a, _f=arb_function, _name=name):
        return F.round(_f(a), OPS[_name].k)

    _op(name, spellings or _unary_spellings(name), sympy_fn, forward, local, (domain,), ulps=ulps)


def _k(name):
    return OPS[name].k


_unary("exp", sympy.exp, arb.exp, lambda F, args, y: (y,))
_unary("expm1", lambda a: sympy.exp(a) - 1, arb.expm1, lambda F, args, y: (F.add(y, ONE),))
_unary("log", sympy.log, arb.log, lambda F, args, y: (F.div(ONE, args[0]),), P)
_unary("log1p", lambda a: sympy.log(1 + a), arb.log1p,
       lambda F, args, y: (F.div(ONE, F.add(args[0], ONE)),), P)
_unary("sin", sympy.sin, arb.sin, lambda F, args, y: (F.round(args[0].cos(), _k("sin")),))
_unary("cos", sympy.cos, arb.cos, lambda F, args, y: (-F.round(args[0].sin(), _k("cos")),))
_unary("tan", sympy.tan, arb.tan, lambda F, args, y: (F.add(ONE, F.mul(y, y)),), U)
_unary("tanh", sympy.tanh, arb.tanh, lambda F, args, y: (F.sub(ONE, F.mul(y, y)),))
_unary("sinh", sympy.sinh, arb.sinh, lambda F, args, y: (F.round(args[0].cosh(), _k("sinh")),))
_unary("cosh", sympy.cosh, arb.cosh, lambda F, args, y: (F.round(args[0].sinh(), _k("cosh")),))
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

def op_named(name: str) -> OpSpec:
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; the op table has {', '.join(sorted(OPS))}") from None
