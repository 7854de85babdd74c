"""Random compositions of the op table, with every argument inside its op's domain by construction.

`compositions(n_vars)` draws a tree: each node is an input (shrink target) or an op of the table whose
arguments are subtrees built for that op's domains:
- REAL: any subtree;
- POSITIVE: a subtree passed through a positive-valued wrapper (`e ** 2 + 1`, `torch.cosh(e)`);
- NONZERO: a POSITIVE subtree, possibly negated;
- UNIT: `torch.tanh(e) * 0.75` or `torch.sin(e) * 0.5`, inside (-0.9, 0.9) with margin for rounding;
- BOUNDED: `torch.tanh(e) * 3` or `torch.sin(e) * 2.5`, so exp/sinh/cosh never overflow;
- ABOVE_ONE, ABOVE_TWO: a POSITIVE subtree plus 1 or 2; INSIDE_UNIT_INTERVAL: `torch.tanh(e) * 0.45 + 0.5`.
maximum/minimum compare a subtree with itself plus a NONZERO offset, so they never tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from hypothesis import strategies as st

from oracles.core.expr import Apply, Const, Expr, Var
from oracles.table.domains import Domain
from oracles.table.ops import OPS, Operands, OpSpec, ops_where
from strategies.cached import choice

SCALAR_OPERANDS = (2.0, 0.5, 3.0, 1.0, -1.0, -2.0, 0.25, 1.5, 0.1, 1 / 3)
# pow with a constant exponent, by the base's domain the exponent needs.
EXPONENTS = {
    Domain.REAL: (2.0, 3.0, 4.0, 1.0),
    Domain.NONZERO: (-1.0, -2.0, -3.0),
    Domain.POSITIVE: (0.5, -0.5, 1.5, 1 / 3, 2 / 3, -1 / 3, 2.5),
}
POSITIVE_SHIFTS = (1.0, 0.5, 2.0)
_SQUASHES = {Domain.UNIT: (("tanh", 0.75), ("sin", 0.5)), Domain.BOUNDED: (("tanh", 3.0), ("sin", 2.5))}
# floor/ceil/trunc/frac jump at integers, round at half-integers: `tanh(e) * 0.375 + centre` stays 1/8 off.
_ABOVE = {Domain.ABOVE_ONE: 1.0, Domain.ABOVE_TWO: 2.0}  # a POSITIVE subtree plus the edge
STEP_CENTRES = {Domain.OFF_INTEGERS: (0.5, 1.5, -0.5, 2.5), Domain.OFF_HALF_INTEGERS: (0.0, 1.0, -1.0, 2.0)}
DEFAULT_DEPTH = 3


def _spelling(draw, op: OpSpec, const_first: bool = False, const_second: bool = False) -> int:
    valid = [
        i for i, s in enumerate(op.spellings)
        if (s.const_first or not const_first) and (s.const_second or not const_second)
    ]
    return draw(choice(valid), label=f"{op.name} spelling")


def _apply(draw, name: str, *args: Expr) -> Apply:
    const_first = isinstance(args[0], Const)
    const_second = len(args) > 1 and isinstance(args[1], Const)
    return Apply(name, tuple(args), _spelling(draw, OPS[name], const_first, const_second))


def _in_domain(draw, domain: Domain, depth: int, n_vars: int, ops: Sequence[str]) -> Expr:
    inner = _expr(draw, depth, n_vars, ops)
    if domain is Domain.REAL:
        return inner
    if domain is Domain.INSIDE_UNIT_INTERVAL:
        return _apply(draw, "add", _apply(draw, "mul", _apply(draw, "tanh", inner), Const(0.45)), Const(0.5))
    if domain in _ABOVE:
        return _apply(draw, "add", _positive(draw, inner), Const(_ABOVE[domain]))
    if domain in (Domain.OFF_INTEGERS, Domain.OFF_HALF_INTEGERS):
        centres = STEP_CENTRES[domain]
        centre = draw(choice(centres), label="centre between jumps")
        return _apply(draw, "add", _apply(draw, "mul", _apply(draw, "tanh", inner), Const(0.375)), Const(centre))
    if domain in _SQUASHES:
        squash, scale = draw(choice(_SQUASHES[domain]), label=f"{domain.name.lower()} wrapper")
        return _apply(draw, "mul", _apply(draw, squash, inner), Const(scale))
    positive = _positive(draw, inner)
    if domain is Domain.NONZERO and draw(st.booleans(), label="negate"):
        return _apply(draw, "neg", positive)
    return positive


def _positive(draw, inner: Expr) -> Expr:
    """`inner` passed through a wrapper whose value is at least 1/2: `e ** 2 + c` or `torch.cosh(...)`."""
    kind = draw(choice(["square_plus", "cosh"]), label="positive wrapper")
    if kind == "square_plus":
        shift = draw(choice(POSITIVE_SHIFTS), label="shift")
        square = draw(choice(["pow", "square"]), label="square spelling")
        squared = _apply(draw, "pow_scalar", inner, Const(2.0)) if square == "pow" else _apply(draw, "square", inner)
        positive = _apply(draw, "add", squared, Const(shift))
    else:
        squash, scale = draw(choice(_SQUASHES[Domain.BOUNDED]), label="bounded wrapper")
        positive = _apply(draw, "cosh", _apply(draw, "mul", _apply(draw, squash, inner), Const(scale)))
    return positive


def _arguments(draw, op: OpSpec, depth: int, n_vars: int, ops: Sequence[str]) -> tuple[Expr, ...]:
    sub = depth - 1
    if op.operands is Operands.EXPONENT:
        base_domain = draw(choice(list(EXPONENTS)), label="exponent kind")
        exponent = draw(choice(EXPONENTS[base_domain]), label="exponent")
        return _in_domain(draw, base_domain, sub, n_vars, ops), Const(exponent)
    if op.operands is Operands.ORDERED:
        a = _expr(draw, sub, n_vars, ops)
        b = _apply(draw, "add", a, _in_domain(draw, Domain.NONZERO, sub, n_vars, ops))
        return (a, b) if draw(st.booleans(), label="larger first") else (b, a)
    if op.operands is Operands.PARAMETERS:
        parameters = draw(choice(op.parameters), label="parameters")
        if op.domains[0] is Domain.OFF_PARAMETERS:
            first = _off_points(draw, sorted(op.points_of(parameters)), sub, n_vars, ops)
        else:
            first = _in_domain(draw, op.domains[0], sub, n_vars, ops)
        return (first,) + tuple(Const(p) for p in parameters)
    if op.constant_bases and draw(st.booleans(), label="constant base"):
        return Const(draw(choice(op.constant_bases), label="base")), _expr(draw, sub, n_vars, ops)
    if op.operands is Operands.SCALAR:
        # a scalar first argument only where some spelling takes one (`2 - x`; torch.rsub(2, x) does not exist)
        places = ["none", "second", "first"] if any(s.const_first for s in op.spellings) else ["none", "second"]
        where = draw(choice(places), label="scalar operand")
        if where != "none":
            value = draw(choice(SCALAR_OPERANDS), label="scalar")
            other = _in_domain(draw, op.domains[0] if where == "second" else op.domains[1], sub, n_vars, ops)
            return (other, Const(value)) if where == "second" else (Const(value), other)
    return tuple(_off_points(draw, _special_points(op, i), sub, n_vars, ops) if d is Domain.OFF_SPECIALS
                 else _in_domain(draw, d, sub, n_vars, ops) for i, d in enumerate(op.domains))


def _special_points(op: OpSpec, arg: int) -> list[float]:
    """The float points of the argument's specials, from the entry's domain data."""
    return sorted({p for s in op.specials if s.arg == arg and s.period is None for p in s.at})


def _off_points(draw, bounds: list[float], depth: int, n_vars: int, ops: Sequence[str]) -> Expr:
    """A subtree bounded away from every point of `bounds` (clamp's bounds, relu6's kinks): below the
    lowest (the point minus a POSITIVE subtree, at least 1/2 off), above the highest, or inside a gap (its
    middle plus tanh(e) times 3/8 of the gap)."""
    regions = ["below", "above"] + [f"gap {i}" for i in range(len(bounds) - 1)]
    region = draw(choice(regions), label="region between the bounds")
    if region in ("below", "above"):
        offset = _in_domain(draw, Domain.POSITIVE, depth, n_vars, ops)
        bound = bounds[0] if region == "below" else bounds[-1]
        if region == "below":
            return _apply(draw, "neg", offset) if bound == 0 else _apply(draw, "sub", Const(bound), offset)
        return offset if bound == 0 else _apply(draw, "add", offset, Const(bound))
    lo, hi = bounds[int(region.split()[1])], bounds[int(region.split()[1]) + 1]
    squashed = _apply(draw, "mul", _apply(draw, "tanh", _expr(draw, depth, n_vars, ops)), Const(0.375 * (hi - lo)))
    return _apply(draw, "add", squashed, Const((lo + hi) / 2))


# Below the root, a node is an op twice as often as an input; inputs come first so trees shrink.
_NODE_KINDS = ("input", "op", "op")


def _expr(draw, depth: int, n_vars: int, ops: Sequence[str], root: str | None = None,
          top: bool = False) -> Expr:
    if depth <= 0 or (not top and draw(choice(_NODE_KINDS), label="node") == "input"):
        return Var(draw(st.integers(0, n_vars - 1), label="input"))
    name = root or draw(choice(ops), label="op")
    op = OPS[name]
    args = _arguments(draw, op, depth, n_vars, ops)
    return Apply(name, args, _spelling(draw, op, isinstance(args[0], Const),
                                       len(args) > 1 and isinstance(args[1], Const)))


@cache  # listed once, at the first draw (the table is complete by then): it was listed anew on every draw
def _every_dtype_ops() -> tuple[str, ...]:
    return ops_where(every_dtype=True)


def compositions(n_vars: int, max_depth: int = DEFAULT_DEPTH, ops: Sequence[str] | None = None,
                 root: str | None = None) -> st.SearchStrategy[Expr]:
    """Trees over inputs x0..x{n_vars-1} with an op at the root; `root` fixes which (to focus a test
    on one op). Arguments are drawn up to `max_depth` levels deep (domain wrappers add a level)."""
    if n_vars < 1:
        raise ValueError(f"n_vars must be at least 1, got {n_vars!r}")
    if max_depth < 0:
        raise ValueError(f"max_depth must be at least 0, got {max_depth!r}")
    ops = tuple(ops) if ops is not None else _every_dtype_ops()
    for name in ops + ((root,) if root else ()):
        if name not in OPS:
            raise ValueError(f"unknown op {name!r}; the op table has {', '.join(OPS)}")
    return _compositions(n_vars, max_depth, ops, root)


@cache  # one strategy object per configuration: see strategies/cached.py
def _compositions(n_vars: int, max_depth: int, ops: tuple[str, ...], root: str | None) -> st.SearchStrategy[Expr]:
    @st.composite
    def draw_tree(draw):  # the root is always an op: a bare input tests nothing
        return _expr(draw, max(max_depth, 1), n_vars, ops, root, top=True)

    return draw_tree()
