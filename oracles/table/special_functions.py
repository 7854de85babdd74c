"""Special functions (torch.special and their torch.* spellings) as entries of the elementwise op table
(`OPS`, oracles.table.ops): x log y and x log(1 + y), entropy, the inverse error function.

Each entry registers itself on import (oracles/table/__init__.py imports this module). Forwards and local
derivatives follow torch's CPU kernels (aten/src/ATen/native/cpu/BinaryOpsKernel.cpp, UnaryOpsKernel.cpp,
Math.h) and derivatives.yaml, every float operation rounded by the `RoundingModel` `F`; the kernels'
accuracies (`ulps`) were measured against arb (a few thousand points per dtype and function, tails
included). Conventions live in oracles.table.special_conventions.
"""

from __future__ import annotations

import math

import mpmath
import sympy
import torch
from flint import acb, arb, ctx

from oracles.numerics.exact import STEP_EVALUATORS, arb_erfcx
from oracles.numerics.monotone import monotone, monotone_in_magnitude
from oracles.numerics.rounding import Singular, int_power
from oracles.numerics.sympy_functions import Erfcx, Ndtr, Ndtri, Trunc
from oracles.table import special_conventions as pins
from oracles.table.conventions import ALL_DTYPES as DTYPES
from oracles.table.domains import Domain, Interval, Kind, Special, edge, kink, pole
from oracles.table.math_functions import ERFC_ULPS
from oracles.table.ops import (
    NONNEGATIVE_REALS,
    ONE,
    POSITIVE_REALS,
    REALS,
    ZERO,
    BlindSpot,
    P,
    R,
    Skip,
    Spelling,
    add_op,
    add_unary,
    ref,
    unary_spellings,
)

mp = mpmath.mp
# log and log1p (libm, Sleef's u10 in vectorised loops): 1 ulp
LOG_K = 2


def _log(F, a):
    return F.round(a.log(), LOG_K)


def _log1p(F, a):
    return F.round(a.log1p(), LOG_K)


# ---------------------------------------------------------------- x log y, x log(1 + y): 0 where x == 0
def _times_log(log):
    # xlogy / xlog1py kernels: isnan(y) ? NAN : (x == 0 ? 0 : x * log(y)); for bfloat16 and float16 the
    # log is rounded to the dtype before the product (c10's BFloat16/Half math), which this model's per-step
    # rounding in the dtype encloses
    def forward(F, x, y):
        if x.is_exact() and x.is_zero():
            return ZERO
        return F.mul(x, log(F, y))

    return forward


# xlogy.Tensor: self: at::xlogy(grad, other).masked_fill((self == 0.) & (other <= 0.), 0.); other: grad * self / other
add_op("xlogy", [Spelling("torch.xlogy({0}, {1})", torch.xlogy),
              Spelling("{0}.xlogy({1})", lambda a, b: a.xlogy(b)),
              Spelling("torch.special.xlogy({0}, {1})", torch.special.xlogy)],
    lambda a, b: a * sympy.log(b), _times_log(_log),
    lambda F, args, y: (_log(F, args[1]), F.div(args[0], args[1])), (R, P),
    intervals=(REALS, POSITIVE_REALS), specials=(pole("x1 = 0", 0.0, arg=1),), conventions=pins.XLOGY,
    references=(ref((0.75, 1.25), lambda a, b: (mp.log(b), a / b)), ref((-2.0, 0.5), lambda a, b: (mp.log(b), a / b))))
# special_xlog1py: self: at::special_xlog1py(grad, other).masked_fill(...); other: grad * self / (other + 1)
add_op("special.xlog1py", [Spelling("torch.special.xlog1py({0}, {1})", torch.special.xlog1py)],
    lambda a, b: a * sympy.log(1 + b), _times_log(_log1p),
    lambda F, args, y: (_log1p(F, args[1]), F.div(args[0], F.add(args[1], ONE))), (R, P),
    intervals=(REALS, Interval(-1.0)), specials=(pole("x1 = -1", -1.0, arg=1),), conventions=pins.XLOG1PY,
    references=(ref((0.75, 1.25), lambda a, b: (mp.log(1 + b), a / (1 + b))),))


# ---------------------------------------------------------------- entr: -x log x, 0 at 0
def _entr_forward(F, a):
    # entr kernel: x > 0 ? -x * log(x) : (x == 0 ? 0 : -inf)
    return F.mul(-a, _log(F, a))


