"""Dtype casts, fill and zero_ (oracles.table.cast_ops): what the property tests cannot show by drawing.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), the
casts' forward by tests/test_loss_ops.py (test_forward_is_inside_the_model) and fill's and zero_'s index maps by
test_shape_op_is_torchs_op. Here: a backward off by a relative 1e-12 is caught; a gradient of 0 off by an
absolute 1e-12 of the upstream is caught; torch's double rounding of a double cast to half, in both directions.
"""

from __future__ import annotations

import pytest
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from oracles.core.expected import Status
from oracles.core.outcomes import assert_gradients_match
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.table.cast_ops import DType, cast
from oracles.table.shape_ops import _params
from oracles.tensor.check import check_tensor_case, torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.tensor_programs import tensor_cases
from tests.test_tensor_ops import FAULT_RUN, assert_planted_error_caught

ABOVE_A_HALF_TIE = 1 + 2**-11 + 2**-30  # nearest float16: 1 + 2^-10; as a float first: 1 + 2^-11, a tie, then 1


def test_a_cast_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("cast", device, 1e-12)


class _LeakingZero(torch.autograd.Function):
    """torch's forward; a backward that passes 1e-12 of the upstream gradient where torch's passes 0."""

    @staticmethod
    def forward(ctx, call, params, x):
        return call((x,), params)

    @staticmethod
    def backward(ctx, grad):
        return None, None, (grad * 1e-12).sum_to_size(grad.shape)


@pytest.mark.parametrize("op", ["fill", "zero_"])
def test_a_zero_gradient_off_by_1e_12_is_caught(op, device):
    from oracles.table.tensor_ops import TENSOR_OPS

    spelling = TENSOR_OPS[op].spellings[0]
    leaking = {op: lambda args, params: _LeakingZero.apply(spelling.call, params, *args)}

    @FAULT_RUN
    @given(data=st.data())
    def run(data):
        case = data.draw(tensor_cases("float64", root=op, stages=1), label="case")
        assert_gradients_match(check_tensor_case(case, device, leaking))

    with pytest.raises(AssertionError):
        run()


def test_a_double_becomes_half_through_float():
    """The cast model's double rounding is torch's: 1 + 2^-11 + 2^-30 in float64 becomes 1.0 in float16, which a
    single rounding (to 1 + 2^-10) would not give."""
    got = torch.tensor(ABOVE_A_HALF_TIE, dtype=torch.float64).half().item()
    assert got == 1.0
    model = cast(arb(ABOVE_A_HALF_TIE), format_named("float64"), format_named("float16"))
    assert model.contains(arb(got))


@pytest.mark.parametrize("method", [0, 4])  # x0.to(torch.float16).to(x0.dtype), x0.half().to(x0.dtype)
def test_a_half_cast_rounds_the_gradient_back_twice(method):
    """float64 through float16 with gradient= 1 + 2^-11 + 2^-30: the cast back of the gradient rounds it twice
    as well, to 1.0; the exact derivative of the cast (the identity) is the upstream itself, 1.0 within the model."""
    node = Tensor("cast", (Input(0),), _params(dtype=DType("float16")), method)
    case = TensorCase(node, ((1,),), ((0.75,),), "float64", (ABOVE_A_HALF_TIE,))
    [expected] = expected_tensor_gradients(case)
    [grad] = torch_gradients(case)
    [element] = expected.elements
    assert element.status is Status.OK and element.exact.mid() == arb(ABOVE_A_HALF_TIE).mid()
    assert grad.item() == 1.0
    assert judge_element(0, (0,), grad.item(), element, case.format).verdict is Verdict.VERIFIED


@pytest.mark.parametrize("source", ["float32", "bfloat16", "float16"])
def test_a_cast_to_a_wider_dtype_is_exact_both_ways(source):
    """To float64 and back is the identity in every dtype: the model's enclosure is the exact gradient itself."""
    node = Tensor("cast", (Input(0),), _params(dtype=DType("float64")), 0)
    case = TensorCase(node, ((2,),), ((0.75, -3.0),), source, (0.5, 1.5))
    [expected] = expected_tensor_gradients(case)
    assert [e.enclosure.rad() == 0 and e.exact.mid() for e in expected.elements] == [arb(0.5).mid(), arb(1.5).mid()]
    assert torch_gradients(case)[0].tolist() == [0.5, 1.5]


# just above the tie between 1 and the next value of the dtype (half an ulp above 1, plus 2^-30), and that next value
ABOVE_TIES = {"float16": (1 + 2**-11 + 2**-30, 1 + 2**-10), "bfloat16": (1 + 2**-8 + 2**-30, 1 + 2**-7)}


@pytest.mark.parametrize("precision", list(ABOVE_TIES), ids=[f"cast/above-a-tie-{d}" for d in ABOVE_TIES])
def test_a_float64_gradient_cast_to_a_half_dtype_is_rounded_to_nearest(precision, dtypes):
    """x.double() of a leaf x of the dtype, with gradient= g just above a tie of the dtype: the gradient cast back
    is g rounded to nearest, the upper neighbour (IEEE 754's conversion; numpy's float16 gives it). torch rounds
    g to float first, a tie, and then to even, 1.0 (finding double-to-half-cast-rounded-twice)."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    g, nearest = ABOVE_TIES[precision]
    x = torch.tensor(0.5, dtype=format_named(precision).torch_dtype, requires_grad=True)
    x.double().backward(torch.tensor(g, dtype=torch.float64))
    assert x.grad.item() == nearest, f"{precision}: x.grad = {x.grad.item()!r}, nearest to {g!r}: {nearest!r}"
