"""Linear-algebra ops of the tensor-op table (oracles.table.linalg_ops) and their LAPACK model
(oracles.table.factorizations).

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient); here:
- torch's forward of every spelling lies in the model's enclosure, on drawn matrices of the op's domain;
- the model's LU branches hold the factors torch's own lu_factor returns (the pivots torch chose among them),
  on matrices that make partial pivoting swap rows;
- gradients worked out by hand;
- a backward wrong by a relative 1e-12 in float64 is caught, for every entry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table import factorizations, linalg_ops
from oracles.table.tensor_ops import TENSOR_OPS, CallParams
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.cached import choice
from strategies.matrices import matrix_values
from tests.test_tensor_ops import assert_planted_error_caught, assert_spellings_inside_the_model

NONE = CallParams()
SEEDS = [(3,), (2,), (3, 3), (2, 2), (1, 1), (2, 3), (2, 3, 3), (2, 2, 3)]  # drawn shapes the entries grow from


def _arrays(values, shape):
    return np.array([arb(v) for v in values], dtype=object).reshape(shape)


@pytest.mark.parametrize("op", linalg_ops.NAMES)
@scaled(10)
@given(data=st.data())
def test_forward_is_inside_the_model(op, dtype, data):
    """torch's forward of each spelling, and the rendered source, lie in the model's forward enclosure."""
    entry = TENSOR_OPS[op]
    if entry.cpu_dtypes is not None and dtype not in entry.cpu_dtypes:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    shapes = data.draw(choice([s for seed in SEEDS if len(seed) in entry.ranks for s in entry.argument_shapes(seed)
                               if entry.space.options(s)]), label="argument shapes")
    tensors, arrays = [], []
    for k, (shape, domain) in enumerate(zip(shapes, entry.matrix_domains or ("",) * entry.arity)):
        values = data.draw(matrix_values(fmt, shape, domain) if domain else
                           st.lists(st.floats(-3, 3).map(fmt.round), min_size=int(np.prod(shape)),
                                    max_size=int(np.prod(shape))), label=f"x{k}")
        tensors.append(torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype))
        arrays.append(_arrays(values, shape))
    p = data.draw(choice(entry.space.options(shapes)), label="parameters")
    model = np.asarray(entry.forward(RoundingModel(fmt), arrays, p), dtype=object)
    assert_spellings_inside_the_model(entry, shapes, p, tensors, model, dtype)


# Rows to be swapped: partial pivoting takes 4 first, then decides between rows whose entries differ.
PIVOTING = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]]
TIED = [[1.0, 2.0, 0.5], [-1.0, 0.5, 2.0], [0.5, -3.0, 1.0]]  # |1| = |-1|: both rows may be the first pivot


@pytest.mark.parametrize("matrix", [PIVOTING, TIED, [[2.0, 1.0], [1.0, 3.0]], [[0.5, -2.0], [3.0, 0.25]]])
def test_torchs_lu_is_one_of_the_models_branches(matrix, dtype):
    """torch.linalg.lu_factor (LAPACK's getrf, as det, slogdet, inv and solve call it) returns pivots the model
    follows and factors inside that branch's balls; a tie in the first column makes the model follow both."""
    if dtype not in linalg_ops.FLOATS:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    a = torch.tensor(matrix, dtype=fmt.torch_dtype)
    lu, pivots = torch.linalg.lu_factor(a)
    n = a.shape[0]
    rows = list(range(n))
    for k, p in enumerate(pivots.tolist()):  # LAPACK's ipiv: row k was swapped with row p - 1
        rows[k], rows[p - 1] = rows[p - 1], rows[k]
    branches = [b for b in factorizations.factorizations(RoundingModel(fmt), _arrays(sum(matrix, []), (n, n)))
                if not b.transposed]
    if matrix is TIED:
        assert len({b.rows[0] for b in branches}) == 2, "a tie for the first pivot is followed both ways"
    (branch,) = [b for b in branches if list(b.rows) == rows]
    for i in range(n):
        for j in range(n):
            ball = branch.lower[i, j] if j < i else branch.upper[i, j]
            assert ball.contains(arb(lu[i, j].item())), f"LU[{i}, {j}] = {lu[i, j].item()!r} outside {ball.str(10)}"


def _node(op: str, arity: int = 1, spelling: int = 0) -> Tensor:
    return Tensor(op, tuple(Input(i) for i in range(arity)), NONE, spelling)


def _assert_by_hand(node, shapes, values, by_hand, dtypes=linalg_ops.FLOATS):
    """The oracle's exact gradient is the one worked out by hand, and torch's is verified in each dtype."""
    for dtype in dtypes:
        case = TensorCase(node, shapes, values, dtype)
        expected = expected_tensor_gradients(case)
        grads = torch_gradients(case)
        for i, hand in by_hand.items():
            exact = [float(e.exact.mid()) for e in expected[i].elements]
            assert exact == pytest.approx(list(hand), rel=2**-52, abs=0), f"x{i} of {case.source}: {exact}"
            torch_values = grads[i].to(torch.float64).reshape(-1).tolist()
            verdicts = [judge_element(i, (), v, e, case.format) for v, e in zip(torch_values, expected[i].elements)]
            assert all(v.verdict is Verdict.VERIFIED for v in verdicts), f"{case.source} ({dtype}): {torch_values}"


def test_det_gradient_is_the_cofactor_matrix():
    """∂det/∂A = det·A⁻ᵀ, the cofactors: for [[a, b], [c, d]] it is [[d, -c], [-b, a]]."""
    _assert_by_hand(_node("det"), ((2, 2),), ((3.0, 1.0, -2.0, 4.0),), {0: (4.0, 2.0, -1.0, 3.0)})


def test_logdet_gradient_is_the_inverse_transposed():
    """∂ log det/∂A = A⁻ᵀ: for [[2, 1], [1, 1]] (det 1) the inverse is [[1, -1], [-1, 2]], symmetric."""
    _assert_by_hand(_node("logdet"), ((2, 2),), ((2.0, 1.0, 1.0, 1.0),), {0: (1.0, -1.0, -1.0, 2.0)})
    _assert_by_hand(_node("slogdet"), ((2, 2),), ((-2.0, 1.0, 1.0, -1.0),), {0: (-1.0, -1.0, -1.0, -2.0)})


def test_inverse_of_a_diagonal_matrix():
    """inv(diag(2, 4)) = diag(1/2, 1/4); ∂ Σ inv / ∂A = -A⁻ᵀ 1 1ᵀ A⁻ᵀ: entry (i, j) is -(1/a_i)(1/a_j)."""
    _assert_by_hand(_node("inv"), ((2, 2),), ((2.0, 0.0, 0.0, 4.0),), {0: (-0.25, -0.125, -0.125, -0.0625)})


def test_solve_gradients():
    """X = A⁻¹ b for A = [[2, 0], [0, 4]], b = [2, 8]: X = [1, 2]; gB = A⁻ᵀ 1 = [1/2, 1/4]; gA = -gB Xᵀ."""
    _assert_by_hand(_node("solve", 2), ((2, 2), (2,)), ((2.0, 0.0, 0.0, 4.0), (2.0, 8.0)),
                    {0: (-0.5, -1.0, -0.25, -0.5), 1: (0.5, 0.25)})


@pytest.mark.parametrize("op", linalg_ops.NAMES)
def test_a_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64) on well-conditioned matrices: the LAPACK model's enclosure
    is tighter than that, so some example fails."""
    assert_planted_error_caught(op, device, 1e-12)


def test_cholesky_gradient_is_symmetric():
    """chol([[a, s], [s, d]]) = [[√a, 0], [s/√a, √(d - s²/a)]]; at a = 4, s = 2, d = 5 (L = [[2, 0], [1, 2]]) the
    sum of L has ∂/∂a = 1/4 - 1/8 + 1/16, ∂/∂s = 1/2 - 1/4, ∂/∂d = 1/4; torch shares ∂/∂s evenly between
    A[0, 1] and A[1, 0] (the derivative of chol((A + Aᵀ) / 2))."""
    node = Tensor("cholesky", (Input(0),), TENSOR_OPS["cholesky"].space.options(((2, 2),))[0], 0)
    _assert_by_hand(node, ((2, 2),), ((4.0, 2.0, 2.0, 5.0),), {0: (0.1875, 0.125, 0.125, 0.25)})


def test_cholesky_solve_gradient_reaches_the_unread_triangle():
    """L = [[2, 0], [1, 2]], B = [4, 2]ᵀ: X = (L Lᵀ)⁻¹ B = [1, 0]ᵀ, gB = (L Lᵀ)⁻¹ 1 = [3/16, 2/16]ᵀ and
    gL = -(gB Xᵀ + X gBᵀ) L = -[[7/8, 1/4], [1/4, 0]]: torch's gradient of L[0, 1], which the forward never reads,
    is the derivative of (L Lᵀ)⁻¹ B in a full L."""
    _assert_by_hand(_node("cholesky_solve", 2), ((2, 1), (2, 2)), ((4.0, 2.0), (2.0, 0.0, 1.0, 2.0)),
                    {0: (0.1875, 0.125), 1: (-0.875, -0.25, -0.25, 0.0)})
