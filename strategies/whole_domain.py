"""An op's arguments anywhere in its domain, derived from its entry: every binade of the dtype from the
smallest subnormal to the overflow threshold, both signs where the interval allows, and 1 ulp to far off
every domain edge and special point, on each side where the op is defined.

Each tensor argument has anchors: the finite ends of its interval, the float points of its specials
(poles, kinks, jumps, removable singularities), the kinks its constant arguments place (clamp's bounds,
softshrink's ±lambd), the other argument where the two may tie (maximum), and 0. A value is an anchor
moved into one of the gaps beside it by a distance drawn binade by binade (the binade uniformly, then the
significand), from one step of the dtype there up to the gap's width: off 0 that spreads values
log-uniformly over the whole range, off a domain edge it reaches 1 - 2^-k for every k.

The points that are avoided (the interval's ends, the specials, 0 where the sampling domain excludes it)
are never drawn: torch's values there are its conventions, pinned on the entry and checked in every dtype
and spelling by tests/test_conventions.py. Simple values (1, 2, 0.5, ...) inside the domain come first,
and every draw shrinks towards an anchor moved by 1, so a failure reads as a small point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

from hypothesis import strategies as st

from oracles.core.case import GradCase
from oracles.core.expr import Apply, Const, Var
from oracles.numerics.dtypes import FloatFormat, format_named
from oracles.numerics.floats import ulp_step
from oracles.table.domains import Domain, Interval, Kind
from oracles.table.ops import OPS, Operands, OpSpec
from strategies.cached import choice
from strategies.values import SIMPLE_VALUES

# pow's constant exponents, by the base's sampling domain they need
EXPONENTS = {
    Domain.REAL: (2.0, 3.0, 4.0, 1.0, 5.0),
    Domain.NONZERO: (-1.0, -2.0, -3.0),
    Domain.POSITIVE: (0.5, -0.5, 1.5, 0.25, 2.5, 1 / 3, -1 / 3, 2 / 3),
}
_EXCLUDES_ZERO = (Domain.NONZERO, Domain.POSITIVE)
_POSITIVE_HALF = Interval(0.0)


@dataclass(frozen=True)
class Segment:
    """Values `anchor + side * d` for d from 2^low to below 2^(high + 1), capped at `width`: one gap beside
    one anchor. `low` is the binade of the dtype's step at the anchor, so 1 ulp off it can be drawn."""

    anchor: float
    side: int
    low: int
    high: int
    width: float  # to the next anchor (never reached) or to the largest finite float


@dataclass(frozen=True)
class Periodic:
    """Jumps at `offset + period * n` for every integer n (floor, round, frac): an anchor n drawn binade by
    binade up to `max_index`, where the dtype still has values between the jumps."""

    offset: float
    period: float
    max_index: int


@dataclass(frozen=True)
class ArgumentPlan:
    """How one argument is drawn: simple values first, else a gap beside an anchor (`segments`) or between
    two periodic jumps; `avoid` are the points never drawn."""

    simple: tuple[float, ...]
    segments: tuple[Segment, ...]
    avoid: tuple[float, ...]
    interval: Interval
    periodic: Periodic | None = None
    off_powers_of_two: bool = False  # the argument jumps at every power of two: kept off them all


def _binade(x: float) -> int:
    return math.frexp(x)[1] - 1


def segments_between(anchors: list[float], interval: Interval, fmt: FloatFormat) -> tuple[Segment, ...]:
    """The gaps beside each anchor that lie inside the interval, up to the finite range's ends."""
    top = fmt.max_finite
    ends = [-top] + sorted(a for a in set(anchors) if -top < a < top) + [top]
    found = []
    for lo, hi in zip(ends, ends[1:]):
        middle = lo / 2 + hi / 2
        if middle not in interval or ulp_step(lo, 1, fmt) >= hi:  # no float strictly between (two adjacent anchors)
            continue
        width = hi - lo
        for anchor, side in ((lo, 1), (hi, -1)):
            if abs(anchor) == top:  # the range's own end, not an anchor: the gap is drawn from its other end
                continue
            step = abs(ulp_step(anchor, side, fmt) - anchor)
            found.append(Segment(anchor, side, _binade(step), _binade(min(width, top)), width))
    return tuple(found)


