"""What a failure report says about a case: a standalone torch script reproducing the failure (either kind
of case), and for elementwise expressions the SymPy derivative."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oracles.core.case import Case, GradCase
from oracles.core.render import derivative, to_sympy


def reproducer(case: Case, device: str = "cpu", upstream: Sequence[float] | None = None,
               exact: Mapping[int, str] | None = None) -> str:
    """A copy-paste script: builds the exact inputs, runs the drawn spellings, backpropagates from the sum
    of the output (or with `gradient=upstream`) and prints each used input's `.grad` (`exact`: a comment
    per input naming its exact value)."""
    lines = ["import torch", ""]
    lines += [f"x{i} = {case.input_literal(i, device)}" for i in range(len(case.shapes))]
    lines.append(f"y = {case.source}")
    if upstream is None:
        lines.append("y.sum().backward()")
    else:
        lines.append(f"y.backward(torch.tensor({list(upstream)}, dtype=torch.float64).reshape(y.shape).to(y))")
    exact = exact or {}
    lines += [f"print('x{i}.grad =', x{i}.grad)" + (f"  # exact: {exact[i]}" if i in exact else "")
              for i in case.used]
    return "\n".join(lines) + "\n"


def grad_reproducer(case: GradCase, device: str = "cpu", upstream: Sequence[float] | None = None) -> str:
    """`reproducer`, naming the exact derivatives when backward starts from the sum of the output."""
    exact = {i: str(derivative(case.expr, i)) for i in case.used} if upstream is None else None
    return reproducer(case, device, upstream, exact)


def derivative_note(case: GradCase) -> str:
    lines = [f"SymPy: y = {to_sympy(case.expr)}"]
    lines += [f"  ∂y/∂x{i} = {derivative(case.expr, i)}" for i in case.used]
    return "\n".join(lines)
