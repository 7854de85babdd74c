"""Running a tensor program in torch and judging its `.grad`: torch's side of oracles.tensor.oracle."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch

from oracles.core.case import all_indices
from oracles.core.expected import Status
from oracles.core.outcomes import Outcome
from oracles.core.render import TracedStep
from oracles.core.report import reproducer
from oracles.core.stepwise import StepGradient, Trace, elementwise_step, registered_finding, settle
from oracles.core.verdict import ElementVerdict, Verdict, float64_values, judge
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.oracle import expected_tensor_gradients, step_contributions
from oracles.tensor.program import Input, Tensor, TensorCase, run_program, source


def torch_gradients(case: TensorCase, device: str = "cpu", overrides=None, program=None,
                    trace: Trace | None = None) -> list[torch.Tensor | None]:
    """`.grad` of every input after backpropagating the case's upstream; `program(leaves)` computes the output
    (default: the case's program, with `overrides`; a compiled function of it, say). `trace` collects the leaves
    and the ops the case's program ran, each keeping its gradient."""
    leaves = case.make_leaves(device)
    if trace is not None:
        trace.leaves = leaves
    if program is not None:
        y = program(leaves)
    else:
        y = run_program(case.program, leaves, overrides, None if trace is None else trace.steps)
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
    trace = Trace()
    try:
        grads = torch_gradients(case, device, overrides, trace=trace)
    except torch.linalg.LinAlgError:
        elements = [(g.leaf, index, e) for g in expected if g.used
                    for index, e in zip(all_indices(case.shapes[g.leaf]), g.elements)]
        if not elements or any(e.status is Status.OK for _, _, e in elements):
            raise
        verdicts = [ElementVerdict(leaf, index, Verdict.UNVERIFIED, reason=e.status.value)
                    for leaf, index, e in elements]
        return Outcome(case, verdicts, device, reproducer=partial(tensor_reproducer, case, device))
    verdicts = settle(judge(case, grads, expected), trace, case.upstream, case.format, program_step)
    return Outcome(case, verdicts, device, reproducer=partial(tensor_reproducer, case, device))


def program_step(step: TracedStep, dtype: str) -> list[StepGradient]:
    """One op of a tensor program as a one-op case at the values torch computed (oracles.core.stepwise): an op
    of the tensor-op table, whose Jacobian need not be diagonal, or an elementwise op inside a map."""
    if not isinstance(step.node, Tensor):
        return elementwise_step(step, dtype)
    inputs = step.inputs
    case = TensorCase(Tensor(step.node.op, tuple(Input(k) for k in range(len(inputs))), _step_params(step),
                             step.node.spelling),
                      tuple(tuple(t.shape) for t in inputs), tuple(tuple(float64_values(t)) for t in inputs),
                      dtype, tuple(float64_values(step.output.grad)))
    label = source(case.program)
    first = case.values[0]

    def registered(flat: int) -> str | None:  # a finding of the op's first input's elements (polar's subnormal abs)
        return registered_finding(step.node.op, dtype, (first[flat],))

    return [StepGradient(inputs[i], per_element, None, label, registered if i == 0 else None)
            for i, per_element in step_contributions(case).items()]


def _step_params(step: TracedStep):
    """The step's parameters; for a call that takes the values of (values, indices), with the indices the same
    call returns on torch's own input, by which its backward routes the gradient of a tie (sort, topk)."""
    node = step.node
    spelling = TENSOR_OPS[node.op].spellings[node.spelling]
    if spelling.indices is None:
        return node.params
    with torch.no_grad():
        indices = spelling.indices([t.detach() for t in step.inputs], node.params)
    return replace(node.params, returned=tuple(int(i) for i in indices.reshape(-1).tolist()))
