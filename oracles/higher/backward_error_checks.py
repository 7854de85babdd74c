"""Checks of what backward refuses and what it allows (torch's side against oracles.higher.vjp): implicit
gradients, gradients of the wrong shape, a freed graph, `inputs=[]`, requires_grad on integer tensors and
in-place modifications. Each asserts torch's error (message included) and that nothing was half done;
those that compute gradients return their Outcome."""

from __future__ import annotations

import re

import pytest
import torch

from oracles.core.case import GradCase
from oracles.core.check import grad_outcome
from oracles.core.expected import ExpectedGrad
from oracles.core.expr import Apply, walk
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome
from oracles.core.render import run_torch
from oracles.core.verdict import judge
from oracles.higher.vjp import SAVES_NO_TENSOR, accumulate, sources
from oracles.numerics.rounding import RoundingModel
from oracles.table.ops import ops_where

IMPLICIT = "grad can be implicitly created only for scalar outputs"


FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they have "
         "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
         "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
         "if you need to access saved tensors after calling backward.")


EMPTY_INPUTS = {"backward": "`inputs` argument to `backward()` cannot be empty.",
                "grad": "`inputs` argument to `grad()` cannot be empty."}


LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."


VIEW_OF_LEAF_INPLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."


MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation: "


def size_text(shape) -> str:
    return f"torch.Size([{', '.join(map(str, shape))}])"


def _raises(message: str):
    return pytest.raises(RuntimeError, match=re.escape(message))


def _assert_no_grad_anywhere(leaves, context: str) -> None:
    for i, leaf in enumerate(leaves):
        assert leaf.grad is None, f"x{i}.grad was set although backward raised: {context}"


def _implicit(entry: str, out: torch.Tensor, inputs: list[torch.Tensor]):
    if entry == "tensor.backward":
        out.backward()
    elif entry == "autograd.backward":
        torch.autograd.backward(out)
    else:
        return torch.autograd.grad(out, inputs)
    return [leaf.grad for leaf in inputs]


def check_implicit_gradient(case: GradCase, entry: str, device: str = "cpu") -> Outcome:
    """Without a gradient: more than one element raises (and sets no `.grad`); one element, any shape,
    gives the oracle gradient of that element."""
    leaves = case.make_leaves(device)
    used = [leaves[i] for i in case.used]
    out = run_torch(case.expr, leaves)
    if out.numel() != 1:
        with _raises(IMPLICIT):
            _implicit(entry, out, used)
        _assert_no_grad_anywhere(leaves, f"{entry} of {sources([case])}")
        return grad_outcome(case, [], device, entry)
    got = dict(zip(case.used, _implicit(entry, out, used)))
    grads = [got.get(i) for i in range(len(leaves))]
    verdicts = judge(case, grads, expected_gradients(case))
    return grad_outcome(case, verdicts, device, f"{entry} of the one-element output {tuple(out.shape)}")


def check_gradient_shape_mismatch(cases: list[GradCase], bad: int, bad_shape, device: str = "cpu"):
    """`torch.autograd.backward(outputs, gradients)` with gradient `bad` of the wrong shape raises, naming
    that position and both shapes; no `.grad` is set."""
    leaves = cases[0].make_leaves(device)
    outputs = [run_torch(case.expr, leaves) for case in cases]
    gradients = [torch.ones(bad_shape if k == bad else out.shape, dtype=out.dtype, device=device)
                 for k, out in enumerate(outputs)]
    message = (f"Mismatch in shape: grad_output[{bad}] has a shape of {size_text(bad_shape)} and "
               f"output[{bad}] has a shape of {size_text(outputs[bad].shape)}.")
    with _raises(message):
        torch.autograd.backward(outputs, gradients)
    _assert_no_grad_anywhere(leaves, f"gradient {bad} of shape {bad_shape} for {sources(cases)}")


def saves_tensors(case: GradCase) -> bool:
    """Whether torch's backward of `case.expr` needs a saved tensor (SAVES_NO_TENSOR: from derivatives.yaml)."""
    return any(isinstance(node, Apply) and node.op not in SAVES_NO_TENSOR for node in walk(case.expr))


