"""Shape, view, copy and indexing ops, one entry each: ops each of whose output elements is an element of an
argument or a constant, so that an entry is its index map (numpy on object arrays, `gathering` in
oracles.table.tensor_ops), its spellings and the list of its valid parameters for a shape, simplest first.

Forward, backward and SymPy side all follow from the index map (oracles.table.tensor_formulas.gathered):
torch's backward of every op here sends each output element's gradient back to the element it came from,
adding up where an element was copied more than once (repeat, expand, take with repeated indices, reflect
padding, overlapping unfold windows); a padded or filled element passes no gradient. Whether the map is
torch's op is checked against torch's own forward for every listed parameter (tests/test_tensor_ops.py).

Ops that return several tensors (split, chunk, unbind, ...) are spelled with one piece taken, `torch.split(x0,
2, dim=1)[0]`: the other pieces get no gradient, which torch's backward fills with zeros.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from oracles.table.tensor_formulas import Constant, Total, minus, plus
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, OptionSpace, TSpelling, gathering

Shapes = tuple[tuple[int, ...], ...]


# ------------------------------------------------------------------ parameter values that are tensors
def _nested(values) -> str:
    if isinstance(values, tuple):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return repr(values)


def _nested_tuple(array: np.ndarray):
    # through tolist(): iterating the array made a view per row and a numpy scalar per element (measured: 3% of
    # the tensor-op gradient tests)
    return _tuples(array.tolist())


def _tuples(values):
    return tuple(_tuples(v) for v in values) if isinstance(values, list) else values


@dataclass(frozen=True)
class Indices:
    """An index tensor (int64), its values as nested tuples."""

    values: tuple
    numpy_dtype = int
    torch_dtype = torch.long

    @classmethod
    def of(cls, array):
        return cls(_nested_tuple(np.asarray(array, dtype=cls.numpy_dtype)))

    @property
    def array(self) -> np.ndarray:
        return np.array(self.values, dtype=self.numpy_dtype)

    def __repr__(self) -> str:
        return f"torch.tensor({_nested(self.values)})"

    def tensor(self, device) -> torch.Tensor:
        return torch.tensor(self.values, dtype=self.torch_dtype, device=device)


@dataclass(frozen=True, repr=False)  # the repr is the source text torch.tensor([...]) of Indices
class Mask(Indices):
    """A boolean tensor, its values as nested tuples."""

    numpy_dtype = bool
    torch_dtype = torch.bool


def _argument(value, device):
    """A parameter as the call takes it: index tensors and masks (alone or a tuple of them) made on `device`."""
    if isinstance(value, tuple) and value and all(isinstance(v, Indices) for v in value):
        return tuple(v.tensor(device) for v in value)
    return value.tensor(device) if isinstance(value, Indices) else value


def _params(**items) -> CallParams:
    return CallParams(tuple(items.items()))


# ------------------------------------------------------------------ spellings
def _spelling(template: str, call: Callable, applies: Callable | None = None, needs_contiguous: bool = False
              ) -> TSpelling:
    """`template` formats the arguments' source texts ({0}, {1}) and the parameters by name ({dims});
    `call(*tensors, **parameters)` runs it (index tensors and masks made on the arguments' device)."""

    def render(texts, p: CallParams) -> str:
        return template.format(*texts, **{name: repr(value) for name, value in p.items})

    def run(tensors, p: CallParams):
        return call(*tensors, **{name: _argument(value, tensors[0].device) for name, value in p.items})

    return TSpelling(render, run, applies or (lambda shapes, p: True), needs_contiguous=needs_contiguous)


def _with(**values) -> Callable:
    """A spelling that applies where the parameters have these values."""
    return lambda shapes, p: all(p.get(k) == v for k, v in values.items())


def _op(name: str, index_map: Callable, spellings, options: Callable, opinfo, arity: int = 1,
        ranks: tuple[int, ...] = (1, 2), operand_shapes: Callable | None = None, reads: Callable | None = None,
        cpu_dtypes: tuple[str, ...] | None = None, kind: Callable = gathering, wrong_backward: str = ""):
    """One entry; `options(shapes)` lists its valid parameters for a first argument of the entry's `ranks`
    (and the shapes `operand_shapes` gives the others), simplest first (none for other ranks; cached).
    `kind` makes the entry from its index map: `gathering` (copies and sums of elements) or `contracting`
    (sums of products, oracles.table.contraction_ops)."""

    # the ranks of the first argument: those drawn, or those operand_shapes makes of them (a batch of one)
    first_ranks = set(ranks) if operand_shapes is None else {
        len(shapes[0]) for r in ranks for side in (1, 2, 3) for shapes in operand_shapes((side,) * r)}

    @functools.cache
    def listed(shapes: Shapes) -> tuple[CallParams, ...]:
        return tuple(options(shapes)) if len(shapes[0]) in first_ranks else ()

    TENSOR_OPS[name] = kind(name, index_map, spellings, OptionSpace(listed), opinfo, arity=arity, ranks=ranks,
                            operand_shapes=operand_shapes, reads=reads, cpu_dtypes=cpu_dtypes,
                            wrong_backward=wrong_backward)


def _one(index_map: Callable) -> Callable:
    """An index map of the op's one argument and its parameters by name."""
    return lambda arrays, p, constant: index_map(arrays[0], **dict(p.items))


NONE = (CallParams(),)


def _no_parameters(shapes: Shapes) -> tuple[CallParams, ...]:
    return NONE


def _take(a: np.ndarray, positions, dim: int) -> np.ndarray:
    return np.take(a, list(positions), axis=dim)


# ------------------------------------------------------------------ parameter lists
def _subsets(rank: int) -> list[tuple[int, ...]]:
    return [c for k in range(1, rank + 1) for c in itertools.combinations(range(rank), k)]


def _index_lists(n: int) -> list[tuple[int, ...]]:
    """Indices into a dim of size n: single ones, pairs (repeats included), all of them reversed."""
    small = range(min(n, 3))
    lists = [(i,) for i in range(n)] + list(itertools.product(small, repeat=2)) + [tuple(reversed(range(n)))]
    return list(dict.fromkeys(lists))


def _index_arrays(shape: tuple[int, ...], dim: int) -> list[np.ndarray]:
    """Index arrays of the input's shape except along `dim` (1, 2 or n long there), each element an index
    into `dim`: all zeros (every element the same source: gradients add up), ascending, descending, and
    shifted by the other coordinates."""
    n = shape[dim]
    out = []
    for k in dict.fromkeys((1, 2, n)):
        index_shape = shape[:dim] + (k,) + shape[dim + 1:]
        grid = np.indices(index_shape)
        along, rest = grid[dim], grid.sum(axis=0) - grid[dim]
        for values in (np.zeros(index_shape, dtype=int), along % n, (n - 1 - along) % n, (along + rest) % n):
            out.append(values)
    unique = {}
    for a in out:
        unique.setdefault((a.shape, a.tobytes()), a)
    return list(unique.values())


def _masks(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Masks with at least one True: all, the first element only, the last only, every other one."""
    size = math.prod(shape)
    flat = np.arange(size)
    masks = [flat >= 0, flat == 0, flat == size - 1, flat % 2 == 0, flat % 2 == 1]
    unique = {}
    for m in masks:
        if m.any():
            unique.setdefault(m.tobytes(), m.reshape(shape))
    return list(unique.values())


def _sole(shapes: Shapes) -> tuple[int, ...]:
    return shapes[0]


# ------------------------------------------------------------------ reordering: flip, roll, rot90, permute
def _flip_options(shapes):
    return [_params(dims=d) for d in _subsets(len(_sole(shapes)))]


_op("flip", _one(lambda a, dims: np.flip(a, dims)),
    [_spelling("torch.flip({0}, {dims})", lambda x, dims: torch.flip(x, dims)),
     _spelling("{0}.flip({dims})", lambda x, dims: x.flip(dims))], _flip_options, ["flip"], ranks=(1, 2, 3))
_op("fliplr", _one(np.fliplr), [_spelling("torch.fliplr({0})", torch.fliplr),
                                _spelling("{0}.fliplr()", torch.Tensor.fliplr)],
    lambda shapes: NONE if len(_sole(shapes)) >= 2 else (), ["fliplr"], ranks=(2, 3))
_op("flipud", _one(np.flipud), [_spelling("torch.flipud({0})", torch.flipud),
                                _spelling("{0}.flipud()", torch.Tensor.flipud)],
    _no_parameters, ["flipud"], ranks=(1, 2, 3))


def _roll_options(shapes):
    rank = len(_sole(shapes))
    out = [_params(shifts=s, dims=None) for s in (1, -2)]
    out += [_params(shifts=s, dims=d) for d in range(rank) for s in (1, -1, 2)]
    if rank >= 2:
        out.append(_params(shifts=(1, -1), dims=(0, 1)))
    return out


_op("roll", _one(lambda a, shifts, dims: np.roll(a, shifts, axis=dims)),
    [_spelling("torch.roll({0}, {shifts}, {dims})", lambda x, shifts, dims: torch.roll(x, shifts, dims)),
     _spelling("{0}.roll({shifts}, {dims})", lambda x, shifts, dims: x.roll(shifts, dims))],
    _roll_options, ["roll"], ranks=(1, 2))


def _fftshift_options(shapes):
    return [_params(dim=None)] + [_params(dim=d) for d in _subsets(len(_sole(shapes)))]


_op("fftshift", _one(lambda a, dim: np.fft.fftshift(a, dim)),
    [_spelling("torch.fft.fftshift({0}, dim={dim})", lambda x, dim: torch.fft.fftshift(x, dim=dim))],
    _fftshift_options, ["fft.fftshift"], ranks=(1, 2))
_op("ifftshift", _one(lambda a, dim: np.fft.ifftshift(a, dim)),
    [_spelling("torch.fft.ifftshift({0}, dim={dim})", lambda x, dim: torch.fft.ifftshift(x, dim=dim))],
    _fftshift_options, ["fft.ifftshift"], ranks=(1, 2))


def _rot90_options(shapes):
    rank = len(_sole(shapes))
    pairs = [p for p in itertools.permutations(range(rank), 2)]
    return [_params(k=k, dims=d) for d in pairs for k in (1, 2, 3, -1)]


_op("rot90", _one(lambda a, k, dims: np.rot90(a, k, dims)),
    [_spelling("torch.rot90({0}, {k}, {dims})", lambda x, k, dims: torch.rot90(x, k, dims)),
     _spelling("{0}.rot90({k}, {dims})", lambda x, k, dims: x.rot90(k, dims))], _rot90_options, ["rot90"],
    ranks=(2, 3))


def _permutations(shapes):
    return [_params(dims=d) for d in itertools.permutations(range(len(_sole(shapes))))]


_op("permute", _one(lambda a, dims: np.transpose(a, dims)),
    [_spelling("torch.permute({0}, {dims})", lambda x, dims: torch.permute(x, dims)),
     _spelling("{0}.permute{dims}", lambda x, dims: x.permute(*dims)),
     _spelling("torch.permute_copy({0}, {dims})", lambda x, dims: torch.permute_copy(x, dims))],
    _permutations, ["permute", "permute_copy"], ranks=(1, 2, 3))


def _movedim_options(shapes):
    rank = len(_sole(shapes))
    return [_params(source=s, destination=d) for s in range(rank) for d in range(-rank, rank)]


_op("movedim", _one(lambda a, source, destination: np.moveaxis(a, source, destination)),
    [_spelling("torch.movedim({0}, {source}, {destination})",
               lambda x, source, destination: torch.movedim(x, source, destination)),
     _spelling("torch.moveaxis({0}, {source}, {destination})",
               lambda x, source, destination: torch.moveaxis(x, source, destination)),
     _spelling("{0}.movedim({source}, {destination})", lambda x, source, destination: x.movedim(source, destination))],
    _movedim_options, ["movedim"], ranks=(2, 3))
_op("t", _one(lambda a: a.T),
    [_spelling("torch.t({0})", torch.t), _spelling("{0}.t()", torch.Tensor.t),
     _spelling("torch.t_copy({0})", torch.t_copy)], _no_parameters, ["t", "t_copy"], ranks=(1, 2))
_op("matrix_transpose", _one(lambda a: np.swapaxes(a, -1, -2)),
    [_spelling("{0}.mT", lambda x: x.mT), _spelling("{0}.mH", lambda x: x.mH),
     _spelling("{0}.H", lambda x: x.H, lambda shapes, p: len(shapes[0]) == 2)],
    _no_parameters, ["mT", "mH", "H"], ranks=(2, 3))


# ------------------------------------------------------------------ copies of the whole tensor
_op("identity", _one(lambda a: a),
    [_spelling("torch.clone({0})", torch.clone), _spelling("{0}.clone()", torch.Tensor.clone),
     _spelling("{0}.contiguous()", torch.Tensor.contiguous), _spelling("torch.positive({0})", torch.positive),
     _spelling("torch.conj({0})", torch.conj), _spelling("torch.resolve_conj({0})", torch.resolve_conj),
     _spelling("torch.resolve_neg({0})", torch.resolve_neg), _spelling("torch.alias_copy({0})", torch.alias_copy),
     _spelling("torch.real({0})", torch.real)],
    _no_parameters, ["clone", "contiguous", "positive", "conj", "resolve_conj", "resolve_neg", "alias_copy", "real"])


# ------------------------------------------------------------------ adding and removing size-1 dims
def _squeeze_map(a, dim):
    dims = range(a.ndim) if dim is None else (dim,) if isinstance(dim, int) else dim
    gone = {d % a.ndim for d in dims if a.shape[d] == 1}
    return a.reshape(tuple(n for d, n in enumerate(a.shape) if d not in gone))


def _squeeze_options(shapes):
    rank = len(_sole(shapes))
    return ([_params(dim=None)] + [_params(dim=d) for d in range(-rank, rank)]
            + [_params(dim=c) for c in _subsets(rank) if len(c) >= 2])


def _one_dim(shapes, p):
    return isinstance(p["dim"], int)


_op("squeeze", _one(_squeeze_map),
    [_spelling("torch.squeeze({0})", lambda x, dim: torch.squeeze(x), _with(dim=None)),
     _spelling("{0}.squeeze()", lambda x, dim: x.squeeze(), _with(dim=None)),
     _spelling("torch.squeeze({0}, {dim})", lambda x, dim: torch.squeeze(x, dim), _one_dim),
     _spelling("{0}.squeeze({dim})", lambda x, dim: x.squeeze(dim), _one_dim),
     _spelling("torch.squeeze_copy({0}, {dim})", lambda x, dim: torch.squeeze_copy(x, dim), _one_dim),
     _spelling("torch.squeeze({0}, {dim})", lambda x, dim: torch.squeeze(x, dim),
               lambda shapes, p: isinstance(p["dim"], tuple))],
    _squeeze_options, ["squeeze", "squeeze_copy", "squeeze[multiple]"], ranks=(1, 2, 3))


def _unsqueeze_options(shapes):
    rank = len(_sole(shapes))
    return [_params(dim=d) for d in range(-rank - 1, rank + 1)]


_op("unsqueeze", _one(lambda a, dim: np.expand_dims(a, dim)),
    [_spelling("torch.unsqueeze({0}, {dim})", lambda x, dim: torch.unsqueeze(x, dim)),
     _spelling("{0}.unsqueeze({dim})", lambda x, dim: x.unsqueeze(dim)),
     _spelling("torch.unsqueeze_copy({0}, {dim})", lambda x, dim: torch.unsqueeze_copy(x, dim))],
    _unsqueeze_options, ["unsqueeze", "unsqueeze_copy"], ranks=(1, 2))


def _unflatten_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, sizes=(f, shape[d] // f)) for d in range(len(shape))
            for f in range(1, shape[d] + 1) if shape[d] % f == 0]


_op("unflatten", _one(lambda a, dim, sizes: a.reshape(a.shape[:dim] + sizes + a.shape[dim + 1:])),
    [_spelling("torch.unflatten({0}, {dim}, {sizes})", lambda x, dim, sizes: torch.unflatten(x, dim, sizes)),
     _spelling("{0}.unflatten({dim}, {sizes})", lambda x, dim, sizes: x.unflatten(dim, sizes))],
    _unflatten_options, ["unflatten"], ranks=(1, 2))
for _rank, _fn in ((1, np.atleast_1d), (2, np.atleast_2d), (3, np.atleast_3d)):
    _op(f"atleast_{_rank}d", _one(_fn),
        [_spelling(f"torch.atleast_{_rank}d({{0}})", getattr(torch, f"atleast_{_rank}d"))],
        _no_parameters, [f"atleast_{_rank}d"], ranks=(1, 2, 3))


# ------------------------------------------------------------------ parts: narrow, slice, select, diagonals
def _narrow_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, start=s, length=k) for d, n in enumerate(shape) for k in range(1, n + 1)
            for s in range(n - k + 1)]


_op("narrow", _one(lambda a, dim, start, length: _take(a, range(start, start + length), dim)),
    [_spelling("torch.narrow({0}, {dim}, {start}, {length})",
               lambda x, dim, start, length: torch.narrow(x, dim, start, length)),
     _spelling("{0}.narrow({dim}, {start}, {length})", lambda x, dim, start, length: x.narrow(dim, start, length)),
     _spelling("torch.narrow_copy({0}, {dim}, {start}, {length})",
               lambda x, dim, start, length: torch.narrow_copy(x, dim, start, length))],
    _narrow_options, ["narrow", "narrow_copy"])


def _slice_options(shapes):
    shape = _sole(shapes)
    out = []
    for d, n in enumerate(shape):
        for start, end, step in itertools.product((None, 1, -1), (None, -1, n + 2), (1, 2)):
            if len(range(n)[slice(start, end, step)]):
                out.append(_params(dim=d, start=start, end=end, step=step))
    return out


_op("slice", _one(lambda a, dim, start, end, step: a[(slice(None),) * dim + (slice(start, end, step),)]),
    [_spelling("torch.ops.aten.slice.Tensor({0}, {dim}, {start}, {end}, {step})",
               lambda x, dim, start, end, step: torch.ops.aten.slice.Tensor(x, dim, start, end, step))],
    _slice_options, ["slice"])


def _select_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, index=i) for d, n in enumerate(shape) for i in range(-n, n)]


_op("select", _one(lambda a, dim, index: np.take(a, index, axis=dim)),
    [_spelling("torch.select({0}, {dim}, {index})", lambda x, dim, index: torch.select(x, dim, index)),
     _spelling("{0}.select({dim}, {index})", lambda x, dim, index: x.select(dim, index))],
    _select_options, ["select"])


def _diagonal_options(shapes):
    shape = _sole(shapes)
    out = []
    for d1, d2 in itertools.permutations(range(len(shape)), 2):
        for offset in range(-shape[d1] + 1, shape[d2]):
            out.append(_params(offset=offset, dim1=d1, dim2=d2))
    return sorted(out, key=lambda p: (abs(p["offset"]), p["dim1"], p["dim2"]))


_op("diagonal", _one(lambda a, offset, dim1, dim2: np.diagonal(a, offset, dim1, dim2)),
    [_spelling("torch.diagonal({0}, {offset}, {dim1}, {dim2})",
               lambda x, offset, dim1, dim2: torch.diagonal(x, offset, dim1, dim2)),
     _spelling("{0}.diagonal({offset}, {dim1}, {dim2})", lambda x, offset, dim1, dim2: x.diagonal(offset, dim1, dim2)),
     _spelling("torch.diagonal_copy({0}, {offset}, {dim1}, {dim2})",
               lambda x, offset, dim1, dim2: torch.diagonal_copy(x, offset, dim1, dim2)),
     _spelling("torch.linalg.diagonal({0}, offset={offset}, dim1={dim1}, dim2={dim2})",
               lambda x, offset, dim1, dim2: torch.linalg.diagonal(x, offset=offset, dim1=dim1, dim2=dim2))],
    _diagonal_options, ["diagonal", "diagonal_copy", "linalg.diagonal"], ranks=(2, 3))


def _embedded(a: np.ndarray, offset: int, constant) -> np.ndarray:
    """(..., n) -> (..., n + |offset|, n + |offset|): the last dim on the offset diagonal, the constant 0
    elsewhere (torch.diag_embed's defaults dim1=-2, dim2=-1)."""
    n = a.shape[-1]
    side = n + abs(offset)
    out = np.full(a.shape[:-1] + (side, side), constant(0), dtype=object)
    for i in range(n):
        row, column = (i, i + offset) if offset >= 0 else (i - offset, i)
        out[..., row, column] = a[..., i]
    return out


def _offsets(shapes):
    return [_params(offset=k) for k in (0, 1, -1, 2)]


def _diag_options(shapes):
    shape = _sole(shapes)
    if len(shape) == 1:
        return _offsets(shapes)
    return [_params(offset=k) for k in sorted(range(-shape[0] + 1, shape[1]), key=abs)]


def _diag_map(arrays, p, constant):
    a = arrays[0]
    if a.ndim == 1:
        return _embedded(a, p["offset"], constant)
    return np.diagonal(a, p["offset"])


_op("diag", _diag_map,
    [_spelling("torch.diag({0}, {offset})", lambda x, offset: torch.diag(x, offset)),
     _spelling("{0}.diag({offset})", lambda x, offset: x.diag(offset))], _diag_options, ["diag"])
_op("diag_embed", lambda arrays, p, constant: _embedded(arrays[0], p["offset"], constant),
    [_spelling("torch.diag_embed({0}, {offset})", lambda x, offset: torch.diag_embed(x, offset)),
     _spelling("{0}.diag_embed({offset})", lambda x, offset: x.diag_embed(offset))], _offsets, ["diag_embed"])
_op("diagflat", lambda arrays, p, constant: _embedded(arrays[0].reshape(-1), p["offset"], constant),
    [_spelling("torch.diagflat({0}, {offset})", lambda x, offset: torch.diagflat(x, offset))], _offsets, ["diagflat"])


def _triangle(keep: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> Callable:
    def index_map(arrays, p, constant):
        a = arrays[0]
        rows, columns = np.indices(a.shape[-2:])
        inside = np.broadcast_to(keep(rows, columns, p["diagonal"]), a.shape)
        out = np.array(a, dtype=object)
        out[~inside] = constant(0)
        return out
    return index_map


def _diagonal_numbers(shapes):
    return [_params(diagonal=k) for k in (0, 1, -1, 2, -2)]


for _name, _keep in (("tril", lambda r, c, k: c - r <= k), ("triu", lambda r, c, k: c - r >= k)):
    _op(_name, _triangle(_keep),
        [_spelling(f"torch.{_name}({{0}}, {{diagonal}})",
                   lambda x, diagonal, _n=_name: getattr(torch, _n)(x, diagonal)),
         _spelling(f"{{0}}.{_name}({{diagonal}})", lambda x, diagonal, _n=_name: getattr(x, _n)(diagonal))],
        _diagonal_numbers, [_name], ranks=(2, 3))


# ------------------------------------------------------------------ copies of elements: repeat, tile, unfold
def _repeat_options(shapes):
    rank = len(_sole(shapes))
    return [_params(sizes=s) for k in (rank, rank + 1) for s in itertools.product((1, 2), repeat=k)]


_op("repeat", _one(lambda a, sizes: np.tile(a, sizes)),
    [_spelling("{0}.repeat{sizes}", lambda x, sizes: x.repeat(*sizes))], _repeat_options, ["repeat"])


def _tile_options(shapes):
    rank = len(_sole(shapes))
    return [_params(dims=s) for k in range(1, rank + 2) for s in itertools.product((1, 2), repeat=k)]


_op("tile", _one(lambda a, dims: np.tile(a, dims)),
    [_spelling("torch.tile({0}, {dims})", lambda x, dims: torch.tile(x, dims)),
     _spelling("{0}.tile({dims})", lambda x, dims: x.tile(dims))], _tile_options, ["tile"])


def _repeat_interleave_options(shapes):
    shape = _sole(shapes)
    out = [_params(repeats=r, dim=None) for r in (2, 3)]
    out += [_params(repeats=r, dim=d) for d in range(len(shape)) for r in (2, 3)]
    for d, n in enumerate(shape):
        for counts in ((0, 1, 2) * n)[:n], ((2, 0, 1) * n)[:n]:
            if any(counts):
                out.append(_params(repeats=Indices(counts), dim=d))
    return out


def _repeat_interleave_map(a, repeats, dim):
    counts = repeats.array if isinstance(repeats, Indices) else repeats
    return np.repeat(a, counts, axis=dim)


_op("repeat_interleave", _one(_repeat_interleave_map),
    [_spelling("torch.repeat_interleave({0}, {repeats}, dim={dim})",
               lambda x, repeats, dim: torch.repeat_interleave(x, repeats, dim=dim)),
     _spelling("{0}.repeat_interleave({repeats}, dim={dim})",
               lambda x, repeats, dim: x.repeat_interleave(repeats, dim=dim))],
    _repeat_interleave_options, ["repeat_interleave"])


def _unfold_options(shapes):
    shape = _sole(shapes)
    return [_params(dimension=d, size=k, step=s) for d, n in enumerate(shape) for k in range(1, n + 1) for s in (1, 2)]


def _windows(a, dimension, size, step):
    count = (a.shape[dimension] - size) // step + 1
    return np.stack([np.moveaxis(_take(a, range(w * step, w * step + size), dimension), dimension, -1)
                     for w in range(count)], axis=dimension)


_op("unfold", _one(_windows),
    [_spelling("{0}.unfold({dimension}, {size}, {step})",
               lambda x, dimension, size, step: x.unfold(dimension, size, step)),
     _spelling("torch.unfold_copy({0}, {dimension}, {size}, {step})",
               lambda x, dimension, size, step: torch.unfold_copy(x, dimension, size, step))],
    _unfold_options, ["unfold", "unfold_copy"])


# ------------------------------------------------------------------ indexing with index tensors and masks
def _take_options(shapes):
    return [_params(index=Indices(i)) for i in _index_lists(math.prod(_sole(shapes)))]


_op("take", _one(lambda a, index: a.reshape(-1)[index.array]),
    [_spelling("torch.take({0}, {index})", lambda x, index: torch.take(x, index)),
     _spelling("{0}.take({index})", lambda x, index: x.take(index))], _take_options, ["take"])


def _index_select_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, index=Indices(i)) for d, n in enumerate(shape) for i in _index_lists(n)]


_op("index_select", _one(lambda a, dim, index: np.take(a, index.array, axis=dim)),
    [_spelling("torch.index_select({0}, {dim}, {index})", lambda x, dim, index: torch.index_select(x, dim, index)),
     _spelling("{0}.index_select({dim}, {index})", lambda x, dim, index: x.index_select(dim, index))],
    _index_select_options, ["index_select"])


def _along_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, index=Indices.of(i)) for d in range(len(shape)) for i in _index_arrays(shape, d)]


