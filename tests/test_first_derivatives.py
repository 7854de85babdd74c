"""The core property: torch's `.grad` equals SymPy's exact derivative within the rounding model,
for every op of the table, random compositions of them, and multivariate polynomials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH
from oracles.core.check import check_case
from oracles.core.outcomes import assert_gradients_match
from oracles.reports import findings
from oracles.table.ops import OPS
from strategies import compositions, grad_cases, polynomials
from strategies.whole_domain import off_the_plan, whole_domain_cases

REGISTRY = findings.load()


def _check(data, verdict_log, device, cases):
    assert_gradients_match(check_case(data.draw(cases, label="case"), device), verdict_log)


@pytest.mark.parametrize("op", list(OPS))
@FIXTURE_HEALTH
@given(data=st.data())
def test_op_gradient(op, dtype, device, verdict_log, data):
    """`op` at the root, each argument a random subtree inside the op's domain."""
    skip = OPS[op].skip_reason("test_op_gradient", dtype)
    if skip:
        pytest.skip(skip)
    _check(data, verdict_log, device, grad_cases(dtype, lambda n: compositions(n, max_depth=2, root=op)))


@pytest.mark.parametrize("op", list(OPS))
@FIXTURE_HEALTH
@given(data=st.data())
def test_op_whole_domain(op, dtype, device, verdict_log, data):
    """`op` applied to inputs anywhere in its domain: every binade of the dtype, 1 ulp to far off every
    edge and special point (strategies/whole_domain.py); the run report records what was shown."""
    skip = OPS[op].skip_reason("test_op_whole_domain", dtype)
    if skip:  # torch itself cannot be run over the whole domain (the entry says why)
        pytest.skip(skip)
    drawn = data.draw(whole_domain_cases(op, dtype), label="case")
    stray = off_the_plan(OPS[op], drawn.case.format, drawn.point)
    assert stray is None, f"the whole-domain strategy broke its promise: {stray}"
    verdict_log.show(drawn.case, drawn.avoided)
    outcome = findings.excuse_registered_regions(check_case(drawn.case, device), REGISTRY)
    assert_gradients_match(outcome, verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_composition_gradient(dtype, device, verdict_log, data):
    _check(data, verdict_log, device, grad_cases(dtype, lambda n: compositions(n, max_depth=4)))


@FIXTURE_HEALTH
@given(data=st.data())
def test_polynomial_gradient(dtype, device, verdict_log, data):
    _check(data, verdict_log, device, grad_cases(dtype, polynomials))
