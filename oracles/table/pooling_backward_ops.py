"""max_pool2d_with_indices_backward(grad_output, self, kernel_size, stride, padding, dilation, ceil_mode, indices),
the aten op max pooling's backward calls, as an entry of its own: it adds each grad_output element into the
element of self's shape that `indices` names (flat within each (N, C) plane), so it is an index map (a scatter-add,
oracles.table.tensor_formulas.gathered). self gives the shape only: derivatives.yaml differentiates it as
zeros_like(self), and grad_output by max_pool_double_backward (a gather at the indices), which the index map's
backward is. The indices are max_pool2d_with_indices' own, of a few value patterns of self's shape (the maximum
of each window at its bottom right, at its top left, scattered), 2 x 2 windows at stride 1: windows overlap, so an
element can collect several gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from oracles.table.shape_ops import Indices, _op, _params, _spelling
from oracles.table.tensor_formulas import plus

KERNEL, STRIDE, PADDING, DILATION = [2, 2], [1, 1], [0, 0], [1, 1]


def _shapes(shape):
    """(grad_output, self) for a drawn (H, W): one sample and one channel, the windows' output (H - 1, W - 1)."""
    if len(shape) != 2 or min(shape) < 2:
        return []
    h, w = shape
    return [((1, 1, h - 1, w - 1), (1, 1, h, w))]


def _patterns(size: int) -> list[np.ndarray]:
    return [np.arange(size), np.arange(size)[::-1].copy(), np.random.default_rng(0).permutation(size)]


def _options(shapes):
    _, (n, c, h, w) = shapes
    options = []
    for pattern in _patterns(n * c * h * w):
        values = torch.tensor(pattern, dtype=torch.float64).reshape(n, c, h, w)
        _, indices = torch.nn.functional.max_pool2d_with_indices(values, KERNEL, STRIDE, PADDING, DILATION)
        options.append(_params(indices=Indices.of(indices.numpy())))
    return options


def _scatter_added(arrays, p, constant):
    grad, like = arrays
    width = like.shape[-1]
    out = np.full(like.shape, constant(0.0), dtype=object)
    indices = p["indices"].array
    for position in np.ndindex(*grad.shape):
        flat = int(indices[position])
        target = position[:2] + (flat // width, flat % width)
        out[target] = plus(out[target], grad[position])
    return out


_op("max_pool2d_with_indices_backward", _scatter_added,
    [_spelling(f"torch.ops.aten.max_pool2d_with_indices_backward({{0}}, {{1}}, {KERNEL}, {STRIDE}, {PADDING}, "
               f"{DILATION}, False, {{indices}})",
               lambda g, x, indices: torch.ops.aten.max_pool2d_with_indices_backward(
                   g, x, KERNEL, STRIDE, PADDING, DILATION, False, indices))],
    _options, ["max_pool2d_with_indices_backward"], arity=2, ranks=(2,), operand_shapes=_shapes)
