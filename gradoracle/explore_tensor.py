"""Explorer samples of the tensor ops: one random program rooted at a tensor op of the
tensor-op table (oracles.table.tensor_ops), torch's `.grad` judged by the tensor oracle and measured in ulps of
the exact VJP, classified like single-op samples (gradoracle.explore_eval): wrong (outside the enclosure),
inaccurate (more than BAND_ULPS off where the model declines to judge), ok, oracle (a bug of ours).
Within the enclosure an error is rounding the problem itself forces (cancellation in a softmax's sum, a
product's zeros): ok, however many ulps; an error "in ulps of an exact 0" is not measured at all."""

from __future__ import annotations

import numpy as np

from gradoracle.explore_eval import BAND_ULPS, Sample, _finite_or_inf
from oracles.core.expected import OracleInconsistency
from oracles.core.verdict import Verdict
from oracles.numerics.floats import error_in_ulps
from oracles.numerics.rounding import Singular
from oracles.tensor.check import check_tensor_case, tensor_reproducer
from oracles.tensor.oracle import exact_vjp
from oracles.tensor.program import TensorCase


def evaluate_tensor(op: str, case: TensorCase) -> Sample:
    """`point` is every input value, row-major, input after input; the program and shapes are in `note`."""
    point = tuple(v for values in case.values for v in values)
    spelling = getattr(case.program, "spelling", 0)
    sample = Sample(op, case.dtype, point, spelling,
                    note=f"y = {case.source}; shapes {list(case.shapes)}; gradient= {case.upstream}")
    try:
        verdicts = check_tensor_case(case).verdicts
    except OracleInconsistency as exc:
        sample.classification, sample.note = "oracle", f"{sample.note}: {exc}"
        sample.reproducer = tensor_reproducer(case)
        return sample
    try:  # exact values even where the model declines to judge, for the error in ulps
        exact = exact_vjp(case)
    except Singular:
        exact = {}
    for v in verdicts:
        known = v.leaf in exact and v.torch_value is not None  # an element's verdict, not a shape's
        exact_value = float(exact[v.leaf][v.index].mid()) if known else v.exact
        ulps = None
        if exact_value and v.torch_value is not None and np.isfinite(exact_value):
            ulps = error_in_ulps(v.torch_value, exact_value, case.format)
        sample.elements.append({"leaf": v.leaf, "index": list(v.index), "verdict": v.verdict.value,
                                "reason": v.reason, "torch": v.torch_value, "exact": exact_value,
                                "bound": v.bound, "ulps": ulps, "over_bound": _finite_or_inf(v.error_over_bound)})
    sample.classification = classify_judged(sample)
    if sample.classification != "ok":
        sample.reproducer = tensor_reproducer(case)
    return sample


def classify_judged(sample: Sample) -> str:
    """wrong, inaccurate (beyond BAND_ULPS where the model declines to judge) or ok."""
    if any(e["verdict"] == Verdict.WRONG.value for e in sample.elements):
        return "wrong"
    unjudged = [e["ulps"] for e in sample.elements
                if e["verdict"] in (Verdict.UNVERIFIED.value, Verdict.REGISTERED.value) and e["ulps"]]
    return "inaccurate" if any(u > BAND_ULPS for u in unjudged) else "ok"
