"""The tensor-op table: ops whose Jacobian is not diagonal, one entry each.

An entry says, like an entry of oracles.table.ops:
- how torch users write it (`spellings`: source text and the call, both from the op's parameters; a
  spelling that leaves a parameter out applies only where that parameter has torch's default);
- what it is mathematically (`sympy`: numpy object arrays of SymPy expressions in, out), from which SymPy
  derives the exact Jacobian for the shape at hand (oracles.tensor.oracle);
- how torch computes it and its backward (`forward`, `backward`: numpy object arrays of balls, every float
  operation rounded by the `RoundingModel`), after torch's formulas (tools/autograd/derivatives.yaml and
  FunctionsManual.cpp, cited per op in oracles.table.tensor_formulas, where they are written per slice);
- which parameters it takes (`space`: plain data, from which strategies/tensor_params.py draws typed
  parameters valid by construction) and its output shape (`shape`);
- which torch OpInfos (`opinfo`, names of op_db) its spellings exercise.
The kind of op fixes the parameters' type and lifts per-slice formulas to whole tensors: `_reduction`
(`ReductionParams`: dim, keepdim, correction), `_along_dim` (`ScanParams`: dim), `_view` (the index map of
a copy: forward, scatter-add backward and SymPy side all follow from it) and matmul (`MatmulParams`).

Adding a reduction is one `_reduction(...)` entry in `TENSOR_OPS` below, with its `SliceFormulas`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from oracles.table import contractions
from oracles.table import tensor_formulas as formula
from oracles.table.tensor_formulas import SliceFormulas

DEFAULT_CORRECTION = 1  # torch.var and torch.std without `correction=`: Bessel's correction


# ------------------------------------------------------------------ parameters, one type per kind of op
@dataclass(frozen=True)
class ReductionParams:
    """`dim` None reduces over everything; `correction` (var, std: the divisor is N - correction) is None
    for the reductions that take none."""

    dim: int | None = None
    keepdim: bool = False
    correction: int | None = None


@dataclass(frozen=True)
class ScanParams:
    """cumsum, cumprod, softmax, log_softmax: the one dim they run along."""

    dim: int


@dataclass(frozen=True)
class MatmulParams:
    pass


@dataclass(frozen=True)
class ShapeParams:
    shape: tuple[int, ...]  # reshape's target, or expand's


@dataclass(frozen=True)
class TransposeParams:
    dims: tuple[int, int]


@dataclass(frozen=True)
class IndexParams:
    index: tuple  # ("select", dim, i) | ("slice", dim, start, stop, step) | ("take", dim, indices)


@dataclass(frozen=True)
class CallParams:
    """A shape op's parameters by name, as its spellings write them (oracles.table.shape_ops): dims, sizes,
    index tensors (`Indices`), masks (`Mask`), fill values. Hashable, so exact Jacobians cache per parameters."""

    items: tuple[tuple[str, object], ...] = ()

    def __getitem__(self, name: str):
        return dict(self.items)[name]

    def get(self, name: str, default=None):
        return dict(self.items).get(name, default)


OpParams = ReductionParams | ScanParams | MatmulParams | ShapeParams | TransposeParams | IndexParams | CallParams


# ------------------------------------------------------------------ parameter spaces: data, no strategies
@dataclass(frozen=True)
class ReductionSpace:
    """dim: any dim of the input, or None (every element) where `none_dim`; keepdim either way, but not
    with dim None where `keepdim_without_dim` is False (torch.prod has no such overload); `corrections`:
    the values of `correction` the op takes (empty: it takes none), each drawn only where N - correction > 0."""

    none_dim: bool = True
    keepdim_without_dim: bool = True
    corrections: tuple[int, ...] = ()


@dataclass(frozen=True)
class ScanSpace:
    """Any dim of the input."""


@dataclass(frozen=True)
class MatmulSpace:
    """No parameters: the operands' shapes say everything."""


@dataclass(frozen=True)
class ReshapeSpace:
    """Every factorization of the input's size into one or two sides."""


@dataclass(frozen=True)
class TransposeSpace:
    pairs: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (-1, -2))  # a vector: (0, 0) only


