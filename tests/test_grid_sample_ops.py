"""grid_sample (oracles.table.grid_sample_ops): gradients worked out by hand for each mode and padding, the drawn
grids keep off the kinks, and a backward off by a relative 1e-12 in float64 is caught.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its
forward against torch's by tests/test_loss_ops.py (test_forward_is_inside_the_model).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from oracles.table import grid_sample_ops
from oracles.table.shape_ops import _params
from oracles.tensor.program import Input, Tensor
from strategies.matrices import GRID_VALUES
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught

IMAGE = (0.0, 4.0)  # one row of two pixels
SHAPES = ((1, 1, 1, 2), (1, 1, 1, 2))


def _node(mode: str, padding_mode: str, align_corners: bool) -> Tensor:
    return Tensor("grid_sample_2d", (Input(0), Input(1)),
                  _params(mode=mode, padding_mode=padding_mode, align_corners=align_corners), 0)


@pytest.mark.parametrize(("params", "gx", "d_image", "d_gx"), [
    # align_corners, W = 2: x = (g + 1) / 2 = 0.625, weights 0.375 and 0.625, output 2.5; d/dg = (4 - 0) / 2
    (("bilinear", "zeros", True), 0.25, (0.375, 0.625), 2.0),
    # x = 1.125 clipped to 1: the output is pixel 1's, flat in g
    (("bilinear", "border", True), 1.25, (0.0, 1.0), 0.0),
    # x = 1.125 reflected about 1 to 0.875: weights 0.125, 0.875; d/dg = -(4 - 0) / 2
    (("bilinear", "reflection", True), 1.25, (0.125, 0.875), -2.0),
    # without align_corners x = ((g + 1) 2 - 1) / 2 = 0.75: weights 0.25, 0.75; d/dg = (4 - 0) 2 / 2 (the row
    # coordinate 0.0625 is clipped to the one row)
    (("bilinear", "border", False), 0.25, (0.25, 0.75), 4.0),
    # x = 0.625 rounds to pixel 1: a copy, flat in g
    (("nearest", "zeros", True), 0.25, (0.0, 1.0), 0.0),
], ids=["zeros", "border", "reflection", "border-unaligned", "nearest"])
def test_grid_sample_by_hand(params, gx, d_image, d_gx):
    """One pixel row [0, 4] sampled at (gx, 0.125); the row coordinate of a one-pixel-high input is 0 with
    align_corners, or clipped to it: d/dgy is 0."""
    _assert_by_hand(_node(*params), SHAPES, (IMAGE, (gx, 0.125)), {0: d_image, 1: (d_gx, 0.0)})


def test_drawn_grids_keep_off_the_kinks():
    """Every drawn grid value puts the pixel coordinate of sides 1 to 3, either alignment, at least 1/24 of a grid
    unit from the multiples of 1/6, where the kinks (integers), the nearest mode's jumps (halves) and the padding
    edges lie."""
    for g in GRID_VALUES:
        distance = min(abs(Fraction(g) - Fraction(k, 6)) for k in range(-12, 13))
        assert distance >= Fraction(1, 24), g
        for n in (1, 2, 3):
            for x in ((Fraction(g) + 1) * Fraction(n - 1, 2), ((Fraction(g) + 1) * n - 1) / 2):
                assert (2 * x).denominator > 1 or n == 1, (g, n, x)


@pytest.mark.parametrize("op", grid_sample_ops.NAMES)
def test_a_grid_sample_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64): the corner weights and sums leave no room for it."""
    assert_planted_error_caught(op, device, 1e-12)