# entr: grad * (-(1 + self.log()))
add_op("special.entr", [Spelling("torch.special.entr({0})", torch.special.entr)],
    lambda a: -a * sympy.log(a), _entr_forward, lambda F, args, y: (-F.add(ONE, _log(F, args[0])),), (P,),
    intervals=(NONNEGATIVE_REALS,), specials=(edge("x = 0", 0.0),), conventions=pins.ENTR,
    findings=("entr-double-backward-negative-zero",),
    references=(ref((0.5,), lambda a: (-(1 + mp.log(a)),)), ref((3.0,), lambda a: (-(1 + mp.log(a)),))))


# ---------------------------------------------------------------- erfinv
# calc_erfinv (Math.h): a rational first guess and two Newton steps, in float for bfloat16 and float16;
# measured within 1 ulp in every dtype (float64: correctly rounded on 3,000 points, tails to 1 - 2^-52).
ERFINV_ULPS = 1


def _erfinv_grads(F, args, y):
    # erfinv: 0.5 * sqrt(M_PI) * exp(self.erfinv().pow(2)) * grad: erfinv recomputed, not the result
    inverse = F.round(monotone(lambda v: v.erfinv(), args[0]), 2 * ERFINV_ULPS)
    return (F.mul(F.round(arb.pi().sqrt() / 2), F.round(F.mul(inverse, inverse).exp(), 2)),)


add_unary("erfinv", sympy.erfinv, lambda a: monotone(lambda v: v.erfinv(), a), _erfinv_grads, Domain.UNIT,
    ulps=ERFINV_ULPS,
    spellings=unary_spellings("erfinv", Spelling("torch.special.erfinv({0})", torch.special.erfinv)),
    intervals=(Interval(-1.0, 1.0),), specials=(pole("x = ±1", -1.0, 1.0),), conventions=pins.ERFINV,
    references=(ref((0.5,), lambda a: (mp.sqrt(mp.pi) / 2 * mp.exp(mp.erfinv(a) ** 2),)),))


# ---------------------------------------------------------------- erfcx(x) = exp(x^2) erfc(x) (Math.h, Faddeeva)
# calc_erfcx has float and double kernels only: bfloat16 and float16 raise NotImplementedError. For x >= 0 it is
# erfcx_y100(400 / (4 + x)) (Chebyshev pieces), past 50 a continued fraction, past 5e7 1/(sqrt(pi) x): measured
# within 8 ulps (float64 at 6.8e-6; float32 7.4 at 0.0063; 22,000 points per dtype, log-uniform from the
# smallest subnormal to the largest float, dense on [0, 60] and around 50 and 5e7). For x < 0 it is
# 2 * exp(x * x) - erfcx_y100(400 / (4 - x)) (the subtraction dropped below -6.1): its error, measured within
# 4 ulps times x^2, is the rounding of x * x magnified by exp, which the model replays.
ERFCX_ULPS = 8
ERFCX_DTYPES = ("float64", "float32")


def _erfcx(F, x):
    if not F.greater(ZERO, x):
        return F.round(monotone(arb_erfcx, x), 2 * ERFCX_ULPS)  # decreasing
    growth = F.mul(arb(2), F.round(F.mul(x, x).exp(), 2))
    return F.sub(growth, F.round(monotone(arb_erfcx, -x), 2 * ERFCX_ULPS))


def _erfcx_grads(F, args, y):
    # special_erfcx: (2.0 * self * result - 2.0 / sqrt(M_PI)) * grad; the double constant rounded to the dtype
    # by the subtraction. For large x the difference cancels: finding erfcx-gradient-cancellation
    x = args[0]
    return (F.sub(F.mul(F.mul(arb(2), x), y), F.const(2.0 / math.sqrt(math.pi))),)


add_op("special.erfcx", [Spelling("torch.special.erfcx({0})", torch.special.erfcx)],
    Erfcx, _erfcx, _erfcx_grads, (R,), ulps=ERFCX_ULPS,
    backward_dtypes=ERFCX_DTYPES, findings=("erfcx-gradient-cancellation",),
    higher_order_gap="the jet model has no erfcx",
    references=(ref((0.5,), lambda a: (2 * a * mp.exp(a**2) * mp.erfc(a) - 2 / mp.sqrt(mp.pi),)),
                ref((-1.5,), lambda a: (2 * a * mp.exp(a**2) * mp.erfc(a) - 2 / mp.sqrt(mp.pi),))))


