"""Conventions of torch functions that are not elementwise (reductions and norms), pinned on tiny
hand-built cases: each tensor argument is one element of the reduced vector `torch.stack([x0, x1, ...])`.
The elementwise op table has no oracle for them; their tie and zero conventions are what matters.
"""

from __future__ import annotations

import torch

from oracles.table.conventions import ALL_DTYPES, PinnedOnly, Rule, conv
from oracles.table.ops import Spelling

SUB, SUPER, UNDEFINED, GRADIENT = (Rule.MIN_NORM_SUBGRADIENT, Rule.MIN_NORM_SUPERGRADIENT, Rule.UNDEFINED,
                                   Rule.GRADIENT)


def _loss(function: str, arity: int, label: float | None = None) -> Spelling:
    """torch.nn.functional.<function> of 0-d tensors, with a ±1 label made in their dtype."""
    call = getattr(torch.nn.functional, function)
    arguments = ", ".join(f"{{{i}}}" for i in range(arity))
    if label is None:
        return Spelling(f"torch.nn.functional.{function}({arguments})", call)
    return Spelling(f"torch.nn.functional.{function}({arguments}, {{0}}.new_tensor({label}))",
                    lambda *xs: call(*xs, xs[0].new_tensor(label)))


def _stacked(template: str, reduce) -> Spelling:
    """`template` with {v} standing for `torch.stack([x0, x1, ...])`; `reduce` maps that tensor to the output."""
    return Spelling(template, lambda *xs: reduce(torch.stack(xs)))


def _cdist_of_two_rows(p_source: str, p: float, extra: str = "", **kw) -> Spelling:
    """cdist of the row (x0, x1) against the row (x2, x3); `p_source` is how p is written."""
    return _stacked(f"torch.cdist({{v}}[None, :2], {{v}}[None, 2:], p={p_source}{extra})",
                    lambda v: torch.cdist(v[None, :2], v[None, 2:], p=p, **kw))


NAN = float("nan")
_HALF_TIE = (1.0, 1.0)
_THIRD_TIE = (2.0, 2.0, 2.0)
_PARTIAL_TIE = (1.0, 1.0, 0.0)

def _leading(v: torch.Tensor, kept: int) -> torch.Tensor:
    """The mask that keeps the first `kept` elements of the vector `v`, on its device."""
    return torch.arange(len(v), device=v.device) < kept


def _scattered_extremum(method: str, reduce: str) -> PinnedOnly:
    """Two sources written to one place of a zero, include_self=False: the place is their extremum (the own 0
    is neither, so torch's count of ties is right here; see finding scatter-reduce-excluded-self-counted)."""
    def run(*xs):
        v = torch.stack(xs)
        into = torch.zeros(len(xs), dtype=torch.long, device=v.device)
        return getattr(v.new_zeros(1), method)(0, into, v, reduce, include_self=False)

    kind, tie = (SUB, (1.0, 1.0)) if reduce == "amax" else (SUPER, (-1.0, -1.0))
    text = (f"torch.zeros(1).{method}(0, torch.zeros(2, dtype=torch.long), torch.stack([{{0}}, {{1}}]), "
            f"{reduce!r}, include_self=False)")
    return PinnedOnly(f"{method}_{reduce}", (Spelling(text, run),), (
        conv(tie, (0.5, 0.5), kind, (0.5, 0.5),
             f"{reduce} of the two sources (the own value left out): at their tie the minimum-norm "
             f"{'sub' if reduce == 'amax' else 'super'}gradient is 1/2 each. torch: the place's gradient shared "
             "evenly by the sources equal to the result.", label="tie2"),
    ), note="include_self=False, the own value 0 not tied")


