"""SymPy expressions evaluated over many points at once in `Bounds` (oracles.numerics.bounds): the fast pass's
twin of `compile_sympy` (oracles.numerics.exact), for the smooth functions the fast pass follows. Anything
else (a Piecewise, a special function without an interval rule) raises `NotVectorizable`, and the exact path
evaluates it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import sympy
from flint import arb, fmpq

from oracles.numerics.bounds import Bounds, NotVectorizable
from oracles.numerics.exact import UNARY_RULES, post_order

BoundsEvaluator = Callable[[tuple[Bounds, ...]], Bounds]

def _interval_rule(arb_function: Callable) -> Callable | None:
    """The exact evaluator's rule for a function (oracles.numerics.exact.UNARY_RULES), as a call that works on an
    interval and on an arb constant alike: arb's own method where `Bounds` has one of that name, builtin abs."""
    if arb_function is abs:
        return abs
    name = getattr(arb_function, "__name__", "")
    if getattr(arb, name, None) is arb_function and name in vars(Bounds):
        return operator.methodcaller(name)
    return None


# the functions the intervals follow, derived from the exact evaluator's table
_FUNCTIONS = {fn: rule for fn, arb_function in UNARY_RULES.items() if (rule := _interval_rule(arb_function))}


def _constant(value: arb) -> Callable:
    return lambda vals, env: value


def _step(expr: sympy.Basic, kids: list[int]) -> Callable:
    if expr.is_Symbol:
        index = int(expr.name[1:])
        return lambda vals, env: env[index]
    if expr.is_Rational:
        return _constant(arb(fmpq(int(expr.p), int(expr.q))))
    if expr is sympy.pi:
        return _constant(arb.pi())
    if expr is sympy.E:
        return _constant(arb.const_e())
    if isinstance(expr, sympy.Add):
        return lambda vals, env: functools.reduce(lambda x, y: x + y, (vals[k] for k in kids))
    if isinstance(expr, sympy.Mul):
        return lambda vals, env: functools.reduce(lambda x, y: x * y, (vals[k] for k in kids))
    if isinstance(expr, sympy.Pow):
        if expr.exp.is_Integer:
            n, base = int(expr.exp), kids[0]
            return lambda vals, env: vals[base] ** n
        if expr.exp == sympy.Rational(1, 2):
            return lambda vals, env: vals[kids[0]].sqrt()
        if expr.exp == sympy.Rational(-1, 2):
            return lambda vals, env: vals[kids[0]].rsqrt()
        base, exponent = kids
        return lambda vals, env: vals[base] ** vals[exponent]
    rule = next((rule for fn, rule in _FUNCTIONS.items() if isinstance(expr, fn)), None)
    if rule is None:
        raise NotVectorizable(f"no interval rule for {type(expr).__name__}")
    inner = kids[0]
    # on an interval, or on an arb constant for a function of constants only (sqrt(pi))
    return lambda vals, env: rule(vals[inner])


@functools.lru_cache(maxsize=4096)
def compile_bounds(expr: sympy.Basic) -> BoundsEvaluator | None:
    """A function from the points (`Bounds` of x0, x1, ...) to `Bounds` enclosing `expr` at each of them;
    None for an expression with a part this module has no rule for."""
    nodes, kids = post_order(expr)
    try:
        steps = [_step(node, k) for node, k in zip(nodes, kids)]
    except NotVectorizable:
        return None

    def run(env: tuple[Bounds, ...]) -> Bounds:
        vals: list = []
        for step in steps:
            vals.append(step(vals, env))
        return vals[-1]

    return run
