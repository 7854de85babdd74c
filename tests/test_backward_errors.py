"""Backward's errors (issue 4, part 3), each with torch's exact message, as properties of random cases.

- No `gradient` for an output of more than one element raises; an output of one element, of any shape,
  is seeded with 1 (and `.grad` is then the oracle gradient).
- A `gradient` whose shape differs from the output's raises, even when it would broadcast.
- A second backward through a graph whose saved tensors were freed raises; a graph that saved nothing
  (add, sub, neg only) or was kept with `retain_graph=True` accumulates the oracle gradient twice.
- `inputs=[]` raises, and the graph is left intact.
- `requires_grad` on an integer or bool tensor raises (three spellings, three messages).
- An in-place op on a leaf that requires grad raises and changes nothing; under `no_grad()` it is allowed.
- A saved tensor modified in place raises the version-counter error with the number of modifications;
  modifying a tensor nobody saved is harmless.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE_HEALTH
from oracles.core.case import GradCase, numel
from oracles.core.expr import Apply, walk
from oracles.core.gradient_oracle import ExpectedGrad, expected_gradients
from oracles.core.outcomes import assert_none_wrong
from oracles.core.render import run_torch
from oracles.core.verdict import judge
from oracles.higher.vjp import SAVES_NO_TENSOR, accumulate, implicit_gradient_for_any_shape, sources
from oracles.numerics.rounding import RoundingModel
from strategies import compositions, grad_cases
from strategies.backward import shared_leaf_cases, smooth
from strategies.shapes import input_shapes


def _dtype(data, dtypes: list[str]) -> str:
    return data.draw(st.sampled_from(dtypes), label="dtype")

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


def one_element(case: GradCase) -> GradCase:
    """`case` with every input shrunk to one element, keeping its rank: the output has numel 1 and
    the shape (1, ..., 1) of the highest rank, or () when every input is 0-d."""
    return GradCase(case.expr, tuple((1,) * len(s) for s in case.shapes), tuple(v[:1] for v in case.values),
                    case.dtype)


# ------------------------------------------------------------------ implicit gradient
ENTRIES = ("tensor.backward", "autograd.backward", "autograd.grad")


def _implicit(entry: str, out: torch.Tensor, inputs: list[torch.Tensor]):
    if entry == "tensor.backward":
        out.backward()
    elif entry == "autograd.backward":
        torch.autograd.backward(out)
    else:
        return torch.autograd.grad(out, inputs)
    return [leaf.grad for leaf in inputs]


def check_implicit_gradient(case: GradCase, entry: str, device: str = "cpu"):
    """Without a gradient: more than one element raises (and sets no `.grad`); one element, any shape,
    gives the oracle gradient of that element."""
    leaves = case.make_leaves(device)
    used = [leaves[i] for i in case.used]
    out = run_torch(case.expr, leaves)
    if out.numel() != 1:
        with _raises(IMPLICIT):
            _implicit(entry, out, used)
        _assert_no_grad_anywhere(leaves, f"{entry} of {sources([case])}")
        return []
    got = dict(zip(case.used, _implicit(entry, out, used)))
    grads = [got.get(i) for i in range(len(leaves))]
    verdicts = judge(case, grads, expected_gradients(case))
    assert_none_wrong(case, verdicts, f"{entry} of the one-element output {tuple(out.shape)} of {sources([case])}")
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_implicit_gradient_only_for_one_element(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case")
    if data.draw(st.booleans(), label="shrink every input to one element"):
        case = one_element(case)
    entry = data.draw(st.sampled_from(ENTRIES), label="entry point")
    event("one element" if numel(case.output_shape) == 1 else "several elements")
    verdict_log.add(check_implicit_gradient(case, entry, device))


# ------------------------------------------------------------------ gradient of the wrong shape
@st.composite
def other_shapes(draw, shape: tuple[int, ...]):
    """A shape different from `shape` by construction: a dimension added (size 1 broadcasts, and still
    must raise), dropped or resized, the same elements laid out flat, or a 0-d tensor."""
    kinds = ["prepend"] + (["drop", "resize"] if shape else []) + (["scalar"] if shape else [])
    flat = (numel(shape),) if (numel(shape),) != shape else (numel(shape), 1)
    kinds.append("flat")
    kind = draw(st.sampled_from(kinds), label="how the gradient's shape differs")
    if kind == "prepend":
        return (draw(st.integers(1, 3), label="new leading size"),) + shape
    if kind == "drop":
        return shape[1:]
    if kind == "resize":
        axis = draw(st.integers(0, len(shape) - 1), label="axis")
        size = draw(st.sampled_from([s for s in (1, 2, 3, 4) if s != shape[axis]]), label="size")
        return shape[:axis] + (size,) + shape[axis + 1:]
    if kind == "scalar":
        return ()
    return flat


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


@FIXTURE_HEALTH
@given(data=st.data())
def test_gradient_of_another_shape_raises(dtypes, device, data):
    """The mismatch is in the first of 1-3 outputs (see the next test for the others)."""
    cases = data.draw(shared_leaf_cases(_dtype(data, dtypes)), label="cases")
    bad_shape = data.draw(other_shapes(cases[0].output_shape), label="gradient shape")
    check_gradient_shape_mismatch(cases, 0, bad_shape, device)


@pytest.mark.xfail(strict=True, raises=(AssertionError, RuntimeError), reason=(
    "torch 2.13 bug: _make_grads builds the message with `grads.index(grad)` and `outputs.index(out)`, "
    "which compare tensors with ==: a wrong shape at position >= 1 raises 'The size of tensor a (..) must "
    "match the size of tensor b (..)' or 'Boolean value of Tensor with more than one value is ambiguous', "
    "or names position 0 when the comparison happens to be true"))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=10,
          phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_gradient_of_another_shape_raises_at_any_position(device, data):
    cases = data.draw(shared_leaf_cases("float32"), label="cases")
    cases = cases if len(cases) > 1 else cases * 2  # the same expression twice is two outputs too
    bad = data.draw(st.integers(1, len(cases) - 1), label="position of the wrong gradient")
    bad_shape = data.draw(other_shapes(cases[bad].output_shape), label="gradient shape")
    check_gradient_shape_mismatch(cases, bad, bad_shape, device)


# ------------------------------------------------------------------ a freed graph
def saves_tensors(case: GradCase) -> bool:
    """Whether torch's backward of `case.expr` needs a saved tensor (SAVES_NO_TENSOR: from derivatives.yaml)."""
    return any(isinstance(node, Apply) and node.op not in SAVES_NO_TENSOR for node in walk(case.expr))


