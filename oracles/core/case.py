"""A test case: an expression, its input tensors (shapes and exact values) and the dtype under test."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from oracles.core.expr import Expr, variables
from oracles.core.render import torch_source
from oracles.numerics.dtypes import FloatFormat, format_named


class Case:
    """What every kind of case shares: input tensors x0, x1, ... (`shapes`, exact row-major `values`, one
    `dtype`) and a torch program reading some of them (`used`, shown as Python `source`). Elementwise
    expressions (GradCase) and tensor programs (oracles.tensor.program.TensorCase) both derive from it, so
    the verdicts, the tallies and the failure reports read either."""

    shapes: tuple[tuple[int, ...], ...]
    values: tuple[tuple[float, ...], ...]
    dtype: str
    used: tuple[int, ...]
    source: str

    @property
    def format(self) -> FloatFormat:
        return format_named(self.dtype)

    def make_leaves(self, device: str = "cpu") -> list[torch.Tensor]:
        return [
            torch.tensor(vals, dtype=torch.float64)
            .reshape(shape)
            .to(device=device, dtype=self.format.torch_dtype)
            .requires_grad_()
            for shape, vals in zip(self.shapes, self.values)
        ]

    def input_literal(self, leaf: int, device: str = "cpu") -> str:
        """Python source building input `leaf` as `make_leaves` does (reproducers)."""
        shape, values = self.shapes[leaf], self.values[leaf]
        data = repr(values[0]) if not shape else "[" + ", ".join(map(repr, values)) + "]"
        reshape = f".reshape({shape})" if len(shape) > 1 else ""
        to = f"'{device}', torch.{self.dtype}" if device != "cpu" else f"torch.{self.dtype}"
        return f"torch.tensor({data}, dtype=torch.float64){reshape}.to({to}).requires_grad_()"

    def inputs_text(self) -> str:
        return ", ".join(f"x{i}: shape {shape} values {list(values)}"
                         for i, (shape, values) in enumerate(zip(self.shapes, self.values)))


@dataclass(frozen=True)
class GradCase(Case):
    """An elementwise expression of the op table over broadcastable inputs."""

    expr: Expr
    shapes: tuple[tuple[int, ...], ...]  # one per input x0, x1, ...; mutually broadcastable
    values: tuple[tuple[float, ...], ...]  # row-major exact values, each representable in `dtype`
    dtype: str

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