def check_second_backward(case: GradCase, retain: bool, device: str = "cpu") -> Outcome:
    """A second backward through the same graph raises iff the first freed saved tensors; otherwise it
    accumulates the oracle gradient a second time."""
    leaves = case.make_leaves(device)
    total = run_torch(case.expr, leaves).sum()
    total.backward(retain_graph=retain)
    if saves_tensors(case) and not retain:
        with _raises(FREED):
            total.backward()
        with _raises(FREED):
            torch.autograd.grad(total, [leaves[i] for i in case.used])
        return grad_outcome(case, [], device)
    total.backward()
    model = RoundingModel(case.format)
    once = expected_gradients(case)
    twice = [accumulate(model, accumulate(model, None, e), e) for e in once]
    verdicts = judge(case, [leaf.grad for leaf in leaves], [t or ExpectedGrad(i, False, None)
                                                            for i, t in enumerate(twice)])
    return grad_outcome(case, verdicts, device, f"second backward (retain_graph={retain})")


def check_empty_inputs(case: GradCase, device: str = "cpu") -> Outcome:
    """`inputs=[]` raises before anything runs: no `.grad` is set and the graph is still whole."""
    leaves = case.make_leaves(device)
    total = run_torch(case.expr, leaves).sum()
    with _raises(EMPTY_INPUTS["backward"]):
        total.backward(inputs=[])
    with _raises(EMPTY_INPUTS["backward"]):
        torch.autograd.backward(total, inputs=[])
    with _raises(EMPTY_INPUTS["grad"]):
        torch.autograd.grad(total, [])
    _assert_no_grad_anywhere(leaves, f"inputs=[] for {sources([case])}")
    total.backward()  # would raise FREED had a backward run
    verdicts = judge(case, [leaf.grad for leaf in leaves], expected_gradients(case))
    return grad_outcome(case, verdicts, device, "backward after the inputs=[] errors")


def _set_requires_grad(values, dtype, device):
    tensor = torch.tensor(values, dtype=dtype, device=device)
    tensor.requires_grad = True
    return tensor


REQUIRES_GRAD_SPELLINGS = {
    "factory requires_grad=True": (
        "Only Tensors of floating point and complex dtype can require gradients",
        lambda values, dtype, device: torch.tensor(values, dtype=dtype, device=device, requires_grad=True)),
    "requires_grad_()": (
        "only Tensors of floating point dtype can require gradients",
        lambda values, dtype, device: torch.tensor(values, dtype=dtype, device=device).requires_grad_()),
    "requires_grad = True": ("only Tensors of floating point and complex dtype can require gradients",
                             _set_requires_grad),
}


def check_requires_grad_on_integers(values, dtype: torch.dtype, spelling: str, float_dtype: torch.dtype,
                                    device: str = "cpu"):
    """An integer (or bool) tensor cannot require grad; the same values as a float tensor can."""
    message, make = REQUIRES_GRAD_SPELLINGS[spelling]
    with _raises(message):
        make(values, dtype, device)
    plain = torch.tensor(values, dtype=dtype, device=device)
    assert plain.requires_grad_(False).requires_grad is False  # turning it off is always allowed
    floating = make(values, float_dtype, device)
    assert floating.requires_grad and floating.is_leaf and floating.dtype == float_dtype


INPLACE_OPS = {
    "add_(1)": lambda t: t.add_(1),
    "mul_(2)": lambda t: t.mul_(2),
    "sin_()": lambda t: t.sin_(),
    "neg_()": lambda t: t.neg_(),
    "zero_()": lambda t: t.zero_(),
    "fill_(3)": lambda t: t.fill_(3),
    "copy_(ones)": lambda t: t.copy_(torch.ones_like(t)),
    "clamp_(-1, 1)": lambda t: t.clamp_(-1, 1),
    "+= 1": lambda t: t.__iadd__(1),
    "[...] = 5": lambda t: t.__setitem__(Ellipsis, 5.0),
    "[0] = 5": lambda t: t.__setitem__(0 if t.dim() else (), 5.0),  # a view of the leaf unless 0-d
}


