"""What every oracle returns per gradient element, and the two steps they all take to get there.

Whatever is differentiated (an elementwise expression at first order, a tensor program, a jet of higher
derivatives), an expected value comes from two independent derivations: the model pass replays torch's
formulas in the rounding model (an enclosure of every value torch may return) and the exact pass
evaluates SymPy's derivatives in arb. `model_then_exact` runs them in that order and turns a kink, tie or
pole (`Singular`) or a possible overflow into a status; `reconcile` checks that the exact value lies in
the enclosure, or the op table itself is wrong (`OracleInconsistency`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sympy
from flint import arb

from oracles.core.expr import Expr
from oracles.core.render import derivative
from oracles.numerics.rounding import EpsilonUnderflow, Overflow, Singular

M = TypeVar("M")
E = TypeVar("E")


class OracleInconsistency(AssertionError):
    """SymPy's exact derivative lies outside the enclosure derived from the op table: a bug of ours."""


class Status(enum.Enum):
    OK = "ok"
    SINGULAR = "singular"  # kink, tie or pole within the rounding model: nothing to judge
    OVERFLOW = "overflow"
    EPSILON_UNDERFLOW = "epsilon underflow"  # a guarding eps is 0 in the dtype where its divisor may be 0


@dataclass
class ExpectedElement:
    status: Status
    exact: arb | None = None  # ball around the exact derivative (tiny radius); with a failure too, where it exists
    enclosure: arb | None = None  # every value a torch with the modelled per-op accuracy may return
    reason: str = ""


@dataclass
class ExpectedGrad:
    leaf: int
    used: bool  # False: the input is not in the graph, so torch leaves `.grad` None
    expr: Expr
    # row-major over the input's shape; None where a verdict was reached without it (`expected_gradients`)
    elements: list[ExpectedElement | None] = field(default_factory=list)

    @property
    def derivative(self) -> sympy.Expr | None:
        """SymPy's whole-tree ∂expr/∂x_leaf (for reports; derived on demand, it costs O(n²))."""
        return derivative(self.expr, self.leaf) if self.used else None


Failure = tuple[Status, str]


def model_then_exact(model_pass: Callable[[], M], exact_pass: Callable[[], E]) -> tuple[M, E, Failure | None]:
    """(model, exact, None); or, where torch's formulas hit a kink, tie or pole within the model or may
    overflow, (None, exact, failure): the exact value is still computed where it exists, because a NaN or
    inf from torch where it is finite is wrong whatever the model says; or (model, None, failure) where the
    exact derivative does not exist."""
    failure = None
    try:
        model = model_pass()
    except EpsilonUnderflow as exc:
        model, failure = None, (Status.EPSILON_UNDERFLOW, str(exc))
    except Singular as exc:  # oracles.higher's KnownDeviation included: its reason says so
        model, failure = None, (Status.SINGULAR, str(exc))
    except Overflow as exc:
        model, failure = None, (Status.OVERFLOW, str(exc))
    try:
        return model, exact_pass(), failure
    except Singular as exc:
        return model, None, failure or (Status.SINGULAR, f"exact derivative: {exc}")


def reconcile(exact: arb, enclosure: arb, where: Callable[[], str]) -> ExpectedElement:
    """The expected element: the exact value and the enclosure, which must contain it; `where()` (derived
    only then) names the element and the derivative in an `OracleInconsistency`."""
    if not exact.is_finite():
        return ExpectedElement(Status.SINGULAR, reason="exact derivative not finite")
    if not enclosure.overlaps(exact):
        raise OracleInconsistency(f"{where()}: exact {exact.str(20)} outside the model enclosure {enclosure.str(20)}")
    return ExpectedElement(Status.OK, exact, enclosure)