@dataclass(frozen=True)
class ExpandSpace:
    leading: tuple[tuple[int, ...], ...] = ((), (2,))  # dims put in front
    sizes: tuple[int, ...] = (2, 3)  # what a size-1 dim may expand to


@dataclass(frozen=True)
class IndexSpace:
    kinds: tuple[str, ...] = ("take", "select", "slice")
    steps: tuple[int | None, ...] = (None, 2)  # a slice's
    max_taken: int = 4  # advanced indexing: how many indices, repeats allowed


@dataclass(frozen=True)
class OptionSpace:
    """Every valid parameter set for the given argument shapes, listed simplest first (a shape op's dims,
    sizes and small index patterns are few for the small shapes the suite draws): a strategy picks one, and
    shrinking goes to the first."""

    options: Callable[[tuple[tuple[int, ...], ...]], Sequence[CallParams]]


ParamSpace = (ReductionSpace | ScanSpace | MatmulSpace | ReshapeSpace | TransposeSpace | ExpandSpace | IndexSpace
              | OptionSpace)


# ------------------------------------------------------------------ the entry
@dataclass(frozen=True)
class TSpelling:
    render: Callable[[Sequence[str], OpParams], str]  # argument source texts (atomic) -> source
    call: Callable[[Sequence[torch.Tensor], OpParams], torch.Tensor]
    applies: Callable[[tuple[tuple[int, ...], ...], OpParams], bool] = lambda shapes, p: True
    atomic: bool = True  # False for an operator spelling (`a @ b`), which needs parentheses inside others
    # view and view_as refuse an argument whose strides they cannot reshape (a transposed view): such a
    # spelling is drawn only on arguments that are fresh tensors
    needs_contiguous: bool = False
    # a call that takes the values of an op returning values and indices (sort, topk): the indices the same call
    # returns, row-major over the output, which its backward scatters the gradient through
    indices: Callable[[Sequence[torch.Tensor], OpParams], torch.Tensor] | None = None


def kept_by_this_torch(probe: Callable[[], object]) -> bool:
    """Whether the installed torch still runs a deprecated function (`probe` calls it on a tiny input): torch 2.15
    removed torch.qr and torch.cholesky (and their Tensor methods), which now raise "This function was deprecated
    since version 1.9 and is now removed". An entry leaves such spellings out, so the others are still drawn."""
    try:
        with warnings.catch_warnings():  # a torch that still has it warns that it is deprecated: known, not news
            warnings.simplefilter("ignore", UserWarning)
            probe()
    except RuntimeError as error:
        if "is now removed" in str(error):
            return False
        raise
    return True


