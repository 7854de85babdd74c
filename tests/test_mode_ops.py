"""mode (oracles.table.mode_ops): the smallest of the most frequent values, the minimum where values are distinct.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient); its
conventions at repeated values by tests/test_conventions.py (finding mode-tie). Here: the forward lies in the
model, a backward off by a relative 1e-12 is caught, and the gradient goes to the minimum by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.tensor_ops import TENSOR_OPS, ReductionParams
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught, assert_spellings_inside_the_model


def test_a_mode_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("mode", device, 1e-12)


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_forward_is_inside_the_model(shape, dtype):
    """Distinct values (the model's domain): every spelling's mode along every dim is the model's value."""
    entry, fmt = TENSOR_OPS["mode"], format_named(dtype)
    size = int(np.prod(shape))
    values = [fmt.round(float(v)) for v in np.random.default_rng(size).permutation(size) * 0.75 - 2.0]
    x = torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype)
    balls = np.array([arb(v) for v in values], dtype=object).reshape(shape)
    checked = 0
    for dim in range(len(shape)):
        for keepdim in (False, True):
            p = ReductionParams(dim, keepdim)
            model = np.asarray(entry.forward(RoundingModel(fmt), [balls], p), dtype=object)
            checked += assert_spellings_inside_the_model(entry, ((shape),), p, [x], model, dtype)
    assert checked


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_mode_of_distinct_values_is_their_minimum(dtype):
    """Rows (2, -1, 0.5) and (3, 4, 1.5) along dim 1 with gradient= (2, -3): every value occurs once, so the mode
    is each row's minimum, -1 and 1.5, and the gradient goes to them."""
    for spelling in range(2):
        node = Tensor("mode", (Input(0),), ReductionParams(1), spelling)
        case = TensorCase(node, ((2, 3),), ((2.0, -1.0, 0.5, 3.0, 4.0, 1.5),), dtype, (2.0, -3.0))
        expected, grads = expected_tensor_gradients(case), torch_gradients(case)
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[0].elements]
        assert exact == [0.0, 2.0, 0.0, 0.0, 0.0, -3.0], case.source
        values = grads[0].to(torch.float64).reshape(-1).tolist()
        assert all(judge_element(0, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[0].elements)), (case.source, values)
