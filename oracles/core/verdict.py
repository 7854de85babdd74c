"""Judging torch's `.grad` against the expected gradients, element by element.

- verified: torch lies inside the enclosure, and the enclosure is tight enough to say something
  (its half-width below the exact value's magnitude, or the exact value is 0); or, wherever the exact
  value is known, torch's value is one of the two floats next to it (faithfully rounded);
- wrong: torch lies outside (NaN/inf where a finite value is expected included), or `.grad` has the
  wrong shape/dtype, or is set for an input outside the graph (or missing for one inside);
- unverified: singular point, possible overflow, or an enclosure too wide to judge. Counted, never passed
  silently;
- registered: torch is known to be wrong or inaccurate there, and a registered finding (findings.toml, pinned
  by its own strict test) says why: explained, so neither a failure nor a blind spot.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass

import torch
from flint import arb

from oracles.core.case import Case, all_indices
from oracles.core.expected import ExpectedGrad, Status
from oracles.core.shown import DomainShown
from oracles.numerics.dtypes import FloatFormat
from oracles.numerics.floats import ulp_of, ulp_step


class Verdict(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    UNVERIFIED = "unverified"
    REGISTERED = "registered"


@dataclass(frozen=True)
class ElementVerdict:
    leaf: int
    index: tuple[int, ...]
    verdict: Verdict
    torch_value: float | None = None
    exact: float | None = None
    bound: float | None = None  # max distance from the exact value to the enclosure's edge
    reason: str = ""
    ulp: float | None = None  # spacing of the dtype at the exact value

    @property
    def error_ulps(self) -> float | None:
        err = self.abs_error
        return None if err is None or not self.ulp else err / self.ulp

    @property
    def error_over_bound(self) -> float | None:
        err = self.abs_error
        if err is None or self.bound is None:
            return None
        return err / self.bound if self.bound > 0 else (0.0 if err == 0 else math.inf)

    @property
    def abs_error(self) -> float | None:
        if self.torch_value is None or self.exact is None:
            return None
        if math.isinf(self.torch_value) and self.verdict is Verdict.VERIFIED:
            return 0.0  # the exact value lies beyond the dtype's range and torch's inf is its rounding
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


UNRESOLVED = 2.0**-70  # an exact ball wider than this, relative to its value, has lost its digits


def hidden_nonfinite(torch_value: float, exact: arb | None, fmt: FloatFormat) -> bool:
    """torch returned NaN or ±inf where the exact value is finite and the dtype holds it (rounds to a
    finite value): wrong, whatever the model says about torch's own formula there."""
    if math.isfinite(torch_value) or exact is None or not exact.is_finite():
        return False
    if not exact.contains(0) and exact.rad() > abs(exact.mid()) * UNRESOLVED:
        return False  # the exact ball has lost its digits: its magnitude is not known well enough
    return math.isfinite(fmt.round(float(exact.mid())))


# torch evaluates a program and its backward formulas op by op in the tensor's dtype, so a value on the way
# can overflow although the gradient fits (findings.toml: backward-intermediate-overflow, registered for every
# dtype); an inf that then meets an underflowed 0 gives NaN. Where the model foresaw that overflow and torch
# returns ±inf or NaN, the element is that registered finding, named; any other NaN or inf where the exact value
# is finite is wrong.
INTERMEDIATE_OVERFLOW = "registered finding backward-intermediate-overflow"
# float16 holds no number as small as the eps (1e-12) that guards some divisions of losses and norms: torch's
# eps is 0 there, so where the divisor it guards is 0 torch divides 0 by 0 (findings.toml:
# half-epsilon-underflow). Where the model foresaw that and torch returns NaN or inf, the element is that
# registered finding, named.
EPSILON_UNDERFLOW = "registered finding half-epsilon-underflow"


def faithfully_rounded(torch_value: float, exact: arb | None, fmt: FloatFormat) -> bool:
    """torch's value is one of the two floats of the dtype next to the exact value (or the exact value
    itself): as accurate as the dtype allows, whatever the model could bound. This decides the points where
    the enclosure is too wide to judge (a saturated or underflowed factor, an intermediate the model fears
    may overflow, a tie within the model) but torch's answer is nevertheless the right one."""
    if exact is None or not exact.is_finite() or math.isnan(torch_value):
        return False
    # round to nearest gives ±inf from the largest finite float plus half its ulp on
    overflows_at = arb(fmt.max_finite) + arb(ulp_of(fmt.max_finite, fmt)) / 2
    if math.isinf(torch_value):
        return bool(exact * (1 if torch_value > 0 else -1) >= overflows_at)
    below, above = ulp_step(torch_value, -1, fmt), ulp_step(torch_value, 1, fmt)
    if abs(torch_value) == fmt.max_finite:  # the neighbour beyond is inf: the interval ends where rounding does
        below, above = (below, overflows_at) if torch_value > 0 else (-overflows_at, above)
    return bool(exact > arb(below)) and bool(exact < arb(above))


