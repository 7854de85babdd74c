"""More gathering ops (oracles.table.shape_ops has the first ones): means scattered into a copy, strided views
of a tensor's storage, max_unpool's placement by indices, and aten's masked indexing; each an index map,
its spellings and its valid parameters for a shape, simplest first.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from oracles.table.shape_ops import (
    Indices,
    Mask,
    _index_add_options,
    _index_targets,
    _masks,
    _op,
    _params,
    _resized_along_a_dim,
    _scatter_add_options,
    _scatter_targets,
    _spelling,
)
from oracles.table.tensor_formulas import Total, plus

_F = torch.nn.functional


# ------------------------------------------------------------------ means scattered into a copy
def _scattered_mean(a: np.ndarray, targets, source: np.ndarray, include_self: bool) -> np.ndarray:
    """torch's 'mean' reduction into a copy of `a`: at each written place the sum of its sources (and of the
    place's own value, with `include_self`) divided by their count; other places keep their value."""
    sums: dict[tuple, list] = {}
    for position, target in zip(np.ndindex(*source.shape), targets):
        sums.setdefault(target, [a[target]] if include_self else []).append(source[position])
    out = np.array(a, dtype=object)
    for target, items in sums.items():
        out[target] = Total(tuple((item, 1) for item in items), len(items))
    return out


def _with_include_self(options):
    return lambda shapes: [_params(**dict(p.items), include_self=s) for p in options(shapes) for s in (True, False)]


_op("scatter_reduce_mean",
    lambda arrays, p, constant: _scattered_mean(arrays[0], list(_scatter_targets(p["index"].array, p["dim"])),
                                                arrays[1], p["include_self"]),
    [_spelling("torch.scatter_reduce({0}, {dim}, {index}, {1}, 'mean', include_self={include_self})",
               lambda x, y, dim, index, include_self: torch.scatter_reduce(x, dim, index, y, "mean",
                                                                           include_self=include_self)),
     _spelling("{0}.scatter_reduce({dim}, {index}, {1}, 'mean', include_self={include_self})",
               lambda x, y, dim, index, include_self: x.scatter_reduce(dim, index, y, "mean",
                                                                       include_self=include_self))],
    _with_include_self(_scatter_add_options), ["scatter_reduce[mean]"], arity=2,
    operand_shapes=_resized_along_a_dim)
_op("index_reduce_mean",
    lambda arrays, p, constant: _scattered_mean(
        arrays[0], list(_index_targets(arrays[1].shape, p["dim"], p["index"].array)), arrays[1], p["include_self"]),
    [_spelling("torch.index_reduce({0}, {dim}, {index}, {1}, 'mean', include_self={include_self})",
               lambda x, y, dim, index, include_self: torch.index_reduce(x, dim, index, y, "mean",
                                                                         include_self=include_self)),
     _spelling("{0}.index_reduce({dim}, {index}, {1}, 'mean', include_self={include_self})",
               lambda x, y, dim, index, include_self: x.index_reduce(dim, index, y, "mean",
                                                                     include_self=include_self))],
    _with_include_self(_index_add_options), ["index_reduce[mean]"], arity=2, operand_shapes=_resized_along_a_dim)


# ------------------------------------------------------------------ strided views of the storage
def _strided_positions(size, stride, offset) -> np.ndarray:
    """The storage position of each element of as_strided(x, size, stride, offset)."""
    out = np.full(size, offset, dtype=int)
    for d, s in enumerate(stride):
        shape = [1] * len(size)
        shape[d] = size[d]
        out = out + (np.arange(size[d]) * s).reshape(shape)
    return out


_LAYOUTS = (  # (size, stride): a copy, a transpose, overlapping windows, a repeated element, a scalar
    ((1,), (1,)), ((2,), (1,)), ((2,), (2,)), ((3,), (1,)), ((2, 2), (1, 2)), ((2, 2), (2, 1)), ((2, 2), (1, 1)),
    ((2, 3), (0, 1)), ((3, 2), (1, 0)), ((2, 1, 2), (1, 3, 2)), ((), ()),
)


