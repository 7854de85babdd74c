"""aten's softmax internals that OpInfo lists: _safe_softmax and _softmax_backward_data, one entry each.

_safe_softmax is softmax (at::softmax, then 0 where a slice is all -inf, which finite inputs never are), with
softmax's backward (_softmax_backward_data of the result); oracles.table.tensor_formulas' softmax formulas.

_softmax_backward_data(grad_output, output, dim, input_dtype) is y * (g - sum(g * y)) along dim, softmax's
backward; the spelling hands it a softmax's output, `torch.ops.aten._softmax_backward_data(x0, torch.softmax(x1,
1), 1, x0.dtype)`, so both arguments are differentiated (derivatives.yaml): grad_output by the same kernel
(the map is symmetric in g), output by softmax_double_backward (FunctionsManual.cpp: gO * G - sum(y * gO) * G
- gO * sum(y * G), each a tensor op of the dtype), and then x1 by softmax's own backward. It is drawn on vectors:
its SymPy Jacobian on matrices costs seconds of CI (tests/test_softmax_internals.py checks each dim of a matrix).
"""

from __future__ import annotations

import numpy as np
import torch

from oracles.table import tensor_formulas as formula
from oracles.table.tensor_ops import TENSOR_OPS, ScanSpace, TensorOp, TSpelling

NAMES = ["safe_softmax", "softmax_backward_data"]

TENSOR_OPS["safe_softmax"] = TensorOp(
    "safe_softmax", 1,
    (TSpelling(lambda a, p: f"torch.ops.aten._safe_softmax.default({a[0]}, {p.dim})",
               lambda a, p: torch.ops.aten._safe_softmax.default(a[0], p.dim)),
     TSpelling(lambda a, p: f"torch.ops.aten._safe_softmax({a[0]}, {p.dim})",
               lambda a, p: torch.ops.aten._safe_softmax(a[0], p.dim))),
    formula.dimwise(formula.sym_softmax), formula.dimwise(formula.softmax_forward),
    formula.dimwise_backward(formula.softmax_backward), ScanSpace(), lambda shapes, p: shapes[0],
    ("torch.ops.aten._safe_softmax.default",))


def _slices(p, *arrays):
    """Per slice along p.dim: its members and each array's values there."""
    for members, _ in formula.slices(arrays[0].shape, p.dim):
        yield members, [[a[m] for m in members] for a in arrays]


def _sym(arrays, p):
    g, x = arrays
    out = np.empty(g.shape, dtype=object)
    for members, (gs, xs) in _slices(p, g, x):
        y = formula.sym_softmax(xs, p)
        total = sum(gi * yi for gi, yi in zip(gs, y))
        for m, gi, yi in zip(members, gs, y):
            out[m] = yi * (gi - total)
    return out


def _forward(F, arrays, p):
    g, x = arrays
    out = np.empty(g.shape, dtype=object)
    for members, (gs, xs) in _slices(p, g, x):
        y = formula.softmax_forward(F, xs, p)
        for m, v in zip(members, formula.softmax_backward(F, xs, y, gs, p)):
            out[m] = v
    return out


def _double_backward(F, y, g_out, grad):
    """softmax_double_backward(grad, grad_output, dim, output): gO * G - sum(y * gO) * G - gO * sum(y * G), the
    sums torch's reductions (fused_sum)."""
    with_g_out = formula.fused_sum(F, [formula.mul(F, yi, gi) for yi, gi in zip(y, g_out)])
    with_grad = formula.fused_sum(F, [formula.mul(F, yi, gi) for yi, gi in zip(y, grad)])
    return [F.sub(F.sub(formula.mul(F, go, gr), formula.mul(F, with_g_out, gr)), formula.mul(F, go, with_grad))
            for go, gr in zip(g_out, grad)]


def _backward(F, arrays, out, grad, p):
    g, x = arrays
    to_g, to_x = np.empty(g.shape, dtype=object), np.empty(x.shape, dtype=object)
    for members, (gs, xs, upstream) in _slices(p, g, x, grad):
        y = formula.softmax_forward(F, xs, p)
        through_output = _double_backward(F, y, gs, upstream)
        for m, a, b in zip(members, formula.softmax_backward(F, xs, y, upstream, p),
                           formula.softmax_backward(F, xs, y, through_output, p)):
            to_g[m], to_x[m] = a, b
    return to_g, to_x


TENSOR_OPS["softmax_backward_data"] = TensorOp(
    "softmax_backward_data", 2,
    (TSpelling(lambda a, p: f"torch.ops.aten._softmax_backward_data({a[0]}, torch.softmax({a[1]}, {p.dim}), {p.dim}, "
                            f"{a[0]}.dtype)",
               lambda a, p: torch.ops.aten._softmax_backward_data(a[0], torch.softmax(a[1], p.dim), p.dim,
                                                                   a[0].dtype)),),
    _sym, _forward, _backward, ScanSpace(), lambda shapes, p: shapes[0], ("_softmax_backward_data",), ranks=(1,))
