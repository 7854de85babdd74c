"""cdist (oracles.table.cdist_ops): p = 1, 2 (the direct kernel and the matrix-product route), 3 and inf.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient) and its
forward by tests/test_loss_ops.py (test_forward_is_inside_the_model); its conventions at identical rows and at an
inf-norm tie by tests/test_conventions.py. Here: a backward off by a relative 1e-12 is caught, and gradients worked
by hand for every p and route.
"""

from __future__ import annotations

import math

import pytest
import torch

from oracles.core.expected import Status
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.table.cdist_ops import DEFAULT_MODE, DIRECT, MATRIX_PRODUCT
from oracles.table.shape_ops import _params
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_tensor_ops import assert_planted_error_caught


def test_a_cdist_backward_off_by_1e_12_is_caught(device):
    assert_planted_error_caught("cdist", device, 1e-12)


# x1 = [[3, 4]] against x2 = [[0, 0], [3, 0]]: the differences (3, 4) and (0, 4).
CUBE = 91 ** (2 / 3)  # p = 3: the first distance is 91^(1/3); d|d| / dist² per element
BY_HAND = {
    # p = 2: (3, 4) / 5 and (0, 4) / 4
    2.0: ((0.6, 1.8), (-0.6, -0.8, 0.0, -1.0)),
    # p = 1: sign(d), with sign(0) = 0
    1.0: ((1.0, 2.0), (-1.0, -1.0, 0.0, -1.0)),
    # p = inf: the largest |d| only (4, both times)
    math.inf: ((0.0, 2.0), (0.0, -1.0, 0.0, -1.0)),
    3.0: ((9 / CUBE, 16 / CUBE + 1.0), (-9 / CUBE, -16 / CUBE, 0.0, -1.0)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("p", "mode"), [(2.0, DEFAULT_MODE), (2.0, MATRIX_PRODUCT), (2.0, DIRECT), (1.0, DEFAULT_MODE),
                                         (math.inf, DEFAULT_MODE), (3.0, DEFAULT_MODE)])
def test_cdist_by_hand(p, mode, dtype):
    node = Tensor("cdist", (Input(0), Input(1)), _params(p=p, compute_mode=mode), 2)
    case = TensorCase(node, ((1, 2), (2, 2)), ((3.0, 4.0), (0.0, 0.0, 3.0, 0.0)), dtype)
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    for i, hand in enumerate(BY_HAND[p]):
        exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
        assert exact == pytest.approx(list(hand), rel=2**-50, abs=0), f"x{i}"
        values = grads[i].to(torch.float64).reshape(-1).tolist()
        assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[i].elements)), (i, values)



@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_zero_norm_counts_and_has_gradient_zero(dtype):
    """p = 0: x1 = [[3, 4]] against x2 = [[0, 1], [2.5, 0.5]]: the differences (3, 3) and (0.5, 3.5) are all nonzero,
    so both counts are 2 and constant nearby: the gradient is 0."""
    node = Tensor("cdist", (Input(0), Input(1)), _params(p=0.0, compute_mode=DEFAULT_MODE), 2)
    case = TensorCase(node, ((1, 2), (2, 2)), ((3.0, 4.0), (0.0, 1.0, 2.5, 0.5)), dtype, (1.0, -2.0))
    expected, grads = expected_tensor_gradients(case), torch_gradients(case)
    for i in (0, 1):
        assert [float(e.exact.mid()) for e in expected[i].elements] == [0.0] * (2 * (i + 1))
        values = grads[i].to(torch.float64).reshape(-1).tolist()
        assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                   for v, e in zip(values, expected[i].elements)), (i, values)
    x1, x2 = (torch.tensor(v, dtype=case.format.torch_dtype).reshape(s) for v, s in zip(case.values, case.shapes))
    assert torch.cdist(x1, x2, p=0.0).tolist() == [[2.0, 2.0]]


# torch.func.jacrev of cdist: the direct kernel's backward under vmap (finding cdist-vmap-backward), and the
# matrix-product route, whose backward is right under vmap.
JACREV_CASES = {"p2-float64": (2.0, DEFAULT_MODE), "p1-float64": (1.0, DEFAULT_MODE),
                "pinf-float64": (math.inf, DEFAULT_MODE), "p3-float64": (3.0, DEFAULT_MODE),
                "p2-mm-float64": (2.0, MATRIX_PRODUCT)}


@pytest.mark.parametrize(("p", "mode"), JACREV_CASES.values(), ids=JACREV_CASES.keys())
def test_jacrev_of_cdist(p, mode, dtypes):
    """Every entry of torch.func.jacrev of cdist(x1, x2) (3 x 2 against 2 x 2, no |difference| tied or 0) against the
    exact oracle's row for its output (a one-hot gradient=)."""
    import torch.func as tf

    if "float64" not in dtypes:
        pytest.skip("float64 is not among --dtypes")
    node = Tensor("cdist", (Input(0), Input(1)), _params(p=p, compute_mode=mode), 2)
    values = ((0.0, 1.0, 2.0, -1.0, 0.5, 3.0), (1.0, 1.5, -1.0, 2.25))
    x1, x2 = (torch.tensor(v, dtype=torch.float64).reshape(-1, 2) for v in values)
    jacobians = tf.jacrev(lambda a, b: torch.cdist(a, b, p=p, compute_mode=mode), argnums=(0, 1))(x1, x2)
    fmt = format_named("float64")
    wrong = []
    for o in range(6):
        upstream = tuple(1.0 if k == o else 0.0 for k in range(6))
        expected = expected_tensor_gradients(TensorCase(node, ((3, 2), (2, 2)), values, "float64", upstream))
        for i, jacobian in enumerate(jacobians):
            row = jacobian.reshape(6, -1)[o].tolist()
            wrong += [f"d(out {o})/d(x{i} element {a}): jacrev {v}, exact {float(e.exact.mid())}"
                      for a, (v, e) in enumerate(zip(row, expected[i].elements))
                      if judge_element(i, (o, a), v, e, fmt).verdict is Verdict.WRONG]
    assert not wrong, "\n".join(wrong)


def test_the_default_mode_takes_the_matrix_product_beyond_25_rows():
    """26 rows against one: torch's default compute_mode multiplies matrices (its graph holds _euclidean_dist), and
    the model follows it there; the direct kernel below that."""
    values = tuple(float(k % 7) - 3.0 + k / 64 for k in range(52))
    for rows in (25, 26):
        node = Tensor("cdist", (Input(0), Input(1)), _params(p=2.0, compute_mode=DEFAULT_MODE), 0)
        case = TensorCase(node, ((rows, 2), (1, 2)), (values[:2 * rows], (0.5, 0.25)), "float64")
        x1, x2 = (torch.tensor(v, dtype=torch.float64).reshape(s) for v, s in zip(case.values, case.shapes))
        graph = torch.cdist(x1.requires_grad_(), x2).grad_fn.next_functions[0][0]
        assert (graph is not None and graph.name() == "EuclideanDistBackward0") == (rows > 25)
        expected, grads = expected_tensor_gradients(case), torch_gradients(case)
        for i in (0, 1):
            values_i = grads[i].to(torch.float64).reshape(-1).tolist()
            assert all(judge_element(i, (), v, e, case.format).verdict is Verdict.VERIFIED
                       for v, e in zip(values_i, expected[i].elements)), (rows, i)
