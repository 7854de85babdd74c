"""The expression IR: small frozen trees that both the torch program and the SymPy oracle are read from.

A tree is built once by a strategy and rendered twice, so torch runs exactly the spellings that were
drawn while SymPy sees the same mathematics. Never lambdify SymPy back to torch: SymPy canonicalises as
it builds (`x*x` becomes `x**2`, constants fold), so torch would not run what was drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Var:
    """Input tensor number `index`, rendered `x0`, `x1`, ..."""

    index: int

    @property
    def name(self) -> str:
        return f"x{self.index}"


@dataclass(frozen=True)
class Const:
    """A Python float literal; `value` is its exact binary value, which is what torch receives."""

    value: float

    @property
    def exact(self) -> Fraction:
        return Fraction(self.value)

    @property
    def literal(self) -> str:
        if self.value == int(self.value) and abs(self.value) < 2**53:
            return str(int(self.value))  # ints read better: `x ** 2`, `3 * x`
        return repr(self.value)


@dataclass(frozen=True)
class Apply:
    """`op` (a key of ops.OPS) applied to `args`, written with spelling number `spelling`."""

    op: str
    args: tuple[Expr, ...]
    spelling: int = 0


Expr = Var | Const | Apply


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node, parents before children."""
    yield expr
    if isinstance(expr, Apply):
        for arg in expr.args:
            yield from walk(arg)


def variables(expr: Expr) -> tuple[int, ...]:
    """Indices of the inputs the expression uses, sorted."""
    return tuple(sorted({node.index for node in walk(expr) if isinstance(node, Var)}))


def size(expr: Expr) -> int:
    return sum(1 for _ in walk(expr))


def renamed(expr: Expr, mapping: dict[int, int]) -> Expr:
    """`expr` with input i renamed to input mapping[i] (inputs not in `mapping` keep their index)."""
    if isinstance(expr, Var):
        return Var(mapping.get(expr.index, expr.index))
    if isinstance(expr, Const):
        return expr
    return Apply(expr.op, tuple(renamed(a, mapping) for a in expr.args), expr.spelling)
