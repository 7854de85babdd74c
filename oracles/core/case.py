"""A test case: an expression, its input tensors (shapes and exact values) and the dtype under test."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from oracles.core.expr import Expr, variables
from oracles.core.render import torch_source
from oracles.numerics.dtypes import FloatFormat, format_named


@dataclass(frozen=True)
class GradCase:
    expr: Expr
    shapes: tuple[tuple[int, ...], ...]  # one per input x0, x1, ...; mutually broadcastable
    values: tuple[tuple[float, ...], ...]  # row-major exact values, each representable in `dtype`
    dtype: str

    @property
    def format(self) -> FloatFormat:
        return format_named(self.dtype)

    @property
    def used(self) -> tuple[int, ...]:
        return variables(self.expr)

    @property
    def source(self) -> str:
        """The torch program as Python source (reports)."""
        return torch_source(self.expr)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(torch.broadcast_shapes(*(self.shapes[i] for i in self.used)))

    def make_leaves(self, device: str = "cpu") -> list[torch.Tensor]:
        return [
            torch.tensor(vals, dtype=torch.float64)
            .reshape(shape)
            .to(device=device, dtype=self.format.torch_dtype)
            .requires_grad_()
            for shape, vals in zip(self.shapes, self.values)
        ]

    def value_at(self, leaf: int, out_index: tuple[int, ...]) -> float:
        """Input `leaf`'s value at a point of the broadcast output."""
        return self.values[leaf][flat_index(self.shapes[leaf], broadcast_source(self.shapes[leaf], out_index))]


def broadcast_source(shape: tuple[int, ...], out_index: tuple[int, ...]) -> tuple[int, ...]:
    """The element of a tensor of `shape` that broadcasting reads at `out_index`."""
    tail = out_index[len(out_index) - len(shape):] if shape else ()
    return tuple(0 if size == 1 else i for size, i in zip(shape, tail))


def flat_index(shape: tuple[int, ...], index: tuple[int, ...]) -> int:
    flat = 0
    for size, i in zip(shape, index):
        flat = flat * size + i
    return flat


def all_indices(shape: tuple[int, ...]):
    return itertools.product(*(range(n) for n in shape))


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
