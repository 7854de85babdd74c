"""torch's values at non-differentiable and singular points, and the clause of its documented rule each
follows (torch's autograd notes, "Gradients for non-differentiable functions"):

1. GRADIENT: differentiable here, so the gradient;
2. MIN_NORM_SUBGRADIENT: a convex kink (locally), so the subgradient of minimum norm;
3. MIN_NORM_SUPERGRADIENT: a concave kink, so the supergradient of minimum norm;
4. LIMIT: defined but not differentiable, so the gradient by continuity (±inf allowed, sqrt at 0);
5. UNDEFINED: not defined here (a pole, an infinite or out-of-domain input) or no limit exists, so
   arbitrary ("most functions will use NaN").

A `Convention` is one entry of an op's `conventions` in the op table: the point, the value torch gives
there (pinned, compared exactly: NaN, ±inf and the sign of zero), the clause that applies and the value
that clause prescribes, *derived by reasoning and written with its justification*, never copied from
torch. Where torch's value disagrees with the clause, the entry deviates; every deviation is a known
finding (findings.toml). `Approach`es say how torch's gradient behaves on each side of the point, so
tests at generated points a few ulps away pin the one-sided limits too.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from oracles.numerics.dtypes import FORMATS, FloatFormat
from oracles.numerics.floats import ulp_of

ALL_DTYPES = tuple(FORMATS)
PINNED_TORCH = "2.13.0"  # the torch version whose values the table pins


class Rule(enum.Enum):
    GRADIENT = "gradient"
    MIN_NORM_SUBGRADIENT = "min-norm subgradient"
    MIN_NORM_SUPERGRADIENT = "min-norm supergradient"
    LIMIT = "limit"
    UNDEFINED = "undefined"

    @property
    def clause(self) -> str:
        return _CLAUSES[self]


_CLAUSES = {
    Rule.GRADIENT: "differentiable: the gradient",
    Rule.MIN_NORM_SUBGRADIENT: "convex kink: the minimum-norm subgradient",
    Rule.MIN_NORM_SUPERGRADIENT: "concave kink: the minimum-norm supergradient",
    Rule.LIMIT: "defined, not differentiable: the limit (±inf allowed)",
    Rule.UNDEFINED: "undefined, or no limit: arbitrary (usually NaN)",
}


@dataclass(frozen=True)
class Approach:
    """torch's gradient as tensor argument `arg` moves off the point towards `side` (+1 up, -1 down),
    the other arguments held: `limit` per tensor argument is the one-sided limit (±inf allowed; None: no
    claim). Tests draw points a few ulps away and check torch tends there."""

    arg: int
    side: int
    limit: tuple[float | None, ...]

    @property
    def label(self) -> str:
        return f"x{self.arg}{'+' if self.side > 0 else '-'}"


@dataclass(frozen=True)
class Convention:
    at: tuple[float, ...]  # every argument of the op at the point (tensors and constants, in order)
    torch: tuple[float, ...]  # torch's gradient per tensor argument there (pinned, compared exactly)
    rules: tuple[Rule, ...]  # the clause that applies, per tensor argument
    expected: tuple[float | None, ...]  # what that clause prescribes (None: anything, for UNDEFINED)
    why: str  # the derivation of `expected`, and the formula that gives torch's value
    label: str = ""  # test id `op@label`; default: the point
    dtypes: tuple[str, ...] = ALL_DTYPES  # where the pinned value holds (saturation is per dtype)
    approaches: tuple[Approach, ...] = ()
    upstream: str = ""  # an upstream issue or source comment about this behaviour, if any

    def __post_init__(self):
        if len(self.torch) != len(self.rules) or len(self.torch) != len(self.expected):
            raise ValueError(f"convention at {self.at}: torch, rules and expected need one entry per "
                             f"tensor argument ({len(self.torch)}, {len(self.rules)}, {len(self.expected)})")
        for approach in self.approaches:
            if len(approach.limit) != len(self.torch):
                raise ValueError(f"convention at {self.at}: approach {approach.label} needs one limit "
                                 f"per tensor argument")
        unknown = [d for d in self.dtypes if d not in FORMATS]
        if unknown:
            raise ValueError(f"convention at {self.at}: unknown dtype(s) {unknown}")

    @property
    def name(self) -> str:
        return self.label or ",".join(fmt_value(v) for v in self.at)

    def deviates(self, dtype: str) -> bool:
        fmt = FORMATS[dtype]
        return not all(agrees(t, e, r, fmt) for t, e, r in zip(self.torch, self.expected, self.rules))


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def conv(at, torch, rule, expected, why, **extra) -> Convention:
    """A convention; `rule` may be one Rule for every tensor argument, scalars may stand for 1-tuples."""
    torch, expected = _as_tuple(torch), _as_tuple(expected)
    rules = tuple(rule) if isinstance(rule, (tuple, list)) else (rule,) * len(torch)
    return Convention(_as_tuple(at), torch, rules, expected, why, **extra)


def side(arg: int, direction: int, *limit) -> Approach:
    return Approach(arg, direction, tuple(limit))


# ------------------------------------------------------------------ exact comparison
def same(a: float, b: float) -> bool:
    """Equal as IEEE values including the sign of zero; NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def fmt_value(v: float | None) -> str:
    if v is None:
        return "any"
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.10g}"


# Agreement with the rule: torch's formula rounds, so "the gradient" is met within a few ulps of the
# exact value rounded to the dtype; infinities and NaN must match exactly; zeros match either sign
# (the rule is about real numbers, -0 = 0).
AGREEMENT_ULPS = 4


def agrees(torch_value: float, expected: float | None, rule: Rule, fmt: FloatFormat) -> bool:
    if expected is None:
        return rule is Rule.UNDEFINED
    rounded = fmt.round(expected)
    if math.isnan(rounded) or math.isinf(rounded):
        return same(torch_value, rounded)
    if not math.isfinite(torch_value):
        return False
    return abs(torch_value - rounded) <= AGREEMENT_ULPS * ulp_of(rounded, fmt)


def representable(value: float, fmt: FloatFormat) -> bool:
    return math.isnan(value) or same(fmt.round(value), value)


# ------------------------------------------------------------------ ops without a table entry
@dataclass(frozen=True)
class PinnedOnly:
    """A torch function pinned only at its conventions (reductions, norms): no elementwise oracle.
    `spellings` are op-table `Spelling`s whose call takes the tensor arguments."""

    name: str
    spellings: tuple
    conventions: tuple[Convention, ...]
    constant_args: tuple[int, ...] = ()
    note: str = ""
