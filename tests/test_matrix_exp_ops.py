"""matrix_exp (oracles.table.matrix_exp_ops). Its gradients are checked like every tensor op's by
tests/test_tensor_ops.py (test_tensor_op_gradient); its forward of every spelling inside the model and a backward off by
a relative 1e-12 caught, by tests/test_linalg_ops.py (the entry is one of linalg_ops.NAMES). Here:
- every Taylor approximant of the model is exp within the rounding at the top of its norm interval (which shows its
  coefficients are the paper's: T8 with torch 2.13's x7 is 1e-10 off there);
- torch's backward is mexp of the block matrix [[Aᵀ, G], [0, Aᵀ]] (the model's reading of FunctionsManual.cpp);
- torch's forward and gradient at norms in the intervals of T1, T2, T4 and T12, which the property tests' matrices
  (row and column sums of at least 1) do not reach;
- a gradient worked out by hand;
- the two registered findings, pinned at explicit points (strict xfails from oracles/findings.toml).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.core.outcomes import assert_gradients_match
from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table import matrix_exp_ops
from oracles.table.shape_ops import _params
from oracles.tensor.check import check_tensor_case
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_spectral_ops import _assert_by_hand

DEGREES = {1: 0, 2: 1, 4: 2, 8: 3, 12: 4, 18: 5}  # the index of each degree's θ


@pytest.mark.parametrize("degree", list(DEGREES))
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_approximant_is_exp_at_the_top_of_its_interval(degree, precision):
    """T_m(θ_m) of the 1 x 1 matrix θ_m, in the model, lies within 8 units of the dtype of exp(θ_m): the θ are chosen so
    that the truncation's backward error is below u; a wrong coefficient of degree m or less is off by far more."""
    fmt = format_named(precision)
    theta = fmt.round(matrix_exp_ops.THETAS[precision][DEGREES[degree]])
    model = matrix_exp_ops._approximant(RoundingModel(fmt), degree, np.array([[arb(theta)]], dtype=object))[0, 0]
    exact = arb(theta).exp()
    allowed = exact * (1 + arb(0, 8 * fmt.unit_roundoff))
    assert model.overlaps(allowed), f"T{degree}({theta}) = {model.str(20)}, exp = {exact.str(20)}"


def test_t8_with_torchs_x7_is_not_exp():
    """The x7 torch 2.13 uses, (89 - √177) / (5040 x3), instead of the paper's (89 - √177) / (5040 x3²): T8 at the top
    of its float64 interval is then off by 1e-10, six orders beyond the rounding (finding matrix-exp-t8-coefficient)."""
    x = matrix_exp_ops.t8_coefficients()
    wrong = x["x7"] * x["x3"]
    assert abs(float((wrong - x["x7"]).mid())) > 0.01
    theta = matrix_exp_ops.THETAS["float64"][3]
    a = arb(theta)
    a4 = a * a * (x["x1"] * a + x["x2"] * a * a)
    difference = (wrong - x["x7"]) * (x["x3"] * a * a + a4) * a4
    assert abs(float(difference.mid())) > 1e-11


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("values", [(0.5, 1.0, -0.25, 2.0), (1e-3, 2e-3, -1e-3, 5e-4), (3.0, -2.0, 1.5, 0.25)])
def test_backward_is_mexp_of_the_block_matrix(values, precision):
    """autograd's gradient is bit for bit the upper right block of torch.linalg.matrix_exp([[Aᵀ, G], [0, Aᵀ]])."""
    dtype = format_named(precision).torch_dtype
    a = torch.tensor(values, dtype=dtype).reshape(2, 2)
    g = torch.tensor([0.25, -1.0, 2.0, 0.5], dtype=dtype).reshape(2, 2)
    leaf = a.clone().requires_grad_()
    torch.matrix_exp(leaf).backward(g)
    block = torch.zeros(4, 4, dtype=dtype)
    block[:2, :2] = block[2:, 2:] = a.mT
    block[:2, 2:] = g
    assert torch.equal(leaf.grad, torch.linalg.matrix_exp(block)[:2, 2:])


def _scaled_into(values, norm: float, degree: int, precision: str) -> tuple[float, ...]:
    """`values` times the power of two that puts `norm` into (θ_m / 2, θ_m], inside T_m's interval (θ_m / 2 is above
    the interval's lower end for every degree but 1, whose interval starts at 0)."""
    theta = matrix_exp_ops.THETAS[precision][DEGREES[degree]]
    return tuple(v * 2.0 ** math.floor(math.log2(theta / norm)) for v in values)


def _block_norm(a: np.ndarray, g: np.ndarray) -> float:
    """The 1-norm of [[Aᵀ, G], [0, Aᵀ]]: its columns are Aᵀ's over 0 (A's row sums) and G's over Aᵀ's."""
    rows = np.abs(a).sum(axis=1)
    return float(max(rows.max(), (np.abs(g).sum(axis=0) + rows).max()))


