"""Linear and cubic interpolation (nn.functional.interpolate's linear, bilinear, trilinear and bicubic modes,
upsample_bilinear) as contractions (oracles.table.contractions): each output element is a weighted sum of
its neighbours in the input, weights products of one per spatial dim.

Per dim, after ATen's upsampling kernels (UpSample.h): the source index of output q is
scale * q (align_corners) or scale * (q + 1/2) - 1/2 clamped at 0, scale (in - 1)/(out - 1) or in/out; its
floor i0 (at most in - 1) and the next index i1 (i0 again at the end) get the weights 1 - λ and λ, λ the
fractional part; an output as long as the input is a copy. torch computes scale, source index and λ in
its float type: each weight is a `Computed` constant within `K_WEIGHT` roundings of the source index's
magnitude. Where the exact source index is an integer k, torch's may fall an ulp below it, moving the
weight to index k - 1 (and λ near 1): the neighbours k - 1 and k + 1 are terms too, with exact weight 0,
so that the rounding model encloses either floor.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import sympy
import torch

from oracles.table.contraction_ops import _contraction
from oracles.table.contractions import Computed
from oracles.table.shape_ops import _params, _spelling

# scale (one rounding), scale * (q + 1/2) and the - 1/2 (two), 1 - λ (one): each relative to at most the
# source index's magnitude or 1
K_WEIGHT = 4


def _source(q: int, n_in: int, n_out: int, align_corners: bool) -> Fraction:
    if align_corners:
        return Fraction(0) if n_out == 1 else Fraction(n_in - 1, n_out - 1) * q
    return max(Fraction(n_in, n_out) * (2 * q + 1) / 2 - Fraction(1, 2), Fraction(0))


def _weights(q: int, n_in: int, n_out: int, align_corners: bool) -> dict[int, object]:
    """Input index -> the weight of output q's value along one dim."""
    if n_in == n_out:
        return {q: 1}
    src = _source(q, n_in, n_out, align_corners)
    i0 = min(int(src), n_in - 1)
    lam = min(max(src - i0, Fraction(0)), Fraction(1))
    i1 = i0 + (1 if i0 < n_in - 1 else 0)
    scale = max(int(src) + 1, 1)

    exact: dict[int, Fraction] = {i0: 1 - lam}
    exact[i1] = exact.get(i1, Fraction(0)) + lam
    if src.denominator == 1:  # an integer source index: torch's may lie on either side of it
        for index in (i0 - 1, i0 + 1):
            if 0 <= index < n_in:
                exact.setdefault(index, Fraction(0))
    return {index: Computed(sympy.Rational(w.numerator, w.denominator), K_WEIGHT, scale)
            for index, w in exact.items()}


# Bicubic: Keys' cubic convolution with A = -3/4 (ATen's get_cubic_upsample_coefficients), four taps around
# the source index, each clamped into the input; the coefficients are cubics of λ that torch evaluates in its
# float type: `K_CUBIC` roundings of twice the source index's magnitude enclose λ's error carried through
# them (their slope is below 2) and their own evaluation.
A = Fraction(-3, 4)
K_CUBIC = 16


def _near(x: Fraction) -> Fraction:
    return ((A + 2) * x - (A + 3)) * x * x + 1


def _far(x: Fraction) -> Fraction:
    return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A