_op("gather", _one(lambda a, dim, index: np.take_along_axis(a, index.array, axis=dim)),
    [_spelling("torch.gather({0}, {dim}, {index})", lambda x, dim, index: torch.gather(x, dim, index)),
     _spelling("{0}.gather({dim}, {index})", lambda x, dim, index: x.gather(dim, index))],
    _along_options, ["gather"])
_op("take_along_dim", _one(lambda a, dim, index: np.take_along_axis(a, index.array, axis=dim)),
    [_spelling("torch.take_along_dim({0}, {index}, dim={dim})",
               lambda x, dim, index: torch.take_along_dim(x, index, dim=dim)),
     _spelling("{0}.take_along_dim({index}, dim={dim})", lambda x, dim, index: x.take_along_dim(index, dim=dim))],
    _along_options, ["take_along_dim"])


def _mask_options(shapes):
    return [_params(mask=Mask.of(m)) for m in _masks(_sole(shapes))]


_op("masked_select", _one(lambda a, mask: a[mask.array]),
    [_spelling("torch.masked_select({0}, {mask})", lambda x, mask: torch.masked_select(x, mask)),
     _spelling("{0}.masked_select({mask})", lambda x, mask: x.masked_select(mask))], _mask_options, ["masked_select"])

FILL_VALUES = (0.0, -1.5)  # exact in every dtype: the filled elements hold them exactly