@scaled(3)
@given(data=st.data())
def test_small_norms_take_the_other_approximants(data, verdict_log):
    """A 2 x 2 or 3 x 3 matrix (and an upstream gradient) scaled by a power of two into the interval of T1, T2, T4 or
    T12: torch's forward lies in the model's enclosure, and its gradient, whose block matrix is scaled into the same
    interval, is verified element by element."""
    degree = data.draw(st.sampled_from([1, 2, 4, 12]), label="degree")
    n = data.draw(st.sampled_from([2, 3]), label="side")
    for precision in ("float64", "float32"):
        fmt = format_named(precision)
        values = data.draw(st.lists(st.sampled_from([1.0, -0.5, 0.75, -1.25, 0.375, 2.0]), min_size=n * n,
                                    max_size=n * n), label="A")
        upstream = data.draw(st.lists(st.sampled_from([1.0, -0.25, 0.5, 1.5]), min_size=n * n, max_size=n * n),
                             label="G")
        a = np.array(values).reshape(n, n)
        forward = _scaled_into(values, float(np.abs(a).sum(axis=0).max()), degree, precision)
        tensor = torch.tensor(forward, dtype=fmt.torch_dtype).reshape(n, n)
        model = matrix_exp_ops._forward(RoundingModel(fmt), [np.array([arb(v) for v in forward],
                                                                       dtype=object).reshape(n, n)], None)
        got = torch.matrix_exp(tensor).to(torch.float64)
        for index in np.ndindex(n, n):
            assert model[index].contains(arb(got[index].item())), f"T{degree}, {precision}: {forward} at {index}"
        scaled_both = _scaled_into(values + upstream, _block_norm(a, np.array(upstream).reshape(n, n)), degree,
                                   precision)
        case = TensorCase(Tensor("matrix_exp", (Input(0),), _params(), 0), ((n, n),), (scaled_both[:n * n],),
                          precision, scaled_both[n * n:])
        assert_gradients_match(check_tensor_case(case, "cpu"), verdict_log)


def test_gradient_by_hand_of_a_nilpotent_matrix():
    """N = [[0, 1], [0, 0]]: M = [[Nᵀ, G], [0, Nᵀ]] has M⁴ = 0, so the gradient of sum(exp(A)) at N is
    G + (NᵀG + GNᵀ) / 2 + NᵀGNᵀ / 6 with G the ones: [[3/2, 1], [13/6, 3/2]]."""
    node = Tensor("matrix_exp", (Input(0),), _params(), 0)
    _assert_by_hand(node, ((2, 2),), ((0.0, 1.0, 0.0, 0.0),), {0: (1.5, 1.0, 13 / 6, 1.5)})


# ------------------------------------------------------------------ the findings, pinned
T8_POINTS = {"float64": ((1e-3, 2e-3, -1e-3, 5e-4), (1e-3, 0.0, 0.0, 2e-3)),
             "float32": ((0.2, 0.1, -0.1, 0.05), (0.2, 0.0, 0.0, 0.1))}


@pytest.mark.parametrize("precision", list(T8_POINTS), ids=[f"matrix_exp/t8-{d}" for d in T8_POINTS])
def test_gradient_where_the_block_matrix_takes_t8(precision, dtypes, device, verdict_log):
    """A 2 x 2 A and an upstream G small enough that [[Aᵀ, G], [0, Aᵀ]] has a 1-norm in T8's interval (float64: 0.0045,
    float32: 0.5): torch's gradient is off by 1e-11 (float64) and 3e-5 (float32) relative, far outside the model."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    a, g = T8_POINTS[precision]
    case = TensorCase(Tensor("matrix_exp", (Input(0),), _params(), 0), ((2, 2),), (a,), precision, g)
    assert_gradients_match(check_tensor_case(case, device), verdict_log)


HALF = ("bfloat16", "float16")


@pytest.mark.parametrize("precision", HALF, ids=[f"matrix_exp/half-{d}" for d in HALF])
def test_half_precision_gradient_of_a_scalar_matrix(precision, dtypes):
    """A = I / 2 commutes with everything: exp(A) = √e I and the gradient of its sum is √e in every element (the
    Fréchet derivative at a multiple of I is e^a times the direction); within the dtype's rounding, 2 units."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    fmt = format_named(precision)
    leaf = (torch.eye(2, dtype=fmt.torch_dtype) / 2).requires_grad_()
    torch.matrix_exp(leaf).sum().backward()
    got = leaf.grad.to(torch.float64).reshape(-1).tolist()
    assert all(abs(v - math.exp(0.5)) <= 2 * fmt.unit_roundoff * math.exp(0.5) for v in got), (
        f"matrix_exp, {precision}: grad {got}, exact {math.exp(0.5)}")