# ---------------------------------------------------------------- log_ndtr(x) = log Φ(x) (Math.h, after SciPy)
# calc_log_ndtr (float and double only), t = x * frac_sqrt_2 (1/sqrt(2) in the dtype): below -1
# log(erfcx(-t) / 2) - t * t, else log1p(-erfc(t) / 2), each libm call (log, log1p, erfc) as the table models it.
def _log_ndtr(F, x):
    t = F.mul(x, F.const(1 / math.sqrt(2)))
    if F.greater(arb(-1), x):
        return F.sub(_log(F, _erfcx(F, -t) / 2), F.mul(t, t))
    return _log1p(F, -F.round(t.erfc(), 2 * ERFC_ULPS) / 2)


def _log_ndtr_grads(F, args, y):
    # special_log_ndtr: grad / std::sqrt(2 * M_PI) * (result + self.pow(2) / 2).neg().exp(). Far below 0 the
    # sum cancels (result ~ -x^2 / 2): finding log-ndtr-gradient-cancellation
    x = args[0]
    exponent = F.add(y, F.div(F.mul(x, x), arb(2)))
    return (F.mul(F.div(ONE, F.const(math.sqrt(2 * math.pi))), F.round((-exponent).exp(), 2)),)


add_op("special.log_ndtr", [Spelling("torch.special.log_ndtr({0})", torch.special.log_ndtr)],
    lambda a: sympy.log(Ndtr(a)), _log_ndtr, _log_ndtr_grads, (R,), ulps=ERFCX_ULPS,
    backward_dtypes=ERFCX_DTYPES, findings=("log-ndtr-gradient-cancellation",),
    higher_order_gap="the jet model has no erfcx",
    references=(ref((0.5,), lambda a: (mp.npdf(a) / mp.ncdf(a),)), ref((-3.0,), lambda a: (mp.npdf(a) / mp.ncdf(a),))))


# ---------------------------------------------------------------- ndtri: the inverse of Φ (Math.h, Cephes)
# calc_ndtri (float and double only): rational approximations in sqrt(-2 log y) (of 1 - y above 1 - e^-2, exact
# there), measured within 3.4 ulps (float32 at 0.166; float64 3 at 0.884; 10,000 points per dtype, log-uniform
# down to the smallest subnormal and up to 1 - u).
NDTRI_ULPS = 4


def _ndtri_grads(F, args, y):
    # special_ndtri: grad * std::sqrt(2 * M_PI) * (result.square() / 2).exp()
    half_square = F.div(F.mul(y, y), arb(2))
    return (F.mul(F.const(math.sqrt(2 * math.pi)), F.round(half_square.exp(), 2)),)


def _ndtri_exact(x):
    return -arb(2).sqrt() * (2 * x).erfcinv()


add_op("special.ndtri", [Spelling("torch.special.ndtri({0})", torch.special.ndtri)], Ndtri,
    lambda F, a: F.round(_ndtri_exact(a), 2 * NDTRI_ULPS), _ndtri_grads, (Domain.INSIDE_UNIT_INTERVAL,),
    ulps=NDTRI_ULPS, backward_dtypes=ERFCX_DTYPES, intervals=(Interval(0.0, 1.0),),
    specials=(pole("y = 0, 1", 0.0, 1.0),), conventions=pins.NDTRI,
    higher_order_gap="the jet model has no ndtri",
    references=(ref((0.25,), lambda a: (1 / mp.npdf(mp.sqrt(2) * mp.erfinv(2 * a - 1)),)),))


# ---------------------------------------------------------------- digamma, trigamma, lgamma (Math.h)
# The poles 0, -1, -2, ... of all three; the positive integers are listed too (a period of 1), where
# nothing happens: the strategies keep every argument off them (OFF_INTEGERS), which costs nothing else.
GAMMA_POLES = Special(Kind.POLE, "x = 0, -1, -2, ... (drawn off every integer)", 0, (0.0,), period=1.0)
HIGHER_GAMMA_GAP = ("torch differentiates polygamma(n, x) with the kernel of polygamma(n + 1, x) (Hurwitz zeta "
                    "for n >= 1), whose accuracy at negative x is not modelled yet")


def _pi(F):
    return F.round(arb.pi())


