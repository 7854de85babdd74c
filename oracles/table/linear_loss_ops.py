"""linear_cross_entropy(input, linear_weight, target) on its reference path (options=None): cross_entropy of the
logits input @ linear_weightᵀ, both tensors differentiated.

torch runs exactly that composite (measured: NllLossBackward0, LogSoftmaxBackward0, MmBackward0): the logits are
one matrix product per element (accumulated in float for bfloat16 and float16, rounded once), cross_entropy is the
table's entry (oracles.table.sample_losses) on them, and mm's backward gives grad_logits @ linear_weight and
grad_logitsᵀ @ input, each a product accumulated the same way. The chunked path (`options=`), which computes the
gradients inside its forward, is another algorithm and is not modelled here.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from oracles.table import sample_losses
from oracles.table.tensor_formulas import fused_sum, mul
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["linear_cross_entropy"]  # the entries this module adds to TENSOR_OPS (their forwards round)
CROSS_ENTROPY = TENSOR_OPS[sample_losses.NAMES[sample_losses.NAMES.index("cross_entropy")]]  # registered there


def _rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(1, -1) if x.ndim == 1 else x


def _as_input(rows: np.ndarray, like: np.ndarray) -> np.ndarray:
    return rows.reshape(like.shape)


def _logits_model(F, x, w):
    G = F.opmath
    rows = _rows(x)
    out = np.empty((rows.shape[0], w.shape[0]), dtype=object)
    for i, c in np.ndindex(*out.shape):
        out[i, c] = fused_sum(F, [mul(G, a, b) for a, b in zip(rows[i], w[c])])
    return out.reshape(x.shape[:-1] + (w.shape[0],))


def _sym(arrays, p):
    x, w = arrays
    logits = np.array([[sum(a * b for a, b in zip(row, w_row)) for w_row in w] for row in _rows(x)], dtype=object)
    return CROSS_ENTROPY.sympy([logits.reshape(x.shape[:-1] + (w.shape[0],))], p)


def _forward(F, arrays, p):
    return CROSS_ENTROPY.forward(F, [_logits_model(F, *arrays)], p)


def _backward(F, arrays, out, grad, p):
    """cross_entropy's backward gives grad_logits (in the dtype); mm's backward: grad_logits @ w, grad_logitsᵀ @ x."""
    x, w = arrays
    G = F.opmath
    d_logits = _rows(CROSS_ENTROPY.backward(F, [_logits_model(F, x, w)], out, grad, p)[0])
    rows = _rows(x)
    d_x = np.empty(rows.shape, dtype=object)
    for i, j in np.ndindex(*rows.shape):
        d_x[i, j] = fused_sum(F, [mul(G, d_logits[i, c], w[c, j]) for c in range(w.shape[0])])
    d_w = np.empty(w.shape, dtype=object)
    for c, j in np.ndindex(*w.shape):
        d_w[c, j] = fused_sum(F, [mul(G, d_logits[i, c], rows[i, j]) for i in range(rows.shape[0])])
    return _as_input(d_x, x), d_w


def _operand_shapes(shape):
    """input (N, in) or (in,), linear_weight (C, in) of two or three classes."""
    return [(shape, (classes, shape[-1])) for classes in (2, 3)]


def _options(shapes):
    x, w = shapes
    return tuple(CROSS_ENTROPY.space.options((x[:-1] + (w[0],),)))


def _call(args, p, default_reduction: bool = False):
    reduction = {} if default_reduction else {"reduction": p["reduction"]}
    return torch.nn.functional.linear_cross_entropy(args[0], args[1], p["target"].tensor(args[0].device), **reduction)


TENSOR_OPS["linear_cross_entropy"] = TensorOp(
    "linear_cross_entropy", 2,
    (TSpelling(lambda t, p: (f"torch.nn.functional.linear_cross_entropy({t[0]}, {t[1]}, {p['target']!r}, "
                             f"reduction={p['reduction']!r})"), _call),
     TSpelling(lambda t, p: f"torch.nn.functional.linear_cross_entropy({t[0]}, {t[1]}, {p['target']!r})",
               lambda args, p: _call(args, p, default_reduction=True), lambda shapes, p: p["reduction"] == "mean")),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)),
    lambda shapes, p: CROSS_ENTROPY.shape((shapes[0][:-1] + (shapes[1][0],),), p),
    ("nn.functional.linear_cross_entropy",), operand_shapes=_operand_shapes)
