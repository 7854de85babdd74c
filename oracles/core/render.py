"""The two renderings of one expression tree: the torch program (text and execution) and SymPy."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

import sympy
import torch

from oracles.core.expr import Const, Expr, Var
from oracles.table.ops import OPS

# Python precedence of the operator spellings; calls and names bind tightest (ATOM).
ATOM = 5
_PRECEDENCE = {"{0} + {1}": 1, "{0} - {1}": 1, "{0} * {1}": 2, "{0} / {1}": 2, "{0} % {1}": 2, "-{0}": 3,
               "{0} ** {1}": 4}
_CALL_SLOT = re.compile(r"[(,] ?\{(\d)\}(?=[,)])")  # a slot alone inside a call's argument list


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Var) or (isinstance(expr, Const) and expr.value >= 0):
        return ATOM
    if isinstance(expr, Const):
        return _PRECEDENCE["-{0}"]
    return _PRECEDENCE.get(OPS[expr.op].spellings[expr.spelling].template, ATOM)


def _slot_needs_parens(template: str, slot: int, child: int) -> bool:
    """Whether a child of precedence `child` must be parenthesised in `slot` so Python evaluates
    exactly the drawn tree (float + and * are not associative: `a + (b + c)` keeps its parentheses)."""
    if any(int(m.group(1)) == slot for m in _CALL_SLOT.finditer(template)):
        return False
    parent = _PRECEDENCE.get(template, ATOM)
    if parent == ATOM:  # method call: `(a + b).sin()`
        return child < ATOM
    if parent == 4:  # `**` is right-associative
        return child <= 4 if slot == 0 else child < 4
    if parent == 3:
        return child <= 3
    return child < parent if slot == 0 else child <= parent


def torch_source(expr: Expr, names=None) -> str:
    """Python source that computes `expr` with exactly the drawn spellings, e.g. `torch.sin(x0) * x1`;
    `names[i]` (atomic source text) replaces the name of input i (oracles.tensor.program)."""
    if isinstance(expr, Var):
        return expr.name if names is None else names[expr.index]
    if isinstance(expr, Const):
        return expr.literal
    template = OPS[expr.op].spellings[expr.spelling].template
    parts = []
    for slot, arg in enumerate(expr.args):
        text = torch_source(arg, names)
        if _slot_needs_parens(template, slot, _precedence(arg)):
            text = f"({text})"
        parts.append(text)
    return template.format(*parts)


class TracedStep(NamedTuple):
    """One op torch ran: the node of the tree, what it read (tensors, or the Python scalars of `Const`
    arguments) and the tensor it returned, whose `.grad` torch keeps (`retain_grad`) for oracles.core.stepwise."""

    node: object  # an Apply, or a tensor program's Tensor node
    inputs: tuple
    output: torch.Tensor


def run_torch(expr: Expr, leaves: list[torch.Tensor], overrides: Mapping[str, Callable] | None = None,
              record: list[TracedStep] | None = None):
    """Execute `expr` on torch tensors. `overrides` maps an op name to a replacement call (fault injection);
    `record` collects every op torch ran, children before parents."""
    if isinstance(expr, Var):
        return leaves[expr.index]
    if isinstance(expr, Const):
        return expr.value
    args = [run_torch(arg, leaves, overrides, record) for arg in expr.args]
    if overrides and expr.op in overrides:
        out = overrides[expr.op](*args)
    else:
        out = OPS[expr.op].spellings[expr.spelling].call(*args)
    if record is not None:
        record.append(traced(expr, args, out))
    return out


def traced(node, args, out) -> TracedStep:
    """The step `node` took from `args` to `out`, with torch told to keep `out`'s gradient."""
    if isinstance(out, torch.Tensor) and out.requires_grad and not out.is_leaf:
        out.retain_grad()
    return TracedStep(node, tuple(args), out)


def symbol(index: int) -> sympy.Symbol:
    return sympy.Symbol(f"x{index}", real=True)


@functools.lru_cache(maxsize=4096)
def to_sympy(expr: Expr) -> sympy.Expr:
    """The exact mathematics of `expr`: constants as the exact Rationals torch receives."""
    if isinstance(expr, Var):
        return symbol(expr.index)
    if isinstance(expr, Const):
        exact = expr.exact
        return sympy.Rational(exact.numerator, exact.denominator)
    return OPS[expr.op].sympy(*(to_sympy(arg) for arg in expr.args))


@functools.lru_cache(maxsize=4096)
def derivative(expr: Expr, index: int) -> sympy.Expr:
    """∂expr/∂x_index, derived by SymPy on the unsimplified tree (cached: shrinking replays trees)."""
    return sympy.diff(to_sympy(expr), symbol(index))
