"""Rigorous evaluation of SymPy expressions in arb ball arithmetic, at the exact binary inputs.

A SymPy expression is compiled once into a straight-line program over its distinct subexpressions
(lambdify costs 5-100 ms per expression; this costs microseconds), then run per point. Derivatives of
deep compositions repeat the same subexpressions many times (a 60-node chain's derivative has 1356
operations but 154 distinct subexpressions), so each is evaluated once per point.
Kinks, ties and branch points raise `Singular`; a point the balls cannot yet tell from one raises
`Undecided` (more precision may decide).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import sympy
from flint import acb, arb, fmpq

from oracles.numerics.rounding import Singular, Undecided, int_power
from oracles.numerics.sympy_functions import Ceil, Erfcx, Floor, Ndtr, Ndtri, RoundHalfEven, Trunc

Evaluator = Callable[[tuple[arb, ...]], arb]


def _certain_sign(value: arb) -> int:
    if value > 0:
        return 1
    if value < 0:
        return -1
    if value.is_zero():
        return 0
    raise Undecided("sign undecided at this point")


def _checked_power(base: arb, exponent: arb) -> arb:
    if not base > 0:
        if base <= 0:
            raise Singular("non-integer power of a base <= 0")
        raise Undecided("non-integer power of a base that may be <= 0")
    return base**exponent


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
        raise Undecided(f"cannot decide {cond} at this point (boundary of a Piecewise)")

    return decide


def _heaviside(value: arb) -> arb:
    sign = _certain_sign(value)
    if sign == 0:
        raise Singular("Heaviside at 0 (a tie)")
    return arb(1 if sign > 0 else 0)


def _dirac_delta(value: arb) -> arb:
    """DiracDelta as a derivative of a step: 0 away from the jump, `Singular` on it."""
    if _certain_sign(value) == 0:
        raise Singular("on a jump of a piecewise-constant function")
    return arb(0)


def _exact_step(value: arb) -> arb:
    if not value.is_exact():
        raise Undecided("a step function's argument straddles a jump")
    return value


def _trunc(value: arb) -> arb:
    if value > 0:
        return _exact_step(value.floor())
    if value < 0:
        return _exact_step(value.ceil())
    if abs(value) < 1:
        return arb(0)
    raise Undecided("trunc's argument straddles a jump")


def _round_half_even(value: arb) -> arb:
    if value.is_exact() and value.floor() == value:  # an integer (all large floats are)
        return value
    nearest = (value.mid() + arb(0.5)).floor()
    offset = value - nearest
    if abs(offset) < arb(0.5):
        return nearest
    if offset.is_exact() and offset == arb(-0.5):  # a tie (mid + 0.5 was the integer above): to even
        below = nearest - 1
        return nearest if (nearest / 2).floor() * 2 == nearest else below
    raise Undecided("round's argument straddles a jump")


# floor, ceil, trunc, round of a ball: exact values, `Singular` where the ball straddles a jump (the op
# table's rounding model uses these too).
STEP_EVALUATORS: dict[type, Callable[[arb], arb]] = {
    Floor: lambda v: _exact_step(v.floor()),
    Ceil: lambda v: _exact_step(v.ceil()),
    Trunc: _trunc,
    RoundHalfEven: _round_half_even,
}

def arb_erfcx(v: arb) -> arb:
    """exp(x^2) erfc(x). arb's erfc of a ball far out (x = 7e4 ± 1e-11) loses every digit: above 0 the
    confluent form U(1/2, 1/2, x^2) / sqrt(pi) keeps them, below 0 the reflection 2 exp(x^2) - erfcx(-x)."""
    if v > 0:
        return (v * v).hypgeom_u(0.5, 0.5) / arb.pi().sqrt()
    if v < 0:
        return 2 * (v * v).exp() - arb_erfcx(-v)
    return (v * v).exp() * v.erfc()


def _ndtr(v: arb) -> arb:
    """Φ(x) = erfc(-x / sqrt(2)) / 2, below 0 through erfcx (see arb_erfcx)."""
    t = -v / arb(2).sqrt()
    return arb_erfcx(t) * (-(t * t)).exp() / 2 if v < 0 else t.erfc() / 2


UNARY_RULES: dict[type, Callable[[arb], arb]] = {
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
    sympy.acosh: arb.acosh,
    sympy.erf: arb.erf,
    sympy.erfc: arb.erfc,
    sympy.Abs: abs,
    sympy.sign: lambda v: arb(_certain_sign(v)),
    sympy.Heaviside: _heaviside,
    sympy.DiracDelta: _dirac_delta,
    sympy.atanh: arb.atanh,
    sympy.erfinv: arb.erfinv,
    Erfcx: arb_erfcx,
    Ndtr: _ndtr,
    Ndtri: lambda v: -arb(2).sqrt() * (2 * v).erfcinv(),
    # log|Γ(x)| (torch.lgamma), also for x < 0: the real part of the complex log-gamma
    sympy.loggamma: lambda v: acb(v).lgamma().real,
    **{fn: evaluate for fn, evaluate in STEP_EVALUATORS.items()},
    # SymPy writes |f|' as sign(re f)·(re f)' + ... when it cannot prove f real (asin, acos, log);
    # at our points every value is real (arb returns NaN, i.e. "singular", where it is not).
    sympy.re: lambda v: v,
    sympy.im: lambda v: arb(0) if v.is_finite() else arb.nan(),
}


def _polygamma(order: arb, x: arb) -> arb:
    """ψ^(n)(x) for an integer n >= 0, also for x < 0 (NaN at and near the poles 0, -1, -2, ...)."""
    n = int(order.unique_fmpz())
    if n == 0:
        return x.digamma()
    if n == 1 and x < 0:  # reflection: arb's polygamma loses every digit far below 0 (x = -2.2e12)
        return arb.pi() ** 2 / x.sin_pi() ** 2 - acb(1 - x).polygamma(1).real
    return acb(x).polygamma(n).real


Step = Callable[[list, tuple], arb]  # (values of earlier steps, the point) -> this subexpression's ball


def _product(vals: list[arb], indices) -> arb:
    result = arb(1)
    for k in indices:
        result *= vals[k]
    return result


def _children(expr: sympy.Basic) -> tuple[sympy.Basic, ...]:
    if isinstance(expr, sympy.Piecewise) or expr.is_Atom:
        return ()  # Piecewise branches run lazily: an unselected branch may be undefined here
    if isinstance(expr, sympy.Pow) and expr.exp.is_Integer:
        return (expr.base,)
    return expr.args


def _step(expr: sympy.Basic, kids: list[int]) -> Step:
    if expr.is_Symbol:
        index = int(expr.name[1:])
        return lambda vals, env: env[index]
    if expr.is_Rational:
        value = arb(fmpq(int(expr.p), int(expr.q)))
        return lambda vals, env: value
    if expr is sympy.pi:
        return lambda vals, env: arb.pi()
    if expr is sympy.E:
        return lambda vals, env: arb.const_e()
    if isinstance(expr, sympy.Add):
        return lambda vals, env: sum((vals[k] for k in kids), arb(0))
    if isinstance(expr, sympy.Mul):
        return lambda vals, env: _product(vals, kids)
    if isinstance(expr, sympy.Pow):
        if expr.exp.is_Integer:
            n, base = int(expr.exp), kids[0]
            return lambda vals, env: int_power(vals[base], n)
        base, exponent = kids
        return lambda vals, env: _checked_power(vals[base], vals[exponent])
    if isinstance(expr, sympy.Piecewise):
        run = _piecewise([(compile_sympy(e), _condition(c)) for e, c in expr.args])
        return lambda vals, env: run(env)
    if isinstance(expr, sympy.atan2):
        y, x = kids
        return lambda vals, env: arb.atan2(vals[y], vals[x])
    if isinstance(expr, sympy.besseli) and expr.args[0].is_Integer:  # I_n = I_-n for an integer order
        order, x = kids
        return lambda vals, env: vals[x].bessel_i(abs(int(vals[order].unique_fmpz())))
    if isinstance(expr, sympy.polygamma):
        order, x = kids
        return lambda vals, env: _polygamma(vals[order], vals[x])
    if isinstance(expr, (sympy.Max, sympy.Min)):
        pick = arb.max if isinstance(expr, sympy.Max) else arb.min

        def extremum(vals, env):
            result = vals[kids[0]]
            for k in kids[1:]:
                result = pick(result, vals[k])
            return result

        return extremum
    for fn_type, arb_fn in UNARY_RULES.items():
        if isinstance(expr, fn_type):
            inner = kids[0]
            return lambda vals, env: arb_fn(vals[inner])
    raise NotImplementedError(f"the exact evaluator has no rule for {type(expr).__name__}: {expr}")


def post_order(expr: sympy.Basic) -> tuple[list[sympy.Basic], list[list[int]]]:
    """The distinct subexpressions of `expr`, children before parents (`expr` last), and each one's
    children as positions in that list."""
    index: dict[sympy.Basic, int] = {}
    nodes: list[sympy.Basic] = []
    kids: list[list[int]] = []
    stack = [(expr, False)]
    while stack:  # iterative post-order over distinct subexpressions (deep trees exceed recursion limits)
        node, expanded = stack.pop()
        if node in index:
            continue
        children = _children(node)
        if expanded or not children:
            index[node] = len(nodes)
            nodes.append(node)
            kids.append([index[c] for c in children])
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(children) if c not in index)
    return nodes, kids


def _run(steps: list[Step], env: tuple[arb, ...]) -> list[arb]:
    vals: list[arb] = []
    for step in steps:
        vals.append(step(vals, env))
    return vals


@functools.lru_cache(maxsize=8192)
def compile_sympy(expr: sympy.Basic) -> Evaluator:
    """A function from the point (arb values of x0, x1, ...) to an arb ball enclosing `expr` there."""
    nodes, kids = post_order(expr)
    steps = [_step(node, k) for node, k in zip(nodes, kids)]
    return lambda env: _run(steps, env)[-1]


# ------------------------------------------------------------------ gradients, in reverse mode
Partial = Callable[[list, tuple], arb]  # (values of the subexpressions, the point) -> ∂node/∂child


def _placeholder(k: int) -> sympy.Symbol:
    """The k-th argument of a local derivative: named as compile_sympy reads a point (x0, x1, ...), real as
    every symbol of the suite is (so |u|' is sign(u), as SymPy differentiates the whole expression)."""
    return sympy.Symbol(f"x{k}", real=True)


@functools.cache
def _local_derivatives(func: type, constants: tuple) -> tuple[Evaluator | None, ...]:
    """SymPy's derivative of `func` with respect to each of its variable arguments (`constants` holds the
    constant arguments in place, None for the variable ones), compiled over the variable arguments in
    order; None where it is identically 0. The same rules SymPy applies inside a whole expression's diff."""
    variables = [_placeholder(k) for k in range(sum(c is None for c in constants))]
    free = iter(variables)
    node = func(*(next(free) if c is None else c for c in constants))
    derivatives = []
    for variable in variables:
        derivative = sympy.diff(node, variable)
        derivatives.append(None if derivative == 0 else compile_sympy(derivative))
    return tuple(derivatives)


def _product_of_others(j: int, kids: list[int]) -> Partial:
    others = [k for i, k in enumerate(kids) if i != j]
    return lambda vals, env: _product(vals, others)


def _extremum_partial(j: int, kids: list[int], largest: bool) -> Partial:
    """∂Max/∂(its j-th argument): 1 where that argument is above all the others, 0 where one is above it,
    `Singular` at a tie: SymPy's Heaviside(u_j - Max(others)), without SymPy building Max(others) (an
    n-argument Max compares its arguments pairwise: seconds for a pooling window)."""
    mine, others = kids[j], [k for i, k in enumerate(kids) if i != j]
    pick = arb.max if largest else arb.min

    def partial(vals, env):
        rest = vals[others[0]]
        for k in others[1:]:
            rest = pick(rest, vals[k])
        return _heaviside(vals[mine] - rest if largest else rest - vals[mine])

    return partial


def _partials(node: sympy.Basic, kids: list[int], variable: list[bool]) -> list[tuple[int, Partial | None]]:
    """(child, ∂node/∂child) for every child that depends on the point; None stands for the constant 1."""
    if isinstance(node, sympy.Add):
        return [(k, None) for k in kids if variable[k]]
    if isinstance(node, sympy.Mul):
        return [(k, _product_of_others(j, kids)) for j, k in enumerate(kids) if variable[k]]
    if isinstance(node, sympy.Pow) and node.exp.is_Integer:
        n, base = int(node.exp), kids[0]
        return [(base, lambda vals, env: n * int_power(vals[base], n - 1))]
    if isinstance(node, (sympy.Max, sympy.Min)):
        largest = isinstance(node, sympy.Max)
        return [(k, _extremum_partial(j, kids, largest)) for j, k in enumerate(kids) if variable[k]]
    moving = [k for k in kids if variable[k]]
    derivatives = _local_derivatives(node.func, tuple(None if variable[k] else arg for k, arg in zip(kids, node.args)))
    partials = []
    for k, derivative in zip(moving, derivatives):
        if derivative is not None:
            partials.append((k, lambda vals, env, d=derivative: d(tuple(vals[m] for m in moving))))
    return partials


def _symbol_index(symbol: sympy.Symbol) -> int:
    return int(symbol.name[1:])


@functools.lru_cache(maxsize=8192)
def compile_gradient(expr: sympy.Basic) -> Callable[[tuple[arb, ...]], dict[int, arb]]:
    """A function from the point to {i: ball enclosing ∂expr/∂x_i} for every x_i `expr` depends on.

    Reverse mode over the distinct subexpressions: each node's derivative with respect to its children is
    SymPy's (compiled once per function and constant arguments), chained in arb. One pass gives every
    partial, where differentiating the whole expression once per variable re-derives shared parts each time
    (measured: SymPy's diff was 80% of a tensor-op test's time). `Singular` where a local derivative is
    undecided (a tie of Max, |u| near 0 under a power), as SymPy's derivative would be there. A Piecewise is
    differentiated whole, its branches still chosen lazily."""
    nodes, kids = post_order(expr)
    steps = [_step(node, k) for node, k in zip(nodes, kids)]
    variable: list[bool] = []  # whether each subexpression depends on the point
    for node, k in zip(nodes, kids):
        variable.append(any(variable[c] for c in k) if k else bool(node.free_symbols))
    symbols: dict[int, int] = {}  # node -> its symbol's index
    piecewise: dict[int, list[tuple[int, Evaluator]]] = {}  # node -> (symbol index, derivative) pairs
    partials: dict[int, list[tuple[int, Partial | None]]] = {}  # node -> (child, ∂node/∂child) pairs
    for n, (node, k) in enumerate(zip(nodes, kids)):
        if not variable[n]:
            continue
        if node.is_Symbol:
            symbols[n] = _symbol_index(node)
        elif not k:  # a Piecewise: its derivative with respect to each symbol in it, branches kept lazy
            piecewise[n] = [(_symbol_index(s), compile_sympy(sympy.diff(node, s)))
                            for s in sorted(node.free_symbols, key=_symbol_index)]
        else:
            partials[n] = _partials(node, k, variable)

    def gradient(env: tuple[arb, ...]) -> dict[int, arb]:
        vals = _run(steps, env)
        adjoints: list[arb | None] = [None] * len(steps)
        adjoints[-1] = arb(1)
        grads: dict[int, arb] = {}
        for n in range(len(steps) - 1, -1, -1):
            adjoint = adjoints[n]
            if adjoint is None:
                continue
            if n in symbols:
                i = symbols[n]
                grads[i] = grads[i] + adjoint if i in grads else adjoint
            elif n in piecewise:
                for i, derivative in piecewise[n]:
                    contribution = adjoint * derivative(env)
                    grads[i] = grads[i] + contribution if i in grads else contribution
            else:
                for child, partial in partials.get(n, ()):
                    contribution = adjoint if partial is None else adjoint * partial(vals, env)
                    total = adjoints[child]
                    adjoints[child] = contribution if total is None else total + contribution
        return grads

    return gradient
