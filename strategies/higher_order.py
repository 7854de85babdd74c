"""Expressions for the higher-derivative tests: compositions of the ops whose second derivative
the oracle models (torch's backward formulas differentiated on jets, oracles.higher.higher_order), and linear
expressions (whose gradient torch returns without a grad_fn)."""

from __future__ import annotations

from hypothesis import strategies as st

from oracles.core.case import GradCase
from oracles.core.expr import Apply, Const, Expr, Var
from oracles.numerics.dtypes import format_named
from oracles.table.ops import ops_where
from strategies.cached import choice
from strategies.expressions import SCALAR_OPERANDS, compositions
from strategies.values import leaf_values

# The ops whose double backward the jet model judges (oracles.higher.higher_order): all but the step functions.
SECOND_ORDER_OPS = ops_where(second_order=True, every_dtype=True)


def second_order(max_depth: int = 2, ops=SECOND_ORDER_OPS, root: str | None = None):
    """The expression strategy of the higher-derivative tests (an `expressions` argument of grad_cases)."""
    return lambda n: compositions(n, max_depth=max_depth, ops=ops, root=root)


def linear_expressions(n_vars: int, max_leaves: int = 6) -> st.SearchStrategy[Expr]:
    """Affine expressions: sums and differences of inputs, negations, products and quotients by a Python
    scalar. Their gradient is a constant, which torch computes without a grad_fn."""

    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        scalar = choice(SCALAR_OPERANDS).map(Const)
        return st.one_of(
            st.tuples(children, children).map(lambda ab: Apply("add", ab, 0)),
            st.tuples(children, children).map(lambda ab: Apply("sub", ab, 0)),
            children.map(lambda a: Apply("neg", (a,), 0)),
            st.tuples(children, scalar).map(lambda ac: Apply("mul", ac, 0)),
            st.tuples(scalar, children).map(lambda ca: Apply("mul", ca, 0)),
            st.tuples(children, scalar).map(lambda ac: Apply("div", ac, 0)),
        )

    leaves = st.integers(0, n_vars - 1).map(Var)
    return extend(st.recursive(leaves, extend, max_leaves=max_leaves))  # an op at the root


@st.composite
def scalar_cases(draw, dtype: str, expressions=None, max_inputs: int = 3) -> GradCase:
    """A case whose inputs are all 0-d tensors: one point, so each second derivative is one number."""
    fmt = format_named(dtype)
    n_inputs = draw(st.integers(1, max_inputs), label="number of inputs")
    expr = draw((expressions or second_order())(n_inputs), label="expression")
    values = tuple((draw(leaf_values(fmt), label=f"x{i} value"),) for i in range(n_inputs))
    return GradCase(expr, ((),) * n_inputs, values, dtype)
