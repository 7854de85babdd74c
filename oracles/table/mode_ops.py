"""mode(x, dim, keepdim): per slice the value that occurs most often, torch's values output.

torch's CPU kernel (aten/src/ATen/native/cpu/SortingKernel.cpp, mode) sorts the slice and keeps the first run of
the greatest length: the smallest of the most frequent values (measured, every dtype; the docs say "a value which
appears most often"), at the last index of its run; ModeBackward (value_selecting_reduction_backward) sends the
gradient to that index.

As a function: where the slice's values are distinct, every count is 1 and the mode is the minimum, locally
min(x), differentiable with the indicator of the argmin as gradient. Where a value repeats, the mode either is
that value at the minimum (still min(x): a tie of the minimum, a concave kink, where torch's last index takes the
whole gradient; pinned, finding mode-tie) or jumps from min(x) to the repeated value (no derivative). So the
SymPy form is Min of the slice, and the model leaves any slice with values that may be equal undecided.
"""

from __future__ import annotations

import itertools

import torch

from oracles.numerics.rounding import Singular
from oracles.table import tensor_formulas as formula
from oracles.table.selection_ops import order_statistic
from oracles.table.tensor_formulas import SliceFormulas
from oracles.table.tensor_ops import TENSOR_OPS, ReductionParams, ReductionSpace, TSpelling, _reduction

NAMES = ["mode"]  # the entries this module adds to TENSOR_OPS
ZERO = formula.ZERO


def _distinct_minimum(a) -> int:
    """The position of the minimum of a slice whose values the model decides are distinct."""
    for u, v in itertools.combinations(a, 2):
        if u.overlaps(v):
            raise Singular("two values of the slice may be equal: the mode jumps, or ties at the minimum")
    _, (position,) = order_statistic(a, 0)
    return position


def _forward(F, a, p):
    return a[_distinct_minimum(a)]


def _backward(F, a, y, g, p):
    position = _distinct_minimum(a)
    return [g if i == position else ZERO for i in range(len(a))]


def _keep(p: ReductionParams) -> str:
    return f", keepdim={p.keepdim}" if p.keepdim else ""


def _last_dim(shapes, p: ReductionParams) -> bool:
    return p.dim in (-1, len(shapes[0]) - 1) and not p.keepdim


TENSOR_OPS["mode"] = _reduction(
    "mode",
    (TSpelling(lambda a, p: f"torch.mode({a[0]}, dim={p.dim}{_keep(p)})[0]",
               lambda a, p: torch.mode(a[0], dim=p.dim, keepdim=p.keepdim)[0]),
     TSpelling(lambda a, p: f"{a[0]}.mode({p.dim}{_keep(p)}).values",
               lambda a, p: a[0].mode(p.dim, keepdim=p.keepdim).values),
     TSpelling(lambda a, p: f"torch.mode({a[0]}).values", lambda a, p: torch.mode(a[0]).values, _last_dim)),
    SliceFormulas(lambda a, p: formula.sym_min(a), _forward, _backward), ["mode"],
    ReductionSpace(none_dim=False),
    ties="repeated values: at the minimum torch's last index takes the whole gradient (finding mode-tie); "
         "elsewhere the mode jumps (no derivative)",
    pinned_as=("mode",))
