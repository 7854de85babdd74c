"""Backward's errors, each with torch's exact message, as properties of random cases.

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

import pytest
import torch
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH
from oracles.core.case import GradCase, numel
from oracles.core.outcomes import assert_gradients_match
from oracles.higher.backward_error_checks import (
    INPLACE_OPS,
    PRESERVING_INPLACE,
    REQUIRES_GRAD_SPELLINGS,
    SAVES_INPUT,
    SAVES_RESULT,
    check_empty_inputs,
    check_gradient_shape_mismatch,
    check_implicit_gradient,
    check_inplace_on_leaf,
    check_requires_grad_on_integers,
    check_saved_tensor_modified,
    check_second_backward,
    check_unsaved_leaf_modified,
    saves_tensors,
)
from oracles.higher.vjp import SAVES_NO_TENSOR, implicit_gradient_for_any_shape
from oracles.table.domains import Domain
from oracles.table.ops import OPS
from strategies import compositions, grad_cases
from strategies.backward import shared_leaf_cases, smooth
from strategies.shapes import input_shapes


def _dtype(data, dtypes: list[str]) -> str:
    return data.draw(st.sampled_from(dtypes), label="dtype")


def one_element(case: GradCase) -> GradCase:
    """`case` with every input shrunk to one element, keeping its rank: the output has numel 1 and
    the shape (1, ..., 1) of the highest rank, or () when every input is 0-d."""
    return GradCase(case.expr, tuple((1,) * len(s) for s in case.shapes), tuple(v[:1] for v in case.values),
                    case.dtype)


# ------------------------------------------------------------------ implicit gradient
ENTRIES = ("tensor.backward", "autograd.backward", "autograd.grad")


@FIXTURE_HEALTH
@given(data=st.data())
def test_implicit_gradient_only_for_one_element(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case")
    if data.draw(st.booleans(), label="shrink every input to one element"):
        case = one_element(case)
    entry = data.draw(st.sampled_from(ENTRIES), label="entry point")
    event("one element" if numel(case.output_shape) == 1 else "several elements")
    assert_gradients_match(check_implicit_gradient(case, entry, device), verdict_log)


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
# The ops whose backward saves no tensor and that take any real value: an op with a restricted domain is drawn on
# a wrapper that keeps its argument there (frexp off its jumps: -(x ** 2 + 1) - 1), and the wrapper's pow saves x.
LINEAR_OPS = [op for op in SAVES_NO_TENSOR if all(d is Domain.REAL for d in OPS[op].domains)]


def linear(n: int):
    """Expressions of add, sub, neg, rsub, deg2rad and rad2deg (with constants): their backward saves no tensor."""
    return compositions(n, max_depth=3, ops=LINEAR_OPS)


@FIXTURE_HEALTH
@given(data=st.data())
def test_second_backward_through_a_freed_graph(dtypes, device, verdict_log, data):
    ops = data.draw(st.sampled_from(["smooth", "add/sub/neg"]), label="ops")
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth() if ops == "smooth" else linear), label="case")
    retain = data.draw(st.booleans(), label="retain_graph on the first backward")
    event(f"saves tensors: {saves_tensors(case)}, retain_graph={retain}")
    assert_gradients_match(check_second_backward(case, retain, device), verdict_log)


# ------------------------------------------------------------------ inputs=[]
@FIXTURE_HEALTH
@given(data=st.data())
def test_empty_inputs_raise(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case")
    assert_gradients_match(check_empty_inputs(case, device), verdict_log)


# ------------------------------------------------------------------ requires_grad on integer tensors
INTEGER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool)


# torch 2.13 words the same rule three ways, one per spelling (requires_grad_() forgets complex, which it accepts).


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


@FIXTURE_HEALTH
@given(data=st.data())
def test_integer_tensors_cannot_require_grad(dtypes, device, data):
    values, int_dtype = data.draw(integer_tensors(), label="tensor")
    spelling = data.draw(st.sampled_from(sorted(REQUIRES_GRAD_SPELLINGS)), label="spelling")
    check_requires_grad_on_integers(values, int_dtype, spelling, getattr(torch, _dtype(data, dtypes)), device)


# ------------------------------------------------------------------ in-place on a leaf
@FIXTURE_HEALTH
@given(data=st.data())
def test_inplace_on_a_leaf_raises(dtypes, device, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth(1)), label="case")
    leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
    op = data.draw(st.sampled_from(sorted(INPLACE_OPS)), label="in-place op")
    check_inplace_on_leaf(case, leaf, op, device)


# ------------------------------------------------------------------ a saved tensor modified in place
# Ops by what their backward saves (derivatives.yaml): sin: self, exp: result, ... (verified on 2.13).


@st.composite
def modifications(draw):
    """Which op g is applied on top of the expression, which tensor gets modified in place (only the
    combinations whose outcome the saving table decides) and how."""
    g = draw(st.sampled_from(SAVES_INPUT + SAVES_RESULT), label="op on top")
    target = draw(st.sampled_from(["input", "output", "leaf"] if g in SAVES_INPUT else ["output"]), label="target")
    ops = draw(st.lists(st.sampled_from(sorted(PRESERVING_INPLACE)), min_size=1, max_size=3), label="in-place ops")
    grad_mode = target != "leaf" and draw(st.booleans(), label="modify with grad mode on")
    return g, target, ops, grad_mode


@FIXTURE_HEALTH
@given(data=st.data())
def test_saved_tensor_modified_in_place(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), smooth()), label="case")
    g, target, ops, grad_mode = data.draw(modifications(), label="modification")
    leaf = data.draw(st.sampled_from(case.used), label="leaf") if target == "leaf" else 0
    event(f"{target} of {'an input-saving' if g in SAVES_INPUT else 'a result-saving'} op modified")
    assert_gradients_match(check_saved_tensor_modified(case, g, target, ops, grad_mode, leaf, device), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_unsaved_leaf_modified_in_place(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(_dtype(data, dtypes), linear), label="case")
    leaf = data.draw(st.integers(0, len(case.shapes) - 1), label="leaf")
    ops = data.draw(st.lists(st.sampled_from(["add_(1)", "mul_(2)", "neg_()"]), min_size=1, max_size=3),
                    label="in-place ops")
    assert_gradients_match(check_unsaved_leaf_modified(case, leaf, ops, device), verdict_log)


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
        case = data.draw(grad_cases("float64", smooth()), label="case")
        assert_gradients_match(check_implicit_gradient(case, entry, device))

    prop()  # passes without the fault
    with implicit_gradient_for_any_shape(), pytest.raises(CAUGHT):
        prop()
