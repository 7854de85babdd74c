"""masked.std and masked.log_softmax (oracles.table.masked_ops): what the property tests cannot show by drawing.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), their
forward against torch's by test_shape_op_is_torchs_op. Here: a backward off by a relative 1e-12 is caught, the
gradients worked by hand, and masked.std's NaN where its float16 result underflows (finding
masked-std-zero-result-nan) is counted as the known deviation the model foresees, never as verified.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import INTERMEDIATE_OVERFLOW, Verdict, judge_element
from oracles.table.shape_ops import Mask, _params
from oracles.tensor.check import check_tensor_case, torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught

X = Input(0)


@pytest.mark.parametrize("op", ["masked_std", "masked_log_softmax"])
def test_a_masked_backward_off_by_1e_12_is_caught(op, device):
    assert_planted_error_caught(op, device, 1e-12)


def _assert_by_hand(node, shape, values, upstream, by_hand):
    for dtype in ("float64", "float32"):
        case = TensorCase(node, (shape,), (values,), dtype, upstream)
        [expected], [grad] = expected_tensor_gradients(case), torch_gradients(case)
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected.elements]
        assert exact == pytest.approx(list(by_hand), rel=2**-52, abs=0), case.source
        values_ = grad.to(torch.float64).reshape(-1).tolist()
        assert all(judge_element(0, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values_, expected.elements)), (case.source, dtype, values_)


def test_masked_std_by_hand():
    """The kept (1, 2, 6) of (1, 2, 6, 9), correction 1: mean 3, deviations (-2, -1, 3), std sqrt(14 / 2);
    gradient (x - mean) / ((N - 1) std) at the kept elements, 0 at the other."""
    node = Tensor("masked_std", (X,), _params(dim=0, keepdim=False, mask=Mask.of(np.array([1, 1, 1, 0], bool)),
                                              correction=1), 0)
    std = math.sqrt(7)
    _assert_by_hand(node, (4,), (1.0, 2.0, 6.0, 9.0), None, (-2 / (2 * std), -1 / (2 * std), 3 / (2 * std), 0.0))


def test_masked_log_softmax_by_hand():
    """The kept (0, 0) of (0, 0, 5): log(1/2) each, the masked-out output filled with 0; with gradient= (1, 0,
    7): grad - softmax * sum(grad) over the kept, (1 - 1/2, -1/2), and 0 to the masked-out element."""
    node = Tensor("masked_log_softmax", (X,), _params(dim=0, mask=Mask.of(np.array([1, 1, 0], bool))), 0)
    _assert_by_hand(node, (3,), (0.0, 0.0, 5.0), (1.0, 0.0, 7.0), (0.5, -0.5, 0.0))


def test_masked_std_whose_float16_squares_underflow_is_the_known_deviation():
    """masked.std of (0, 1e-4, 2e-4) in float16 squares deviations of about 1e-4, which underflow to 0: torch's
    result is 0 and its gradient NaN where the exact one is finite. The model foresees grad / (2 * result) may
    be inf: each element is counted as that registered finding, never verified."""
    node = Tensor("masked_std", (X,), _params(dim=0, keepdim=False, mask=Mask.of(np.ones(3, bool)),
                                              correction=0), 0)
    values = tuple(torch.tensor([0.0, 1e-4, 2e-4], dtype=torch.float16).tolist())  # exact in float16
    case = TensorCase(node, ((3,),), (values,), "float16")
    outcome = check_tensor_case(case)
    assert all(math.isnan(v.torch_value) for v in outcome.verdicts)
    assert {(v.verdict, v.reason) for v in outcome.verdicts} == {(Verdict.REGISTERED, INTERMEDIATE_OVERFLOW)}
