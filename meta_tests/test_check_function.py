"""`check_function` as a user meets it: it passes correct derivatives of their own code (a custom
autograd.Function against a reference, a composite activation on its own, a compiled function), catches a
backward off by a relative 1e-12 in float64 with the suite's failure message, and turns every bad argument
into a ValueError that names it."""

from __future__ import annotations

import functools
import re

import pytest
import torch
import torch.nn.functional as F

from gradoracle import check_function
from gradoracle.pytest_plugin import unrecorded


class HandSoftplus(torch.autograd.Function):
    """softplus as torch computes it (linear above its threshold 20), with a hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 20, x, torch.log1p(torch.exp(x)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.where(x > 20, grad, grad * torch.sigmoid(x))


class OffSoftplus(HandSoftplus):
    """The same, its backward off by a relative 1e-12: far below gradcheck's reach, 4500 ulps in float64."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.where(x > 20, grad, grad * torch.sigmoid(x) * (1 + 1e-12))


@functools.cache  # an op is registered once per process
def _library_softplus():
    """The same softplus as a torch.library op with a registered autograd formula (torch >= 2.4)."""
    if not hasattr(torch.library, "custom_op"):
        pytest.skip(f"torch {torch.__version__} has no torch.library.custom_op")

    @torch.library.custom_op("gradoracle_selftest::softplus", mutates_args=())
    def library_softplus(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 20, x, torch.log1p(torch.exp(x)))

    @library_softplus.register_fake
    def _(x):
        return torch.empty_like(x)

    def save_input(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return torch.where(x > 20, grad, grad * torch.sigmoid(x))

    library_softplus.register_autograd(backward, setup_context=save_input)
    return library_softplus


def mish(x):
    return x * torch.tanh(F.softplus(x))


def blend(x, y):
    return torch.atan2(x, y) * torch.exp(-x * x) + torch.log1p(y * y)


def test_correct_custom_backward_passes():
    summary = check_function(HandSoftplus.apply, torch.zeros(4), reference=F.softplus, max_examples=30)
    assert summary.examples == 60 and summary.verified > 0
    assert all(counts.counts and not counts.failures for counts in summary.counts.values())


def test_library_op_with_registered_autograd_passes():
    summary = check_function(_library_softplus(), torch.zeros(4), reference=F.softplus, max_examples=10)
    assert summary.verified > 0 and summary.unverified == 0


def test_custom_backward_off_by_1e_12_is_caught():
    with pytest.raises(AssertionError) as caught, unrecorded():
        check_function(OffSoftplus.apply, torch.zeros(4), reference=F.softplus, dtypes=("float64",), max_examples=30)
    text = "\n".join([str(caught.value), *getattr(caught.value, "__notes__", [])])
    assert re.search(r"gradient element\(s\) wrong for y = torch.nn.functional.softplus\(x0\) \(float64\): "
                     r"backward of OffSoftplus.apply \(judged against the reference\)", text)
    assert "rel err 1e-12" in text and "Reproduce with:" in text and "fn = OffSoftplus.apply" in text


def test_composite_activation_without_reference_at_both_orders_and_modes():
    summary = check_function(mish, torch.zeros(3, 2), max_examples=15, orders=(1, 2), modes=("reverse", "forward"))
    checks = {check for _, check in summary.counts}
    assert checks == {"backward", "forward-mode tangent", "Hessian-vector product"}
    assert summary.verified > summary.unverified


def damped(x, y):
    return torch.sin(x) * torch.exp(-x * y) + torch.log1p(y * y)


def test_broadcast_inputs_and_a_final_sum():
    # not blend: torch's atan2 backward underflows its denominator at tiny arguments (the registered finding
    # atan2-denominator-range), which check_function rightly reports as wrong when the draws reach it; this
    # test is about broadcasting and the final sum
    summary = check_function(lambda x, y: damped(x, y).sum(), torch.zeros(3), torch.zeros(2, 1), max_examples=15)
    assert summary.verified > summary.unverified


def test_compiled_function_passes_against_its_eager_self():
    # damped, not blend: this test is about torch.compile, and blend's atan2 is undefined at the origin, where the
    # draws' simple values (zeros first) put 11 of its 90 elements (singular, nothing to judge)
    summary = check_function(torch.compile(damped), torch.zeros(3), torch.zeros(2, 1), reference=damped,
                             max_examples=10)
    assert summary.verified > summary.unverified


WEIGHT = torch.ones(3, dtype=torch.float64)


def _swish(x):
    return x * torch.sigmoid(x)


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(dtypes=("float8",)), "dtypes: unknown dtype 'float8'"),
    (dict(dtypes=None, extra=torch.zeros(3, dtype=torch.float32)), "they have several: ['float32', 'float64']"),
    (dict(max_examples=0), "max_examples: expected a positive integer, got 0"),
    (dict(orders=(3,)), "orders: 3 is not one of (1, 2)"),
    (dict(modes="sideways"), "modes: 'sideways' is not one of ('reverse', 'forward')"),
    (dict(device="tpu0"), "device: 'tpu0' is not a torch device"),
    (dict(error_factor=0.5), "error_factor: expected a number >= 1, got 0.5"),
    (dict(fn=lambda x: torch.cumsum(x, 0)), "aten.cumsum.default(self=<tensor>, dim=0) is not an elementwise op"),
    (dict(fn=lambda x: x.sin() * WEIGHT), "a tensor constant or a module's parameter"),
    (dict(fn=HandSoftplus.apply), "has a backward torch's formulas do not describe (HandSoftplusBackward)"),
    (dict(fn=lambda x: x.sin().sum(), modes=("forward",)), "'forward' needs the function to return its elementwise"),
    (dict(inputs=([1.0],)), "example input 0 must be a real floating-point tensor, got list"),
    (dict(inputs=(torch.zeros(3), torch.zeros(2))), "shapes [(3,), (2,)] do not broadcast together"),
    (dict(fn=lambda x: x.sin(), reference=lambda x: x.sin().sum()), "they must compute the same values"),
])
def test_bad_arguments_name_the_value(arguments, message):
    fn = arguments.pop("fn", _swish)
    inputs = arguments.pop("inputs", (torch.zeros(3, dtype=torch.float64),))
    extra = arguments.pop("extra", None)
    if extra is not None:
        inputs, fn = inputs + (extra,), (lambda x, y: x * y)
    with pytest.raises(ValueError) as caught:
        check_function(fn, *inputs, max_examples=arguments.pop("max_examples", 2), **arguments)
    assert message in str(caught.value)
