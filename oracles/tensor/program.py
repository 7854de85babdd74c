"""Tensor programs: elementwise expressions composed with ops whose Jacobian is not diagonal.

A program is a small frozen tree of three node kinds:
- `Input(i)`: the leaf tensor x_i;
- `Map(expr, args)`: an elementwise expression of the op table (oracles.core.expr) in which `Var(k)` stands for
  the k-th argument node, broadcast together (`torch.sin(x0) * x1`, `torch.exp(t)` of a reduction t);
- `Tensor(op, args, params, spelling)`: an op of the tensor-op table (oracles.table.tensor_ops): a reduction,
  cumulative op, softmax, matmul or a view, with the typed parameters of its kind
  (`ReductionParams(dim, keepdim, correction)`, `ScanParams(dim)`, a view's shape, dims or index).

As with expressions, the tree is rendered twice: the torch program with exactly the spellings drawn
(`x0.sum(1, keepdim=True)`, `torch.logsumexp(x0, dim=-1)`, `x0 @ x1`, `x0[[0, 0, 1]]`), and, per element,
the mathematics (oracles.tensor.oracle).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from oracles.core.case import Case
from oracles.core.expr import Expr, variables
from oracles.core.render import ATOM, TracedStep, _precedence, run_torch, torch_source, traced
from oracles.table.tensor_ops import TENSOR_OPS, OpParams


@dataclass(frozen=True)
class Input:
    index: int


@dataclass(frozen=True)
class Map:
    expr: Expr  # Var(k) is args[k]
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Tensor:
    op: str  # a key of TENSOR_OPS
    args: tuple[Node, ...]
    params: OpParams
    spelling: int = 0


Node = Input | Map | Tensor


def live_args(node: Map | Tensor) -> tuple[int, ...]:
    """The arguments the node reads: a Map's expression may leave some of its arguments out."""
    if isinstance(node, Map):
        return variables(node.expr)
    reads = TENSOR_OPS[node.op].reads
    return tuple(range(len(node.args))) if reads is None else reads(node.params)


def nodes(node: Node) -> Iterator[Node]:
    """Every node the program computes with, parents before children."""
    yield node
    if not isinstance(node, Input):
        for k in live_args(node):
            yield from nodes(node.args[k])


def inputs_used(node: Node) -> tuple[int, ...]:
    return tuple(sorted({n.index for n in nodes(node) if isinstance(n, Input)}))


def shape_of(node: Node, shapes: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    if isinstance(node, Input):
        return shapes[node.index]
    if isinstance(node, Map):  # torch broadcasts what the expression reads
        return tuple(torch.broadcast_shapes(*(shape_of(node.args[k], shapes) for k in live_args(node))))
    args = tuple(shape_of(a, shapes) for a in node.args)
    return TENSOR_OPS[node.op].out_shape(args, node.params)


# ------------------------------------------------------------------ torch
def _atomic(node: Node, text: str) -> bool:
    if isinstance(node, Input):
        return True
    if isinstance(node, Map):
        return _precedence(node.expr) == ATOM
    return TENSOR_OPS[node.op].spellings[node.spelling].atomic


def source(node: Node) -> str:
    """Python source of the program with exactly the drawn spellings."""
    if isinstance(node, Input):
        return f"x{node.index}"
    texts = []
    for arg in node.args:
        text = source(arg)
        texts.append(text if _atomic(arg, text) else f"({text})")
    if isinstance(node, Map):
        return torch_source(node.expr, names=texts)
    return TENSOR_OPS[node.op].spellings[node.spelling].render(texts, node.params)


def run_program(node: Node, leaves: list[torch.Tensor], overrides: Mapping | None = None,
                record: list[TracedStep] | None = None) -> torch.Tensor:
    """Execute the program; `overrides` maps an elementwise or tensor op name to a replacement (faults);
    `record` collects every op torch ran (those inside maps too), children before parents."""
    if isinstance(node, Input):
        return leaves[node.index]
    args = [run_program(arg, leaves, overrides, record) for arg in node.args]
    if isinstance(node, Map):
        return run_torch(node.expr, args, overrides, record)
    if overrides and node.op in overrides:
        out = overrides[node.op](args, node.params)
    else:
        out = TENSOR_OPS[node.op].spellings[node.spelling].call(args, node.params)
    if record is not None:
        record.append(traced(node, args, out))
    return out


@dataclass(frozen=True)
class TensorCase(Case):
    """A program, its inputs (shapes, exact row-major values) and the dtype; `upstream` is backward's
    `gradient=` (row-major over the output), or None for `y.sum().backward()`."""

    program: Node
    shapes: tuple[tuple[int, ...], ...]
    values: tuple[tuple[float, ...], ...]
    dtype: str
    upstream: tuple[float, ...] | None = None

    @property
    def used(self) -> tuple[int, ...]:
        return inputs_used(self.program)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return shape_of(self.program, self.shapes)

    @property
    def source(self) -> str:
        return source(self.program)
