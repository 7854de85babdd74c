"""linalg.lu_solve and lu_solve (oracles.table.lu_solve_ops). Their gradients are checked like every tensor op's by
tests/test_tensor_ops.py (test_tensor_op_gradient); the forward of every spelling inside the model and a backward off
by a relative 1e-12 caught, by tests/test_linalg_ops.py (the entry is one of linalg_ops.NAMES). Here:
- the permutation the entry reads from the pivots is the P of torch's lu_unpack (A = P L U);
- the exact side (the pullback derived by hand) agrees with SymPy's derivatives of its Gaussian elimination;
- a gradient worked out by hand, through a row swap.
"""

from __future__ import annotations

import functools
import itertools

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
from oracles.table import lu_solve_ops
from oracles.table.shape_ops import _params
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.program import Input, Tensor
from strategies.cached import choice
from strategies.matrices import matrix_values
from tests.test_spectral_ops import _arrays, _assert_by_hand, _one_hot


@pytest.mark.parametrize("n", [1, 2, 3])
def test_pivot_rows_are_lu_unpacks_permutation(n):
    """For every pivot sequence of an n x n factorization, torch.lu_unpack's P has P[rows[i], i] = 1."""
    for ipiv in lu_solve_ops._sequences(n):
        p, _, _ = torch.lu_unpack(torch.eye(n, dtype=torch.float64), torch.tensor(ipiv, dtype=torch.int32))
        order = lu_solve_ops.rows(ipiv)
        assert all(p[order[i], i].item() == 1 for i in range(n)), f"{ipiv}: {p.tolist()}, rows {order}"


@functools.cache
def _closed_forms(shapes, p):
    """(symbols, SymPy's X) of the entry's SymPy side on symbols."""
    symbols = [symbol(i) for i in range(sum(int(np.prod(s)) for s in shapes))]
    lu = np.array(symbols[:int(np.prod(shapes[0]))], dtype=object).reshape(shapes[0])
    b = np.array(symbols[int(np.prod(shapes[0])):], dtype=object).reshape(shapes[1])
    return symbols, TENSOR_OPS["lu_solve"].sympy([lu, b], p)


@functools.cache
def _compiled_partials(shapes, p, index):
    symbols, forms = _closed_forms(shapes, p)
    return [compile_sympy(sympy.diff(forms[index], v)) for v in symbols]


SHAPES = [((2, 2), (2, 1)), ((2, 2), (1, 2)), ((3, 3), (1, 3))]  # SymPy differentiates 3 x 3 left solves slowly


@scaled(2)
@given(data=st.data())
def test_exact_side_is_sympys_derivative(data):
    """At drawn LU and B (every side, adjoint and pivot sequence), the entry's exact X and the VJP of one element of X
    overlap SymPy's values and derivatives."""
    fmt = format_named("float64")
    entry = TENSOR_OPS["lu_solve"]
    shapes = data.draw(choice(SHAPES), label="shapes")
    p = data.draw(choice(entry.space.options(shapes)), label="parameters")
    lu = data.draw(matrix_values(fmt, shapes[0], "diagonally_dominant"), label="LU")
    b = data.draw(st.lists(st.floats(-3, 3), min_size=int(np.prod(shapes[1])), max_size=int(np.prod(shapes[1]))),
                  label="B")
    env = tuple(arb(v) for v in lu + b)
    value, pullback = entry.exact_vjp(fmt, [_arrays(lu, shapes[0]), _arrays(b, shapes[1])], p)
    _, forms = _closed_forms(shapes, p)
    for index in np.ndindex(*shapes[1]):
        want = compile_sympy(forms[index])(env)
        assert value[index].overlaps(want), f"X{list(index)}: {value[index].str(15)}, SymPy {want.str(15)}"
    index = data.draw(choice(list(np.ndindex(*shapes[1]))), label="output differentiated")
    got = np.concatenate([g.reshape(-1) for g in pullback(_one_hot(shapes[1], index))])
    for k, (g, partial) in enumerate(zip(got, _compiled_partials(shapes, p, index))):
        want = partial(env)
        assert g.overlaps(want), f"dX{list(index)}/dx{k}: {g.str(15)}, SymPy {want.str(15)} for {lu}, {b}, {p}"


def test_gradient_by_hand_through_a_swap():
    """LU = [[a, b], [l, d]] with pivots (2, 2): A = P L U = [[l a, l b + d], [a, b]]; A X = (1, 1)ᵀ gives
    x1 = (1 - l) / d, x0 = (1 - b x1) / a, and at (a, b, l, d) = (2, 0, 0, 4) the sum x0 + x1 has the gradient
    (-x0 / a, -(1 - l) / (a d), -1 / d + b / (a d), -(1 - l) / d² + b (1 - l) / (a d²)) = (-1/4, -1/8, -1/4, -1/16);
    B's gradient is A⁻ᵀ (1, 1)ᵀ = (1/4, 1/2)."""
    ipiv = lu_solve_ops.Pivots((2, 2))
    for k in (0, 2):  # linalg.lu_solve and the older lu_solve (the others are checked equal to these)
        node = Tensor("lu_solve", (Input(0), Input(1)), _params(pivots=ipiv, left=True, adjoint=False), k)
        _assert_by_hand(node, ((2, 2), (2, 1)), ((2.0, 0.0, 0.0, 4.0), (1.0, 1.0)),
                        {0: (-0.25, -0.125, -0.25, -0.0625), 1: (0.25, 0.5)})


def test_options_cover_every_side_adjoint_and_pivots():
    """A 2 x 2 batch of two with a square B: both sides, both adjoints, every pair of pivot sequences."""
    options = TENSOR_OPS["lu_solve"].space.options(((2, 2, 2), (2, 2, 2)))
    assert {(p["left"], p["adjoint"]) for p in options} == set(itertools.product((True, False), repeat=2))
    assert {p["pivots"].values for p in options} == set(itertools.product([(1, 2), (2, 2)], repeat=2))
