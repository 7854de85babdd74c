"""The core property: torch's `.grad` equals SymPy's exact derivative within the rounding model,
for every op of the table, random compositions of them, and multivariate polynomials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURE_HEALTH
from oracles.core.check import check_case
from oracles.core.outcomes import assert_gradients_match
from oracles.table.ops import OPS
from strategies import compositions, grad_cases, polynomials


def _check(data, verdict_log, device, cases):
    assert_gradients_match(check_case(data.draw(cases, label="case"), device), verdict_log)


@pytest.mark.parametrize("op", list(OPS))
@FIXTURE_HEALTH
@given(data=st.data())
def test_op_gradient(op, dtype, device, verdict_log, data):
    """`op` at the root, each argument a random subtree inside the op's domain."""
    _check(data, verdict_log, device, grad_cases(dtype, lambda n: compositions(n, max_depth=2, root=op)))


@FIXTURE_HEALTH
@given(data=st.data())
def test_composition_gradient(dtype, device, verdict_log, data):
    _check(data, verdict_log, device, grad_cases(dtype, lambda n: compositions(n, max_depth=4)))


@FIXTURE_HEALTH
@given(data=st.data())
def test_polynomial_gradient(dtype, device, verdict_log, data):
    _check(data, verdict_log, device, grad_cases(dtype, polynomials))
