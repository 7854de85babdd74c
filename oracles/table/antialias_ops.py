"""Antialiased bilinear resizing (_upsample_bilinear2d_aa; interpolate(mode='bilinear', antialias=True)) as a
contraction (oracles.table.contractions): each output element is a weighted sum of its input window, the weights a
product of one per spatial dim.

Per dim, after ATen's antialiasing kernels (UpSampleKernel.cpp, compute_index_ranges_weights): scale is
(in - 1)/(out - 1) with align_corners (0 for one output), else in/out; the support is the scale when
downsampling (scale >= 1), else 1; output i has centre scale (i + 1/2), its window runs from
int(centre - support + 1/2) (at least 0) to int(centre + support + 1/2) (at most in), and input j in it gets the
triangle filter max(0, 1 - |(j - centre + 1/2) / max(scale, 1)|), normalized by the window's total (checked
against torch's forward on unit inputs for every size pair up to 3 -> 6, both alignments). torch computes them in
its float type and applies the dims in turn, storing the first pass in the dtype: each weight is a `Computed`
constant within `K_WEIGHT` roundings of the window's extent, and the sum of products rounds every operation. The
CPU kernel has float64 and float32 only.
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

# the centre, the filter's argument and value, the window's total and the division, each relative to at most the
# window's extent, and the first pass's storage; a margin of two
K_WEIGHT = 12


def _weights(q: int, n_in: int, n_out: int, align: bool) -> list[tuple[int, object]]:
    """(input index, weight) of output q along one dim."""
    if align:
        scale = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
    else:
        scale = Fraction(n_in, n_out)
    support = max(scale, Fraction(1))
    centre = scale * (q + Fraction(1, 2))
    low = max(int(centre - support + Fraction(1, 2)), 0)
    high = min(int(centre + support + Fraction(1, 2)), n_in)
    raw = {j: max(Fraction(0), 1 - abs((j - centre + Fraction(1, 2)) / support)) for j in range(low, high)}
    total = sum(raw.values())
    # a window edge exactly at an integer: torch's rounded edge may take in one more input, whose filter value is
    # exactly 0 there (an exact zero term: the enclosure holds either window)
    for edge, outside in ((centre - support + Fraction(1, 2), low - 1), (centre + support + Fraction(1, 2), high)):
        if edge.denominator == 1 and 0 <= outside < n_in:
            raw.setdefault(outside, Fraction(0))
    extent = max(int(centre + support) + 2, 2)
    return [(j, Computed(sympy.Rational(w.numerator, w.denominator) / sympy.Rational(total.numerator,
                                                                                      total.denominator),
                         K_WEIGHT, extent)) for j, w in raw.items()]


def _aa_map(arrays, p):
    x = arrays[0]
    size = p["size"]
    per_dim = [[_weights(q, n, m, p["align_corners"]) for q in range(m)] for n, m in zip(x.shape[-2:], size)]
    out = np.empty(x.shape[:-2] + tuple(size), dtype=object)
    for lead in np.ndindex(*x.shape[:-2]):
        for q in np.ndindex(*size):
            total = 0
            for (i, wi), (j, wj) in itertools.product(per_dim[0][q[0]], per_dim[1][q[1]]):
                total = total + x[lead + (i, j)] * (wi * wj)
            out[lead + q] = total
    return out


def _sizes(n: int) -> list[int]:
    """Output lengths for an input of n: itself, one more, twice, one less, a single one."""
    return list(dict.fromkeys([n, n + 1, 2 * n] + ([n - 1] if n > 1 else []) + [1]))


def _torch_resizes_right(spatial: tuple[int, int], size: tuple[int, int]) -> bool:
    """torch's forward reads only the first row when the output is one column wide and its height neither 1 nor
    the input's (findings.toml: upsample-aa-one-column): those sizes are pinned by tests/test_antialias_ops.py,
    not drawn."""
    return not (size[1] == 1 and size[0] not in (1, spatial[0]))


def _options(shapes):
    spatial = shapes[0][-2:]
    out = [_params(size=size, align_corners=a) for size in itertools.product(*(_sizes(n) for n in spatial))
           if _torch_resizes_right(spatial, size) for a in (False, True)]
    return out[:24]  # the simplest first


_contraction(
    "upsample_bilinear2d_aa", _aa_map,
    [_spelling("torch._C._nn._upsample_bilinear2d_aa({0}, {size}, {align_corners})",
               lambda x, size, align_corners: torch._C._nn._upsample_bilinear2d_aa(x, list(size), align_corners)),
     _spelling("torch.nn.functional.interpolate({0}, size={size}, mode='bilinear', align_corners={align_corners}, "
               "antialias=True)",
               lambda x, size, align_corners: torch.nn.functional.interpolate(
                   x, size=size, mode="bilinear", align_corners=align_corners, antialias=True))],
    _options, ["_upsample_bilinear2d_aa"], arity=1, ranks=(3,), operand_shapes=lambda shape: [((1,) + shape,)],
    cpu_dtypes=("float64", "float32"))