@dataclass(frozen=True)
class TensorOp:
    name: str
    arity: int
    spellings: tuple[TSpelling, ...]
    sympy: Callable  # (arrays of SymPy, params) -> array of SymPy
    forward: Callable  # (RoundingModel, arrays of balls, params) -> array of balls
    backward: Callable  # (RoundingModel, arrays of balls, output balls, grad balls, params) -> grads per argument
    space: ParamSpace
    shape: Callable[[tuple[tuple[int, ...], ...], OpParams], tuple[int, ...]]  # input shapes -> output shape
    opinfo: tuple[str, ...]  # `name` or `name[variant]` of op_db, only those a spelling calls
    ties: str = ""  # torch's rule where the op is not differentiable (documented in the generated table)
    # the entries of oracles.table.reduction_conventions.PINNED_ONLY that pin torch's value at those points
    pinned_as: tuple[str, ...] = ()
    zero_rule: str = ""
    # A reduction that is not differentiable everywhere, per slice in arb (oracles.tensor.oracle uses them
    # where SymPy's derivative does not exist): its value where SymPy's evaluator refuses (sqrt at 0), and
    # the minimum-norm subgradient, the rule of torch's autograd notes for convex kinks.
    value: Callable | None = None  # (slice, params) -> ball
    subgradient: Callable | None = None  # (slice, grad, params) -> the slice's gradients
    # the same for an op that is no reduction along a dim: (argument arrays, output gradient, params) -> the
    # arguments' gradients (a scatter's extremum: shared evenly by the exactly tied members of a place)
    subgradient_vjp: Callable | None = None
    # the ranks of argument the op is drawn with (every argument has the same shape, except matmul's)
    ranks: tuple[int, ...] = (1, 2)
    # the argument shapes that go with a first argument of shape s (default: all s); a scatter's source has
    # the shape of the part it writes, a concatenation's second part may differ along the joined dim
    operand_shapes: Callable[[tuple[int, ...]], Sequence[tuple[tuple[int, ...], ...]]] | None = None
    # the arguments the output depends on, where that is fewer than all (one output of broadcast_tensors
    # reads only its own tensor: torch leaves the other's .grad None, it is not in the graph)
    reads: Callable[[OpParams], tuple[int, ...]] | None = None
    # the dtypes torch's CPU kernels implement, where fewer than all (avg_pool3d has no bfloat16 or float16)
    cpu_dtypes: tuple[str, ...] | None = None
    # a registered finding: torch's backward is wrong wherever the op is drawn, so random programs leave the
    # op out (its own property test is the finding's strict xfail)
    wrong_backward: str = ""
    # a random op whose noise a seed among its parameters fixes on torch's CPU generator (oracles.table.dropout_ops):
    # the oracle reproduces it on the CPU and eagerly only (other devices' generators and torch.compile draw other
    # noise), so it is checked on the CPU by its own property test and left out of random programs
    seeded: bool = False
    # False: torch.func's transforms refuse the op by design (linear_cross_entropy's chunked path precomputes its
    # gradients in the forward, so double backward refuses it too); random programs, which torch.func.jacrev runs
    # too, leave it out, and its own property test checks its backward
    torch_func: bool = True
    # property tests mostly unverified in a dtype, measured, with the reason (oracles.table.ops.BlindSpot)
    blind_spots: tuple = ()
    # per argument, the matrices the strategies draw for it where the op is defined on a part of the matrices
    # only (strategies/matrices.py: "invertible", "diagonally_dominant", "positive_determinant",
    # "positive_definite", "cholesky_factor", "invertible_flat"; strategies/spectra.py: "symmetric_separated",
    # "separated_singular", "householder_scalars"; "" any values);
    # such an op's arguments are inputs themselves, so that the draw is what the op receives
    matrix_domains: tuple[str, ...] = ()
    # an op SymPy has no practical closed form of (eigenvalues beyond 2 x 2): the exact pass takes its value and
    # vector-Jacobian product from here instead of from `sympy`, as rigorous enclosures in arb:
    # (format, argument arrays, params) -> (output array, adjoint -> the arguments' gradients)
    exact_vjp: Callable | None = None
    # torch's backward formula divides by the inputs even where the op is a polynomial (prod's grad·result/input where
    # no input is 0, corrcoef's division by the standard deviations, det's solve with A): its derivative cancels terms
    # the exact second derivative does not have, so oracles.tensor.second_order's sum-of-products bound does not hold
    backward_divides: bool = False

    def blind_spot(self, test: str, dtype: str) -> str | None:
        return next((b.reason for b in self.blind_spots if b.test == test and b.dtype == dtype), None)

    def argument_shapes(self, shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], ...]]:
        if self.operand_shapes is None:
            return [(shape,) * self.arity]
        return list(self.operand_shapes(shape))

    def out_shape(self, shapes: tuple[tuple[int, ...], ...], p: OpParams) -> tuple[int, ...]:
        return tuple(self.shape(shapes, p))

    def spellings_for(self, shapes, p: OpParams) -> list[int]:
        return [i for i, s in enumerate(self.spellings) if s.applies(shapes, p)]


def _reduction(name: str, spellings, slice_formulas: SliceFormulas, opinfo: Sequence[str],
               space: ReductionSpace = ReductionSpace(), **kw) -> TensorOp:
    f = slice_formulas
    return TensorOp(name, 1, tuple(spellings), formula.reduction(f.math), formula.reduction(f.forward),
                    formula.reduction_backward(f.backward), space,
                    lambda shapes, p: formula.reduced_shape(shapes[0], p), tuple(opinfo), **kw)


