"""Running a tensor program in torch and judging its `.grad`: torch's side of oracles.tensor.oracle."""

from __future__ import annotations

from functools import partial

import torch

from oracles.core.outcomes import Outcome
from oracles.core.report import reproducer
from oracles.core.verdict import judge
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import TensorCase, run_program


def torch_gradients(case: TensorCase, device: str = "cpu", overrides=None, program=None) -> list[torch.Tensor | None]:
    """`.grad` of every input after backpropagating the case's upstream; `program(leaves)` computes the output
    (default: the case's program, with `overrides`; a compiled function of it, say)."""
    leaves = case.make_leaves(device)
    y = program(leaves) if program is not None else run_program(case.program, leaves, overrides)
    if case.upstream is None:
        y.sum().backward()
    else:
        y.backward(torch.tensor(case.upstream, dtype=torch.float64).reshape(y.shape).to(y))
    return [leaf.grad for leaf in leaves]


def tensor_reproducer(case: TensorCase, device: str = "cpu") -> str:
    return reproducer(case, device, case.upstream)


def check_tensor_case(case: TensorCase, device: str = "cpu", overrides=None) -> Outcome:
    """Every element of every input's `.grad` judged against the exact VJP and the model's enclosure."""
    verdicts = judge(case, torch_gradients(case, device, overrides), expected_tensor_gradients(case))
    return Outcome(case, verdicts, device, reproducer=partial(tensor_reproducer, case, device))
