"""ctc_loss (oracles.table.ctc_ops): a gradient worked out by hand; a backward off by a relative 1e-12 in float64 is
caught; torch's gradient with respect to log_probs themselves is not the loss's derivative, and its log-space kernels
lose the gradient at huge log-probabilities (registered findings).

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its
forward against torch's by tests/test_loss_ops.py (test_forward_is_inside_the_model).
"""

from __future__ import annotations

import math

import pytest
import torch

from oracles.numerics.dtypes import format_named
from oracles.table.shape_ops import Indices, _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught


def test_ctc_loss_by_hand():
    """Two steps of x = 0 (softmax 1/2 each), classes (blank, 1), target (1), 'sum': the alignments 1 1, blank 1 and
    1 blank, 1/4 each, p = 3/4; at each step the label carries 2/3 of them, the blank 1/3, so d/dx = softmax -
    posterior = (1/2 - 1/3, 1/2 - 2/3) = (1/6, -1/6) at both steps."""
    p = _params(targets=Indices(((1,),)), input_lengths=Indices((2,)), target_lengths=Indices((1,)), blank=0,
                reduction="sum")
    node = Tensor("ctc_loss", (Input(0),), p, 0)
    _assert_by_hand(node, ((2, 1, 2),), ((0.0, 0.0, 0.0, 0.0),), {0: (1 / 6, -1 / 6, 1 / 6, -1 / 6)})


def test_a_ctc_loss_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the recursions' roundings leave no room for it."""
    assert_planted_error_caught("ctc_loss", device, 1e-12)


CTC_DTYPES = ("float64", "float32")


@pytest.mark.parametrize("precision", CTC_DTYPES, ids=[f"ctc_loss/one-step-{d}" for d in CTC_DTYPES])
def test_ctc_loss_gradient_wrt_log_probs_is_the_derivative(precision, dtypes):
    """One time step, classes (blank, 1), target (1), log_probs (0, 0), 'sum': the only alignment emits the label,
    the loss is -log_probs[0, 0, 1] = 0 and its derivative (0, -1) (it does not depend on the blank's entry). torch
    gives exp(log_probs) - posterior = (1, 0) (finding ctc-loss-gradient-assumes-log-softmax)."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    lp = torch.zeros(1, 1, 2, dtype=format_named(precision).torch_dtype, requires_grad=True)
    loss = torch.nn.functional.ctc_loss(lp, torch.tensor([[1]]), torch.tensor([1]), torch.tensor([1]),
                                        reduction="sum")
    loss.backward()
    assert loss.item() == 0.0
    assert lp.grad.reshape(-1).tolist() == [0.0, -1.0], f"{precision}: torch's gradient {lp.grad.reshape(-1).tolist()}"


# the smallest inputs met with a non-finite gradient (3000 random cases per scale): one log-probability of about
# -2^9 (-2^6) at the first step, the target's of about -2^62 (-2^30) at the second
HUGE = {"float64": (2.0**9, 2.0**62), "float32": (2.0**6, 2.0**30)}


@pytest.mark.parametrize("precision", CTC_DTYPES, ids=[f"ctc_loss/huge-{d}" for d in CTC_DTYPES])
def test_ctc_loss_gradient_at_huge_log_probabilities_is_finite(precision, dtypes):
    """x0 = ((-s, -2s, 1), (1, 1, r)), target (1), 'sum': the gradient, softmax - posterior, lies in [-1, 1]. torch
    gives NaN and ±inf (finding ctc-loss-log-space-precision)."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    s, r = HUGE[precision]
    p = _params(targets=Indices(((1,),)), input_lengths=Indices((2,)), target_lengths=Indices((1,)), blank=0,
                reduction="sum")
    case = TensorCase(Tensor("ctc_loss", (Input(0),), p, 0), ((2, 1, 3),), ((-s, -2 * s, 1.0, 1.0, 1.0, r),), precision)
    exact = [float(e.exact.mid()) for e in expected_tensor_gradients(case)[0].elements]
    assert all(abs(v) <= 1 for v in exact), exact
    got = torch_gradients(case)[0].reshape(-1).tolist()
    assert all(math.isfinite(v) for v in got), f"{precision}: torch {got}, exact {exact}"