def _along_dim(name: str, spellings, slice_formulas: SliceFormulas, opinfo: Sequence[str], **kw) -> TensorOp:
    f = slice_formulas
    return TensorOp(name, 1, tuple(spellings), formula.dimwise(f.math), formula.dimwise(f.forward),
                    formula.dimwise_backward(f.backward), ScanSpace(), lambda shapes, p: shapes[0], tuple(opinfo), **kw)


def gathering(name: str, index_map: Callable, spellings, space: ParamSpace, opinfo: Sequence[str], arity: int = 1,
              **kw) -> TensorOp:
    """An op each of whose output elements is an element of an argument or a constant (views, copies,
    indexing, padding, concatenation): everything follows from its `index_map` (tensor_formulas.gathered)."""
    math, forward, backward = formula.gathered(index_map)
    return TensorOp(name, arity, tuple(spellings), math, forward, backward, space,
                    lambda shapes, p: formula.gathered_shape(index_map, shapes, p), tuple(opinfo), **kw)


def contracting(name: str, index_map: Callable, spellings, space: ParamSpace, opinfo: Sequence[str], arity: int = 1,
                fused: bool = False, fused_backward: bool = False, **kw) -> TensorOp:
    """An op each of whose output elements is a sum of products of argument elements (matrix products,
    einsum, convolutions): everything follows from its `index_map` (oracles.table.contractions)."""
    math, forward, backward = contractions.contracted(index_map, fused, fused_backward)
    return TensorOp(name, arity, tuple(spellings), math, forward, backward, space,
                    lambda shapes, p: contractions.contracted_shape(index_map, shapes, p), tuple(opinfo), **kw)


def _first(index_map: Callable) -> Callable:
    """An index map of the one argument, as `gathering` takes them (arrays, params, constant)."""
    return lambda arrays, p, constant: index_map(arrays[0], p)


# ------------------------------------------------------------------ spellings
def _keep(p: ReductionParams) -> str:
    return f", keepdim={p.keepdim}" if p.keepdim else ""


def _options(p: ReductionParams) -> str:
    """The keywords after dim, every parameter the op takes (correction only where it takes one)."""
    return ("" if p.correction is None else f", correction={p.correction}") + _keep(p)


def _correction(p: ReductionParams) -> dict:
    return {} if p.correction is None else {"correction": p.correction}


def _at_defaults(shapes, p: ReductionParams) -> bool:
    """Every parameter at torch's default: the spellings that name none of them."""
    return p.dim is None and not p.keepdim and p.correction in (None, DEFAULT_CORRECTION)


def _reduce_spellings(name: str, function, method_name: str, dim_required: bool = False, none_dim: bool = True,
                      unbiased: bool = False):
    """torch.<name>(x, dim=d, ...) (`none_dim`: d may be None) and x.<name>(d, ...), every parameter named;
    without parameters torch.<name>(x), x.<name>(); `unbiased`: torch.<name>(x, unbiased=b), the older
    boolean for correction 1 (True) or 0 (False)."""
    method = getattr(torch.Tensor, method_name)

    def function_applies(s, p):
        return p.dim is not None or none_dim

    with_dims = (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, dim={p.dim}{_options(p)})",
                  lambda a, p: function(a[0], dim=p.dim, keepdim=p.keepdim, **_correction(p)), function_applies),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}({p.dim}{_options(p)})",
                  lambda a, p: method(a[0], p.dim, keepdim=p.keepdim, **_correction(p)),
                  lambda s, p: p.dim is not None),
    )
    if dim_required:
        return with_dims
    defaults = (
        TSpelling(lambda a, p: f"torch.{name}({a[0]})", lambda a, p: function(a[0]), _at_defaults),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}()", lambda a, p: method(a[0]), _at_defaults),
    )
    if not unbiased:
        return with_dims + defaults

    def boolean_applies(s, p):
        return p.dim is None and not p.keepdim and p.correction in (0, 1)

    return with_dims + defaults + (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, unbiased={p.correction == 1})",
                  lambda a, p: function(a[0], unbiased=p.correction == 1), boolean_applies),
    )


