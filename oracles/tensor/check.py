"""Running a tensor program in torch and judging its `.grad`: torch's side of oracles.tensor.oracle."""

from __future__ import annotations

from functools import partial

import torch

from oracles.core.case import all_indices
from oracles.core.expected import Status
from oracles.core.outcomes import Outcome
from oracles.core.report import reproducer
from oracles.core.verdict import ElementVerdict, Verdict, judge
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
    """Every element of every input's `.grad` judged against the exact VJP and the model's enclosure. A linear
    algebra error from torch (an SVD that does not converge on a matrix whose entries overflowed) is no verdict
    where the model foresaw that nothing can be said at all (each element unverified with the model's reason);
    anywhere else it is raised."""
    expected = expected_tensor_gradients(case)
    try:
        grads = torch_gradients(case, device, overrides)
    except torch.linalg.LinAlgError:
        elements = [(g.leaf, index, e) for g in expected if g.used
                    for index, e in zip(all_indices(case.shapes[g.leaf]), g.elements)]
        if not elements or any(e.status is Status.OK for _, _, e in elements):
            raise
        verdicts = [ElementVerdict(leaf, index, Verdict.UNVERIFIED, reason=e.status.value)
                    for leaf, index, e in elements]
        return Outcome(case, verdicts, device, reproducer=partial(tensor_reproducer, case, device))
    verdicts = judge(case, grads, expected)
    return Outcome(case, verdicts, device, reproducer=partial(tensor_reproducer, case, device))
