"""One explorer sample: torch's gradient of a single op at one point, judged three ways and classified.

- the core oracle's verdict (oracles.core.check): outside the rounding model's enclosure is **wrong**;
- the error against SymPy's exact derivative in ulps of the dtype, computed even where the model
  declines to judge (an intermediate overflow, a near-singular point): more than BAND_ULPS is
  **inaccurate** (a loss of accuracy beyond the band, inside or beyond the model's reach);
- within CONVENTION_RADIUS ulps of a pinned convention point, an inaccuracy is the **convention**
  itself (tests/test_conventions.py pins it), not a new finding;
- where the op's own exact value overflows the dtype, an inaccurate gradient is out of **range**: torch
  returns inf for the value, and nothing finite can be asked of the gradient.
An exact derivative outside the model's enclosure is an **oracle** problem (a bug of this suite).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from oracles.core.check import check_case
from oracles.core.expected import OracleInconsistency
from oracles.core.pinning import exact_gradients, exact_value, single_op_case
from oracles.core.report import grad_reproducer
from oracles.core.verdict import Verdict
from oracles.numerics.floats import error_in_ulps
from oracles.reports.findings import load as load_findings
from oracles.reports.findings import registered_region

BAND_ULPS = 16  # beyond this many ulps of the exact gradient, torch is "inaccurate"
CONVENTION_RADIUS = 8  # ulps from a pinned point that the convention tests cover
SEVERITY = ("oracle", "wrong", "inaccurate", "convention", "range", "ok")
# A slice is classified by its most severe sample, or "no examples" when it had none: never "ok".
SLICE_CLASSES = (*SEVERITY[:-1], "no examples", "ok")


@dataclass
class Sample:
    op: str
    dtype: str
    point: tuple[float, ...]
    spelling: int
    classification: str = "ok"
    elements: list[dict] = field(default_factory=list)  # per tensor argument
    convention: str | None = None  # near mode: the convention point it started from
    moved: dict[int, int] = field(default_factory=dict)  # near mode: argument -> ulps moved
    note: str = ""
    reproducer: str = ""

    @property
    def worst_ulps(self) -> float:
        values = [e["ulps"] for e in self.elements if e["ulps"] is not None]
        return max(values, default=0.0)

    @property
    def worst_over_bound(self) -> float:
        values = [e["over_bound"] for e in self.elements if e["over_bound"] is not None]
        return max(values, default=0.0)

    def scores(self) -> tuple[float, float]:
        """What the targeted search maximises: log2(1 + error in ulps) and error / bound (capped)."""
        ulps = self.worst_ulps
        return (2048.0 if math.isinf(ulps) else math.log2(1.0 + ulps)), min(self.worst_over_bound, 1e12)

    def to_json(self) -> dict:
        return {"op": self.op, "dtype": self.dtype, "point": list(self.point), "spelling": self.spelling,
                "classification": self.classification, "worst_ulps": _jsonable(self.worst_ulps),
                "worst_over_bound": _jsonable(self.worst_over_bound),
                "elements": [{k: _jsonable(v) for k, v in e.items()} for e in self.elements],
                "convention": self.convention, "moved_ulps": {f"x{i}": k for i, k in self.moved.items()},
                "note": self.note, "reproducer": self.reproducer}


def plot_point(sample: Sample, tensor_op: bool = False) -> dict:
    """What the error-against-input plots need of a sample: its arguments (a tensor op's: its largest |input|),
    its worst error in ulps and against the bound, its class, and the registered finding whose region holds
    it, if any (findings.toml)."""
    if tensor_op:
        x, finding = [max((abs(v) for v in sample.point), default=0.0)], None
    else:
        x = list(sample.point)
        finding = registered_region(_registry(), sample.op, sample.dtype, sample.point)
    return {"x": [_jsonable(v) for v in x], "ulps": _jsonable(_rounded(sample.worst_ulps)),
            "over_bound": _jsonable(_rounded(sample.worst_over_bound)), "class": sample.classification,
            "finding": finding.id if finding else None}


def _rounded(value: float) -> float:
    """Four significant digits: enough for a plot, a third of the report's size."""
    return float(f"{value:.4g}")


@functools.cache
def _registry():
    return load_findings()


def _finite_or_inf(value: float | None) -> float | None:
    return math.inf if value is not None and math.isnan(value) else value


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def evaluate(op: str, dtype: str, point: tuple[float, ...], spelling: int = 0,
             convention: str | None = None, moved: dict[int, int] | None = None) -> Sample:
    case = single_op_case(op, point, dtype, spelling)
    sample = Sample(op, dtype, point, spelling, convention=convention, moved=dict(moved or {}))
    try:
        outcome = check_case(case)
    except OracleInconsistency as exc:
        sample.classification, sample.note = "oracle", str(exc)
        sample.reproducer = grad_reproducer(case)
        return sample
    exact = exact_gradients(case)
    for verdict, exact_grad in zip(outcome.verdicts, exact):
        ulps = None
        if exact_grad is not None and abs(exact_grad) <= case.format.max_finite and verdict.torch_value is not None:
            ulps = error_in_ulps(verdict.torch_value, exact_grad, case.format)
        sample.elements.append({
            "leaf": verdict.leaf, "verdict": verdict.verdict.value, "reason": verdict.reason,
            "torch": verdict.torch_value, "exact": exact_grad, "bound": verdict.bound, "ulps": ulps,
            "over_bound": _finite_or_inf(verdict.error_over_bound)})
    value = exact_value(case)
    out_of_range = value is not None and abs(value) > case.format.max_finite
    sample.classification = _classify(sample, outcome.verdicts, out_of_range)
    if sample.classification != "ok":
        sample.reproducer = grad_reproducer(case)
    return sample


def _classify(sample: Sample, verdicts, out_of_range: bool) -> str:
    if any(v.verdict is Verdict.WRONG for v in verdicts):
        return "wrong"
    if sample.worst_ulps > BAND_ULPS and out_of_range:
        sample.note = "the op's exact value overflows the dtype"
        return "range"
    if sample.worst_ulps > BAND_ULPS:
        near = sample.convention is not None and all(abs(k) <= CONVENTION_RADIUS for k in sample.moved.values())
        return "convention" if near else "inaccurate"
    return "ok"
