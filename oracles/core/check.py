"""One call that runs torch on a case, builds the expected gradients, and judges them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from oracles.core.case import GradCase
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.render import run_torch
from oracles.core.report import derivative_note, failure_message, reproducer
from oracles.core.verdict import ElementVerdict, Verdict, judge


@dataclass
class CheckOutcome:
    case: GradCase
    verdicts: list[ElementVerdict]
    device: str = "cpu"

    @property
    def wrong(self) -> list[ElementVerdict]:
        return [v for v in self.verdicts if v.verdict is Verdict.WRONG]


def torch_gradients(case: GradCase, device: str = "cpu", overrides: Mapping[str, Callable] | None = None,
                    upstream: tuple[float, ...] | None = None):
    """Run the drawn torch program and backpropagate: from the sum of its output (grad of exact ones),
    or with `gradient=upstream` (row-major over the output shape)."""
    leaves = case.make_leaves(device)
    out = run_torch(case.expr, leaves, overrides)
    if upstream is None:
        out.sum().backward()
    else:
        gradient = torch.tensor(upstream, dtype=torch.float64).reshape(out.shape).to(out)
        out.backward(gradient=gradient)
    return [leaf.grad for leaf in leaves]


def check_case(case: GradCase, device: str = "cpu", overrides: Mapping[str, Callable] | None = None,
               upstream: tuple[float, ...] | None = None) -> CheckOutcome:
    grads = torch_gradients(case, device, overrides, upstream)
    return CheckOutcome(case, judge(case, grads, expected_gradients(case, upstream)), device)


def assert_gradients_match(outcome: CheckOutcome) -> None:
    """Raise an AssertionError naming every wrong element, with the derivative and a reproducer as notes."""
    __tracebackhide__ = True
    if outcome.wrong:
        error = AssertionError(failure_message(outcome.case, outcome.verdicts))
        error.add_note(derivative_note(outcome.case))
        error.add_note("Reproduce with:\n" + reproducer(outcome.case, outcome.device))
        raise error
