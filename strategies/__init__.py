"""Hypothesis strategies: shapes, exact input values, polynomials and op-table compositions.

Every strategy builds valid inputs by construction (arguments land in each op's domain because the
tree is built that way, never because bad draws are filtered), and simple choices come first so a
failure shrinks to a small readable expression.
"""

from strategies.cases import grad_cases
from strategies.expressions import compositions
from strategies.polynomials import polynomials

__all__ = ["compositions", "grad_cases", "polynomials"]
