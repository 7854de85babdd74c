"""A tensor op's parameters, drawn from the parameter space its table entry declares as data
(oracles.table.tensor_ops: `ReductionSpace`, `ScanSpace`, ...), valid for the input shapes by construction:
a dim the tensor has, a reshape that keeps its size, a correction below the slice's length.
"""

from __future__ import annotations

import math
from functools import cache, singledispatch

from hypothesis import strategies as st

from oracles.table.tensor_formulas import slice_length
from oracles.table.tensor_ops import (
    ExpandSpace,
    IndexParams,
    IndexSpace,
    MatmulParams,
    MatmulSpace,
    OptionSpace,
    ReductionParams,
    ReductionSpace,
    ReshapeSpace,
    ScanParams,
    ScanSpace,
    ShapeParams,
    TensorOp,
    TransposeParams,
    TransposeSpace,
)
from strategies.cached import choice

Shapes = tuple[tuple[int, ...], ...]


def op_params(op: TensorOp, shapes: Shapes) -> st.SearchStrategy:
    """The parameters of `op` for arguments of these shapes."""
    return params_in(op.space, shapes)


@singledispatch
def params_in(space, shapes: Shapes) -> st.SearchStrategy:
    raise TypeError(f"no strategy for the parameter space {space!r}")


def _dims(shape, allow_none: bool):
    if not shape:
        return st.just(None) if allow_none else st.nothing()
    rank = len(shape)
    ints = st.integers(-rank, rank - 1)
    return st.one_of(st.just(None), ints) if allow_none else ints


@params_in.register
def _(space: ReductionSpace, shapes: Shapes):
    shape = shapes[0]

    def with_dim(dim):
        keepdim = st.booleans() if dim is not None or space.keepdim_without_dim else st.just(False)
        if not space.corrections:
            return st.builds(ReductionParams, dim=st.just(dim), keepdim=keepdim)
        # N - correction <= 0 is torch's division by zero (or a negative count): never drawn
        corrections = [c for c in space.corrections if slice_length(shape, dim) - c > 0]
        return st.builds(ReductionParams, dim=st.just(dim), keepdim=keepdim, correction=choice(corrections))

    return _dims(shape, space.none_dim).flatmap(with_dim)


@params_in.register
def _(space: ScanSpace, shapes: Shapes):
    return st.builds(ScanParams, dim=_dims(shapes[0], False))


@params_in.register
def _(space: MatmulSpace, shapes: Shapes):
    return st.just(MatmulParams())


def _factorizations(n: int) -> list[tuple[int, ...]]:
    out = [(n,), (1, n), (n, 1)]
    out += [(d, n // d) for d in range(2, n) if n % d == 0]
    return out


@params_in.register
def _(space: ReshapeSpace, shapes: Shapes):
    return choice(_factorizations(math.prod(shapes[0]))).map(ShapeParams)


@params_in.register
def _(space: TransposeSpace, shapes: Shapes):
    return choice(space.pairs if len(shapes[0]) >= 2 else [(0, 0)]).map(TransposeParams)


@params_in.register
def _(space: ExpandSpace, shapes: Shapes):
    shape = shapes[0]
    sizes = st.lists(choice(space.sizes), min_size=len(shape), max_size=len(shape))
    return st.tuples(choice(space.leading), sizes).map(
        lambda drawn: ShapeParams(drawn[0] + tuple(s if n == 1 else n for n, s in zip(shape, drawn[1]))))


@st.composite
def _index(draw, space: IndexSpace, shape: tuple[int, ...]):
    dim = draw(st.integers(0, len(shape) - 1), label="index dim")
    n = shape[dim]
    kind = draw(choice(space.kinds), label="index kind")
    if kind == "select":
        return IndexParams(("select", dim, draw(st.integers(-n, n - 1), label="index")))
    if kind == "slice":
        start = draw(choice([None, 0] + ([1] if n > 1 else [])), label="start")
        step = draw(choice(space.steps), label="step")
        return IndexParams(("slice", dim, start, None, step))
    # advanced indexing with repeats: its backward accumulates (index_put_ with accumulate=True)
    taken = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=space.max_taken), label="indices")
    return IndexParams(("take", dim, tuple(taken)))


@params_in.register
def _(space: IndexSpace, shapes: Shapes):
    return _index(space, shapes[0])


@params_in.register
@cache  # the options listed, and keyed for `choice`, once per shapes instead of on every draw
def _(space: OptionSpace, shapes: Shapes):
    return choice(space.options(shapes))
