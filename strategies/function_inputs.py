"""Input values for a function traced into the op table (oracles.core.traced): each input is drawn over the
whole domain of the ops that read it directly, as the single-op whole-domain tests draw their arguments
(strategies/whole_domain.py: simple values first, every binade, 1 ulp to far off every edge and special
point). An input read by several ops draws each element by the plan of one of them, so each op's edges are
met; a value outside another reader's domain is a point where the exact derivative does not exist, which
the oracle reports as such."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

from oracles.core.expr import Apply, Const, Expr, Var, walk
from oracles.numerics.dtypes import FloatFormat
from oracles.table.domains import Domain
from oracles.table.ops import OPS, Operands
from strategies.cached import choice
from strategies.whole_domain import EXPONENTS, ArgumentPlan, argument_plan, argument_value


def _exponent_domain(exponent: float) -> Domain:
    """The base's domain for a constant exponent: the table's own choices, else by the exponent's kind."""
    for domain, exponents in EXPONENTS.items():
        if exponent in exponents:
            return domain
    if Fraction(exponent).denominator == 1:
        return Domain.REAL if exponent >= 0 else Domain.NONZERO
    return Domain.POSITIVE


def reader_plans(expr: Expr, fmt: FloatFormat) -> dict[int, tuple[ArgumentPlan, ...]]:
    """Per input of `expr`: the plans of the ops that take it as an argument directly (distinct ones)."""
    plans: dict[int, list[ArgumentPlan]] = {}
    for node in walk(expr):
        if not isinstance(node, Apply):
            continue
        op = OPS[node.op]
        constants = tuple(a.value for a in node.args if isinstance(a, Const))
        for slot, arg in enumerate(node.args):
            if not isinstance(arg, Var):
                continue
            domain, parameters = None, ()
            if op.operands is Operands.EXPONENT:
                domain = _exponent_domain(constants[0])
            elif op.operands is Operands.PARAMETERS:
                parameters = constants
            elif op.operands is Operands.ORDERED:
                domain = op.domains[slot]
            plan = argument_plan(op, slot, fmt, domain, parameters)
            if plan not in plans.setdefault(arg.index, []):
                plans[arg.index].append(plan)
    return {i: tuple(p) for i, p in plans.items()}


@st.composite
def function_input_values(draw, plans: dict[int, tuple[ArgumentPlan, ...]], sizes: tuple[int, ...],
                          fmt: FloatFormat) -> tuple[tuple[float, ...], ...]:
    """Row-major values for inputs of `sizes` elements; an input no op reads gets simple values."""
    values = []
    for i, size in enumerate(sizes):
        mine = plans.get(i)
        row = []
        for k in range(size):
            if not mine:
                row.append(1.0)
                continue
            plan = mine[0] if len(mine) == 1 else mine[draw(choice(range(len(mine))), label=f"x{i}[{k}] reader")]
            row.append(argument_value(draw, plan, fmt, f"x{i}[{k}]"))
        values.append(tuple(row))
    return tuple(values)
