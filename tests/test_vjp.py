"""`gradient=` for non-scalar outputs: backward computes the vector-Jacobian product.

For random expressions and random `gradient` tensors V (values exact in every dtype), `leaf.grad` is the
oracle's VJP Σ_p V[p] · ∂f(p)/∂x summed over the broadcast dimensions; several outputs in one
`torch.autograd.backward([y1, y2], [v1, v2])` add up (one backward pass: the oracle bounds the sum of all
their contributions together); an explicit gradient on a scalar output scales every gradient; a `gradient`
of another real dtype (integer dtypes included) is cast to the output's dtype, and `.grad` keeps the leaf's.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH
from oracles.core.case import numel
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import assert_gradients_match
from oracles.higher.vjp import expected_vjp, ignore_gradient_argument
from oracles.higher.vjp_checks import check_scalar_output_scaled, check_several_outputs, check_vjp
from strategies import grad_cases
from strategies.backward import shared_leaf_cases, smooth, upstream_values

# Real dtypes a `gradient` may have; upstream values are drawn exact in each (integers for integer dtypes).
GRADIENT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16,
                   torch.int64, torch.int32, torch.int16, torch.int8)


@st.composite
def gradients_for(draw, shape: tuple[int, ...], any_dtype: bool = True):
    """(values, dtype) of a `gradient` tensor for an output of `shape`."""
    dtype = draw(st.sampled_from(GRADIENT_DTYPES), label="gradient dtype") if any_dtype else None
    integers = dtype is not None and not dtype.is_floating_point
    return draw(upstream_values(numel(shape), integers=integers), label="gradient values"), dtype


# ------------------------------------------------------------------ tests
@FIXTURE_HEALTH
@given(data=st.data())
def test_backward_with_gradient_is_the_vjp(dtype, device, verdict_log, data):
    case = data.draw(grad_cases(dtype, smooth(3)), label="case")
    upstream, gradient_dtype = data.draw(gradients_for(case.output_shape), label="gradient")
    event(f"gradient dtype {gradient_dtype}" + (" (the output's)" if str(gradient_dtype)[6:] == dtype else ""))
    assert_gradients_match(check_vjp(case, upstream, gradient_dtype, device), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_explicit_gradient_scales_a_scalar_output(dtypes, device, verdict_log, data):
    case = data.draw(grad_cases(data.draw(st.sampled_from(dtypes), label="dtype"), smooth()), label="case")
    (scale,) = data.draw(upstream_values(1), label="scale")
    assert_gradients_match(check_scalar_output_scaled(case, scale, device), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_several_outputs_in_one_backward(dtype, device, verdict_log, data):
    cases = data.draw(shared_leaf_cases(dtype), label="cases")
    upstreams = [data.draw(upstream_values(numel(c.output_shape)), label=f"v{k}") for k, c in enumerate(cases)]
    assert_gradients_match(check_several_outputs(cases, upstreams, device), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_expected_vjp_of_one_output_is_the_core_oracle(dtypes, data):
    """The multi-output oracle (oracles.higher.vjp) agrees with gradient_oracle.expected_gradients on one output:
    same statuses, same exact balls, same enclosures."""
    case = data.draw(grad_cases(data.draw(st.sampled_from(dtypes), label="dtype"), smooth()), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="gradient values")
    ours, core = expected_vjp([(case, upstream)]), expected_gradients(case, upstream)
    for mine, theirs in zip(ours, core):
        assert mine.used == theirs.used
        for a, b in zip(mine.elements, theirs.elements):
            assert a.status == b.status and (a.exact is None) == (b.exact is None), (a, b)
            if a.exact is not None:  # a failure keeps its exact value too, where it exists
                assert a.exact.mid() == b.exact.mid(), (a, b)
            if a.enclosure is not None:
                assert a.enclosure.mid() == b.enclosure.mid() and a.enclosure.rad() == b.enclosure.rad(), (a, b)


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=20, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)


def _vjp_property(device):
    @FAULT_RUN
    @given(data=st.data())
    def prop(data):
        case = data.draw(grad_cases("float64", smooth()), label="case")
        upstream = data.draw(upstream_values(numel(case.output_shape)), label="gradient values")
        assert_gradients_match(check_vjp(case, upstream, None, device))

    return prop


def _several_outputs_property(device):
    @FAULT_RUN
    @given(data=st.data())
    def prop(data):
        cases = data.draw(shared_leaf_cases("float32"), label="cases")
        upstreams = [data.draw(upstream_values(numel(c.output_shape)), label=f"v{k}") for k, c in enumerate(cases)]
        assert_gradients_match(check_several_outputs(cases, upstreams, device))

    return prop


def _scalar_property(device):
    @FAULT_RUN
    @given(data=st.data())
    def prop(data):
        case = data.draw(grad_cases("float64", smooth()), label="case")
        scale = data.draw(upstream_values(1), label="scale")[0]
        assert_gradients_match(check_scalar_output_scaled(case, scale, device))

    return prop


@pytest.mark.parametrize("make", [_vjp_property, _several_outputs_property, _scalar_property],
                         ids=["vjp", "several_outputs", "scalar_scaled"])
def test_ignored_gradient_argument_is_caught(make, device):
    """With `gradient=` replaced by ones, each of the three properties fails."""
    prop = make(device)
    prop()  # passes without the fault
    with ignore_gradient_argument(), pytest.raises(CAUGHT):
        prop()
