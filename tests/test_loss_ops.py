"""Losses and normalizing ops of the tensor-op table (oracles.table.loss_ops, sample_losses, normalization_ops):
their forward model against torch's forward, and gradients worked out by hand.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient); the
forward enters those only through what follows the op in a program, so here torch's forward itself must lie in
the model's enclosure, for every listed parameter set of small shapes, every spelling, and every dtype.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from flint import arb

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import batch_norm_ops
from oracles.table.shape_ops import Indices
from oracles.table.tensor_ops import (
    TENSOR_OPS,
    CallParams,
    OptionSpace,
    ReductionParams,
    ReductionSpace,
    ScanParams,
)
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import ROUNDING_FORWARD, assert_spellings_inside_the_model

SHAPES = {1: (3,), 2: (2, 3), 3: (2, 1, 3)}


def _parameter_sets(op, shapes):
    if isinstance(op.space, OptionSpace):
        return list(op.space.options(shapes))
    rank = len(shapes[0])
    if isinstance(op.space, ReductionSpace):
        return [ReductionParams(d, k, c) for d in [None, *range(rank)] for k in (False, True) for c in (0, 1, 2)
                if (np.prod(shapes[0]) if d is None else shapes[0][d]) > c]
    return [ScanParams(d) for d in range(rank)]


def _values(fmt, size: int, seed: int) -> list[float]:
    """Exact values of the dtype: seed 0 simple ones with ties (a constant slice, equal input and target), else
    uniform in [-3, 3] rounded to the dtype."""
    if seed == 0:
        return [[1.0, 1.0, 0.5, -2.0, 0.0, 3.0][i % 6] for i in range(size)]
    rng = np.random.default_rng(seed)
    return [fmt.round(float(v)) for v in rng.uniform(-3, 3, size)]


@pytest.mark.parametrize("op", ROUNDING_FORWARD)
def test_forward_is_inside_the_model(op, dtype):
    """torch's forward of each spelling, and the rendered source, lie in the model's forward enclosure."""
    entry = TENSOR_OPS[op]
    if entry.cpu_dtypes is not None and dtype not in entry.cpu_dtypes:
        pytest.skip(f"torch {torch.__version__} has no {dtype} CPU kernel for {op}")
    fmt = format_named(dtype)
    F = RoundingModel(fmt)
    checked = 0
    for rank in entry.ranks:
        shapes = entry.argument_shapes(SHAPES[rank])[0]
        for p, seed in itertools.product(_parameter_sets(entry, shapes), (0, 1, 2)):
            tensors, arrays = [], []
            for k, shape in enumerate(shapes):
                values = _values(fmt, int(np.prod(shape)), seed + 10 * k)
                tensors.append(torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype))
                arrays.append(np.array([arb(v) for v in values], dtype=object).reshape(shape))
            try:
                model = np.asarray(entry.forward(F, arrays, p), dtype=object)
            except Singular:
                continue
            checked += assert_spellings_inside_the_model(entry, shapes, p, tensors, model, dtype)
    assert checked, f"{op}: no parameter set checked"


@pytest.mark.parametrize("length", [*range(1, 20), 33, 130, 600])
def test_rowwise_moments_enclose_torchs_statistics(length, dtype):
    """The model of RowwiseMoments (per-lane Welford, chunk cascade, tail, lane merge) and of 1 / sqrt(var +
    eps) holds the mean and rstd native_layer_norm saves, for rows shorter than a vector, of a few vectors and
    of several chunks, centred and offset (a mean far from 0)."""
    fmt = format_named(dtype)
    F = RoundingModel(fmt)
    for seed, offset in ((1, 0.0), (2, 5.0)):
        values = [fmt.round(float(v)) for v in np.random.default_rng(seed).uniform(-3, 3, length) + offset]
        row = torch.tensor(values, dtype=torch.float64).to(fmt.torch_dtype).reshape(1, length)
        _, mean, rstd = torch.native_layer_norm(row, [length], None, None, batch_norm_ops.LAYER_EPS)
        model = [batch_norm_ops.stored(F, v) for v in batch_norm_ops.row_statistics(F, [arb(v) for v in values])]
        for name, got, enclosure in zip(("mean", "rstd"), (mean, rstd), model):
            assert enclosure.contains(arb(got.item())), f"{name} {got.item()!r} outside {enclosure.str(10)}"


# ------------------------------------------------------------------ gradients worked out by hand
X = Input(0)


def _assert_by_hand(node, shapes, values, by_hand, dtypes=("float64", "float32")):
    for dtype in dtypes:
        case = TensorCase(node, shapes, values, dtype)
        expected = expected_tensor_gradients(case)
        grads = torch_gradients(case)
        for i, hand in by_hand.items():
            exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
            assert exact == pytest.approx(list(hand), rel=2**-52, abs=0), f"oracle for x{i} of {case.source}"
            torch_values = grads[i].to(torch.float64).reshape(-1).tolist()
            verdicts = [judge_element(i, (), v, e, case.format) for v, e in zip(torch_values, expected[i].elements)]
            assert all(v.verdict is Verdict.VERIFIED for v in verdicts), f"{case.source}, {dtype}: {torch_values}"


def _params(**items) -> CallParams:
    return CallParams(tuple(items.items()))


def test_mse_loss_by_hand():
    """mean((x - t)^2) over 3: d/dx = 2 (x - t) / 3, d/dt its negation."""
    node = Tensor("mse_loss", (X, Input(1)), _params(reduction="mean"), 0)
    _assert_by_hand(node, ((3,), (3,)), ((1.0, 2.0, -1.0), (0.0, 2.0, 0.5)),
                    {0: (2 / 3, 0.0, -1.0), 1: (-2 / 3, 0.0, 1.0)})


def test_l1_loss_at_a_tie_has_gradient_zero():
    """sum |x - t|: sign(x - t), and at x == t the minimum-norm subgradient 0, which torch's sgn(0) gives."""
    node = Tensor("l1_loss", (X, Input(1)), _params(reduction="sum"), 0)
    _assert_by_hand(node, ((3,), (3,)), ((1.0, 2.0, -1.0), (0.0, 2.0, 0.5)),
                    {0: (1.0, 0.0, -1.0), 1: (-1.0, 0.0, 1.0)})


