"""Whole test cases: an expression over 1-4 inputs, their broadcastable shapes and exact values."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from oracles.core.case import GradCase, numel
from oracles.core.expr import Expr, renamed, variables
from oracles.numerics.dtypes import format_named
from strategies.expressions import compositions
from strategies.shapes import input_shapes
from strategies.values import leaf_value_lists

MAX_INPUTS = 4
UNREAD_VALUE = 1.0


@st.composite
def grad_cases(draw, dtype: str, expressions: Callable[[int], st.SearchStrategy[Expr]] = compositions,
               max_inputs: int = MAX_INPUTS) -> GradCase:
    """`expressions(n_inputs)` gives the expression strategy (default: op-table compositions)."""
    fmt = format_named(dtype)
    if not 1 <= max_inputs <= MAX_INPUTS:
        raise ValueError(f"max_inputs must be in 1..{MAX_INPUTS}, got {max_inputs!r}")
    n_inputs = draw(st.integers(1, max_inputs), label="number of inputs")
    expr = draw(expressions(n_inputs), label="expression")
    # Only the inputs the expression reads get drawn shapes and values, renumbered in order: an unread input
    # changes no verdict, yet Hypothesis varied its shape and values as often as any others, and a third of
    # all examples were checks already made (measured on 400 examples of ten ops: 136 repeats, 40 with this).
    # An unread input stays possible, a 0-d one of a fixed value, so that torch leaving its `.grad` None is
    # still checked.
    used = variables(expr)
    expr = renamed(expr, {old: new for new, old in enumerate(used)})
    shapes = draw(input_shapes(len(used)), label="shapes")
    values = tuple(
        tuple(draw(leaf_value_lists(fmt, numel(s)), label=f"x{i} values"))
        for i, s in enumerate(shapes)
    )
    if len(used) < n_inputs and draw(st.booleans(), label="an input the expression does not read"):
        shapes, values = shapes + ((),), values + ((UNREAD_VALUE,),)
    return GradCase(expr, shapes, values, dtype)