def _digamma_positive(F, x):
    """calc_digamma for x > 0: result -= 1/x, x += 1 while x < 10, then log(x) - 0.5/x - (a series in 1/x²).
    Each step errs by u of the partial sums, at most their magnitude: the terms 1/x_i, log and 1 (the series
    and its truncation below 1/(12 x^14) are far smaller), over 2 per term plus 4 operations."""
    low = x.lower()
    magnitude, steps = arb(1), 0
    while low < 10:
        magnitude += 1 / low
        low += 1
        steps += 1
    magnitude += (x.upper() + 10).log()
    return F.round(monotone(lambda v: v.digamma(), x), 2 * (2 * steps + 4), magnitude)  # increasing on (0, inf)


def _digamma(F, x):
    # calc_digamma: x < 0 reflects, with the fractional part r = modf(x) for an accurate tan:
    # digamma(1 - x) - pi / tan(pi * r); 1 / tan(θ) within 1.5 ulps of cot(θ), which unlike tan is continuous at
    # r = ±1/2 (where the rounded pi * r may lie either side of ±pi/2)
    if F.greater(x, ZERO):
        return _digamma_positive(F, x)
    r = x - STEP_EVALUATORS[Trunc](x)
    if r.is_zero():
        raise Singular("digamma at a pole")
    return F.sub(_digamma_positive(F, F.sub(ONE, x)), F.mul(_pi(F), F.round(F.mul(_pi(F), r).cot(), 3)))


def _trigamma(F, x):
    """calc_trigamma: for x < 0.5, -pi²/sin²(pi x) (of the whole rounded pi * x: finding trigamma-negative-phase)
    and x -> 1 - x; then six terms 1/x², x += 1 each, and the
    asymptotic (1 + 1/(2x) + 1/x² (1/6 - 1/x² (1/30 - 1/(42 x²)))) / x, whose truncation (below 1/(30 x^9), a
    relative 5e-10 at x = 7) is beyond float64's precision (finding trigamma-float64-truncated-series): that
    error is added to the enclosure, as the kernel's accuracy."""
    terms, sign = [], 1
    if F.greater(arb(0.5), x):
        sign = -1
        sine = F.round(F.mul(_pi(F), x).sin(), 2)
        terms.append(-F.div(F.mul(_pi(F), _pi(F)), F.mul(sine, sine)))
        x = F.sub(ONE, x)
    for _ in range(6):
        terms.append(F.div(ONE, F.mul(x, x)))
        x = F.add(x, ONE)
    inverse_square = 1 / (x * x)
    bracket = arb(1) / 6 - inverse_square * (arb(1) / 30 - inverse_square / 42)
    series = (1 + 1 / (2 * x) + inverse_square * bracket) / x
    truncation = (1 / (30 * x ** 9)).abs_upper()
    terms.append(F.round(series, 12) + arb(0, truncation))
    return F.sum(terms) * sign


def _in_float(model):
    """A kernel of Math.h that bfloat16 and float16 run on float, rounding once."""
    return lambda F, *args: F.store(model(F.opmath, *args))


def _polygamma_spellings(n):
    return [Spelling(f"torch.polygamma({n}, {{0}})", lambda a, _n=n: torch.polygamma(_n, a)),
            Spelling(f"{{0}}.polygamma({n})", lambda a, _n=n: a.polygamma(_n))]


# digamma, polygamma(0, x): grad * polygamma(1, self), i.e. calc_trigamma
add_op("digamma", unary_spellings("digamma", Spelling("torch.special.digamma({0})", torch.special.digamma),
                                  Spelling("torch.special.psi({0})", torch.special.psi))
    + _polygamma_spellings(0) + [Spelling("torch.special.polygamma(0, {0})", lambda a: torch.special.polygamma(0, a))],
    sympy.digamma, _in_float(_digamma), lambda F, args, y: (F.store(_trigamma(F.opmath, args[0])),),
    (Domain.OFF_INTEGERS,), opinfo=("digamma", "polygamma[polygamma_n_0]", "special.polygamma[special_polygamma_n_0]"),
    specials=(GAMMA_POLES,), conventions=pins.DIGAMMA, higher_order_gap=HIGHER_GAMMA_GAP,
    findings=("trigamma-float64-truncated-series", "trigamma-negative-phase"),
    references=(ref((2.5,), lambda a: (mp.polygamma(1, a),)), ref((-0.75,), lambda a: (mp.polygamma(1, a),))))
