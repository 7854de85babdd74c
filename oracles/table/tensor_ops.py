"""The tensor-op table: ops whose Jacobian is not diagonal, one entry each (issue 6, part 3).

An entry says, like an entry of oracles.table.ops:
- how torch users write it (`spellings`: source text and the call, from the op's parameters);
- what it is mathematically, per element (`sympy`: numpy object arrays of SymPy expressions in, out), from
  which SymPy derives the exact Jacobian for the shape at hand (oracles.tensor.oracle);
- how torch computes it and its backward (`forward`, `backward`: numpy object arrays of balls, every float
  operation rounded by the `RoundingModel`), after torch's formulas (tools/autograd/derivatives.yaml and
  FunctionsManual.cpp, cited per op in oracles.table.tensor_formulas, where these three are written);
- which parameters it takes for a given input shape (`params`: a Hypothesis strategy, valid by construction).
Views (transpose, reshape, expand, indexing) copy elements; one entry gives their index map, from which the
forward (a copy), the backward (a scatter-add: repeated indices and expanded dims sum) and the SymPy side
all follow.

Adding an op is one entry in `TENSOR_OPS` below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

from oracles.table import tensor_formulas as formula
from strategies.cached import choice


@dataclass(frozen=True)
class Params:
    """An op's parameters. `dim` None reduces over everything; `index` is a view's index spec."""

    dim: int | None = None
    keepdim: bool = False
    shape: tuple[int, ...] | None = None
    dims: tuple[int, int] | None = None  # transpose
    index: tuple | None = None  # ("select", dim, i) | ("slice", dim, start, stop, step) | ("take", dim, idx)


@dataclass(frozen=True)
class TSpelling:
    render: Callable[[Sequence[str], Params], str]  # argument source texts (atomic) -> source
    call: Callable[[Sequence[torch.Tensor], Params], torch.Tensor]
    applies: Callable[[tuple[tuple[int, ...], ...], Params], bool] = lambda shapes, p: True
    atomic: bool = True  # False for an operator spelling (`a @ b`), which needs parentheses inside others


@dataclass(frozen=True)
class TensorOp:
    name: str
    arity: int
    spellings: tuple[TSpelling, ...]
    sympy: Callable  # (arrays of SymPy, Params) -> array of SymPy
    forward: Callable  # (RoundingModel, arrays of balls, Params) -> array of balls
    backward: Callable  # (RoundingModel, arrays of balls, output balls, grad balls, Params) -> grads per argument
    params: Callable  # (input shapes) -> strategy of Params
    ties: str = ""  # torch's rule where the op is not differentiable (documented in the generated table)
    zero_rule: str = ""

    def out_shape(self, shapes: tuple[tuple[int, ...], ...], p: Params) -> tuple[int, ...]:
        placeholders = [np.zeros(s, dtype=object) for s in shapes]
        return tuple(np.asarray(self.sympy(placeholders, p), dtype=object).shape)

    def spellings_for(self, shapes, p: Params) -> list[int]:
        return [i for i, s in enumerate(self.spellings) if s.applies(shapes, p)]


def _numpy_index(spec: tuple):
    kind, dim = spec[0], spec[1]
    if kind == "select":
        item = spec[2]
    elif kind == "slice":
        item = slice(*spec[2:])
    else:
        item = list(spec[2])
    return (slice(None),) * dim + (item,)


def _index_text(spec: tuple) -> str:
    kind, dim = spec[0], spec[1]
    if kind == "select":
        item = str(spec[2])
    elif kind == "slice":
        start, stop, step = spec[2:]
        item = f"{'' if start is None else start}:{'' if stop is None else stop}" + ("" if step is None else f":{step}")
    else:
        item = "[" + ", ".join(map(str, spec[2])) + "]"
    return ", ".join([":"] * dim + [item])


def _expand(a, p):
    return np.broadcast_to(a, p.shape)


# ------------------------------------------------------------------ parameter strategies
def _dims(shape, allow_none: bool):
    if not shape:
        return st.just(None) if allow_none else st.nothing()
    rank = len(shape)
    ints = st.integers(-rank, rank - 1)
    return st.one_of(st.just(None), ints) if allow_none else ints


def reduce_params(allow_none: bool = True, keepdim_without_dim: bool = True):
    """dim (None: everything, where the op allows it) and keepdim; `keepdim_without_dim` False where torch
    has no full reduction with keepdim (prod)."""
    def strategy(shapes):
        return _dims(shapes[0], allow_none).flatmap(
            lambda dim: st.builds(Params, dim=st.just(dim),
                                  keepdim=st.booleans() if dim is not None or keepdim_without_dim else st.just(False)))
    return strategy


def dim_params(shapes):
    return st.builds(Params, dim=_dims(shapes[0], False))


def _factorizations(n: int) -> list[tuple[int, ...]]:
    out = [(n,), (1, n), (n, 1)]
    out += [(d, n // d) for d in range(2, n) if n % d == 0]
    return out


def reshape_params(shapes):
    n = math.prod(shapes[0])
    return choice(_factorizations(n)).map(lambda s: Params(shape=s))


def transpose_params(shapes):
    rank = len(shapes[0])
    return choice([(0, 1), (1, 0), (-1, -2)] if rank >= 2 else [(0, 0)]).map(lambda d: Params(dims=d))


def expand_params(shapes):
    shape = shapes[0]
    return st.tuples(choice([(), (2,)]), st.lists(choice([2, 3]), min_size=len(shape),
                                                          max_size=len(shape))).map(
        lambda lead_sizes: Params(shape=lead_sizes[0] + tuple(s if n == 1 else n for n, s in
                                                               zip(shape, lead_sizes[1]))))


@st.composite
def _index_spec(draw, shapes):
    shape = shapes[0]
    dim = draw(st.integers(0, len(shape) - 1), label="index dim")
    n = shape[dim]
    kind = draw(choice(["take", "select", "slice"]), label="index kind")
    if kind == "select":
        return Params(index=("select", dim, draw(st.integers(-n, n - 1), label="index")))
    if kind == "slice":
        start = draw(choice([None, 0] + ([1] if n > 1 else [])), label="start")
        step = draw(choice([None, 2]), label="step")
        return Params(index=("slice", dim, start, None, step))
    # advanced indexing with repeats: its backward accumulates (index_put_ with accumulate=True)
    idx = tuple(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4), label="indices"))
    return Params(index=("take", dim, idx))


def index_params(shapes):
    return _index_spec(shapes)


# ------------------------------------------------------------------ spellings
def _keep(p: Params) -> str:
    return f", keepdim={p.keepdim}" if p.keepdim else ""


def _reduce_spellings(name: str, function, method_name: str, dim_required: bool = False, none_dim: bool = True):
    """torch.<name>(x, dim=d, keepdim=k) (`none_dim`: d may be None) and x.<name>(d, keepdim=k); without a
    dim, torch.<name>(x), x.<name>()."""
    method = getattr(torch.Tensor, method_name)

    def with_dim(p):
        return p.dim is not None

    def function_applies(s, p):
        return p.dim is not None or none_dim

    with_dims = (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, dim={p.dim}{_keep(p)})",
                  lambda a, p: function(a[0], dim=p.dim, keepdim=p.keepdim), function_applies),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}({p.dim}{_keep(p)})",
                  lambda a, p: method(a[0], p.dim, keepdim=p.keepdim), lambda s, p: with_dim(p)),
    )
    if dim_required:
        return with_dims

    def everything(s, p):
        return p.dim is None and not p.keepdim

    return with_dims + (
        TSpelling(lambda a, p: f"torch.{name}({a[0]})", lambda a, p: function(a[0]), everything),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}()", lambda a, p: method(a[0]), everything),
    )


def _dim_spellings(name: str, functions: Sequence[tuple[str, Callable]]):
    out = [TSpelling(lambda a, p, text=text: f"{text}({a[0]}, dim={p.dim})",
                     lambda a, p, f=f: f(a[0], dim=p.dim)) for text, f in functions]
    method = getattr(torch.Tensor, name)
    out.append(TSpelling(lambda a, p: f"{a[0]}.{name}({p.dim})", lambda a, p: method(a[0], p.dim)))
    return tuple(out)


def _norm_spellings():
    def with_dim(p):
        return p.dim is not None

    return (
        TSpelling(lambda a, p: f"torch.linalg.vector_norm({a[0]}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.linalg.vector_norm(a[0], dim=p.dim, keepdim=p.keepdim)),
        TSpelling(lambda a, p: f"{a[0]}.norm(dim={p.dim}{_keep(p)})",
                  lambda a, p: a[0].norm(dim=p.dim, keepdim=p.keepdim), lambda s, p: with_dim(p)),
        TSpelling(lambda a, p: f"torch.norm({a[0]})", lambda a, p: torch.norm(a[0]),
                  lambda s, p: p.dim is None and not p.keepdim),
    )


def _is_2d(shapes, p):
    return all(len(s) == 2 for s in shapes)


_matmul_spellings = (
    TSpelling(lambda a, p: f"torch.matmul({a[0]}, {a[1]})", lambda a, p: torch.matmul(a[0], a[1])),
    TSpelling(lambda a, p: f"{a[0]} @ {a[1]}", lambda a, p: a[0] @ a[1], atomic=False),
    TSpelling(lambda a, p: f"{a[0]}.mm({a[1]})", lambda a, p: a[0].mm(a[1]), _is_2d),
    TSpelling(lambda a, p: f"torch.mv({a[0]}, {a[1]})", lambda a, p: torch.mv(a[0], a[1]),
              lambda s, p: len(s[0]) == 2 and len(s[1]) == 1),
    TSpelling(lambda a, p: f"torch.dot({a[0]}, {a[1]})", lambda a, p: torch.dot(a[0], a[1]),
              lambda s, p: len(s[0]) == 1 and len(s[1]) == 1),
)


def _t_applies(shapes, p):
    return len(shapes[0]) == 2 and p.dims in ((0, 1), (1, 0))


_transpose_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.transpose({p.dims[0]}, {p.dims[1]})",
              lambda a, p: a[0].transpose(*p.dims)),
    TSpelling(lambda a, p: f"torch.transpose({a[0]}, {p.dims[0]}, {p.dims[1]})",
              lambda a, p: torch.transpose(a[0], *p.dims)),
    TSpelling(lambda a, p: f"{a[0]}.T", lambda a, p: a[0].T, _t_applies),
)

_reshape_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.reshape({p.shape})", lambda a, p: a[0].reshape(p.shape)),
    TSpelling(lambda a, p: f"torch.reshape({a[0]}, {p.shape})", lambda a, p: torch.reshape(a[0], p.shape)),
    TSpelling(lambda a, p: f"{a[0]}.flatten()", lambda a, p: a[0].flatten(), lambda s, p: len(p.shape) == 1),
)

_expand_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.expand({p.shape})", lambda a, p: a[0].expand(p.shape)),
    TSpelling(lambda a, p: f"torch.broadcast_to({a[0]}, {p.shape})", lambda a, p: torch.broadcast_to(a[0], p.shape)),
)

_index_spellings = (
    TSpelling(lambda a, p: f"{a[0]}[{_index_text(p.index)}]", lambda a, p: a[0][_numpy_index(p.index)]),
)


# ------------------------------------------------------------------ the table
def _entry(name, arity, spellings, sympy_fn, forward, backward, params, **kw):
    return TensorOp(name, arity, tuple(spellings), sympy_fn, forward, backward, params, **kw)


def _transpose(a, p):
    return np.swapaxes(a, *p.dims)


_VIEWS = {
    "transpose": (formula.view(_transpose), _transpose_spellings, transpose_params),
    "reshape": (formula.view(lambda a, p: a.reshape(p.shape)), _reshape_spellings, reshape_params),
    "expand": (formula.view(_expand), _expand_spellings, expand_params),
    "index": (formula.view(lambda a, p: a[_numpy_index(p.index)]), _index_spellings, index_params),
}

_F = torch.nn.functional

TENSOR_OPS: dict[str, TensorOp] = {
    op.name: op for op in [
        _entry("sum", 1, _reduce_spellings("sum", torch.sum, "sum"), *formula.SUM, reduce_params()),
        _entry("mean", 1, _reduce_spellings("mean", torch.mean, "mean"), *formula.MEAN, reduce_params()),
        _entry("prod", 1, _reduce_spellings("prod", torch.prod, "prod", none_dim=False), *formula.PROD,
               reduce_params(keepdim_without_dim=False),
               zero_rule="the product of the other factors (prod_safe_zeros_backward)"),
        _entry("amax", 1, _reduce_spellings("amax", torch.amax, "amax"), *formula.AMAX, reduce_params(),
               ties="ties share the gradient evenly (the minimum-norm subgradient)"),
        _entry("logsumexp", 1, _reduce_spellings("logsumexp", torch.logsumexp, "logsumexp", dim_required=True,
                                                  none_dim=False), *formula.LOGSUMEXP, reduce_params(False)),
        _entry("norm", 1, _norm_spellings(), *formula.NORM, reduce_params(),
               ties="at a zero vector the gradient is 0 (the minimum-norm subgradient)"),
        _entry("cumsum", 1, _dim_spellings("cumsum", [("torch.cumsum", torch.cumsum)]), *formula.CUMSUM, dim_params),
        _entry("cumprod", 1, _dim_spellings("cumprod", [("torch.cumprod", torch.cumprod)]), *formula.CUMPROD,
               dim_params, zero_rule="cumprod_backward's first-zero formula"),
        _entry("softmax", 1, _dim_spellings("softmax", [("torch.softmax", torch.softmax),
                                                        ("torch.nn.functional.softmax", _F.softmax)]),
               *formula.SOFTMAX, dim_params),
        _entry("log_softmax", 1, _dim_spellings("log_softmax", [("torch.log_softmax", torch.log_softmax),
                                                                ("torch.nn.functional.log_softmax", _F.log_softmax)]),
               *formula.LOG_SOFTMAX, dim_params),
        _entry("matmul", 2, _matmul_spellings, *formula.MATMUL, lambda shapes: st.just(Params())),
        *(_entry(name, 1, spellings, *functions, params) for name, (functions, spellings, params) in _VIEWS.items()),
    ]
}

REDUCTIONS = ("sum", "mean", "prod", "amax", "logsumexp", "norm")
DIMWISE = ("cumsum", "cumprod", "softmax", "log_softmax")
VIEWS = tuple(_VIEWS)
