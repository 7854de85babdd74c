"""Selection ops, one entry each: ops each of whose output elements is one element of the input, chosen by
comparing values (max, min, amin, aminmax, median, nanmedian, kthvalue, sort, msort, topk, cummax, cummin).
Ops that return values and indices are spelled with the values taken, `torch.max(x0, dim=1)[0]`.

Where the values are distinct the op is locally a fixed gather, so its derivative is the indicator of the
element chosen, and torch's backward sends each output's gradient to the index it returned:
- SymPy side: order statistics as compositions of Min and Max (max, min, cumulative max: one Max or Min;
  the k-th smallest: an odd-even transposition sorting network of compare-exchanges), so SymPy derives the
  indicator itself, and its Heaviside steps raise `Singular` where two compared values may tie;
- torch's side: forward and backward copy values and gradients exactly (cummax's backward adds the
  gradients that reach one index: scatter_add), so the rounding model only decides which element is chosen:
  `Singular` where the balls of two values overlap and are not the same exact value.
At an exact tie what torch does depends on the op (`TieRule`): max() and min() of everything, amin and aminmax
split the gradient evenly among the tied elements (evenly_distribute_backward, scale_grad_by_count: the
minimum-norm sub/supergradient); max(dim) and min(dim) send it to the first (torch's documented index);
sort, topk, kthvalue and median(dim) send it to the index they return with the values (their backward,
value_selecting_reduction_backward, scatters the gradient through those indices), which torch does not otherwise
document (median(dim)'s and topk's docs say it may differ between devices and calls): the whole-program oracle
cannot know it and leaves such a tie undecided, and the step-by-step judging (oracles.core.stepwise), which
reads the indices that very call returns (`TSpelling.indices`), decides it (`TieRule.RETURNED`). median() of
everything returns no index and splits evenly, but at a tie of its median the function is neither convex nor
concave and torch's notes prescribe nothing: undecidable.

The sorting network's SymPy Jacobian grows fast with the slice's length (0.5 s at 5 elements, seconds at 6),
so ops that need it are listed only for slices of at most `MAX_NETWORK_SLICE` elements. mode has its own module
(oracles.table.mode_ops): at distinct values torch's mode is the minimum.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import Singular
from oracles.table.tensor_formulas import (
    ZERO,
    out_index,
    reduced_shape,
    reduction,
    slices,
    sum_any,
    sym_max,
    sym_min,
)
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

Shapes = tuple[tuple[int, ...], ...]
MAX_NETWORK_SLICE = 4


@dataclass(frozen=True)
class SelectionParams:
    """`dim` None: every element; `k`: kthvalue's k (1 is the smallest) or topk's count; `largest`: topk's
    largest, sort's descending, aminmax's max (else its min); `returned`: the indices torch returned with the
    values, row-major over the output (positions along `dim`), where a step of torch's own trace supplies them
    (no SymPy form or option depends on them, so they take no part in equality and caching)."""

    dim: int | None = None
    keepdim: bool = False
    k: int | None = None
    largest: bool = False
    returned: tuple[int, ...] | None = field(default=None, compare=False)


class TieRule(enum.Enum):
    EVENLY = "ties share the gradient evenly"
    FIRST = "the first of the tied elements gets the gradient (torch's documented index)"
    # Two rules torch does not document but every kernel follows (its comparison, `>` or `>=`, in a loop over
    # the elements in order); tests/test_selection_ops.py pins them against the indices torch returns, in
    # every dtype, so a torch that changes the rule fails there first.
    KERNEL_FIRST = "the first of the tied elements in the kernel's scan of the window gets the gradient"
    KERNEL_LAST = "the last of the tied elements of the prefix gets the gradient (the kernel compares with >=)"
    RETURNED = "the element at the index torch returns with the values gets the gradient"
    UNDOCUMENTED = "the index torch's kernel returns, undocumented: undecidable"


# ------------------------------------------------------------------ choosing the element
def order_statistic(values: list[arb], rank: int) -> tuple[arb, list[int]]:
    """The `rank`-th smallest value (0-based) and the positions holding it: the value is the only one whose
    every other value is certainly below, certainly above or the same exact value, with `rank` inside its run
    of equals. `Singular` where no value is (two balls that overlap may compare either way in torch)."""
    for i, v in enumerate(values):
        equal = [j for j, w in enumerate(values) if w.is_exact() and v.is_exact() and w == v] if v.is_exact() else [i]
        below = sum(1 for w in values if w < v)
        above = sum(1 for w in values if w > v)
        if below + len(equal) + above == len(values) and below <= rank < below + len(equal):
            return v, equal
    raise Singular("the selected value may tie with another within the rounding model")


def chosen(values: list[arb], rank: int, rule: TieRule, returned: int | None = None) -> list[tuple[int, int]]:
    """(position, share divisor) of the elements the gradient goes to, under the op's tie rule; `returned`: the
    position torch returned for this output, where known (`TieRule.RETURNED`)."""
    _, equal = order_statistic(values, rank)
    if len(equal) == 1:
        return [(equal[0], 1)]
    if rule is TieRule.EVENLY:
        return [(i, len(equal)) for i in equal]
    if rule in (TieRule.FIRST, TieRule.KERNEL_FIRST):
        return [(equal[0], 1)]
    if rule is TieRule.KERNEL_LAST:
        return [(equal[-1], 1)]
    if rule is TieRule.RETURNED and returned in equal:
        return [(returned, 1)]
    raise Singular("a tie at the selected value: which index torch returns is not documented")


def _routed(n: int, shares: list[tuple[int, int]], g, divide) -> list:
    out = [ZERO] * n
    for i, count in shares:
        out[i] = g if count == 1 else divide(g, count)
    return out


# ------------------------------------------------------------------ the SymPy side
@functools.cache
def _network_ranks(n: int) -> tuple[tuple[int, int], ...]:
    """The compare-exchanges of odd-even transposition sort: n rounds sort any n values."""
    return tuple((i, i + 1) for r in range(n) for i in range(r % 2, n - 1, 2))


def sym_sorted(a: list) -> list:
    out = list(a)
    for i, j in _network_ranks(len(a)):
        out[i], out[j] = sympy.Min(out[i], out[j]), sympy.Max(out[i], out[j])
    return out


def sym_order_statistic(a: list, rank: int):
    if rank == 0:
        return sym_min(a)
    if rank == len(a) - 1:
        return sym_max(a)
    return sym_sorted(a)[rank]


# ------------------------------------------------------------------ ops that reduce a slice to one element
def _reduction_op(name: str, spellings, rank: Callable[[int, SelectionParams], int], rule: TieRule,
                  options: Callable, opinfo, pinned_as: tuple[str, ...] = ()) -> TensorOp:
    """One element of each slice along `dim` (of everything where dim is None), the `rank(n, p)`-th smallest."""

    def math_(a, p):
        return sym_order_statistic(a, rank(len(a), p))

    def forward(F, a, p):
        return order_statistic(a, rank(len(a), p))[0]

    def backward(F, a, y, g, p, returned):
        return _routed(len(a), chosen(a, rank(len(a), p), rule, returned), g, lambda g, k: F.div(g, arb(k)))

    def subgradient(_F, a, _y, g, p, returned):  # exact values: the indicator where the choice is unique, else
        return _routed(len(a), chosen(a, rank(len(a), p), rule, returned), g, lambda g, k: g / k)  # the tie rule

    def subgradient_vjp(args, adjoint, p):
        return list(_reduction_backward(subgradient)(None, args, adjoint, adjoint, p))

    ties = "" if rule is TieRule.UNDOCUMENTED else rule.value
    return TensorOp(name, 1, tuple(spellings), reduction(math_), reduction(forward), _reduction_backward(backward),
                    _space(options), lambda shapes, p: reduced_shape(shapes[0], p), tuple(opinfo), ties=ties,
                    pinned_as=pinned_as, subgradient_vjp=subgradient_vjp)


def _returned(p: SelectionParams, out_shape: tuple[int, ...]) -> np.ndarray | None:
    """torch's returned index per output element (`SelectionParams.returned`), or None where not known."""
    if p.returned is None:
        return None
    out = np.empty(len(p.returned), dtype=object)
    out[:] = p.returned
    return out.reshape(out_shape)