def check_second_backward(case: GradCase, retain: bool, device: str = "cpu"):
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
        return []
    total.backward()
    model = RoundingModel(case.format)
    once = expected_gradients(case)
    twice = [accumulate(model, accumulate(model, None, e), e) for e in once]
    verdicts = judge(case, [leaf.grad for leaf in leaves], [t or ExpectedGrad(i, False, None)
                                                            for i, t in enumerate(twice)])
    assert_none_wrong(case, verdicts, f"second backward (retain_graph={retain}) of {sources([case])}")
    return verdicts


def linear(n: int):
    """Expressions of add, sub and neg only (with constants): their backward saves no tensor."""
    return compositions(n, max_depth=3, ops=SAVES_NO_TENSOR)


@FIXTURE_HEALTH
@given(data=st.data())
def test_second_backward_through_a_freed_graph(dtypes, device, verdict_log, data):
    ops = data.draw(st.sampled_from(["smooth", "add/sub/neg"]), label="ops")
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth() if ops == "smooth" else linear), label="case")
    retain = data.draw(st.booleans(), label="retain_graph on the first backward")
    event(f"saves tensors: {saves_tensors(case)}, retain_graph={retain}")
    verdict_log.add(check_second_backward(case, retain, device))


# ------------------------------------------------------------------ inputs=[]
def check_empty_inputs(case: GradCase, device: str = "cpu"):
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
    assert_none_wrong(case, verdicts, f"backward after the inputs=[] errors, {sources([case])}")
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_empty_inputs_raise(dtypes, device, verdict_log, data):
    verdict_log.add(check_empty_inputs(data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case"), device))


# ------------------------------------------------------------------ requires_grad on integer tensors
INTEGER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool)


def _set_requires_grad(values, dtype, device):
    tensor = torch.tensor(values, dtype=dtype, device=device)
    tensor.requires_grad = True
    return tensor


# torch 2.13 words the same rule three ways, one per spelling (requires_grad_() forgets complex, which it accepts).
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


@st.composite
def integer_tensors(draw):
    dtype = draw(st.sampled_from(INTEGER_DTYPES), label="integer dtype")
    (shape,) = draw(input_shapes(1), label="shape")
    if dtype is torch.bool:
        element = st.booleans()
    else:
        info = torch.iinfo(dtype)
        element = st.integers(info.min, info.max)
    flat = draw(st.lists(element, min_size=numel(shape), max_size=numel(shape)), label="values")
    return torch.tensor(flat, dtype=dtype).reshape(shape).tolist(), dtype


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


@FIXTURE_HEALTH
@given(data=st.data())
def test_integer_tensors_cannot_require_grad(dtypes, device, data):
    values, int_dtype = data.draw(integer_tensors(), label="tensor")
    spelling = data.draw(st.sampled_from(sorted(REQUIRES_GRAD_SPELLINGS)), label="spelling")
    check_requires_grad_on_integers(values, int_dtype, spelling, getattr(torch, _dtype(data, dtypes)), device)


# ------------------------------------------------------------------ in-place on a leaf
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


@FIXTURE_HEALTH
@given(data=st.data())
def test_inplace_on_a_leaf_raises(dtypes, device, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth(1)), label="case")
    leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
    op = data.draw(st.sampled_from(sorted(INPLACE_OPS)), label="in-place op")
    check_inplace_on_leaf(case, leaf, op, device)


