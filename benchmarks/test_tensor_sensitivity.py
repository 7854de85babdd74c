"""Sensitivity on ops with non-diagonal Jacobians: the smallest relative error planted in a tensor op's
backward (softmax, logsumexp, prod, matmul, cumsum; oracles.faults.derivatives.planted_tensor_backward_error)
that each checker catches on every program, and the false-alarm check at zero, float64 and float32.
Rows "... (tensor ops)" of the sensitivity table printed at the end of the benchmark run."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmarks.expressions import grid
from oracles.core.case import numel
from oracles.core.expr import Apply, Var
from oracles.faults.derivatives import planted_tensor_backward_error
from oracles.table.tensor_ops import MatmulParams, ReductionParams, ScanParams
from oracles.tensor.check import check_tensor_case
from oracles.tensor.program import Input, Map, Tensor, TensorCase, run_program, shape_of

PLANTED = tuple(10.0**-k for k in range(1, 16))
SIN = Apply("sin", (Var(0),), 0)
# (program, input shapes): each tensor op on sin of a 4 x 5 input (matmul: 4 x 5 @ 5 x 3)
PROGRAMS = [
    (Tensor("softmax", (Map(SIN, (Input(0),)),), ScanParams(dim=1)), ((4, 5),)),
    (Tensor("logsumexp", (Map(SIN, (Input(0),)),), ReductionParams(dim=0)), ((4, 5),)),
    (Tensor("prod", (Map(SIN, (Input(0),)),), ReductionParams(dim=1)), ((4, 5),)),
    (Tensor("cumsum", (Map(SIN, (Input(0),)),), ScanParams(dim=1)), ((4, 5),)),
    (Tensor("matmul", (Map(SIN, (Input(0),)), Input(1)), MatmulParams()), ((4, 5), (5, 3))),
]
GRADIENT = tuple((-1.0) ** k * (1 + k % 3) / 4 for k in range(20))  # a fixed non-uniform gradient=


def _cases(dtype: str) -> list[TensorCase]:
    """Inputs on a grid of multiples of 1/64 in [-2, 2] (exact in both dtypes), a fixed gradient=."""
    cases = []
    for program, shapes in PROGRAMS:
        values = tuple(grid(numel(s)) for s in shapes)
        out = shape_of(program, shapes)
        cases.append(TensorCase(program, shapes, values, dtype, GRADIENT[:numel(out)]))
    return cases


def _overrides(case: TensorCase, rel_error: float) -> dict:
    return {case.program.op: planted_tensor_backward_error(case.program.op, rel_error)} if rel_error else {}


def _ours_catches(case: TensorCase, rel_error: float) -> bool:
    return bool(check_tensor_case(case, overrides=_overrides(case, rel_error)).wrong)


def _gradcheck_catches(case: TensorCase, rel_error: float, fast: bool) -> bool:
    overrides = _overrides(case, rel_error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns about non-double inputs: we measure that
        return not torch.autograd.gradcheck(lambda *xs: run_program(case.program, list(xs), overrides),
                                            tuple(case.make_leaves()), fast_mode=fast, raise_exception=False)


CHECKERS = {
    "gradoracle": _ours_catches,
    "gradcheck slow": lambda case, e: _gradcheck_catches(case, e, fast=False),
    "gradcheck fast": lambda case, e: _gradcheck_catches(case, e, fast=True),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("checker", list(CHECKERS))
def test_smallest_planted_tensor_error_caught(checker, precision, bench_table):
    catches = CHECKERS[checker]
    cases = _cases(precision)
    false_alarm = any(catches(case, 0.0) for case in cases)
    smallest = None
    for rel_error in PLANTED:
        if not all(catches(case, rel_error) for case in cases):
            break
        smallest = rel_error
    bench_table.record_sensitivity(f"{checker} (tensor ops)", precision, smallest, false_alarm)
    if checker == "gradoracle":
        assert not false_alarm, "gradoracle flagged a correct gradient"
        assert smallest is not None


# ------------------------------------------------------------------ cost, in the same run as the floor
def _clear_caches() -> None:
    """Cold start: the per-shape exact Jacobians and compiled SymPy programs are derived again."""
    import sympy

    from oracles.numerics.exact import compile_sympy
    from oracles.tensor.oracle import op_jacobian, op_sympy

    op_sympy.cache_clear()
    op_jacobian.cache_clear()
    compile_sympy.cache_clear()
    sympy.core.cache.clear_cache()


@pytest.mark.parametrize("index", range(len(PROGRAMS)))
@pytest.mark.parametrize("method", ["torch_forward_backward", "gradoracle", "gradoracle_warm", "gradcheck_slow",
                                    "gradcheck_fast"])
def test_tensor_check_cost(benchmark, method, index, bench_table):
    case = _cases("float64")[index]
    if method == "torch_forward_backward":
        def run():
            leaves = case.make_leaves()
            run_program(case.program, leaves).backward(torch.tensor(case.upstream, dtype=torch.float64)
                                                       .reshape(case.output_shape))
    elif method.startswith("gradoracle"):
        cold = method == "gradoracle"

        def run():  # warm: a shape seen before (a property test draws the same few shapes again and again)
            if cold:
                _clear_caches()
            assert not check_tensor_case(case).wrong
    else:
        def run():
            assert not _gradcheck_catches(case, 0.0, fast=method == "gradcheck_fast")
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable: the check ran once, untimed
        bench_table.record_tensor(method, case.source, benchmark.stats.stats.median)
