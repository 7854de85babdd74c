"""Floats moved past their own rounding, for interval arithmetic in numpy (oracles.numerics.bounds,
oracles.numerics.long_double_erf): which floats hold the ends, and how far each kind of result moves outward."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

LD = np.longdouble


@dataclass(frozen=True)
class Precision:
    """The floats the ends are held in, and how far each kind of result is moved outward (relative, absolute)."""

    dtype: np.dtype
    arithmetic: np.floating  # +, -, *, /, sqrt: correctly rounded, so twice the unit roundoff is ample
    library: np.floating  # the C library's (or numpy's) functions of this type
    tiny: np.floating  # absolute slack for results in the subnormal range

    def outward_pads(self, relative, absolute) -> tuple[np.ndarray, np.ndarray]:
        return _pads(self.dtype, relative, absolute)


# float64 cases: ends in x87 long doubles (64-bit significands), functions from glibc's long double library
# (sinl, expl, ...: documented errors of a few ulps; 256 allowed)
LONG_DOUBLE = Precision(np.dtype(LD), LD(2.0**-63), LD(2.0**-56), np.ldexp(LD(1), -16000))
# float32, bfloat16 and float16 cases, whose model allows 2^-24 or more per operation: ends in doubles, with
# numpy's vectorized functions (documented within 4 ulps; 1024 allowed), several times faster
DOUBLE = Precision(np.dtype(np.float64), np.float64(2.0**-52), np.float64(2.0**-42), np.float64(2.0**-1060))
MATH_MODULE_PAD = 2.0**-48  # 32 ulps of a double, for math.erf / math.erfc (glibc: at most 2)
MATH_MODULE_TINY = 2.0**-1060
PRECISIONS = {p.dtype: p for p in (LONG_DOUBLE, DOUBLE)}


@functools.cache
def _pads(dtype: np.dtype, relative, absolute) -> tuple[np.ndarray, np.ndarray]:
    outward_signs = np.array([-1, 1, -1, 1], dtype=dtype).reshape(4, 1)  # a, c move down; b, d up
    return outward_signs * dtype.type(relative), outward_signs * dtype.type(absolute)


def outward(ends: np.ndarray, relative=None, absolute=None) -> np.ndarray:
    """Each end moved outward by `relative` of its size and by `absolute` (a number, or one per end and point;
    default: the rounding of arithmetic in the ends' precision): a and c down, b and d up."""
    precision = PRECISIONS[ends.dtype]
    relative = precision.arithmetic if relative is None else relative
    absolute = precision.tiny if absolute is None else absolute
    moved = np.abs(ends)
    if np.ndim(absolute) == 0:
        relative_pad, absolute_pad = precision.outward_pads(relative, absolute)
        moved *= relative_pad
        moved += absolute_pad
    else:
        moved *= relative
        moved += absolute
        moved *= _pads(ends.dtype, 1, 0)[0]
    moved += ends
    return moved


def up(x: np.ndarray) -> np.ndarray:
    """x, a computed result, moved up past its rounding."""
    precision = PRECISIONS[x.dtype]
    return x + np.abs(x) * precision.arithmetic + precision.tiny


def down(x: np.ndarray) -> np.ndarray:
    precision = PRECISIONS[x.dtype]
    return x - np.abs(x) * precision.arithmetic - precision.tiny
