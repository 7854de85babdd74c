"""Running a tensor program in torch and judging its `.grad` (issue 6, part 3): torch's side of
oracles.tensor.oracle, the failure report and a copy-paste reproducer."""

from __future__ import annotations

import torch

from oracles.core.report import describe
from oracles.core.verdict import ElementVerdict, Verdict, judge
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import TensorCase, run_program


class _Named:
    """What `verdict.judge` reads of a case: shapes and format."""

    def __init__(self, case: TensorCase):
        self.shapes, self.format = case.shapes, case.format


def torch_gradients(case: TensorCase, device: str = "cpu", overrides=None) -> list[torch.Tensor | None]:
    leaves = case.make_leaves(device)
    y = run_program(case.program, leaves, overrides)
    if case.upstream is None:
        y.sum().backward()
    else:
        y.backward(torch.tensor(case.upstream, dtype=torch.float64).reshape(y.shape).to(y))
    return [leaf.grad for leaf in leaves]


def check_tensor_case(case: TensorCase, device: str = "cpu", overrides=None) -> list[ElementVerdict]:
    """Every element of every input's `.grad` judged against the exact VJP and the model's enclosure."""
    expected = expected_tensor_gradients(case)
    return judge(_Named(case), torch_gradients(case, device, overrides), expected)


def _literal(case: TensorCase, leaf: int, device: str) -> str:
    shape, values = case.shapes[leaf], case.values[leaf]
    data = repr(values[0]) if not shape else "[" + ", ".join(map(repr, values)) + "]"
    reshape = f".reshape({shape})" if len(shape) > 1 else ""
    to = f"'{device}', torch.{case.dtype}" if device != "cpu" else f"torch.{case.dtype}"
    return f"torch.tensor({data}, dtype=torch.float64){reshape}.to({to}).requires_grad_()"


def tensor_reproducer(case: TensorCase, device: str = "cpu") -> str:
    lines = ["import torch", ""]
    lines += [f"x{i} = {_literal(case, i, device)}" for i in range(len(case.shapes))]
    lines.append(f"y = {case.source}")
    if case.upstream is None:
        lines.append("y.sum().backward()")
    else:
        lines.append(f"y.backward(torch.tensor({list(case.upstream)}, dtype=torch.float64).reshape(y.shape).to(y))")
    lines += [f"print('x{i}.grad =', x{i}.grad)" for i in case.used]
    return "\n".join(lines) + "\n"


def assert_tensor_gradients_match(case: TensorCase, verdicts: list[ElementVerdict], device: str = "cpu",
                                  limit: int = 8) -> None:
    __tracebackhide__ = True
    wrong = [v for v in verdicts if v.verdict is Verdict.WRONG]
    if not wrong:
        return
    lines = [f"{len(wrong)} gradient element(s) wrong for y = {case.source} ({case.dtype})"]
    lines += ["  " + describe(v, case) for v in wrong[:limit]]
    if len(wrong) > limit:
        lines.append(f"  ... and {len(wrong) - limit} more")
    inputs = ", ".join(f"x{i}: shape {s} values {list(v)}" for i, (s, v) in enumerate(zip(case.shapes, case.values)))
    lines.append(f"inputs: {inputs}; gradient= {list(case.upstream) if case.upstream else 'None (y.sum())'}")
    error = AssertionError("\n".join(lines))
    error.add_note("Reproduce with:\n" + tensor_reproducer(case, device))
    raise error
