"""Antialiased bilinear resizing (oracles.table.antialias_ops): a gradient worked out by hand, a backward off by a
relative 1e-12 in float64 is caught, and torch's forward to one column (a registered finding) is pinned.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its weights
against torch's forward by test_shape_op_is_torchs_op there.
"""

from __future__ import annotations

import pytest
import torch

from oracles.table.shape_ops import _params
from oracles.tensor.program import Input, Tensor
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught

AA = "upsample_bilinear2d_aa"
ONE_COLUMN_DTYPES = ("float64", "float32")


def test_antialiased_downsampling_by_hand():
    """A row (1, 2, 3, 5) to two columns: scale 2, support 2, centres 1 and 3; input j weighs
    max(0, 1 - |j + 1/2 - centre| / 2): (3/4, 3/4, 1/4, 0) normalized to (3/7, 3/7, 1/7, 0) for the first column,
    (0, 1/4, 3/4, 3/4) to (0, 1/7, 3/7, 3/7) for the second; the gradient of the sum is their column sums."""
    node = Tensor(AA, (Input(0),), _params(size=(1, 2), align_corners=False), 0)
    _assert_by_hand(node, ((1, 1, 1, 4),), ((1.0, 2.0, 3.0, 5.0),), {0: (3 / 7, 4 / 7, 4 / 7, 3 / 7)})


def test_an_antialiased_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the weighted sums leave no room for it."""
    assert_planted_error_caught(AA, device, 1e-12)


@pytest.mark.parametrize("precision", ONE_COLUMN_DTYPES, ids=[f"aa/2x1:3x1-{d}" for d in ONE_COLUMN_DTYPES])
def test_antialiased_resize_to_one_column(precision, dtypes):
    """A column (1, 3) resized to three rows (one column, unchanged): centres 1/3, 1, 5/3 of scale 2/3, weights
    (1, 0), (1/2, 1/2), (0, 1): the rows 1, 2, 3, as plain bilinear resizing of a column would also give."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    column = torch.tensor([[[[1.0], [3.0]]]], dtype=getattr(torch, precision))
    out = torch._C._nn._upsample_bilinear2d_aa(column, [3, 1], False)
    assert out.flatten().tolist() == [1.0, 2.0, 3.0], out.flatten().tolist()
