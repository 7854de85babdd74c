"""The exact derivative by SymPy's partial derivatives of each op, chained exactly in ball arithmetic.

SymPy differentiates each op of the table once per pattern of constant arguments (`x ** 2`, `x ** (1/3)`,
`torch.pow(x, y)`), and those exact partials are chained by reverse mode over the expression at the exact
inputs, in arb at 192 bits: the result is the exact ∂f/∂xᵢ, to within a ball of radius ~2^-190.
Differentiating the whole tree with SymPy instead costs O(n²) (0.66 s for a 60-node chain, against
microseconds here); the whole-tree derivative is still what failure reports print, and the self-tests
check that both agree on random expressions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import sympy
from flint import arb, ctx

from oracles.core.expr import Apply, Const, Expr, Var
from oracles.core.render import symbol
from oracles.numerics.exact import Evaluator, compile_sympy
from oracles.numerics.rounding import Undecided
from oracles.table.ops import OPS


@dataclass(frozen=True)
class OpProgram:
    value: Evaluator  # the op's exact value from its tensor arguments
    partials: tuple[Evaluator | None, ...]  # ∂op/∂arg for each tensor argument (None for a constant)


@functools.cache
def op_forms(name: str, constants: tuple[Fraction | None, ...]) -> tuple[sympy.Expr, tuple[sympy.Expr | None, ...]]:
    """The op with its constant arguments fixed (`constants[i]` is None for a tensor argument), and its
    partial derivatives by SymPy (None for a constant argument)."""
    args = [symbol(i) if c is None else sympy.Rational(c.numerator, c.denominator) for i, c in enumerate(constants)]
    function = OPS[name].sympy(*args)
    return function, tuple(None if c is not None else sympy.diff(function, symbol(i)) for i, c in enumerate(constants))


@functools.cache
def op_program(name: str, constants: tuple[Fraction | None, ...]) -> OpProgram:
    """`op_forms`, compiled."""
    function, partials = op_forms(name, constants)
    return OpProgram(compile_sympy(function), tuple(None if p is None else compile_sympy(p) for p in partials))


def op_constants(expr: Apply) -> tuple[Fraction | None, ...]:
    return tuple(arg.exact if isinstance(arg, Const) else None for arg in expr.args)


def _program(expr: Apply) -> OpProgram:
    return op_program(expr.op, op_constants(expr))


def _value(expr: Expr, point: tuple, values: dict[int, object], programs: Callable[[Apply], OpProgram]):
    """Exact value of every node, memoised by node identity (structurally equal subtrees may repeat). A constant
    argument is baked into its op's program, which gets None in its place."""
    if isinstance(expr, Var):
        return point[expr.index]
    if isinstance(expr, Const):
        return arb(expr.value)
    args = tuple(None if isinstance(a, Const) else _value(a, point, values, programs) for a in expr.args)
    value = programs(expr).value(args)
    values[id(expr)] = value
    return value


def exact_value(expr: Expr, point: tuple[arb, ...]) -> arb:
    """The exact value of `expr` at `point` (a ball of radius ~2^-190 for exact inputs)."""
    return _value(expr, point, {}, _program)


def exact_gradient(expr: Expr, point: tuple, seed, programs: Callable[[Apply], OpProgram] = _program) -> dict:
    """seed · ∂expr/∂x_i at `point` for every input i in the expression, exactly (radius ~2^-190).
    Raises `Singular` at kinks, ties and branch points of any op on the way. `programs` gives each op's compiled
    value and partials: arb's by default, the fast pass's intervals over many points (oracles.core.fast_pass)."""
    values: dict[int, object] = {}
    _value(expr, point, values, programs)
    gradient: dict = {}
    stack: list = [(expr, seed)]
    while stack:
        node, adjoint = stack.pop()
        if isinstance(node, Var):
            gradient[node.index] = gradient[node.index] + adjoint if node.index in gradient else adjoint
            continue
        if isinstance(node, Const):
            continue
        args = tuple(None if isinstance(a, Const) else (point[a.index] if isinstance(a, Var) else values[id(a)])
                     for a in node.args)
        for arg, partial in zip(node.args, programs(node).partials):
            if partial is not None:
                stack.append((arg, adjoint * partial(args)))
    return gradient


# SymPy's forms can cancel at tiny arguments (expm1 is exp(x) - 1: at x = 1e-193, 192 bits leave a ball
# around 0). Such a result is evaluated again at higher precision until it is resolved.
RESOLVED_BITS = 70
MAX_PRECISION_BITS = 4096
T = TypeVar("T")


def is_resolved(value: arb) -> bool:
    """Exact, or a ball that excludes 0 and holds RESOLVED_BITS correct bits of its value."""
    if value.is_exact():
        return True
    return not value.contains(0) and value.rad() <= abs(value.mid()) * 2.0**-RESOLVED_BITS


def at_rising_precision(evaluate: Callable[[], T], balls: Callable[[T], Iterable[arb]]) -> T:
    """`evaluate()`, re-run at 4x the working precision (up to MAX_PRECISION_BITS) while any of its
    `balls(result)` is unresolved or it raises `Undecided` (a point closer to a jump than the balls' radius):
    the one precision loop of every exact pass (first order, tensor programs, jets). A value that is truly 0
    stays a (tiny) ball around 0 after the last attempt; a point truly on a jump stays `Undecided`."""
    working = ctx.prec
    try:
        while True:
            try:
                result = evaluate()
            except Undecided:
                if ctx.prec >= MAX_PRECISION_BITS:
                    raise
            else:
                if ctx.prec >= MAX_PRECISION_BITS or all(is_resolved(b) for b in balls(result)):
                    return result
            ctx.prec = min(ctx.prec * 4, MAX_PRECISION_BITS)
    finally:
        ctx.prec = working


def resolved_exact_gradient(expr: Expr, point: tuple[arb, ...], seed: arb) -> dict[int, arb]:
    """`exact_gradient` at the precision that resolves every entry."""
    return at_rising_precision(lambda: exact_gradient(expr, point, seed), lambda gradient: gradient.values())
