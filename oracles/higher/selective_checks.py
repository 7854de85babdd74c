"""Checks of backward's selective and functional forms (torch's side against oracles.higher.vjp):
`backward(inputs=...)`, `torch.autograd.grad`, a non-leaf's `.grad` and `retain_grad()`, `detach()` and
`no_grad()`, tensor hooks and post-accumulate-grad hooks. Each runs torch on a case, asserts what torch
must do besides computing gradients (raise, warn, leave a `.grad` alone), asserts every intermediate
step's gradients, and returns the Outcome of all the gradients it judged."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from hypothesis import event

from oracles.core.case import GradCase
from oracles.core.check import grad_outcome
from oracles.core.expected import ExpectedGrad
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.core.render import run_torch, torch_source
from oracles.core.verdict import judge
from oracles.higher.vjp import (
    accumulate,
    cut_case,
    run_torch_with,
    scaled,
    sources,
    subexpression,
    tensor_values,
    zeros_expected,
)
from oracles.numerics.rounding import RoundingModel

NON_LEAF_GRAD = ("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
                 "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
                 "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.")


NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"


NON_LEAF_POST_HOOK = "post accumulate grad hooks cannot be registered on non-leaf tensors"


def unused_message(position: int) -> str:
    return (f"The differentiated Tensor at index {position} appears to not have been used in the graph. "
            "Set allow_unused=True if this is the desired behavior.")


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


def check_backward_inputs(case: GradCase, listed: list[int], first_full: bool, intermediate: tuple | None,
                          device: str = "cpu") -> Outcome:
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
    assert_gradients_match(grad_outcome(case, verdicts, device, context))
    if intermediate is not None:
        verdicts += _check_intermediate_grad(case, intermediate, captured["t"], captured["t"].grad, context, device)
    return grad_outcome(case, verdicts, device, context)


def _check_intermediate_grad(case, path, tensor, grad, context, device):
    """`grad` is ∂(sum of the output)/∂(the intermediate at `path`), from the cut case's oracle."""
    if not _finite(tensor):
        event("intermediate not finite: its gradient is not judged")
        return []
    sub = cut_case(case, path, tensor)
    fresh = len(case.shapes)
    verdicts = judge(sub, [grad], [expected_gradients(sub)[fresh]])
    call = (f"gradient of the intermediate {torch_source(subexpression(case.expr, path))} "
            f"(x{fresh} in the cut case {sources([sub])}), {context}")
    assert_gradients_match(grad_outcome(sub, verdicts, device, call))
    return verdicts


def check_autograd_grad(case: GradCase, upstream, wanted: list[int], mode: str, preset: bool,
                        device: str = "cpu") -> Outcome:
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
        return grad_outcome(case, [], device, context)
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
    return grad_outcome(case, verdicts, device, context)


def check_non_leaf_grad(case: GradCase, path: tuple, retain: bool, device: str = "cpu") -> Outcome:
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
    assert_gradients_match(grad_outcome(case, verdicts, device, context))
    if not retain:
        with pytest.warns(UserWarning, match=re.escape(NON_LEAF_GRAD)):
            grad = tensor.grad
        assert grad is None, f".grad of a non-leaf is {grad}, {context}"
        return grad_outcome(case, verdicts, device, context)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # retained: no warning
        grad = tensor.grad
    return grad_outcome(case, verdicts + _check_intermediate_grad(case, path, tensor, grad, context, device), device,
                        context)


def check_cut(case: GradCase, path: tuple, how: str, device: str = "cpu") -> Outcome:
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
        return grad_outcome(case, [], device, context)
    out.sum().backward()
    if not _finite(captured["t"]):
        event("cut value not finite: not judged")
        return grad_outcome(case, [], device, context)
    verdicts = judge(sub, [leaf.grad for leaf in leaves], expected_gradients(sub)[:n])
    return grad_outcome(sub, verdicts, device, context)


def check_leaf_hook(case: GradCase, leaf: int, factor: float, device: str = "cpu") -> Outcome:
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
    return grad_outcome(case, verdicts, device, context)


def check_output_hook(case: GradCase, upstream, factor: float, device: str = "cpu") -> Outcome:
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
    return grad_outcome(case, verdicts, device, context)


def check_intermediate_hook(case: GradCase, path: tuple, device: str = "cpu") -> Outcome:
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
    assert_gradients_match(grad_outcome(case, verdicts, device, context))
    verdicts += _check_intermediate_grad(case, path, captured["t"], seen[0], context, device)
    return grad_outcome(case, verdicts, device, context)


def check_post_accumulate_hooks(cases: list[GradCase], calls: list[int], zero_in_hook: bool,
                                device: str = "cpu") -> Outcome:
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
        assert_gradients_match(grad_outcome(base, verdicts, device, context))
    final = judge(base, [leaf.grad for leaf in leaves], [h or _unset(i) for i, h in enumerate(held)])
    context = f"after {calls}, zeroing in the hook: {zero_in_hook}, {sources(cases)}"
    return grad_outcome(base, verdicts + final, device, context)
