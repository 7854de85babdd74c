"""Walking the floats of a dtype: k ulps from a value, the distance between two values in ulps, the spacing
of the dtype at a value (the verdicts' ulp scale) and the error of a computed value against an exact one in
ulps (the explorer's and the findings' yardstick).

A float's bits, read as a sign-magnitude integer, order the floats; stepping that integer by k moves k
representable values (through the subnormals, across zero: -0 and +0 are one point).
"""

from __future__ import annotations

import math

import torch

from oracles.numerics.dtypes import FloatFormat

_INT = {torch.float64: torch.int64, torch.float32: torch.int32, torch.bfloat16: torch.int16,
        torch.float16: torch.int16}


def _bits(fmt: FloatFormat) -> int:
    return torch.finfo(fmt.torch_dtype).bits


def to_ordinal(value: float, fmt: FloatFormat) -> int:
    """The position of `value` (representable in `fmt`) among the finite floats; 0 for ±0."""
    raw = torch.tensor([value], dtype=torch.float64).to(fmt.torch_dtype).view(_INT[fmt.torch_dtype]).item()
    magnitude = raw & ((1 << (_bits(fmt) - 1)) - 1)
    return -magnitude if raw < 0 else magnitude


def from_ordinal(ordinal: int, fmt: FloatFormat) -> float:
    """The float at `ordinal`, clamped to the finite range."""
    limit = to_ordinal(fmt.max_finite, fmt)
    ordinal = max(-limit, min(limit, ordinal))
    raw = ordinal if ordinal >= 0 else -ordinal - (1 << (_bits(fmt) - 1))
    return torch.tensor([raw], dtype=_INT[fmt.torch_dtype]).view(fmt.torch_dtype).item()


def ulp_step(value: float, k: int, fmt: FloatFormat) -> float:
    """The float k representable values above `value` (below for negative k), within the finite range.
    From -0 or +0, one step up is the smallest positive subnormal."""
    return from_ordinal(to_ordinal(value, fmt) + k, fmt)


def ulp_of(value: float, fmt: FloatFormat) -> float:
    """Spacing of `fmt` at `value` (the subnormal spacing below the normal range)."""
    if not math.isfinite(value) or abs(value) < fmt.smallest_normal:
        return fmt.min_subnormal
    return 2.0 ** (math.frexp(abs(value))[1] - fmt.mantissa_bits)


def error_in_ulps(computed: float, exact: float, fmt: FloatFormat) -> float:
    """|computed - exact| in ulps of the dtype at `exact` (inf when `computed` is not finite)."""
    if not math.isfinite(computed):
        return math.inf
    return abs(computed - exact) / ulp_of(exact, fmt)
