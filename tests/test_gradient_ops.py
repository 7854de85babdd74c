"""torch.gradient (oracles.table.gradient_ops): finite differences, a linear map whose weights come from the spacing.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and its
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model). Here: a backward off by a relative 1e-12 is
caught, and the transposed map worked by hand for a scalar spacing, edge_order 2 and coordinates.
"""

from __future__ import annotations

import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.table.gradient_ops import Coordinates
from oracles.table.shape_ops import _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


def test_a_gradient_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("gradient", device, 1e-12)


# x = (1, 4, 9) with gradient= (1, 2, 3): x's gradient is (1, 2, 3) times the map's matrix, whose rows are
# h = 1, edge_order 1: (-1, 1, 0), (-1/2, 0, 1/2), (0, -1, 1);
# h = 2, edge_order 2: (-3/2, 2, -1/2) / 2, (-1/2, 0, 1/2) / 2, (1/2, -2, 3/2) / 2;
# coordinates (1, 3, 2), steps 2 and -1, edge_order 1: (-1/2, 1/2, 0), (1/2, 3/2, -2), (0, 1, -1).
BY_HAND = [
    (_params(dim=0, spacing=None, edge_order=1), (-2.0, -2.0, 4.0)),
    (_params(dim=0, spacing=2.0, edge_order=2), (-0.5, -2.0, 2.5)),
    (_params(dim=0, spacing=Coordinates((3,)), edge_order=1), (0.5, 6.5, -7.0)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize(("params", "hand"), BY_HAND, ids=["unit", "edge2", "coordinates"])
def test_gradient_by_hand(params, hand, dtype):
    node = Tensor("gradient", (Input(0),), params, 0)
    case = TensorCase(node, ((3,),), ((1.0, 4.0, 9.0),), dtype, (1.0, 2.0, 3.0))
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[0].elements]
    assert exact == list(hand), case.source
    values = grads[0].to(torch.float64).tolist()
    assert all(judge_element(0, (), v, e, case.format).verdict is Verdict.VERIFIED
               for v, e in zip(values, expected[0].elements)), (case.source, values)
