"""Selective and functional forms of backward (issue 4, part 4), against the exact oracle.

- `backward(inputs=[...])` accumulates into exactly the listed tensors (once, even if listed twice; a
  listed intermediate gets the derivative with respect to it); every other `.grad` stays as it was.
- `torch.autograd.grad` returns the oracle's VJP and touches no `.grad`; an unused input raises (naming
  its position), is None with `allow_unused=True`, or zeros with `materialize_grads=True`.
- A non-leaf's `.grad` is None, with torch's warning, unless `retain_grad()`: then it is the oracle
  derivative with respect to that intermediate (the expression with the intermediate replaced by a fresh
  input holding torch's value of it).
- `detach()` and `no_grad()` cut the graph: the oracle treats that subexpression as a constant input
  (and if no input is left, the output does not require grad and backward raises).
- Tensor hooks see the gradient with respect to their tensor and may replace it (on a leaf: what is
  accumulated; on the output: the seed); post-accumulate-grad hooks see the accumulated `.grad` once per
  backward and may change it in place.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE_HEALTH
from oracles.core.case import GradCase, numel
from oracles.core.expr import Const, Var, variables
from oracles.core.gradient_oracle import ExpectedGrad, expected_gradients
from oracles.core.outcomes import assert_none_wrong
from oracles.core.render import run_torch, torch_source
from oracles.core.verdict import judge
from oracles.higher.vjp import (
    accumulate,
    cut_case,
    overwrite_instead_of_accumulate,
    replace,
    run_torch_with,
    scaled,
    sources,
    subexpression,
    tensor_paths,
    tensor_values,
    zeros_expected,
)
from oracles.numerics.rounding import RoundingModel
from strategies import grad_cases
from strategies.backward import shared_leaf_cases, smooth, upstream_values

NON_LEAF_GRAD = ("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
                 "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
                 "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.")
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
NON_LEAF_POST_HOOK = "post accumulate grad hooks cannot be registered on non-leaf tensors"


def unused_message(position: int) -> str:
    return (f"The differentiated Tensor at index {position} appears to not have been used in the graph. "
            "Set allow_unused=True if this is the desired behavior.")


def _case(data, dtypes, expressions=None, max_inputs: int = 4) -> GradCase:
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    return data.draw(grad_cases(dtype, expressions or smooth(), max_inputs=max_inputs), label="case")


def with_unused_input(case: GradCase) -> GradCase:
    """`case` plus an input the expression never uses (a copy of x0's shape and values)."""
    return GradCase(case.expr, case.shapes + (case.shapes[0],), case.values + (case.values[0],), case.dtype)


def _finite(tensor: torch.Tensor) -> bool:
    return all(math.isfinite(v) for v in tensor_values(tensor))


def _unset(i: int) -> ExpectedGrad:
    return ExpectedGrad(i, False, None)


def _snapshot(leaves):
    return [(leaf.grad, None if leaf.grad is None else leaf.grad.clone()) for leaf in leaves]


def _assert_untouched(leaves, snapshot, which, context: str) -> None:
    """The `.grad` of each leaf in `which` is the same object with the same values as in `snapshot`."""
    for i in which:
        grad, values = snapshot[i]
        assert leaves[i].grad is grad, f"x{i}.grad was replaced, {context}"
        if values is not None:
            assert torch.equal(leaves[i].grad, values), \
                f"x{i}.grad changed from {values} to {leaves[i].grad}, {context}"


# ------------------------------------------------------------------ backward(inputs=[...])
def check_backward_inputs(case: GradCase, listed: list[int], first_full: bool, intermediate: tuple | None,
                          device: str = "cpu"):
    """After an optional full backward (graph kept), `backward(inputs=...)` adds the oracle gradient to
    the listed leaves only, and a listed intermediate gets the derivative with respect to it."""
    leaves = case.make_leaves(device)
    captured = {}

    def capture(compute):
        captured["t"] = compute()
        return captured["t"]

    out = run_torch_with(case.expr, leaves, {intermediate: capture} if intermediate is not None else {})
    model = RoundingModel(case.format)
    oracle = expected_gradients(case)
    held: list[ExpectedGrad | None] = [None] * len(leaves)
    if first_full:
        out.sum().backward(retain_graph=True)
        held = [accumulate(model, None, e) for e in oracle]
    snapshot = _snapshot(leaves)
    inputs = [leaves[i] for i in listed] + ([captured["t"]] if intermediate is not None else [])
    out.sum().backward(inputs=inputs)
    names = [f"x{i}" for i in listed] + (["the intermediate"] if intermediate is not None else [])
    context = (f"backward(inputs=[{', '.join(names)}]) after {'a full backward' if first_full else 'nothing'}, "
               f"{sources([case])}")
    _assert_untouched(leaves, snapshot, [i for i in range(len(leaves)) if i not in listed], context)
    for i in set(listed):
        held[i] = accumulate(model, held[i], oracle[i])
    verdicts = judge(case, [leaf.grad for leaf in leaves], [h or _unset(i) for i, h in enumerate(held)])
    assert_none_wrong(case, verdicts, context)
    if intermediate is not None:
        verdicts += _check_intermediate_grad(case, intermediate, captured["t"], captured["t"].grad, context)
    return verdicts


def _check_intermediate_grad(case, path, tensor, grad, context):
    """`grad` is ∂(sum of the output)/∂(the intermediate at `path`), from the cut case's oracle."""
    if not _finite(tensor):
        event("intermediate not finite: its gradient is not judged")
        return []
    sub = cut_case(case, path, tensor)
    fresh = len(case.shapes)
    verdicts = judge(sub, [grad], [expected_gradients(sub)[fresh]])
    assert_none_wrong(sub, verdicts, f"gradient of the intermediate {torch_source(subexpression(case.expr, path))} "
                                     f"(x{fresh} in the cut case {sources([sub])}), {context}")
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_backward_inputs_accumulates_into_exactly_those(dtypes, device, verdict_log, data):
    case = with_unused_input(_case(data, dtypes, max_inputs=3))
    listed = data.draw(st.lists(st.integers(0, len(case.shapes) - 1), min_size=1, max_size=4), label="inputs")
    first_full = data.draw(st.booleans(), label="full backward first")
    intermediate = data.draw(st.none() | st.sampled_from(_operation_paths(case)), label="also list the intermediate at")
    verdict_log.add(check_backward_inputs(case, listed, first_full, intermediate, device))


# ------------------------------------------------------------------ torch.autograd.grad
def check_autograd_grad(case: GradCase, upstream, wanted: list[int], mode: str, preset: bool, device: str = "cpu"):
    """`torch.autograd.grad(y, inputs, V)` returns the oracle VJP per listed input and leaves every `.grad`
    as it was; for an input the output does not use, `mode` decides: "default" raises, "allow_unused"
    gives None, "materialize" gives zeros of the input's shape."""
    leaves = case.make_leaves(device)
    if preset:
        run_torch(case.expr, leaves).sum().backward()
    snapshot = _snapshot(leaves)
    out = run_torch(case.expr, leaves)
    inputs = [leaves[i] for i in wanted]
    kwargs = {"default": {}, "allow_unused": {"allow_unused": True}, "materialize": {"materialize_grads": True}}[mode]
    gradient = None if upstream is None else \
        torch.tensor(upstream, dtype=torch.float64).reshape(out.shape).to(device=device, dtype=out.dtype)
    target = out.sum() if upstream is None else out
    context = f"torch.autograd.grad(y, [{', '.join(f'x{i}' for i in wanted)}], {mode}) with {sources([case])}"
    unused = [p for p, i in enumerate(wanted) if i not in case.used]
    if mode == "default" and unused:
        with pytest.raises(RuntimeError, match=re.escape(unused_message(unused[0]))):
            torch.autograd.grad(target, inputs, gradient)
        _assert_untouched(leaves, snapshot, range(len(leaves)), context)
        return []
    result = torch.autograd.grad(target, inputs, gradient, **kwargs)
    _assert_untouched(leaves, snapshot, range(len(leaves)), context)
    expected = expected_gradients(case, upstream)
    verdicts = []
    for position, (i, grad) in enumerate(zip(wanted, result)):
        if i in case.used:
            verdicts += judge(case, [grad], [expected[i]])
        elif mode == "allow_unused":
            assert grad is None, f"result {position} (x{i}, unused) is {grad}, {context}"
        else:
            verdicts += judge(case, [grad], [zeros_expected(i, case.shapes[i])])
    assert_none_wrong(case, verdicts, context)
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_autograd_grad_returns_the_vjp_and_touches_no_grad(dtypes, device, verdict_log, data):
    case = with_unused_input(_case(data, dtypes, max_inputs=3))
    wanted = data.draw(st.lists(st.integers(0, len(case.shapes) - 1), min_size=1, max_size=4), label="inputs")
    upstream = data.draw(st.none() | upstream_values(numel(case.output_shape)), label="grad_outputs")
    mode = data.draw(st.sampled_from(["default", "allow_unused", "materialize"]), label="unused inputs")
    preset = data.draw(st.booleans(), label="a backward first, so .grad is set")
    verdict_log.add(check_autograd_grad(case, upstream, wanted, mode, preset, device))


# ------------------------------------------------------------------ non-leaf .grad and retain_grad()
def _operation_paths(case: GradCase) -> list[tuple]:
    """Paths to the nodes torch computes by an operation (non-leaf tensors), the output included."""
    return [p for p in tensor_paths(case.expr) if not isinstance(subexpression(case.expr, p), Var)]


def check_non_leaf_grad(case: GradCase, path: tuple, retain: bool, device: str = "cpu"):
    """A non-leaf's `.grad` after backward: None with torch's warning, or with retain_grad() the oracle
    derivative with respect to it (and no warning); the leaves' gradients are the oracle's either way."""
    leaves = case.make_leaves(device)
    captured = {}

    def capture(compute):
        tensor = compute()
        if retain:
            tensor.retain_grad()
        captured["t"] = tensor
        return tensor

    run_torch_with(case.expr, leaves, {path: capture}).sum().backward()
    tensor = captured["t"]
    context = f"{'retained ' if retain else ''}intermediate at {path} of {sources([case])}"
    verdicts = judge(case, [leaf.grad for leaf in leaves], expected_gradients(case))
    assert_none_wrong(case, verdicts, context)
    if not retain:
        with pytest.warns(UserWarning, match=re.escape(NON_LEAF_GRAD)):
            grad = tensor.grad
        assert grad is None, f".grad of a non-leaf is {grad}, {context}"
        return verdicts
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # retained: no warning
        grad = tensor.grad
    return verdicts + _check_intermediate_grad(case, path, tensor, grad, context)


@FIXTURE_HEALTH
@given(data=st.data())
def test_non_leaf_grad_is_none_unless_retained(dtypes, device, verdict_log, data):
    case = _case(data, dtypes, smooth(3))
    path = data.draw(st.sampled_from(_operation_paths(case)), label="intermediate")
    retain = data.draw(st.booleans(), label="retain_grad")
    verdict_log.add(check_non_leaf_grad(case, path, retain, device))


# ------------------------------------------------------------------ detach() and no_grad()
def check_cut(case: GradCase, path: tuple, how: str, device: str = "cpu"):
    """The subexpression at `path`, computed under no_grad() or detached, is a constant: the gradients are
    the oracle's for the expression with that node replaced by an input nobody differentiates."""
    leaves = case.make_leaves(device)
    captured = {}

    def cut(compute):
        if how == "no_grad":
            with torch.no_grad():
                captured["t"] = compute()
        else:
            captured["t"] = compute().detach()
        return captured["t"]

    out = run_torch_with(case.expr, leaves, {path: cut})
    context = f"{how} at {path} of {sources([case])}"
    assert not captured["t"].requires_grad, f"the cut tensor requires grad, {context}"
    sub = cut_case(case, path, captured["t"])
    n = len(case.shapes)
    if not any(i < n for i in sub.used):
        assert not out.requires_grad and out.grad_fn is None, context
        with pytest.raises(RuntimeError, match=re.escape(NO_GRAD_FN)):
            out.sum().backward()
        return []
    out.sum().backward()
    if not _finite(captured["t"]):
        event("cut value not finite: not judged")
        return []
    verdicts = judge(sub, [leaf.grad for leaf in leaves], expected_gradients(sub)[:n])
    assert_none_wrong(sub, verdicts, context)
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_detach_and_no_grad_cut_the_graph(dtypes, device, verdict_log, data):
    case = _case(data, dtypes, smooth(3))
    # detach() cuts at an input too; no_grad() only stops recording operations (an input stays itself),
    # so it needs an operation below the root
    below_root = [p for p in _operation_paths(case) if p]
    how = data.draw(st.sampled_from(["detach", "no_grad"] if below_root else ["detach"]), label="cut by")
    candidates = [p for p in tensor_paths(case.expr) if p] if how == "detach" else below_root
    # Half the time cut where some input occurrence stays outside the cut (when there is such a place).
    keeps_input = [p for p in candidates if variables(replace(case.expr, p, Const(0.0)))]
    if keeps_input and data.draw(st.booleans(), label="leave an input outside the cut"):
        candidates = keeps_input
    path = data.draw(st.sampled_from(candidates), label="cut at")
    event("an input is left" if path in keeps_input else "every input is cut off")
    verdict_log.add(check_cut(case, path, how, device))


# ------------------------------------------------------------------ tensor hooks
HOOK_FACTORS = (1.0, 2.0, -1.0, 0.0)  # 1.0: the hook only looks (returns None)


def check_leaf_hook(case: GradCase, leaf: int, factor: float, device: str = "cpu"):
    """A hook on a leaf is called once per backward (never if the leaf is unused) with the leaf's whole
    gradient, and what it returns is what gets accumulated."""
    leaves = case.make_leaves(device)
    seen = []
    leaves[leaf].register_hook(lambda g: (seen.append(g.clone()), None if factor == 1.0 else g * factor)[1])
    run_torch(case.expr, leaves).sum().backward()
    context = f"hook returning grad * {factor} on x{leaf}, {sources([case])}"
    assert len(seen) == (1 if leaf in case.used else 0), f"the hook ran {len(seen)} times, {context}"
    oracle = expected_gradients(case)
    expected = list(oracle)
    expected[leaf] = scaled(RoundingModel(case.format), oracle[leaf], factor)
    verdicts = judge(case, [x.grad for x in leaves], expected)
    if seen:
        verdicts += judge(case, [seen[0]], [oracle[leaf]])
    assert_none_wrong(case, verdicts, context)
    return verdicts


def check_output_hook(case: GradCase, upstream, factor: float, device: str = "cpu"):
    """A hook on the output replaces the seed: backward(V) with the hook returning g * c is the VJP of c·V."""
    leaves = case.make_leaves(device)
    out = run_torch(case.expr, leaves)
    seen = []
    out.register_hook(lambda g: (seen.append(g.clone()), g * factor)[1])
    out.backward(torch.tensor(upstream, dtype=torch.float64).reshape(out.shape).to(out))
    context = f"hook returning grad * {factor} on y = {sources([case])}, gradient {upstream}"
    assert len(seen) == 1 and torch.equal(seen[0].to("cpu", torch.float64).reshape(-1),
                                          torch.tensor(upstream, dtype=torch.float64)), context
    verdicts = judge(case, [x.grad for x in leaves], expected_gradients(case, tuple(v * factor for v in upstream)))
    assert_none_wrong(case, verdicts, context)
    return verdicts


def check_intermediate_hook(case: GradCase, path: tuple, device: str = "cpu"):
    """A hook on an intermediate sees, once, the derivative with respect to it; returning None changes
    nothing downstream."""
    leaves = case.make_leaves(device)
    seen, captured = [], {}

    def hook_at(compute):
        captured["t"] = compute()
        captured["t"].register_hook(lambda g: seen.append(g.clone()))
        return captured["t"]

    run_torch_with(case.expr, leaves, {path: hook_at}).sum().backward()
    context = f"hook on the intermediate at {path} of {sources([case])}"
    assert len(seen) == 1, f"the hook ran {len(seen)} times, {context}"
    verdicts = judge(case, [x.grad for x in leaves], expected_gradients(case))
    assert_none_wrong(case, verdicts, context)
    return verdicts + _check_intermediate_grad(case, path, captured["t"], seen[0], context)


@FIXTURE_HEALTH
@given(data=st.data())
def test_tensor_hooks_see_and_replace_gradients(dtypes, device, verdict_log, data):
    case = _case(data, dtypes)
    where = data.draw(st.sampled_from(["leaf", "output", "intermediate"]), label="hook on")
    if where == "leaf":
        leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
        verdicts = check_leaf_hook(case, leaf, data.draw(st.sampled_from(HOOK_FACTORS), label="factor"), device)
    elif where == "output":
        upstream = data.draw(upstream_values(numel(case.output_shape)), label="gradient values")
        factor = data.draw(st.sampled_from(HOOK_FACTORS), label="factor")
        verdicts = check_output_hook(case, upstream, factor, device)
    else:
        path = data.draw(st.sampled_from(_operation_paths(case)), label="intermediate")
        verdicts = check_intermediate_hook(case, path, device)
    verdict_log.add(verdicts)


# ------------------------------------------------------------------ post-accumulate-grad hooks
def check_post_accumulate_hooks(cases: list[GradCase], calls: list[int], zero_in_hook: bool, device: str = "cpu"):
    """A post-accumulate-grad hook runs once per backward for each leaf reached, after accumulation: it
    sees the running sum of the oracle gradients; zeroing `.grad` in it restarts the sum. It cannot be
    registered on a non-leaf."""
    base = cases[0]
    model = RoundingModel(base.format)
    leaves = base.make_leaves(device)
    seen: list[list[torch.Tensor]] = [[] for _ in leaves]

    def hook_for(i):
        def hook(tensor):
            seen[i].append(tensor.grad.clone())
            if zero_in_hook:
                tensor.grad.zero_()

        return hook

    for i, leaf in enumerate(leaves):
        leaf.register_post_accumulate_grad_hook(hook_for(i))
    held: list[ExpectedGrad | None] = [None] * len(leaves)
    verdicts = []
    for number, k in enumerate(calls):
        out = run_torch(cases[k].expr, leaves)
        if number == 0:
            with pytest.raises(RuntimeError, match=re.escape(NON_LEAF_POST_HOOK)):
                out.register_post_accumulate_grad_hook(lambda t: None)
        before = [len(s) for s in seen]
        out.sum().backward()
        context = f"backward {number} (y{k}) of {calls}, zeroing in the hook: {zero_in_hook}, {sources(cases)}"
        for i, expected in enumerate(expected_gradients(cases[k])):
            ran = len(seen[i]) - before[i]
            assert ran == (1 if expected.used else 0), f"x{i}'s hook ran {ran} times, {context}"
            if expected.used:
                held[i] = accumulate(model, held[i], expected)
                verdicts += judge(base, [seen[i][-1]], [held[i]])
                if zero_in_hook:
                    held[i] = zeros_expected(i, base.shapes[i])
        assert_none_wrong(base, verdicts, context)
    final = judge(base, [leaf.grad for leaf in leaves], [h or _unset(i) for i, h in enumerate(held)])
    assert_none_wrong(base, final, f"after {calls}, zeroing in the hook: {zero_in_hook}, {sources(cases)}")
    return verdicts + final


@FIXTURE_HEALTH
@given(data=st.data())
def test_post_accumulate_grad_hooks(dtypes, device, verdict_log, data):
    cases = data.draw(shared_leaf_cases(data.draw(st.sampled_from(dtypes), label="dtype")), label="cases")
    calls = data.draw(st.lists(st.integers(0, len(cases) - 1), min_size=1, max_size=3), label="backward calls")
    zero = data.draw(st.booleans(), label="zero .grad in the hook")
    verdict_log.add(check_post_accumulate_hooks(cases, calls, zero, device))


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=10, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)


def test_overwrite_fault_is_caught_by_selective_backward_and_hooks(device):
    """Accumulation replaced by overwrite also breaks backward(inputs=...) after a full backward, and what
    post-accumulate hooks see over several backward calls."""

    @FAULT_RUN
    @given(data=st.data())
    def selective(data):
        case = with_unused_input(data.draw(grad_cases("float64", smooth(), max_inputs=3), label="case"))
        check_backward_inputs(case, list(case.used), True, None, device)

    @FAULT_RUN
    @given(data=st.data())
    def post_hooks(data):
        cases = data.draw(shared_leaf_cases("float64"), label="cases")
        check_post_accumulate_hooks(cases, [0, 0], False, device)

    for prop in (selective, post_hooks):
        prop()  # passes without the fault
        with overwrite_instead_of_accumulate(), pytest.raises(CAUGHT):
            prop()
