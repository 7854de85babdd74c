"""Explorer samples of second derivatives: one op of the table at one point, torch's
double backward `grad(grad(y, xs, create_graph=True), xs)` with unit weights (the Hessian's row sums)
judged by the higher-order oracle (oracles.higher.nested), classified like the tensor-op samples
(gradoracle.explore_tensor.classify_judged)."""

from __future__ import annotations

from gradoracle.explore_eval import Sample, _finite_or_inf
from gradoracle.explore_tensor import classify_judged
from oracles.core.expected import OracleInconsistency
from oracles.core.pinning import single_op_case
from oracles.higher.nested import check_nested, nested_reproducer
from oracles.numerics.floats import error_in_ulps

NOTE = "second derivatives: grad(grad(y, xs, create_graph=True), xs), unit weights"


def evaluate_second(op: str, dtype: str, point: tuple[float, ...], spelling: int = 0) -> Sample:
    case = single_op_case(op, point, dtype, spelling)
    levels = [[(1.0,) if i in case.used else None for i in range(len(case.shapes))]]
    sample = Sample(op, dtype, point, spelling, note=NOTE)
    try:
        outcome, _ = check_nested(case, None, levels)
    except OracleInconsistency as exc:
        sample.classification, sample.note = "oracle", f"{NOTE}: {exc}"
        sample.reproducer = nested_reproducer(case, None, levels)
        return sample
    for v in outcome.verdicts:
        ulps = None
        if v.exact and v.torch_value is not None:
            ulps = error_in_ulps(v.torch_value, v.exact, case.format)
        sample.elements.append({"leaf": v.leaf, "verdict": v.verdict.value, "reason": v.reason,
                                "torch": v.torch_value, "exact": v.exact, "bound": v.bound, "ulps": ulps,
                                "over_bound": _finite_or_inf(v.error_over_bound)})
    sample.classification = classify_judged(sample)
    if sample.classification != "ok":
        sample.reproducer = nested_reproducer(case, None, levels)
    return sample
