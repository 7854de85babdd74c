"""torch.masked reductions and normalizations, one entry each: torch.masked fills the masked-out elements
with the op's identity (torch.where(mask, input, identity): 1 for prod and cumprod, -inf for logsumexp,
softmax and amax, +inf for softmin and amin, 0 for the norm) and runs the plain op along one dim, so an
entry is the plain op's per-slice formulas (oracles.table.tensor_formulas) on each slice's kept elements:
- an identity that drops out of the arithmetic exactly (exp(-inf - max) = 0 added, a factor 1 of a product)
  is the same as leaving the element out, forward and backward; cumprod keeps its 1s, since every position
  has an output (the product so far);
- where's backward passes no gradient to a masked-out element: its gradient is exactly 0;
- softmax's output at a masked-out element is exactly 0; log_softmax's is -inf, so its spelling fills those with
  0 (masked_fill's backward passes them no gradient, and log_softmax's backward adds exp(-inf) * 0 = 0 there).
Every slice keeps at least one element (a slice of identities alone is -inf or NaN in torch).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch

from oracles.numerics.rounding import Overflow, Singular
from oracles.table import tensor_formulas as formula
from oracles.table.normalization_ops import NORMALIZE
from oracles.table.ops import OPS
from oracles.table.selection_ops import MAX_NETWORK_SLICE, TieRule, chosen, order_statistic, sym_order_statistic
from oracles.table.shape_ops import Mask, _masks, _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, ReductionParams, TensorOp

ZERO = formula.ZERO


def _reduction_params(p) -> ReductionParams:
    return ReductionParams(p["dim"], p["keepdim"], p.get("correction"))


def _kept_reduction(per_slice):
    """A reduction's math or forward over each slice's kept elements."""

    def apply(*args):
        *head, arrays, p = args
        a, rp = arrays[0], _reduction_params(p)
        slices, kept = formula.slices(a.shape, p["dim"]), p["mask"].array
        out = np.empty(formula.reduced_shape(a.shape, rp), dtype=object)
        for members, at in slices:
            out[formula.out_index(at, a.shape, rp)] = per_slice(*head, [a[m] for m in members if kept[m]], rp)
        return out

    return apply


def _kept_reduction_backward(per_slice):
    def backward(F, arrays, out, grad, p):
        a, rp = arrays[0], _reduction_params(p)
        slices, kept = formula.slices(a.shape, p["dim"]), p["mask"].array
        result = np.full(a.shape, ZERO, dtype=object)
        for members, at in slices:
            index = formula.out_index(at, a.shape, rp)
            chosen = [m for m in members if kept[m]]
            for m, g in zip(chosen, per_slice(F, [a[m] for m in chosen], out[index], grad[index], rp)):
                result[m] = g
        return (result,)

    return backward


def _kept_dimwise(per_slice, fill):
    """An op along the dim over each slice: the kept elements alone (`fill` None; the others' output is 0), or
    the slice with `fill` (its SymPy and ball values) in place of the others."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        model = bool(head)  # the forward takes the rounding model first; the SymPy side does not
        slices, kept = formula.slices(a.shape, p["dim"]), p["mask"].array
        out = np.empty(a.shape, dtype=object)
        for members, _ in slices:
            if fill is None:
                chosen = [m for m in members if kept[m]]
                for m in members:
                    out[m] = ZERO if model else sympy.Integer(0)
            else:
                chosen = members
            values = [a[m] if kept[m] else fill[model] for m in chosen]
            for m, v in zip(chosen, per_slice(*head, values, p)):
                out[m] = v
        return out

    return apply


def _kept_dimwise_backward(per_slice, fill):
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        slices, kept = formula.slices(a.shape, p["dim"]), p["mask"].array
        result = np.full(a.shape, ZERO, dtype=object)
        for members, _ in slices:
            chosen = [m for m in members if kept[m]] if fill is None else members
            values = [a[m] if kept[m] else fill[True] for m in chosen]
            grads = per_slice(F, values, [out[m] for m in chosen], [grad[m] for m in chosen], p)
            for m, g in zip(chosen, grads):
                if kept[m]:
                    result[m] = g
        return (result,)

    return backward


ONE = (sympy.Integer(1), formula.arb(1))  # a product's identity: SymPy's, the model's


def _negated(per_slice):
    """softmin: softmax of the negated slice (torch: softmax(-x)); its gradient negated back, exactly."""

    def forward(*args):
        *head, a, p = args
        return per_slice(*head, [-v for v in a], p)

    return forward


def _negated_backward(per_slice):
    def backward(F, a, y, g, p):
        return [-v for v in per_slice(F, [-v for v in a], y, g, p)]

    return backward


def _var_backward(F, a, y, g, p):
    """masked.var is a composite (torch.masked._ops._std_var), so autograd runs through its pieces:
    total / count gives h = grad / (N - correction); x * x.conj() (the same tensor twice for a real x) gives
    2 (h x_i) for each deviation x_i = input_i - mean; the subtraction passes that to the input and minus its
    sum to the mean, which sample_total / count divides by N and the masked sum spreads over the kept elements."""
    h = F.div(g, formula.arb(len(a) - p.correction))
    shares = [2 * formula.mul(F, h, d) for d in formula.deviations(F, a)]  # doubling is exact
    through_mean = F.div(-formula.fused_sum(F, shares), formula.arb(len(a)))
    return [F.add(share, through_mean) for share in shares]


# ------------------------------------------------------------------ options
def _variance_options(shapes):
    """dim, keepdim and mask as for the other reductions, correction 0 or 1 where every slice keeps more
    elements than that."""
    options = []
    for p in _reduction_options(shapes):
        kept = p["mask"].array.sum(axis=p["dim"])
        options += [_params(**dict(p.items), correction=c) for c in (0, 1) if (kept > c).all()]
    return options


def _reduction_options(shapes):
    shape = shapes[0]
    return [_params(dim=d, keepdim=k, mask=Mask.of(m)) for d in range(-len(shape), len(shape)) for k in (False, True)
            for m in _masks(shape) if m.any(axis=d).all()]


def _dimwise_options(shapes):
    shape = shapes[0]
    return [_params(dim=d, mask=Mask.of(m)) for d in range(len(shape)) for m in _masks(shape) if m.any(axis=d).all()]


# the masked products differentiate through torch.prod's and torch.cumprod's backward formulas, which divide
_DIVIDING_BACKWARDS = ("prod", "cumprod")


def _entry(name: str, math, forward, backward, options, shape, spelling: str, call):
    listed = functools.cache(lambda shapes: tuple(options(shapes)))
    TENSOR_OPS[f"masked_{name}"] = TensorOp(
        f"masked_{name}", 1, (_spelling(spelling, call),), math, forward, backward, OptionSpace(listed), shape,
        (f"masked.{name}",), backward_divides=name in _DIVIDING_BACKWARDS)


def _reduced_shape(shapes, p):
    return formula.reduced_shape(shapes[0], _reduction_params(p))


_entry("var", _kept_reduction(formula.VAR.math), _kept_reduction(formula.VAR.forward),
       _kept_reduction_backward(_var_backward), _variance_options, _reduced_shape,
       "torch.masked.var({0}, {dim}, correction={correction}, keepdim={keepdim}, mask={mask})",
       lambda x, dim, keepdim, mask, correction: torch.masked.var(x, dim, correction=correction, keepdim=keepdim,
                                                                 mask=mask))


# masked.std is sqrt(masked.var) (torch.masked._ops._std_var): SqrtBackward's grad / (2 * result), then the
# variance's pieces. Where its result is 0 torch gives NaN (finding masked-std-zero-result-nan, pinned in
# tests/test_conventions.py and tests/test_known_findings.py): at a slice of one kept element and correction 0
# (the constant 0, exact gradient 0: not drawn), at a constant kept slice (no derivative: unverified), and where
# the result rounds to 0 although the exact one is not (squares of small deviations underflowing in float16,
# values that round to the same float), which the model foresees as grad / (2 * result) that may be inf: an
# intermediate of the backward formula overflowing while the gradient fits (backward-intermediate-overflow).
def _std_forward(F, a, p):
    var = formula.VAR.forward(F, a, p)
    if formula.is_exact_zero(var):
        return ZERO
    if var > 0:
        return F.round(var.sqrt())
    return formula.arb(0).union(F.round(var.upper().sqrt()))  # squares that may have underflowed to 0


def _std_backward(F, a, y, g, p):
    if formula.is_exact_zero(y):
        raise Singular("masked.std of a constant slice: no derivative (torch: NaN, masked-std-zero-result-nan)")
    if y.contains(0):
        raise Overflow("masked.std may have underflowed to 0: SqrtBackward's grad / (2 * result) may be inf")
    return _var_backward(F, a, y, F.div(g, y * 2), p)  # result * 2: exact


MIN_STD_KEPT = 3


def _std_options(shapes):
    """As masked.var's, every slice keeping MIN_STD_KEPT elements or more: one kept element's std is the
    constant 0, whose NaN gradient the finding pins, and two of the simple values drawn first tie often (a
    constant slice: no derivative, unverified)."""
    return [p for p in _variance_options(shapes) if (p["mask"].array.sum(axis=p["dim"]) >= MIN_STD_KEPT).all()]


_entry("std", _kept_reduction(lambda a, p: sympy.sqrt(formula.VAR.math(a, p))), _kept_reduction(_std_forward),
       _kept_reduction_backward(_std_backward), _std_options, _reduced_shape,
       "torch.masked.std({0}, {dim}, correction={correction}, keepdim={keepdim}, mask={mask})",
       lambda x, dim, keepdim, mask, correction: torch.masked.std(x, dim, correction=correction, keepdim=keepdim,
                                                                 mask=mask))


for _name, _formulas in (("prod", formula.PROD), ("logsumexp", formula.LOGSUMEXP)):
    _entry(_name, _kept_reduction(_formulas.math), _kept_reduction(_formulas.forward),
           _kept_reduction_backward(_formulas.backward), _reduction_options, _reduced_shape,
           f"torch.masked.{_name}({{0}}, {{dim}}, keepdim={{keepdim}}, mask={{mask}})",
           lambda x, dim, keepdim, mask, _n=_name: getattr(torch.masked, _n)(x, dim, keepdim=keepdim, mask=mask))

def _amin_forward(F, a, p):
    """amin is amax of the negated slice, negated back: both negations exact."""
    return -formula.maximum([-v for v in a])[0]


def _amin_backward(F, a, y, g, p):
    """amin's backward shares the gradient evenly among the tied minima, as amax's among the maxima."""
    return formula.amax_backward(F, [-v for v in a], -y, g, p)


def _lower_median(a) -> int:
    return (len(a) - 1) // 2


def _median_backward(F, a, y, g, p):
    """value_selecting_reduction_backward: the gradient to the index nanmedian returned, which at a tie torch
    does not document (undecided)."""
    out = [ZERO] * len(a)
    [(i, _)] = chosen(a, _lower_median(a), TieRule.UNDOCUMENTED)
    out[i] = g
    return out


def _median_options(shapes):
    """masked.median takes one dim; the sorting network behind SymPy's median keeps slices short."""
    return [p for p in _reduction_options(shapes) if p["mask"].array.sum(axis=p["dim"]).max() <= MAX_NETWORK_SLICE]


# median fills NaN and takes nanmedian: the lower median of each slice's kept elements
_entry("median", _kept_reduction(lambda a, p: sym_order_statistic(a, _lower_median(a))),
       _kept_reduction(lambda F, a, p: order_statistic(a, _lower_median(a))[0]),
       _kept_reduction_backward(_median_backward),
       _median_options, _reduced_shape, "torch.masked.median({0}, {dim}, keepdim={keepdim}, mask={mask})",
       lambda x, dim, keepdim, mask: torch.masked.median(x, dim, keepdim=keepdim, mask=mask))

# amax and amin fill -inf and +inf (never tied with a kept value), norm fills 0 (its square adds an exact 0)
for _name, _formulas, _spelling_text, _call in (
        ("amax", formula.AMAX, "torch.masked.amax({0}, {dim}, keepdim={keepdim}, mask={mask})",
         lambda x, dim, keepdim, mask: torch.masked.amax(x, dim, keepdim=keepdim, mask=mask)),
        ("amin", formula.SliceFormulas(lambda a, p: formula.sym_min(a), _amin_forward, _amin_backward),
         "torch.masked.amin({0}, {dim}, keepdim={keepdim}, mask={mask})",
         lambda x, dim, keepdim, mask: torch.masked.amin(x, dim, keepdim=keepdim, mask=mask)),
        ("norm", formula.NORM, "torch.masked.norm({0}, 2, {dim}, keepdim={keepdim}, mask={mask})",
         lambda x, dim, keepdim, mask: torch.masked.norm(x, 2, dim, keepdim=keepdim, mask=mask))):
    _entry(_name, _kept_reduction(_formulas.math), _kept_reduction(_formulas.forward),
           _kept_reduction_backward(_formulas.backward), _reduction_options, _reduced_shape, _spelling_text, _call)

for _name, _math, _forward, _backward, _fill in (
        ("softmax", formula.sym_softmax, formula.softmax_forward, formula.softmax_backward, None),
        ("softmin", _negated(formula.sym_softmax), _negated(formula.softmax_forward),
         _negated_backward(formula.softmax_backward), None),
        ("cumprod", formula.sym_cumprod, formula.prefix_products, formula.cumprod_backward, ONE)):
    _entry(_name, _kept_dimwise(_math, _fill), _kept_dimwise(_forward, _fill),
           _kept_dimwise_backward(_backward, _fill), _dimwise_options, lambda shapes, p: shapes[0],
           f"torch.masked.{_name}({{0}}, {{dim}}, mask={{mask}})",
           lambda x, dim, mask, _n=_name: getattr(torch.masked, _n)(x, dim, mask=mask))

# log_softmax fills -inf: its output there is -inf, which the spelling's masked_fill turns into 0
_entry("log_softmax", _kept_dimwise(formula.sym_log_softmax, None), _kept_dimwise(formula.log_softmax_forward, None),
       _kept_dimwise_backward(formula.log_softmax_backward, None), _dimwise_options, lambda shapes, p: shapes[0],
       "torch.masked.log_softmax({0}, {dim}, mask={mask}).masked_fill(~{mask}, 0.0)",
       lambda x, dim, mask: torch.masked.log_softmax(x, dim, mask=mask).masked_fill(~mask, 0.0))

# normalize fills 0 (the sum's identity) for its norm and its division: 0 / denom = 0 out, 0 back; its
# maximum(norm, eps) is nn.functional.normalize's clamp_min(eps) wherever the norm is above eps
_entry("normalize", _kept_dimwise(NORMALIZE.math, None), _kept_dimwise(NORMALIZE.forward, None),
       _kept_dimwise_backward(NORMALIZE.backward, None), _dimwise_options, lambda shapes, p: shapes[0],
       "torch.masked.normalize({0}, 2.0, {dim}, mask={mask})",
       lambda x, dim, mask: torch.masked.normalize(x, 2.0, dim, mask=mask))


# ------------------------------------------------------------------ logaddexp of two masked tensors
# torch.masked.logaddexp fills each tensor's masked-out elements with -inf and runs torch.logaddexp: where one
# side is -inf the kernel's m + log1p(exp(-|a - b|)) is the other side exactly, and its backward gives that
# side grad / (1 + exp(-inf)) = grad, the filled side grad / (1 + inf) = 0 (and where's backward 0 anyway).
# Every element keeps at least one side (both filled is -inf).
_LOGADDEXP = OPS["logaddexp"]


def _logaddexp_elements(both, only_first, only_second):
    """An elementwise function of the two arrays, by which sides each element keeps."""

    def apply(*args):
        *head, (a, b), p = args
        kept_a, kept_b = p["input_mask"].array, p["other_mask"].array
        out = np.empty(a.shape, dtype=object)
        for i in np.ndindex(*a.shape):
            if kept_a[i] and kept_b[i]:
                out[i] = both(*head, a[i], b[i])
            else:
                out[i] = only_first(a[i]) if kept_a[i] else only_second(b[i])
        return out

    return apply


def _logaddexp_backward(F, arrays, out, grad, p):
    a, b = arrays
    kept_a, kept_b = p["input_mask"].array, p["other_mask"].array
    ga, gb = np.full(a.shape, ZERO, dtype=object), np.full(b.shape, ZERO, dtype=object)
    for i in np.ndindex(*a.shape):
        if kept_a[i] and kept_b[i]:
            local = _LOGADDEXP.local_grads(F, [a[i], b[i]], out[i])
            ga[i], gb[i] = formula.mul(F, grad[i], local[0]), formula.mul(F, grad[i], local[1])
        elif kept_a[i]:
            ga[i] = grad[i]
        else:
            gb[i] = grad[i]
    return ga, gb


def _logaddexp_options(shapes):
    masks = _masks(shapes[0])
    return [_params(input_mask=Mask.of(m), other_mask=Mask.of(n)) for m in masks for n in masks if (m | n).all()]


TENSOR_OPS["masked_logaddexp"] = TensorOp(
    "masked_logaddexp", 2,
    (_spelling("torch.masked.logaddexp({0}, {1}, input_mask={input_mask}, other_mask={other_mask})",
               lambda x, y, input_mask, other_mask: torch.masked.logaddexp(x, y, input_mask=input_mask,
                                                                           other_mask=other_mask)),),
    _logaddexp_elements(_LOGADDEXP.sympy, lambda v: v, lambda v: v),
    _logaddexp_elements(_LOGADDEXP.forward, lambda v: v, lambda v: v), _logaddexp_backward,
    OptionSpace(functools.cache(lambda shapes: tuple(_logaddexp_options(shapes)))), lambda shapes, p: shapes[0],
    ("masked.logaddexp",))
