"""max_pool2d_with_indices_backward (oracles.table.pooling_backward_ops): what the property tests cannot show by
drawing. Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient),
its index map against torch's op by test_shape_op_is_torchs_op. Here: a backward off by a relative 1e-12 is
caught, and the gradients worked by hand.
"""

from __future__ import annotations

import torch

from oracles.table.shape_ops import Indices, _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


def test_a_pooling_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("max_pool2d_with_indices_backward", device, 1e-12)


def test_max_pool2d_with_indices_backward_by_hand():
    """The 2 x 2 windows of a 3 x 3 input at stride 1 with their maxima at (4, 5, 7, 8) (ascending values): the
    gradient of grad_output is the upstream gathered there, (4, 5, 7, 8) for the upstream 0..8; self's is 0."""
    params = _params(indices=Indices(((((4, 5), (7, 8)),),)))
    node = Tensor("max_pool2d_with_indices_backward", (Input(0), Input(1)), params, 0)
    case = TensorCase(node, ((1, 1, 2, 2), (1, 1, 3, 3)), ((1.0, 2.0, 3.0, 4.0), tuple(float(v) for v in range(9))),
                      "float64", tuple(float(v) for v in range(9)))
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    assert [float(e.exact.mid()) for e in expected[0].elements] == [4.0, 5.0, 7.0, 8.0]
    assert [float(e.exact.mid()) for e in expected[1].elements] == [0.0] * 9
    assert grads[0].reshape(-1).tolist() == [4.0, 5.0, 7.0, 8.0]
    assert torch.equal(grads[1], torch.zeros(1, 1, 3, 3, dtype=torch.float64))
