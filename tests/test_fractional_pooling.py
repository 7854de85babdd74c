"""fractional_max_pool2d and fractional_max_pool3d with given regions (oracles.table.fractional_pooling): a gradient
worked out by hand, and a backward off by a relative 1e-12 in float64 is caught.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), their
windows against torch's forward by test_shape_op_is_torchs_op there.
"""

from __future__ import annotations

import pytest

from oracles.table.loss_ops import Labels
from oracles.table.shape_ops import _params
from oracles.tensor.program import Input, Tensor
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught


def test_fractional_max_pool2d_by_hand():
    """A 3 x 3 input, kernel 1, output 2, samples 1/2: alpha = (3 - 1) / (2 - 1) = 2, windows start at
    int((0 + 1/2) 2) - int(1/2 · 2) = 0 and at 3 - 1 = 2 along each dim: the four corners, each its own maximum."""
    p = _params(kernel_size=1, output_size=2, _random_samples=Labels((((0.5, 0.5),),)))
    node = Tensor("fractional_max_pool2d", (Input(0),), p, 0)
    values = tuple(float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5))
    _assert_by_hand(node, ((1, 1, 3, 3),), (values,), {0: (1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0)})


@pytest.mark.parametrize("op", ["fractional_max_pool2d", "fractional_max_pool3d"])
def test_a_fractional_max_pool_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64): a max pool's gradient is a copy of the output's."""
    assert_planted_error_caught(op, device, 1e-12)
