"""The infinity norms (oracles.table.inf_norm_ops): max |x| and min |x| through torch.norm, Tensor.norm,
torch.linalg.vector_norm and torch.linalg.norm.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and their
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model); linalg.norm at the zero vector and matrix, for
every order its OpInfo variant subgradients_at_zero samples, by tests/test_conventions.py. Here: a backward off by a
relative 1e-12 is caught, and gradients worked by hand at ties and zeros.
"""

from __future__ import annotations

import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.table.tensor_ops import ReductionParams
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


@pytest.mark.parametrize("op", ["norm_inf", "norm_neg_inf"])
def test_an_infinity_norm_backward_off_by_1e_12_is_caught(op, device):
    assert_planted_error_caught(op, device, 1e-12)


# rows (-2, 2, 1) and (0, 0.5, -0.5), reduced along dim 1 with gradient= (1, 3):
# max |x|: a tie of -2 and 2 (1/2 each, times the sign), then a tie of 0.5 and -0.5 (3/2 each, times the sign);
# min |x|: 1 alone, then the element 0 (sgn(0) = 0).
BY_HAND = {
    "norm_inf": (-0.5, 0.5, 0.0, 0.0, 1.5, -1.5),
    "norm_neg_inf": (0.0, 0.0, 1.0, 0.0, 0.0, 0.0),
}


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("op", list(BY_HAND))
def test_infinity_norm_by_hand(op, dtype):
    for spelling in range(1, 5):  # every spelling with a dim (the first, torch.norm(x, p=inf), takes none)
        node = Tensor(op, (Input(0),), ReductionParams(dim=1), spelling)
        case = TensorCase(node, ((2, 3),), ((-2.0, 2.0, 1.0, 0.0, 0.5, -0.5),), dtype, (1.0, 3.0))
        expected, grads = expected_tensor_gradients(case), torch_gradients(case)
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[0].elements]
        assert exact == pytest.approx(list(BY_HAND[op]), rel=2**-52, abs=0), case.source
        values = grads[0].to(torch.float64).reshape(-1).tolist()
        assert all(judge_element(0, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[0].elements)), (case.source, values)
