"""Examples per second of the suite's main properties, in one run: each property's strategy and check, run by
Hypothesis for the ci profile's 40 examples per round, against the draws alone (Hypothesis generating and the
strategies building cases, no torch and no oracle): the rest is the check (torch's forward and backward and the
oracle). Every round draws other examples (a seed per round), so the oracle's per-expression caches are as
cold as in a test run, where examples differ, and its per-op caches as warm. Printed at the end as a table
(benchmarks/conftest.py). `tox -e bench -- -k throughput`."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st

from oracles.core.check import check_case
from oracles.tensor.check import check_tensor_case
from strategies import compositions, grad_cases, polynomials
from strategies.tensor_programs import tensor_cases
from strategies.whole_domain import whole_domain_cases

EXAMPLES = 40  # the ci profile's max_examples
_SEEDS = itertools.count()


def _composition(dtype):
    return grad_cases(dtype, lambda n: compositions(n, max_depth=4)), check_case


def _polynomial(dtype):
    return grad_cases(dtype, polynomials), check_case


def _whole_domain_atan2(dtype):
    return whole_domain_cases("atan2", dtype).map(lambda drawn: drawn.case), check_case


def _tensor_softmax(dtype):
    return tensor_cases(dtype, root="softmax"), check_tensor_case


PROPERTIES = {
    "composition (test_composition_gradient)": _composition,
    "polynomial (test_polynomial_gradient)": _polynomial,
    "atan2 whole domain (test_op_whole_domain)": _whole_domain_atan2,
    "softmax programs (test_tensor_op_gradient)": _tensor_softmax,
}


def _run(cases, check) -> int:
    """Run `EXAMPLES` examples of a new seed (generation only: no shrinking, no database); the count run."""
    ran = []

    @seed(next(_SEEDS))
    @settings(max_examples=EXAMPLES, database=None, deadline=None, phases=[Phase.generate])
    @given(data=st.data())
    def run(data):
        case = data.draw(cases, label="case")
        if check is not None:
            check(case)
        ran.append(case)

    run()
    return len(ran)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("part", ["draw and check", "draw only"])
@pytest.mark.parametrize("prop", list(PROPERTIES))
def test_property_throughput(benchmark, prop, part, dtype, bench_table):
    cases, check = PROPERTIES[prop](dtype)
    counted = benchmark.pedantic(_run, args=(cases, check if part == "draw and check" else None),
                                 rounds=3, iterations=1)
    assert counted > 0
    bench_table.record_throughput(prop, dtype, part, counted / benchmark.stats.stats.median)
