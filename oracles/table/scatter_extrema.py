"""scatter_reduce and index_reduce with 'amax' and 'amin': each written place of a copy of the input becomes the
extremum of the sources scattered to it (and of its own value, with include_self); other places keep theirs.

The forward is exact (an extremum of floats). The backward is torch's scatter_reduce_backward and
index_reduce_backward (FunctionsManual.cpp): the gradient at a place is shared evenly by everything equal to the
result there, N = (self == result) + the number of sources equal to it, each getting grad / N, and with
include_self=False the place's own value gets nothing.

That count keeps `self == result` also where include_self=False left self out of the extremum: where the
excluded own value equals the extremum of the sources, the tied sources get grad / (k + 1) instead of grad / k,
and the gradient they receive adds up to less than grad (finding scatter-reduce-excluded-self-counted). The
model raises `Singular` there, so such places are unverified, and the finding's own test pins torch's value.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from oracles.numerics.rounding import Singular
from oracles.table.shape_ops import (
    _index_add_options,
    _index_targets,
    _params,
    _resized_along_a_dim,
    _scatter_add_options,
    _scatter_targets,
    _spelling,
)
from oracles.table.tensor_formulas import ZERO, maximum, sym_max, sym_min
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

FINDING = "scatter-reduce-excluded-self-counted"
NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS


def written_groups(arrays, p, targets_of) -> dict[tuple, list[tuple[str, tuple]]]:
    """For each written place: the ('self', place) and ('src', position) members its reduction is taken over."""
    a, b = arrays
    groups: dict[tuple, list] = {}
    for position, target in zip(np.ndindex(*b.shape), targets_of(b.shape, p)):
        groups.setdefault(target, [("self", target)] if p["include_self"] else []).append(("src", position))
    return groups


def member_value(arrays, member):
    kind, index = member
    return arrays[0][index] if kind == "self" else arrays[1][index]


def _entry(name: str, method: str, largest: bool, targets_of, options, opinfo: str):
    symbolic = sym_max if largest else sym_min

    def math(arrays, p):
        out = np.array(arrays[0], dtype=object)
        for target, members in written_groups(arrays, p, targets_of).items():
            out[target] = symbolic([member_value(arrays, m) for m in members])
        return out

    def extremum(values) -> tuple:
        """The extremum and the positions tied at it (tensor_formulas.maximum; amin negates, exactly)."""
        if largest:
            return maximum(values)
        top, tied = maximum([-v for v in values])
        return -top, tied

    def forward(F, arrays, p):
        out = np.array(arrays[0], dtype=object)
        for target, members in written_groups(arrays, p, targets_of).items():
            out[target] = extremum([member_value(arrays, m) for m in members])[0]
        return out

    def distribute(arrays, grad, p, divide):
        """Each written place's gradient shared evenly by the members equal to its extremum, `divide(g, k)`."""
        a, b = arrays
        to_self, to_src = np.array(grad, dtype=object), np.full(b.shape, ZERO, dtype=object)
        for target, members in written_groups(arrays, p, targets_of).items():
            result, at = extremum([member_value(arrays, m) for m in members])
            if not p["include_self"]:
                to_self[target] = ZERO
                if not (a[target] < result or a[target] > result):  # counted in N though left out
                    raise Singular(f"the excluded own value may equal the extremum (finding {FINDING})")
            tied = [members[i] for i in at]
            share = grad[target] if len(tied) == 1 else divide(grad[target], len(tied))
            if p["include_self"]:
                to_self[target] = share if ("self", target) in tied else ZERO
            for kind, index in tied:
                if kind == "src":
                    to_src[index] = share
        return [to_self, to_src]

    def backward(F, arrays, out, grad, p):
        return tuple(distribute(arrays, grad, p, lambda g, k: F.div(g, F.const(k))))

    def subgradient_vjp(arrays, grad, p):
        """At an exact tie SymPy's Max has no derivative: the minimum-norm subgradient, 1/k to each of the k
        tied members, the rule torch follows (pinned as the entry's convention)."""
        return distribute(arrays, grad, p, lambda g, k: g / k)

    @functools.cache
    def listed(shapes):
        return tuple(_params(**dict(q.items), include_self=s) for q in options(shapes) for s in (True, False))

    spellings = (
        _spelling(f"torch.{method}({{0}}, {{dim}}, {{index}}, {{1}}, {name!r}, include_self={{include_self}})",
                  lambda x, y, dim, index, include_self: getattr(torch, method)(x, dim, index, y, name,
                                                                              include_self=include_self)),
        _spelling(f"{{0}}.{method}({{dim}}, {{index}}, {{1}}, {name!r}, include_self={{include_self}})",
                  lambda x, y, dim, index, include_self: getattr(x, method)(dim, index, y, name,
                                                                          include_self=include_self)),
    )
    entry = f"{method}_{name}"
    TENSOR_OPS[entry] = TensorOp(
        entry, 2, spellings, math, forward, backward, OptionSpace(listed), lambda shapes, p: shapes[0], (opinfo,),
        ties="ties share the gradient evenly; with include_self=False the own value is counted in the share where "
             f"it equals the result (finding {FINDING}: unverified there)",
        pinned_as=(entry,), operand_shapes=_resized_along_a_dim, subgradient_vjp=subgradient_vjp)
    NAMES.append(entry)


def scattered(shape, p):
    return _scatter_targets(p["index"].array, p["dim"])


def indexed(shape, p):
    return _index_targets(shape, p["dim"], p["index"].array)


for _name, _largest in (("amax", True), ("amin", False)):
    _entry(_name, "scatter_reduce", _largest, scattered, _scatter_add_options, f"scatter_reduce[{_name}]")
    _entry(_name, "index_reduce", _largest, indexed, _index_add_options, f"index_reduce[{_name}]")
