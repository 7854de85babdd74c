"""The real-to-complex boundary (oracles.table.complex_ops): what the property tests cannot show by drawing.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), the
complex casts' forward by tests/test_loss_ops.py (test_forward_is_inside_the_model) and the copies' index maps by
test_shape_op_is_torchs_op. Here: a backward off by a relative 1e-12 is caught; the imaginary part's gradient is
dropped; torch's double rounding of a double cast to complex32, which the model allows and a finding pins.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb

from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.complex_ops import TARGETS, _cast_forward
from oracles.table.shape_ops import _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught

ABOVE_A_HALF_TIE = 1 + 2**-11 + 2**-30  # nearest float16: 1 + 2^-10; as a float first: 1 + 2^-11, a tie, then 1
COMPLEX32 = next(t for t in TARGETS if t.name == "complex32")


@pytest.mark.parametrize("op", ["complex_cast", "complex", "view_as_complex", "conj_physical"])
def test_a_complex_boundary_backward_off_by_1e_12_is_caught(op, device):
    assert_planted_error_caught(op, device, 1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_the_imaginary_part_passes_no_gradient(dtype):
    """torch.view_as_real(x0.cdouble()).to(x0.dtype) with gradient= (3, 5) per element: only the real part's 3
    reaches x0 (_to_copy's backward takes real(grad)), which the exact Jacobian (d imag / dx = 0) says too."""
    node = Tensor("complex_cast", (Input(0),), _params(dtype=TARGETS[0]), 2)
    case = TensorCase(node, ((2,),), ((0.75, -2.0),), dtype, (3.0, 5.0, -0.5, 7.0))
    [expected] = expected_tensor_gradients(case)
    [grad] = torch_gradients(case)
    assert grad.tolist() == [3.0, -0.5]
    for k, (g, element) in enumerate(zip(grad.tolist(), expected.elements)):
        assert judge_element(0, (k,), g, element, case.format).verdict is Verdict.VERIFIED


def test_a_double_becomes_complex_half_through_float():
    """The model of x0.chalf() for a float64 x0 allows torch's double rounding: 1 + 2^-11 + 2^-30 becomes 1.0, which
    a single rounding (to 1 + 2^-10) would not give; the imaginary part is an exact 0."""
    x = torch.tensor([ABOVE_A_HALF_TIE], dtype=torch.float64)
    got = torch.view_as_real(x.chalf()).to(x.dtype)
    assert got.tolist() == [[1.0, 0.0]]
    [[real, imag]] = _cast_forward(RoundingModel(format_named("float64")), [np.array([arb(ABOVE_A_HALF_TIE)])],
                                   _params(dtype=COMPLEX32))
    assert real.contains(arb(1.0)) and imag.is_exact() and imag.is_zero()


SPELLED = {"chalf": lambda x: x.chalf(), "to-complex32": lambda x: x.to(torch.complex32)}


@pytest.mark.parametrize("spelling", list(SPELLED), ids=[f"{s}/above-a-tie-float64" for s in SPELLED])
def test_a_float64_cast_to_complex_half_is_rounded_to_nearest(spelling, dtypes):
    """x.chalf() of a float64 x just above a tie of float16: each part is x's part rounded to nearest (IEEE 754's
    conversion; numpy's float16 gives 1 + 2^-10 for the real part). torch converts the double to float first, a
    tie, then to even, 1.0 (finding double-to-complex-half-cast-rounded-twice)."""
    if "float64" not in dtypes:
        pytest.skip("float64 is not among --dtypes")
    x = torch.tensor([ABOVE_A_HALF_TIE], dtype=torch.float64)
    real = torch.view_as_real(SPELLED[spelling](x))[0, 0].item()
    assert real == 1 + 2**-10, f"{spelling}: real part {real!r}, nearest to {ABOVE_A_HALF_TIE!r}: {1 + 2**-10!r}"
