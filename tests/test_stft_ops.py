"""torch.stft (oracles.table.stft_ops): a gradient worked out by hand, torch's forward inside the model in both
dtypes, and a backward off by a relative 1e-12 in float64 is caught.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), and its
map against torch's forward in float64 by test_shape_op_is_torchs_op.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.shape_ops import _params
from oracles.table.stft_ops import BASE
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.program import Input, Tensor
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught, assert_spellings_inside_the_model

STFT = TENSOR_OPS["stft"]


def test_stft_by_hand():
    """x = (1, 2, 3), n_fft 2, hop 1, no centring, window (3/4, 1): the frames (3/4 x0, x1) and (3/4 x1, x2), their
    two-point DFTs a + b and a - b (imaginary parts 0); the sum of every output is 3/2 x0 + 3/2 x1, the x2 of the
    first frequency cancelling the x2 of the second: d/dx = (3/2, 3/2, 0)."""
    p = _params(n_fft=2, **BASE | {"hop_length": 1, "center": False, "window": (0.75, 1.0)})
    node = Tensor("stft", (Input(0),), p, 1)
    _assert_by_hand(node, ((3,),), ((1.0, 2.0, 3.0),), {0: (1.5, 1.5, 0.0)})


@pytest.mark.parametrize("shape", [(5,), (2, 4)])
def test_stft_forward_is_inside_the_model(shape, dtype):
    """torch's forward of each spelling, for every listed parameter set, lies in the model's enclosure (the float64
    map against torch is test_shape_op_is_torchs_op; here also float32, where pocketfft computes in float)."""
    if dtype not in STFT.cpu_dtypes:
        pytest.skip(f"torch {torch.__version__} has no {dtype} CPU kernel for stft")
    fmt = format_named(dtype)
    values = [fmt.round(float(v)) for v in np.random.default_rng(7).uniform(-3, 3, int(np.prod(shape)))]
    x = torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype)
    arrays = [np.array([arb(v) for v in values], dtype=object).reshape(shape)]
    checked = 0
    for p in STFT.space.options((shape,)):
        model = np.asarray(STFT.forward(RoundingModel(fmt), arrays, p), dtype=object)
        checked += assert_spellings_inside_the_model(STFT, ((shape),), p, [x], model, dtype)
    assert checked


def test_a_stft_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the windowed DFT's products leave no room for it."""
    assert_planted_error_caught("stft", device, 1e-12)