def _norm_at_zero(ord, kind: str, rule: Rule, torch_gradient: tuple[float, ...] | None, why: str,
                  dtypes=ALL_DTYPES) -> PinnedOnly:
    """torch.linalg.norm(v, ord) of the zero vector v = (x0, x1, x2), or of the zero 2 x 2 matrix (x0, x1; x2, x3),
    as linalg.norm's OpInfo variant subgradients_at_zero samples them. The rule's value is 0 everywhere: the
    minimum-norm subgradient of a convex norm at 0, or anything where the function is neither convex nor concave
    there (rule UNDEFINED)."""
    size = 3 if kind == "vector" else 4
    shaped = "{v}" if kind == "vector" else "{v}.reshape(2, 2)"
    name = f"linalg_norm_{kind}_{ord}"
    zeros = (0.0,) * size
    text = f"float({ord!r})" if ord in ("inf", "-inf") else repr(ord)
    return PinnedOnly(name, (Spelling(
        f"torch.linalg.norm({shaped}, {text})",
        lambda *xs: torch.linalg.norm(torch.stack(xs) if kind == "vector" else torch.stack(xs).reshape(2, 2),
                                      float(ord) if ord in ("inf", "-inf") else ord)),), (
        conv(zeros, torch_gradient or zeros, rule, zeros if rule is SUB else (None,) * size, why, label="zero",
             dtypes=dtypes),
    ), note=f"the zero {kind}")


_CONVEX_AT_ZERO = "a norm, convex: at 0 its subdifferential is the dual norm's unit ball, of minimum norm 0. "
_NEITHER_AT_ZERO = ("not a norm: at 0 it is neither convex nor concave (positively homogeneous, V-shaped along some "
                    "lines and not along others), so there is no gradient, sub- or supergradient to prescribe. ")
_SVD_DTYPES = ("float64", "float32")  # torch's CPU svd has no bfloat16 or float16 kernel
_NORMS_AT_ZERO = (
    *(_norm_at_zero(o, "vector", SUB, None, _CONVEX_AT_ZERO + f"torch: ord {o}, norm_backward gives 0 where the "
                    "norm is 0 (p = 1: sgn(0) = 0; p = inf: sgn(0) times the share of the tied maxima).")
      for o in (1, 2, 3.5, "inf")),
    *(_norm_at_zero(o, "vector", UNDEFINED, None, _NEITHER_AT_ZERO + f"torch: ord {o}, 0.")
      for o in (0.5, -0.5, -1, -2, -3.5, "-inf")),
    *(_norm_at_zero(o, "matrix", SUB, None, _CONVEX_AT_ZERO + f"torch: ord {o!r}, 0 (fro: norm_backward's mask; inf "
                    "and 1: the vector 1-norm's sgn(0) = 0 under amax's share).")
      for o in ("fro", "inf", 1)),
    *(_norm_at_zero(o, "matrix", UNDEFINED, None, _NEITHER_AT_ZERO + f"torch: ord {o!r}, 0.")
      for o in ("-inf", -1)),
    _norm_at_zero(-2, "matrix", UNDEFINED, (0.5, 0.0, 0.0, 0.5), _NEITHER_AT_ZERO + "torch: the smallest singular "
                  "value's gradient, shared evenly by the two tied singular values 0 (amin's backward over svdvals): "
                  "I / 2.", dtypes=_SVD_DTYPES),
    _norm_at_zero("nuc", "matrix", SUB, (1.0, 0.0, 0.0, 1.0), _CONVEX_AT_ZERO + "torch: U Vᵀ of the zero matrix's "
                  "SVD (U = V = I), the identity: a subgradient (its spectral norm is 1) but not the least.",
                  dtypes=_SVD_DTYPES),
    _norm_at_zero(2, "matrix", SUB, (0.5, 0.0, 0.0, 0.5), _CONVEX_AT_ZERO + "torch: the largest singular value's "
                  "gradient u vᵀ, shared evenly by the two tied singular values 0 (amax's backward over svdvals): "
                  "I / 2, a subgradient (its nuclear norm is 1) but not the least.", dtypes=_SVD_DTYPES),
)


