"""Expected `.grad` of every input: the exact derivative, and the error model's enclosure around it.

Per point of the broadcast output we compute
- the exact derivative: SymPy's partial derivatives of each op chained exactly in arb at the exact
  inputs (oracles.chain_rule; the same value as SymPy's whole-tree ∂f/∂xᵢ, which reports print), and
- the model enclosure: torch's reverse mode replayed with torch's own local derivatives (the op table's
  derivatives.yaml formulas), every float operation rounded by the `RoundingModel` of the dtype.
A broadcast input's expected `.grad` is the sum over the points that read each of its elements, done by
us (exact sum, and a rounded sum for the enclosure). The two derivations are independent (SymPy's
calculus vs torch's formulas); the exact value must lie in the enclosure, or the op table itself is
wrong (`OracleInconsistency`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sympy
from flint import arb

from oracles.case import GradCase, all_indices, broadcast_source, flat_index, numel
from oracles.chain_rule import exact_gradient
from oracles.expr import Apply, Const, Expr, Var
from oracles.ops import OPS
from oracles.render import derivative
from oracles.rounding import Overflow, RoundingModel, Singular

ONE = arb(1)


class OracleInconsistency(AssertionError):
    """SymPy's exact derivative lies outside the enclosure derived from the op table: a bug of ours."""


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
    expr: Expr
    elements: list[ExpectedElement] = field(default_factory=list)  # row-major over the input's shape

    @property
    def derivative(self) -> sympy.Expr | None:
        """SymPy's whole-tree ∂expr/∂x_leaf (for reports; derived on demand, it costs O(n²))."""
        return derivative(self.expr, self.leaf) if self.used else None


@dataclass
class _Evaluated:
    """A tree node after torch's forward pass in the rounding model: its value and local derivatives."""

    expr: Expr
    value: arb
    children: list["_Evaluated"]
    local_grads: tuple[arb, ...] = ()


def _forward(expr: Expr, point: tuple[arb, ...], model: RoundingModel) -> _Evaluated:
    if isinstance(expr, Var):
        return _Evaluated(expr, point[expr.index], [])
    if isinstance(expr, Const):
        return _Evaluated(expr, model.const(expr.value), [])
    op = OPS[expr.op]
    children = [_forward(arg, point, model) for arg in expr.args]
    values = [child.value for child in children]
    result = model.in_range(op.forward(model, *values))
    return _Evaluated(expr, result, children, tuple(op.local_grads(model, values, result)))


def _backward(node: _Evaluated, adjoint: arb, model: RoundingModel, into: dict[int, list[arb]]) -> None:
    """Reverse mode as torch runs it: each child's grad is the parent's times the local derivative,
    range-checked, so an overflow inside torch's backward formulas is seen too."""
    if isinstance(node.expr, Var):
        into.setdefault(node.expr.index, []).append(adjoint)
        return
    for local, child in zip(node.local_grads, node.children):
        if isinstance(child.expr, Const):
            continue  # torch computes no gradient for a Python scalar
        passes_through = local.is_exact() and abs(local) == 1  # add/sub/neg: exact
        grad = model.in_range(adjoint * local) if passes_through else model.mul(adjoint, local)
        _backward(child, grad, model, into)


def expected_gradients(case: GradCase, upstream: tuple[float, ...] | None = None) -> list[ExpectedGrad]:
    """Expected `.grad` of every input after backpropagating `upstream` (the `gradient=` tensor, row-major
    over `case.output_shape`, values exact in the dtype; default all ones, as `y.sum().backward()`):
    the vector-Jacobian product Σ_p upstream[p] · ∂f(p)/∂x, summed over broadcast dimensions."""
    model = RoundingModel(case.format)
    out_points = list(all_indices(case.output_shape))
    if upstream is not None and len(upstream) != len(out_points):
        raise ValueError(f"upstream has {len(upstream)} values, the output has {len(out_points)} elements")
    used = case.used
    expected = [ExpectedGrad(i, i in used, case.expr) for i in range(len(case.shapes))]
    # contributions[leaf][flat element] -> (exact derivative, torch's grads per occurrence) per point
    contributions = {i: [[] for _ in range(numel(case.shapes[i]))] for i in used}
    failures = {i: {} for i in used}
    n_vars = len(case.shapes)
    for out_flat, out_index in enumerate(out_points):
        point = tuple(arb(case.value_at(i, out_index)) if i in used else arb(0) for i in range(n_vars))
        weight = ONE if upstream is None else arb(upstream[out_flat])
        try:
            contributions_here: dict[int, list[arb]] = {}
            _backward(_forward(case.expr, point, model), weight, model, contributions_here)
            status, reason = Status.OK, ""
        except Singular as exc:
            status, reason = Status.SINGULAR, str(exc)
        except Overflow as exc:
            status, reason = Status.OVERFLOW, str(exc)
        if status is Status.OK:
            try:
                exact_here = exact_gradient(case.expr, point, weight)
            except Singular as exc:
                status, reason = Status.SINGULAR, f"exact derivative: {exc}"
        for i in used:
            flat = flat_index(case.shapes[i], broadcast_source(case.shapes[i], out_index))
            if status is not Status.OK:
                failures[i][flat] = (status, reason)
                continue
            exact = exact_here[i]
            if not exact.is_finite():
                failures[i][flat] = (Status.SINGULAR, "exact derivative not finite")
                continue
            contributions[i][flat].append((exact, contributions_here.get(i, [])))
    for i in used:
        for flat, terms in enumerate(contributions[i]):
            if flat in failures[i]:
                status, reason = failures[i][flat]
                expected[i].elements.append(ExpectedElement(status, reason=reason))
                continue
            exact = sum((e for e, _ in terms), arb(0))
            try:  # torch sums every occurrence at every broadcast point, in some order
                enclosure = model.sum([m for _, occurrences in terms for m in occurrences])
            except Overflow as exc:
                expected[i].elements.append(ExpectedElement(Status.OVERFLOW, reason=str(exc)))
                continue
            if not enclosure.overlaps(exact):
                raise OracleInconsistency(
                    f"x{i} element {flat}: exact {exact.str(20)} outside the model enclosure "
                    f"{enclosure.str(20)} for {expected[i].derivative}"
                )
            expected[i].elements.append(ExpectedElement(Status.OK, exact, enclosure))
    return expected
