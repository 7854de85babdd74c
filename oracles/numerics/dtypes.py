"""The floating-point formats under test and the numbers the error model needs from each."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FloatFormat:
    name: str
    torch_dtype: torch.dtype
    mantissa_bits: int  # including the implicit bit
    min_subnormal: float
    max_finite: float
    # torch's vectorized bfloat16 kernels on the CPU may flush a subnormal result to 0 (gelu of a subnormal
    # is 0 in a tensor of two or more elements and exact in a tensor of one: finding bfloat16-subnormal-flush)
    flushes_subnormals: bool = False

    @property
    def smallest_normal(self) -> float:
        return self.min_subnormal * 2.0 ** (self.mantissa_bits - 1)

    @property
    def absolute_error(self) -> float:
        """The largest error of one operation whose result is near 0: half the subnormal spacing at most,
        bounded by it here; where subnormals may be flushed, the whole subnormal range."""
        return self.smallest_normal if self.flushes_subnormals else self.min_subnormal

    @property
    def unit_roundoff(self) -> float:
        """u: the largest relative error of one correctly rounded operation."""
        return 2.0 ** -self.mantissa_bits

    def round(self, value: float) -> float:
        """The exact value (as a Python float) of `value` rounded to this format."""
        return torch.tensor(value, dtype=torch.float64).to(self.torch_dtype).item()


def _format(name: str, dtype: torch.dtype, flushes_subnormals: bool = False) -> FloatFormat:
    info = torch.finfo(dtype)
    return FloatFormat(
        name=name,
        torch_dtype=dtype,
        mantissa_bits=-int(round(torch.log2(torch.tensor(info.eps, dtype=torch.float64)).item())) + 1,
        min_subnormal=float(info.smallest_normal) * float(info.eps),
        max_finite=float(info.max),
        flushes_subnormals=flushes_subnormals,
    )


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        _format("float64", torch.float64),
        _format("float32", torch.float32),
        _format("bfloat16", torch.bfloat16, flushes_subnormals=True),
        _format("float16", torch.float16),
    )
}


def format_named(name: str) -> FloatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(FORMATS)}") from None
