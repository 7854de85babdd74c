"""Second order through the tensor ops: double backward, torch.func.hessian and forward mode twice, each op applied to
its inputs themselves, against the exact derivatives (oracles.tensor.second_order; torch's side in
oracles.tensor.second_order_checks).

Double backward, autograd.grad(Jᵀu, (inputs, u), w), is judged for every op on its upstream part (J·w, a first
derivative), and on its inputs' part where the op's Hessian is constant; the Hessian and forward-over-forward only
there. Where an op's Hessian varies with the point, torch's second-order formulas are not modelled: those parts are
not judged, and Hypothesis's statistics count them ("second derivatives varying: not judged").
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.check_function import DEFAULT_ERROR_FACTOR
from gradoracle.pytest_plugin import scaled
from oracles.core.case import numel
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.reports import findings
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.second_order import case_form
from oracles.tensor.second_order_checks import double_backward, forward_twice, hessian, unless_refused
from strategies.backward import upstream_values
from strategies.tensor_programs import tangents_for, tensor_cases

SECOND_ORDER_EXAMPLES = 6
REGISTRY = findings.load()
DOUBLE_BACKWARD_FINDINGS = findings.findings_of_mode(REGISTRY, "double-backward")
# torch.func's hessian and jvp of jvp run forward mode: a registered finding of either kind leaves them out
FUNC_FINDINGS = {**findings.findings_of_mode(REGISTRY, "forward"), **findings.findings_of_mode(REGISTRY, "func-second")}


def _dtype_for(op: str, dtypes, device: str, data) -> str:
    entry, finding = TENSOR_OPS[op], DOUBLE_BACKWARD_FINDINGS.get(op)
    if entry.wrong_backward:
        pytest.skip(f"torch's backward of {op} is a registered finding ({entry.wrong_backward})")
    if finding is not None:
        pytest.skip(f"torch's second derivatives of {op}: registered finding {finding.id} (pinned by its own tests)")
    if not entry.torch_func:
        pytest.skip(f"{op} precomputes its gradients in the forward: no double backward by design")
    runs = [d for d in dtypes if device != "cpu" or entry.cpu_dtypes is None or d in entry.cpu_dtypes]
    if not runs:
        pytest.skip(f"{op} runs in none of the dtypes {dtypes} on {device}")
    return data.draw(st.sampled_from(runs), label="dtype")


@pytest.mark.parametrize("op", list(TENSOR_OPS))
@scaled(SECOND_ORDER_EXAMPLES)
@given(data=st.data())
def test_tensor_op_second_order(op, dtypes, device, verdict_log, data):
    """Double backward for every op (its upstream part J·w judged with forward mode's bound, its inputs' part
    Σ_o u_o H_o w exact where H is constant); where H is constant also torch.func.hessian and forward mode twice
    (unless torch's forward mode of the op is a registered finding, or the op draws noise: torch.func's vmap refuses
    random ops). The dtype is drawn per example from the run's."""
    dtype = _dtype_for(op, dtypes, device, data)
    case = data.draw(tensor_cases(dtype, root=op, stages=1, upstream=False, direct=True), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="u")
    directions = data.draw(tangents_for(case), label="w")
    steps = [double_backward(case, upstream, directions, DEFAULT_ERROR_FACTOR, device)]
    form = case_form(case)
    if (form is not None and op not in FUNC_FINDINGS and not TENSOR_OPS[op].seeded
            and set(case.used) == set(range(len(case.shapes)))):
        first = data.draw(tangents_for(case), label="v")
        steps += [unless_refused(lambda: hessian(case, form, upstream, device)),
                  unless_refused(lambda: forward_twice(case, form, first, directions, device))]
    steps = [step for step in steps if step is not None]
    verdict_log.add([v for _, verdicts in steps for v in verdicts], case)
    for call, verdicts in steps:
        assert_gradients_match(Outcome(case, verdicts, device, call=call), None)
