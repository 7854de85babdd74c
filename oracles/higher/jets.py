"""Truncated multivariate Taylor polynomials ("jets") in ball arithmetic, with a magnitude companion.

A `Jet` over n variables and order r holds the Taylor coefficients c_γ of a function at a point, for
every monomial x^γ of degree ≤ r (γ written as a sorted tuple of variable slots: (0, 0, 1) is x0²·x1),
each an arb ball. ∂^γ f = γ!·c_γ, so one jet of order 2 carries the value, the gradient and the Hessian.

Each coefficient also carries a *magnitude* (an upper bound, ≥ 0): the same coefficient computed with
every factor replaced by its absolute value and every subtraction by an addition. The rounding model of
derivatives (`JetModel`) widens a coefficient by k·u·magnitude at each floating-point operation, which
bounds the error of any evaluation order of the same sums of products: torch's reverse-over-reverse
computes the same terms as this forward propagation, associated differently. (The constant coefficient,
the value torch computes in its forward pass, is rounded exactly as `RoundingModel` does.)

Exact jets (no magnitudes) are built from each op's partial derivatives (oracles.higher.higher_order); model
jets from torch's backward formulas evaluated on jets (`JetModel`, duck-typing `RoundingModel` and arb).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import sympy
from flint import arb

from oracles.core.render import symbol
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import Overflow, RoundingModel, Singular, int_power


# ------------------------------------------------------------------ monomials
@functools.cache
def monomials(n: int, order: int) -> tuple[tuple[int, ...], ...]:
    """Every monomial of degree ≤ order in n variables, by degree, then lexicographically."""
    return tuple(key for degree in range(order + 1)
                 for key in itertools.combinations_with_replacement(range(n), degree))


@functools.cache
def _index(n: int, order: int) -> dict[tuple[int, ...], int]:
    return {key: i for i, key in enumerate(monomials(n, order))}


@functools.cache
def _products(n: int, order: int) -> tuple[tuple[int, int, int], ...]:
    """(i, j, k): monomial i times monomial j is monomial k (degree ≤ order)."""
    keys, index = monomials(n, order), _index(n, order)
    return tuple((i, j, index[tuple(sorted(a + b))])
                 for i, a in enumerate(keys) for j, b in enumerate(keys) if len(a) + len(b) <= order)


@functools.cache
def _derivative_map(n: int, order: int, var: int) -> tuple[tuple[int, int, int], ...]:
    """(source, target, factor): ∂/∂x_var of monomial `source` is factor · monomial `target` (order - 1)."""
    lower = _index(n, order - 1)
    out = []
    for i, key in enumerate(monomials(n, order)):
        count = key.count(var)
        if count:
            rest = list(key)
            rest.remove(var)
            out.append((i, lower[tuple(rest)], count))
    return tuple(out)


def factorial_of(key: tuple[int, ...]) -> int:
    """γ! for a monomial: ∂^γ f = γ! · c_γ."""
    return math.prod(math.factorial(key.count(v)) for v in set(key))


def size(n: int, order: int) -> int:
    return len(monomials(n, order))


ZERO = arb(0)
ONE = arb(1)


def _abs(value: arb) -> arb:
    return arb(value.abs_upper())


def _factor_or_one(peak: arb) -> arb:
    """An underflow's absolute error scale: a partial product torch forms may round to a subnormal (or 0),
    an absolute error of up to eta that the factors still to come multiply, by at most the peak
    (atan'' at 5e82 in float64: (1/(1 + x²))² is 0, times 2x, where the exact value is 1.7e-248)."""
    return peak if peak > 1 else ONE


def _factor(peak: arb) -> arb:
    """A factor's size in a peak bound: 0 stays 0 (no term), anything else counts at least 1, so a product
    of such factors bounds every partial product of the same factors."""
    if peak.is_zero():
        return peak
    return peak if peak > 1 else ONE


class Jet:
    """Taylor coefficients `c` over `n` variables; for a model jet also magnitudes `m` and peaks `p`
    (None for an exact jet).

    m[γ]: c[γ] computed with every factor by its absolute value and subtraction by addition; it scales the
    rounding error of any evaluation order. p[γ] ≥ m[γ]: the same with every nonzero factor counted as at
    least 1, which bounds every *partial* product of the terms: torch's reverse-over-reverse forms such
    partial products (an adjoint times a tangent before a vanishing factor multiplies them), so p beyond
    the dtype's range means an intermediate may overflow (float16: 1 - tanh² = 0 times an inf)."""

    __slots__ = ("n", "order", "c", "m", "p")

    def __init__(self, n: int, order: int, c: list[arb], m: list[arb] | None = None, p: list[arb] | None = None):
        self.n, self.order, self.c, self.m = n, order, c, m
        self.p = p if p is not None or m is None else list(m)

    # -------------------------------------------------------------- construction
    @classmethod
    def constant(cls, value: arb, n: int, order: int, tracked: bool) -> Jet:
        k = size(n, order)
        c = [value] + [ZERO] * (k - 1)
        if not tracked:
            return cls(n, order, c)
        # a value of exactly 0 is still a factor torch multiplies in: the partial product it meets last may have
        # overflowed already (inf * 0 = NaN), so its peak counts as 1, not as "no term"
        peak = ONE if value.is_zero() else _abs(value)
        return cls(n, order, c, [_abs(value)] + [ZERO] * (k - 1), [peak] + [ZERO] * (k - 1))

    @classmethod
    def variable(cls, value: arb, slot: int, n: int, order: int, tracked: bool) -> Jet:
        jet = cls.constant(value, n, order, tracked)
        if order >= 1:
            jet.c[1 + slot] = ONE
            if tracked:
                jet.m[1 + slot] = ONE
                jet.p[1 + slot] = ONE
        return jet

    @property
    def value(self) -> arb:
        return self.c[0]

    @property
    def tracked(self) -> bool:
        return self.m is not None

    @staticmethod
    def hull(jets: Sequence[Jet]) -> Jet:
        """One model jet enclosing each of `jets` (model jets of one function, e.g. one per route of its
        mixed partials): coefficient balls united, magnitudes and peaks the largest."""
        first = jets[0]
        c, m, p = list(first.c), list(first.m), list(first.p)
        for jet in jets[1:]:
            for t in range(len(c)):
                c[t], m[t], p[t] = c[t].union(jet.c[t]), max(m[t], jet.m[t]), max(p[t], jet.p[t])
        return Jet(first.n, first.order, c, m, p)

    def truncated(self, order: int) -> Jet:
        k = size(self.n, order)
        if self.m is None:
            return Jet(self.n, order, self.c[:k])
        return Jet(self.n, order, self.c[:k], self.m[:k], self.p[:k])

    def coefficient(self, key: tuple[int, ...]) -> arb:
        return self.c[_index(self.n, self.order)[tuple(sorted(key))]]

    def magnitude(self, key: tuple[int, ...]) -> arb:
        return self.m[_index(self.n, self.order)[tuple(sorted(key))]]

    def peak(self, key: tuple[int, ...]) -> arb:
        return self.p[_index(self.n, self.order)[tuple(sorted(key))]]

    def derivative(self, key: tuple[int, ...]) -> arb:
        """∂^key f at the point (key: variable slots, repeated for higher powers)."""
        return self.coefficient(key) * factorial_of(tuple(sorted(key)))

    def partial(self, var: int) -> Jet:
        """∂/∂x_var, a jet of one order less."""
        k = size(self.n, self.order - 1)
        c = [ZERO] * k
        tracked = self.m is not None
        m = [ZERO] * k if tracked else None
        p = [ZERO] * k if tracked else None
        for source, target, factor in _derivative_map(self.n, self.order, var):
            c[target] = self.c[source] * factor
            if tracked:
                m[target] = self.m[source] * factor
                p[target] = self.p[source] * factor
        return Jet(self.n, self.order - 1, c, m, p)

    # -------------------------------------------------------------- arithmetic (exact, in balls)
    def _lift(self, other) -> Jet:
        if isinstance(other, Jet):
            if (other.n, other.order) != (self.n, self.order):
                raise ValueError("jets of different spaces")
            return other
        return Jet.constant(arb(other), self.n, self.order, self.m is not None)

    def __add__(self, other) -> Jet:
        other = self._lift(other)
        c = [a + b for a, b in zip(self.c, other.c)]
        if self.m is None or other.m is None:
            return Jet(self.n, self.order, c)
        m = [a + b for a, b in zip(self.m, other.m)]
        p = [a + b for a, b in zip(self.p, other.p)]
        m[0] = p[0] = _abs(c[0])
        return Jet(self.n, self.order, c, m, p)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet(self.n, self.order, [-a for a in self.c], self.m, self.p)

    def __sub__(self, other) -> Jet:
        return self + (-self._lift(other))

    def __rsub__(self, other) -> Jet:
        return self._lift(other) + (-self)

    def __mul__(self, other) -> Jet:
        other = self._lift(other)
        k = len(self.c)
        c = [ZERO] * k
        track = self.m is not None and other.m is not None
        if not track:
            for i, j, t in _products(self.n, self.order):
                c[t] += self.c[i] * other.c[j]
            return Jet(self.n, self.order, c)
        m = [ZERO] * k
        p = [ZERO] * k
        pa = [_factor(v) for v in self.p]
        pb = [_factor(v) for v in other.p]
        for i, j, t in _products(self.n, self.order):
            c[t] += self.c[i] * other.c[j]
            m[t] += self.m[i] * other.m[j]
            p[t] += pa[i] * pb[j]
        m[0] = _abs(c[0])
        p[0] = m[0]
        return Jet(self.n, self.order, c, m, p)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Jet:
        if isinstance(other, Jet):
            return self * other.reciprocal()
        return self * (ONE / arb(other))

    def __rtruediv__(self, other) -> Jet:
        return self.reciprocal() * arb(other)

    def __pow__(self, exponent) -> Jet:
        if isinstance(exponent, Jet):
            return (exponent * self.log()).exp()
        return self.power(exponent)

    def power(self, exponent, lower=None) -> Jet:
        """self ** exponent for a constant exponent. `lower(e)` gives the exponent of the next derivative,
        e - 1 unless given: torch differentiates x.pow(e) as e * x.pow(e - 1) with e - 1 rounded to a
        double at every order, and x ** e moves by (its error) * log x: 589 ulps at x = 3.7e118."""
        exponent = arb(exponent)
        if exponent.is_exact() and exponent.is_integer():
            n = int(exponent.unique_fmpz())
            return int_power(self, n) if n >= 0 else int_power(self.reciprocal(), -n)
        if not self.c[0] > 0:
            raise Singular("non-integer power of a base that may be <= 0")
        coefficients = []
        factor = ONE  # e_0 · e_1 ⋯ e_{k-1} / k!
        for k in range(self.order + 1):
            coefficients.append(factor * self.c[0] ** exponent)
            factor = factor * exponent / (k + 1)
            exponent = exponent - 1 if lower is None else lower(exponent)
        return self.compose(coefficients)

    # -------------------------------------------------------------- comparisons: on the value
    @staticmethod
    def _value_of(other):
        return other.c[0] if isinstance(other, Jet) else other

    def __gt__(self, other):
        return self.c[0] > self._value_of(other)

    def __lt__(self, other):
        return self.c[0] < self._value_of(other)

    def __ge__(self, other):
        return self.c[0] >= self._value_of(other)

    def __le__(self, other):
        return self.c[0] <= self._value_of(other)

    def contains(self, other) -> bool:
        return self.c[0].contains(other)

    def is_finite(self) -> bool:
        return all(a.is_finite() for a in self.c)

    def abs_upper(self):
        return self.c[0].abs_upper()

    def is_exact(self) -> bool:
        return all(a.is_exact() for a in self.c)

    # -------------------------------------------------------------- functions: Taylor composition
    def compose(self, taylor: Sequence[arb]) -> Jet:
        """f(self) from f's Taylor coefficients at self's value: Σ_k taylor[k] · (self - value)^k."""
        tracked = self.m is not None
        h = Jet(self.n, self.order, [ZERO] + self.c[1:],
                [ZERO] + self.m[1:] if tracked else None, [ZERO] + self.p[1:] if tracked else None)
        k = len(self.c)
        c = [ZERO] * k
        c[0] = taylor[0]
        m = [ZERO] * k if tracked else None
        p = [ZERO] * k if tracked else None
        power = None
        for degree in range(1, self.order + 1):
            power = h if power is None else power * h
            size_k = _abs(taylor[degree])
            for t in range(1, k):
                c[t] += taylor[degree] * power.c[t]
                if tracked:
                    m[t] += size_k * power.m[t]
                    p[t] += _factor(size_k) * power.p[t]
        if tracked:
            m[0] = p[0] = _abs(c[0])
        return Jet(self.n, self.order, c, m, p)

    def reciprocal(self) -> Jet:
        v = self.c[0]
        if v.contains(0):
            raise Singular("reciprocal of a value that may be 0")
        inverse = ONE / v
        return self.compose([(-1) ** k * inverse ** (k + 1) for k in range(self.order + 1)])

    def _function(self, name: str) -> Jet:
        return self.compose(taylor_coefficients(name, self.c[0], self.order))

    def exp(self):
        return self._function("exp")

    def expm1(self):
        return self._function("expm1")

    def log(self):
        return self._function("log")

    def log1p(self):
        return self._function("log1p")

    def sin(self):
        return self._function("sin")

    def cos(self):
        return self._function("cos")

    def tan(self):
        return self._function("tan")

    def tanh(self):
        return self._function("tanh")

    def sinh(self):
        return self._function("sinh")

    def cosh(self):
        return self._function("cosh")

    def atan(self):
        return self._function("atan")

    def asin(self):
        return self._function("asin")

    def acos(self):
        return self._function("acos")

    def asinh(self):
        return self._function("asinh")

    def atanh(self):
        return self._function("atanh")

    def erf(self):
        return self._function("erf")

    def erfinv(self):
        return self._function("erfinv")

    def sqrt(self):
        return self._function("sqrt")

    def rsqrt(self):
        return self._function("rsqrt")

    def __repr__(self) -> str:
        keys = monomials(self.n, self.order)
        return "Jet(" + ", ".join(f"{k}: {c.str(5)}" for k, c in zip(keys, self.c)) + ")"


