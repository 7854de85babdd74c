"""Forward-mode AD with torch.autograd.forward_ad dual numbers, against the exact oracle.

- the tangent of f(make_dual(x, t)) is J·t at every output point, in the forward-mode rounding model
  (derivatives.yaml's forward formulas: the op entries' `forward_tangent`), and the primal is what f
  computes on plain tensors, bit for bit;
- forward over reverse: the tangent of torch.autograd.grad(f(dual).sum(), x, create_graph=True) is the
  Hessian-vector product H·t, against SymPy's second derivatives;
- torch's forward formulas found imprecise or mistyped, pinned (strict xfails say when torch changes).
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.func as tf
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH, at_points
from oracles.core.case import GradCase, numel
from oracles.core.check import grad_outcome
from oracles.core.expr import Apply, Var
from oracles.core.outcomes import assert_gradients_match
from oracles.core.render import run_torch
from oracles.higher.functional import dual_tangent, expected_jvp, judge_tensor, tensor_of
from oracles.higher.higher_order import expected_nested, point_jets
from oracles.numerics.dtypes import format_named
from strategies import grad_cases
from strategies.backward import upstream_values
from strategies.higher_order import second_order

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def _tangents(data, case: GradCase, label: str = "t") -> dict[int, tuple[float, ...]]:
    return {i: data.draw(upstream_values(numel(case.shapes[i])), label=f"{label} for x{i}") for i in case.used}


@FIXTURE_HEALTH
@given(data=st.data())
def test_dual_number_tangent(dtype, device, verdict_log, data):
    """unpack_dual(f(make_dual(x, t))).tangent = J·t; the primal equals f on plain tensors, bitwise."""
    case = data.draw(grad_cases(dtype, second_order(max_depth=2), max_inputs=3), label="case")
    tangents = _tangents(data, case)
    primal, tangent, plain = dual_tangent(case, tangents, device)
    assert torch.equal(primal, plain) or (primal.isnan() == plain.isnan()).all() and torch.equal(
        primal.nan_to_num(), plain.nan_to_num()), "forward AD changed the primal value"
    expected = expected_jvp(case, point_jets(case, 1, forward_ad=True), tangents)
    verdicts = judge_tensor(case, -1, tangent, case.output_shape, expected, "the tangent")
    assert_gradients_match(grad_outcome(case, verdicts, device, "forward_ad tangent"), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_forward_over_reverse_hessian_vector_product(dtype, device, verdict_log, data):
    """With x dual (tangent t), the tangent of grad(f(x).sum(), x, create_graph=True) is H·t."""
    case = data.draw(grad_cases(dtype, second_order(max_depth=2), max_inputs=2), label="case")
    tangents = _tangents(data, case)
    leaves = [leaf.detach().requires_grad_() for leaf in case.make_leaves(device)]
    used = list(case.used)
    with fwAD.dual_level():
        duals = list(leaves)
        for i in used:
            duals[i] = fwAD.make_dual(leaves[i], tensor_of(tangents[i], leaves[i].shape, leaves[i]))
        grads = torch.autograd.grad(run_torch(case.expr, duals).sum(), [leaves[i] for i in used], create_graph=True)
        hvp = [fwAD.unpack_dual(g).tangent for g in grads]
    levels = [[tangents.get(i) for i in range(len(case.shapes))]]
    expected = expected_nested(case, levels, None, point_jets(case, 2, forward_ad=True))
    verdicts = []
    for i, h in zip(used, hvp):
        if h is None:  # no tangent: torch says the gradient does not depend on the inputs
            h = torch.zeros(case.shapes[i], dtype=case.format.torch_dtype)
        verdicts += judge_tensor(case, i, h, case.shapes[i], expected[i].elements, f"H·t for x{i}")
    assert_gradients_match(grad_outcome(case, verdicts, device, "forward-over-reverse H·t"), verdict_log)


# ------------------------------------------------------------------ pinned torch behaviour
def test_maximum_forward_derivative_cancels():
    """derivatives.yaml's forward formula of maximum is other_t + (self > other) * (self_t - other_t): at
    self > other the tangent should be self_t exactly, but the subtraction and addition round. With
    tangents (1e-20, 1), torch 2.13 returns 0. The rounding model replays the formula (the entry's `forward_tangent`),
    so its enclosure holds torch's value -- and excludes the exact 1e-20, which this test shows."""
    case = GradCase(Apply("maximum", (Var(0), Var(1)), 0), ((), ()), ((2.0,), (1.0,)), "float64")
    tangents = {0: (1e-20,), 1: (1.0,)}
    _, tangent, _ = dual_tangent(case, tangents)
    (element,) = expected_jvp(case, point_jets(case, 1, forward_ad=True), tangents)
    assert tangent.item() == 0.0
    assert element.enclosure.contains(arb(0.0)), "the model must enclose torch's formula"
    assert element.exact.contains(arb(1e-20)), "the exact tangent is self_t"


@at_points("self_t=u/4,other_t=1")
def test_maximum_forward_derivative_is_exact(point_dtype):
    """jvp of maximum(2, 1) with tangents (u/4, 1), u the dtype's unit roundoff: exactly u/4 (self wins).
    torch 2.13 computes other_t + (self_t - other_t) = 1 + (-1) = 0 (registered: maximum-jvp-cancels)."""
    dtype = point_dtype[1]
    fmt = format_named(dtype)
    small = fmt.unit_roundoff / 4
    x, y = (torch.tensor(v, dtype=fmt.torch_dtype) for v in (2.0, 1.0))
    with fwAD.dual_level():
        out = torch.maximum(fwAD.make_dual(x, torch.tensor(small, dtype=fmt.torch_dtype)),
                            fwAD.make_dual(y, torch.tensor(1.0, dtype=fmt.torch_dtype)))
        tangent = fwAD.unpack_dual(out).tangent.item()
    assert tangent == small, f"jvp of maximum(2, 1) with tangents ({small}, 1), {dtype}: {tangent}, exact {small}"


@at_points("torch.func.jvp", "torch.func.jacfwd")
def test_func_forward_mode_keeps_the_dtype(point_dtype):
    """The tangent of x + 2.5 for a 0-d x keeps x's dtype, as torch.autograd.forward_ad gives it; torch 2.13's
    torch.func returns float64 for the lower precisions (registered: func-forward-mode-upcast)."""
    api, dtype = point_dtype
    fmt = format_named(dtype)
    x = torch.tensor(1.0, dtype=fmt.torch_dtype)
    with fwAD.dual_level():
        assert fwAD.unpack_dual(fwAD.make_dual(x, torch.ones_like(x)) + 2.5).tangent.dtype == fmt.torch_dtype
    if api == "torch.func.jvp":
        result = tf.jvp(lambda a: a + 2.5, (x,), (torch.ones_like(x),))[1]
    else:
        result = tf.jacfwd(lambda a: (a + 2.5).sin())(x)
    assert result.dtype == fmt.torch_dtype, f"{api} returned {result.dtype} for {dtype}"
