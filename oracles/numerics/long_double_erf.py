"""erf at many long double points, enclosed rigorously: the fast pass's erf for float64 cases, where Python's
double `math.erf` is too coarse for the error model (numpy has no erf).

|x| >= 6: erfc(x) <= exp(-x²) / (x sqrt(pi)) <= 2.2e-17 < 2^-55, so erf(x) lies within 2^-55 below ±1.
|x| < 1/16: erf(x) = x Q(x²), Q(t) = 2/sqrt(pi) Σ (-1)^n t^n / (n! (2n + 1)), an alternating series whose terms
decrease: cut after N_ODD terms, the rest is within the next term (relative accuracy however small x is).
Elsewhere: the Taylor polynomial of degree DEGREE around the nearest anchor k/8, |h| <= 1/16, with arb's
coefficients (enclosed in long doubles) and Cauchy's bound on the rest: |a_n| <= M / 1^n, M the largest |erf| on
the unit circle around the anchor (arb, over the enclosing complex box), so the rest is within
M (1/16)^(DEGREE + 1) / (1 - 1/16). Everything is evaluated in interval arithmetic with each result moved outward.
"""

from __future__ import annotations

import functools

import numpy as np
from flint import acb, arb, arb_series, ctx, fmpq

from oracles.numerics.directed import LD, LONG_DOUBLE, down, up

SPACING = 8  # anchors at k / 8
LAST_ANCHOR = 48  # |x| < 6 = 48 / 8
DEGREE = 17
N_ODD = 6


def _ld(value: arb) -> tuple[np.longdouble, np.longdouble]:
    """Long doubles below and above every point of an arb ball (its midpoint cut to 64 bits, its radius added)."""
    man, exp = value.mid().man_exp()
    sign = -1 if man < 0 else 1
    man = abs(int(man))
    shift = max(man.bit_length() - 64, 0)
    low = LD(man >> shift)  # an integer below 2^64: exact in a long double
    high = low if shift == 0 else low + 1  # the bits cut off lie between
    low, high = np.ldexp(low, int(exp) + shift), np.ldexp(high, int(exp) + shift)
    if sign < 0:
        low, high = -high, -low
    radius = LD(float(value.rad()) * (1 + 2.0**-50)) + LONG_DOUBLE.tiny
    return down(low - radius), up(high + radius)


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per anchor k/8 (k = -48..48): the Taylor coefficients' long double bounds (low, high: anchors x degree),
    and the bound on the rest; and Q's coefficients' bounds."""
    cap, ctx.cap = ctx.cap, DEGREE + 1  # python-flint's series keep ctx.cap terms (10 by default)
    try:
        return _build_tables()
    finally:
        ctx.cap = cap


def _build_tables():
    anchors = range(-LAST_ANCHOR, LAST_ANCHOR + 1)
    low = np.zeros((len(anchors), DEGREE + 1), dtype=LD)
    high = np.zeros_like(low)
    rest = np.zeros(len(anchors), dtype=LD)
    for row, k in enumerate(anchors):
        center = arb(fmpq(k, SPACING))
        coefficients = arb_series([center, 1], prec=DEGREE + 1).erf()
        for n in range(DEGREE + 1):
            low[row, n], high[row, n] = _ld(coefficients[n])
        box = acb(arb(center, 1), arb(0, 1))  # contains the unit circle around the anchor
        largest = box.erf().abs_upper()
        h = arb(1) / 16
        rest[row] = _ld(largest * h ** (DEGREE + 1) / (1 - h))[1]
    scale = 2 / arb.pi().sqrt()
    odd_low, odd_high = np.zeros(N_ODD + 1, dtype=LD), np.zeros(N_ODD + 1, dtype=LD)
    factorial = 1
    for n in range(N_ODD + 1):
        factorial *= max(n, 1)
        odd_low[n], odd_high[n] = _ld(scale * (-1) ** n / (factorial * (2 * n + 1)))
    return low, high, rest, odd_low, odd_high


def _mul(a_low, a_high, b_low, b_high):
    products = np.stack([a_low * b_low, a_low * b_high, a_high * b_low, a_high * b_high])
    return down(products.min(axis=0)), up(products.max(axis=0))


def _odd_series(x: np.ndarray, odd_low: np.ndarray, odd_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t_low, t_high = down(x * x), up(x * x)
    low, high = np.full_like(x, odd_low[N_ODD]), np.full_like(x, odd_high[N_ODD])
    for n in range(N_ODD - 1, -1, -1):
        low, high = _mul(low, high, t_low, t_high)
        low, high = down(low + odd_low[n]), up(high + odd_high[n])
    # the first term left out, (2/sqrt(pi)) t^(N+1) / ((N+1)! (2N+3)), bounds the rest: within 2^-70 of Q ~ 1.13
    low, high = low - LD(2.0**-70), high + LD(2.0**-70)
    return _mul(low, high, x, x)


def erf_enclosure(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Long doubles below and above erf(x) at each point of `x` (long doubles; NaN stays NaN)."""
    low_table, high_table, rest, odd_low, odd_high = _tables()
    with np.errstate(all="ignore"):
        k = np.clip(np.rint(x * SPACING), -LAST_ANCHOR, LAST_ANCHOR)
        k = np.where(np.isfinite(k), k, 0).astype(int)
        h = x - LD(1) * k / SPACING  # k / 8 is exact
        h_low, h_high = down(h), up(h)
        row = k + LAST_ANCHOR
        low, high = low_table[row, DEGREE], high_table[row, DEGREE]
        for n in range(DEGREE - 1, -1, -1):
            low, high = _mul(low, high, h_low, h_high)
            low, high = down(low + low_table[row, n]), up(high + high_table[row, n])
        low, high = down(low - rest[row]), up(high + rest[row])
        small_low, small_high = _odd_series(x, odd_low, odd_high)
        near_zero = k == 0
        low, high = np.where(near_zero, small_low, low), np.where(near_zero, small_high, high)
        far = np.abs(x) >= 6
        far_low = np.where(x > 0, 1 - LD(2.0**-55), -1)
        far_high = np.where(x > 0, 1, -1 + LD(2.0**-55))
        low, high = np.where(far, far_low, low), np.where(far, far_high, high)
        invalid = ~np.isfinite(x)
        low, high = np.where(invalid, np.nan, low), np.where(invalid, np.nan, high)
    return low, high
