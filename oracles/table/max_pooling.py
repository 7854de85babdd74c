"""Max pooling, one entry per op (max_pool1d/2d/3d, adaptive_max_pool1d/2d/3d): selection ops
(oracles.table.selection_ops) over the windows of average pooling (oracles.table.shape_ops), whose window
maps, parameter lists and input shapes they share.

Each output element is the largest element of its window: SymPy's Max of the window, torch's exact copy of
the chosen element, and its backward (max_pool's with-indices backward) adds each output's gradient into the
index the forward returned, so an element that is the maximum of overlapping windows collects them all. At
a tie for a window's maximum that index is the first of the tied elements in the kernel's scan of the window
(`TieRule.KERNEL_FIRST`: its `val > maxval` in a loop over the window in row-major order), which torch does not
document; tests/test_selection_ops.py pins it against the indices torch returns.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from oracles.table.ops import BlindSpot
from oracles.table.selection_ops import TieRule, chosen, order_statistic
from oracles.table.shape_ops import (
    _adaptive_map,
    _adaptive_options,
    _avg_pool_map,
    _avg_pool_options,
    _batched,
    _spelling,
)
from oracles.table.tensor_formulas import ZERO, structure, sum_any, sym_max
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp


def _windows(index_map: Callable, shape: tuple[int, ...], p) -> np.ndarray:
    """Per output element the row-major positions of its window's elements (average pooling's terms)."""
    layout = structure(index_map, (shape,), p)
    out = np.empty(layout.shape, dtype=object)
    for o in np.ndindex(*layout.shape):
        out[o] = [element for element, _ in layout[o].terms]
    return out


def _window_max_op(name: str, index_map: Callable, spellings, options: Callable, opinfo, ranks, operand_shapes):
    def per_window(arrays, p, pick):
        flat = arrays[0].reshape(-1)
        windows = _windows(index_map, arrays[0].shape, p)
        out = np.empty(windows.shape, dtype=object)
        for o in np.ndindex(*windows.shape):
            out[o] = pick([flat[e] for e in windows[o]])
        return out

    def math_(arrays, p):
        return per_window(arrays, p, sym_max)

    def forward(F, arrays, p):
        return per_window(arrays, p, lambda window: order_statistic(window, len(window) - 1)[0])

    def routed(a, grad, p, add) -> np.ndarray:
        """Each window's gradient into its chosen element, the gradients an element collects added by `add`."""
        windows = _windows(index_map, a.shape, p)
        collected: list[list] = [[] for _ in range(a.size)]
        for o in np.ndindex(*windows.shape):
            window = windows[o]
            [(i, _)] = chosen([a.reshape(-1)[e] for e in window], len(window) - 1, TieRule.KERNEL_FIRST)
            collected[window[i]].append(grad[o])
        result = np.empty(a.size, dtype=object)
        for e, parts in enumerate(collected):
            result[e] = add(parts)
        return result.reshape(a.shape)

    def backward(F, arrays, out, grad, p):
        return (routed(arrays[0], grad, p, lambda parts: sum_any(F, parts)),)

    def subgradient_vjp(arrays, adjoint, p):  # exact values: where a window's maximum is tied, the tie rule
        return [routed(arrays[0], adjoint, p, lambda parts: sum(parts, ZERO))]

    first_ranks = set(ranks) if operand_shapes is None else {
        len(shapes[0]) for r in ranks for side in (1, 2, 3) for shapes in operand_shapes((side,) * r)}

    @functools.cache
    def listed(shapes):
        return tuple(options(shapes)) if len(shapes[0]) in first_ranks else ()

    return TensorOp(name, 1, tuple(spellings), math_, forward, backward, OptionSpace(listed),
                    lambda shapes, p: _windows(index_map, shapes[0], p).shape, tuple(opinfo), ranks=ranks,
                    operand_shapes=operand_shapes, ties=TieRule.KERNEL_FIRST.value, pinned_as=(name,),
                    subgradient_vjp=subgradient_vjp)


def _smallest_windows_first(pooled: int):
    """adaptive pooling's output sizes, the largest first: the smallest windows (of one element, a copy) are
    the simplest."""
    options = _adaptive_options(pooled)

    def ordered(shapes):
        return sorted(options(shapes), key=lambda p: -math.prod(np.atleast_1d(p["output_size"])))

    return ordered


_F = torch.nn.functional
for _d, _ranks, _shapes in ((1, (2, 3), None), (2, (3,), None), (3, (3,), _batched)):
    _name, _adaptive_name = f"max_pool{_d}d", f"adaptive_max_pool{_d}d"
    for _entry in (
        _window_max_op(_name, _avg_pool_map(_d), [
            _spelling(f"torch.nn.functional.{_name}({{0}}, {{kernel_size}}, stride={{stride}})",
                      lambda x, kernel_size, stride, _n=_name: getattr(_F, _n)(x, kernel_size, stride=stride))],
            _avg_pool_options(_d), [f"nn.functional.{_name}"], _ranks, _shapes),
        _window_max_op(_adaptive_name, _adaptive_map(_d), [
            _spelling(f"torch.nn.functional.{_adaptive_name}({{0}}, {{output_size}})",
                      lambda x, output_size, _n=_adaptive_name: getattr(_F, _n)(x, output_size))],
            _smallest_windows_first(_d), [f"nn.functional.{_adaptive_name}"], _ranks, _shapes),
    ):
        TENSOR_OPS[_entry.name] = _entry

# bfloat16 holds 8 bits of a value: in a 3-d window of up to 8 elements the random programs' values tie often,
# and a tie within the model is undecided. Measured in the ci profile: 44 of 80 elements singular or too wide
# (53% averaged over the distinct programs).
TENSOR_OPS["adaptive_max_pool3d"] = dataclasses.replace(TENSOR_OPS["adaptive_max_pool3d"], blind_spots=(
    BlindSpot("test_tensor_op_gradient", "bfloat16", "ties among bfloat16 values in the 3-d pooling windows"),))
# The same in 2-d windows of up to 4 elements: measured 38 of 75 elements unverified, 37 of them singular at ties
# (53% averaged over the distinct programs; float32 72% of elements, but below half over its programs).
TENSOR_OPS["adaptive_max_pool2d"] = dataclasses.replace(TENSOR_OPS["adaptive_max_pool2d"], blind_spots=(
    BlindSpot("test_tensor_op_gradient", "bfloat16", "ties among bfloat16 values in the 2-d pooling windows"),))
