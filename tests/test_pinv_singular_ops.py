"""linalg.pinv[singular] (oracles.table.pinv_singular_ops). Its gradients are checked like every tensor op's by
tests/test_tensor_ops.py (test_tensor_op_gradient); its forward inside the model and a backward off by a relative 1e-12
caught, by tests/test_spectral_ops.py (the entry is one of spectra.NAMES). Here:
- torch's pinv of the product it forms has rank k: the default cutoff drops the singular values the rounding of
  a @ b.mT adds (else torch's result, and the gradient, would not be the rank-k function's);
- a gradient worked out by hand.
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.numerics.dtypes import format_named
from oracles.table import pinv_singular_ops
from oracles.table.shape_ops import _params
from oracles.tensor.program import Input, Tensor
from strategies.cached import choice
from strategies.spectra import spectral_values
from tests.test_spectral_ops import _assert_by_hand


@scaled(5)
@given(data=st.data())
def test_torchs_pseudo_inverse_has_the_factors_rank(data):
    """For drawn factors (float64 and float32), torch's pinv(a @ b.mT) has k singular values above max(m, n)·eps times
    the largest, and the largest is 1 / σ_k of the product (not the reciprocal of one the rounding added)."""
    for dtype in ("float64", "float32"):
        fmt = format_named(dtype)
        m, n, k = data.draw(choice(pinv_singular_ops.SIDES), label="sides")
        a, b = (torch.tensor(data.draw(spectral_values(fmt, (rows, k), "separated_singular"), label=name),
                             dtype=torch.float64).reshape(rows, k).to(fmt.torch_dtype)
                for rows, name in ((m, "a"), (n, "b")))
        sigma = torch.linalg.svdvals(torch.linalg.pinv(a @ b.mT)).to(torch.float64)
        product = torch.linalg.svdvals(a.to(torch.float64) @ b.to(torch.float64).mT)
        cutoff = max(m, n) * torch.finfo(fmt.torch_dtype).eps * sigma[0].item()
        assert int((sigma > cutoff).sum()) == k, f"{dtype}: singular values of pinv {sigma.tolist()}, rank {k}"
        assert sigma[0].item() <= 2 / product[k - 1].item(), f"{dtype}: {sigma.tolist()}, product {product.tolist()}"


def test_gradient_by_hand():
    """k = 1: pinv(a bᵀ) = b aᵀ / (|a|² |b|²), whose sum S = Σa Σb / (|a|² |b|²) has ∂S/∂a_i = Σb / (|a|² |b|²) -
    2 a_i S / |a|² and ∂S/∂b_j = Σa / (|a|² |b|²) - 2 b_j S / |b|²: at a = (1, 0), b = (2, 0) (S = 1/2), (-1/2, 1/2) and
    (-1/4, 1/4)."""
    node = Tensor("pinv_singular", (Input(0), Input(1)), _params(), 0)
    _assert_by_hand(node, ((2, 1), (2, 1)), ((1.0, 0.0), (2.0, 0.0)), {0: (-0.5, 0.5), 1: (-0.25, 0.25)})