# ------------------------------------------------------------------ a saved tensor modified in place
# Ops by what their backward saves (derivatives.yaml): sin: self, exp: result, ... (verified on 2.13).
SAVES_INPUT = ("sin", "cos", "atan", "square", "erf", "asinh")
SAVES_RESULT = ("exp", "tanh", "sigmoid")
PRESERVING_INPLACE = {"mul_(1)": lambda t: t.mul_(1), "add_(0)": lambda t: t.add_(0)}  # values unchanged


@st.composite
def modifications(draw):
    """Which op g is applied on top of the expression, which tensor gets modified in place (only the
    combinations whose outcome the saving table decides) and how."""
    g = draw(st.sampled_from(SAVES_INPUT + SAVES_RESULT), label="op on top")
    target = draw(st.sampled_from(["input", "output", "leaf"] if g in SAVES_INPUT else ["output"]), label="target")
    ops = draw(st.lists(st.sampled_from(sorted(PRESERVING_INPLACE)), min_size=1, max_size=3), label="in-place ops")
    grad_mode = target != "leaf" and draw(st.booleans(), label="modify with grad mode on")
    return g, target, ops, grad_mode


def _modify(tensor: torch.Tensor, ops: list[str], grad_mode: bool) -> None:
    with torch.set_grad_enabled(grad_mode):
        for op in ops:
            PRESERVING_INPLACE[op](tensor)


def check_saved_tensor_modified(case: GradCase, g: str, target: str, ops: list[str], grad_mode: bool,
                                leaf: int = 0, device: str = "cpu"):
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
        return []
    out.sum().backward()
    outer = GradCase(Apply(g, (case.expr,), 0), case.shapes, case.values, case.dtype)
    verdicts = judge(outer, [x.grad for x in leaves], expected_gradients(outer))
    assert_none_wrong(outer, verdicts, context)
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_saved_tensor_modified_in_place(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case")
    g, target, ops, grad_mode = data.draw(modifications(), label="modification")
    leaf = data.draw(st.sampled_from(case.used), label="leaf") if target == "leaf" else 0
    event(f"{target} of {'an input-saving' if g in SAVES_INPUT else 'a result-saving'} op modified")
    verdict_log.add(check_saved_tensor_modified(case, g, target, ops, grad_mode, leaf, device))


def check_unsaved_leaf_modified(case: GradCase, leaf: int, ops: list[str], device: str = "cpu"):
    """Nothing in an add/sub/neg graph saved x_leaf: modifying it in place (values changed too) before
    backward is allowed, and the gradient, constant in the inputs, is the oracle's."""
    leaves = case.make_leaves(device)
    out = run_torch(case.expr, leaves)
    with torch.no_grad():
        for op in ops:
            INPLACE_OPS[op](leaves[leaf])
    out.sum().backward()
    verdicts = judge(case, [x.grad for x in leaves], expected_gradients(case))
    assert_none_wrong(case, verdicts, f"x{leaf} modified by {ops} before backward of {sources([case])}")
    return verdicts


@FIXTURE_HEALTH
@given(data=st.data())
def test_unsaved_leaf_modified_in_place(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), linear), label="case")
    leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
    ops = data.draw(st.lists(st.sampled_from(["add_(1)", "mul_(2)", "neg_()"]), min_size=1, max_size=3),
                    label="in-place ops")
    verdict_log.add(check_unsaved_leaf_modified(case, leaf, ops, device))


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=10, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)


@pytest.mark.parametrize("entry", ENTRIES)
def test_removed_implicit_scalar_error_is_caught(entry, device):
    """With non-scalar outputs silently seeded with ones, the implicit-gradient property fails."""

    @FAULT_RUN
    @given(data=st.data())
    def prop(data):
        check_implicit_gradient(data.draw(grad_cases("float64", smooth()), label="case"), entry, device)

    prop()  # passes without the fault
    with implicit_gradient_for_any_shape(), pytest.raises(CAUGHT):
        prop()
