"""Whole test cases: an expression over 1-4 inputs, their broadcastable shapes and exact values."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from oracles.core.case import GradCase, numel
from oracles.core.expr import Expr
from oracles.numerics.dtypes import format_named
from strategies.expressions import compositions
from strategies.shapes import input_shapes
from strategies.values import leaf_value_lists

MAX_INPUTS = 4


@st.composite
def grad_cases(draw, dtype: str, expressions: Callable[[int], st.SearchStrategy[Expr]] = compositions,
               max_inputs: int = MAX_INPUTS) -> GradCase:
    """`expressions(n_inputs)` gives the expression strategy (default: op-table compositions)."""
    fmt = format_named(dtype)
    if not 1 <= max_inputs <= MAX_INPUTS:
        raise ValueError(f"max_inputs must be in 1..{MAX_INPUTS}, got {max_inputs!r}")
    n_inputs = draw(st.integers(1, max_inputs), label="number of inputs")
    expr = draw(expressions(n_inputs), label="expression")
    shapes = draw(input_shapes(n_inputs), label="shapes")
    values = tuple(
        tuple(draw(leaf_value_lists(fmt, numel(s)), label=f"x{i} values"))
        for i, s in enumerate(shapes)
    )
    return GradCase(expr, shapes, values, dtype)