def _cubic_weights(q: int, n_in: int, n_out: int, align_corners: bool) -> list[tuple[int, object]]:
    """(input index, weight) of output q's taps along one dim (an index repeats where taps clamp to it)."""
    if n_in == n_out:
        return [(q, 1)]
    if align_corners:
        src = Fraction(0) if n_out == 1 else Fraction(n_in - 1, n_out - 1) * q
    else:  # no clamp at 0 for the cubic mode
        src = Fraction(n_in, n_out) * (2 * q + 1) / 2 - Fraction(1, 2)
    floor = src.numerator // src.denominator
    i0 = min(floor, n_in - 1)
    lam = min(max(src - i0, Fraction(0)), Fraction(1))
    taps = [(i0 - 1, _far(lam + 1)), (i0, _near(lam)), (i0 + 1, _near(1 - lam)), (i0 + 2, _far(2 - lam))]
    if src.denominator == 1:  # torch's source index may fall just below the integer: one more tap each side
        taps = [(i0 - 2, Fraction(0))] + taps + [(i0 + 3, Fraction(0))]
    scale = 2 * max(abs(floor) + 1, 1)
    return [(min(max(i, 0), n_in - 1), Computed(sympy.Rational(w.numerator, w.denominator), K_CUBIC, scale))
            for i, w in taps]


def _interpolate_map(dims: int, cubic: bool = False):
    def interpolate(arrays, p):
        x = arrays[0]
        spatial = x.shape[-dims:]
        size = p["size"]
        weights = _cubic_weights if cubic else (lambda *a: list(_weights(*a).items()))
        per_dim = [[weights(q, n, m, p["align_corners"]) for q in range(m)] for n, m in zip(spatial, size)]
        out = np.empty(x.shape[:-dims] + tuple(size), dtype=object)
        for lead in np.ndindex(*x.shape[:-dims]):
            for q in np.ndindex(*size):
                total = 0
                for taps in itertools.product(*(per_dim[d][q[d]] for d in range(dims))):
                    weight = 1
                    for _, w in taps:
                        weight = weight * w
                    total = total + x[lead + tuple(i for i, _ in taps)] * weight
                out[lead + q] = total
        return out

    return interpolate


def _sizes(n: int) -> list[int]:
    """Output lengths for an input of n: itself (a copy), one more, twice, one less, a single one."""
    return list(dict.fromkeys([n, n + 1, 2 * n] + ([n - 1] if n > 1 else []) + [1]))


def _options(dims: int, align: tuple[bool, ...] = (False, True)):
    def options(shapes):
        spatial = shapes[0][-dims:]
        out = []
        for size in itertools.product(*(_sizes(n) for n in spatial)):
            out += [_params(size=size, align_corners=a) for a in align]
        return out[:24]  # the simplest first: the first lengths of every dim

    return options


_F = torch.nn.functional
for _mode, _dims in (("linear", 1), ("bilinear", 2), ("trilinear", 3)):
    _contraction(
        f"interpolate_{_mode}", _interpolate_map(_dims),
        [_spelling(f"torch.nn.functional.interpolate({{0}}, size={{size}}, mode='{_mode}', "
                   "align_corners={align_corners})",
                   lambda x, size, align_corners, _m=_mode: _F.interpolate(x, size=size, mode=_m,
                                                                           align_corners=align_corners))],
        _options(_dims), [f"nn.functional.interpolate[{_mode}]"], arity=1, ranks=(min(_dims + 1, 3),),
        operand_shapes=(lambda shape, _d=_dims: [((1,) * (_d + 2 - len(shape)) + shape,)]))

_contraction(
    "upsample_bilinear", _interpolate_map(2),
    [_spelling("torch.nn.functional.upsample_bilinear({0}, size={size})",
               lambda x, size, align_corners: _F.upsample_bilinear(x, size=size))],
    _options(2, align=(True,)), ["nn.functional.upsample_bilinear"], arity=1, ranks=(3,),
    operand_shapes=lambda shape: [((1,) + shape,)])

_contraction(
    "interpolate_bicubic", _interpolate_map(2, cubic=True),
    [_spelling("torch.nn.functional.interpolate({0}, size={size}, mode='bicubic', align_corners={align_corners})",
               lambda x, size, align_corners: _F.interpolate(x, size=size, mode="bicubic",
                                                             align_corners=align_corners))],
    _options(2), ["nn.functional.interpolate[bicubic]"], arity=1, ranks=(3,),
    operand_shapes=lambda shape: [((1,) + shape,)])
