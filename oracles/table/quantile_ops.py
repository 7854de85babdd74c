"""quantile and nanquantile along a dim (or of everything), q a Python float, each interpolation.

torch (quantile_compute, Sorting.cpp) sorts the slice, takes ranks = q * (n - 1) in the dtype (q is made a
tensor of the input's dtype: the q drawn here are multiples of 1/4, so the ranks are exact for the slices of at
most 4 elements the sorting network allows), rounds them per interpolation (lower: floor, higher: ceil, nearest:
round half to even), gathers the sorted values at floor and ceil, and for linear (weight ranks - floor) and
midpoint (weight 1/2) lerps between them. Autograd runs through sort, gather and lerp: the gradient goes to the
elements sort placed at those ranks, times 1 - weight and weight (lerp's backward); where tied elements could sit
at a rank, which one sort returned is undocumented (undecided, as median(dim)'s). Without NaNs nanquantile is
quantile.
"""

from __future__ import annotations

import functools
import math

import sympy
import torch
from flint import arb

from oracles.table import tensor_formulas as formula
from oracles.table.selection_ops import MAX_NETWORK_SLICE, TieRule, chosen, order_statistic, sym_order_statistic
from oracles.table.shape_ops import _params
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, ReductionParams, TensorOp, TSpelling

QS = (0.5, 0.25, 0.75, 0.0, 1.0)
INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _ranks(n: int, p) -> tuple[int, int, float]:
    """(rank below, rank above, weight of the one above) for a slice of n."""
    position = p["q"] * (n - 1)  # exact: q is a multiple of 1/4 and n - 1 <= 3
    mode = p["interpolation"]
    if mode == "lower":
        position = math.floor(position)
    elif mode == "higher":
        position = math.ceil(position)
    elif mode == "nearest":
        position = round(position)  # Python's round is half to even, as torch's round_
    below, above = math.floor(position), math.ceil(position)
    weight = 0.5 if mode == "midpoint" else position - below
    return below, above, (weight if mode in ("linear", "midpoint") else 0.0)


def _reduction_params(p) -> ReductionParams:
    return ReductionParams(p["dim"], p["keepdim"])


def _per_slice(per_slice):
    """A reduction over p["dim"] (None: everything) from a function of one slice."""

    def apply(*args):
        *head, arrays, p = args
        return formula.reduction(lambda *a: per_slice(*a[:-1], p))(*head, arrays, _reduction_params(p))

    return apply


def _sym(a, p):
    below, above, weight = _ranks(len(a), p)
    low = sym_order_statistic(a, below)
    if weight == 0:
        return low
    return low + sympy.Rational(weight) * (sym_order_statistic(a, above) - low)


def _forward(F, a, p):
    """lerp(low, high, w) = low + w (high - low) for w < 1/2, else high - (high - low) (1 - w), in float for bfloat16
    and float16, rounded once; at weight 0 (lower, higher, nearest, an exact rank) the gathered value itself."""
    below, above, weight = _ranks(len(a), p)
    low = order_statistic(a, below)[0]
    if weight == 0:
        return low
    high, G = order_statistic(a, above)[0], F.opmath
    difference = G.sub(high, low)
    if weight < 0.5:
        return F.store(G.add(low, G.mul(arb(weight), difference)))
    return F.store(G.sub(high, G.mul(difference, arb(1 - weight))))


def _backward(F, a, y, g, p):
    """lerp's backward grad * (1 - weight) and grad * weight (exact weights), through gather and sort to the
    elements at the two ranks; at weight 0, grad itself."""
    below, above, weight = _ranks(len(a), p)
    out = [formula.ZERO] * len(a)
    shares = [(below, 1 - weight)] + ([(above, weight)] if weight else [])
    for rank, share in shares:
        [(i, _)] = chosen(a, rank, TieRule.UNDOCUMENTED)
        out[i] = formula.sum_any(F, [out[i], g if share == 1 else formula.mul(F, g, arb(share))])
    return out


def _backward_arrays(F, arrays, out, grad, p):
    return formula.reduction_backward(lambda *a: _backward(*a[:-1], p))(F, arrays, out, grad, _reduction_params(p))


def _options(shapes):
    shape = shapes[0]
    dims = [None] + list(range(len(shape)))
    return [_params(q=q, dim=d, keepdim=k, interpolation=i) for d in dims for k in (False, True) for q in QS
            for i in INTERPOLATIONS if formula.slice_length(shape, d) <= MAX_NETWORK_SLICE]


def _spellings(name: str) -> tuple[TSpelling, ...]:
    function, method = getattr(torch, name), getattr(torch.Tensor, name)

    def keywords(p) -> str:
        return (f", keepdim={p['keepdim']}" if p["keepdim"] else "") + (
            f", interpolation={p['interpolation']!r}" if p["interpolation"] != "linear" else "")

    def call(f):
        return lambda a, p: f(a[0], p["q"], dim=p["dim"], keepdim=p["keepdim"], interpolation=p["interpolation"])

    return (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, {p['q']!r}, dim={p['dim']}{keywords(p)})", call(function)),
        TSpelling(lambda a, p: f"{a[0]}.{name}({p['q']!r}, dim={p['dim']}{keywords(p)})", call(method)),
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, {p['q']!r})", call(function),
                  lambda shapes, p: p["dim"] is None and not p["keepdim"] and p["interpolation"] == "linear"),
    )


for _name in ("quantile", "nanquantile"):
    TENSOR_OPS[_name] = TensorOp(
        _name, 1, _spellings(_name), _per_slice(_sym), _per_slice(_forward), _backward_arrays,
        OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))),
        lambda shapes, p: formula.reduced_shape(shapes[0], _reduction_params(p)), (_name,),
        cpu_dtypes=("float64", "float32"))  # quantile() takes float or double only
