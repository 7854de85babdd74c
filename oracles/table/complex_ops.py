"""The boundary between real and complex tensors, for real inputs: casts to a complex dtype (cdouble, cfloat, chalf),
torch.complex(real, imag), view_as_complex and conj_physical, one entry each.

The suite's gradients are real, so a complex result is checked as gradcheck checks it, through
torch.view_as_real (a real tensor whose last dim holds the real and imaginary parts). Mathematically every op here
is a copy: complex(a, b) is the pair (a, b), view_as_real of view_as_complex the identity, a cast the identity with
a zero imaginary part, and conj_physical of a real tensor that tensor itself. torch differentiates them so
(derivatives.yaml): complex's backward is (real(grad), imag(grad)), view_as_complex's view_as_real(grad) and back,
_to_copy's from a real to a complex dtype real(grad) cast to the source dtype (the imaginary part's gradient
dropped), conj_physical's grad.conj_physical(), the gradient itself for a real tensor.

A cast to a complex dtype is spelled as cast_ops spells the real casts, a round trip back to the dtype under test
(`torch.view_as_real(x0.chalf()).to(x0.dtype)`), so that the ops after it run in the arithmetic the rounding model
describes; each part rounds as the real cast to the part's dtype does (c10::complex<c10::Half> converts a double
through float as c10::Half does, measured: finding double-to-complex-half-cast-rounded-twice).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from flint import arb

from oracles.table.cast_ops import DType, _round_trip
from oracles.table.shape_ops import NONE, _no_parameters, _op, _params, _spelling, _with
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["complex_cast"]  # the entries whose forward rounds (the others are index maps: copies)
# view_as_complex and complex take float16, float32 and float64 only (there is no complex bfloat16)
COMPLEX_PARTS = ("float64", "float32", "float16")


@dataclass(frozen=True)
class ComplexDType:
    """A complex cast's target, rendered as torch spells it (`torch.complex32`), and the dtype of its parts."""

    name: str
    part: str

    def __repr__(self) -> str:
        return f"torch.{self.name}"


TARGETS = (ComplexDType("complex128", "float64"), ComplexDType("complex64", "float32"),
           ComplexDType("complex32", "float16"))
METHODS = {"complex128": "cdouble", "complex64": "cfloat", "complex32": "chalf"}


def _pairs(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    """view_as_real of complex parts: the last dim holds each element's real and imaginary part."""
    return np.stack([real, imag], axis=-1)


def _zeros(shape, zero) -> np.ndarray:
    return np.full(shape, zero, dtype=object)


def _cast_sympy(arrays, p):
    x = arrays[0]
    return _pairs(x, _zeros(x.shape, sympy.Integer(0)))


def _cast_forward(F, arrays, p):
    """Each real part is the element cast to the part's dtype and back; the imaginary part is an exact 0."""
    x = arrays[0]
    target = DType(p["dtype"].part)
    real = np.empty(x.shape, dtype=object)
    for i in np.ndindex(*x.shape):
        real[i] = _round_trip(F, x[i], target)
    return _pairs(real, _zeros(x.shape, arb(0)))


def _cast_backward(F, arrays, out, grad, p):
    """The gradient of the real parts cast to the part's dtype (the backward of `.to(x0.dtype)`) and back (that
    of the cast to complex: real(grad) in the source dtype); the imaginary parts' gradient is dropped."""
    target = DType(p["dtype"].part)
    real = grad[..., 0]
    g = np.empty(real.shape, dtype=object)
    for i in np.ndindex(*real.shape):
        g[i] = _round_trip(F, real[i], target)
    return (g,)


def _to(x: torch.Tensor, target: ComplexDType) -> torch.Tensor:
    return x.to(getattr(torch, target.name))


_CAST_SPELLINGS = [
    _spelling("torch.view_as_real({0}.to({dtype})).to({0}.dtype)",
              lambda x, dtype: torch.view_as_real(_to(x, dtype)).to(x.dtype)),
    _spelling("torch.view_as_real({0}.to(dtype={dtype})).to({0}.dtype)",
              lambda x, dtype: torch.view_as_real(x.to(dtype=getattr(torch, dtype.name))).to(x.dtype)),
] + [
    _spelling(f"torch.view_as_real({{0}}.{method}()).to({{0}}.dtype)",
              lambda x, dtype, _m=method: torch.view_as_real(getattr(x, _m)()).to(x.dtype), _with(dtype=target))
    for target in TARGETS for method in [METHODS[target.name]]
]

TENSOR_OPS["complex_cast"] = TensorOp(
    "complex_cast", 1, tuple(_CAST_SPELLINGS), _cast_sympy, _cast_forward, _cast_backward,
    OptionSpace(functools.cache(lambda shapes: tuple(_params(dtype=t) for t in TARGETS))),
    lambda shapes, p: tuple(shapes[0]) + (2,), ("cdouble", "cfloat", "chalf"))


# ------------------------------------------------------------------ copies: complex, view_as_complex, conj_physical
_op("complex", lambda arrays, p, constant: _pairs(*arrays),
    [_spelling("torch.view_as_real(torch.complex({0}, {1}))", lambda a, b: torch.view_as_real(torch.complex(a, b)))],
    _no_parameters, ["complex"], arity=2, ranks=(1, 2), cpu_dtypes=COMPLEX_PARTS)


def _pairs_last(shape: tuple[int, ...]):
    """view_as_complex takes a tensor whose last dim holds pairs: the drawn shape with a last side of 2."""
    return [(shape[:-1] + (2,),)]


# view_as_complex needs the pairs adjacent in memory (last stride 1, the others even): drawn on fresh tensors only
_op("view_as_complex", lambda arrays, p, constant: arrays[0],
    [_spelling("torch.view_as_real(torch.view_as_complex({0}))",
               lambda x: torch.view_as_real(torch.view_as_complex(x)), needs_contiguous=True)],
    lambda shapes: NONE if shapes[0][-1] == 2 else (), ["view_as_complex"], ranks=(1, 2),
    operand_shapes=_pairs_last, cpu_dtypes=COMPLEX_PARTS)

# conj_physical of a real tensor is that tensor (torch returns it, or a copy in place)
_op("conj_physical", lambda arrays, p, constant: arrays[0],
    [_spelling("torch.conj_physical({0})", torch.conj_physical),
     _spelling("{0}.conj_physical()", torch.Tensor.conj_physical),
     _spelling("{0}.clone().conj_physical_()", lambda x: x.clone().conj_physical_())],
    _no_parameters, ["conj_physical"], ranks=(1, 2))
