"""linear_cross_entropy(input, linear_weight, target, options=LinearCrossEntropyOptions(batch_chunk_size=b)) on its
chunked path (OpInfo's [chunked]: 'mean' and 'sum'; [chunked_none]: 'none'), both tensors differentiated.

The function is the reference path's (oracles.table.linear_loss_ops), cross_entropy of input @ linear_weightᵀ; the
algorithm is another (torch/nn/modules/linear_cross_entropy.py), which the rounding model follows. The samples are
taken b at a time; for each chunk: logits = x @ Wᵀ; logits -= their row maximum; the loss gathers w_n · logit[t_n]
and w_n · log Σ exp(logits) (w_n = -1/N under 'mean', -1 under 'sum'); the logits become q = exp(logits) ·
(w_n / Σ exp); grad_input = w_n W[t_n] - q @ W; grad_linear_weight accumulates -qᵀ x plus w_n x_n at row t_n. So
the forward computes the gradients, and the backward multiplies them by the upstream gradient (one rounding).
Under 'none' the forward computes the losses only, log Σ exp - logit[t_n] per sample, and the backward runs the
same loop with w_n = -grad_n.

The arithmetic is the input's dtype for float64 and float32 (acc_policy "auto" is "compact" there). For bfloat16
and float16 on the CPU, "auto" is "accurate" with float32 accumulation: the loop computes in float (the inputs and
linear_weight converted exactly), grad_input and the float16 loss are rounded to the dtype once at the end, but
grad_linear_weight (and the bfloat16 loss) is a tensor of the dtype that each chunk's float result is added to,
rounded chunk by chunk.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from flint import arb

from oracles.table import linear_loss_ops
from oracles.table.tensor_formulas import _exp, _log, hull_maximum, mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, OptionSpace, TensorOp, TSpelling

NAMES = ["linear_cross_entropy_chunked"]  # the entries this module adds to TENSOR_OPS (their forwards round)
REFERENCE = TENSOR_OPS["linear_cross_entropy"]
CHUNK_SIZES = (1, 2)


def _rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(1, -1) if x.ndim == 1 else x


def _targets(p) -> list[int]:
    values = p["target"].array
    return [int(values)] if values.ndim == 0 else [int(v) for v in values]


def _chunks(n: int, size: int) -> list[range]:
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


class _Loop:
    """One run of the chunked loop in the rounding model: `A` the arithmetic of the loop (float for bfloat16 and
    float16), `F` the dtype's; `weights` the w_n of the samples."""

    def __init__(self, F, x: np.ndarray, w: np.ndarray, targets: list[int], weights: list[arb]):
        self.F, self.A = F, F.opmath
        self.x, self.w, self.targets, self.weights = _rows(x), w, targets, weights
        A = self.A
        # logits less their row maximum, the exponentials and their sums
        self.shifted, self.sums = [], []
        for row in self.x:
            logits = [sum_any(A, [mul(A, a, b) for a, b in zip(row, w_row)]) for w_row in w]
            top = hull_maximum(logits)
            shifted = [A.sub(v, top) for v in logits]
            exps = [_exp(A, v) for v in shifted]
            self.shifted.append(shifted)
            self.sums.append((exps, A.sum(exps)))

    def scaled_softmax(self, n: int) -> list[arb]:
        """q_n = exp(logits) · (w_n / Σ exp): the softmax times w_n, two roundings."""
        exps, total = self.sums[n]
        factor = self.A.div(self.weights[n], total)
        return [mul(self.A, e, factor) for e in exps]

    def loss_terms(self) -> list[arb]:
        """w_n · logit[t_n] and -w_n · log Σ exp, for each sample: the scalar loss is their sum."""
        A = self.A
        out = []
        for n, t in enumerate(self.targets):
            out += [mul(A, self.weights[n], self.shifted[n][t]), -mul(A, self.weights[n], _log(A, self.sums[n][1]))]
        return out

    def per_sample_losses(self) -> list[arb]:
        """'none': log Σ exp - logit[t_n], in the dtype."""
        return [self.F.store(self.A.sub(_log(self.A, self.sums[n][1]), self.shifted[n][t]))
                for n, t in enumerate(self.targets)]

    def grad_input(self) -> np.ndarray:
        """w_n W[t_n] - q_n @ W (addmm into the first product), rounded to the dtype once."""
        A, w = self.A, self.w
        out = np.empty(self.x.shape, dtype=object)
        for n, t in enumerate(self.targets):
            q = self.scaled_softmax(n)
            for k in range(self.x.shape[1]):
                terms = [mul(A, w[t, k], self.weights[n])] + [-mul(A, q[j], w[j, k]) for j in range(w.shape[0])]
                out[n, k] = self.F.store(sum_any(A, terms))
        return out

    def grad_linear_weight(self, chunk_size: int) -> np.ndarray:
        """-Σ_n q_nj x_nk + Σ_{n: t_n = j} w_n x_nk, accumulated chunk by chunk: where the loop computes in float,
        each chunk's sum is added to a tensor of the dtype (a rounding per chunk)."""
        A, F = self.A, self.F
        q = [self.scaled_softmax(n) for n in range(len(self.targets))]
        out = np.empty(self.w.shape, dtype=object)
        for j, k in np.ndindex(*self.w.shape):
            per_chunk = []
            for chunk in _chunks(len(self.targets), chunk_size):
                terms = [-mul(A, q[n][j], self.x[n, k]) for n in chunk]
                terms += [mul(A, self.x[n, k], self.weights[n]) for n in chunk if self.targets[n] == j]
                per_chunk.append(sum_any(A, terms))
            out[j, k] = sum_any(A, per_chunk) if A is F else sum_any(F, [F.round(v) for v in per_chunk])
        return out