def _periodic(op: OpSpec, arg: int, fmt: FloatFormat) -> Periodic | None:
    special = next((s for s in op.specials if s.arg == arg and s.period is not None), None)
    if special is None:
        return None
    # below 2^(mantissa bits - 2) the dtype has at least 4 values per period of 1 between the jumps, and below
    # period * 2^(mantissa bits - 2) as many per shorter period (round(x, decimals=3): 1/1000)
    max_index = int(2 ** (fmt.mantissa_bits - 2) / max(special.period, 1.0))
    return Periodic(special.at[0] % special.period, special.period, max_index)


def argument_plan(op: OpSpec, arg: int, fmt: FloatFormat, domain: Domain | None = None,
                  parameters: tuple[float, ...] = (), tie_with: float | None = None) -> ArgumentPlan:
    """The plan for tensor argument `arg` of `op` in `fmt`. `domain` overrides the entry's sampling domain
    (pow's base, by its exponent); `parameters` are the constant arguments drawn; `tie_with` the value of
    the argument this one may tie with."""
    domain = domain or op.domains[arg]
    interval = op.intervals[arg] if op.operands is not Operands.EXPONENT else (
        _POSITIVE_HALF if domain is Domain.POSITIVE else Interval())
    avoid = {e for e in (interval.low, interval.high) if math.isfinite(e)}
    for special in op.specials:
        if special.arg == arg and special.period is None and special.kind is not Kind.SATURATION:
            avoid.update(special.at)
    if parameters and arg == 0:
        avoid.update(op.points_of(parameters))
    if domain in _EXCLUDES_ZERO:
        avoid.add(0.0)
    if tie_with is not None:
        avoid.add(tie_with)
    avoid = {fmt.round(a) for a in avoid}
    anchors = sorted(avoid | ({0.0} if 0.0 in interval or 0.0 in avoid else set()))
    periodic = _periodic(op, arg, fmt)
    binades = any(s.arg == arg and s.every_binade for s in op.specials)
    simple = tuple(v for v in SIMPLE_VALUES if v in interval and v not in avoid
                   and (periodic is None or math.remainder(v - periodic.offset, periodic.period) != 0)
                   and not (binades and _power_of_two(v)))
    return ArgumentPlan(simple, segments_between(anchors, interval, fmt), tuple(sorted(avoid)), interval, periodic,
                        binades)


def _power_of_two(x: float) -> bool:
    return x != 0 and math.frexp(x)[0] in (0.5, -0.5)


# the binades at either end of a gap (a few ulps off its anchor: subnormals beside 0, 1 - 2^-k beside a domain edge;
# the far end: near the overflow threshold) are where bugs live and are few among thousands: each end is drawn as
# often as all the binades between
END_BINADES = 8
_WHERE = ("anywhere", "near the anchor", "far from it")


def _distance(draw, low: int, high: int, fmt: FloatFormat, label: str) -> float:
    where = draw(choice(_WHERE), label=f"{label} distance range")
    if where == "near the anchor":
        high = min(high, low + END_BINADES - 1)
    elif where == "far from it":
        low = max(low, high - END_BINADES + 1)
    binade = draw(st.integers(low, high), label=f"{label} distance binade")
    bits = fmt.mantissa_bits - 1
    significand = draw(st.integers(0, (1 << bits) - 1), label=f"{label} distance significand")
    return math.ldexp(1.0 + significand / (1 << bits), binade)


def _off(anchor: float, side: int, distance: float, width: float, fmt: FloatFormat) -> float:
    """`anchor` moved by `distance` towards `side`, rounded to the dtype and kept strictly inside the gap."""
    top = fmt.max_finite
    value = fmt.round(anchor + side * min(distance, top)) if distance < width else math.inf
    far = anchor + side * width
    if not math.isfinite(value) or (value - far) * side >= 0:
        value = top * side if abs(far) >= top else ulp_step(fmt.round(far), -side, fmt)
    if value == anchor:
        value = ulp_step(anchor, side, fmt)
    return value


