"""linear_cross_entropy's chunked path (oracles.table.chunked_linear_loss_ops): the spelling takes the chunked path,
a gradient worked out by hand, the per-chunk rounding of grad_linear_weight in bfloat16, and a backward off by a
relative 1e-12 in float64 is caught.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its
forward against torch's by tests/test_loss_ops.py (test_forward_is_inside_the_model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.chunked_linear_loss_ops import _Loop
from oracles.table.shape_ops import Indices, _params
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.program import Input, Tensor
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught

CHUNKED = TENSOR_OPS["linear_cross_entropy_chunked"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_the_spelling_takes_the_chunked_path(reduction):
    """The options send the call to the chunked custom ops (a fallback to the reference path would be nll_loss's
    backward and log_softmax's, which the reference entry already checks)."""
    x = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    p = _params(target=Indices((0, 1, 1)), reduction=reduction, batch_chunk_size=2)
    y = CHUNKED.spellings[0].call([x, w], p)
    assert "linear_cross_entropy_batch_chunked" in type(y.grad_fn).__name__, type(y.grad_fn).__name__


@pytest.mark.parametrize("chunk", [1, 2])
def test_chunked_linear_cross_entropy_by_hand(chunk):
    """Two samples x = (2), (-1) against two classes of weight (1) each, targets 1 and 0: equal logits per sample,
    so the logits' gradients are (softmax - one-hot) / 2 = (1/4, -1/4) and (-1/4, 1/4); d/dx_n = Σ_c (those)_c · 1 = 0
    and d/dW_c = Σ_n (those)_nc · x_n = (1/4 · 2 - 1/4 · -1, -1/4 · 2 + 1/4 · -1) = (3/4, -3/4)."""
    p = _params(target=Indices((1, 0)), reduction="mean", batch_chunk_size=chunk)
    node = Tensor("linear_cross_entropy_chunked", (Input(0), Input(1)), p, 0)
    _assert_by_hand(node, ((2, 1), (2, 1)), ((2.0, -1.0), (1.0, 1.0)), {0: (0.0, 0.0), 1: (0.75, -0.75)})


def test_bfloat16_weight_gradient_is_rounded_per_chunk():
    """The model charges grad_linear_weight a bfloat16 rounding per chunk (the float sum of each chunk is added to a
    bfloat16 tensor): torch's values for chunks of 1 and of 3 lie in the model of their chunking, and the model of
    one chunk (a single rounding) does not hold the result of chunks of 1: the roundings per chunk are real."""
    fmt = format_named("bfloat16")
    values_x = [1.5, -0.8125, 2.25, 0.375, -1.25, 0.6875]
    values_w = [0.5, -1.125, 0.25, 0.875, -0.375, 1.75]
    targets = [0, 2, 1]
    arrays = [np.array([arb(v) for v in values], dtype=object).reshape(3, 2) for values in (values_x, values_w)]
    x = torch.tensor(values_x, dtype=torch.bfloat16).reshape(3, 2).requires_grad_()
    w = torch.tensor(values_w, dtype=torch.bfloat16).reshape(3, 2).requires_grad_()
    got, model = {}, {}
    for chunk in (1, 3):
        w.grad = None
        p = _params(target=Indices(tuple(targets)), reduction="sum", batch_chunk_size=chunk)
        CHUNKED.spellings[0].call([x, w], p).backward()
        got[chunk] = w.grad.to(torch.float64).reshape(-1).tolist()
        loop = _Loop(RoundingModel(fmt), *arrays, targets, [arb(-1)] * 3)
        model[chunk] = loop.grad_linear_weight(chunk).reshape(-1)
        assert all(m.contains(arb(v)) for m, v in zip(model[chunk], got[chunk])), (chunk, got[chunk])
    assert not all(m.contains(arb(v)) for m, v in zip(model[3], got[1]))


def test_a_chunked_linear_cross_entropy_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the products and the softmax leave no room for it."""
    assert_planted_error_caught("linear_cross_entropy_chunked", device, 1e-12)