# lgamma = log|Γ(x)| (libm; float for bfloat16 and float16), within 1.1 u of max(|lgamma|, 1) measured in every
# dtype (an absolute error near its zeros at 1, 2 and between the negative poles). lgamma: grad * digamma(self)
LGAMMA_K = 3
LGAMMA_INCREASING_FROM = 1.5  # lgamma's minimum on (0, inf) is at 1.4616


def _lgamma(F, x):
    if isinstance(x, arb) and x > LGAMMA_INCREASING_FROM:  # arb's lgamma of a wide ball there is NaN (140 ± 4.65)
        value = monotone(lambda v: acb(v).lgamma().real, x)
    else:
        value = acb(x).lgamma().real
    return F.round(value, LGAMMA_K, abs(value).upper().max(ONE))


add_op("lgamma", unary_spellings("lgamma", Spelling("torch.special.gammaln({0})", torch.special.gammaln)),
    sympy.loggamma, _in_float(_lgamma), lambda F, args, y: (F.store(_digamma(F.opmath, args[0])),),
    (Domain.OFF_INTEGERS,), specials=(GAMMA_POLES,), conventions=pins.LGAMMA, higher_order_gap=HIGHER_GAMMA_GAP,
    # the random programs centre an argument between two integers (1.5 ± 0.375 here), around digamma's zero
    # at 1.4616, where the gradient is smaller than bfloat16's rounding of torch's digamma. Measured: 28 of 60
    # elements, 52% averaged over the distinct programs (40 examples); the whole-domain test covers the rest.
    blind_spots=(BlindSpot("test_op_gradient", "bfloat16",
                           "the argument is centred at 1.5, by digamma's zero, where the gradient is below "
                           "bfloat16's rounding of torch's digamma"),),
    references=(ref((2.5,), lambda a: (mp.digamma(a),)), ref((-0.75,), lambda a: (mp.digamma(a),))))


# ---------------------------------------------------------------- mvlgamma: the multivariate log-gamma function
def _mvlgamma_shifts(p: int) -> list[arb]:
    """arange(-p/2 + 0.5, 0.5, 0.5): the arguments are x + each (exact halves)."""
    return [arb(j) / 2 - arb(p - 1) / 2 for j in range(p)]


def _mvlgamma(p: int):
    # args = arange(-p/2 + 0.5, 0.5, 0.5) + self; args.lgamma_().sum(-1).add_(p (p - 1) log(pi) / 4)
    constant = arb(p * (p - 1)) * arb.pi().log() / 4

    def forward(F, x):
        terms = [_in_float(_lgamma)(F, _shifted(F, x, shift)) for shift in _mvlgamma_shifts(p)]
        return F.sum(terms) if p == 1 else F.add(F.sum(terms), F.round(constant))

    return forward


def _shifted(F, x, shift: arb):
    """x + shift as torch adds it; x + 0 is exactly x (p = 1 adds nothing else either: its constant is 0)."""
    return x if shift.is_zero() else F.add(x, shift)


def _mvlgamma_grads(p: int):
    # mvlgamma_backward: grad * args.digamma_().sum(-1)
    def grads(F, args, y):
        return (F.sum([_in_float(_digamma)(F, _shifted(F, args[0], shift)) for shift in _mvlgamma_shifts(p)]),)

    return grads


def _add_mvlgamma(p: int, domain: Domain, blind_spots: tuple[BlindSpot, ...] = ()) -> None:
    edge_point = (p - 1) / 2
    add_op(f"mvlgamma_p_{p}", [Spelling(f"torch.mvlgamma({{0}}, {p})", lambda a: torch.mvlgamma(a, p)),
                               Spelling(f"{{0}}.mvlgamma({p})", lambda a: a.mvlgamma(p)),
                               Spelling(f"torch.special.multigammaln({{0}}, {p})",
                                        lambda a: torch.special.multigammaln(a, p))],
        lambda a: sum(sympy.loggamma(a - sympy.Rational(j, 2)) for j in range(p)) + sympy.Rational(p * (p - 1), 4)
        * sympy.log(sympy.pi), _mvlgamma(p), _mvlgamma_grads(p), (domain,), opinfo=(f"mvlgamma[mvlgamma_p_{p}]",),
        intervals=(Interval(edge_point),),
        specials=(Special(Kind.POLE, f"x = {edge_point:g}: torch raises an error at and below it, nothing to pin",
                          0, (edge_point,), pinned=False),),
        higher_order_gap=HIGHER_GAMMA_GAP, blind_spots=blind_spots,
        references=(ref((2.5,), lambda a: (sum(mp.digamma(a - mp.mpf(j) / 2) for j in range(p)),)),))


