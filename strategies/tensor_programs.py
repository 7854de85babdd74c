"""Tensor programs (oracles.tensor.program): elementwise compositions fed into a tensor op of the tensor-op
table, optionally followed by an elementwise composition of its result and a second tensor op.

Everything is valid by construction: shapes are drawn for the op (matmul's inner sizes agree), parameters
from the space the op's entry declares (strategies.tensor_params: views fit the shape, reductions get a dim
the tensor has), elementwise parts come from `compositions` (arguments inside each op's domain), and inputs
hold values exact in the dtype, with the simple values (0, ties) first so products with zeros and tied
maxima are drawn often.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

from hypothesis import strategies as st

from oracles.core.case import numel
from oracles.core.expr import renamed, variables
from oracles.numerics.dtypes import format_named
from oracles.table.tensor_ops import TENSOR_OPS, MatmulSpace, OptionSpace
from oracles.tensor.program import Input, Map, Node, Tensor, TensorCase, nodes, shape_of
from strategies.backward import SMOOTH_OPS, upstream_values
from strategies.cached import choice
from strategies.expressions import compositions
from strategies.matrices import matrix_values
from strategies.tensor_params import op_params
from strategies.tensor_whole_domain import ways, whole_range_values
from strategies.values import leaf_value_lists

MAX_SIDE = 3
SIDES = st.integers(1, MAX_SIDE)
MAX_SECOND_STAGE_SIZE = 36  # elements: kron's (3, 3) by (2, 2), the largest result of the other first stages
# The second stage: ops that take any tensor of rank >= 1 (matmul needs a partner; it is a first stage).
SECOND_STAGE = tuple(name for name, op in TENSOR_OPS.items()
                     if op.arity == 1 and not op.wrong_backward and not op.seeded and op.torch_func)


@functools.cache  # drawn once per example: the shape ops' option lists are long to key (strategies/cached.py)
def shapes_for(op_name: str) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Argument shapes for a first-stage op: matmul's (m, k) @ (k, n), k-vectors on either side; others one
    shape of a rank the entry takes (`ranks`) with sides 1..3, shared by all its arguments."""
    op = TENSOR_OPS[op_name]
    if isinstance(op.space, MatmulSpace):
        return st.tuples(SIDES, SIDES, SIDES, st.booleans(), st.booleans()).map(
            lambda d: ((d[0], d[1]) if d[3] else (d[1],), (d[1], d[2]) if d[4] else (d[1],)))
    if isinstance(op.space, OptionSpace):
        return choice(_shapes_with_options(op_name))
    return choice(op.ranks).flatmap(lambda rank: st.lists(SIDES, min_size=rank, max_size=rank)).map(
        lambda sides: (tuple(sides),) * op.arity)


@functools.cache
def _shapes_with_options(op_name: str) -> list[tuple[tuple[int, ...], ...]]:
    """The argument shapes (sides 1..3) for which a shape op has parameters (reflect padding needs a side
    longer than the padding), smallest first."""
    op = TENSOR_OPS[op_name]
    sides = range(1, MAX_SIDE + 1)
    candidates = [c for rank in op.ranks for shape in itertools.product(sides, repeat=rank)
                  for c in op.argument_shapes(shape)]
    return sorted((c for c in candidates if op.space.options(c)), key=lambda c: (math.prod(c[0]), len(c[0]), c))


@functools.cache  # listing a shape op's options is slow, and the same pairs recur for every tuple of names
def _takes(op_name: str, shape: tuple[int, ...]) -> bool:
    """Whether a one-argument op has parameters for an argument of this shape (a shape op's options may be
    none: fliplr of a vector) in every dtype, and a spelling that takes a tensor op's result (as_strided reads
    the storage: only a tensor of its own)."""
    op = TENSOR_OPS[op_name]
    return (op.cpu_dtypes is None and not all(s.needs_contiguous for s in op.spellings)
            and (not isinstance(op.space, OptionSpace) or bool(op.space.options((shape,)))))


