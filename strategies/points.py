"""Points for one op applied directly to its inputs, over the dtype's whole range (the explorer's
"domain" mode) or a few to 2^62 ulps off one of the op's pinned conventions ("near" mode).

A point is the op's full argument tuple (tensor values and constants), valid by construction: each
tensor argument is drawn inside its domain (positive, nonzero, inside (-1, 1), ...), constants from
the op table's choices. Distances from a convention point are log-uniform in ulps, so one search spans
the subnormals next to 0 as well as the values a long way off.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from oracles.core.test_ids import selectable
from oracles.numerics.dtypes import FloatFormat
from oracles.numerics.floats import to_ordinal, ulp_step
from oracles.table.conventions import Convention
from oracles.table.domains import REALS, Domain, Interval
from oracles.table.ops import Operands, OpSpec
from strategies.cached import choice
from strategies.whole_domain import EXPONENTS


def _width(fmt: FloatFormat) -> int:
    return {"float64": 64, "float32": 32}.get(fmt.name, 32 if fmt.name == "bfloat16" else 16)


def _finite(fmt: FloatFormat, lo: float, hi: float, **flags) -> st.SearchStrategy[float]:
    """Values of `fmt` in [lo, hi]: Hypothesis floats of the nearest width, rounded to the format and
    clamped back into the range rounding may leave."""
    def fit(v: float) -> float:
        r = fmt.round(v)
        return min(max(r, lo), hi) if math.isfinite(r) else (hi if v > 0 else lo)

    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=_width(fmt), **flags).map(fit)


def _inside(interval: Interval, fmt: FloatFormat) -> tuple[float, float]:
    """The smallest and largest finite values of `fmt` in `interval`."""
    low = -fmt.max_finite if not math.isfinite(interval.low) else (
        interval.low if interval.low_closed else ulp_step(interval.low, 1, fmt))
    high = fmt.max_finite if not math.isfinite(interval.high) else (
        interval.high if interval.high_closed else ulp_step(interval.high, -1, fmt))
    return low, high


def domain_values(domain: Domain, fmt: FloatFormat, interval: Interval = REALS) -> st.SearchStrategy[float]:
    """Values of the argument's domain over the dtype's range; inside the entry's interval where that is
    narrower (logit's (0, 1), mvlgamma's x > (p - 1)/2: outside, the function is not real and SymPy's
    derivative formula still gives a number)."""
    if interval != REALS:
        return _finite(fmt, *_inside(interval, fmt))
    top = fmt.max_finite
    positive = _finite(fmt, fmt.min_subnormal, top)
    if domain is Domain.POSITIVE:
        return positive
    if domain is Domain.NONZERO:
        return st.tuples(choice([1.0, -1.0]), positive).map(lambda sv: sv[0] * sv[1])
    if domain is Domain.UNIT:
        below_one = ulp_step(1.0, -1, fmt)
        return _finite(fmt, -below_one, below_one)
    return _finite(fmt, -top, top)  # REAL, and kinked domains: kinks are met, and reported singular


@st.composite
def domain_points(draw, op: OpSpec, fmt: FloatFormat) -> tuple[float, ...]:
    """The op's arguments anywhere in its domain (constants from the table's choices)."""
    if op.operands is Operands.EXPONENT:
        base_domain = draw(choice(list(EXPONENTS)), label="exponent kind")
        exponent = draw(choice(EXPONENTS[base_domain]), label="exponent")
        return draw(domain_values(base_domain, fmt), label="base"), exponent
    if op.operands is Operands.PARAMETERS:
        params = draw(choice(op.parameters), label="parameters")
        return (draw(domain_values(op.domains[0], fmt, op.intervals[0]), label="x0"),) + tuple(params)
    return tuple(draw(domain_values(d, fmt, interval), label=f"x{i}")
                 for i, (d, interval) in enumerate(zip(op.domains, op.intervals)))


def ulp_offsets(max_k: int) -> st.SearchStrategy[int]:
    """A distance in ulps, log-uniform in magnitude from 1 to `max_k`."""
    @st.composite
    def offsets(draw):
        exponent = draw(st.integers(0, max(max_k.bit_length() - 1, 0)), label="log2 distance (ulps)")
        k = (1 << exponent) + draw(st.integers(0, (1 << exponent) - 1), label="distance (ulps)")
        return min(k, max_k)

    return offsets()


def room(value: float, direction: int, domain: Domain, fmt: FloatFormat, interval: Interval = REALS) -> int:
    """How many ulps `value` may move towards `direction` and stay inside `domain` (finite, positive for
    POSITIVE, nonzero for NONZERO, inside (-1, 1) for UNIT) and inside the entry's `interval`."""
    here = to_ordinal(value, fmt)
    if interval != REALS:
        low, high = _inside(interval, fmt)
        return max(0, (to_ordinal(high if direction > 0 else low, fmt) - here) * direction)
    if domain is Domain.UNIT:
        edge = to_ordinal(direction * ulp_step(1.0, -1, fmt), fmt)
    elif domain is Domain.POSITIVE and direction < 0:
        edge = 1  # the smallest positive subnormal
    elif domain is Domain.NONZERO and here != 0 and (here > 0) != (direction > 0):
        edge = direction  # the smallest value of this sign: never 0 or across it
    else:
        edge = to_ordinal(direction * fmt.max_finite, fmt)
    return max(0, (edge - here) * direction)


def near_conventions(op: OpSpec, dtype: str) -> tuple[Convention, ...]:
    """The conventions whose point the near mode may start from: pinned for `dtype`, finite tensor args."""
    return tuple(c for c in op.conventions if dtype in c.dtypes
                 and all(math.isfinite(c.at[i]) for i in range(len(c.at)) if i not in op.constant_args))


def _moves(op: OpSpec, convention: Convention) -> list[tuple[int, int]]:
    """(argument, direction) pairs to explore: the convention's approaches (the sides where the op is
    defined), else every tensor argument both ways."""
    if convention.approaches:
        return [(a.arg, a.side) for a in convention.approaches]
    tensors = [i for i in range(len(convention.at)) if i not in op.constant_args]
    return [(i, d) for i in tensors for d in (1, -1)]


@st.composite
def near_points(draw, op: OpSpec, fmt: FloatFormat) -> tuple[tuple[float, ...], str, dict[int, int]]:
    """A convention point of `op` with one tensor argument moved off it, 1 to 2^62 ulps (log-uniform)
    along one of the convention's approaches and within the op's domain: (point, convention id,
    {argument: signed ulps moved})."""
    convention = draw(choice(near_conventions(op, fmt.name)), label="convention")
    arg, direction = draw(choice(_moves(op, convention)), label="move")
    domain = op.domains[arg] if op.operands is not Operands.EXPONENT else Domain.REAL
    at = list(convention.at)
    # a convention may be pinned outside the argument's interval (pow at a negative base, its exponent an
    # integer): from there the move is the domain's; from inside or on its edge, it stays inside
    interval = op.intervals[arg] if op.operands is not Operands.EXPONENT else REALS
    if not interval.low <= at[arg] <= interval.high:
        interval = REALS
    max_k = room(at[arg], direction, domain, fmt, interval)
    if max_k == 0:
        return tuple(at), selectable(f"{op.name}@{convention.name}"), {}
    k = draw(ulp_offsets(max_k), label=f"x{arg} offset")
    at[arg] = ulp_step(at[arg], direction * k, fmt)
    return tuple(at), selectable(f"{op.name}@{convention.name}"), {arg: direction * k}
