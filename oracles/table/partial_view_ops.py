"""as_strided of a partial view (OpInfo's as_strided[partial_views]): a view that covers part of its storage, whose
as_strided reads the storage by absolute position, inside the view or outside it.

Spelled on a view of a padded copy of the argument, `torch.nn.functional.pad(x0, (2, 2))[2:-2].as_strided((2,),
(1,), 0)`: the storage is 0, 0, x0..., 0, 0 and the view its middle, so a storage offset of 0 reads the padding
(constants: no gradient) and one of None keeps the view's own (2, the argument's first element). The entry is
the index map of the storage positions (oracles.table.index_ops' layouts), from which forward, backward and the
SymPy side follow (tensor_formulas.gathered); torch's backward (as_strided_backward into the view's geometry, then
the slice's and pad's backward) must send each output's gradient to the element it read.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from oracles.table.index_ops import _LAYOUTS, _strided_positions
from oracles.table.shape_ops import _op, _params, _spelling, _with

PAD = 2  # zeros on each side of the argument in the storage
OFFSETS = (None, 0, PAD + 1)  # the view's own offset, the storage's start (padding), one past the view's start


def _offset(p) -> int:
    return PAD if p["storage_offset"] is None else p["storage_offset"]


def _options(shapes):
    (n,) = shapes[0]
    out = []
    for (size, stride), offset in itertools.product(_LAYOUTS, OFFSETS):
        positions = _strided_positions(size, stride, PAD if offset is None else offset)
        if positions.max(initial=PAD) < n + 2 * PAD:
            out.append(_params(size=size, stride=stride, storage_offset=offset))
    return out


def _partial_view_map(arrays, p, constant):
    a = arrays[0]
    storage = np.array([constant(0.0)] * PAD + list(a) + [constant(0.0)] * PAD, dtype=object)
    return storage[_strided_positions(p["size"], p["stride"], _offset(p))]


def _padded_view(x):
    return torch.nn.functional.pad(x, (PAD, PAD))[PAD:-PAD]


_op("as_strided_partial_view", _partial_view_map,
    [_spelling(f"torch.nn.functional.pad({{0}}, ({PAD}, {PAD}))[{PAD}:-{PAD}].as_strided({{size}}, {{stride}}, "
               "{storage_offset})",
               lambda x, size, stride, storage_offset: _padded_view(x).as_strided(size, stride, storage_offset)),
     _spelling(f"torch.nn.functional.pad({{0}}, ({PAD}, {PAD}))[{PAD}:-{PAD}].as_strided({{size}}, {{stride}})",
               lambda x, size, stride, storage_offset: _padded_view(x).as_strided(size, stride),
               _with(storage_offset=None))],
    _options, ["as_strided[partial_views]"], ranks=(1,))