def _strided_options(shapes, distinct: bool = False):
    """Every layout (and storage offset 0 or 1) that stays inside the storage of a contiguous tensor of the
    first argument's size (where `distinct`, only layouts whose elements are distinct places: a scatter)."""
    n = math.prod(shapes[0])
    out = []
    for (size, stride), offset in itertools.product(_LAYOUTS, (0, 1)):
        positions = _strided_positions(size, stride, offset)
        if positions.max(initial=offset) >= n or (distinct and len(set(positions.reshape(-1))) != positions.size):
            continue
        if len(shapes) == 1 or tuple(shapes[1]) == size:
            out.append(_params(size=size, stride=stride, storage_offset=offset))
    return out


def _strided_map(arrays, p, constant):
    return arrays[0].reshape(-1)[_strided_positions(p["size"], p["stride"], p["storage_offset"])]


# as_strided reads the storage, so its argument must be a tensor of its own (not a view of another)
_op("as_strided", _strided_map,
    [_spelling("torch.as_strided({0}, {size}, {stride}, {storage_offset})",
               lambda x, size, stride, storage_offset: torch.as_strided(x, size, stride, storage_offset),
               needs_contiguous=True),
     _spelling("{0}.as_strided({size}, {stride}, storage_offset={storage_offset})",
               lambda x, size, stride, storage_offset: x.as_strided(size, stride, storage_offset=storage_offset),
               needs_contiguous=True),
     _spelling("torch.as_strided_copy({0}, {size}, {stride}, {storage_offset})",
               lambda x, size, stride, storage_offset: torch.as_strided_copy(x, size, stride, storage_offset),
               needs_contiguous=True)],
    _strided_options, ["as_strided", "as_strided_copy"], ranks=(1, 2))


def _strided_scatter_map(arrays, p, constant):
    out = np.array(arrays[0], dtype=object)
    flat = out.reshape(-1)
    positions = _strided_positions(p["size"], p["stride"], p["storage_offset"])
    for index in np.ndindex(*positions.shape):
        flat[positions[index]] = arrays[1][index]
    return flat.reshape(arrays[0].shape)


def _strided_scatter_operands(shape):
    return [(shape, size) for size in dict.fromkeys(size for size, _ in _LAYOUTS)]


_op("as_strided_scatter", _strided_scatter_map,
    [_spelling("torch.as_strided_scatter({0}, {1}, {size}, {stride}, {storage_offset})",
               lambda x, y, size, stride, storage_offset: torch.as_strided_scatter(x, y, size, stride,
                                                                                   storage_offset),
               needs_contiguous=True)],
    lambda shapes: _strided_options(shapes, distinct=True), ["as_strided_scatter"], arity=2, ranks=(1, 2),
    operand_shapes=_strided_scatter_operands, wrong_backward="as-strided-scatter-input-gradient-inverted")


# ------------------------------------------------------------------ max_unpool: values placed by indices
def _unpool_options(dims: int):
    """kernel 1 or 2, stride the kernel's (torch's default) or 1 or 2, padding 0 or 1 (below half the kernel),
    and indices that pick in each window its first, its last, or alternately one and the other place of the
    output, where those are distinct places inside the output."""

    def options(shapes):
        shape = shapes[0]
        spatial = shape[-dims:]
        out = []
        for kernel, stride, padding in itertools.product((1, 2), (None, 1, 2), (0, 1)):
            step = kernel if stride is None else stride
            if 2 * padding > kernel:
                continue
            sizes = [(n - 1) * step - 2 * padding + kernel for n in spatial]
            if min(sizes) < 1:
                continue
            for pattern in ("first", "last", "alternate"):
                indices = _unpool_indices(shape, dims, kernel, step, padding, sizes, pattern)
                if indices is not None:
                    out.append(_params(kernel_size=kernel, stride=stride, padding=padding,
                                       indices=Indices.of(indices)))
        return list(dict.fromkeys(out))

    return options