FAITHFUL = "faithfully rounded"  # verified without the model: see `faithfully_rounded`
# verified from torch's own forward values, one backward step at a time (oracles.core.stepwise): right for the
# values torch computed, which at an ill-conditioned point may lie far from the exact derivative at the exact
# inputs, so its distance from that is no error of torch's backward and stays out of the worst-error statistic
STEPWISE = "verified step by step"


def judge_element(leaf: int, index, torch_value: float, expected, fmt: FloatFormat) -> ElementVerdict:
    if expected.status is not Status.OK and faithfully_rounded(torch_value, expected.exact, fmt):
        exact_f = float(expected.exact.mid())
        return ElementVerdict(leaf, index, Verdict.VERIFIED, torch_value, exact_f, reason=FAITHFUL,
                              ulp=ulp_of(exact_f, fmt))
    if expected.status is not Status.OK:
        if hidden_nonfinite(torch_value, expected.exact, fmt):
            exact_f = float(expected.exact.mid())
            if expected.status is Status.OVERFLOW:
                return ElementVerdict(leaf, index, Verdict.REGISTERED, torch_value, exact_f,
                                      reason=INTERMEDIATE_OVERFLOW)
            if expected.status is Status.EPSILON_UNDERFLOW:
                return ElementVerdict(leaf, index, Verdict.REGISTERED, torch_value, exact_f, reason=EPSILON_UNDERFLOW)
            return ElementVerdict(leaf, index, Verdict.WRONG, torch_value, exact_f, reason=(
                f"{torch_value} where the exact value {exact_f:.6g} is finite in {fmt.name} (the model: "
                f"{expected.status.value}, {expected.reason})"), ulp=ulp_of(exact_f, fmt))
        return ElementVerdict(leaf, index, Verdict.UNVERIFIED, torch_value, reason=expected.status.value)
    exact, enclosure = expected.exact, expected.enclosure
    if not exact.contains(0) and exact.rad() > abs(exact.mid()) * UNRESOLVED:
        # SymPy's form cancelled at this extreme input (1 - tanh(x)^2 at x = 1e16): the "exact" ball
        # is too wide to stand for the exact value, so nothing is judged.
        return ElementVerdict(leaf, index, Verdict.UNVERIFIED, torch_value, reason="exact value unresolved")
    exact_f, bound = float(exact.mid()), _bound(exact, enclosure)
    # an error "in ulps of 0" means nothing (a cancelled-to-zero value has no ulp scale): the bound ratio judges it
    ulp = None if exact.contains(0) or not math.isfinite(exact_f) else ulp_of(exact_f, fmt)
    base = dict(torch_value=torch_value, exact=exact_f, bound=bound, ulp=ulp)
    if not math.isfinite(torch_value) or not enclosure.contains(arb(torch_value)):
        return ElementVerdict(leaf, index, Verdict.WRONG, reason="outside the error bound", **base)
    # A ball around 0 (radius ~2^-192) is an exact zero for any float comparison: judged absolutely.
    if not exact.contains(0) and not bound < abs(exact_f):
        if faithfully_rounded(torch_value, exact, fmt):
            return ElementVerdict(leaf, index, Verdict.VERIFIED, reason=FAITHFUL, **base)
        return ElementVerdict(leaf, index, Verdict.UNVERIFIED, reason="bound wider than the value", **base)
    return ElementVerdict(leaf, index, Verdict.VERIFIED, **base)


def float64_values(tensor: torch.Tensor) -> list[float]:
    """Row-major float64 values of a result torch returned. A double backward may hand out an "efficient
    zero tensor" (torch's ZeroTensor, no storage: `.tolist()` raises); its values are zeros (registered:
    abs-double-backward-zerotensor)."""
    if tensor._is_zerotensor():
        return [0.0] * tensor.numel()
    return tensor.detach().to("cpu", torch.float64).reshape(-1).tolist()


