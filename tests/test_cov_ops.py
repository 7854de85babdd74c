"""cov and corrcoef (oracles.table.cov_ops): composites whose backward is autograd's through their ops.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and their
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model). Here: a backward off by a relative 1e-12 is
caught, gradients worked by hand (frequency and observation weights, aweights' own gradient, a correlation), the
forward of cov_aweights on positive weights, and the registered finding corrcoef-variance-underflow at explicit
points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flint import arb

from oracles.core.expected import Status
from oracles.core.outcomes import assert_gradients_match
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.shape_ops import _params
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.check import check_tensor_case, torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.matrices import POSITIVE_WEIGHTS
from tests.test_tensor_ops import assert_planted_error_caught, assert_spellings_inside_the_model


@pytest.mark.parametrize("op", ["cov", "corrcoef", "cov_aweights"])
def test_a_cov_backward_off_by_1e_12_is_caught(op, device):
    assert_planted_error_caught(op, device, 1e-12)


def _assert_by_hand(case: TensorCase, hand: list[float]) -> None:
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[0].elements]
    assert exact == pytest.approx(hand, rel=2**-50, abs=2**-60)
    values = grads[0].to(torch.float64).reshape(-1).tolist()
    assert all(judge_element(0, (), v, e, case.format).verdict is Verdict.VERIFIED
               for v, e in zip(values, expected[0].elements)), values


# x = (1, 2, 4); the gradient of cov is 2 w (x - mean) / norm:
# no weights: mean 7/3, norm 2; fweights (2, 1, 3): mean 8/3, norm 6 - 1; aweights (1/2, 1, 1/4): mean 2, norm
# 1.75 - (1/4 + 1 + 1/16) / 1.75 = 1.
COV_BY_HAND = [
    (_params(correction=1, fweights=False, aweights=False), [-4 / 3, -1 / 3, 5 / 3]),
    (_params(correction=1, fweights=True, aweights=False), [-4 / 3, -4 / 15, 8 / 5]),
    (_params(correction=1, fweights=False, aweights=True), [-1.0, 0.0, 1.0]),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("params", "hand"), COV_BY_HAND, ids=["plain", "fweights", "aweights"])
def test_cov_by_hand(params, hand, dtype):
    node = Tensor("cov", (Input(0),), params, 2)
    _assert_by_hand(TensorCase(node, ((3,),), ((1.0, 2.0, 4.0),), dtype), hand)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cov_aweights_by_hand(dtype):
    """x = (1, 2, 4), aweights a = (1/2, 1, 1/4), correction 1: W = 7/4, mean 2, norm = W - (a·a)/W = 1, cov = Q / norm
    with Q = sum a (x - mean)² = 3/2. dQ/da_k = (x_k - mean)² (the mean's own derivative meets sum a (x - mean) = 0),
    dnorm/da_k = 1 - (2 a_k W - a·a) / W² = (6/7, 2/7, 8/7): dcov/da = (1, 0, 4) - 3/2 (6/7, 2/7, 8/7)."""
    node = Tensor("cov_aweights", (Input(0), Input(1)), _params(correction=1, fweights=False), 0)
    case = TensorCase(node, ((3,), (3,)), ((1.0, 2.0, 4.0), (0.5, 1.0, 0.25)), dtype)
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    for i, hand in enumerate(([-1.0, 0.0, 1.0], [-2 / 7, -3 / 7, 16 / 7])):
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
        assert exact == pytest.approx(hand, rel=2**-50, abs=2**-60), f"x{i}"
        values = grads[i].to(torch.float64).tolist()
        assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[i].elements)), (i, values)


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_cov_aweights_forward_is_inside_the_model(shape, dtype):
    """Every spelling and parameter set, on values in [-3, 3] and positive weights (its domain)."""
    entry, fmt = TENSOR_OPS["cov_aweights"], format_named(dtype)
    rng = np.random.default_rng(len(shape))
    values = [fmt.round(float(v)) for v in rng.uniform(-3, 3, int(np.prod(shape)))]
    weights = [POSITIVE_WEIGHTS[k] for k in rng.integers(len(POSITIVE_WEIGHTS), size=shape[-1])]
    tensors = [torch.tensor(v, dtype=torch.float64).reshape(s).to(fmt.torch_dtype)
               for v, s in ((values, shape), (weights, shape[-1:]))]
    arrays = [np.array([arb(v) for v in values], dtype=object).reshape(shape), np.array([arb(w) for w in weights],
                                                                                        dtype=object)]
    checked = 0
    for p in entry.space.options((shape, shape[-1:])):
        model = np.asarray(entry.forward(RoundingModel(fmt), arrays, p), dtype=object)
        checked += assert_spellings_inside_the_model(entry, (shape, shape[-1:]), p, tensors, model, dtype)
    assert checked


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_corrcoef_by_hand(dtype):
    """Rows (1, 2, 4) and (1, 3, 2): deviations a = (-4/3, -1/3, 5/3), b = (-1, 1, 0), a·a = 14/3, b·b = 2, a·b = 1,
    r = sqrt(3/28); y.sum() = 2 + 2r, and dr/dx0 = (b - (a·b / a·a) a) / sqrt(a·a b·b), dr/dx1 likewise."""
    node = Tensor("corrcoef", (Input(0),), _params(), 0)
    case = TensorCase(node, ((2, 3),), ((1.0, 2.0, 4.0, 1.0, 3.0, 2.0),), dtype)
    scale = math.sqrt(3 / 28)
    _assert_by_hand(case, [scale * v for v in (-10 / 7, 15 / 7, -5 / 7, -5 / 3, -5 / 3, 10 / 3)])


# A variable whose spread s is so small that its variance (about s²) underflows to 0.
UNDERFLOW_POINTS = {
    "corrcoef/1d-float64": ((2,), (0.0, 8.0e-218), "float64"),
    "corrcoef/1d-float32": ((2,), (0.0, 2.0**-76), "float32"),
    "corrcoef/2d-float64": ((2, 3), (0.0, 2.0**-540, 0.0, 1.0, 2.0, 4.0), "float64"),
}


@pytest.mark.parametrize(("shape", "values", "dtype"), UNDERFLOW_POINTS.values(), ids=UNDERFLOW_POINTS.keys())
def test_corrcoef_of_a_variable_of_tiny_spread(shape, values, dtype, dtypes):
    """corrcoef is scale-invariant per variable, so its exact gradient is finite here (0 for one variable, about
    1/s = 2^540 for the 2 x 3 input); torch's is NaN (finding corrcoef-variance-underflow)."""
    if dtype not in dtypes:
        pytest.skip(f"{dtype} is not among --dtypes")
    node = Tensor("corrcoef", (Input(0),), _params(), 0)
    assert_gradients_match(check_tensor_case(TensorCase(node, (shape,), (values,), dtype)))


@pytest.mark.parametrize("op", ["cov", "cov_aweights"])
def test_more_observations_than_weights_are_drawn_without_weights(op):
    """An earlier op of a program may hand cov more observations than the entry has weights for (repeat_interleave
    of two, twice: four): every parameter set listed for such a shape runs in torch, every spelling."""
    entry = TENSOR_OPS[op]
    for shape in [(4,), (2, 5)]:
        shapes = entry.operand_shapes(shape)[0] if entry.operand_shapes else (shape,)
        options = entry.space.options(shapes)
        assert options and not any(p.get("fweights") or p.get("aweights") for p in options)
        tensors = [torch.ones(s, dtype=torch.float64) for s in shapes]
        for p in options:
            for k in entry.spellings_for(shapes, p):
                assert entry.spellings[k].call(tensors, p).shape == entry.out_shape(shapes, p)
