"""Expected `.grad` of every input: the exact derivative, and the error model's enclosure around it.

Per point of the broadcast output we compute
- the exact derivative: SymPy's partial derivatives of each op chained exactly in arb at the exact
  inputs (oracles.core.chain_rule; the same value as SymPy's whole-tree ∂f/∂xᵢ, which reports print), and
- the model enclosure: torch's reverse mode replayed with torch's own local derivatives (the op table's
  derivatives.yaml formulas), every float operation rounded by the `RoundingModel` of the dtype.
`point_contributions` returns these per-point contributions to every element of every input, before any
sum (for oracles that combine several backward passes, e.g. oracles.higher.vjp). `expected_gradients` sums them:
a broadcast input's expected `.grad` is the sum over the points that read each of its elements, done by
us (`expected_element`: exact sum, and a rounded sum for the enclosure). The two derivations are
independent (SymPy's calculus vs torch's formulas); oracles.core.expected reconciles them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from flint import arb

from oracles.core.case import GradCase, all_indices, broadcast_source, flat_index, numel
from oracles.core.chain_rule import resolved_exact_gradient
from oracles.core.expected import (
    ExpectedElement,
    ExpectedGrad,
    Failure,
    Status,
    model_then_exact,
    reconcile,
)
from oracles.core.expr import Const, Expr, Var
from oracles.numerics.rounding import Overflow, RoundingModel
from oracles.table.ops import OPS

ONE = arb(1)


@dataclass
class _Evaluated:
    """A tree node after torch's forward pass in the rounding model: its value and local derivatives."""

    expr: Expr
    value: arb
    children: list[_Evaluated]
    local_grads: tuple[arb, ...] = ()


def model_forward(expr: Expr, point: tuple, model: RoundingModel,
                  scalar_model: RoundingModel | None = None) -> _Evaluated:
    """`expr` evaluated as torch's forward; a Python scalar is taken as `scalar_model` holds it (the model of
    the kernel's opmath where the parent op takes it so, `OpSpec.opmath_scalars`), else as the dtype does. Any
    model with RoundingModel's methods serves: the fast pass runs it over intervals (oracles.core.fast_pass)."""
    if isinstance(expr, Var):
        return _Evaluated(expr, point[expr.index], [])
    if isinstance(expr, Const):
        return _Evaluated(expr, (scalar_model or model).const(expr.value), [])
    op = OPS[expr.op]
    children = [model_forward(arg, point, model, model.opmath if i in op.opmath_scalars else None)
                for i, arg in enumerate(expr.args)]
    values = [child.value for child in children]
    result = model.in_range(op.forward(model, *values))
    return _Evaluated(expr, result, children, tuple(op.local_grads(model, values, result)))


def reverse_mode(node: _Evaluated, adjoint: arb, model: RoundingModel, into: dict[int, list[arb]]) -> None:
    """Reverse mode as torch runs it: each child's grad is the parent's times the local derivative
    (`times_local`), range-checked, so an overflow inside torch's backward formulas is seen too. Any model with
    RoundingModel's methods serves, as for `model_forward`."""
    if isinstance(node.expr, Var):
        into.setdefault(node.expr.index, []).append(adjoint)
        return
    for local, child in zip(node.local_grads, node.children):
        if isinstance(child.expr, Const):
            continue  # torch computes no gradient for a Python scalar
        reverse_mode(child, model.times_local(adjoint, local), model, into)


def model_vjp_at_point(expr: Expr, point: tuple[arb, ...], adjoint: arb | None,
                       model: RoundingModel) -> tuple[arb, dict[int, list[arb]]]:
    """torch's value of `expr` at `point` (balls) and, unless `adjoint` is None, what backpropagating
    `adjoint` contributes to each input: one ball per occurrence, before torch sums them."""
    evaluated = model_forward(expr, point, model)
    contributions: dict[int, list[arb]] = {}
    if adjoint is not None:
        reverse_mode(evaluated, adjoint, model, contributions)
    return evaluated.value, contributions


class Term(NamedTuple):
    """What one point of the output contributes to one element of an input's `.grad`."""

    exact: arb  # ball around upstream[p] · ∂f(p)/∂x (SymPy's partials chained exactly)
    model: list[arb]  # torch's gradient of each occurrence of x in the tree at p, as the model computes it


