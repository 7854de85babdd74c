"""as_strided of a partial view (oracles.table.partial_view_ops): what the property tests cannot show by drawing.
Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its index
map against torch's op by test_shape_op_is_torchs_op. Here: a backward off by a relative 1e-12 is caught, and the
gradients at storage offsets inside and outside the view worked by hand.
"""

from __future__ import annotations

import pytest

from oracles.table.shape_ops import _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


def test_a_partial_view_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("as_strided_partial_view", device, 1e-12)


@pytest.mark.parametrize(("offset", "by_hand"), [(None, (1.0, 2.0, 0.0)), (0, (0.0, 0.0, 0.0)), (3, (0.0, 1.0, 2.0))])
def test_partial_view_gradient_by_hand(offset, by_hand):
    """The storage 0, 0, x0, x1, x2, 0, 0 read at (offset, offset + 1) with gradient= (1, 2): the view's own offset 2
    reads x0, x1; offset 0 the padding; offset 3 reads x1, x2."""
    node = Tensor("as_strided_partial_view", (Input(0),), _params(size=(2,), stride=(1,), storage_offset=offset), 0)
    case = TensorCase(node, ((3,),), ((1.5, -2.0, 0.25),), "float64", (1.0, 2.0))
    [expected], [grad] = expected_tensor_gradients(case), torch_gradients(case)
    assert [float(e.exact.mid()) for e in expected.elements] == list(by_hand)
    assert grad.tolist() == list(by_hand)