_F = torch.nn.functional
# Each max pooling as one window over the two elements (x0, x1), in its own input layout.
_ONE_WINDOW = {
    "max_pool1d": ("{v}[None], 2", lambda v: _F.max_pool1d(v[None], 2)),
    "max_pool2d": ("{v}.reshape(1, 1, 2), (1, 2)", lambda v: _F.max_pool2d(v.reshape(1, 1, 2), (1, 2))),
    "max_pool3d": ("{v}.reshape(1, 1, 1, 2), (1, 1, 2)", lambda v: _F.max_pool3d(v.reshape(1, 1, 1, 2), (1, 1, 2))),
    "adaptive_max_pool1d": ("{v}[None], 1", lambda v: _F.adaptive_max_pool1d(v[None], 1)),
    "adaptive_max_pool2d": ("{v}.reshape(1, 1, 2), 1", lambda v: _F.adaptive_max_pool2d(v.reshape(1, 1, 2), 1)),
    "adaptive_max_pool3d": ("{v}.reshape(1, 1, 1, 2), 1",
                            lambda v: _F.adaptive_max_pool3d(v.reshape(1, 1, 1, 2), 1)),
    "fractional_max_pool2d": ("{v}.reshape(1, 1, 2), (1, 2), output_size=1, _random_samples={v}.new_zeros(1, 1, 2)",
                              lambda v: _F.fractional_max_pool2d(v.reshape(1, 1, 2), (1, 2), output_size=1,
                                                                 _random_samples=v.new_zeros(1, 1, 2))),
    # fractional_max_pool3d needs every input size above output + kernel - 1, and its one window ends the input:
    # the two elements end a padded input
    "fractional_max_pool3d": ("torch.cat([{v}.new_full((10,), -2.0), {v}]).reshape(1, 2, 2, 3), (1, 1, 2), "
                              "output_size=1, _random_samples={v}.new_zeros(1, 1, 3)",
                              lambda v: _F.fractional_max_pool3d(
                                  torch.cat([v.new_full((10,), -2.0), v]).reshape(1, 2, 2, 3), (1, 1, 2),
                                  output_size=1, _random_samples=v.new_zeros(1, 1, 3))),
}


def _max_pool_tie(name: str) -> PinnedOnly:
    arguments, pool = _ONE_WINDOW[name]
    return PinnedOnly(name, (_stacked(f"torch.nn.functional.{name}({arguments})", pool),), (
        conv(_HALF_TIE, (1.0, 0.0), SUB, (0.5, 0.5),
             "the maximum of a window is convex, of minimum-norm subgradient 1/k on a tie of k. torch: the kernel "
             "returns the first maximum of its scan of the window (val > maxval) and the backward sends grad to "
             "that index only (undocumented; tests/test_selection_ops.py pins it in every layout).", label="tie2"),
    ), note="one window of two elements")


def _running_extremum_tie(name: str) -> PinnedOnly:
    kind, rule = ("convex", SUB) if name == "cummax" else ("concave", SUPER)
    running = _stacked(f"torch.{name}({{v}}, 0).values", lambda v: getattr(torch, name)(v, 0).values)
    return PinnedOnly(name, (running,), (
        conv(_HALF_TIE, (1.0, 1.0), rule, (1.0, 1.0),
             f"the sum of the outputs x0 + {name[3:]}(x0, x1) is {kind}; at the tie its "
             f"{'sub' if rule is SUB else 'super'}differential is (1 + t, 1 - t) for t in [0, 1], of minimum norm "
             f"(1, 1). torch: the kernel compares with {'>=' if name == 'cummax' else '<='}, so the second prefix "
             "returns its last element, x1, and the backward adds each output's grad at its index: (1, 1), the "
             "rule's value (undocumented; tests/test_selection_ops.py pins it).", label="tie2"),
    ), note="two elements along dim 0, the outputs summed")