def _dim_spellings(name: str, functions: Sequence[tuple[str, Callable]]):
    out = [TSpelling(lambda a, p, text=text: f"{text}({a[0]}, dim={p.dim})",
                     lambda a, p, f=f: f(a[0], dim=p.dim)) for text, f in functions]
    method = getattr(torch.Tensor, name)
    out.append(TSpelling(lambda a, p: f"{a[0]}.{name}({p.dim})", lambda a, p: method(a[0], p.dim)))
    return tuple(out)


def _norm_spellings():
    return (
        TSpelling(lambda a, p: f"torch.linalg.vector_norm({a[0]}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.linalg.vector_norm(a[0], dim=p.dim, keepdim=p.keepdim)),
        TSpelling(lambda a, p: f"{a[0]}.norm(dim={p.dim}{_keep(p)})",
                  lambda a, p: a[0].norm(dim=p.dim, keepdim=p.keepdim), lambda s, p: p.dim is not None),
        TSpelling(lambda a, p: f"torch.norm({a[0]})", lambda a, p: torch.norm(a[0]), _at_defaults),
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
    TSpelling(lambda a, p: f"torch.transpose_copy({a[0]}, {p.dims[0]}, {p.dims[1]})",
              lambda a, p: torch.transpose_copy(a[0], *p.dims)),
    TSpelling(lambda a, p: f"torch.swapaxes({a[0]}, {p.dims[0]}, {p.dims[1]})",
              lambda a, p: torch.swapaxes(a[0], *p.dims)),
    TSpelling(lambda a, p: f"{a[0]}.swapdims({p.dims[0]}, {p.dims[1]})", lambda a, p: a[0].swapdims(*p.dims)),
)

def _like(x: torch.Tensor, shape) -> torch.Tensor:
    """A tensor of `shape` for the spellings that take their shape from another tensor (view_as)."""
    return torch.empty(shape, dtype=x.dtype, device=x.device)


_reshape_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.reshape({p.shape})", lambda a, p: a[0].reshape(p.shape)),
    TSpelling(lambda a, p: f"torch.reshape({a[0]}, {p.shape})", lambda a, p: torch.reshape(a[0], p.shape)),
    TSpelling(lambda a, p: f"{a[0]}.flatten()", lambda a, p: a[0].flatten(), lambda s, p: len(p.shape) == 1),
    TSpelling(lambda a, p: f"{a[0]}.view({p.shape})", lambda a, p: a[0].view(p.shape), needs_contiguous=True),
    TSpelling(lambda a, p: f"torch.view_copy({a[0]}, {p.shape})", lambda a, p: torch.view_copy(a[0], p.shape),
              needs_contiguous=True),
    TSpelling(lambda a, p: f"{a[0]}.view_as(torch.empty({p.shape}))", lambda a, p: a[0].view_as(_like(a[0], p.shape)),
              needs_contiguous=True),
    TSpelling(lambda a, p: f"{a[0]}.reshape_as(torch.empty({p.shape}))",
              lambda a, p: a[0].reshape_as(_like(a[0], p.shape))),
    TSpelling(lambda a, p: f"torch.ravel({a[0]})", lambda a, p: torch.ravel(a[0]), lambda s, p: len(p.shape) == 1),
)

_expand_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.expand({p.shape})", lambda a, p: a[0].expand(p.shape)),
    TSpelling(lambda a, p: f"torch.broadcast_to({a[0]}, {p.shape})", lambda a, p: torch.broadcast_to(a[0], p.shape)),
    TSpelling(lambda a, p: f"{a[0]}.expand_as(torch.empty({p.shape}))",
              lambda a, p: a[0].expand_as(_like(a[0], p.shape))),
    TSpelling(lambda a, p: f"torch.expand_copy({a[0]}, {p.shape})", lambda a, p: torch.expand_copy(a[0], p.shape)),
)


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


_index_spellings = (
    TSpelling(lambda a, p: f"{a[0]}[{_index_text(p.index)}]", lambda a, p: a[0][_numpy_index(p.index)]),
)


# ------------------------------------------------------------------ the table
_F = torch.nn.functional
_VARIANCE = ReductionSpace(corrections=(0, 1, 2))

