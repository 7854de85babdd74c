"""SymPy functions for torch's piecewise-constant ops (floor, ceil, trunc, round), with a derivative SymPy
can write down: 0 between the jumps, a `DiracDelta` of an expression that vanishes exactly at them
(sin(πx) at the integers, cos(πx) at the half-integers). The exact evaluator (oracles.numerics.exact) evaluates
a DiracDelta to 0 where its argument is certainly nonzero and raises `Singular` on a jump.

SymPy's own `floor` has no derivative (`Derivative(floor(x), x)` stays unevaluated), and it has no
round-half-to-even at all.
"""

from __future__ import annotations

import sympy


class _Steps(sympy.Function):
    nargs = 1
    _jumps_at_half_integers = False

    def _eval_is_extended_real(self):
        # real for a real argument: SymPy then differentiates sign(floor(x)) and |floor(x)| too
        return self.args[0].is_extended_real

    def fdiff(self, argindex=1):
        x = self.args[0]
        at_jumps = sympy.cos(sympy.pi * x) if self._jumps_at_half_integers else sympy.sin(sympy.pi * x)
        return sympy.DiracDelta(at_jumps)


class Floor(_Steps):
    """torch.floor."""


class Ceil(_Steps):
    """torch.ceil."""


class Trunc(_Steps):
    """torch.trunc: rounds towards zero (continuous at 0; the derivative still flags 0 as a possible
    jump, which only costs a Singular there)."""


class RoundHalfEven(_Steps):
    """torch.round: to nearest, ties to even; jumps at the half-integers."""

    _jumps_at_half_integers = True



class _ErrorFunction(sympy.Function):
    """A function of erfc kept whole: SymPy rewrites erfc(-u) as 2 - erfc(u), which for large u is the
    difference of two numbers near 2 whose exact value (tiny) arb then cannot resolve at any precision."""

    nargs = 1

    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real


class Erfcx(_ErrorFunction):
    """torch.special.erfcx: exp(x^2) erfc(x)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return 2 * x * Erfcx(x) - 2 / sympy.sqrt(sympy.pi)


class Ndtr(_ErrorFunction):
    """The standard normal distribution function Φ(x) = erfc(-x / sqrt(2)) / 2 (torch.special.log_ndtr's log)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)


class Ndtri(_ErrorFunction):
    """torch.special.ndtri: the inverse of Φ, -sqrt(2) erfcinv(2y) (2y - 1 in erfinv would round away a tiny y)."""

    def fdiff(self, argindex=1):
        return sympy.sqrt(2 * sympy.pi) * sympy.exp(Ndtri(self.args[0]) ** 2 / 2)
