"""Dtype casts, and the ops that overwrite every element (fill, zero_), one entry each.

A cast is spelled as a round trip, `x0.half().to(x0.dtype)`: the program stays in the dtype under test, so the
ops after it run in the arithmetic the rounding model describes. Mathematically a cast is the identity, and
torch differentiates it so: `_to_copy`'s backward casts the gradient back to the source dtype
(derivatives.yaml: `_to_copy_backward(grad, self.options())`). Both directions round where the target dtype
does not hold every value of the source (`cast`); a cast into a dtype that holds them is exact, and one to
the dtype a tensor already has returns the tensor itself.

fill and zero_ put a constant in every element: their gradient with respect to the input is exactly 0
(derivatives.yaml: zeros_like(grad)); torch.fill's OpInfo passes the value as a Python number, so the input is
the only argument differentiated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from flint import arb

from oracles.numerics.dtypes import FloatFormat, format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.shape_ops import FILL_VALUES, _no_parameters, _params, _spelling, _with
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, gathering

NAMES = ["cast"]  # the entries whose forward rounds (fill and zero_ are index maps: constants everywhere)
FLOAT32 = format_named("float32")


@dataclass(frozen=True)
class DType:
    """A cast's target, rendered as torch spells it (`torch.float16`)."""

    name: str

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    @property
    def format(self) -> FloatFormat:
        return format_named(self.name)


TARGETS = tuple(DType(name) for name in ("float64", "float32", "bfloat16", "float16"))
METHODS = {"float64": "double", "float32": "float", "bfloat16": "bfloat16", "float16": "half"}


def holds(target: FloatFormat, source: FloatFormat) -> bool:
    """Every finite value of `source` is a value of `target`: a cast from source to target is exact."""
    return (target.mantissa_bits >= source.mantissa_bits and target.min_subnormal <= source.min_subnormal
            and target.max_finite >= source.max_finite)


def cast(value: arb, source: FloatFormat, target: FloatFormat) -> arb:
    """A value of `source` converted to `target` on the CPU. c10::Half and c10::BFloat16 are built from a float
    only, so a double becomes a float first and is rounded twice (measured: 1 + 2^-11 + 2^-30 in float64 gives
    1.0 in float16, whose nearest value is 1 + 2^-10; finding double-to-half-cast-rounded-twice); every other
    conversion rounds once."""
    if holds(target, source):
        return value
    if source.mantissa_bits > FLOAT32.mantissa_bits and target.mantissa_bits < FLOAT32.mantissa_bits:
        value = RoundingModel(FLOAT32).round(value)
    return RoundingModel(target).round(value)


def _round_trip(F: RoundingModel, value: arb, target: DType) -> arb:
    """To the target dtype and back to the dtype under test: the forward of the spelling, and, as the backward
    casts the gradient the same two ways, its backward too. Where the target holds the dtype's values, both
    casts are exact; else the way back is exact where the dtype holds the target's values, and may round (and
    overflow: float16's largest value rounds up to 65536 in bfloat16) where neither holds the other."""
    source = F.format
    if holds(target.format, source):
        return value
    there = cast(value, source, target.format)
    return there if holds(source, target.format) else cast(there, target.format, source)


def _elementwise(f):
    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = np.empty(a.shape, dtype=object)
        for i in np.ndindex(*a.shape):
            out[i] = f(*head, a[i], p["dtype"])
        return out

    return apply


def _backward(F, arrays, out, grad, p):
    return (_elementwise(_round_trip)(F, [grad], p),)


def _cast_spelling(template: str, call, **applies):
    return _spelling(template, call, _with(**applies) if applies else None)


_CAST_SPELLINGS = [
    _cast_spelling("{0}.to({dtype}).to({0}.dtype)", lambda x, dtype: x.to(getattr(torch, dtype.name)).to(x.dtype)),
    _cast_spelling("{0}.to(dtype={dtype}).to({0}.dtype)",
                   lambda x, dtype: x.to(dtype=getattr(torch, dtype.name)).to(x.dtype)),
] + [
    _cast_spelling(f"{{0}}.{method}().to({{0}}.dtype)",
                   lambda x, dtype, _m=method: getattr(x, _m)().to(x.dtype), dtype=DType(name))
    for name, method in METHODS.items()
]

TENSOR_OPS["cast"] = TensorOp(
    "cast", 1, tuple(_CAST_SPELLINGS), _elementwise(lambda v, target: v), _elementwise(_round_trip), _backward,
    OptionSpace(functools.cache(lambda shapes: tuple(_params(dtype=t) for t in TARGETS))),
    lambda shapes, p: shapes[0], ("to", "double", "float", "bfloat16", "half"))


# ------------------------------------------------------------------ every element overwritten
def _filled(value):
    """An index map putting the constant `value(params)` in every element of the argument."""
    return lambda arrays, p, constant: np.full(arrays[0].shape, constant(value(p)), dtype=object)


_fill_options = functools.cache(lambda shapes: tuple(_params(value=v) for v in FILL_VALUES))

TENSOR_OPS["fill"] = gathering(
    "fill", _filled(lambda p: p["value"]),
    [_spelling("torch.fill({0}, {value})", lambda x, value: torch.fill(x, value)),
     _spelling("{0}.clone().fill_({value})", lambda x, value: x.clone().fill_(value))],
    OptionSpace(_fill_options), ["fill"])

# zero_ is in place only: on a clone, as its OpInfo calls it, since a leaf that requires grad cannot be overwritten
TENSOR_OPS["zero_"] = gathering(
    "zero_", _filled(lambda p: 0.0),
    [_spelling("torch.zero_({0}.clone())", lambda x: torch.zero_(x.clone())),
     _spelling("{0}.clone().zero_()", lambda x: x.clone().zero_())],
    OptionSpace(_no_parameters), ["zero_"])