TENSOR_OPS: dict[str, TensorOp] = {
    op.name: op for op in [
        _reduction("sum", _reduce_spellings("sum", torch.sum, "sum"), formula.SUM, ["sum"]),
        _reduction("mean", _reduce_spellings("mean", torch.mean, "mean"), formula.MEAN, ["mean"]),
        _reduction("prod", _reduce_spellings("prod", torch.prod, "prod", none_dim=False), formula.PROD, ["prod"],
                   ReductionSpace(keepdim_without_dim=False),
                   zero_rule="the product of the other factors (prod_safe_zeros_backward)", backward_divides=True),
        _reduction("amax", _reduce_spellings("amax", torch.amax, "amax"), formula.AMAX, ["amax"],
                   ties="ties share the gradient evenly (the minimum-norm subgradient)",
                   subgradient=formula.amax_subgradient, pinned_as=("amax",)),
        _reduction("logsumexp", _reduce_spellings("logsumexp", torch.logsumexp, "logsumexp", dim_required=True,
                                                  none_dim=False), formula.LOGSUMEXP, ["logsumexp"],
                   ReductionSpace(none_dim=False)),
        _reduction("norm", _norm_spellings(), formula.NORM, ["linalg.vector_norm", "norm"],
                   ties="at a zero vector the gradient is 0 (the minimum-norm subgradient)",
                   value=formula.norm_value, subgradient=formula.norm_subgradient, pinned_as=("vector_norm",)),
        _along_dim("cumsum", _dim_spellings("cumsum", [("torch.cumsum", torch.cumsum)]), formula.CUMSUM, ["cumsum"]),
        _along_dim("cumprod", _dim_spellings("cumprod", [("torch.cumprod", torch.cumprod)]), formula.CUMPROD,
                   ["cumprod"], zero_rule="cumprod_backward's first-zero formula", backward_divides=True),
        _along_dim("logcumsumexp", _dim_spellings("logcumsumexp", [("torch.logcumsumexp", torch.logcumsumexp)]),
                   formula.LOGCUMSUMEXP, ["logcumsumexp"]),
        _along_dim("softmax", _dim_spellings("softmax", [("torch.softmax", torch.softmax),
                                                         ("torch.nn.functional.softmax", _F.softmax)]),
                   formula.SOFTMAX, ["softmax"]),
        _along_dim("log_softmax", _dim_spellings("log_softmax", [("torch.log_softmax", torch.log_softmax),
                                                                 ("torch.nn.functional.log_softmax", _F.log_softmax)]),
                   formula.LOG_SOFTMAX, ["log_softmax"]),
        TensorOp("matmul", 2, _matmul_spellings, *formula.MATMUL, MatmulSpace(),
                 lambda shapes, p: formula.matmul_out_shape(*shapes), ("matmul", "mm", "mv", "dot")),
        gathering("transpose", _first(lambda a, p: np.swapaxes(a, *p.dims)), _transpose_spellings, TransposeSpace(),
              ["transpose", "T", "transpose_copy"]),
        gathering("reshape", _first(lambda a, p: a.reshape(p.shape)), _reshape_spellings, ReshapeSpace(),
                  ["reshape", "flatten", "view", "view_copy", "view_as", "reshape_as", "ravel"]),
        gathering("expand", _first(lambda a, p: np.broadcast_to(a, p.shape)), _expand_spellings, ExpandSpace(),
              ["expand", "broadcast_to", "expand_as", "expand_copy"]),
        gathering("index", _first(lambda a, p: a[_numpy_index(p.index)]), _index_spellings, IndexSpace(),
                  ["__getitem__"]),
        _reduction("var", _reduce_spellings("var", torch.var, "var", unbiased=True), formula.VAR,
                   ["var", "var[unbiased]"], _VARIANCE),
        _reduction("std", _reduce_spellings("std", torch.std, "std", unbiased=True), formula.STD,
                   ["std", "std[unbiased]"], _VARIANCE,
                   ties="at a constant slice (std 0) the gradient is 0 (the minimum-norm subgradient)",
                   value=formula.std_value, subgradient=formula.std_subgradient, pinned_as=("std",)),
    ]
}