@dataclass
class Contributions:
    """Everything one backward pass contributes to one element of one input's `.grad`, before torch sums it:
    a term per point of the output that reads the element (one point, or several under broadcasting)."""

    terms: list[Term] = field(default_factory=list)  # the points where nothing failed, in row-major order
    failure: Failure | None = None  # at some point: singular or overflow; then no enclosure
    # the exact contributions of the points where the model failed (None: no exact value there either)
    unmodelled: list[arb | None] = field(default_factory=list)

    @property
    def exact(self) -> arb | None:
        """The exact sum of the contributions; None where some point has no exact value."""
        if any(e is None for e in self.unmodelled):
            return None
        return sum((term.exact for term in self.terms), sum(self.unmodelled, arb(0)))

    @property
    def rounded(self) -> list[arb]:
        """Every value torch adds up for this element, each as the model computes it."""
        return [m for term in self.terms for m in term.model]


def _model_backward(expr: Expr, point: tuple[arb, ...], weight: arb, model: RoundingModel) -> dict[int, list[arb]]:
    """Per input, the rounded contributions of torch's reverse mode at one point (the model pass)."""
    into: dict[int, list[arb]] = {}
    reverse_mode(model_forward(expr, point, model), weight, model, into)
    return into


def point_contributions(case: GradCase, upstream: Sequence[float] | None = None,
                        points: Sequence[int] | None = None) -> dict[int, list[Contributions]]:
    """Per used input, per element (row-major over its shape): the contributions of backpropagating `upstream`
    (the `gradient=` tensor, row-major over `case.output_shape`, values exact in the dtype; default all ones,
    as `y.sum().backward()`) through `case.expr`, point by point, before anything is summed. `points` (row-major
    flat indices of the output) restricts it to those points: an element read by any other is then incomplete."""
    model = RoundingModel(case.format)
    out_points = list(all_indices(case.output_shape))
    if upstream is not None and len(upstream) != len(out_points):
        raise ValueError(f"upstream has {len(upstream)} values, the output has {len(out_points)} elements")
    used = case.used
    contributions = {i: [Contributions() for _ in range(numel(case.shapes[i]))] for i in used}
    n_vars = len(case.shapes)
    for out_flat in range(len(out_points)) if points is None else points:
        out_index = out_points[out_flat]
        point = tuple(arb(case.value_at(i, out_index)) if i in used else arb(0) for i in range(n_vars))
        weight = ONE if upstream is None else arb(upstream[out_flat])
        model_here, exact_here, failure = model_then_exact(
            partial(_model_backward, case.expr, point, weight, model),
            partial(resolved_exact_gradient, case.expr, point, weight))
        for i in used:
            element = contributions[i][flat_index(case.shapes[i], broadcast_source(case.shapes[i], out_index))]
            if failure is not None:
                element.failure = failure
                element.unmodelled.append(exact_here[i] if exact_here is not None else None)
            elif not exact_here[i].is_finite():
                element.failure = (Status.SINGULAR, "exact derivative not finite")
                element.unmodelled.append(None)
            else:
                element.terms.append(Term(exact_here[i], model_here.get(i, [])))
    return contributions


def expected_element(model: RoundingModel, exact: arb | None, rounded: Sequence[arb], failure: Failure | None,
                     where: str, what: Callable[[], object]) -> ExpectedElement:
    """One element's expected `.grad` from what backpropagation contributed to it: the exact sum, and the
    enclosure of torch's rounded sum of the `rounded` values in any order. `where` and `what()` (derived only
    then) name the element and the derivative in an `OracleInconsistency`."""
    if failure is not None:
        return ExpectedElement(failure[0], exact, reason=failure[1])
    try:  # torch sums every occurrence at every broadcast point, in some order
        enclosure = model.sum(rounded)
    except Overflow as exc:
        return ExpectedElement(Status.OVERFLOW, exact, reason=str(exc))
    return reconcile(exact, enclosure, lambda: f"{where}, for {what()}")


def expected_gradients(case: GradCase, upstream: Sequence[float] | None = None,
                       points: Sequence[int] | None = None) -> list[ExpectedGrad]:
    """Expected `.grad` of every input after backpropagating `upstream` (the `gradient=` tensor, row-major
    over `case.output_shape`, values exact in the dtype; default all ones, as `y.sum().backward()`):
    the vector-Jacobian product Σ_p upstream[p] · ∂f(p)/∂x, summed over broadcast dimensions. With `points`,
    an element no point among them reads is None (the caller has its verdict), and only the elements those
    points alone read are complete (`point_contributions`)."""
    contributions = point_contributions(case, upstream, points)
    model = RoundingModel(case.format)
    expected = [ExpectedGrad(i, i in contributions, case.expr) for i in range(len(case.shapes))]
    for i, elements in contributions.items():
        grad = expected[i]
        grad.elements = [None if points is not None and not (c.terms or c.unmodelled) else
                         expected_element(model, c.exact, c.rounded, c.failure, f"x{i} element {flat}",
                                          lambda grad=grad: grad.derivative)
                         for flat, c in enumerate(elements)]
    return expected
