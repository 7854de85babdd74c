"""_safe_softmax and _softmax_backward_data (oracles.table.softmax_internals): what the property tests cannot show
by drawing.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and their
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model). Here: a backward off by a relative 1e-12 is
caught, and _softmax_backward_data's gradients worked by hand.
"""

from __future__ import annotations

import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.table.tensor_ops import ScanParams
from oracles.tensor.check import check_tensor_case, torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


@pytest.mark.parametrize("op", ["safe_softmax", "softmax_backward_data"])
def test_a_softmax_internal_backward_off_by_1e_12_is_caught(op, device):
    assert_planted_error_caught(op, device, 1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_softmax_backward_data_by_hand(dtype):
    """g = (1, 0) against y = softmax(0, 0) = (1/2, 1/2), with gradient= G = (1, 2): g's gradient is the same map of
    G, y * (G - sum(G y)) = (-1/4, 1/4); the output's, gO * G - sum(y gO) G - gO sum(y G) = (-1, -1), is constant
    along the slice, so softmax's backward sends x1 (0, 0)."""
    node = Tensor("softmax_backward_data", (Input(0), Input(1)), ScanParams(0), 0)
    case = TensorCase(node, ((2,), (2,)), ((1.0, 0.0), (0.0, 0.0)), dtype, (1.0, 2.0))
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    for i, hand in {0: (-0.25, 0.25), 1: (0.0, 0.0)}.items():
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
        assert exact == pytest.approx(list(hand), rel=2**-52, abs=0)
        values = grads[i].to(torch.float64).tolist()
        assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[i].elements)), (i, values)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_backward_data_along_each_dim_of_a_matrix(dim):
    """The entry is drawn on vectors (its SymPy Jacobian grows fast with the slice count): on a 2 x 2 matrix,
    along each dim, with gradient=, every element is verified."""
    node = Tensor("softmax_backward_data", (Input(0), Input(1)), ScanParams(dim), 0)
    case = TensorCase(node, ((2, 2), (2, 2)), ((1.0, -0.5, 2.0, 0.25), (0.5, -1.0, 1.5, 0.0)), "float32",
                      (1.0, -2.0, 0.5, 3.0))
    outcome = check_tensor_case(case)
    assert outcome.verdicts and all(v.verdict is Verdict.VERIFIED for v in outcome.verdicts), outcome.verdicts
