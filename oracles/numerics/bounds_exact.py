"""SymPy expressions evaluated over many points at once in `Bounds` (oracles.numerics.bounds): the fast pass's
twin of `compile_sympy` (oracles.numerics.exact), for the functions the fast pass follows, and for the steps,
extrema and Piecewise of the kinked ops (relu, clamp, leaky_relu, ...), decided point by point: a point whose
interval straddles a kink or a branch boundary gets NaN, and the exact path decides it. Anything else (a
special function without an interval rule) raises `NotVectorizable`, and the exact path evaluates it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import numpy as np
import sympy
from flint import arb, fmpq

from oracles.numerics.bounds import Bounds, NotVectorizable, as_bounds
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
    if isinstance(expr, (sympy.Max, sympy.Min)):
        largest = isinstance(expr, sympy.Max)
        return lambda vals, env: functools.reduce(lambda x, y: _extremum(x, y, largest), (vals[k] for k in kids))
    if isinstance(expr, (sympy.Heaviside, sympy.sign)):  # Heaviside's second argument is its value at 0
        step, inner = UNARY_RULES[type(expr)], kids[0]
        method = operator.methodcaller("heaviside" if isinstance(expr, sympy.Heaviside) else "sign")
        return lambda vals, env: method(vals[inner]) if isinstance(vals[inner], Bounds) else step(vals[inner])
    if isinstance(expr, sympy.Piecewise):
        return _piecewise(expr)
    rule = next((rule for fn, rule in _FUNCTIONS.items() if isinstance(expr, fn)), None)
    if rule is None:
        raise NotVectorizable(f"no interval rule for {type(expr).__name__}")
    inner = kids[0]
    # on an interval, or on an arb constant for a function of constants only (sqrt(pi))
    return lambda vals, env: rule(vals[inner])


def _extremum(x, y, largest: bool):
    if isinstance(x, Bounds):
        return x.extremum(y, largest)
    if isinstance(y, Bounds):
        return y.extremum(x, largest)
    return arb.max(x, y) if largest else arb.min(x, y)


# (certainly true, certainly false) of a relation between the intervals of its sides, from their outer hulls: the
# exact evaluator's decision (oracles.numerics.exact) wherever it is certain for every value in the intervals
_RELATIONS = {
    sympy.StrictGreaterThan: lambda lhs, rhs: (lhs[0] > rhs[3], lhs[3] <= rhs[0]),
    sympy.GreaterThan: lambda lhs, rhs: (lhs[0] >= rhs[3], lhs[3] < rhs[0]),
    sympy.StrictLessThan: lambda lhs, rhs: (lhs[3] < rhs[0], lhs[0] >= rhs[3]),
    sympy.LessThan: lambda lhs, rhs: (lhs[3] <= rhs[0], lhs[0] > rhs[3]),
}
Decision = Callable[[tuple[Bounds, ...]], tuple[np.ndarray, np.ndarray]]  # (certainly true, certainly false)


def _condition(cond: sympy.Basic) -> Decision:
    """A Piecewise condition over the points, three-valued: certainly true, certainly false, or neither (a point
    whose interval straddles the boundary, where the exact path decides)."""
    if cond is sympy.true or cond is sympy.false:
        value = bool(cond)
        return lambda env: (np.bool_(value), np.bool_(not value))
    if isinstance(cond, sympy.Not):
        inner = _condition(cond.args[0])
        return lambda env: inner(env)[::-1]
    if isinstance(cond, (sympy.And, sympy.Or)):
        parts = [_condition(arg) for arg in cond.args]
        conjunction = isinstance(cond, sympy.And)

        def combined(env):
            decided = [part(env) for part in parts]
            trues, falses = [t for t, _ in decided], [f for _, f in decided]
            if conjunction:
                return functools.reduce(np.logical_and, trues), functools.reduce(np.logical_or, falses)
            return functools.reduce(np.logical_or, trues), functools.reduce(np.logical_and, falses)

        return combined
    if type(cond) not in _RELATIONS:
        raise NotVectorizable(f"no interval rule for the condition {cond}")
    relation, lhs, rhs = _RELATIONS[type(cond)], _compiled(cond.lhs), _compiled(cond.rhs)
    return lambda env: relation(*(_ends(side(env), env) for side in (lhs, rhs)))


def _piecewise(expr: sympy.Piecewise) -> Callable:
    """Each point takes the first branch whose condition is certainly true there; NaN where a condition before it
    is undecided, or none holds (the exact path decides both). Every branch is evaluated over all the points it
    might serve (an unselected branch may be NaN at a point: np.where leaves it)."""
    pieces = [(_compiled(value), _condition(cond)) for value, cond in expr.args]

    def run(vals, env):
        size = max(e.ends.shape[1] for e in env if isinstance(e, Bounds))
        out = np.full((4, size), np.nan, dtype=_dtype(env))
        remaining = np.ones(size, dtype=bool)
        for value, condition in pieces:
            true, false = (np.broadcast_to(m, (size,)) for m in condition(env))
            chosen = remaining & true
            if chosen.any():
                out[:, chosen] = np.broadcast_to(_ends(value(env), env), (4, size))[:, chosen]
            remaining &= false & ~true
            if not remaining.any():
                break
        return Bounds(out)

    return run


def _dtype(env) -> np.dtype:
    return next(e.ends.dtype for e in env if isinstance(e, Bounds))


def _ends(value, env) -> np.ndarray:
    return as_bounds(value, _dtype(env)).ends


def _compiled(expr: sympy.Basic) -> BoundsEvaluator:
    compiled = compile_bounds(expr)
    if compiled is None:
        raise NotVectorizable(f"no interval rule for a part of {expr}")
    return compiled


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