_add_mvlgamma(1, P, (BlindSpot("test_op_gradient", "bfloat16",
    "measured in the ci profile's draws: 38 of 60 gradient elements have a bound wider than their value (the "
    "model of bfloat16's lgamma and digamma kernels allows more error than those gradients' size); lgamma, the "
    "same function on another domain, 8 of 62; not yet explained element by element"),))
_add_mvlgamma(3, Domain.ABOVE_ONE)
_add_mvlgamma(5, Domain.ABOVE_TWO)

# ---------------------------------------------------------------- modified Bessel functions of order 0 (Math.h, Cephes)
# Measured: i0 within 3 ulps, i1 (its gradient's kernel) within 7.2 (float32; float64 6), i1e 7.3: bfloat16 and
# float16 run their float kernels and round once. i0e within 4 ulps in every dtype, also in bfloat16
# (i0e(0) = 0.9921875, 2 ulps below 1; float16 2 ulps): its bfloat16 and float16 kernels are not the float one
# rounded once, so their accuracy is applied in the dtype itself.
I0_ULPS, I1_ULPS, I0E_ULPS = 3, 8, 5
# Over the whole domain (30,000 points: log-uniform from the smallest subnormal, dense in [0, 60]) calc_i1 and
# calc_i1e err most just below 8, where the Chebyshev series of [0, 8] ends: i1 within 13.5 ulps (float32 at
# 7.9927; float64 11 at 7.46), i1e within 9.6 (float32 at 7.76; float64 7). Above 8 within 6 ulps, below 3 as above.
I1_WHOLE_ULPS, I1E_ULPS = 14, 10


def _sign(F, x) -> int:
    """sgn(x): 0 at an exact 0, else decided (`Singular` for a ball about 0)."""
    return 0 if x.is_exact() and x.is_zero() else F.sign(x)


# Bits of working precision beyond an argument's own relative accuracy: more cannot tighten the result.
_GUARD_BITS = 32


def _worth_precision(x) -> int:
    """The working precision a Bessel function of ball `x` is evaluated at. For a wide ball (a rounding
    model's enclosure) arb at the full 192 bits spends up to a second a call (exp(-x) I_1(x) at
    3.4 ± 0.06: 1.0 s; at 64 bits 3 ms, the same enclosure): precision past the argument's own accuracy
    only costs. An exact argument keeps the full precision."""
    return max(64, min(ctx.prec, x.rel_accuracy_bits() + _GUARD_BITS))


def _scaled_bessel(F, x, order: int):
    """exp(-|x|) I_n(x) (I_0 even, I_1 odd): arb's scaling is exp(-x), right for x > 0 only."""
    with ctx.workprec(_worth_precision(x)):
        if order == 0:  # exp(-|x|) I_0(|x|) falls as |x| grows
            return monotone_in_magnitude(lambda v: v.bessel_i(0, scaled=True), x)
        magnitude = abs(x).bessel_i(order, scaled=True)  # exp(-|x|) I_1(|x|) peaks near 1.5
    return magnitude * _sign(F, x)


def _bessel(F, x, order: int, scaled: bool, ulps: float):
    if scaled:
        value = _scaled_bessel(F, x, order)
    else:
        with ctx.workprec(_worth_precision(x)):  # I_0 is even and grows with |x|, I_1 is odd and increasing
            value = (monotone_in_magnitude(lambda v: v.bessel_i(0), x) if order == 0
                     else monotone(lambda v: v.bessel_i(1), x))
    return F.store(F.opmath.round(value, 2 * ulps))


# i0: grad * at::special_i1(self)
add_unary("i0", lambda a: sympy.besseli(0, a), lambda a: a.bessel_i(0),
    lambda F, args, y: (_bessel(F, args[0], 1, False, I1_ULPS),), Domain.BOUNDED, ulps=I0_ULPS,
    spellings=unary_spellings("i0", Spelling("torch.special.i0({0})", torch.special.i0)),
    higher_order_gap="torch differentiates i0's backward through i1_backward; the jet model has no Bessel I",
    findings=("i0-exp-overflow",),
    references=(ref((1.5,), lambda a: (mp.besseli(1, a),)),))


