"""Sensitivity: the smallest relative error planted in a backward that each checker catches, with the
false-alarm check at zero planted error, float64 and float32, on the same expressions.
Printed as a table at the end of the benchmark run (benchmarks/conftest.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmarks.expressions import chain_expression, grid
from oracles.core.case import GradCase
from oracles.core.check import check_case
from oracles.core.render import run_torch
from oracles.faults.planted import planted_backward_error

PLANTED = tuple(10.0**-k for k in range(1, 16))  # 1e-1 ... 1e-15
SEEDS = (0, 1, 2)


def _cases(dtype: str) -> list[GradCase]:
    return [GradCase(chain_expression(20, seed), ((50,),), (grid(50),), dtype) for seed in SEEDS]


def _overrides(case: GradCase, rel_error: float) -> dict:
    return {case.expr.op: planted_backward_error(case.expr.op, rel_error)} if rel_error else {}


def _ours_catches(case: GradCase, rel_error: float) -> bool:
    return bool(check_case(case, overrides=_overrides(case, rel_error)).wrong)


def _gradcheck_catches(case: GradCase, rel_error: float, fast: bool) -> bool:
    overrides = _overrides(case, rel_error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns about non-double inputs: we measure that
        return not torch.autograd.gradcheck(lambda x: run_torch(case.expr, [x], overrides), tuple(case.make_leaves()),
                                            fast_mode=fast, raise_exception=False)


CHECKERS = {
    "gradoracle": _ours_catches,
    "gradcheck slow": lambda case, e: _gradcheck_catches(case, e, fast=False),
    "gradcheck fast": lambda case, e: _gradcheck_catches(case, e, fast=True),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("checker", list(CHECKERS))
def test_smallest_planted_error_caught(checker, precision, bench_table):
    catches = CHECKERS[checker]
    cases = _cases(precision)
    false_alarm = any(catches(case, 0.0) for case in cases)
    smallest = None
    for rel_error in PLANTED:
        if not all(catches(case, rel_error) for case in cases):
            break
        smallest = rel_error
    bench_table.record_sensitivity(checker, precision, smallest, false_alarm)
    if checker == "gradoracle":
        assert not false_alarm, "gradoracle flagged a correct gradient"
        assert smallest is not None
