"""torch's linear algebra errors in a tensor check (oracles/tensor/check.py): no verdict where the model foresaw
that nothing can be said (the entries of the matrix overflow), a failure anywhere else."""

from __future__ import annotations

import pytest
import torch

from oracles.core.verdict import Verdict
from oracles.table.tensor_ops import CallParams
from oracles.tensor.check import check_tensor_case
from oracles.tensor.program import Input, Tensor, TensorCase

# Found by the thorough run: a @ b.mT has entries near 3e308, past float64's range, and the SVD of pinv raises
# "failed to converge" on the infinities.
HUGE_A = (7.851612323774385e+153, -6.693177718627344e+153, 5.1485982450979574e+153, 1.7591044004084688e+154,
          -1.6904564238071625e+154, -1.3064568046936067e+154, 1.2270825817483465e+154, -2.767371556740152e+153,
          5.1485982450979574e+153, 1.7591044004084688e+154, -1.4029930217891934e+154, -1.441607508627428e+154)
HUGE_B = (1.2270825817483465e+154, -2.767371556740152e+153, 5.1485982450979574e+153, 1.7591044004084688e+154,
          -1.4029930217891934e+154, -1.441607508627428e+154) * 2


def _pinv_case(a, b) -> TensorCase:
    return TensorCase(Tensor("pinv_singular", (Input(0), Input(1)), CallParams(()), 0), ((2, 3, 2), (2, 3, 2)),
                      (tuple(a), tuple(b)), "float64")


def test_an_svd_that_fails_where_the_entries_overflow_leaves_every_element_unverified():
    outcome = check_tensor_case(_pinv_case(HUGE_A, HUGE_B))
    assert outcome.verdicts and {(v.verdict, v.reason) for v in outcome.verdicts} == {(Verdict.UNVERIFIED, "overflow")}


def test_a_linear_algebra_error_on_an_ordinary_matrix_is_raised():
    """The same error where the model judges every element: torch failed, the check fails."""
    def raising(args, params):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge (planted)")

    ordinary = _pinv_case([v / 1e154 for v in HUGE_A], [v / 1e154 for v in HUGE_B])
    assert any(v.verdict is Verdict.VERIFIED for v in check_tensor_case(ordinary).verdicts)
    with pytest.raises(torch.linalg.LinAlgError):
        check_tensor_case(ordinary, overrides={"pinv_singular": raising})