def test_cross_entropy_by_hand():
    """One sample of scores (0, 0) and target 1: -log(e^0 / (e^0 + e^0)); gradient softmax - one-hot = (1/2, -1/2)."""
    node = Tensor("cross_entropy", (X,), _params(target=Indices(1), reduction="mean"), 0)
    _assert_by_hand(node, ((2,),), ((0.0, 0.0),), {0: (0.5, -0.5)})


def test_huber_loss_by_hand():
    """huber (delta 1) of d = x - t: d where |d| < 1, else sign(d); d = 2, 0.5, -3 -> 1, 0.5, -1."""
    node = Tensor("huber_loss", (X, Input(1)), _params(reduction="sum", delta=1.0), 0)
    _assert_by_hand(node, ((3,), (3,)), ((2.0, 1.0, -3.0), (0.0, 0.5, 0.0)), {0: (1.0, 0.5, -1.0)})


def test_std_mean_of_a_constant_slice_has_gradient_zero():
    """std_mean's std of a constant slice is exactly 0 in torch's Welford kernel, and std_backward masks the
    0/0 there: the minimum-norm subgradient 0; the other row (x - mean) / ((N - 1) std) = (x - 2) / 2."""
    node = Tensor("std_mean[0]", (X,), ReductionParams(dim=1, correction=1), 0)
    _assert_by_hand(node, ((2, 3),), ((2.0, 2.0, 2.0, 1.0, 2.0, 3.0),), {0: (0.0, 0.0, 0.0, -0.5, 0.0, 0.5)})
