"""The packed LU entry of the tensor-op table (oracles.table.lu_ops). Its gradients are checked like every tensor
op's by tests/test_tensor_ops.py (test_tensor_op_gradient); its forward of every spelling inside the model and a
backward off by a relative 1e-12 caught, by tests/test_spectral_ops.py (the entry is one of spectra.NAMES). Here:
- the pivots the model reads are bit for bit those torch's autograd saved (and its LU is in the model's branch);
- the exact side agrees with SymPy's derivatives of Doolittle's formulas on the rows in torch's order;
- gradients worked out by hand, with and without a row swap.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.core.render import symbol
from oracles.numerics.dtypes import format_named
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import RoundingModel
from oracles.table import lu_ops
from oracles.table.tensor_ops import TENSOR_OPS
from strategies.spectra import spectral_values
from tests.test_spectral_ops import _arrays, _assert_by_hand, _node, _one_hot

SHAPES = [(2, 2), (3, 3), (2, 3, 3)]


@scaled(3)
@given(data=st.data())
def test_pivots_and_factors_are_the_ones_autograd_saved(dtype, data):
    """The pivots the model recomputes are those LinalgLuFactorExBackward0 saved, and the saved LU lies in the
    model's forward enclosure (the branch of those pivots)."""
    if dtype not in ("float64", "float32"):
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    shape = data.draw(st.sampled_from(SHAPES), label="shape")
    values = data.draw(spectral_values(fmt, shape, "separated_singular"), label="A")
    matrix = torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype)
    function = torch.linalg.lu_factor(matrix.clone().requires_grad_())[0].grad_fn
    assert torch.equal(function._saved_pivots, lu_ops._lu_factor(matrix)[1])
    model = lu_ops._forward("LU")(RoundingModel(fmt), [_arrays(values, shape)], None)
    saved = function._saved_LU.to(torch.float64).reshape(-1).tolist()
    assert all(ball.contains(arb(v)) for ball, v in zip(model.reshape(-1), saved)), f"{values}: {saved}"


@functools.cache
def _closed_forms(op: str, rows: tuple[int, ...]):
    """(symbols, the output of `op` (packed LU, L or U) of the n x n matrix of symbols with its rows in `rows`, by
    Doolittle's formulas)."""
    n = len(rows)
    x = [symbol(i) for i in range(n * n)]
    a = sympy.Matrix(n, n, x)
    lower, upper = sympy.eye(n), sympy.zeros(n, n)
    for k in range(n):
        for j in range(k, n):
            upper[k, j] = a[rows[k], j] - sum(lower[k, t] * upper[t, j] for t in range(k))
        for i in range(k + 1, n):
            lower[i, k] = (a[rows[i], k] - sum(lower[i, t] * upper[t, k] for t in range(k))) / upper[k, k]
    chosen = {"lu_factor": lambda i, j: lower[i, j] if i > j else upper[i, j], "lu_l": lambda i, j: lower[i, j],
              "lu_u": lambda i, j: upper[i, j]}[op]
    return x, {(i, j): chosen(i, j) for i in range(n) for j in range(n)}


@pytest.mark.parametrize("op", ["lu_factor", "lu_l", "lu_u"])
@scaled(3)
@given(data=st.data())
def test_exact_side_is_sympys_derivative_of_doolittle(op, data):
    """At drawn 2 x 2 and 3 x 3 matrices, the entry's exact values and VJP of one output element overlap SymPy's
    values and derivatives of the packed LU, L or U of the rows in torch's pivot order."""
    fmt = format_named("float64")
    n = data.draw(st.sampled_from([2, 3]), label="side")
    values = data.draw(spectral_values(fmt, (n, n), "separated_singular"), label="A")
    a = _arrays(values, (n, n))
    rows = lu_ops._torch_rows(RoundingModel(fmt), a)[()]
    x, packed = _closed_forms(op, rows)
    env = tuple(arb(v) for v in values)
    value, pullback = TENSOR_OPS[op].exact_vjp(fmt, [a], None)
    for index, form in packed.items():
        assert value[index].overlaps(compile_sympy(form)(env)), f"LU{list(index)} at {values}"
    index = data.draw(st.sampled_from(sorted(packed)), label="output differentiated")
    (got,) = pullback(_one_hot((n, n), index))
    for g, v in zip(got.reshape(-1), x):
        want = compile_sympy(sympy.diff(packed[index], v))(env)
        assert g.overlaps(want), f"d LU{list(index)} / d{v}: {g.str(15)}, SymPy {want.str(15)} at {values}"


def test_gradient_by_hand_without_a_swap():
    """[[2, 1], [1, 3]] keeps its rows: LU = [[a, b], [c/a, d - cb/a]], whose sum has the gradient
    (1 - c/a² + cb/a², 1 - c/a, (1 - b)/a, 1) = (1, 1/2, 0, 1)."""
    _assert_by_hand(_node("lu_factor"), ((2, 2),), ((2.0, 1.0, 1.0, 3.0),), {0: (1.0, 0.5, 0.0, 1.0)})


def test_gradient_by_hand_with_a_swap():
    """[[1, 2], [4, 1]] swaps its rows: LU = [[c, d], [a/c, b - ad/c]], whose sum has the gradient
    ((1 - d)/c, 1, 1 - a/c² + ad/c², 1 - a/c) = (0, 1, 1, 3/4) at (a, b, c, d)."""
    _assert_by_hand(_node("lu_factor"), ((2, 2),), ((1.0, 2.0, 4.0, 1.0),), {0: (0.0, 1.0, 1.0, 0.75)})


def test_pivot_order_is_lapacks_sequence_of_swaps():
    """[[1, 3, 0], [0, 1, 5], [4, 2, 1]]: ipiv (3, 3, 3) swaps row 0 with 2, then row 1 with 2 (2.5 > 1 after the
    first elimination): the order (2, 0, 1); A's rows in it are L U."""
    a = np.array([[1.0, 3.0, 0.0], [0.0, 1.0, 5.0], [4.0, 2.0, 1.0]])
    balls = np.array([arb(v) for v in a.reshape(-1)], dtype=object).reshape(3, 3)
    fmt = format_named("float64")
    assert torch.linalg.lu_factor(torch.tensor(a))[1].tolist() == [3, 3, 3]
    assert lu_ops._torch_rows(RoundingModel(fmt), balls)[()] == (2, 0, 1)