PINNED_ONLY: dict[str, PinnedOnly] = {p.name: p for p in (
    PinnedOnly("amax", (_stacked("{v}.amax()", torch.amax), _stacked("torch.amax({v}, dim=0)",
                                                                  lambda v: torch.amax(v, dim=0))), (
        conv(_HALF_TIE, (0.5, 0.5), SUB, (0.5, 0.5),
             "max of a vector is convex; at a tie of k entries its subdifferential is the simplex on them, of "
             "minimum norm 1/k each. torch: amax's backward splits grad evenly among the maxima.", label="tie2"),
        conv(_THIRD_TIE, (1 / 3, 1 / 3, 1 / 3), SUB, (1 / 3, 1 / 3, 1 / 3), "a three-way tie: 1/3 each.",
             label="tie3"),
        conv(_PARTIAL_TIE, (0.5, 0.5, 0.0), SUB, (0.5, 0.5, 0.0), "two of three tie; the third is not a max.",
             label="tie2of3"),
    )),
    PinnedOnly("amin", (_stacked("{v}.amin()", torch.amin),), (
        conv(_HALF_TIE, (0.5, 0.5), SUPER, (0.5, 0.5),
             "min of a vector is concave; minimum-norm supergradient 1/k on a tie of k. torch: split evenly.",
             label="tie2"),
    )),
    PinnedOnly("max", (_stacked("{v}.max()", torch.max),), (
        conv(_HALF_TIE, (0.5, 0.5), SUB, (0.5, 0.5),
             "the full reduction max(): as amax, 1/k each. torch: evenly distributed (max's backward "
             "for the full reduction is evenly_distribute_backward).", label="tie2"),
    ), note="full reduction, no dim"),
    PinnedOnly("max_dim", (_stacked("{v}.max(dim=0).values", lambda v: v.max(dim=0).values),), (
        conv(_HALF_TIE, (1.0, 0.0), SUB, (0.5, 0.5),
             "the same function as amax (1/2 each by the rule). torch: max(dim) returns an index and its "
             "backward scatters grad to that index only (value_selecting_reduction_backward), so the tie "
             "goes to the first maximum.", label="tie2"),
    ), note="max over a dimension, which also returns indices"),
    PinnedOnly("min_dim", (_stacked("{v}.min(dim=0).values", lambda v: v.min(dim=0).values),), (
        conv(_HALF_TIE, (1.0, 0.0), SUPER, (0.5, 0.5),
             "the same function as amin (1/2 each by the rule). torch: min(dim) returns an index, the first "
             "minimum (its docs), and its backward scatters grad to that index only "
             "(value_selecting_reduction_backward).", label="tie2"),
    ), note="min over a dimension, which also returns indices"),
    PinnedOnly("aminmax_min", (_stacked("torch.aminmax({v}).min", lambda v: torch.aminmax(v).min),), (
        conv(_HALF_TIE, (0.5, 0.5), SUPER, (0.5, 0.5),
             "the min piece, concave: minimum-norm supergradient 1/k on a tie of k. torch: aminmax_backward "
             "splits grad evenly among the tied (scale_grad_by_count, as amin).", label="tie2"),
    ), note="the min piece of aminmax"),
    PinnedOnly("aminmax_max", (_stacked("torch.aminmax({v}).max", lambda v: torch.aminmax(v).max),), (
        conv(_HALF_TIE, (0.5, 0.5), SUB, (0.5, 0.5),
             "the max piece, convex: minimum-norm subgradient 1/k on a tie of k. torch: aminmax_backward "
             "splits grad evenly among the tied (scale_grad_by_count, as amax).", label="tie2"),
    ), note="the max piece of aminmax"),
    PinnedOnly("min", (_stacked("{v}.min()", torch.min),), (
        conv(_HALF_TIE, (0.5, 0.5), SUPER, (0.5, 0.5), "the full reduction min(): 1/k each.", label="tie2"),
    ), note="full reduction, no dim"),
    PinnedOnly("vector_norm", (_stacked("torch.linalg.vector_norm({v})", torch.linalg.vector_norm),
                               _stacked("{v}.norm()", lambda v: v.norm())), (
        conv((0.0, 0.0), (0.0, 0.0), SUB, (0.0, 0.0),
             "the 2-norm is convex; at 0 its subdifferential is the unit ball, of minimum norm 0. torch: "
             "norm_backward masks the 0/0 where the norm is 0 (PR #2775 for issue #2421). Compare hypot, "
             "the same function of two tensors, which gives NaN there.", label="0,0"),
    )),
    PinnedOnly("std", (_stacked("{v}.std()", torch.std), _stacked("torch.std({v}, correction=0)",
                                                                lambda v: torch.std(v, correction=0))), (
        conv(_HALF_TIE, (0.0, 0.0), SUB, (0.0, 0.0),
             "std is the 2-norm of the deviations from the mean over sqrt(N - correction): convex, and at a "
             "constant vector (std 0) its subdifferential contains 0, the minimum-norm element. torch: "
             "std_backward masks the 0/0 where the result is 0.", label="const2"),
        conv(_THIRD_TIE, (0.0, 0.0, 0.0), SUB, (0.0, 0.0, 0.0), "three equal values: as above.", label="const3"),
    )),
    PinnedOnly("l1_loss", (_loss("l1_loss", 2),), (
        conv((1.0, 1.0), (0.0, -0.0), SUB, (0.0, 0.0),
             "|input - target| is convex; at input == target its subdifferential is {(s, -s): s in [-1, 1]}, of "
             "minimum norm (0, 0). torch: abs's backward grad * sgn(0) = 0, the target's its negation (-0).",
             label="tie"),
    )),
    PinnedOnly("margin_ranking_loss", (_loss("margin_ranking_loss", 2, label=1.0),), (
        conv((1.0, 1.0), (-1.0, 1.0), SUB, (0.0, 0.0),
             "max(0, -(x1 - x2)) (target 1, margin 0) is convex; at x1 == x2 its subdifferential is {s (-1, 1): s in "
             "[0, 1]}, of minimum norm (0, 0). torch: clamp_min's backward passes grad where z >= 0, so the whole "
             "slope (-1, 1).", label="tie"),
    ), note="target 1, margin 0"),
    PinnedOnly("hinge_embedding_loss", (_loss("hinge_embedding_loss", 1, label=-1.0),), (
        conv((1.0,), (-1.0,), SUB, (0.0,),
             "max(0, 1 - x) (target -1, margin 1) is convex; at x = 1 its subdifferential is [-1, 0], of minimum "
             "norm 0. torch: clamp_min's backward passes grad where z >= 0, so the slope -1.", label="margin"),
    ), note="target -1, margin 1"),
    PinnedOnly("multi_margin_loss", (Spelling("torch.nn.functional.multi_margin_loss(torch.stack([{0}, {1}]), "
                                              "torch.tensor(0))",
                                              lambda *xs: torch.nn.functional.multi_margin_loss(
                                                  torch.stack(xs), torch.tensor(0))),), (
        conv((1.0, 0.0), (0.0, 0.0), SUB, (0.0, 0.0),
             "max(0, 1 - x0 + x1) / 2 (target class 0, margin 1) is convex; at x0 - x1 = 1 its subdifferential is "
             "{s (-1, 1) / 2: s in [0, 1]}, of minimum norm (0, 0). torch: its kernel adds a class only where "
             "z > 0.", label="margin", dtypes=("float64", "float32")),
    ), note="two classes, target 0, margin 1, p = 1; torch has no bfloat16 or float16 CPU kernel"),
    PinnedOnly("multilabel_margin_loss", (Spelling(
        "torch.nn.functional.multilabel_margin_loss(torch.stack([{0}, {1}]), torch.tensor([0, -1]))",
        lambda *xs: torch.nn.functional.multilabel_margin_loss(
            torch.stack(xs), torch.tensor([0, -1], device=xs[0].device))),), (
        conv((1.0, 0.0), (0.0, 0.0), SUB, (0.0, 0.0),
             "max(0, 1 - x0 + x1) / 2 (target class 0 only) is convex; at x0 - x1 = 1 its subdifferential is "
             "{s (-1, 1) / 2: s in [0, 1]}, of minimum norm (0, 0). torch: its kernel counts a pair only where "
             "z > 0.", label="margin", dtypes=("float64", "float32")),
    ), note="two classes, target (0, -1); torch has no bfloat16 or float16 CPU kernel"),
    *(_scattered_extremum(method, reduce) for method in ("scatter_reduce", "index_reduce")
      for reduce in ("amax", "amin")),
    *(_max_pool_tie(name) for name in _ONE_WINDOW),
    *(_running_extremum_tie(name) for name in ("cummax", "cummin")),
    PinnedOnly("masked_std", (_stacked("torch.masked.std({v}, 0, correction=0, mask=torch.tensor([True, True, False]))",
                                       lambda v: torch.masked.std(v, 0, correction=0, mask=_leading(v, 2))),), (
        conv((1.0, 1.0, 5.0), (NAN, NAN, 0.0), (SUB, SUB, GRADIENT), (0.0, 0.0, 0.0),
             "the kept elements (1, 1) are a constant slice: std is the norm of the deviations over sqrt(N), "
             "convex, and 0 is the minimum-norm subgradient (torch.std gives it); the masked-out element does not "
             "move the result. torch: masked.std is sqrt(masked.var) as a composite, and SqrtBackward's grad / (2 "
             "* 0) times the zero deviations is NaN.", label="const2"),
    ), note="correction 0, the last element masked out"),
    PinnedOnly("masked_std_one_kept", (
        _stacked("torch.masked.std({v}, 0, correction=0, mask=torch.tensor([True, False]))",
                 lambda v: torch.masked.std(v, 0, correction=0, mask=_leading(v, 1))),), (
        conv((1.0, 2.0), (NAN, 0.0), GRADIENT, (0.0, 0.0),
             "one kept element: its deviation from its own mean is exactly 0 for every value, so the std is the "
             "constant 0 and its gradient 0 (a differentiable point); the masked-out element does not move it. "
             "torch: as for a constant slice, grad / (2 * 0) times 0 is NaN.", label="one"),
    ), note="correction 0, the second element masked out"),
    PinnedOnly("pdist", (_stacked("torch.pdist({v}[:, None])", lambda v: torch.pdist(v[:, None])),), (
        conv(_HALF_TIE, (0.0, 0.0), SUB, (0.0, 0.0),
             "the distance |x0 - x1| of two one-element rows is convex, and at x0 = x1 its subdifferential "
             "{(s, -s): s in [-1, 1]} holds (0, 0), the minimum-norm element. torch: _pdist_backward gives 0 "
             "where the distance is 0.", label="same-rows", dtypes=("float64", "float32")),
    ), note="two rows of one element, p = 2; torch has no bfloat16 or float16 CPU kernel"),
    PinnedOnly("cdist", (
        _cdist_of_two_rows("2.0", 2.0),
        _cdist_of_two_rows("2.0", 2.0, ", compute_mode='use_mm_for_euclid_dist'",
                           compute_mode="use_mm_for_euclid_dist"),
        _cdist_of_two_rows("3.0", 3.0)), (
        conv((0.5, -1.0, 0.5, -1.0), (0.0, 0.0, 0.0, 0.0), SUB, (0.0, 0.0, 0.0, 0.0),
             "the distance ||(x0, x1) - (x2, x3)|| of two identical rows is a norm at 0, convex, whose "
             "subdifferential holds 0, the minimum-norm element. torch: _cdist_backward gives 0 where dist == 0 "
             "(direct kernel, p = 2 and 3); the matrix-product route's forward is exactly 0 here and "
             "_euclidean_dist_backward masks grad / 0 to 0.", label="same-rows",
             dtypes=("float64", "float32")),
    ), note="one row (x0, x1) against one row (x2, x3); torch has no bfloat16 or float16 CPU kernel"),
    PinnedOnly("cdist_p1", (_cdist_of_two_rows("1.0", 1.0),), (
        conv((0.5, -1.0, 0.5, 2.0), (0.0, -1.0, 0.0, 1.0), SUB, (0.0, -1.0, 0.0, 1.0),
             "|x0 - x2| + |x1 - x3| with x0 = x2: convex in (x0, x2) with subdifferential {(s, -s): s in [-1, 1]}, "
             "minimum norm (0, 0); the other term is differentiable. torch: grad * sign(diff), sign(0) = 0.",
             label="one-tie", dtypes=("float64", "float32")),
    ), note="one row (x0, x1) against one row (x2, x3), p = 1"),
    PinnedOnly("cdist_p0", (_cdist_of_two_rows("0.0", 0.0),), (
        conv((0.5, -1.0, 0.5, 2.0), (0.0, 0.0, 0.0, 0.0), UNDEFINED, (None, None, None, None),
             "the count of nonzero differences is 1 here (x0 = x2) and 2 as soon as x0 or x2 moves: a jump, no "
             "limit. torch: _cdist_backward fills 0 for p = 0 everywhere.", label="jump",
             dtypes=("float64", "float32")),
    ), note="one row (x0, x1) against one row (x2, x3), p = 0"),
    PinnedOnly("cdist_inf", (_cdist_of_two_rows("float('inf')", float("inf")),), (
        conv((1.0, -1.0, 0.0, 0.0), (1.0, -1.0, -1.0, 1.0), SUB, (0.5, -0.5, -0.5, 0.5),
             "max(|x0 - x2|, |x1 - x3|) at a tie of the two (1 and 1) is convex, its subdifferential the convex "
             "hull of (1, 0, -1, 0) and (0, -1, 0, 1), of minimum norm half of each. torch: the kernel's backward "
             "gives grad * sign(diff) to every element with |diff| == dist, so each tied element gets the whole "
             "gradient: (1, -1, -1, 1) is not in the subdifferential at all.", label="tie2",
             dtypes=("float64", "float32")),
    ), note="one row (x0, x1) against one row (x2, x3), p = inf"),
    *_NORMS_AT_ZERO,
    PinnedOnly("mode", (_stacked("torch.mode({v}).values", lambda v: torch.mode(v).values),), (
        conv(_HALF_TIE, (0.0, 1.0), SUPER, (0.5, 0.5),
             "both values occur once more than none: the mode is 1 = min(x0, x1) here and nearby (distinct values "
             "each occur once, and torch's mode is then the smallest), concave, so the minimum-norm supergradient "
             "is 1/2 each. torch: the kernel returns the last index of the run of equal values and "
             "value_selecting_reduction_backward sends the whole gradient there.", label="tie2"),
        conv((1.0, 2.0, 2.0), (0.0, 0.0, 1.0), UNDEFINED, (None, None, None),
             "2 occurs twice, so the mode is 2; any move of x1 or x2 apart makes every count 1 and the mode "
             "min(x) = 1: a jump, no limit. torch: the last index of the run of 2s.", label="jump"),
    ), note="the mode of a vector"),
    PinnedOnly("prelu", (Spelling("torch.nn.functional.prelu({0}, {1})", torch.nn.functional.prelu),), (
        conv((0.0, 0.25), (0.25, 0.0), (SUB, GRADIENT), (0.25, 0.0),
             "prelu(x, w) = max(x, 0) + w min(x, 0) with w = 1/4 is convex in x at 0: subdifferential [1/4, 1], "
             "minimum norm 1/4; its w-derivative min(x, 0) is continuous, 0 at x = 0. torch: "
             "_prelu_kernel_backward, input > 0 ? grad : weight * grad; weight: input > 0 ? 0 : input * grad.",
             label="0,w=1/4"),
        conv((0.0, 2.0), (2.0, 0.0), (SUPER, GRADIENT), (1.0, 0.0),
             "with w = 2 the slope falls from 2 to 1 at 0: concave, superdifferential [1, 2], minimum norm 1; the "
             "w-derivative 0 as above. torch's formula takes the weight, the left slope.", label="0,w=2"),
    ), note="0-d x and weight"),
    PinnedOnly("renorm", (_stacked("torch.renorm({v}[None], 2, 0, 1.0)",
                                   lambda v: torch.renorm(v[None], 2, 0, 1.0)),), (
        conv((1.0, 0.0), (1.0, 1.0), UNDEFINED, (None, None),
             "the row (1, 0) has norm 1 = maxnorm, so renorm copies it; any x1 != 0 (or x0 > 1) makes the norm "
             "exceed 1 and scales the row by 1 / (norm + 1e-7), so the first output jumps from 1 to about 1 - 1e-7: "
             "not continuous, no derivative, any value. torch: renorm_backward's where(norm > maxnorm, ..., grad) "
             "passes grad at the tie (the copy's derivative).", label="norm=maxnorm"),
    ), note="one row of two elements, p = 2, maxnorm 1"),
)}