def _reduction_weights(A, p, n: int) -> list[arb]:
    """w_n of the scalar reductions: -1/N (computed in the loop's arithmetic) under 'mean', -1 under 'sum'."""
    weight = A.div(arb(-1), arb(n)) if p["reduction"] == "mean" else arb(-1)
    return [weight] * n


def _sym(arrays, p):
    return REFERENCE.sympy(arrays, p)


def _forward(F, arrays, p):
    x, w = arrays
    n = _rows(x).shape[0]
    targets = _targets(p)
    out = np.empty(() if p["reduction"] != "none" or x.ndim == 1 else (n,), dtype=object)
    if p["reduction"] == "none":
        losses = _Loop(F, x, w, targets, [arb(1)] * n).per_sample_losses()
        for index, loss in zip(np.ndindex(*out.shape), losses):
            out[index] = loss
        return out
    loop = _Loop(F, x, w, targets, _reduction_weights(F.opmath, p, n))
    # the loss adds each chunk's dot products into a tensor of float (float16) or of the dtype (bfloat16):
    # every addition charged a rounding of the coarser of the two, then the cast to the dtype
    accumulator = F.opmath if F.format.name == "float16" else F
    out[()] = F.store(sum_any(accumulator, loop.loss_terms()))
    return out


def _backward(F, arrays, out, grad, p):
    x, w = arrays
    n = _rows(x).shape[0]
    targets = _targets(p)
    if p["reduction"] == "none":  # the loop again, the upstream gradient folded into w_n
        upstream = [grad[()]] if x.ndim == 1 else list(grad)
        loop = _Loop(F, x, w, targets, [-g for g in upstream])
        return loop.grad_input().reshape(x.shape), loop.grad_linear_weight(p["batch_chunk_size"])
    loop = _Loop(F, x, w, targets, _reduction_weights(F.opmath, p, n))
    g = grad[()]
    d_x = np.vectorize(lambda v: mul(F, v, g), otypes=[object])(loop.grad_input())
    d_w = np.vectorize(lambda v: mul(F, v, g), otypes=[object])(loop.grad_linear_weight(p["batch_chunk_size"]))
    return d_x.reshape(x.shape), d_w


def _options(shapes):
    x, w = shapes
    n = 1 if len(x) == 1 else x[0]
    return tuple(CallParams(p.items + (("batch_chunk_size", size),)) for p in REFERENCE.space.options(shapes)
                 for size in CHUNK_SIZES if size <= n)


def _call(args, p):
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=p["batch_chunk_size"])
    return torch.nn.functional.linear_cross_entropy(args[0], args[1], p["target"].tensor(args[0].device),
                                                   reduction=p["reduction"], options=options)


TENSOR_OPS["linear_cross_entropy_chunked"] = TensorOp(
    "linear_cross_entropy_chunked", 2,
    (TSpelling(lambda t, p: (f"torch.nn.functional.linear_cross_entropy({t[0]}, {t[1]}, {p['target']!r}, "
                             f"reduction={p['reduction']!r}, options=torch.nn.LinearCrossEntropyOptions("
                             f"batch_chunk_size={p['batch_chunk_size']}))"), _call),),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)), REFERENCE.shape,
    ("nn.functional.linear_cross_entropy[chunked]", "nn.functional.linear_cross_entropy[chunked_none]"),
    operand_shapes=linear_loss_ops._operand_shapes, torch_func=False)