def argument_value(draw, plan: ArgumentPlan, fmt: FloatFormat, label: str) -> float:
    """One value drawn by `plan` (a function of `draw`, not a strategy: one is drawn per element, and a
    strategy object built per draw costs more than the check, see strategies/cached.py)."""
    kinds = (["simple"] if plan.simple else []) + (["periodic"] if plan.periodic else ["spread"])
    kind = draw(choice(kinds), label=f"{label} kind")
    if kind == "simple":
        return draw(choice(plan.simple), label=label)
    if kind == "periodic":
        period = plan.periodic
        # n = 0 first, then n in [2^(b-1), 2^b) for a binade b drawn uniformly
        index = draw(st.integers(0, period.max_index.bit_length()), label=f"{label} jump binade")
        n = 0 if index == 0 else (1 << (index - 1)) + draw(st.integers(0, (1 << (index - 1)) - 1),
                                                             label=f"{label} jump")
        n = min(period.max_index, n)
        n = n * draw(choice([1, -1]), label=f"{label} jump sign")
        anchor = fmt.round(period.offset + period.period * n)
        side = draw(choice([1, -1]), label=f"{label} side")
        step = abs(ulp_step(anchor, side, fmt) - anchor)
        distance = _distance(draw, _binade(step), _binade(period.period / 2), fmt, label)
        value = _off(anchor, side, distance, period.period, fmt)
        # where the dtype's spacing is a fair part of the period, rounding may land on the next jump
        while (Fraction(value) - Fraction(period.offset)) % Fraction(period.period) == 0:
            value = ulp_step(value, -side, fmt)
        return value
    segment = draw(choice(plan.segments), label=f"{label} anchor and side")
    distance = _distance(draw, segment.low, segment.high, fmt, label)
    value = _off(segment.anchor, segment.side, distance, segment.width, fmt)
    # a distance of exactly 2^k from 0 is a power of two: a step further out, into the binade it starts (two
    # beside the smallest subnormal, whose next float is a power of two too)
    while plan.off_powers_of_two and _power_of_two(value):
        value = ulp_step(value, 1 if value > 0 else -1, fmt)
    return value


@lru_cache(maxsize=4096)  # a tie's plan depends on the other argument's value: bounded
def _plan(op: OpSpec, arg: int, fmt: FloatFormat, domain: Domain | None, parameters: tuple[float, ...],
          tie_with: float | None) -> ArgumentPlan:
    return argument_plan(op, arg, fmt, domain, parameters, tie_with)


def _between_multiples(plan: ArgumentPlan, other: float, fmt: FloatFormat) -> ArgumentPlan:
    """`plan` for an argument that jumps at every multiple of `other` (x1 % x0 at x1 = k x0): a jump n drawn binade by
    binade, then a value off it, as for floor's integers. Beyond 2^(mantissa bits - 2) multiples every float is a
    multiple (or nearly), where the function has no derivative at all, so the draws stop there."""
    period = abs(other)
    if period < 2 * fmt.min_subnormal:  # every float is a multiple of the smallest subnormal: nothing lies between
        return plan
    max_index = int(min(2 ** (fmt.mantissa_bits - 2), fmt.max_finite / 2 / period))
    simple = tuple(v for v in plan.simple if math.remainder(v, period) != 0)
    return replace(plan, simple=simple, periodic=Periodic(0.0, period, max_index))


@st.composite
def whole_domain_points(draw, op: OpSpec, fmt: FloatFormat, size: int = 1) -> tuple[tuple, ...]:
    """`op`'s argument tuples for `size` points sharing the constant arguments: per argument, a tuple of
    `size` values for a tensor argument, a float for a constant one."""
    domain, constants = None, {}
    if op.operands is Operands.EXPONENT:
        domain = draw(choice(list(EXPONENTS)), label="exponent kind")
        constants[1] = draw(choice(EXPONENTS[domain]), label="exponent")
    parameters = ()
    if op.operands is Operands.PARAMETERS:
        parameters = draw(choice(op.parameters), label="parameters")
        constants.update({1 + i: p for i, p in enumerate(parameters)})
    ties = any(s.kind is Kind.TIE for s in op.specials)
    multiples = dict(s.multiples for s in op.specials if s.multiples is not None)
    columns = {}
    for arg in range(op.arity):
        if arg in constants:
            continue
        column = []
        for i in range(size):
            tie_with = columns[0][i] if ties and arg == 1 else None
            plan = _plan(op, arg, fmt, domain if arg == 0 else None, parameters, tie_with)
            if arg in multiples:
                plan = _between_multiples(plan, columns[multiples[arg]][i], fmt)
            column.append(argument_value(draw, plan, fmt, f"x{arg}[{i}]"))
        columns[arg] = tuple(column)
    return tuple(constants[a] if a in constants else columns[a] for a in range(op.arity))


