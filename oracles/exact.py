"""Rigorous evaluation of SymPy expressions in arb ball arithmetic, at the exact binary inputs.

A SymPy tree is compiled once into nested closures (lambdify costs 5-100 ms per expression; this costs
microseconds), then evaluated per point. Kinks, ties and branch points raise `Singular`.
"""

from __future__ import annotations

import functools
from typing import Callable

import sympy
from flint import arb, fmpq

from oracles.rounding import Singular

Evaluator = Callable[[tuple[arb, ...]], arb]


def _certain_sign(value: arb) -> int:
    if value > 0:
        return 1
    if value < 0:
        return -1
    if value.is_zero():
        return 0
    raise Singular("sign undecided at this point")


def _power(base: Evaluator, exponent: sympy.Expr) -> Evaluator:
    if exponent.is_Integer:
        n = int(exponent)
        return lambda env: base(env) ** n
    exp_eval = compile_sympy(exponent)

    def power(env):
        b = base(env)
        if not b > 0:
            raise Singular("non-integer power of a base that may be <= 0")
        return b ** exp_eval(env)

    return power


def _piecewise(pieces: list[tuple[Evaluator, Callable]]) -> Evaluator:
    def piecewise(env):
        for value, condition in pieces:
            if condition(env):
                return value(env)
        raise Singular("no Piecewise branch applies")

    return piecewise


_RELATIONS = {
    sympy.StrictGreaterThan: lambda a, b: (a > b, a <= b),
    sympy.GreaterThan: lambda a, b: (a >= b, a < b),
    sympy.StrictLessThan: lambda a, b: (a < b, a >= b),
    sympy.LessThan: lambda a, b: (a <= b, a > b),
}


def _condition(cond: sympy.Basic) -> Callable[[tuple[arb, ...]], bool]:
    """A Piecewise condition, decided for every value in the balls; undecidable means the point is on
    (or, within the balls, near) a branch boundary, which raises `Singular`."""
    if cond is sympy.true or cond is sympy.false:
        value = bool(cond)
        return lambda env: value
    if isinstance(cond, sympy.Not):
        inner = _condition(cond.args[0])
        return lambda env: not inner(env)
    if isinstance(cond, (sympy.And, sympy.Or)):
        parts = [_condition(arg) for arg in cond.args]
        combine = all if isinstance(cond, sympy.And) else any
        return lambda env: combine(part(env) for part in parts)
    if isinstance(cond, sympy.ITE):
        test, then, otherwise = (_condition(arg) for arg in cond.args)
        return lambda env: then(env) if test(env) else otherwise(env)
    if type(cond) not in _RELATIONS:
        raise NotImplementedError(f"the exact evaluator has no rule for the condition {cond}")
    relation = _RELATIONS[type(cond)]
    lhs, rhs = compile_sympy(cond.lhs), compile_sympy(cond.rhs)

    def decide(env):
        certainly_true, certainly_false = relation(lhs(env), rhs(env))
        if certainly_true:
            return True
        if certainly_false:
            return False
        raise Singular(f"cannot decide {cond} at this point (boundary of a Piecewise)")

    return decide


def _heaviside(value: arb) -> arb:
    sign = _certain_sign(value)
    if sign == 0:
        raise Singular("Heaviside at 0 (a tie)")
    return arb(1 if sign > 0 else 0)


_UNARY: dict[type, Callable[[arb], arb]] = {
    sympy.exp: arb.exp,
    sympy.log: arb.log,
    sympy.sin: arb.sin,
    sympy.cos: arb.cos,
    sympy.tan: arb.tan,
    sympy.tanh: arb.tanh,
    sympy.sinh: arb.sinh,
    sympy.cosh: arb.cosh,
    sympy.atan: arb.atan,
    sympy.asin: arb.asin,
    sympy.acos: arb.acos,
    sympy.asinh: arb.asinh,
    sympy.erf: arb.erf,
    sympy.Abs: abs,
    sympy.sign: lambda v: arb(_certain_sign(v)),
    sympy.Heaviside: _heaviside,
    # SymPy writes |f|' as sign(re f)·(re f)' + ... when it cannot prove f real (asin, acos, log);
    # at our points every value is real (arb returns NaN, i.e. "singular", where it is not).
    sympy.re: lambda v: v,
    sympy.im: lambda v: arb(0) if v.is_finite() else arb.nan(),
}


@functools.lru_cache(maxsize=8192)
def compile_sympy(expr: sympy.Basic) -> Evaluator:
    """A function from the point (arb values of x0, x1, ...) to an arb ball enclosing `expr` there."""
    if expr.is_Symbol:
        index = int(expr.name[1:])
        return lambda env: env[index]
    if expr.is_Rational:
        value = arb(fmpq(int(expr.p), int(expr.q)))
        return lambda env: value
    if expr is sympy.pi:
        return lambda env: arb.pi()
    if expr is sympy.E:
        return lambda env: arb.const_e()
    args = [compile_sympy(arg) for arg in expr.args] if not isinstance(expr, sympy.Piecewise) else []
    if isinstance(expr, sympy.Add):
        return lambda env: sum((f(env) for f in args), arb(0))

    if isinstance(expr, sympy.Mul):
        def product(env):
            result = arb(1)
            for f in args:
                result *= f(env)
            return result

        return product
    if isinstance(expr, sympy.Pow):
        return _power(args[0], expr.exp)
    if isinstance(expr, sympy.Piecewise):
        return _piecewise([(compile_sympy(e), _condition(c)) for e, c in expr.args])
    if isinstance(expr, sympy.atan2):
        return lambda env: arb.atan2(args[0](env), args[1](env))
    if isinstance(expr, (sympy.Max, sympy.Min)):
        pick = arb.max if isinstance(expr, sympy.Max) else arb.min

        def extremum(env):
            values = [f(env) for f in args]
            result = values[0]
            for v in values[1:]:
                result = pick(result, v)
            return result

        return extremum
    for fn_type, arb_fn in _UNARY.items():
        if isinstance(expr, fn_type):
            inner = args[0]
            return lambda env: arb_fn(inner(env))
    raise NotImplementedError(f"the exact evaluator has no rule for {type(expr).__name__}: {expr}")
