"""float_power: pow computed in float64 whatever the arguments' dtype, spelled as users keep their dtype,
`torch.float_power(x0.exp(), x1).to(x0.dtype)`. The base's exp keeps it inside pow's real domain by
construction (torch documents pow of a negative base to a fractional exponent as NaN, and at a base of 0 the
derivative is infinite or a kink); exp of the drawn values reaches bases from about e^-3 to e^3 and 1 exactly.
(Spelled with abs instead, a third of the gradient elements drawn were unverified, the base 0; measured.)

torch: float_power is pow(base.to(float64), exponent.to(float64)), so autograd runs through ToCopyBackward
(the gradient cast back to the argument's dtype: oracles.table.cast_ops.cast) and PowBackward in float64
(derivatives.yaml: pow_backward_self, grad * (exponent * self.pow(exponent - 1)), 0 where exponent == 0;
pow_backward_exponent, grad * (result * self.log()), 0 where self == 0 and exponent >= 0). The forward is
std::pow in float64 (within an ulp), cast to the dtype by the spelling's `.to`; the gradient of `.to` is cast
to float64 exactly.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import Overflow, RoundingModel, Singular
from oracles.table import tensor_formulas as formula
from oracles.table.cast_ops import cast
from oracles.table.ops import OPS
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["float_power"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
FLOAT64 = format_named("float64")
DOUBLE = RoundingModel(FLOAT64)
K_POW = 2  # std::pow and std::log in float64: within an ulp (two half-ulps)
EXP = OPS["exp"]


def _sym(arrays, p):
    a, b = arrays
    out = np.empty(a.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        out[i] = sympy.exp(a[i]) ** b[i]
    return out


def _base(F, x: arb, exponent: arb) -> arb:
    """exp(x) as torch's exp kernel gives it in the dtype. Where it may have underflowed to 0 and the exponent
    may be below 1, the backward's self.pow(exponent - 1) may be inf (and times exp's underflowed 0, NaN):
    the registered backward-intermediate-overflow."""
    base = F.in_range(EXP.forward(F, x))  # exp may overflow the dtype (inf, whose powers the model cannot follow)
    if base.contains(0) and not exponent > 1:
        raise Overflow("float_power's base may be 0 (exp underflowed): self.pow(exponent - 1) may be inf")
    return base


def _power(base: arb, exponent: arb) -> arb:
    """std::pow in float64; of a base that may be 0 (to a positive exponent), anything from 0 to the power of
    its largest value."""
    if base.contains(0):
        return arb(0).union(DOUBLE.round((exponent * base.upper().log()).exp(), K_POW))
    return DOUBLE.round((exponent * base.log()).exp(), K_POW)


def _times_log(result: arb, base: arb, exponent: arb) -> arb:
    """result * self.log() in float64, where pow_backward_exponent masks it to 0 at self == 0. Of a base that
    may be 0 (to an exponent above 1): |x^e log x| for x in (0, top] is at most top^e |log top| below its
    maximum at x = exp(-1/e), 1 / (e E), beyond it (for a top below 1)."""
    if not base.contains(0):
        return formula.mul(DOUBLE, result, DOUBLE.round(base.log(), K_POW))
    top, least = base.upper(), exponent.lower()
    if not top < 1:
        raise Singular("float_power's base may be 0 and above 1 within the rounding model")
    peak = (-1 / least).exp()
    bound = (least * top.log()).exp() * -top.log() if top < peak else 1 / (least * arb(1).exp())
    return DOUBLE.round(arb(0, bound.upper()))


def _forward(F, arrays, p):
    a, b = arrays
    out = np.empty(a.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        out[i] = cast(_power(_base(F, a[i], b[i]), b[i]), FLOAT64, F.format)
    return out


def _backward(F, arrays, out, grad, p):
    a, b = arrays
    to_a, to_b = np.empty(a.shape, dtype=object), np.empty(b.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        base, exponent, g = _base(F, a[i], b[i]), b[i], grad[i]  # the gradient, cast to float64 exactly
        result = _power(base, exponent)
        lowered = _power(base, DOUBLE.sub(exponent, arb(1)))
        to_base = formula.mul(DOUBLE, g, formula.mul(DOUBLE, exponent, lowered))
        to_exponent = formula.mul(DOUBLE, g, _times_log(result, base, exponent))
        to_a[i] = F.mul(cast(to_base, FLOAT64, F.format), base)  # exp's backward: grad * result, in the dtype
        to_b[i] = cast(to_exponent, FLOAT64, F.format)
    return to_a, to_b


TENSOR_OPS["float_power"] = TensorOp(
    "float_power", 2,
    (_spelling("torch.float_power({0}.exp(), {1}).to({0}.dtype)",
               lambda x, y: torch.float_power(x.exp(), y).to(x.dtype)),
     _spelling("{0}.exp().float_power({1}).to({0}.dtype)", lambda x, y: x.exp().float_power(y).to(x.dtype))),
    _sym, _forward, _backward, OptionSpace(functools.cache(lambda shapes: (_params(),))),
    lambda shapes, p: shapes[0], ("float_power",))
