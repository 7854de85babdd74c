"""fractional_max_pool2d and fractional_max_pool3d with their pooling regions given (`_random_samples`): max
pooling (oracles.table.max_pooling) over the windows torch derives from the samples.

Per pooled dim of input size n, kernel k, output size m and sample u (aten/src/ATen/native/FractionalMaxPool2d.cpp
generate_intervals): alpha = (n - k) / (m - 1), window i starts at int((i + u) alpha) - int(u alpha), the last at
n - k, each k long. torch computes alpha and the products in the input's dtype; for the listed sizes (sides up to
3, so m - 1 is 1 or 2) and samples (1/4, 1/2, 3/4) every one of those values is exact in every dtype, so the
windows are these exactly (measured for all four dtypes). `_random_samples` has shape (N, C, dims), its last
axis ordered (w, h[, t]): the pooled dims from the last.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import torch

from oracles.table.loss_ops import Labels
from oracles.table.max_pooling import _window_max_op
from oracles.table.shape_ops import _params
from oracles.table.tensor_formulas import Total
from oracles.table.tensor_ops import TENSOR_OPS, TSpelling

SAMPLES = (0.5, 0.25, 0.75)


def _starts(n: int, kernel: int, size: int, u: float) -> list[int]:
    if size == 1:
        return [n - kernel]
    alpha = Fraction(n - kernel, size - 1)
    return [math.floor((i + Fraction(u)) * alpha) - math.floor(Fraction(u) * alpha) for i in range(size - 1)] + [
        n - kernel]


def _index_map(dims: int):
    def index_map(arrays, p, constant):
        a = arrays[0]
        kernel, size, samples = p["kernel_size"], p["output_size"], p["_random_samples"].array
        out = np.empty(a.shape[:2] + (size,) * dims, dtype=object)
        for lead in np.ndindex(*a.shape[:2]):
            u = samples[lead][::-1]  # the samples run from the last dim
            starts = [_starts(n, kernel, size, u[d]) for d, n in enumerate(a.shape[2:])]
            for tail in np.ndindex(*(size,) * dims):
                spans = [range(starts[d][i], starts[d][i] + kernel) for d, i in enumerate(tail)]
                out[lead + tail] = Total(tuple((a[lead + inside], 1) for inside in itertools.product(*spans)))
        return out

    return index_map


def _options(dims: int):
    def options(shapes):
        shape = shapes[0]
        if len(shape) != dims + 2:
            return []
        sides = shape[2:]
        out = []
        for kernel, size in itertools.product((1, 2), (1, 2, 3)):
            if all(size + kernel - 1 < n for n in sides):  # torch requires it
                for k in range(len(SAMPLES)):
                    per_dim = [SAMPLES[(k + d) % len(SAMPLES)] for d in range(dims)]  # the dims' samples differ
                    samples = tuple(tuple(tuple(per_dim) for _ in range(shape[1])) for _ in range(shape[0]))
                    out.append(_params(kernel_size=kernel, output_size=size, _random_samples=Labels(samples)))
        return out

    return options


def _spelling(name: str) -> TSpelling:
    function = getattr(torch.nn.functional, name)

    def render(texts, p):
        return (f"torch.nn.functional.{name}({texts[0]}, {p['kernel_size']}, output_size={p['output_size']}, "
                f"_random_samples={texts[0]}.new_tensor({p['_random_samples']!r}))")

    def call(args, p):
        samples = args[0].new_tensor(p["_random_samples"].array.tolist())
        return function(args[0], p["kernel_size"], output_size=p["output_size"], _random_samples=samples)

    return TSpelling(render, call)


def _batched(dims: int):
    """The drawn shape as a batch of one: (C, H, W) for two pooled dims, (D, H, W) of one channel for three."""
    return lambda shape: [((1,) * (dims - 1) + shape,)]


for _dims in (2, 3):
    _name = f"fractional_max_pool{_dims}d"
    TENSOR_OPS[_name] = _window_max_op(_name, _index_map(_dims), [_spelling(_name)], _options(_dims),
                                       [f"nn.functional.{_name}"], (3,), _batched(_dims))