def _fill_options(shapes):
    return [_params(mask=Mask.of(m), value=v) for m in _masks(_sole(shapes)) for v in FILL_VALUES]


def _masked_fill_map(arrays, p, constant):
    out = np.array(arrays[0], dtype=object)
    out[p["mask"].array] = constant(p["value"])
    return out


_op("masked_fill", _masked_fill_map,
    [_spelling("torch.masked_fill({0}, {mask}, {value})", lambda x, mask, value: torch.masked_fill(x, mask, value)),
     _spelling("{0}.masked_fill({mask}, {value})", lambda x, mask, value: x.masked_fill(mask, value))],
    _fill_options, ["masked_fill"])


def _index_fill_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, index=Indices(i), value=v) for d, n in enumerate(shape) for i in _index_lists(n)
            for v in FILL_VALUES]


def _index_fill_map(arrays, p, constant):
    out = np.array(arrays[0], dtype=object)
    out[(slice(None),) * p["dim"] + (p["index"].array,)] = constant(p["value"])
    return out


_op("index_fill", _index_fill_map,
    [_spelling("torch.index_fill({0}, {dim}, {index}, {value})",
               lambda x, dim, index, value: torch.index_fill(x, dim, index, value)),
     _spelling("{0}.index_fill({dim}, {index}, {value})",
               lambda x, dim, index, value: x.index_fill(dim, index, value))],
    _index_fill_options, ["index_fill"])