@functools.cache
def _second_stages(names: tuple[str, ...], shape: tuple[int, ...]) -> list[str]:
    """The second-stage ops among `names` that take a result of `shape` (once per pair: every op's options
    were listed again on every draw, a tenth of a tensor-op test's time)."""
    allowed = set(names)
    return [n for n in SECOND_STAGE if n in allowed and _takes(n, shape)]


@st.composite
def _argument(draw, shape: tuple[int, ...], first_input: int, ops: Sequence[str], label: str):
    """An argument of the given shape: an input itself (most readable, and where zeros and ties stay exact),
    or an elementwise composition over one or two inputs (the second broadcast from a smaller shape)."""
    kind = draw(choice(["input", "map"]), label=f"{label}: kind")
    if kind == "input":
        return Input(first_input), [shape]
    n = draw(st.integers(1, 2), label=f"{label}: inputs")
    shapes = [shape] + ([draw(choice([shape, shape[-1:], (1,) * len(shape), ()]),
                               label=f"{label}: second input shape")] if n == 2 else [])
    expr = draw(compositions(n, max_depth=draw(st.integers(1, 2), label=f"{label}: depth"), ops=ops),
                label=f"{label}: expression")
    if n == 2 and 0 not in variables(expr):  # only the second input is read: it takes the argument's shape
        expr, n, shapes = renamed(expr, {1: 0}), 1, [shape]
    return Map(expr, tuple(Input(first_input + k) for k in range(n))), shapes


@st.composite
def _tensor_node(draw, op_name: str, args: tuple[Node, ...], arg_shapes, label: str) -> Tensor:
    op = TENSOR_OPS[op_name]
    params = draw(op_params(op, arg_shapes), label=f"{label}: parameters")
    # a tensor op's result may be a strided view, and elementwise ops keep their argument's strides
    fresh = not any(isinstance(n, Tensor) for a in args for n in nodes(a))
    spellings = [i for i in op.spellings_for(arg_shapes, params) if fresh or not op.spellings[i].needs_contiguous]
    spelling = draw(choice(spellings), label=f"{label}: spelling")
    return Tensor(op_name, args, params, spelling)


@functools.cache
def _every_dtype_ops() -> tuple[str, ...]:
    """The tensor ops a program may draw by default (listed once: it was listed anew on every draw)."""
    return tuple(
        name for name, op in TENSOR_OPS.items()  # avg_pool3d has no bfloat16 kernel; a known-wrong backward
        if op.cpu_dtypes is None and not op.wrong_backward  # would fail every program it is in; a seeded op's
        and not op.seeded  # noise is reproduced on the CPU, eagerly, only; jacrev runs the programs, and
        and op.torch_func)  # torch.func refuses an op without torch_func


@st.composite
def tensor_programs(draw, root: str | None = None, ops: Sequence[str] = SMOOTH_OPS, stages: int = 2,
                    tensor_ops: Sequence[str] | None = None, direct: bool = False):
    """(program, input shapes). `root`: the first stage's tensor op (else drawn from `tensor_ops`, default every op
    that runs in every dtype); `stages` = 2 allows an elementwise map and a second tensor op after it; `direct`:
    the first stage's arguments are inputs themselves (no elementwise composition before it)."""
    names = tuple(tensor_ops) if tensor_ops is not None else _every_dtype_ops()
    op_name = root or draw(choice(names), label="tensor op")
    arg_shapes = draw(shapes_for(op_name), label="argument shapes")
    args, shapes = [], []
    for k, shape in enumerate(arg_shapes):
        if direct or TENSOR_OPS[op_name].matrix_domains:  # the strategies draw its matrices: they are its arguments
            args.append(Input(len(shapes)))
            shapes.append(shape)
            continue
        arg, used = draw(_argument(shape, len(shapes), ops, f"argument {k}"), label=f"argument {k}")
        args.append(arg)
        shapes.extend(used)
    shapes = tuple(shapes)
    node: Node = draw(_tensor_node(op_name, tuple(args), tuple(arg_shapes), "first stage"), label="first stage")
    if stages >= 2:
        after = draw(choice(["none", "map", "map and op", "op"]), label="after the tensor op")
        if after.startswith("map"):
            expr = draw(compositions(1, max_depth=1, ops=ops), label="elementwise of the result")
            node = Map(expr, (node,))
        out = shape_of(node, shapes)
        # a second op on a large result (a padded convolution's) is left out: SymPy's Jacobian of a reduction
        # over all of it grows with the square of its size (std of 80 elements: two minutes)
        if after.endswith("op") and out and numel(out) <= MAX_SECOND_STAGE_SIZE:
            second = draw(choice(_second_stages(names, out) or ["sum"]), label="second op")
            node = draw(_tensor_node(second, (node,), (out,), "second stage"), label="second stage")
    return node, shapes


