"""torch's conventions at kinks, poles, boundaries and saturation, pinned from the op table.

- test_pinned: at each exact point, every spelling gives the pinned value (NaN, ±inf and the sign of
  zero compared exactly), so a change of convention fails naming the op, the point, old and new;
- test_follows_rule: torch agrees with its documented rule; the deviations are the known findings of
  findings.toml, strict xfails here, so a torch that fixes one XPASSes and fails the run;
- test_approach: generated points 1-8 ulps off each point, on each side the op is defined, pass the core
  oracle and tend to the pinned one-sided limit.
Ids are `op/point` (`abs/0`, `clamp/0:lo:0:hi:1`: oracles.core.test_ids, so `-k` can name them), then the
side (`:x0+`) and the dtype.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles.core.check import check_case
from oracles.core.outcomes import assert_gradients_match
from oracles.core.pinning import (
    approach_case,
    approach_point,
    cases,
    exact_gradients,
    limit_mismatches,
    pinned_mismatches,
    rule_mismatches,
    second_order_mismatches,
    table_problems,
    torch_tangents,
)
from oracles.core.unsupported import skipping_missing_kernels
from oracles.reports import findings
from oracles.table.ops import OPS

MAX_APPROACH_ULPS = 8
# A few points per side and dtype: ~300 approach tests share the run's time (`thorough` keeps 6 too,
# more ulps is what the explorer's near mode is for). `device` is the same for every example.
APPROACH_EXAMPLES = min(settings().max_examples, 6)


REGISTERED = findings.registered_nodes(findings.load())


def _marks(test: str, node_param: str) -> list:
    """A registered finding's test is a strict xfail (conftest's hook marks it too; both agree)."""
    finding = REGISTERED.get(f"tests/test_conventions.py::{test}[{node_param}]")
    return [pytest.mark.xfail(strict=True, raises=AssertionError, reason=finding.reason)] if finding else []


def pytest_generate_tests(metafunc):
    dtypes = metafunc.config.gradoracle_dtypes
    if "pinned_case" in metafunc.fixturenames:
        params = []
        for pinned, dtype in cases(dtypes):
            if metafunc.function.__name__ in ("test_approach", "test_forward_mode_approach"):
                for approach in pinned.convention.approaches:
                    node = f"{pinned.id}:{approach.label}-{dtype}"
                    params.append(pytest.param((pinned, approach, dtype), id=node,
                                               marks=_marks(metafunc.function.__name__, node)))
            else:
                node = f"{pinned.id}-{dtype}"
                params.append(pytest.param((pinned, dtype), id=node, marks=_marks(metafunc.function.__name__, node)))
        metafunc.parametrize("pinned_case", params)


def test_table_is_consistent():
    """Points representable in their dtypes, one pinned gradient per tensor argument, approaches that
    move a tensor argument, an open expected value only for the UNDEFINED clause."""
    assert table_problems() == []


def test_pinned(pinned_case, device):
    pinned, dtype = pinned_case
    mismatches = pinned_mismatches(pinned, dtype, device=device)
    assert not mismatches, "convention changed:\n" + "\n".join(mismatches)


def test_follows_rule(pinned_case, device):
    pinned, dtype = pinned_case
    mismatches = rule_mismatches(pinned, dtype, device=device)
    assert not mismatches, "\n".join(mismatches)


@skipping_missing_kernels
def test_second_derivative_is_its_limit(pinned_case, device):
    """Double backward at the convention point, for each tensor argument whose second derivative has one limit
    from both sides (exact, far below the dtype's resolution): torch's value is that limit."""
    pinned, dtype = pinned_case
    if not pinned.elementwise or not OPS[pinned.op].second_order:
        pytest.skip(f"{pinned.op} has no second derivative to judge (a step function, or no op-table entry)")
    mismatches, judged = second_order_mismatches(pinned, dtype, device=device)
    if not judged:
        pytest.skip("the second derivative's one-sided limits differ or are unknown here: nothing is prescribed")
    assert not mismatches, "\n".join(mismatches)


@skipping_missing_kernels
def test_forward_mode_follows_rule(pinned_case, device):
    """The jvp at the convention point, each tensor argument's tangent 1 in turn: the rule's value, as for the
    gradient (a deviation of forward mode alone is a finding of its own)."""
    pinned, dtype = pinned_case
    mismatches = rule_mismatches(pinned, dtype, device=device, forward_mode=True)
    assert not mismatches, "\n".join(mismatches)


@settings(max_examples=APPROACH_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_approach(pinned_case, device, data):
    pinned, approach, dtype = pinned_case
    k = data.draw(st.integers(1, MAX_APPROACH_ULPS), label="ulps off the point")
    spelling = data.draw(st.integers(0, len(pinned.spec.spellings) - 1), label="spelling")
    case = approach_case(pinned, approach_point(pinned, approach, k, dtype), dtype, spelling)
    outcome = check_case(case, device)
    assert_gradients_match(outcome)
    got = tuple(v.torch_value for v in outcome.verdicts)
    mismatches = limit_mismatches(pinned, approach, k, dtype, got, exact_gradients(case))
    assert not mismatches, "one-sided limit changed:\n" + "\n".join(mismatches)


@skipping_missing_kernels
@settings(max_examples=APPROACH_EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_forward_mode_approach(pinned_case, device, data):
    """Forward mode a few ulps off the point tends to the same one-sided limits as the gradient."""
    pinned, approach, dtype = pinned_case
    k = data.draw(st.integers(1, MAX_APPROACH_ULPS), label="ulps off the point")
    point = approach_point(pinned, approach, k, dtype)
    got = torch_tangents(pinned, point, dtype, device)
    mismatches = limit_mismatches(pinned, approach, k, dtype, got, exact_gradients(approach_case(pinned, point, dtype)))
    assert not mismatches, "one-sided limit of forward mode:\n" + "\n".join(mismatches)
