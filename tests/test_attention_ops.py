"""scaled_dot_product_attention (oracles.table.attention_ops): gradients worked out by hand, and a backward off by a
relative 1e-12 in float64 is caught.

Its gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient), its
forward against torch's by tests/test_loss_ops.py (test_forward_is_inside_the_model).
"""

from __future__ import annotations

import pytest

from oracles.core.outcomes import assert_gradients_match
from oracles.table import attention_ops
from oracles.table.shape_ops import Mask, _params
from oracles.tensor.check import check_tensor_case
from oracles.tensor.program import Input, Tensor, TensorCase
from tests.test_loss_ops import _assert_by_hand
from tests.test_tensor_ops import assert_planted_error_caught

ATTENTION = attention_ops.NAMES[0]
_DEFAULTS = {"attn_mask": None, "is_causal": False, "scale": None}


def _node(**params) -> Tensor:
    """The attention of x0, x1, x2: without keywords at torch's defaults, else every parameter named."""
    return Tensor(ATTENTION, (Input(0), Input(1), Input(2)), _params(**(_DEFAULTS | params)), 1 if params else 0)


@pytest.mark.parametrize("lead", [(), (1, 1)], ids=["math", "flash"])
def test_attention_of_equal_scores_by_hand(lead):
    """One query 0 against keys 1 and -1 (E = 1, scale 1): both scores 0, weights 1/2, output (1 + 3) / 2 = 2.
    d/dv = the weights; d/dq = scale Σ w_j (v_j - out) k_j = (1/2)(-1)(1) + (1/2)(1)(-1) = -1; d/dk_j = scale
    w_j (v_j - out) q = 0. As matrices (the math path) and batched (the flash kernel)."""
    shapes = (lead + (1, 1), lead + (2, 1), lead + (2, 1))
    _assert_by_hand(_node(), shapes, ((0.0,), (1.0, -1.0), (1.0, 3.0)), {0: (-1.0,), 1: (0.0, 0.0), 2: (0.5, 0.5)})


def test_causal_first_query_sees_only_the_first_key():
    """is_causal: query 0 (= 5) attends to key 0 alone (weight 1, output v_0 whatever the scores), query 1 (= 0) to
    both keys with scores 0: weights 1/2, output 2. Of the output's sum: d/dv_0 = 1 + 1/2,
    d/dv_1 = 1/2; d/dq_0 = 0 (one weight); d/dq_1 = Σ w_j (v_j - out_1) k_j = (1/2)(-1)(1) + (1/2)(1)(3) = 1;
    d/dk: query 0's share is 0, query 1's is w_j (v_j - out_1) q_1 = 0."""
    _assert_by_hand(_node(is_causal=True), ((2, 1), (2, 1), (2, 1)), ((5.0, 0.0), (1.0, 3.0), (1.0, 3.0)),
                    {0: (0.0, 1.0), 1: (0.0, 0.0), 2: (1.5, 0.5)})


def test_masked_key_gets_no_gradient():
    """A boolean mask leaving out key 1 of query 0: its weight is exactly 0, so v_1 and k_1 get nothing from
    query 0 (one query here: exactly 0), and the output is v_0."""
    mask = Mask(((True, False),))
    _assert_by_hand(_node(attn_mask=mask), ((1, 1), (2, 1), (2, 1)), ((2.0,), (1.0, 3.0), (1.0, 3.0)),
                    {0: (0.0,), 1: (0.0, 0.0), 2: (1.0, 0.0)})


def test_an_attention_backward_off_by_1e_12_is_caught(device):
    """torch's own backward times 1 + 1e-12 (float64): the products and the softmax leave no room for it."""
    assert_planted_error_caught(ATTENTION, device, 1e-12)


FLASH_CASES = [(scale, precision) for scale in (-0.5, 0.0)
               for precision in ("float64", "float32", "bfloat16", "float16")]


@pytest.mark.parametrize(("scale", "precision"), FLASH_CASES,
                         ids=[f"sdpa-flash/causal:scale:{s}-{d}" for s, d in FLASH_CASES])
def test_flash_causal_attention_with_a_scale_not_above_zero(scale, precision, dtypes, device):
    """Batched (1, 1, L, E) inputs take the flash-attention CPU kernel; with is_causal it fills the scores above the
    diagonal with -inf before multiplying them by the scale, which makes them +inf (scale < 0) or NaN (scale 0), and
    the rows that mask a key NaN. The function is finite: query 0 (= 1) sees key 0 alone (output v_0 = 1), query 1
    (= 2) both keys (1, -1), scores ∓1 for scale -1/2; the 2-D inputs' math path gives it."""
    if precision not in dtypes:
        pytest.skip(f"{precision} is not among --dtypes")
    side = (1, 1, 2, 1)
    case = TensorCase(_node(is_causal=True, scale=scale), (side,) * 3, ((1.0, 2.0), (1.0, -1.0), (1.0, 3.0)), precision)
    assert_gradients_match(check_tensor_case(case, device))