def _unpool_indices(shape, dims, kernel, step, padding, sizes, pattern):
    """Flat indices into each output plane, one per input element, or None where they leave the output or
    repeat within a plane (where torch's result would depend on the order of its writes)."""
    spatial = shape[-dims:]
    planes = int(np.prod(shape[:-dims], dtype=int))
    indices = np.empty((planes, *spatial), dtype=int)
    for plane in range(planes):
        seen = set()
        for position in np.ndindex(*spatial):
            flat_offset = sum(position) + plane
            offset = {"first": 0, "last": kernel - 1, "alternate": flat_offset % kernel}[pattern]
            at = [q * step - padding + offset for q in position]
            if not all(0 <= a < s for a, s in zip(at, sizes)):
                return None
            flat = int(np.ravel_multi_index(at, sizes))
            if flat in seen:
                return None
            seen.add(flat)
            indices[(plane, *position)] = flat
    return indices.reshape(shape)


def _unpool_map(dims: int):
    def unpool(arrays, p, constant):
        x = arrays[0]
        step = p["kernel_size"] if p["stride"] is None else p["stride"]
        sizes = [(n - 1) * step - 2 * p["padding"] + p["kernel_size"] for n in x.shape[-dims:]]
        indices = p["indices"].array
        out = np.empty(x.shape[:-dims] + (math.prod(sizes),), dtype=object)
        out[...] = constant(0)
        for index in np.ndindex(*x.shape):
            out[index[:-dims] + (indices[index],)] = x[index]
        return out.reshape(x.shape[:-dims] + tuple(sizes))

    return unpool


for _dims in (1, 2, 3):
    _name = f"max_unpool{_dims}d"
    _function = getattr(_F, _name)
    _op(_name, _unpool_map(_dims),
        [_spelling(f"torch.nn.functional.{_name}({{0}}, {{indices}}, {{kernel_size}}, stride={{stride}}, "
                   "padding={padding})",
                   lambda x, indices, kernel_size, stride, padding, _f=_function:
                   _f(x, indices, kernel_size, stride=stride, padding=padding))],
        _unpool_options(_dims), [f"nn.functional.{_name}", f"nn.functional.{_name}[grad]"],
        ranks=(_dims + 1,) if _dims < 3 else (3,),
        operand_shapes=(lambda shape, _d=_dims: [(shape,), ((1,) + shape,)]) if _dims < 3 else
        (lambda shape: [((1,) + shape,)]))


# ------------------------------------------------------------------ aten's masked indexing
def _masked_index_options(shapes):
    """One index tensor per dim, each of k places (k = 1..3, the same k), patterns from the first place on,
    and masks of k; where the mask is False the index may lie outside the dim (the op is "unsafe": it clamps)."""
    shape = shapes[0]
    out = []
    for k in (1, 2, 3):
        for pattern in range(3):
            indices = tuple(Indices.of([(pattern * j + d) % n for j in range(k)]) for d, n in enumerate(shape))
            for mask in _masks((k,)):
                out.append(_params(mask=Mask.of(mask), indices=indices, fill=0.5))
            outside = tuple(Indices.of([n] + [0] * (k - 1)) for n in shape)  # the first place is past the end
            if k > 1:
                out.append(_params(mask=Mask.of([False] + [True] * (k - 1)), indices=outside, fill=-1.0))
    return out


def _clamped(indices, shape):
    return tuple(np.clip(i.array, -n, n - 1) for i, n in zip(indices, shape))


def _masked_index_map(arrays, p, constant):
    x = arrays[0]
    picked = x[_clamped(p["indices"], x.shape)]
    mask = p["mask"].array
    out = np.empty(picked.shape, dtype=object)
    for index in np.ndindex(*picked.shape):
        out[index] = picked[index] if mask[index] else constant(p["fill"])
    return out


_op("unsafe_masked_index", _masked_index_map,
    [_spelling("torch.ops.aten._unsafe_masked_index({0}, {mask}, list({indices}), {fill})",
               lambda x, mask, indices, fill: torch.ops.aten._unsafe_masked_index(x, mask, list(indices), fill))],
    _masked_index_options, ["_unsafe_masked_index"], ranks=(1, 2))