def _reduction_backward(per_slice: Callable) -> Callable:
    """tensor_formulas.reduction_backward, with each slice's returned index (or None) passed on to `per_slice`."""

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        returned = _returned(p, reduced_shape(a.shape, p))
        result = np.empty(a.shape, dtype=object)
        for members, kept in slices(a.shape, p.dim):
            index = out_index(kept, a.shape, p)
            grads = per_slice(F, [a[m] for m in members], out[index], grad[index], p,
                              None if returned is None else returned[index])
            for m, g in zip(members, grads):
                result[m] = g
        return (result,)

    return backward


def _largest(n, p):
    return n - 1


def _smallest(n, p):
    return 0


def _lower_median(n, p):
    return (n - 1) // 2


def _kth(n, p):
    return p.k - 1


def _aminmax_piece(n, p):
    return n - 1 if p.largest else 0


# ------------------------------------------------------------------ ops along a dim: sort, topk, cummax
def _ranks_along(n: int, p: SelectionParams, kind: str) -> list[int]:
    """The rank of each output of a slice of n: sort's ascending or descending, topk's k largest or smallest
    (sorted, torch's default)."""
    length = n if kind == "sort" else p.k
    order = list(range(n))
    return (order[::-1] if p.largest else order)[:length]


def _along_dim_op(name: str, spellings, kind: str, options: Callable, opinfo) -> TensorOp:
    """Each output along `dim` one element of the slice: sort and topk its order statistics, cummax and
    cummin the largest (smallest) of its prefix. Ties: sort and topk send a tie's gradient to the index they
    return (`TieRule.RETURNED`); cummax and cummin to its last element (`TieRule.KERNEL_LAST`)."""
    rule = TieRule.KERNEL_LAST if kind in ("cummax", "cummin") else TieRule.RETURNED

    def selections(n: int, p: SelectionParams) -> list[tuple[int, int]]:
        """(prefix length, rank within it) per output."""
        if kind in ("cummax", "cummin"):
            return [(i + 1, i if kind == "cummax" else 0) for i in range(n)]
        return [(n, r) for r in _ranks_along(n, p, kind)]

    def math_(a, p):
        return [sym_order_statistic(a[:length], r) for length, r in selections(len(a), p)]

    def forward(F, a, p):
        return [order_statistic(a[:length], r)[0] for length, r in selections(len(a), p)]

    def routed(a, g, p, returned) -> list[list]:
        parts: list[list] = [[] for _ in a]
        for o, ((length, r), gi) in enumerate(zip(selections(len(a), p), g)):
            [(i, _)] = chosen(a[:length], r, rule, None if returned is None else returned[o])
            parts[i].append(gi)
        return parts

    def backward(F, a, y, g, p, returned):
        return [sum_any(F, parts) for parts in routed(a, g, p, returned)]  # cummaxmin_backward: scatter_add

    def subgradient_vjp(args, adjoint, p):  # exact values: where a selected value is tied, the tie rule
        def per_slice(_F, a, _y, g, p, returned):
            return [sum(parts, ZERO) for parts in routed(a, g, p, returned)]
        return list(_along_backward(per_slice)(None, args, adjoint, adjoint, p))

    def shape(shapes, p):
        s = shapes[0]
        dim = p.dim % len(s)
        return s[:dim] + (len(selections(s[dim], p)),) + s[dim + 1:]

    return TensorOp(name, 1, tuple(spellings), _along(math_), _along(forward), _along_backward(backward),
                    _space(options), shape, tuple(opinfo), ties=rule.value,
                    pinned_as=() if rule is TieRule.RETURNED else (name,), subgradient_vjp=subgradient_vjp)