def off_the_plan(op: OpSpec, fmt: FloatFormat, point: tuple) -> str | None:
    """What in a drawn `point` (`whole_domain_points`: one tuple of values per tensor argument, constants as
    they are) breaks the strategy's promise, or None: every value a float of the dtype, inside its argument's
    interval and off its avoided points (off the powers of two, the jumps of a periodic op, the multiples of
    another argument where the plan says so). The whole-domain property asserts it on every draw."""
    parameters = tuple(point[1:]) if op.operands is Operands.PARAMETERS else ()
    for arg in (a for a in range(op.arity) if a not in op.constant_args):
        plan = _plan(op, arg, fmt, None, parameters, None)
        for value in point[arg]:
            if not math.isfinite(value) or fmt.round(value) != value:
                return f"x{arg} = {value!r}, not a finite {fmt.name}"
            if op.operands is not Operands.EXPONENT and (value not in plan.interval or value in plan.avoid):
                return f"x{arg} = {value!r}, outside {plan.interval} or on an avoided point"
            if plan.off_powers_of_two and value != 0 and math.frexp(value)[0] in (0.5, -0.5):
                return f"x{arg} = {value!r}, a power of two"
            # exactly: a float minus the offset may round onto a jump
            if plan.periodic is not None and (
                    (Fraction(value) - Fraction(plan.periodic.offset)) % Fraction(plan.periodic.period) == 0):
                return f"x{arg} = {value!r}, on a jump"
    for a, b in (s.multiples for s in op.specials if s.multiples is not None):  # x1 % x0: x1 off the multiples of x0
        for value, period in zip(point[a], point[b]):
            if abs(period) >= 2 * fmt.min_subnormal and Fraction(value) % Fraction(abs(period)) == 0:
                return f"x{a} = {value!r}, a multiple of x{b} = {period!r}"
    return None


@dataclass(frozen=True)
class WholeDomainCase:
    """A single-op case over the whole domain, the points each tensor input was kept off (its interval's ends
    and specials: the run report records how close the inputs came), and the drawn point (`off_the_plan`)."""

    case: GradCase
    avoided: tuple[tuple[float, ...], ...]  # per input x0, x1, ...
    point: tuple


def _spellings_for(op: OpSpec) -> list[int]:
    consts = op.constant_args
    return [i for i, s in enumerate(op.spellings)
            if (s.const_second or 1 not in consts) and (s.const_first or 0 not in consts)]


@st.composite
def whole_domain_cases(draw, name: str, dtype: str, max_points: int = 4) -> WholeDomainCase:
    """`name` applied to 1-`max_points` points of its whole domain at once (inputs of shape (n,))."""
    op, fmt = OPS[name], format_named(dtype)
    size = draw(st.integers(1, max_points), label="points")
    point = draw(whole_domain_points(op, fmt, size), label="point")
    args, values, avoided = [], [], []
    parameters = tuple(point[a] for a in range(1, op.arity)) if op.operands is Operands.PARAMETERS else ()
    for arg, value in enumerate(point):
        if arg in op.constant_args:
            args.append(Const(value))
            continue
        args.append(Var(len(values)))
        values.append(value)
        avoided.append(_plan(op, arg, fmt, None, parameters, None).avoid)
    spelling = draw(choice(_spellings_for(op)), label="spelling")
    case = GradCase(Apply(name, tuple(args), spelling), ((size,),) * len(values), tuple(values), dtype)
    return WholeDomainCase(case, tuple(avoided), point)
