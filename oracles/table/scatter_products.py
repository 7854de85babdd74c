"""scatter_reduce and index_reduce with 'prod': each written place of a copy of the input becomes the product of
the sources scattered to it (and of its own value, with include_self); other places keep theirs.

The forward multiplies in any order (`tensor_formulas.product`; include_self=False starts from an exact 1). The
backward is torch's scatter_reduce_backward and index_reduce_backward (FunctionsManual.cpp), which take care of
exact zeros instead of dividing the result by them:
- self: grad * masked_self_result / masked_self, masked_self being self with its zeros made 1 and
  masked_self_result the same reduction of masked_self (so at an unwritten place grad * self / self, two
  roundings); with include_self=False, 0 at the written places;
- a source that is not 0: (grad * result) / source, at its place;
- a source that is the only 0 at its place: grad * (the reduction with that source made 1);
- a source among several 0s at its place: (grad * result) / 1 = 0, as the product of the others is 0.
An element whose ball may be 0 without being exactly 0 leaves the point undecided (which branch torch takes).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import Singular
from oracles.table import tensor_formulas as formula
from oracles.table.scatter_extrema import indexed, member_value, scattered, written_groups
from oracles.table.shape_ops import _index_add_options, _params, _resized_along_a_dim, _scatter_add_options, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS
ONE = arb(1)


def _is_zero(value: arb) -> bool:
    """Exactly 0; `Singular` where the ball may be 0 without being so (torch's == 0 could go either way)."""
    if formula.is_exact_zero(value):
        return True
    if value.contains(0):
        raise Singular("a factor of a scattered product may be 0 within the rounding model")
    return False


def _entry(method: str, targets_of, options, opinfo: str, cpu_dtypes=None):
    def math(arrays, p):
        out = np.array(arrays[0], dtype=object)
        for target, members in written_groups(arrays, p, targets_of).items():
            out[target] = sympy.Mul(*(member_value(arrays, m) for m in members))
        return out

    def forward(F, arrays, p):
        out = np.array(arrays[0], dtype=object)
        for target, members in written_groups(arrays, p, targets_of).items():
            out[target] = formula.product(F, [member_value(arrays, m) for m in members])
        return out

    def backward(F, arrays, out, grad, p):
        a, b = arrays
        groups = written_groups(arrays, p, targets_of)
        to_self = np.empty(a.shape, dtype=object)
        for place in np.ndindex(*a.shape):
            masked = ONE if _is_zero(a[place]) else a[place]
            sources = [b[i] for kind, i in groups.get(place, []) if kind == "src"]
            reduced = formula.product(F, ([masked] if p["include_self"] else []) + sources)
            written = place in groups
            to_self[place] = (formula.ZERO if written and not p["include_self"]
                              else F.div(formula.mul(F, grad[place], reduced if written else masked), masked))
        to_src = np.full(b.shape, formula.ZERO, dtype=object)
        for place, members in groups.items():
            zeros = [m for m in members if m[0] == "src" and _is_zero(b[m[1]])]
            for kind, i in members:
                if kind == "self":
                    continue
                if not _is_zero(b[i]):
                    to_src[i] = formula.div(F, formula.mul(F, grad[place], out[place]), b[i])
                elif len(zeros) == 1:
                    others = [member_value(arrays, m) for m in members if m != (kind, i)]
                    to_src[i] = formula.mul(F, grad[place], formula.product(F, others))
        return to_self, to_src

    @functools.cache
    def listed(shapes):
        return tuple(_params(**dict(q.items), include_self=s) for q in options(shapes) for s in (True, False))

    spellings = (
        _spelling(f"torch.{method}({{0}}, {{dim}}, {{index}}, {{1}}, 'prod', include_self={{include_self}})",
                  lambda x, y, dim, index, include_self: getattr(torch, method)(x, dim, index, y, "prod",
                                                                              include_self=include_self)),
        _spelling(f"{{0}}.{method}({{dim}}, {{index}}, {{1}}, 'prod', include_self={{include_self}})",
                  lambda x, y, dim, index, include_self: getattr(x, method)(dim, index, y, "prod",
                                                                          include_self=include_self)),
    )
    entry = f"{method}_prod"
    TENSOR_OPS[entry] = TensorOp(
        entry, 2, spellings, math, forward, backward, OptionSpace(listed), lambda shapes, p: shapes[0], (opinfo,),
        zero_rule="the product of the other factors: a single zero source gets the reduction without it, "
                  "several zeros give 0, a zero self is masked to 1",
        operand_shapes=_resized_along_a_dim, cpu_dtypes=cpu_dtypes, backward_divides=True)
    NAMES.append(entry)


_entry("scatter_reduce", scattered, _scatter_add_options, "scatter_reduce[prod]")
# index_reduce's 'prod' CPU kernel for bfloat16 and float16 raises an internal assert for some shapes (finding
# index-reduce-prod-half-internal-assert), so random programs draw it in float64 and float32 only
_entry("index_reduce", indexed, _index_add_options, "index_reduce[prod]", cpu_dtypes=("float64", "float32"))
