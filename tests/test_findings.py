"""Each registered region finding holds: somewhere in its region torch is beyond the accuracy band of the
exact gradient (a strict xfail; a torch that fixes it XPASSes and fails the run)."""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from gradoracle.explore_eval import BAND_ULPS
from oracles.core.pinning import (
    Pinned,
    exact_gradients,
    single_op_case,
    torch_gradients,
)
from oracles.numerics.dtypes import format_named
from oracles.numerics.floats import error_in_ulps, from_ordinal, to_ordinal
from oracles.reports import findings
from oracles.table.conventions import Rule, conv

REGISTRY = findings.load()


def _region_params(dtypes):
    params = []
    nodes = findings.registered_nodes(REGISTRY)
    for finding in REGISTRY:
        if not finding.regions:
            continue
        for dtype in finding.dtypes:
            node = f"tests/test_findings.py::test_region[{finding.id}-{dtype}]"
            if dtype in dtypes and node in nodes:  # a region test exists to show a registered finding
                marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=nodes[node].reason)]
                params.append(pytest.param((finding, dtype), id=f"{finding.id}-{dtype}", marks=marks))
    return params


def pytest_generate_tests(metafunc):
    if "region_case" in metafunc.fixturenames:
        metafunc.parametrize("region_case", _region_params(metafunc.config.gradoracle_dtypes))


# ------------------------------------------------------------------ region findings
def _values_in(interval, fmt):
    """Floats of `fmt` in [low, high], uniform over the floats (so over the binades)."""
    low, high = (fmt.round(v) for v in interval)
    lo_ord, hi_ord = to_ordinal(low, fmt), to_ordinal(high, fmt)
    lo_ord += 1 if low < interval[0] else 0
    hi_ord -= 1 if high > interval[1] else 0
    return st.integers(lo_ord, hi_ord).map(lambda o: from_ordinal(o, fmt))


# Region tests are strict xfails: no shrinking (its only use would be a smaller counterexample of a
# known finding), few examples (torch is wrong across the region, the first few points show it).
@settings(max_examples=min(settings().max_examples, 10), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(data=st.data())
def test_region(region_case, data):
    """Somewhere in a registered region torch is beyond the accuracy band (BAND_ULPS) of the exact
    gradient: the finding holds. A torch that fixes it passes here, and the strict xfail fails the run."""
    finding, dtype = region_case
    fmt = format_named(dtype)
    region = data.draw(st.sampled_from(finding.regions), label="region")
    intervals = region.args_for(dtype)
    args = tuple(data.draw(_values_in(interval, fmt), label=f"x{i}") for i, interval in enumerate(intervals))
    at = args + region.constants
    case = single_op_case(finding.op, at, dtype)
    pinned = Pinned(finding.op, conv(at, (0.0,) * len(args), Rule.UNDEFINED, (None,) * len(args), "region"))
    got = torch_gradients(pinned, at, dtype)
    exact = exact_gradients(case)
    errors = [error_in_ulps(g, e, fmt) for g, e in zip(got, exact) if e is not None and abs(e) <= fmt.max_finite]
    assert all(err <= BAND_ULPS for err in errors), (
        f"{finding.op} at {at}, {dtype}: torch {got}, exact {exact}: {max(errors):.3g} ulps "
        f"(band {BAND_ULPS}) - finding {finding.id}: {finding.where}")