def _masked_put_map(arrays, p, constant):
    x, values = arrays
    out = np.array(x, dtype=object)
    clamped = _clamped(p["indices"], x.shape)
    mask = p["mask"].array
    for j in range(values.shape[0]):
        if mask[j]:
            target = tuple(int(i[j]) for i in clamped)
            out[target] = plus(out[target], values[j])
    return out


def _values_shape(shape):
    return [(shape, (k,)) for k in (1, 2, 3)]


def _masked_put_options(shapes):
    k = shapes[1][0]
    return [p for p in _masked_index_options(shapes[:1]) if len(p["mask"].values) == k]


_op("unsafe_masked_index_put_accumulate", _masked_put_map,
    [_spelling("torch.ops.aten._unsafe_masked_index_put_accumulate({0}, {mask}, list({indices}), {1})",
               lambda x, v, mask, indices, fill: torch.ops.aten._unsafe_masked_index_put_accumulate(
                   x, mask, list(indices), v))],
    _masked_put_options, ["_unsafe_masked_index_put_accumulate"], arity=2, ranks=(1, 2),
    operand_shapes=_values_shape)


# ------------------------------------------------------------------ segment_reduce: sums and means of runs
def _runs(n: int) -> list[tuple[int, ...]]:
    """Every way to cut n elements into consecutive runs of at least one, fewest runs first."""
    if n == 0:
        return [()]
    cuts = [(first,) + rest for first in range(1, n + 1) for rest in _runs(n - first)]
    return sorted(cuts, key=len)


def _compositions(n: int, allow_empty: bool) -> list[tuple[int, ...]]:
    """Ways to cut n elements into consecutive runs (of at least one element; with `allow_empty`, a run of
    none between them too), the whole first: every way for n up to 4, else the whole and one cut off either
    end (a long dim comes from a first op's result, as a program's second op)."""
    out = _runs(n) if n <= 4 else [(n,), (1, n - 1), (n - 1, 1)]
    if allow_empty:
        out += [(0,) + c for c in out[:2]] + [(n, 0)]
    return list(dict.fromkeys(out))


def _segment_options(mean: bool):
    def options(shapes):
        shape = shapes[0]
        out = []
        for axis in dict.fromkeys((0, len(shape) - 1)):
            lead = shape[:axis]
            for runs in _compositions(shape[axis], allow_empty=not mean):
                lengths = np.broadcast_to(np.array(runs), lead + (len(runs),))
                offsets = np.broadcast_to(np.concatenate([[0], np.cumsum(runs)]), lead + (len(runs) + 1,))
                out.append(_params(axis=axis, lengths=Indices.of(lengths), offsets=Indices.of(offsets)))
        return out

    return options


def _segment_map(mean: bool):
    def segments(arrays, p, constant):
        x, axis = arrays[0], p["axis"]
        runs = p["lengths"].array.reshape(-1, p["lengths"].array.shape[-1])[0]
        along = np.moveaxis(x, axis, 0)
        out = np.empty((len(runs),) + along.shape[1:], dtype=object)
        start = 0
        for k, n in enumerate(runs):
            for rest in np.ndindex(*along.shape[1:]):
                members = [along[(start + j,) + rest] for j in range(n)]
                out[(k,) + rest] = Total(tuple((m, 1) for m in members), n if mean else 1) if n else constant(0)
            start += n
        return np.moveaxis(out, 0, axis)

    return segments


for _reduce, _mean in (("sum", False), ("mean", True)):
    _op(f"segment_reduce_{_reduce}", _segment_map(_mean),
        [_spelling(f"torch.segment_reduce({{0}}, '{_reduce}', lengths={{lengths}}, axis={{axis}})",
                   lambda x, axis, lengths, offsets, _r=_reduce: torch.segment_reduce(x, _r, lengths=lengths,
                                                                                      axis=axis)),
         _spelling(f"torch.segment_reduce({{0}}, '{_reduce}', offsets={{offsets}}, axis={{axis}})",
                   lambda x, axis, lengths, offsets, _r=_reduce: torch.segment_reduce(x, _r, offsets=offsets,
                                                                                      axis=axis))],
        _segment_options(_mean), ["_segment_reduce[lengths]", "_segment_reduce[offsets]"], ranks=(1, 2))
