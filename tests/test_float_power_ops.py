"""float_power (oracles.table.float_power_ops): pow in float64 of arguments of any dtype, gradients cast back.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and its
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model). Here: a backward off by a relative 1e-12 is
caught, and the gradients worked by hand come back in the arguments' dtype.
"""

from __future__ import annotations

import math

import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.table.shape_ops import _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


def test_a_float_power_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("float_power", device, 1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("spelling", [0, 1])
def test_float_power_by_hand(dtype, spelling):
    """exp(x)^y: d/dx = y exp(x y), d/dy = x exp(x y); at x = 0, y = 3 (base 1): 3 and 0; at x = 0.5, y = -2:
    -2 e^-1 and 0.5 e^-1."""
    node = Tensor("float_power", (Input(0), Input(1)), _params(), spelling)
    case = TensorCase(node, ((2,), (2,)), ((0.0, 0.5), (3.0, -2.0)), dtype)
    by_hand = {0: (3.0, -2 * math.exp(-1)), 1: (0.0, 0.5 * math.exp(-1))}
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    for i, hand in by_hand.items():
        assert grads[i].dtype == case.format.torch_dtype
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
        assert exact == pytest.approx(list(hand), rel=2**-52, abs=0)
        values = grads[i].to(torch.float64).tolist()
        assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[i].elements)), values