def _i0e_grads(F, args, y):
    # i0e: grad * (at::special_i1e(self) - self.sgn() * result); the difference cancels for large |x|
    x = args[0]
    return (F.sub(_bessel(F, x, 1, True, I1E_ULPS), y * _sign(F, x)),)


add_op("special.i0e", [Spelling("torch.special.i0e({0})", torch.special.i0e)],
    lambda a: sympy.exp(-sympy.Abs(a)) * sympy.besseli(0, a),
    lambda F, a: F.round(_scaled_bessel(F, a, 0), 2 * I0E_ULPS),
    _i0e_grads, (Domain.NONZERO,), ulps=I0E_ULPS, specials=(kink("x = 0: exp(-|x|) (concave)", 0.0),),
    conventions=pins.I0E, findings=("i0e-gradient-cancellation",),
    # the gradient i1e(x) - sgn(x) i0e(x) cancels: bfloat16's rounding of the two terms is wider than their difference
    # at most points of the random programs. Measured: 33 of 75 elements in the ci profile, 56% averaged over the
    # distinct programs in a thorough run (130 examples)
    blind_spots=(BlindSpot("test_op_gradient", "bfloat16",
                           "the gradient i1e(x) - sgn(x) i0e(x) cancels below bfloat16's rounding of its terms"),),
    higher_order_gap="torch differentiates special_i1e through i1e_backward; the jet model has no Bessel I",
    references=(ref((1.5,), lambda a: (mp.exp(-a) * (mp.besseli(1, a) - mp.besseli(0, a)),)),
                ref((-0.5,), lambda a: (mp.exp(a) * (mp.besseli(1, a) + mp.besseli(0, a)),))))


# ---------------------------------------------------------------- modified Bessel functions of order 1
# i1_backward and i1e_backward (FunctionsManual.cpp) dispatch on float and double only: bfloat16 and float16
# raise NotImplementedError.
I1_BACKWARD_DTYPES = ("float64", "float32")


def _tiny_slope(x, scaled: bool):
    """i1_backward and i1e_backward return 0.5 where |x| <= eps (the formula's y / x would be 0/0 at 0). The
    exact slopes there are 0.5 + 3x^2/16 + ... (I1) and 0.5 - 3|x|/4 + ... (exp(-|x|) I1): within x^2 and |x|
    of 0.5, the formula's error, which the enclosure takes in."""
    error = abs(x).upper() if scaled else (x * x).abs_upper()
    return arb(0.5) + arb(0, error)


def _i1_grads(scaled: bool):
    # i1_backward: where(|x| > eps, i0(x) - result * reciprocal(x), 0.5);
    # i1e_backward: where(|x| > eps, special_i0e(x) - result * (sgn(x) + reciprocal(x)), 0.5)
    def grads(F, args, y):
        x = args[0]
        if not F.greater(abs(x), 2 * F.u):
            return (_tiny_slope(x, scaled),)
        inverse = F.div(ONE, x)
        if scaled:
            i0e = F.round(_scaled_bessel(F, x, 0), 2 * I0E_ULPS)
            return (F.sub(i0e, F.mul(y, F.add(arb(_sign(F, x)), inverse))),)
        return (F.sub(_bessel(F, x, 0, False, I0_ULPS), F.mul(y, inverse)),)

    return grads


add_op("special.i1", [Spelling("torch.special.i1({0})", torch.special.i1)], lambda a: sympy.besseli(1, a),
    lambda F, a: _bessel(F, a, 1, False, I1_WHOLE_ULPS), _i1_grads(False), (Domain.BOUNDED,), ulps=I1_WHOLE_ULPS,
    backward_dtypes=I1_BACKWARD_DTYPES, findings=("i0-exp-overflow", "i1-exp-overflow"),
    higher_order_gap="torch differentiates i1_backward through i0; the jet model has no Bessel I",
    references=(ref((1.5,), lambda a: (mp.besseli(0, a) - mp.besseli(1, a) / a,)),
                ref((-0.5,), lambda a: (mp.besseli(0, a) - mp.besseli(1, a) / a,))))