_SYMPY_FUNCTIONS = {
    "exp": sympy.exp, "expm1": lambda t: sympy.exp(t) - 1, "log": sympy.log, "log1p": lambda t: sympy.log(1 + t),
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "tanh": sympy.tanh, "sinh": sympy.sinh,
    "cosh": sympy.cosh, "atan": sympy.atan, "asin": sympy.asin, "acos": sympy.acos, "asinh": sympy.asinh,
    "atanh": sympy.atanh, "erf": sympy.erf, "erfinv": sympy.erfinv, "sqrt": sympy.sqrt,
    "rsqrt": lambda t: 1 / sympy.sqrt(t),
}
_ARB_FUNCTIONS = {"expm1": arb.expm1, "log1p": arb.log1p, "rsqrt": arb.rsqrt}


@functools.cache
def _derivative_programs(name: str, order: int):
    t = symbol(0)
    f = _SYMPY_FUNCTIONS[name](t)
    return tuple(compile_sympy(sympy.diff(f, t, k)) for k in range(1, order + 1))


def taylor_coefficients(name: str, value: arb, order: int) -> list[arb]:
    """f(value), f'(value), f''(value)/2, ...: the value from arb's own function (accurate where SymPy's
    form would cancel: expm1, log1p), the derivatives from SymPy's."""
    own = _ARB_FUNCTIONS.get(name) or getattr(arb, name)
    out = [own(value)]
    for k, program in enumerate(_derivative_programs(name, order), start=1):
        out.append(program((value,)) / math.factorial(k))
    if not all(a.is_finite() for a in out):
        raise Singular(f"{name} or its derivatives undefined within the model at {value.str(5)}")
    return out


