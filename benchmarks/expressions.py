"""Deterministic benchmark expressions of a given node count over one input, bounded everywhere so
every dtype stays in range: a chain of smooth unary ops and products/sums with the input."""

from __future__ import annotations

import random

from oracles.core.expr import Apply, Expr, Var, size

SMOOTH_UNARY = ("sin", "cos", "tanh", "atan", "sigmoid", "erf", "asinh")
WITH_INPUT = ("mul", "add")


def chain_expression(nodes: int, seed: int = 0) -> Expr:
    """An expression of exactly `nodes` nodes (>= 2)."""
    if nodes < 2:
        raise ValueError(f"nodes must be at least 2, got {nodes!r}")
    rng = random.Random(seed)
    expr: Expr = Var(0)
    while size(expr) < nodes:
        if nodes - size(expr) >= 2 and rng.random() < 0.4:
            expr = Apply(rng.choice(WITH_INPUT), (expr, Var(0)), spelling=0)
        else:
            expr = Apply(rng.choice(SMOOTH_UNARY), (expr,), spelling=0)
    return expr


def grid(n: int) -> tuple[float, ...]:
    """n exactly representable points spread over [-2, 2] (multiples of 1/64)."""
    if n == 1:
        return (0.75,)
    return tuple(round((-2 + 4 * i / (n - 1)) * 64) / 64 for i in range(n))