def judge(case: Case, grads: list[torch.Tensor | None], expected: list[ExpectedGrad],
          decided: dict[tuple[int, int], ElementVerdict] | None = None) -> list[ElementVerdict]:
    """Every element of every input's `.grad` against its expected value; `decided` holds verdicts already
    reached by (input, flat index), e.g. by the fast pass, whose expected values are then not read."""
    decided = decided or {}
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
        values = float64_values(grad)
        for flat, (index, element) in enumerate(zip(all_indices(shape), exp.elements)):
            known = decided.get((exp.leaf, flat))
            verdicts.append(known or judge_element(exp.leaf, index, values[flat], element, case.format))
    return verdicts


# The reason of an element counted as a registered finding (findings.toml): Verdict.REGISTERED.
REGISTERED = "registered finding"


class VerdictCounts:
    """Tally across the examples of one check: verdict counts, why points were unverified, the worst
    error seen (in ulps of the dtype and relative to the bound) and failure reports. Mergeable, and
    JSON-able for the run report and for pytest-xdist workers.

    An example that judges exactly what an earlier one judged (the same program and inputs it uses, the
    same torch and exact values: Hypothesis's mutations and shrinking replay examples, varying only inputs
    the program ignores) is counted as an example and a `repeat`, its verdicts once: a replayed cluster
    would otherwise weigh as many times as it was replayed."""

    MAX_FAILURES = 5

    def __init__(self):
        self.examples = 0
        self.counts: Counter = Counter()
        self.reasons: Counter = Counter()  # why elements were unverified
        self.registered: Counter = Counter()  # which registered findings explained elements
        self.worst_ulps = 0.0
        self.worst_over_bound = 0.0
        self.worst_case = ""
        self.failures: list[str] = []
        self.repeats = 0
        # examples with a wrong element: Hypothesis shrinks them and reports one, while every element is counted
        self.failing_examples = 0
        self._seen: set = set()
        self._programs: dict[str, list[int]] = {}  # program source -> [unverified, judged] elements
        self.shown = DomainShown()  # where the inputs lay, for the checks that record it

    def add(self, verdicts: list[ElementVerdict], case: Case | None = None) -> None:
        """Tally one example; with its `case`, the element behind the worst error/bound ratio is kept
        (`worst_case`), so the statistic can be traced back to an expression and inputs."""
        self.examples += 1
        key = (case.source if case is not None else None, case.dtype if case is not None else None,
               tuple((v.leaf, v.index, v.verdict, v.torch_value, v.exact, v.reason) for v in verdicts))
        if key in self._seen:
            self.repeats += 1
            return
        self._seen.add(key)
        if case is not None:
            program = self._programs.setdefault(case.source, [0, 0])
            program[0] += sum(v.verdict is Verdict.UNVERIFIED for v in verdicts)
            program[1] += len(verdicts)
        self.failing_examples += any(v.verdict is Verdict.WRONG for v in verdicts)
        for v in verdicts:
            self.counts[v.verdict] += 1
            if v.verdict is Verdict.UNVERIFIED:
                self.reasons[v.reason] += 1
                continue
            if v.verdict is Verdict.REGISTERED:
                self.registered[v.reason] += 1
                continue
            if v.reason == STEPWISE:
                continue
            if v.error_ulps is not None:
                self.worst_ulps = max(self.worst_ulps, v.error_ulps)
            if v.error_over_bound is not None and v.error_over_bound > self.worst_over_bound:
                self.worst_over_bound = v.error_over_bound
                if case is not None:
                    self.worst_case = f"{describe(v, case)}; inputs {list(case.values)}"

    def show(self, case: Case, avoided: tuple[tuple[float, ...], ...]) -> None:
        """Record where `case`'s inputs lay, and how close they came to the points they were kept off."""
        self.shown.add(case, avoided)

    def count_wrong_as(self, finding: str) -> None:
        """Count the wrong elements as the registered finding that pins this check (a strict xfail): known,
        so registered under its id, not wrong; the worst error seen was the finding's, so it is not kept."""
        wrong = self.counts.pop(Verdict.WRONG, 0)
        self.failing_examples = 0
        if wrong:
            self.counts[Verdict.REGISTERED] += wrong
            self.registered[f"{REGISTERED} {finding}"] += wrong
            self.worst_ulps, self.worst_over_bound, self.worst_case = 0.0, 0.0, ""

    def add_failure(self, text: str) -> None:
        if len(self.failures) < self.MAX_FAILURES:
            self.failures.append(text)

    def merge(self, other: VerdictCounts) -> None:
        self.examples += other.examples
        self.repeats += other.repeats
        self.failing_examples += other.failing_examples
        self.counts.update(other.counts)
        self.reasons.update(other.reasons)
        self.registered.update(other.registered)
        self.worst_ulps = max(self.worst_ulps, other.worst_ulps)
        if other.worst_over_bound > self.worst_over_bound:
            self.worst_over_bound, self.worst_case = other.worst_over_bound, other.worst_case
        for failure in other.failures:
            self.add_failure(failure)
        self.shown.merge(other.shown)

    def to_json(self) -> dict:
        return {
            "examples": self.examples,
            "repeats": self.repeats,
            "failing_examples": self.failing_examples,
            **{v.value: self.counts[v] for v in Verdict},
            "unverified_reasons": dict(self.reasons),
            "registered_reasons": dict(self.registered),
            "worst_error_ulps": self.worst_ulps,
            "worst_error_over_bound": self.worst_over_bound,
            "worst_case": self.worst_case,
            "failures": list(self.failures),
            **({"domain_shown": self.shown.to_json()} if self.shown else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> VerdictCounts:
        counts = cls()
        counts.examples = data["examples"]
        counts.repeats = data.get("repeats", 0)  # reports written before repeats were counted have none
        counts.failing_examples = data.get("failing_examples", 0)  # nor before failing examples were
        counts.counts = Counter({v: data.get(v.value, 0) for v in Verdict})
        counts.reasons = Counter(data["unverified_reasons"])
        counts.registered = Counter(data.get("registered_reasons", {}))
        # reports written before registered findings had a verdict of their own counted them as unverified
        for reason in [r for r in counts.reasons if r.startswith(REGISTERED)]:
            n = counts.reasons.pop(reason)
            counts.counts[Verdict.UNVERIFIED] -= n
            counts.counts[Verdict.REGISTERED] += n
            counts.registered[reason] += n
        counts.worst_ulps = data["worst_error_ulps"]
        counts.worst_over_bound = data["worst_error_over_bound"]
        counts.worst_case = data.get("worst_case", "")
        counts.failures = list(data["failures"])
        counts.shown = DomainShown.from_json(data.get("domain_shown", {}))
        return counts

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def unverified_fraction(self) -> float:
        return self.counts[Verdict.UNVERIFIED] / self.total if self.total else 0.0

    @property
    def program_unverified_fraction(self) -> float:
        """The unverified fraction of each distinct program's elements, averaged over the programs: what a
        strategy shows, each program once. Hypothesis replays and mutates examples, so one program drawn
        into a saturated region can fill most of a test's examples (measured: tan in float16 at 56% of its
        elements over 40 examples, one program behind most, 3% over 200); per element it would outweigh
        the rest. Without programs (verdicts tallied without their case), the element fraction."""
        judged = [unverified / total for unverified, total in self._programs.values() if total]
        return sum(judged) / len(judged) if judged else self.unverified_fraction

    def summary(self) -> str:
        repeats = f" ({self.repeats} repeats)" if self.repeats else ""
        parts = [f"{self.examples} examples{repeats}"]
        for v in Verdict:
            parts.append(f"{self.counts[v]} {v.value}")
            if v is Verdict.WRONG and self.counts[v]:
                parts[-1] += (f" (elements, in {self.failing_examples} failing example"
                              f"{'s' if self.failing_examples != 1 else ''}: shrinking replays them)")
        if self.total:
            parts.append(f"worst {self.worst_ulps:.3g} ulp / {self.worst_over_bound:.2g} of bound")
        if self.reasons:
            parts.append("unverified because: " + ", ".join(f"{r} {n}" for r, n in self.reasons.most_common()))
        if self.registered:
            parts.append("registered: " + ", ".join(f"{r.removeprefix(REGISTERED + ' ')} {n}"
                                                   for r, n in self.registered.most_common()))
        return "; ".join(parts)

def _index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]" if index else ""


def describe(v: ElementVerdict, case: Case) -> str:
    """One element's verdict in words."""
    where = f"{case.source}, {case.dtype}"
    if v.exact is None:
        return f"{v.reason} for {where}"
    if v.bound is None:  # no enclosure: a NaN or inf from torch where the exact value is finite
        return (f"x{v.leaf}.grad{_index(v.index)} = {v.torch_value!r} but exact d/dx{v.leaf} = {v.exact!r}: "
                f"{v.reason} for {where}")
    rel = f"rel err {v.rel_error:.2g}, " if v.rel_error is not None else ""
    return (f"x{v.leaf}.grad{_index(v.index)} = {v.torch_value!r} but exact d/dx{v.leaf} = {v.exact!r} "
            f"({rel}abs err {v.abs_error:.3g}, bound {v.bound:.3g}) for {where}")
