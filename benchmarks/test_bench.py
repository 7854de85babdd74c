"""Cost of a gradient check, in one run: torch's own forward+backward (the floor), gradoracle's full
check (SymPy derivation + rigorous evaluation + comparison, caches cleared every round), and
torch.autograd.gradcheck in slow and fast mode on the same expressions, in float64 and float32 (gradcheck in
float64 only: it rejects correct float32 gradients).
`tox -e bench` or `python -m pytest benchmarks --benchmark-only`; the ratio table per checked gradient
entry is printed at the end (benchmarks/conftest.py)."""

from __future__ import annotations

import pytest
import sympy
import torch

from benchmarks.expressions import chain_expression, grid
from oracles.core.case import GradCase
from oracles.core.check import check_case
from oracles.core.render import derivative, run_torch, to_sympy
from oracles.numerics.exact import compile_sympy

NODES = (5, 20, 60)
ELEMENTS = (1, 100, 1000, 10_000)


def _rounds(method: str, elements: int) -> dict:
    """Fewer rounds where one takes seconds: gradcheck's slow mode at 10,000 elements forms a 10,000 x 10,000
    Jacobian twice (20,000 forward passes and 10,000 backward passes), tens of seconds a round. torch's own
    forward+backward, the floor of every ratio, always gets a warm-up round (a kernel's first call is slow)."""
    if elements >= 10_000 and method != "torch_forward_backward":
        return dict(rounds=1, warmup_rounds=0)
    return dict(rounds=3 if elements >= 1000 else 5, warmup_rounds=1)


def _case(nodes: int, elements: int, dtype: str) -> GradCase:
    return GradCase(chain_expression(nodes), ((elements,),), (grid(elements),), dtype)


def _clear_oracle_caches() -> None:
    """Every round starts cold: our caches and SymPy's global cache are emptied, except the op table's
    per-op partial derivatives (oracles.core.chain_rule.op_program, and the fast pass's interval programs of the
    same forms), derived once per session like a table."""
    for cached in (to_sympy, derivative, compile_sympy):
        cached.cache_clear()
    sympy.core.cache.clear_cache()


def _torch_fn(case):
    return lambda x: run_torch(case.expr, [x])


def _leaf(case):
    return case.make_leaves()[0]


@pytest.mark.parametrize("elements", ELEMENTS)
@pytest.mark.parametrize("nodes", NODES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["torch_forward_backward", "gradoracle", "gradcheck_slow", "gradcheck_fast"])
def test_gradient_check_cost(benchmark, method, dtype, nodes, elements, bench_table):
    if method.startswith("gradcheck") and dtype != "float64":
        pytest.skip("gradcheck rejects correct float32 gradients (the sensitivity benchmark)")
    case = _case(nodes, elements, dtype)
    if method == "torch_forward_backward":
        def run():
            x = _leaf(case)
            run_torch(case.expr, [x]).sum().backward()
            return x.grad
    elif method == "gradoracle":
        def run():
            _clear_oracle_caches()
            outcome = check_case(case)
            assert not outcome.wrong
            return outcome
    else:
        fast = method == "gradcheck_fast"

        def run():
            assert torch.autograd.gradcheck(_torch_fn(case), (_leaf(case),), fast_mode=fast)
    benchmark.pedantic(run, iterations=1, **_rounds(method, elements))
    if benchmark.stats is not None:  # None under --benchmark-disable: the check ran once, untimed
        bench_table.record(method, dtype, nodes, elements, benchmark.stats.stats.median)
