"""Expected `.grad` of every input: SymPy's exact derivative, and the error model's enclosure around it.

Per point of the broadcast output we compute
- the exact derivative: SymPy's ∂f/∂xᵢ evaluated in arb at the exact inputs, and
- the model enclosure: forward-mode propagation of torch's own local derivatives over the same tree,
  every float operation rounded by the `RoundingModel` of the dtype under test.
A broadcast input's expected `.grad` is the sum over the points that read each of its elements, done by
us (exact sum, and a rounded sum for the enclosure). The two derivations are independent; the exact
value must lie in the enclosure, or the op table itself is wrong (`OracleInconsistency`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sympy
from flint import arb

from oracles.case import GradCase, all_indices, broadcast_source, flat_index, numel
from oracles.exact import compile_sympy
from oracles.expr import Apply, Const, Expr, Var
from oracles.ops import OPS
from oracles.render import derivative
from oracles.rounding import RoundingModel, Singular

ONE = arb(1)


class OracleInconsistency(AssertionError):
    """SymPy's exact derivative lies outside the enclosure derived from the op table: a bug of ours."""


class Overflow(Exception):
    """A value torch computes on the way exceeds the dtype's range."""


class Status(enum.Enum):
    OK = "ok"
    SINGULAR = "singular"  # kink, tie or pole within the rounding model: nothing to judge
    OVERFLOW = "overflow"


@dataclass
class ExpectedElement:
    status: Status
    exact: arb | None = None  # ball around the exact derivative (tiny radius)
    enclosure: arb | None = None  # every value a torch with the modelled per-op accuracy may return
    reason: str = ""


@dataclass
class ExpectedGrad:
    leaf: int
    used: bool  # False: the input is not in the graph, so torch leaves `.grad` None
    derivative: sympy.Expr | None
    elements: list[ExpectedElement] = field(default_factory=list)  # row-major over the input's shape


def _propagate(expr: Expr, point: tuple[arb, ...], model: RoundingModel, limit: arb):
    """(value, {input: tangent}) of `expr` as torch computes it, in rounding-model balls."""
    if isinstance(expr, Var):
        return point[expr.index], {expr.index: ONE}
    if isinstance(expr, Const):
        return model.const(expr.value), {}
    assert isinstance(expr, Apply)
    op = OPS[expr.op]
    evaluated = [_propagate(arg, point, model, limit) for arg in expr.args]
    values = [v for v, _ in evaluated]
    result = op.forward(model, *values)
    if not result.is_finite() or result.abs_upper() > limit:
        raise Overflow(f"{expr.op} may exceed the {model.format.name} range")
    locals_ = op.local_grads(model, values, result)
    tangents: dict[int, arb] = {}
    for local, (_, child_tangents) in zip(locals_, evaluated):
        for var, tangent in child_tangents.items():
            exact_unit = local.is_exact() and abs(local) == 1  # passing grad through is exact
            term = local * tangent if exact_unit else model.mul(local, tangent)
            tangents[var] = term if var not in tangents else model.add(tangents[var], term)
    return result, tangents


def expected_gradients(case: GradCase) -> list[ExpectedGrad]:
    model = RoundingModel(case.format)
    limit = arb(case.format.max_finite)
    used = case.used
    expected = [
        ExpectedGrad(i, i in used, derivative(case.expr, i) if i in used else None)
        for i in range(len(case.shapes))
    ]
    exact_fns = {i: compile_sympy(expected[i].derivative) for i in used}
    # contributions[leaf][flat element] -> list of (exact, enclosure) or a Status with a reason
    contributions = {i: [[] for _ in range(numel(case.shapes[i]))] for i in used}
    failures = {i: {} for i in used}
    n_vars = len(case.shapes)
    for out_index in all_indices(case.output_shape):
        point = tuple(arb(case.value_at(i, out_index)) if i in used else arb(0) for i in range(n_vars))
        try:
            _, tangents = _propagate(case.expr, point, model, limit)
            status, reason = Status.OK, ""
        except Singular as exc:
            status, reason = Status.SINGULAR, str(exc)
        except Overflow as exc:
            status, reason = Status.OVERFLOW, str(exc)
        for i in used:
            flat = flat_index(case.shapes[i], broadcast_source(case.shapes[i], out_index))
            if status is not Status.OK:
                failures[i][flat] = (status, reason)
                continue
            try:
                exact = exact_fns[i](point)
            except Singular as exc:
                failures[i][flat] = (Status.SINGULAR, f"exact derivative: {exc}")
                continue
            if not exact.is_finite():
                failures[i][flat] = (Status.SINGULAR, "exact derivative not finite")
                continue
            contributions[i][flat].append((exact, tangents.get(i, arb(0))))
    for i in used:
        for flat, terms in enumerate(contributions[i]):
            if flat in failures[i]:
                status, reason = failures[i][flat]
                expected[i].elements.append(ExpectedElement(status, reason=reason))
                continue
            exact = sum((e for e, _ in terms), arb(0))
            enclosure = model.sum([m for _, m in terms])
            if not enclosure.is_finite() or enclosure.abs_upper() > limit:
                expected[i].elements.append(ExpectedElement(Status.OVERFLOW, reason="gradient may overflow"))
                continue
            if not enclosure.contains(exact):
                raise OracleInconsistency(
                    f"x{i} element {flat}: exact {exact.str(20)} outside the model enclosure "
                    f"{enclosure.str(20)} for {expected[i].derivative}"
                )
            expected[i].elements.append(ExpectedElement(Status.OK, exact, enclosure))
    return expected