def _matrix_domains(program: Node) -> dict[int, str]:
    """The inputs that a linear-algebra op takes directly, and the matrices they must be (its `matrix_domains`)."""
    out = {}
    for node in nodes(program):
        if isinstance(node, Tensor) and TENSOR_OPS[node.op].matrix_domains:
            for arg, domain in zip(node.args, TENSOR_OPS[node.op].matrix_domains):
                if isinstance(arg, Input) and domain:
                    out[arg.index] = domain
    return out


@st.composite
def tensor_cases(draw, dtype: str, root: str | None = None, stages: int = 2, upstream: bool = True,
                 tensor_ops: Sequence[str] | None = None, whole_range: bool = False,
                 direct: bool = False) -> TensorCase:
    """A whole case: program, exact input values, and (when `upstream`, drawn or not) backward's gradient=.
    `whole_range`: the root op's arguments are the inputs, their values spread over the dtype's whole range
    (strategies/tensor_whole_domain.py); `direct`: the root op's arguments are the inputs, with ordinary values."""
    fmt = format_named(dtype)
    program, shapes = draw(tensor_programs(root, stages=stages, tensor_ops=tensor_ops, direct=whole_range or direct),
                           label="program")
    domains = _matrix_domains(program)
    if whole_range:
        way = ways(draw)
        values = tuple(tuple(draw(whole_range_values(fmt, numel(s), way, domains.get(i, ""), s, f"x{i}"),
                                  label=f"x{i} values")) for i, s in enumerate(shapes))
    else:
        values = tuple(tuple(draw(matrix_values(fmt, s, domains[i]) if domains.get(i) else
                                  leaf_value_lists(fmt, numel(s)), label=f"x{i} values")) for i, s in enumerate(shapes))
    gradient = None
    if upstream and draw(st.booleans(), label="explicit gradient="):
        gradient = draw(upstream_values(numel(shape_of(program, shapes))), label="gradient")
    return TensorCase(program, shapes, values, dtype, gradient)


# tangents that stay in a matrix domain's own set: a symmetric matrix moves symmetrically (eigh reads one
# triangle, and torch's rule differentiates through the symmetric part), a Cholesky factor within the lower
# triangle
_SYMMETRIC = ("symmetric_separated", "positive_definite")


def _shaped_like_domain(values: tuple[float, ...], shape: tuple[int, ...], domain: str) -> tuple[float, ...]:
    if domain not in _SYMMETRIC and domain != "cholesky_factor":
        return values
    n = shape[-1]
    out = list(values)
    for base in range(0, len(values), n * n):
        for i in range(n):
            for j in range(n):
                a, b = base + i * n + j, base + j * n + i
                if domain == "cholesky_factor":
                    out[a] = values[a] if j <= i else 0.0
                else:  # the mean of two dyadic tangents is exact
                    out[a] = (values[a] + values[b]) / 2
    return tuple(out)


@st.composite
def tangents_for(draw, case: TensorCase) -> dict[int, tuple[float, ...]]:
    """A tangent for every used input (forward mode's `t`), exact in every dtype, inside each matrix domain's set."""
    domains = _matrix_domains(case.program)
    return {i: _shaped_like_domain(draw(upstream_values(numel(case.shapes[i])), label=f"t for x{i}"),
                                   case.shapes[i], domains.get(i, "")) for i in case.used}