def _along(per_slice: Callable) -> Callable:
    """An op along p.dim from a function of one slice (a list) to its outputs, as many or fewer (topk)."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        dim = p.dim % a.ndim
        results = [(members, per_slice(*head, [a[m] for m in members], p)) for members, _ in slices(a.shape, dim)]
        out = np.empty(a.shape[:dim] + (len(results[0][1]),) + a.shape[dim + 1:], dtype=object)
        for members, values in results:
            for m, v in zip(members, values):  # the i-th output of a slice sits where its i-th member does
                out[m] = v
        return out

    return apply


def _along_backward(per_slice: Callable) -> Callable:
    """The backward of an op along p.dim from that of one slice, which gets the slice's returned indices (or
    None)."""

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        returned = _returned(p, out.shape)
        result = np.empty(a.shape, dtype=object)
        for members, _ in slices(a.shape, p.dim):
            outputs = members[:out.shape[p.dim % a.ndim]]
            grads = per_slice(F, [a[m] for m in members], [out[m] for m in outputs], [grad[m] for m in outputs], p,
                              None if returned is None else [returned[m] for m in outputs])
            for m, g in zip(members, grads):
                result[m] = g
        return (result,)

    return backward


# ------------------------------------------------------------------ parameter lists, simplest first
def _space(options: Callable) -> OptionSpace:
    @functools.cache
    def listed(shapes: Shapes) -> tuple[SelectionParams, ...]:
        return tuple(options(shapes[0])) if len(shapes[0]) in (1, 2) else ()

    return OptionSpace(listed)


def _dims(shape) -> list[int]:
    return [-1] + list(range(len(shape)))


def _everything(shape):
    return [SelectionParams()]


def _everything_small(shape):
    return _everything(shape) if math.prod(shape) <= MAX_NETWORK_SLICE else []


def _each_dim(shape, small: bool = False, none: bool = False):
    dims = ([None] if none else []) + _dims(shape)
    if small:
        dims = [d for d in dims if d is not None and shape[d] <= MAX_NETWORK_SLICE]
    return [SelectionParams(d, keepdim) for keepdim in (False, True) for d in dims]


def _amin_options(shape):
    return _each_dim(shape, none=True)


def _aminmax_options(shape):
    return [SelectionParams(p.dim, p.keepdim, largest=largest) for largest in (False, True)
            for p in _each_dim(shape, none=True)]


def _kthvalue_options(shape):
    return [SelectionParams(p.dim, p.keepdim, k=k) for p in _each_dim(shape, small=True)
            for k in range(1, shape[p.dim] + 1)]


def _sort_options(shape):
    return [SelectionParams(d, largest=largest) for largest in (False, True) for d in _dims(shape)
            if shape[d] <= MAX_NETWORK_SLICE]


def _topk_options(shape):
    return [SelectionParams(d, k=k, largest=largest) for largest in (True, False) for d in _dims(shape)
            if shape[d] <= MAX_NETWORK_SLICE for k in range(1, shape[d] + 1)]


def _scan_options(shape):
    return [SelectionParams(d) for d in _dims(shape)]


# ------------------------------------------------------------------ spellings
def _spelling(template: str, call: Callable, applies: Callable | None = None, indices: Callable | None = None
              ) -> TSpelling:
    """`template` formats the argument's source ({0}) and the parameters: {dim}, {k}; {keep}, {desc},
    {largest}: the keyword, written only where it is not torch's default; aminmax's {piece} and its {index}.
    `indices(x, p)`: the indices the same call returns with the values."""

    def fields(p: SelectionParams) -> dict:
        return {"dim": p.dim, "k": p.k, "keep": ", keepdim=True" if p.keepdim else "",
                "desc": ", descending=True" if p.largest else "", "largest": "" if p.largest else ", largest=False",
                "piece": "max" if p.largest else "min", "index": int(p.largest)}

    return TSpelling(lambda a, p: template.format(*a, **fields(p)), lambda a, p: call(a[0], p),
                     applies or (lambda shapes, p: True),
                     indices=None if indices is None else (lambda a, p: indices(a[0], p)))


def _with_indices(template: str, call: Callable, applies: Callable | None = None) -> TSpelling:
    """A spelling of an op returning (values, indices), `call(x, p)` that whole result: its values taken, its
    indices read by the step-by-step judging (`TSpelling.indices`)."""
    return _spelling(template, lambda x, p: call(x, p)[0], applies, lambda x, p: call(x, p)[1])


def _dim_is(*dims):
    return lambda shapes, p: p.dim in dims


def _ascending_along(dim):
    return lambda shapes, p: p.dim == dim and not p.largest


def _defaults(shapes, p):
    return p.dim is None and not p.keepdim


def _full(name: str) -> list[TSpelling]:
    function, method = getattr(torch, name), getattr(torch.Tensor, name)
    return [_spelling(f"torch.{name}({{0}})", lambda x, p: function(x)),
            _spelling(f"{{0}}.{name}()", lambda x, p: method(x))]


def _with_dim(name: str) -> list[TSpelling]:
    """torch.<name>(x, dim=d) and x.<name>(d), the values taken by index and by name."""
    function, method = getattr(torch, name), getattr(torch.Tensor, name)
    return [_with_indices(f"torch.{name}({{0}}, dim={{dim}}{{keep}})[0]",
                          lambda x, p: function(x, dim=p.dim, keepdim=p.keepdim)),
            _with_indices(f"{{0}}.{name}({{dim}}{{keep}}).values", lambda x, p: method(x, p.dim, keepdim=p.keepdim))]


def _amin_spellings() -> list[TSpelling]:
    return [_spelling("torch.amin({0}, dim={dim}{keep})", lambda x, p: torch.amin(x, dim=p.dim, keepdim=p.keepdim)),
            _spelling("{0}.amin({dim}{keep})", lambda x, p: x.amin(p.dim, keepdim=p.keepdim),
                      lambda shapes, p: p.dim is not None),
            _spelling("torch.amin({0})", lambda x, p: torch.amin(x), _defaults),
            _spelling("{0}.amin()", lambda x, p: x.amin(), _defaults)]


def _aminmax_spellings() -> list[TSpelling]:
    def piece(result, p):
        return result.max if p.largest else result.min

    return [_spelling("torch.aminmax({0}, dim={dim}{keep})[{index}]",
                      lambda x, p: torch.aminmax(x, dim=p.dim, keepdim=p.keepdim)[int(p.largest)]),
            _spelling("{0}.aminmax(dim={dim}{keep}).{piece}",
                      lambda x, p: piece(x.aminmax(dim=p.dim, keepdim=p.keepdim), p)),
            _spelling("torch.aminmax({0}).{piece}", lambda x, p: piece(torch.aminmax(x), p), _defaults)]


def _kthvalue_spellings() -> list[TSpelling]:
    return [_with_indices("torch.kthvalue({0}, {k}, dim={dim}{keep})[0]",
                          lambda x, p: torch.kthvalue(x, p.k, dim=p.dim, keepdim=p.keepdim)),
            _with_indices("{0}.kthvalue({k}, {dim}{keep}).values",
                          lambda x, p: x.kthvalue(p.k, p.dim, keepdim=p.keepdim))]


def _msort_indices(x, p):
    """msort is sort along dim 0 with the values taken (at::msort: std::get<0>(at::sort(self, 0, false)))."""
    return torch.sort(x, dim=0)[1]


def _sort_spellings() -> list[TSpelling]:
    return [_with_indices("torch.sort({0}, dim={dim}{desc})[0]",
                          lambda x, p: torch.sort(x, dim=p.dim, descending=p.largest)),
            _with_indices("{0}.sort({dim}{desc}).values", lambda x, p: x.sort(p.dim, descending=p.largest)),
            _with_indices("torch.sort({0}, stable=True, dim={dim}{desc}).values",
                          lambda x, p: torch.sort(x, stable=True, dim=p.dim, descending=p.largest)),
            _with_indices("torch.sort({0})[0]", lambda x, p: torch.sort(x), _ascending_along(-1)),
            _spelling("torch.msort({0})", lambda x, p: torch.msort(x), _ascending_along(0), _msort_indices),
            _spelling("{0}.msort()", lambda x, p: x.msort(), _ascending_along(0), _msort_indices)]


def _topk_spellings() -> list[TSpelling]:
    return [_with_indices("torch.topk({0}, {k}, dim={dim}{largest})[0]",
                          lambda x, p: torch.topk(x, p.k, dim=p.dim, largest=p.largest)),
            _with_indices("{0}.topk({k}, {dim}{largest}).values",
                          lambda x, p: x.topk(p.k, p.dim, largest=p.largest))]


def _scan_spellings(name: str) -> list[TSpelling]:
    function, method = getattr(torch, name), getattr(torch.Tensor, name)
    return [_spelling(f"torch.{name}({{0}}, dim={{dim}})[0]", lambda x, p: function(x, dim=p.dim)[0]),
            _spelling(f"{{0}}.{name}({{dim}}).values", lambda x, p: method(x, p.dim).values)]


# ------------------------------------------------------------------ the entries
for _entry in [
    _reduction_op("max", _full("max"), _largest, TieRule.EVENLY, _everything, ["max[reduction_no_dim]"], ("max",)),
    _reduction_op("min", _full("min"), _smallest, TieRule.EVENLY, _everything, ["min[reduction_no_dim]"], ("min",)),
    _reduction_op("amin", _amin_spellings(), _smallest, TieRule.EVENLY, _amin_options, ["amin"], ("amin",)),
    _reduction_op("aminmax", _aminmax_spellings(), _aminmax_piece, TieRule.EVENLY, _aminmax_options, ["aminmax"],
                  ("aminmax_min", "aminmax_max")),
    _reduction_op("max_dim", _with_dim("max"), _largest, TieRule.FIRST, _each_dim, ["max[reduction_with_dim]"],
                  ("max_dim",)),
    _reduction_op("min_dim", _with_dim("min"), _smallest, TieRule.FIRST, _each_dim, ["min[reduction_with_dim]"],
                  ("min_dim",)),
    _reduction_op("median", _full("median") + _full("nanmedian"), _lower_median, TieRule.UNDOCUMENTED,
                  _everything_small, ["median", "nanmedian"]),
    _reduction_op("median_dim", _with_dim("median") + _with_dim("nanmedian"), _lower_median, TieRule.RETURNED,
                  functools.partial(_each_dim, small=True), ["median", "nanmedian"]),
    _reduction_op("kthvalue", _kthvalue_spellings(), _kth, TieRule.RETURNED, _kthvalue_options, ["kthvalue"]),
    _along_dim_op("sort", _sort_spellings(), "sort", _sort_options, ["sort", "msort"]),
    _along_dim_op("topk", _topk_spellings(), "topk", _topk_options, ["topk"]),
    _along_dim_op("cummax", _scan_spellings("cummax"), "cummax", _scan_options, ["cummax"]),
    _along_dim_op("cummin", _scan_spellings("cummin"), "cummin", _scan_options, ["cummin"]),
]:
    TENSOR_OPS[_entry.name] = _entry
