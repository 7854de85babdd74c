"""Strategies for the tests of backward's semantics (tests/test_accumulation.py, test_vjp.py,
test_backward_errors.py, test_selective_backward.py): smooth expressions, several expressions over the
same leaves, and `gradient=` values exact in every dtype under test."""

from __future__ import annotations

from hypothesis import strategies as st

from oracles.core.case import GradCase
from oracles.table.ops import ops_where
from strategies.cached import choice
from strategies.cases import grad_cases
from strategies.expressions import compositions

# The smooth ops of the table (no kink, jump or tie): backward's semantics do not depend on the op, and
# almost every element of these is verifiable.
SMOOTH_OPS = ops_where(smooth=True, every_dtype=True)


def smooth(max_depth: int = 2):
    """The expression strategy of these tests: compositions of the smooth ops."""
    return lambda n: compositions(n, max_depth=max_depth, ops=SMOOTH_OPS)


@st.composite
def shared_leaf_cases(draw, dtype: str, max_outputs: int = 3, max_inputs: int = 3):
    """1..max_outputs expressions over the same leaves (shapes and values), each drawn on its own."""
    base = draw(grad_cases(dtype, smooth(), max_inputs=max_inputs), label="case")
    n_outputs = draw(st.integers(1, max_outputs), label="number of expressions")
    extra = [draw(smooth()(len(base.shapes)), label=f"expression y{k}") for k in range(1, n_outputs)]
    return [base] + [GradCase(e, base.shapes, base.values, dtype) for e in extra]


# Gradient (upstream) values exact in every dtype under test and in every integer dtype down to int8:
# m * 2**e with |m| <= 64 (7 bits: bfloat16 has 8) and -6 <= e <= 0 (float16's normal range starts at 2**-14).
SIMPLE_UPSTREAM = (1.0, -1.0, 2.0, 0.5, 0.0, 3.0, -0.25)


def upstream_values(n: int, integers: bool = False) -> st.SearchStrategy[tuple[float, ...]]:
    """`n` values for a `gradient=` tensor, exact in every float dtype (and integers when asked)."""
    if integers:
        value = st.integers(-64, 64).map(float)
    else:
        dyadic = st.builds(lambda m, e: m * 2.0**e, st.integers(-64, 64), st.integers(-6, 0))
        value = st.one_of(choice(SIMPLE_UPSTREAM), dyadic)
    return st.lists(value, min_size=n, max_size=n).map(tuple)
