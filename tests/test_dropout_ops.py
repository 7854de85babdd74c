"""Dropout (oracles.table.dropout_ops): what the property tests cannot show by drawing.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient, on the
CPU) and their forward by tests/test_loss_ops.py (test_forward_is_inside_the_model). Here: a backward off by a
relative 1e-12 is caught; the noise the oracle reads on ones and zeros in float64 is the noise torch draws in
every dtype; the exact gradient is mask / (1 - p) with the mask read from torch's output on the case's own
(nonzero) input; the seeded spellings leave torch's generator as they found it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oracles.core.expected import Status
from oracles.numerics.dtypes import FORMATS
from oracles.table.dropout_ops import _FUNCTIONS, _noise
from oracles.table.shape_ops import Mask, _params
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import _listed, assert_planted_error_caught

RANDOM = list(_FUNCTIONS)


@pytest.mark.parametrize("op", [*RANDOM, "feature_alpha_dropout_eval", "native_dropout_backward"])
def test_a_dropout_backward_off_by_1e_12_is_caught(op, device):
    if TENSOR_OPS[op].seeded and device != "cpu":
        pytest.skip(f"{op}'s noise is reproduced from torch's CPU generator only")
    assert_planted_error_caught(op, device, 1e-12)


@pytest.mark.parametrize("op", RANDOM)
def test_the_noise_is_the_same_in_every_dtype(op):
    """For every listed shape and parameters: where torch's output on ones differs from its output on zeros, in
    each dtype, is the mask the oracle reads in float64."""
    for (shape,), p in _listed(TENSOR_OPS[op]):
        for fmt in FORMATS.values():
            outputs = []
            for fill in (1.0, 0.0):
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(p["seed"])
                    outputs.append(_FUNCTIONS[op](torch.full(shape, fill, dtype=fmt.torch_dtype), p["p"]))
            kept = tuple((outputs[0] != outputs[1]).reshape(-1).tolist())
            assert kept == _noise(op, p["p"], p["seed"], shape), (op, shape, p, fmt.name)


@pytest.mark.parametrize("p", [0.5, 0.25])
def test_dropout_gradient_is_the_mask_over_1_minus_p(p):
    """On inputs that are nonzero by construction the kept elements are where torch's output is nonzero: the
    exact gradient is that mask / (1 - p), for each seed."""
    values = (1.0, -2.0, 0.5, 3.0, -0.25, 1.5)
    masks = []
    for seed in (0, 1, 2):
        params = _params(p=p, seed=seed)
        x = torch.tensor(values, dtype=torch.float64).reshape(2, 3)
        kept = (TENSOR_OPS["dropout"].spellings[0].call([x], params) != 0).reshape(-1).tolist()
        case = TensorCase(Tensor("dropout", (Input(0),), params, 0), ((2, 3),), (values,), "float64")
        [expected] = expected_tensor_gradients(case)
        assert all(e.status is Status.OK for e in expected.elements)
        exact = [float(e.exact.mid()) for e in expected.elements]
        assert exact == [1 / (1 - p) if k else 0.0 for k in kept], (seed, kept)
        masks.append(kept)
    assert any(0 < sum(kept) < len(kept) for kept in masks), "no seed both keeps and drops"


def test_a_seeded_spelling_leaves_the_generator_as_it_was():
    state = torch.get_rng_state()
    for op in RANDOM:
        (shape,), p = _listed(TENSOR_OPS[op])[0]
        TENSOR_OPS[op].spellings[0].call([torch.ones(shape)], p)
    assert torch.equal(torch.get_rng_state(), state)


def test_native_dropout_backward_by_hand():
    """grad * mask * scale: at the mask (True, False, True) and scale 4/3 the derivative is (4/3, 0, 4/3)."""
    params = _params(mask=Mask.of(np.array([True, False, True])), scale=4 / 3)
    case = TensorCase(Tensor("native_dropout_backward", (Input(0),), params, 0), ((3,),), ((1.0, 2.0, -3.0),),
                      "float64")
    [expected] = expected_tensor_gradients(case)
    assert [float(e.exact.mid()) for e in expected.elements] == [4 / 3, 0.0, 4 / 3]
