"""Judging torch's `.grad` against the expected gradients, element by element.

- verified: torch lies inside the enclosure, and the enclosure is tight enough to say something
  (its half-width below the exact value's magnitude, or the exact value is 0);
- wrong: torch lies outside (NaN/inf where a finite value is expected included), or `.grad` has the
  wrong shape/dtype, or is set for an input outside the graph (or missing for one inside);
- unverified: singular point, possible overflow, or an enclosure too wide to judge. Counted, never passed
  silently.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass

import torch
from flint import arb

from oracles.case import GradCase, all_indices
from oracles.gradient_oracle import ExpectedGrad, Status


class Verdict(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class ElementVerdict:
    leaf: int
    index: tuple[int, ...]
    verdict: Verdict
    torch_value: float | None = None
    exact: float | None = None
    bound: float | None = None  # max distance from the exact value to the enclosure's edge
    reason: str = ""

    @property
    def abs_error(self) -> float | None:
        if self.torch_value is None or self.exact is None:
            return None
        return abs(self.torch_value - self.exact)

    @property
    def rel_error(self) -> float | None:
        err = self.abs_error
        if err is None or self.exact == 0:
            return None
        return err / abs(self.exact)


def _bound(exact: arb, enclosure: arb) -> float:
    lo, hi = enclosure.lower(), enclosure.upper()
    return float(max(hi - exact, exact - lo).upper())


def judge_element(leaf: int, index, torch_value: float, expected) -> ElementVerdict:
    if expected.status is not Status.OK:
        return ElementVerdict(leaf, index, Verdict.UNVERIFIED, torch_value, reason=expected.status.value)
    exact, enclosure = expected.exact, expected.enclosure
    exact_f, bound = float(exact.mid()), _bound(exact, enclosure)
    base = dict(torch_value=torch_value, exact=exact_f, bound=bound)
    if not math.isfinite(torch_value) or not enclosure.contains(arb(torch_value)):
        return ElementVerdict(leaf, index, Verdict.WRONG, reason="outside the error bound", **base)
    # A ball around 0 (radius ~2^-192) is an exact zero for any float comparison: judged absolutely.
    if not exact.contains(0) and not bound < abs(exact_f):
        return ElementVerdict(leaf, index, Verdict.UNVERIFIED, reason="bound wider than the value", **base)
    return ElementVerdict(leaf, index, Verdict.VERIFIED, **base)


def judge(case: GradCase, grads: list[torch.Tensor | None], expected: list[ExpectedGrad]) -> list[ElementVerdict]:
    verdicts = []
    for exp, grad in zip(expected, grads):
        shape = case.shapes[exp.leaf]
        if not exp.used:
            if grad is not None:
                verdicts.append(ElementVerdict(exp.leaf, (), Verdict.WRONG,
                                               reason=f"x{exp.leaf} is not in the graph but its .grad is set"))
            continue
        if grad is None:
            verdicts.append(ElementVerdict(exp.leaf, (), Verdict.WRONG, reason=f"x{exp.leaf}.grad is None"))
            continue
        if tuple(grad.shape) != shape or grad.dtype != case.format.torch_dtype:
            verdicts.append(ElementVerdict(
                exp.leaf, (), Verdict.WRONG,
                reason=f"x{exp.leaf}.grad has shape {tuple(grad.shape)} and dtype {grad.dtype}, "
                       f"expected {shape} and {case.format.torch_dtype}"))
            continue
        values = grad.detach().to("cpu", torch.float64).reshape(-1).tolist()
        for flat, (index, element) in enumerate(zip(all_indices(shape), exp.elements)):
            verdicts.append(judge_element(exp.leaf, index, values[flat], element))
    return verdicts


@dataclass
class VerdictCounts:
    """Tally across examples, for the summary line and the unverified-fraction check."""

    counts: Counter
    reasons: Counter

    def __init__(self):
        self.counts = Counter()
        self.reasons = Counter()

    def add(self, verdicts: list[ElementVerdict]) -> None:
        for v in verdicts:
            self.counts[v.verdict] += 1
            if v.verdict is Verdict.UNVERIFIED:
                self.reasons[v.reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unverified_fraction(self) -> float:
        return self.counts[Verdict.UNVERIFIED] / self.total if self.total else 0.0

    def summary(self) -> str:
        parts = [f"{self.counts[v]} {v.value}" for v in Verdict]
        if self.reasons:
            parts.append("unverified because: " + ", ".join(f"{r} {n}" for r, n in self.reasons.most_common()))
        return "; ".join(parts)