_op("where", lambda arrays, p, constant: np.where(p["condition"].array, arrays[0], arrays[1]),
    [_spelling("torch.where({condition}, {0}, {1})", lambda x, y, condition: torch.where(condition, x, y)),
     _spelling("{0}.where({condition}, {1})", lambda x, y, condition: x.where(condition, y))],
    lambda shapes: [_params(condition=Mask.of(m)) for m in _masks(shapes[0])], ["where"], arity=2)


# ------------------------------------------------------------------ padding
def _source_position(i: int, n: int, before: int, mode: str) -> int | None:
    """The input position along one dim that output position i of a padded dim copies (None: the constant)."""
    j = i - before
    if 0 <= j < n:
        return j
    if mode == "constant":
        return None
    if mode == "reflect":
        return -j if j < 0 else 2 * (n - 1) - j
    if mode == "replicate":
        return min(max(j, 0), n - 1)
    return j % n  # circular


def _padded(a: np.ndarray, pad: tuple[int, ...], mode: str, fill) -> np.ndarray:
    """torch.nn.functional.pad: `pad` holds (before, after) pairs from the last dim backwards; negative
    amounts crop."""
    amounts = {a.ndim - 1 - k: (pad[2 * k], pad[2 * k + 1]) for k in range(len(pad) // 2)}
    positions = []
    for d, n in enumerate(a.shape):
        before, after = amounts.get(d, (0, 0))
        positions.append([_source_position(i, n, before, mode) for i in range(n + before + after)])
    out = np.empty(tuple(len(p) for p in positions), dtype=object)
    for index in np.ndindex(*out.shape):
        source = tuple(positions[d][i] for d, i in enumerate(index))
        out[index] = fill if None in source else a[source]
    return out


def _pad_options(mode: str):
    def options(shapes):
        shape = _sole(shapes)
        rank = len(shape)
        out = []
        # reflect, replicate and circular pad the last dim of a 2-D or 3-D input, the last two of a 3-D one
        for padded in (1, 2):
            if mode != "constant" and not padded + 1 <= rank <= padded + 2:
                continue
            if mode == "constant" and padded > rank:
                continue
            amounts = (-1, 0, 1, 2) if mode in ("constant", "replicate_negative") else (0, 1, 2)
            for pad in itertools.product(amounts if padded == 1 else amounts[:3], repeat=2 * padded):
                sizes = [shape[rank - 1 - k] for k in range(padded)]
                if not any(pad) or not _pad_fits(mode, pad, sizes):
                    continue
                if mode == "replicate_negative" and min(pad) >= 0:
                    continue
                for value in FILL_VALUES if mode == "constant" else (None,):
                    out.append(_params(pad=pad, value=value) if value is not None else _params(pad=pad))
        return out
    return options


def _pad_fits(mode: str, pad, sizes) -> bool:
    for k, n in enumerate(sizes):
        before, after = pad[2 * k], pad[2 * k + 1]
        if n + before + after < 1:
            return False
        if mode == "constant" and (before < 0 and -before >= n or after < 0 and -after >= n):
            return False
        if mode == "reflect" and max(before, after) >= n:
            return False
        if mode == "circular" and max(before, after) > n:
            return False
        if mode == "replicate_negative" and (min(before, after) < 0 and n + min(before, 0) + min(after, 0) < 1):
            return False
    return True


_op("pad_constant", lambda arrays, p, constant: _padded(arrays[0], p["pad"], "constant", constant(p["value"])),
    [_spelling("torch.nn.functional.pad({0}, {pad}, value={value})",
               lambda x, pad, value: torch.nn.functional.pad(x, pad, value=value)),
     _spelling("torch.constant_pad_nd({0}, {pad}, {value})",
               lambda x, pad, value: torch.constant_pad_nd(x, pad, value))],
    _pad_options("constant"), ["nn.functional.pad[constant]", "constant_pad_nd"], ranks=(1, 2, 3))
for _mode, _variant in (("reflect", "reflect"), ("replicate", "replicate"), ("circular", "circular"),
                        ("replicate", "replicate_negative")):
    _op(f"pad_{_variant}", lambda arrays, p, constant, _m=_mode: _padded(arrays[0], p["pad"], _m, None),
        [_spelling(f"torch.nn.functional.pad({{0}}, {{pad}}, mode={_mode!r})",
                   lambda x, pad, _m=_mode: torch.nn.functional.pad(x, pad, mode=_m))],
        _pad_options(_variant), [f"nn.functional.pad[{_variant}]"], ranks=(2, 3))


# ------------------------------------------------------------------ one piece of a split
def _equal_pieces(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _sized_pieces(sizes) -> list[tuple[int, int]]:
    ends = list(itertools.accumulate(sizes))
    return [(end - size, end) for size, end in zip(sizes, ends)]


def _sections(n: int, count: int) -> list[tuple[int, int]]:
    """torch.tensor_split into `count` sections: the first n % count are one longer."""
    q, r = divmod(n, count)
    return _sized_pieces([q + 1] * r + [q] * (count - r))


def _piece(bounds: Callable) -> Callable:
    """The index map of one piece of a split: `bounds(n, **params)` lists the pieces along `dim`."""
    def index_map(arrays, p, constant):
        params = dict(p.items)
        a, dim, piece = arrays[0], params.pop("dim"), params.pop("piece")
        start, stop = bounds(a.shape[dim], **params)[piece]
        return _take(a, range(start, stop), dim)
    return index_map


def _piece_options(choices: Callable[[int], list[dict]], bounds: Callable, dims: Callable = None):
    """Every parameter set `choices(n)` of every dim (or `dims(rank)`), with each non-empty piece."""
    def options(shapes):
        shape = _sole(shapes)
        out = []
        for dim in (dims(len(shape)) if dims else range(len(shape))):
            for params in choices(shape[dim]):
                for piece, (start, stop) in enumerate(bounds(shape[dim], **params)):
                    if stop > start:
                        out.append(_params(**params, dim=dim, piece=piece))
        return out
    return options


def _sizes_of(n: int) -> list[dict]:
    return [{"split_size": s} for s in range(1, n + 1)]


def _size_lists(n: int) -> list[dict]:
    return [{"sizes": s} for k in (1, 2, 3) for s in itertools.product(range(1, n + 1), repeat=k) if sum(s) == n]


def _split_bounds(n, split_size):
    return _equal_pieces(n, split_size)


def _sizes_bounds(n, sizes):
    return _sized_pieces(sizes)


_op("split", _piece(_split_bounds),
    [_spelling("torch.split({0}, {split_size}, dim={dim})[{piece}]",
               lambda x, split_size, dim, piece: torch.split(x, split_size, dim=dim)[piece]),
     _spelling("{0}.split({split_size}, {dim})[{piece}]",
               lambda x, split_size, dim, piece: x.split(split_size, dim)[piece]),
     _spelling("torch.unsafe_split({0}, {split_size}, dim={dim})[{piece}]",
               lambda x, split_size, dim, piece: torch.unsafe_split(x, split_size, dim=dim)[piece])],
    _piece_options(_sizes_of, _split_bounds), ["split", "unsafe_split"])
_op("split_with_sizes", _piece(_sizes_bounds),
    [_spelling("torch.split({0}, {sizes}, dim={dim})[{piece}]",
               lambda x, sizes, dim, piece: torch.split(x, list(sizes), dim=dim)[piece]),
     _spelling("{0}.split_with_sizes({sizes}, {dim})[{piece}]",
               lambda x, sizes, dim, piece: x.split_with_sizes(list(sizes), dim)[piece]),
     _spelling("torch.split_with_sizes_copy({0}, {sizes}, dim={dim})[{piece}]",
               lambda x, sizes, dim, piece: torch.split_with_sizes_copy(x, list(sizes), dim=dim)[piece])],
    _piece_options(_size_lists, _sizes_bounds), ["split[list_args]", "split_with_sizes", "split_with_sizes_copy"])


def _chunk_bounds(n, chunks):
    return _equal_pieces(n, -(-n // chunks))


_op("chunk", _piece(_chunk_bounds),
    [_spelling("torch.chunk({0}, {chunks}, dim={dim})[{piece}]",
               lambda x, chunks, dim, piece: torch.chunk(x, chunks, dim=dim)[piece]),
     _spelling("{0}.chunk({chunks}, {dim})[{piece}]", lambda x, chunks, dim, piece: x.chunk(chunks, dim)[piece]),
     _spelling("torch.unsafe_chunk({0}, {chunks}, dim={dim})[{piece}]",
               lambda x, chunks, dim, piece: torch.unsafe_chunk(x, chunks, dim=dim)[piece])],
    _piece_options(lambda n: [{"chunks": c} for c in range(1, n + 2)], _chunk_bounds), ["chunk", "unsafe_chunk"])


def _tensor_split_bounds(n, sections):
    if isinstance(sections, int):
        return _sections(n, sections)
    ends = list(sections) + [n]
    return list(zip([0] + list(sections), ends))


def _tensor_split_choices(n):
    return [{"sections": s} for s in range(1, n + 2)] + [{"sections": (i,)} for i in range(1, n)]


_op("tensor_split", _piece(_tensor_split_bounds),
    [_spelling("torch.tensor_split({0}, {sections}, dim={dim})[{piece}]",
               lambda x, sections, dim, piece: torch.tensor_split(x, sections, dim=dim)[piece]),
     _spelling("{0}.tensor_split({sections}, {dim})[{piece}]",
               lambda x, sections, dim, piece: x.tensor_split(sections, dim)[piece])],
    _piece_options(_tensor_split_choices, _tensor_split_bounds), ["tensor_split"])


def _equal_sections(n):
    return [{"sections": s} for s in range(1, n + 1) if n % s == 0]


def _even_bounds(n, sections):
    return _equal_pieces(n, n // sections)


for _name, _dims, _ranks in (("hsplit", lambda rank: [0 if rank == 1 else 1], (1, 2)),
                             ("vsplit", lambda rank: [0] if rank >= 2 else [], (2,)),
                             ("dsplit", lambda rank: [2] if rank >= 3 else [], (3,))):
    _op(_name, _piece(_even_bounds),
        [_spelling(f"torch.{_name}({{0}}, {{sections}})[{{piece}}]",
                   lambda x, sections, dim, piece, _n=_name: getattr(torch, _n)(x, sections)[piece])],
        _piece_options(_equal_sections, _even_bounds, _dims), [_name], ranks=_ranks)


def _unbind_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d, piece=i) for d, n in enumerate(shape) for i in range(n)]


_op("unbind", _one(lambda a, dim, piece: np.take(a, piece, axis=dim)),
    [_spelling("torch.unbind({0}, {dim})[{piece}]", lambda x, dim, piece: torch.unbind(x, dim)[piece]),
     _spelling("{0}.unbind({dim})[{piece}]", lambda x, dim, piece: x.unbind(dim)[piece]),
     _spelling("torch.unbind_copy({0}, {dim})[{piece}]", lambda x, dim, piece: torch.unbind_copy(x, dim)[piece])],
    _unbind_options, ["unbind", "unbind_copy"])


# ------------------------------------------------------------------ two tensors into one
def _resized(shape: tuple[int, ...], dim: int, size: int) -> tuple[int, ...]:
    return shape[:dim] + (size,) + shape[dim + 1:]


def _resized_along_a_dim(shape):
    """The shape itself, and the shape with one dim's size changed to 1..3 (a concatenation's other part,
    the part of a tensor a scatter writes)."""
    return [(shape, shape)] + [(shape, _resized(shape, d, k)) for d in range(len(shape)) for k in range(1, 4)
                               if k != shape[d]]


def _cat_options(shapes):
    a, b = shapes
    rank = len(a)
    return [_params(dim=d) for d in range(-rank, rank) if _resized(b, d % rank, a[d]) == a]


_op("cat", lambda arrays, p, constant: np.concatenate(arrays, axis=p["dim"]),
    [_spelling("torch.cat(({0}, {1}), {dim})", lambda x, y, dim: torch.cat((x, y), dim)),
     _spelling("torch.concat(({0}, {1}), dim={dim})", lambda x, y, dim: torch.concat((x, y), dim=dim))],
    _cat_options, ["cat"], arity=2, operand_shapes=_resized_along_a_dim)
_op("stack", lambda arrays, p, constant: np.stack(arrays, axis=p["dim"]),
    [_spelling("torch.stack(({0}, {1}), {dim})", lambda x, y, dim: torch.stack((x, y), dim))],
    lambda shapes: [_params(dim=d) for d in range(-len(shapes[0]) - 1, len(shapes[0]) + 1)], ["stack"], arity=2)
for _name, _stacker, _ranks in (("hstack", np.hstack, (1, 2)), ("vstack", np.vstack, (1, 2)),
                                ("dstack", np.dstack, (1, 2, 3)), ("column_stack", np.column_stack, (1, 2))):
    _op(_name, lambda arrays, p, constant, _s=_stacker: _s(arrays),
        [_spelling(f"torch.{_name}(({{0}}, {{1}}))", lambda x, y, _n=_name: getattr(torch, _n)((x, y)))],
        _no_parameters, [_name], arity=2, ranks=_ranks)


def _block_diag_map(arrays, p, constant):
    blocks = [a.reshape(1, -1) if a.ndim == 1 else a for a in arrays]
    rows, columns = sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)
    out = np.full((rows, columns), constant(0), dtype=object)
    r = c = 0
    for b in blocks:
        out[r:r + b.shape[0], c:c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


_op("block_diag", _block_diag_map, [_spelling("torch.block_diag({0}, {1})", torch.block_diag)], _no_parameters,
    ["block_diag"], arity=2)


def _cartesian_map(arrays, p, constant):
    a, b = arrays
    out = np.empty((a.size * b.size, 2), dtype=object)
    for k, (u, v) in enumerate(itertools.product(a, b)):
        out[k] = (u, v)
    return out


_op("cartesian_prod", _cartesian_map, [_spelling("torch.cartesian_prod({0}, {1})", torch.cartesian_prod)],
    _no_parameters, ["cartesian_prod"], arity=2, ranks=(1,))


def _combinations_options(shapes):
    n = _sole(shapes)[0]
    return [_params(r=r, with_replacement=w) for r in (2, 3, 1) for w in (False, True) if w or r <= n]


def _combinations_map(a, r, with_replacement):
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = list(pick(range(a.shape[0]), r))
    out = np.empty((len(rows), r), dtype=object)
    for k, row in enumerate(rows):
        for j, i in enumerate(row):
            out[k, j] = a[i]
    return out


_op("combinations", _one(_combinations_map),
    [_spelling("torch.combinations({0}, r={r}, with_replacement={with_replacement})",
               lambda x, r, with_replacement: torch.combinations(x, r=r, with_replacement=with_replacement))],
    _combinations_options, ["combinations"], ranks=(1,))


# ------------------------------------------------------------------ writing a source into a copy (scatters)
def _written(a: np.ndarray, where, source) -> np.ndarray:
    out = np.array(a, dtype=object)
    out[where] = source
    return out


def _without_a_dim(shape):
    return [(shape, shape[:d] + shape[d + 1:]) for d in range(len(shape))]


def _select_scatter_options(shapes):
    a, b = shapes
    return [_params(dim=d, index=i) for d, n in enumerate(a) if a[:d] + a[d + 1:] == b for i in range(-n, n)]


_op("select_scatter", lambda arrays, p, constant: _written(arrays[0], (slice(None),) * p["dim"] + (p["index"],),
                                                           arrays[1]),
    [_spelling("torch.select_scatter({0}, {1}, {dim}, {index})",
               lambda x, y, dim, index: torch.select_scatter(x, y, dim, index))],
    _select_scatter_options, ["select_scatter"], arity=2, ranks=(2, 3), operand_shapes=_without_a_dim)


def _slice_scatter_options(shapes):
    a, b = shapes
    out = []
    for d, n in enumerate(a):
        if _resized(a, d, b[d]) != b:
            continue
        for start, end, step in itertools.product((None, 1), (None, -1), (1, 2)):
            if len(range(n)[slice(start, end, step)]) == b[d]:
                out.append(_params(dim=d, start=start, end=end, step=step))
    return out


_op("slice_scatter",
    lambda arrays, p, constant: _written(
        arrays[0], (slice(None),) * p["dim"] + (slice(p["start"], p["end"], p["step"]),), arrays[1]),
    [_spelling("torch.slice_scatter({0}, {1}, dim={dim}, start={start}, end={end}, step={step})",
               lambda x, y, dim, start, end, step: torch.slice_scatter(x, y, dim=dim, start=start, end=end,
                                                                       step=step))],
    _slice_scatter_options, ["slice_scatter"], arity=2, operand_shapes=_resized_along_a_dim)


def _diagonal_lengths(shape):
    return [(shape, (k,)) for k in range(1, min(shape) + 1)] if len(shape) == 2 else []


def _diagonal_scatter_options(shapes):
    a, b = shapes
    return [p for p in _diagonal_options((a,))
            if np.diagonal(np.empty(a), p["offset"], p["dim1"], p["dim2"]).shape == b]


def _diagonal_scatter_map(arrays, p, constant):
    a, b = arrays
    out = np.array(a, dtype=object).reshape(-1)
    positions = np.diagonal(np.arange(a.size).reshape(a.shape), p["offset"], p["dim1"], p["dim2"])
    out[positions] = b
    return out.reshape(a.shape)


_op("diagonal_scatter", _diagonal_scatter_map,
    [_spelling("torch.diagonal_scatter({0}, {1}, {offset}, {dim1}, {dim2})",
               lambda x, y, offset, dim1, dim2: torch.diagonal_scatter(x, y, offset, dim1, dim2))],
    _diagonal_scatter_options, ["diagonal_scatter"], arity=2, ranks=(2,), operand_shapes=_diagonal_lengths)


def _distinct_lists(n: int, k: int) -> list[tuple[int, ...]]:
    """k distinct indices into n (a scatter that writes one place twice leaves torch free to keep either)."""
    return list(itertools.islice(itertools.permutations(range(n), k), 12))


def _index_copy_options(shapes):
    a, b = shapes
    return [_params(dim=d, index=Indices(i)) for d, n in enumerate(a) if _resized(a, d, b[d]) == b and b[d] <= n
            for i in _distinct_lists(n, b[d])]


_op("index_copy",
    lambda arrays, p, constant: _written(arrays[0], (slice(None),) * p["dim"] + (p["index"].array,), arrays[1]),
    [_spelling("torch.index_copy({0}, {dim}, {index}, {1})",
               lambda x, y, dim, index: torch.index_copy(x, dim, index, y)),
     _spelling("{0}.index_copy({dim}, {index}, {1})", lambda x, y, dim, index: x.index_copy(dim, index, y))],
    _index_copy_options, ["index_copy"], arity=2, operand_shapes=_resized_along_a_dim)


def _index_put_options(shapes):
    a, b = shapes
    return [_params(indices=(Indices(i),)) for i in _distinct_lists(a[0], b[0])] if _resized(a, 0, b[0]) == b else []


_op("index_put", lambda arrays, p, constant: _written(arrays[0], p["indices"][0].array, arrays[1]),
    [_spelling("torch.index_put({0}, {indices}, {1})",
               lambda x, y, indices: torch.index_put(x, indices, y)),
     _spelling("{0}.index_put({indices}, {1})",
               lambda x, y, indices: x.index_put(indices, y))],
    _index_put_options, ["index_put"], arity=2,
    operand_shapes=lambda shape: [(shape, _resized(shape, 0, k)) for k in range(1, shape[0] + 1)])


def _masked_scatter_map(arrays, p, constant):
    a, b = arrays
    mask = p["mask"].array
    return _written(a, mask, b.reshape(-1)[:int(mask.sum())])


_op("masked_scatter", _masked_scatter_map,
    [_spelling("torch.masked_scatter({0}, {mask}, {1})", lambda x, y, mask: torch.masked_scatter(x, mask, y)),
     _spelling("{0}.masked_scatter({mask}, {1})", lambda x, y, mask: x.masked_scatter(mask, y))],
    lambda shapes: [_params(mask=Mask.of(m)) for m in _masks(shapes[0])], ["masked_scatter"], arity=2)


def _scatter_index_arrays(a, b, d):
    """Index arrays of b's shape whose entries along `d` are distinct: (position + c) mod n for each c."""
    grid = np.indices(b)
    along, rest = grid[d], grid.sum(axis=0) - grid[d]
    n = a[d]
    return [(along + c) % n for c in range(n)] + [(n - 1 - along) % n, (along + rest) % n if b[d] == 1 else along]


def _scatter_options(shapes):
    a, b = shapes
    out = []
    for d in range(len(a)):
        if _resized(a, d, b[d]) == b and b[d] <= a[d]:
            for index in _scatter_index_arrays(a, b, d):
                out.append(_params(dim=d, index=Indices.of(index)))
    return list(dict.fromkeys(out))


def _scatter_map(arrays, p, constant):
    a, b = arrays
    d, index = p["dim"], p["index"].array
    out = np.array(a, dtype=object)
    for position in np.ndindex(*b.shape):
        target = position[:d] + (int(index[position]),) + position[d + 1:]
        out[target] = b[position]
    return out


_op("scatter", _scatter_map,
    [_spelling("torch.scatter({0}, {dim}, {index}, {1})", lambda x, y, dim, index: torch.scatter(x, dim, index, y)),
     _spelling("{0}.scatter({dim}, {index}, {1})", lambda x, y, dim, index: x.scatter(dim, index, y))],
    _scatter_options, ["scatter"], arity=2, operand_shapes=_resized_along_a_dim)


def _put_options(shapes):
    a, b = shapes
    return [_params(index=Indices(i)) for i in _distinct_lists(math.prod(a), b[0])]


_op("put",
    lambda arrays, p, constant: _written(arrays[0].reshape(-1), p["index"].array, arrays[1]).reshape(arrays[0].shape),
    [_spelling("torch.put({0}, {index}, {1})", lambda x, y, index: torch.put(x, index, y)),
     _spelling("{0}.put({index}, {1})", lambda x, y, index: x.put(index, y))],
    _put_options, ["put"], arity=2,
    operand_shapes=lambda shape: [(shape, (k,)) for k in range(1, min(math.prod(shape), 3) + 1)])


# ------------------------------------------------------------------ one of several outputs of two tensors
def _pieces_of_two(shapes):
    return [_params(piece=i) for i in (0, 1)]


def _its_own(p) -> tuple[int, ...]:
    """Output k of broadcast_tensors and meshgrid is made of argument k alone."""
    return (p["piece"],)


_op("broadcast_tensors", lambda arrays, p, constant: np.broadcast_arrays(*arrays)[p["piece"]],
    [_spelling("torch.broadcast_tensors({0}, {1})[{piece}]", lambda x, y, piece: torch.broadcast_tensors(x, y)[piece])],
    _pieces_of_two, ["broadcast_tensors"], arity=2, reads=_its_own,
    operand_shapes=lambda shape: [(shape, shape), (shape, shape[-1:]), (shape, (1,) * len(shape))])
_op("meshgrid", lambda arrays, p, constant: np.meshgrid(*arrays, indexing=p["indexing"])[p["piece"]],
    [_spelling("torch.meshgrid({0}, {1}, indexing={indexing})[{piece}]",
               lambda x, y, indexing, piece: torch.meshgrid(x, y, indexing=indexing)[piece]),
     _spelling("torch.meshgrid(({0}, {1}), indexing={indexing})[{piece}]",
               lambda x, y, indexing, piece: torch.meshgrid((x, y), indexing=indexing)[piece])],
    lambda shapes: [_params(indexing=i, piece=k) for i in ("ij", "xy") for k in (0, 1)],
    ["meshgrid[variadic_tensors]", "meshgrid[list_of_tensors]"], arity=2, ranks=(1,), reads=_its_own,
    operand_shapes=lambda shape: [(shape, (k,)) for k in range(1, 4)])


# ------------------------------------------------------------------ adding into a copy, sums of elements
def _added(a: np.ndarray, targets, source: np.ndarray) -> np.ndarray:
    """A copy of `a` with each source element added at its target index (repeats accumulate)."""
    out = np.array(a, dtype=object)
    for position, target in zip(np.ndindex(*source.shape), targets):
        out[target] = plus(out[target], source[position])
    return out


def _index_targets(source_shape, dim: int, index: np.ndarray):
    for position in np.ndindex(*source_shape):
        yield position[:dim] + (int(index[position[dim]]),) + position[dim + 1:]


def _index_add_options(shapes):
    a, b = shapes
    return [_params(dim=d, index=Indices(i)) for d, n in enumerate(a) if _resized(a, d, b[d]) == b
            for i in itertools.islice(itertools.product(range(n), repeat=b[d]), 12)]


_op("index_add",
    lambda arrays, p, constant: _added(arrays[0], _index_targets(arrays[1].shape, p["dim"], p["index"].array),
                                       arrays[1]),
    [_spelling("torch.index_add({0}, {dim}, {index}, {1})", lambda x, y, dim, index: torch.index_add(x, dim, index, y)),
     _spelling("{0}.index_add({dim}, {index}, {1})", lambda x, y, dim, index: x.index_add(dim, index, y))],
    _index_add_options, ["index_add"], arity=2, operand_shapes=_resized_along_a_dim)


def _scatter_targets(index: np.ndarray, dim: int):
    for position in np.ndindex(*index.shape):
        yield position[:dim] + (int(index[position]),) + position[dim + 1:]


def _scatter_add_options(shapes):
    a, b = shapes
    out = []
    for d in range(len(a)):
        if _resized(a, d, b[d]) == b:
            grid = np.indices(b)
            for index in (np.zeros(b, dtype=int), grid[d] % a[d], (grid.sum(axis=0)) % a[d]):
                out.append(_params(dim=d, index=Indices.of(index)))
    return list(dict.fromkeys(out))


_op("scatter_add",
    lambda arrays, p, constant: _added(arrays[0], _scatter_targets(p["index"].array, p["dim"]), arrays[1]),
    [_spelling("torch.scatter_add({0}, {dim}, {index}, {1})",
               lambda x, y, dim, index: torch.scatter_add(x, dim, index, y)),
     _spelling("{0}.scatter_add({dim}, {index}, {1})", lambda x, y, dim, index: x.scatter_add(dim, index, y))],
    _scatter_add_options, ["scatter_add"], arity=2, operand_shapes=_resized_along_a_dim)


def _scatter_sum_map(arrays, p, constant):
    a, b = arrays
    targets = list(_scatter_targets(p["index"].array, p["dim"]))
    start = np.array(a, dtype=object)
    if not p["include_self"]:  # the places written start from the source alone
        for target in targets:
            start[target] = constant(0)
    return _added(start, targets, b)


_op("scatter_reduce_sum", _scatter_sum_map,
    [_spelling("torch.scatter_reduce({0}, {dim}, {index}, {1}, 'sum', include_self={include_self})",
               lambda x, y, dim, index, include_self: torch.scatter_reduce(x, dim, index, y, "sum",
                                                                           include_self=include_self)),
     _spelling("{0}.scatter_reduce({dim}, {index}, {1}, 'sum', include_self={include_self})",
               lambda x, y, dim, index, include_self: x.scatter_reduce(dim, index, y, "sum",
                                                                       include_self=include_self))],
    lambda shapes: [_params(**dict(p.items), include_self=s) for p in _scatter_add_options(shapes)
                    for s in (True, False)],
    ["scatter_reduce[sum]"], arity=2, operand_shapes=_resized_along_a_dim)


def _put_accumulate_options(shapes):
    a, b = shapes
    lists = itertools.islice(itertools.product(range(math.prod(a)), repeat=b[0]), 12)
    return [_params(index=Indices(i)) for i in lists]


_op("put_accumulate",
    lambda arrays, p, constant: _added(arrays[0].reshape(-1), [(int(i),) for i in p["index"].array],
                                       arrays[1]).reshape(arrays[0].shape),
    [_spelling("torch.put({0}, {index}, {1}, accumulate=True)",
               lambda x, y, index: torch.put(x, index, y, accumulate=True))],
    _put_accumulate_options, ["put"], arity=2,
    operand_shapes=lambda shape: [(shape, (k,)) for k in range(1, min(math.prod(shape), 3) + 1)])


def _index_put_accumulate_options(shapes):
    a, b = shapes
    if _resized(a, 0, b[0]) != b:
        return []
    return [_params(indices=(Indices(i),)) for i in itertools.islice(itertools.product(range(a[0]), repeat=b[0]), 12)]


_op("index_put_accumulate",
    lambda arrays, p, constant: _added(arrays[0], _index_targets(arrays[1].shape, 0, p["indices"][0].array), arrays[1]),
    [_spelling("torch.index_put({0}, {indices}, {1}, accumulate=True)",
               lambda x, y, indices: torch.index_put(x, indices, y,
                                                     accumulate=True))],
    _index_put_accumulate_options, ["index_put"], arity=2,
    operand_shapes=lambda shape: [(shape, _resized(shape, 0, k)) for k in range(1, shape[0] + 1)])


def _trace_map(arrays, p, constant):
    diagonal = np.diagonal(arrays[0])
    total = constant(0)
    for element in diagonal:
        total = plus(total, element)
    return np.array(total, dtype=object)


_op("trace", _trace_map, [_spelling("torch.trace({0})", torch.trace), _spelling("{0}.trace()", torch.Tensor.trace)],
    _no_parameters, ["trace"], ranks=(2,))


def _sum_to_size_options(shapes):
    shape = _sole(shapes)
    return [_params(size=s) for s in itertools.product(*[(1, n) if n > 1 else (1,) for n in shape])
            ] + [_params(size=shape[k:]) for k in range(1, len(shape))]


def _sum_to_size_map(a, size):
    lead = a.ndim - len(size)
    out = np.empty(size, dtype=object)
    for index in np.ndindex(*size):
        total = Constant(0)
        for source in np.ndindex(*a.shape):
            if all(size[d] != 1 and source[lead + d] == index[d] or size[d] == 1 for d in range(len(size))):
                total = plus(total, a[source])
        out[index] = total
    return out


_op("sum_to_size", _one(_sum_to_size_map),
    [_spelling("{0}.sum_to_size({size})", lambda x, size: x.sum_to_size(size))], _sum_to_size_options, ["sum_to_size"])


def _diff_options(shapes):
    shape = _sole(shapes)
    return [_params(dim=d) for d in range(-len(shape), len(shape)) if shape[d] > 1]


def _diff_map(a, dim):
    n = a.shape[dim]
    later, earlier = _take(a, range(1, n), dim), _take(a, range(n - 1), dim)
    return np.frompyfunc(minus, 2, 1)(later, earlier)


_op("diff", _one(_diff_map),
    [_spelling("torch.diff({0}, dim={dim})", lambda x, dim: torch.diff(x, dim=dim)),
     _spelling("{0}.diff(dim={dim})", lambda x, dim: x.diff(dim=dim))], _diff_options, ["diff"])


def _embedding_options(shapes):
    rows = _sole(shapes)[0]
    lists = _index_lists(rows)
    return [_params(indices=Indices(i)) for i in lists] + [_params(indices=Indices((i, i))) for i in lists[:3]]


_op("embedding", _one(lambda a, indices: a[indices.array]),
    [_spelling("torch.nn.functional.embedding({indices}, {0})",
               lambda x, indices: torch.nn.functional.embedding(indices, x))],
    _embedding_options, ["nn.functional.embedding"], ranks=(2,))


def _bags_options(shapes):
    rows = _sole(shapes)[0]
    return [_params(indices=Indices(i), offsets=Indices(o)) for i in _index_lists(rows)
            for o in ((0,), (0, 1)) if o[-1] < len(i)]


def _bag_sums(a, indices, offsets):
    chosen, starts = indices.array, list(offsets.array) + [len(indices.values)]
    out = np.empty((len(starts) - 1, a.shape[1]), dtype=object)
    for b in range(len(starts) - 1):
        for column in range(a.shape[1]):
            total = Constant(0)
            for i in chosen[starts[b]:starts[b + 1]]:
                total = plus(total, a[int(i), column])
            out[b, column] = total
    return out


_op("embedding_bag", _one(_bag_sums),
    [_spelling("torch.nn.functional.embedding_bag({indices}, {0}, {offsets}, mode='sum')",
               lambda x, indices, offsets: torch.nn.functional.embedding_bag(indices, x, offsets, mode="sum"))],
    _bags_options, ["nn.functional.embedding_bag"], ranks=(2,))


# ------------------------------------------------------------------ moving channels and pixels
UPSCALE = 2


def _pixel_shuffle_map(a, upscale_factor):
    r = upscale_factor
    c, h, w = a.shape[-3] // (r * r), a.shape[-2], a.shape[-1]
    return a.reshape(c, r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c, h * r, w * r)


def _pixel_unshuffle_map(a, downscale_factor):
    r = downscale_factor
    c, h, w = a.shape[-3], a.shape[-2] // r, a.shape[-1] // r
    return a.reshape(c, h, r, w, r).transpose(0, 2, 4, 1, 3).reshape(c * r * r, h, w)


_op("pixel_shuffle", _one(_pixel_shuffle_map),
    [_spelling("torch.nn.functional.pixel_shuffle({0}, {upscale_factor})",
               lambda x, upscale_factor: torch.nn.functional.pixel_shuffle(x, upscale_factor))],
    lambda shapes: [_params(upscale_factor=UPSCALE)] if _sole(shapes)[0] % UPSCALE**2 == 0 else [],
    ["nn.functional.pixel_shuffle"], ranks=(3,),
    operand_shapes=lambda s: [((UPSCALE * UPSCALE * min(s[0], 2), s[1], s[2]),)])
_op("pixel_unshuffle", _one(_pixel_unshuffle_map),
    [_spelling("torch.nn.functional.pixel_unshuffle({0}, {downscale_factor})",
               lambda x, downscale_factor: torch.nn.functional.pixel_unshuffle(x, downscale_factor))],
    lambda shapes: [_params(downscale_factor=UPSCALE)] if all(n % UPSCALE == 0 for n in _sole(shapes)[1:]) else [],
    ["nn.functional.pixel_unshuffle"], ranks=(3,),
    operand_shapes=lambda s: [((s[0], UPSCALE * s[1], UPSCALE * s[2]),)] if max(s[1], s[2]) <= 2 else [])


def _channel_shuffle_map(a, groups):
    n, c = a.shape[0], a.shape[1]
    rest = a.shape[2:]
    return a.reshape((n, groups, c // groups) + rest).swapaxes(1, 2).reshape(a.shape)


_op("channel_shuffle", _one(_channel_shuffle_map),
    [_spelling("torch.nn.functional.channel_shuffle({0}, {groups})",
               lambda x, groups: torch.nn.functional.channel_shuffle(x, groups))],
    lambda shapes: [_params(groups=g) for g in (2, 3) if _sole(shapes)[1] % g == 0], ["nn.functional.channel_shuffle"],
    ranks=(3,), operand_shapes=lambda s: [((s[0], 6, s[2]),)] if s[1] == 1 else [])


# ------------------------------------------------------------------ pooling and resampling
def _windows_product(a: np.ndarray, windows: list[list[tuple[int, int]]]) -> np.ndarray:
    """Average pooling of the last len(windows) dims: per output position the mean of the input's window,
    `windows[k]` the (start, end) of each output position along the k-th pooled dim."""
    pooled = len(windows)
    lead = a.shape[:a.ndim - pooled]
    out = np.empty(lead + tuple(len(w) for w in windows), dtype=object)
    for index in np.ndindex(*out.shape):
        head, tail = index[:len(lead)], index[len(lead):]
        spans = [range(*windows[k][i]) for k, i in enumerate(tail)]
        members = [a[head + inside] for inside in itertools.product(*spans)]
        out[index] = Total(tuple((m, 1) for m in members), math.prod(len(s) for s in spans))
    return out


def _sliding(n: int, kernel: int, stride: int) -> list[tuple[int, int]]:
    return [(start, start + kernel) for start in range(0, n - kernel + 1, stride)]


def _adaptive(n: int, size: int) -> list[tuple[int, int]]:
    """torch's adaptive windows: from floor(i n / size) to ceil((i + 1) n / size)."""
    return [(i * n // size, -(-(i + 1) * n // size)) for i in range(size)]


def _avg_pool_options(pooled: int):
    def options(shapes):
        sides = _sole(shapes)[-pooled:]
        out = []
        for kernel in itertools.product(*[range(1, min(n, 2) + 1) for n in sides]):
            for stride in (None, 1):
                out.append(_params(kernel_size=kernel if pooled > 1 else kernel[0],
                                   stride=stride if stride is None or pooled == 1 else (stride,) * pooled))
        return out
    return options


def _avg_pool_map(pooled: int):
    def index_map(a, kernel_size, stride):
        kernel = kernel_size if isinstance(kernel_size, tuple) else (kernel_size,)
        steps = kernel if stride is None else stride if isinstance(stride, tuple) else (stride,)
        return _windows_product(a, [_sliding(n, k, s) for n, k, s in zip(a.shape[-pooled:], kernel, steps)])
    return _one(index_map)


def _adaptive_options(pooled: int):
    def options(shapes):
        sides = _sole(shapes)[-pooled:]
        sizes = list(itertools.product(*[range(1, n + 2) for n in sides]))
        return [_params(output_size=s if pooled > 1 else s[0]) for s in sizes]
    return options


def _adaptive_map(pooled: int):
    def index_map(a, output_size):
        sizes = output_size if isinstance(output_size, tuple) else (output_size,)
        return _windows_product(a, [_adaptive(n, k) for n, k in zip(a.shape[-pooled:], sizes)])
    return _one(index_map)


def _batched(shape):
    """A 3-D input as a batch of one for the ops that pool three dims."""
    return [((1,) + shape,)]


_F = torch.nn.functional
for _d, _ranks, _shapes in ((1, (2, 3), None), (2, (3,), None), (3, (3,), _batched)):
    _op(f"avg_pool{_d}d", _avg_pool_map(_d),
        [_spelling(f"torch.nn.functional.avg_pool{_d}d({{0}}, {{kernel_size}}, stride={{stride}})",
                   lambda x, kernel_size, stride, _n=f"avg_pool{_d}d": getattr(_F, _n)(x, kernel_size, stride=stride))],
        _avg_pool_options(_d), [f"nn.functional.avg_pool{_d}d"], ranks=_ranks, operand_shapes=_shapes,
        cpu_dtypes=("float64", "float32") if _d == 3 else None)
    _op(f"adaptive_avg_pool{_d}d", _adaptive_map(_d),
        [_spelling(f"torch.nn.functional.adaptive_avg_pool{_d}d({{0}}, {{output_size}})",
                   lambda x, output_size, _n=f"adaptive_avg_pool{_d}d": getattr(_F, _n)(x, output_size))]
        + ([_spelling("torch.nn.functional.interpolate({0}, size={output_size}, mode='area')",
                      lambda x, output_size: _F.interpolate(x, size=output_size, mode="area"),
                      lambda shapes, p: len(shapes[0]) == 3)] if _d == 1 else []),
        _adaptive_options(_d),
        [f"nn.functional.adaptive_avg_pool{_d}d"] + (["nn.functional.interpolate[area]"] if _d == 1 else []),
        ranks=_ranks, operand_shapes=_shapes)


def _nearest(n: int, size: int, exact: bool) -> list[int]:
    """The source of each output position: nearest floor(i n / size), nearest-exact floor((i + 1/2) n / size)."""
    if exact:
        return [min((2 * i + 1) * n // (2 * size), n - 1) for i in range(size)]
    return [min(i * n // size, n - 1) for i in range(size)]


def _resample_options(shapes):
    return [_params(size=k) for k in range(1, 2 * _sole(shapes)[-1] + 2)]


for _mode, _opinfos in (("nearest", ["nn.functional.interpolate[nearest]", "nn.functional.upsample_nearest"]),
                        ("nearest-exact", ["nn.functional.interpolate[nearest-exact]"])):
    _spellings = [_spelling(f"torch.nn.functional.interpolate({{0}}, size={{size}}, mode={_mode!r})",
                            lambda x, size, _m=_mode: _F.interpolate(x, size=size, mode=_m))]
    if _mode == "nearest":
        _spellings.append(_spelling("torch.nn.functional.upsample_nearest({0}, size={size})",
                                    lambda x, size: _F.upsample_nearest(x, size=size)))
    _op(f"interpolate_{_mode}",
        _one(lambda a, size, _exact=_mode == "nearest-exact": _take(a, _nearest(a.shape[-1], size, _exact),
                                                                     a.ndim - 1)),
        _spellings, _resample_options, _opinfos, ranks=(3,))


# ------------------------------------------------------------------ sums and means of chosen elements
def _reduced(a: np.ndarray, dim, keepdim: bool, chosen: np.ndarray, mean: bool) -> np.ndarray:
    """Per slice along `dim` (None: everything) the sum, or mean, of the chosen elements."""
    dims = range(a.ndim) if dim is None else (dim % a.ndim,)
    kept = tuple(1 if d in dims else n for d, n in enumerate(a.shape))
    out = np.empty(kept, dtype=object)
    for index in np.ndindex(*kept):
        members = [a[m] for m in np.ndindex(*a.shape) if chosen[m]
                   and all(m[d] == index[d] for d in range(a.ndim) if d not in dims)]
        out[index] = Total(tuple((m, 1) for m in members), len(members) if mean else 1)
    return out if keepdim else out.reshape(tuple(n for d, n in enumerate(kept) if d not in dims))


def _reduction_options(shapes, keepdim_without_dim: bool = True):
    rank = len(_sole(shapes))
    return [_params(dim=d, keepdim=k) for d in [None, *range(-rank, rank)] for k in (False, True)
            if d is not None or keepdim_without_dim]


def _every_slice_chosen(mask: np.ndarray, dim) -> bool:
    return bool(mask.any()) if dim is None else bool(mask.any(axis=dim).all())


_op("nansum", _one(lambda a, dim, keepdim: _reduced(a, dim, keepdim, np.ones(a.shape, dtype=bool), mean=False)),
    [_spelling("torch.nansum({0}, dim={dim}, keepdim={keepdim})",
               lambda x, dim, keepdim: torch.nansum(x, dim=dim, keepdim=keepdim)),
     _spelling("{0}.nansum()", lambda x, dim, keepdim: x.nansum(), _with(dim=None, keepdim=False))],
    _reduction_options, ["nansum"])
_op("nanmean", _one(lambda a, dim, keepdim: _reduced(a, dim, keepdim, np.ones(a.shape, dtype=bool), mean=True)),
    [_spelling("torch.nanmean({0}, dim={dim}, keepdim={keepdim})",
               lambda x, dim, keepdim: torch.nanmean(x, dim=dim, keepdim=keepdim)),
     _spelling("{0}.nanmean()", lambda x, dim, keepdim: x.nanmean(), _with(dim=None, keepdim=False))],
    _reduction_options, ["nanmean"])


def _masked_reduction_options(mean: bool):
    def options(shapes):
        return [_params(dim=p["dim"], keepdim=p["keepdim"], mask=Mask.of(m)) for p in _reduction_options(shapes)
                for m in _masks(_sole(shapes)) if not mean or _every_slice_chosen(m, p["dim"])]
    return options


for _name, _mean in (("sum", False), ("mean", True)):
    _op(f"masked_{_name}", _one(lambda a, dim, keepdim, mask, _m=_mean: _reduced(a, dim, keepdim, mask.array, _m)),
        [_spelling(f"torch.masked.{_name}({{0}}, {{dim}}, keepdim={{keepdim}}, mask={{mask}})",
                   lambda x, dim, keepdim, mask, _n=_name: getattr(torch.masked, _n)(x, dim, keepdim=keepdim,
                                                                                      mask=mask))],
        _masked_reduction_options(_mean), [f"masked.{_name}"])


def _masked_cumsum_map(a, dim, mask):
    chosen, d = mask.array, dim % a.ndim
    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(*a.shape):
        prefix = [index[:d] + (k,) + index[d + 1:] for k in range(index[d] + 1)]
        out[index] = Total(tuple((a[m], 1) for m in prefix if chosen[m]))
    return out


_op("masked_cumsum", _one(_masked_cumsum_map),
    [_spelling("torch.masked.cumsum({0}, {dim}, mask={mask})",
               lambda x, dim, mask: torch.masked.cumsum(x, dim, mask=mask))],
    lambda shapes: [_params(dim=d, mask=Mask.of(m)) for d in range(len(_sole(shapes))) for m in _masks(_sole(shapes))],
    ["masked.cumsum"])


# ------------------------------------------------------------------ sliding blocks (im2col)
def _im2col_options(shapes):
    c, h, w = _sole(shapes)
    out = []
    for kernel in itertools.product(range(1, 3), repeat=2):
        for padding in (0, 1):
            for stride in (1, 2):
                if all(n + 2 * padding >= k for n, k in zip((h, w), kernel)):
                    out.append(_params(kernel_size=kernel, padding=padding, stride=stride))
    return out


def _im2col_map(arrays, p, constant):
    a = arrays[0]
    (kh, kw), pad, step = p["kernel_size"], p["padding"], p["stride"]
    channels, h, w = a.shape
    rows, columns = (h + 2 * pad - kh) // step + 1, (w + 2 * pad - kw) // step + 1
    out = np.empty((channels * kh * kw, rows * columns), dtype=object)
    for c, i, j, r, s in itertools.product(range(channels), range(kh), range(kw), range(rows), range(columns)):
        y, x = r * step + i - pad, s * step + j - pad
        out[(c * kh + i) * kw + j, r * columns + s] = a[c, y, x] if 0 <= y < h and 0 <= x < w else constant(0)
    return out


_op("im2col", _im2col_map,
    [_spelling("torch.nn.functional.unfold({0}, {kernel_size}, padding={padding}, stride={stride})",
               lambda x, kernel_size, padding, stride: torch.nn.functional.unfold(x, kernel_size, padding=padding,
                                                                                  stride=stride))],
    _im2col_options, ["nn.functional.unfold"], ranks=(3,))