def check_inplace_on_leaf(case: GradCase, leaf: int, op: str, device: str = "cpu"):
    """In-place on a leaf that requires grad raises (a partial index: 'a view of a leaf') and changes
    nothing; under no_grad() the same op runs and bumps the version counter."""
    leaves = case.make_leaves(device)
    x = leaves[leaf]
    version = x._version
    message = VIEW_OF_LEAF_INPLACE if op == "[0] = 5" and x.dim() else LEAF_INPLACE
    with _raises(message):
        INPLACE_OPS[op](x)
    assert x._version == version and x.is_leaf and x.requires_grad and x.grad is None
    assert x.detach().to("cpu", torch.float64).reshape(-1).tolist() == list(case.values[leaf]), \
        f"x{leaf} changed although {op} raised"
    with torch.no_grad():
        INPLACE_OPS[op](x)
    assert x._version > version and x.is_leaf and x.requires_grad


# Unary ops whose backward saves its input, or its result, as recorded on their entries.
SAVES_INPUT = ops_where(saves_input=True)
SAVES_RESULT = ops_where(saves_result=True)


PRESERVING_INPLACE = {"mul_(1)": lambda t: t.mul_(1), "add_(0)": lambda t: t.add_(0)}  # values unchanged


def _modify(tensor: torch.Tensor, ops: list[str], grad_mode: bool) -> None:
    with torch.set_grad_enabled(grad_mode):
        for op in ops:
            PRESERVING_INPLACE[op](tensor)


def check_saved_tensor_modified(case: GradCase, g: str, target: str, ops: list[str], grad_mode: bool,
                                leaf: int = 0, device: str = "cpu") -> Outcome:
    """y = g(f) (+ g(x_leaf)): modifying a tensor g's backward saved raises the version-counter error
    naming its shape and how often it was modified; modifying g's output when g saved only its input
    is harmless: the gradient is the oracle's for g(f)."""
    leaves = case.make_leaves(device)
    fn = getattr(torch, g)
    inner = run_torch(case.expr, leaves)
    if target == "leaf":
        modified, out = leaves[leaf], fn(leaves[leaf]) + fn(inner)
    else:
        out = fn(inner)
        modified = inner if target == "input" else out
    _modify(modified, ops, grad_mode)
    assert modified._version == len(ops), f"{len(ops)} in-place ops bumped the version to {modified._version}"
    context = f"{g} over {sources([case])}, {target} modified by {ops} (grad mode {grad_mode})"
    if target == "input" or target == "leaf" or g in SAVES_RESULT:
        dims = ", ".join(map(str, modified.shape))
        pattern = (re.escape(MODIFIED) + ".*" + re.escape(f" [{dims}]]") + ".*"
                   + re.escape(f"is at version {len(ops)}; expected version 0 instead."))
        with pytest.raises(RuntimeError, match=pattern):
            out.sum().backward()
        return grad_outcome(case, [], device, context)
    out.sum().backward()
    outer = GradCase(Apply(g, (case.expr,), 0), case.shapes, case.values, case.dtype)
    verdicts = judge(outer, [x.grad for x in leaves], expected_gradients(outer))
    return grad_outcome(outer, verdicts, device, context)


def check_unsaved_leaf_modified(case: GradCase, leaf: int, ops: list[str], device: str = "cpu") -> Outcome:
    """Nothing in an add/sub/neg graph saved x_leaf: modifying it in place (values changed too) before
    backward is allowed, and the gradient, constant in the inputs, is the oracle's."""
    leaves = case.make_leaves(device)
    out = run_torch(case.expr, leaves)
    with torch.no_grad():
        for op in ops:
            INPLACE_OPS[op](leaves[leaf])
    out.sum().backward()
    verdicts = judge(case, [x.grad for x in leaves], expected_gradients(case))
    return grad_outcome(case, verdicts, device, f"x{leaf} modified by {ops} before backward")