add_op("special.i1e", [Spelling("torch.special.i1e({0})", torch.special.i1e)],
    lambda a: sympy.exp(-sympy.Abs(a)) * sympy.besseli(1, a), lambda F, a: _bessel(F, a, 1, True, I1E_ULPS),
    _i1_grads(True), (Domain.REAL,), ulps=I1E_ULPS, backward_dtypes=I1_BACKWARD_DTYPES,
    findings=("i1e-gradient-cancellation",),
    higher_order_gap="torch differentiates i1e_backward through i0e; the jet model has no Bessel I",
    references=(ref((1.5,), lambda a: (mp.exp(-a) * (mp.besseli(0, a) - mp.besseli(1, a) * (1 + 1 / a)),)),
                ref((-0.5,), lambda a: (mp.exp(a) * (mp.besseli(0, a) + mp.besseli(1, a) * (1 - 1 / a)),))))


# ---------------------------------------------------------------- polygamma(n, x), n = 1, 2
# calc_polygamma (n >= 2): ((n % 2) ? 1.0 : -1.0) * exp(lgamma(n + 1.0)) * zeta(n + 1, x), in the dtype itself
# (float16's zeta underflows: polygamma(5, 23.8) is 0 where the exact value is 3.5e-6). Cephes' zeta sums
# (x + k)^-s from k = 0 while k < 9 or x + k <= 9, then an Euler-Maclaurin tail: measured within 7.5 u of those
# terms' magnitude in every dtype (x in [-30, 30], n + 1 up to 6; the terms alternate in sign below 0).
# Below 0 the sum runs over every k up to -x: linear time (5 s at x = -1e8), finding polygamma-negative-linear-time.
ZETA_K = 16
# exp(lgamma(n + 1.0)) in the dtype (glibc's lgamma and exp; bfloat16 and float16 through float, rounded at each
# step): measured within 3.2 u of n! for n + 1 <= 6, the largest order these entries call (float16 at 5! = 120;
# float64 2.1 u there). 6! would not fit: bfloat16 gives it 4.3 u off.
FACTORIAL_K = 4


def _zeta_magnitude(s: int, q: arb) -> arb:
    """Σ|q + k|^-s over the terms Cephes' zeta(s, q) adds, and its tail's size (x = q + k past 9)."""
    a, total, steps = q, 1 / int_power(abs(q), s), 0
    while steps < 9 or a <= 9:
        steps += 1
        a += 1
        total += 1 / int_power(abs(a), s)
    return total + 1 / int_power(a, s - 1) / (s - 1) + 1 / int_power(a, s)


def _polygamma(F, n: int, x):
    sign = 1 if n % 2 else -1
    factorial = math.factorial(n)
    zeta = F.round(acb(x).polygamma(n).real / (sign * factorial), ZETA_K, _zeta_magnitude(n + 1, x))
    return F.mul(F.round(arb(factorial), FACTORIAL_K), zeta) * sign


WHOLE_DOMAIN_TIME = ("torch's zeta runs in time linear in |x| below 0 (5 s at -1e8, hours further out): finding "
                     "polygamma-negative-linear-time")


def _add_polygamma(n: int, conventions) -> None:
    # polygamma: grad * polygamma(n + 1, self); polygamma(1, x) runs calc_trigamma (in float for bfloat16/float16)
    forward = _in_float(_trigamma) if n == 1 else (lambda F, a: _polygamma(F, n, a))
    add_op(f"polygamma_n_{n}", _polygamma_spellings(n), lambda a: sympy.polygamma(n, a), forward,
        lambda F, args, y: (_polygamma(F, n + 1, args[0]),), (Domain.OFF_INTEGERS,),
        opinfo=(f"polygamma[polygamma_n_{n}]",), specials=(GAMMA_POLES,), conventions=conventions,
        higher_order_gap=HIGHER_GAMMA_GAP,
        findings=("polygamma-negative-linear-time",) + (("trigamma-float64-truncated-series",) if n == 1 else ()),
        skips=tuple(Skip("test_op_whole_domain", dtype, WHOLE_DOMAIN_TIME) for dtype in DTYPES),
        references=(ref((2.5,), lambda a: (mp.polygamma(n + 1, a),)),
                    ref((-0.75,), lambda a: (mp.polygamma(n + 1, a),))))


for _n in (1, 2, 3, 4):
    _add_polygamma(_n, pins.POLYGAMMA[_n])
