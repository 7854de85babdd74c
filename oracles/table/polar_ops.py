"""polar(abs, angle) seen as real numbers: torch.view_as_real(torch.polar(x0.abs(), x1)), the last dim holding
abs cos(angle) and abs sin(angle). torch documents polar as undefined for a negative abs, so the spelling takes
x0.abs() (a kink at 0, where abs's backward gives 0).

torch: the kernel computes complex(abs * std::cos(angle), abs * std::sin(angle)); polar_backward(grad, result)
(FunctionsManual.cpp) gives abs real(conj(grad) * sgn(result)), sgn(z) = z / |z| (|z| by hypot, 0 at z = 0),
and angle real(conj(grad) * result * 1j) = -grad_re * result_im + grad_im * result_re. At abs = 0 sgn(result) is 0,
so torch's abs gradient is 0 where the exact one is grad_re cos(angle) + grad_im sin(angle) (finding
polar-abs-zero-gradient, pinned in tests/test_known_findings.py); with x0.abs() in front that point is abs's kink,
whose gradient 0 hides it here.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from oracles.numerics.rounding import Singular
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["polar"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
K_TRIG = 2  # std::cos, std::sin and std::hypot: within an ulp


def _sym(arrays, p):
    a, t = arrays
    out = np.empty(a.shape + (2,), dtype=object)
    for i in np.ndindex(*a.shape):
        out[i + (0,)], out[i + (1,)] = sympy.Abs(a[i]) * sympy.cos(t[i]), sympy.Abs(a[i]) * sympy.sin(t[i])
    return out


def _parts(F, magnitude, angle):
    return (formula.mul(F, magnitude, F.round(angle.cos(), K_TRIG)),
            formula.mul(F, magnitude, F.round(angle.sin(), K_TRIG)))


def _forward(F, arrays, p):
    a, t = arrays
    out = np.empty(a.shape + (2,), dtype=object)
    for i in np.ndindex(*a.shape):
        out[i + (0,)], out[i + (1,)] = _parts(F, abs(a[i]), t[i])
    return out


def _abs_sign(F, x) -> int:
    """sgn(x) in abs's backward: 0 at an exact 0."""
    return 0 if formula.is_exact_zero(x) else F.sign(x)


def _backward(F, arrays, out, grad, p):
    a, t = arrays
    to_a, to_t = np.empty(a.shape, dtype=object), np.empty(t.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        re, im = out[i + (0,)], out[i + (1,)]
        g_re, g_im = grad[i + (0,)], grad[i + (1,)]
        if formula.is_exact_zero(re) and formula.is_exact_zero(im):
            grad_abs = grad_angle = formula.ZERO
        else:
            size = F.round((re * re + im * im).sqrt(), K_TRIG)
            if size.contains(0):
                raise Singular("polar's result may be 0 within the rounding model (sgn's 0 / 0)")
            grad_abs = formula.sum_any(F, [formula.mul(F, g_re, F.div(re, size)),
                                           formula.mul(F, g_im, F.div(im, size))])
            grad_angle = formula.sum_any(F, [-formula.mul(F, g_re, im), formula.mul(F, g_im, re)])
        to_a[i] = formula.ZERO if _abs_sign(F, a[i]) == 0 else grad_abs * _abs_sign(F, a[i])
        to_t[i] = grad_angle
    return to_a, to_t


TENSOR_OPS["polar"] = TensorOp(
    "polar", 2, (_spelling("torch.view_as_real(torch.polar({0}.abs(), {1}))",
                           lambda a, t: torch.view_as_real(torch.polar(a.abs(), t))),),
    _sym, _forward, _backward, OptionSpace(lambda shapes: (_params(),)), lambda shapes, p: tuple(shapes[0]) + (2,),
    ("polar",), cpu_dtypes=("float64", "float32"))
