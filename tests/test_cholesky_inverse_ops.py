"""cholesky_inverse (oracles.table.cholesky_inverse_ops). Its gradients are checked like every tensor op's by
tests/test_tensor_ops.py (test_tensor_op_gradient); its forward of every spelling inside the model and a backward off by
a relative 1e-12 caught, by tests/test_linalg_ops.py (the entry is one of linalg_ops.NAMES). Here, a gradient worked out
by hand, through both of torch's paths (upper=False on L, upper=True on Lᵀ), and the convention it rests on: the
forward reads one triangle, the backward differentiates every element; and the inverse the model recomputes is bit for
bit the one autograd saved (the model's one assumption about potri).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.numerics.dtypes import format_named
from oracles.table import cholesky_inverse_ops
from oracles.table.shape_ops import _params
from oracles.tensor.program import Input, Tensor
from strategies.matrices import matrix_values
from tests.test_spectral_ops import _assert_by_hand

L = (2.0, 0.0, 1.0, 3.0)  # [[2, 0], [1, 3]]


@pytest.mark.parametrize(("upper", "spelling"), [(False, 0), (False, 1), (True, 2)])
def test_gradient_by_hand(upper, spelling):
    """L Lᵀ = [[4, 2], [2, 10]], C = [[10, -2], [-2, 4]] / 36; for sum(C), S = C (2·ones) C = 2 v vᵀ with v = C's row
    sums (2/9, 1/18), and -S L = -[[2/9, 2/27], [1/18, 1/54]] (the 2/27 of the element above the diagonal included:
    the convention)."""
    node = Tensor("cholesky_inverse", (Input(0),), _params(upper=upper), spelling)
    _assert_by_hand(node, ((2, 2),), (L,), {0: (-2 / 9, -2 / 27, -1 / 18, -1 / 54)}, rel=2**-50)


def test_forward_reads_one_triangle_backward_every_element():
    """The convention, shown on torch: the element above the diagonal changes nothing in the forward, yet its gradient
    is the full-matrix derivative's."""
    low = torch.tensor(L, dtype=torch.float64).reshape(2, 2).requires_grad_()
    full = torch.tensor((2.0, 5.0, 1.0, 3.0), dtype=torch.float64).reshape(2, 2)
    value = torch.cholesky_inverse(low)
    assert torch.equal(value.detach(), torch.cholesky_inverse(full))
    value.sum().backward()
    assert low.grad[0, 1].item() == pytest.approx(-2 / 27, rel=1e-15)


@scaled(3)
@given(data=st.data())
def test_recomputed_inverse_is_the_one_autograd_saved(dtype, data):
    if dtype not in ("float64", "float32"):
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    shape = data.draw(st.sampled_from([(2, 2), (3, 3), (2, 3, 3)]), label="shape")
    upper = data.draw(st.booleans(), label="upper")
    values = data.draw(matrix_values(fmt, shape, "cholesky_factor"), label="L")
    assert len(values) == math.prod(shape)
    low = torch.tensor(values, dtype=torch.float64).reshape(shape).to(fmt.torch_dtype)
    leaf = low.clone().requires_grad_()
    saved = (torch.cholesky_inverse(leaf.mT, upper=True) if upper else torch.cholesky_inverse(leaf)).grad_fn
    (recomputed,) = cholesky_inverse_ops._cholesky_inverse(low, upper)
    assert torch.equal(saved._saved_result, recomputed), f"{values}, upper={upper}"
