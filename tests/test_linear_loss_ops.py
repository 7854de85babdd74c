"""linear_cross_entropy (oracles.table.linear_loss_ops): a gradient worked out by hand, and a backward off by a
relative 1e-12 in float64 is caught.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its
forward against torch's by tests/test_loss_ops.py (test_forward_is_inside_the_model).
"""

from __future__ import annotations

from oracles.table.shape_ops import Indices, _params
from oracles.tensor.program import Input, Tensor
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught


def test_linear_cross_entropy_by_hand():
    """One sample x = (2) against two classes of weight (1) each: logits (2, 2), target 1; the logits' gradient is
    softmax - one-hot = (1/2, -1/2), so d/dx = Σ_c (1/2, -1/2)_c · 1 = 0 and d/dW_c = (1/2, -1/2)_c · 2."""
    node = Tensor("linear_cross_entropy", (Input(0), Input(1)), _params(target=Indices(1), reduction="mean"), 0)
    _assert_by_hand(node, ((1,), (2, 1)), ((2.0,), (1.0, 1.0)), {0: (0.0,), 1: (1.0, -1.0)})


def test_a_linear_cross_entropy_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the products and the softmax leave no room for it."""
    assert_planted_error_caught("linear_cross_entropy", device, 1e-12)