def check_peaks(peaks: Sequence[arb], limit: arb, dtype: str) -> None:
    """Overflow where a partial product torch may form on the way exceeds the dtype's range."""
    for peak in peaks:
        if not peak.is_finite() or peak > limit:
            raise Overflow(f"an intermediate product of torch's higher-order backward may exceed the {dtype} range")


# ------------------------------------------------------------------ the rounding model on jets
DERIVATIVE_SLACK = 2  # extra operations torch's higher-order formulas may round per modelled one


class JetModel:
    """`RoundingModel`'s operations on jets (and plain balls, delegated): the op table's `local_grads`
    formulas, evaluated on jets, give torch's derivatives of its own backward formulas.

    The constant coefficient is rounded as `RoundingModel` rounds values. Every other coefficient is
    widened by (k + DERIVATIVE_SLACK)·(u·magnitude + η·max(peak, 1)): torch computes that coefficient by the backward
    of the same formula, a product or sum of the same factors, each rounded (`DERIVATIVE_SLACK` covers
    the multiplication by the incoming gradient and the accumulation torch adds to each)."""

    def __init__(self, base: RoundingModel, slack: float = DERIVATIVE_SLACK):
        self.base = base
        self.format = base.format
        self.u = base.u
        self.eta = base.eta
        self.limit = base.limit
        self.slack = slack

    def _widen(self, jet: Jet, k: float, value_magnitude: arb | None = None) -> Jet:
        c = list(jet.c)
        c[0] = self.base.round(c[0], k, value_magnitude)
        if jet.m is not None:
            kk = k + self.slack
            for t in range(1, len(c)):
                c[t] = c[t] + arb(0, kk * (self.u * jet.m[t] + self.eta * _factor_or_one(jet.p[t])))
        return self.in_range(Jet(jet.n, jet.order, c, jet.m, jet.p))

    @property
    def opmath(self) -> JetModel:
        """Kernels' arithmetic in the format itself: torch's double backward differentiates a fused kernel
        with ops of the tensor's dtype, and rounding in the format encloses float arithmetic rounded once."""
        return self

    @staticmethod
    def store(value):
        return value

    def round(self, value, k: float = 1, magnitude=None):
        if not isinstance(value, Jet):
            return self.base.round(value, k, magnitude)
        if isinstance(magnitude, Jet):
            magnitude = magnitude.abs_upper()
        return self._widen(value, k, magnitude)

    def in_range(self, value):
        if not isinstance(value, Jet):
            return self.base.in_range(value)
        for coefficient in value.c:
            if coefficient.is_nan():
                raise Singular("a derivative is undefined within the rounding model")
            if not coefficient.is_finite() or coefficient.abs_upper() > self.limit:
                raise Overflow(f"a derivative may exceed the {self.format.name} range ({coefficient.str(3)})")
        if value.p is not None:
            check_peaks(value.p, self.limit, self.format.name)
        return value

    @staticmethod
    def _jet(a, b):
        return isinstance(a, Jet) or isinstance(b, Jet)

    def add(self, a, b):
        if not self._jet(a, b):
            return self.base.add(a, b)
        return self._widen(a + b, 1, arb(_abs(Jet._value_of(a))) + _abs(Jet._value_of(b)))

    def sub(self, a, b):
        if not self._jet(a, b):
            return self.base.sub(a, b)
        return self._widen(a - b, 1, arb(_abs(Jet._value_of(a))) + _abs(Jet._value_of(b)))

    def mul(self, a, b):
        if not self._jet(a, b):
            return self.base.mul(a, b)
        product = a * b if isinstance(a, Jet) else b * a
        return self._widen(product, 1)

    def div(self, a, b):
        if not self._jet(a, b):
            return self.base.div(a, b)
        quotient = a / b if isinstance(a, Jet) else b.reciprocal() * a
        return self._widen(quotient, 1)

    def const(self, value: float) -> arb:
        return self.base.const(value)

    def sum(self, terms: list) -> object:
        if not any(isinstance(t, Jet) for t in terms):
            return self.base.sum(terms)
        total = terms[0]
        magnitude = arb(0)
        for term in terms[1:]:
            total = total + term
        for term in terms:
            magnitude += _abs(Jet._value_of(term))
        return self._widen(total, max(len(terms) - 1, 0), magnitude)

    sign = staticmethod(RoundingModel.sign)
    greater = staticmethod(RoundingModel.greater)
