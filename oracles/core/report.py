"""Failure reports people can act on: one line per differing element, the SymPy derivative, and a
standalone torch script that reproduces the failure (added as an exception note)."""

from __future__ import annotations

from oracles.core.case import GradCase
from oracles.core.render import derivative, to_sympy, torch_source
from oracles.core.verdict import ElementVerdict, Verdict, describe


def _tensor_literal(case: GradCase, leaf: int) -> str:
    shape, values = case.shapes[leaf], case.values[leaf]
    data = repr(values[0]) if not shape else "[" + ", ".join(map(repr, values)) + "]"
    reshape = f".reshape({shape})" if len(shape) > 1 else ""
    return f"torch.tensor({data}, dtype=torch.float64){reshape}.to(torch.{case.dtype}).requires_grad_()"


def reproducer(case: GradCase, device: str = "cpu") -> str:
    """A copy-paste script: builds the exact inputs, runs the drawn spellings, prints torch vs exact."""
    lines = ["import torch", ""]
    for leaf in range(len(case.shapes)):
        lines.append(f"x{leaf} = {_tensor_literal(case, leaf)}")
        if device != "cpu":
            lines[-1] = f"x{leaf} = {_tensor_literal(case, leaf)[:-len('.requires_grad_()')]}" \
                        f".to('{device}').requires_grad_()"
    lines += [f"y = {torch_source(case.expr)}", "y.sum().backward()"]
    for leaf in case.used:
        lines.append(f"print('x{leaf}.grad =', x{leaf}.grad)  # exact: {derivative(case.expr, leaf)}")
    return "\n".join(lines) + "\n"


def failure_message(case: GradCase, verdicts: list[ElementVerdict], limit: int = 8) -> str:
    wrong = [v for v in verdicts if v.verdict is Verdict.WRONG]
    head = f"{len(wrong)} gradient element(s) wrong for y = {torch_source(case.expr)} ({case.dtype})"
    lines = [head] + ["  " + describe(v, case) for v in wrong[:limit]]
    if len(wrong) > limit:
        lines.append(f"  ... and {len(wrong) - limit} more")
    return "\n".join(lines)


def derivative_note(case: GradCase) -> str:
    lines = [f"SymPy: y = {to_sympy(case.expr)}"]
    lines += [f"  ∂y/∂x{i} = {derivative(case.expr, i)}" for i in case.used]
    inputs = ", ".join(f"x{i}: shape {case.shapes[i]} values {list(case.values[i])}" for i in range(len(case.shapes)))
    lines.append(f"inputs: {inputs}")
    return "\n".join(lines)
