"""Higher derivatives: `create_graph=True` and grad again, against SymPy's exact second
and third derivatives, with torch's own backward formulas differentiated in the rounding model
(oracles.higher.higher_order; torch's side in oracles.higher.nested).

- Hessian-vector products: g = grad(y, xs, U, create_graph=True); h = grad(g, xs, V), for random
  compositions and for every op of SECOND_ORDER_OPS at the root;
- Hessian entries and mixed partials one by one on 0-d inputs: grad(grad(y, x_i, create_graph)[0], x_j);
- third derivatives of polynomials: three nested grads;
- double backward accumulating into `.grad`: backward(create_graph=True), then backward of `.grad`;
- derivatives without grad_fn: the gradient of a linear function is a constant torch computes without a
  graph; asking for its derivative raises, and the oracle agrees it is constant;
- a planted wrong second derivative (first derivative correct) is caught here and only here.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from flint import arb
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH, at_points, scaled
from oracles.core.case import GradCase, numel
from oracles.core.check import check_case, grad_outcome
from oracles.core.expr import Apply, Const, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.core.render import run_torch, torch_source
from oracles.core.verdict import judge
from oracles.faults.derivatives import wrong_second_derivative
from oracles.higher.higher_order import (
    KNOWN_DEVIATION,
    exact_jet,
    model_jet,
    point_jets,
    structurally_zero,
)
from oracles.higher.jets import Jet
from oracles.higher.nested import CREATE_GRAPH_WARNING, check_nested, double_backward_into_grad, hessian_entries
from oracles.numerics.dtypes import format_named
from oracles.numerics.floats import error_in_ulps
from oracles.numerics.rounding import RoundingModel
from oracles.table.ops import OPS
from strategies import grad_cases, polynomials
from strategies.backward import upstream_values
from strategies.higher_order import SECOND_ORDER_OPS, linear_expressions, scalar_cases, second_order


@st.composite
def level_weights(draw, case: GradCase, label: str):
    """Weights (grad_outputs) for one grad call over the previous results: per used input, dyadic values
    over its shape, or None (that result left out); at least one is included."""
    weights = []
    for i, shape in enumerate(case.shapes):
        if i in case.used and draw(st.booleans(), label=f"{label}: include x{i}"):
            weights.append(draw(upstream_values(numel(shape)), label=f"{label}: weights for x{i}"))
        else:
            weights.append(None)
    if all(w is None for w in weights):
        first = case.used[0]
        weights[first] = draw(upstream_values(numel(case.shapes[first])), label=f"{label}: weights for x{first}")
    return weights


def check_hvp(case, upstream, levels, device="cpu", materialize=False, overrides=None) -> Outcome:
    outcome, run = check_nested(case, upstream, levels, device, materialize, overrides)
    if any(run.constant):
        event("a derivative without grad_fn")
    return outcome


# ------------------------------------------------------------------ Hessian-vector products
@FIXTURE_HEALTH
@given(data=st.data())
def test_hessian_vector_products(dtype, device, verdict_log, data):
    """grad(grad(y, xs, U, create_graph=True), xs, V): Σ_p U[p] Σ_i V_i[p] ∂²f(p)/∂x_i∂x_k, summed over the
    points reading each element of x_k. `materialize_grads` or None for inputs torch finds unused."""
    case = data.draw(grad_cases(dtype, second_order(max_depth=2), max_inputs=3), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="U")
    levels = [data.draw(level_weights(case, "V"), label="V")]
    materialize = data.draw(st.booleans(), label="materialize_grads")
    assert_gradients_match(check_hvp(case, upstream, levels, device, materialize), verdict_log)


@pytest.mark.parametrize("op", SECOND_ORDER_OPS)
@scaled(10)
@given(data=st.data())
def test_op_second_derivative(op, dtype, device, verdict_log, data):
    """`op` at the root of a small composition: its double backward against SymPy's second derivative."""
    skip = OPS[op].skip_reason("test_op_second_derivative", dtype)
    if skip:  # most second derivatives unverifiable there: the property would only measure the model's width
        pytest.skip(skip)
    case = data.draw(grad_cases(dtype, second_order(max_depth=1, root=op), max_inputs=2), label="case")
    levels = [data.draw(level_weights(case, "V"), label="V")]
    assert_gradients_match(check_hvp(case, None, levels, device), verdict_log)


# ------------------------------------------------------------------ Hessian entries, mixed partials
@FIXTURE_HEALTH
@given(data=st.data())
def test_hessian_entries_and_mixed_partials(dtype, device, verdict_log, data):
    case = data.draw(scalar_cases(dtype), label="case")
    assert_gradients_match(hessian_entries(case, device), verdict_log)


# ------------------------------------------------------------------ third derivatives
@scaled(20)
@given(data=st.data())
def test_third_derivatives_of_polynomials(dtype, device, verdict_log, data):
    """grad(grad(grad(y, xs, U, create_graph), xs, V, create_graph), xs, W) against SymPy's third
    derivatives of random polynomials (degree ≤ 5: most third derivatives are nonzero, some vanish, and
    torch's second derivative of a quadratic term has no grad_fn)."""
    case = data.draw(grad_cases(dtype, polynomials, max_inputs=3), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="U")
    levels = [data.draw(level_weights(case, "V"), label="V"), data.draw(level_weights(case, "W"), label="W")]
    assert_gradients_match(check_hvp(case, upstream, levels, device), verdict_log)


# ------------------------------------------------------------------ accumulation of double backward
@FIXTURE_HEALTH
@given(data=st.data())
def test_double_backward_accumulates_into_grad(dtype, device, verdict_log, data):
    case = data.draw(grad_cases(dtype, second_order(max_depth=2), max_inputs=3), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="U")
    weights = data.draw(level_weights(case, "V"), label="V")
    assert_gradients_match(double_backward_into_grad(case, upstream, weights, device), verdict_log)


def test_double_backward_accumulates_in_the_same_tensor():
    """Pinned (torch 2.13): after backward(create_graph=True) `.grad` has a grad_fn; a second backward
    through it adds the Hessian-vector product into that same tensor object: x ** 3 at x = [1, 2] gives
    3x² = [3, 12], then [3, 12] + 6x = [9, 24]."""
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CREATE_GRAPH_WARNING)
        (x**3).sum().backward(create_graph=True)
    first = x.grad
    assert first.grad_fn is not None and first.tolist() == [3.0, 12.0]
    x.grad.sum().backward()
    assert x.grad is first and x.grad.tolist() == [9.0, 24.0]


# ------------------------------------------------------------------ derivatives without grad_fn
@FIXTURE_HEALTH
@given(data=st.data())
def test_gradient_of_a_linear_function_has_no_grad_fn(dtypes, device, verdict_log, data):
    """For an affine y, torch computes every gradient without a graph (requires_grad False, grad_fn None);
    differentiating it again raises "does not require grad", with or without allow_unused. The oracle agrees:
    every second derivative is exactly 0. The gradient itself is judged against the oracle."""
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    case = data.draw(grad_cases(dtype, linear_expressions, max_inputs=2), label="case")
    leaves = case.make_leaves(device)
    y = run_torch(case.expr, leaves)
    used = list(case.used)
    grads = torch.autograd.grad(y.sum(), [leaves[i] for i in used], create_graph=True)
    jets = point_jets(case, 2)
    for i, g in zip(used, grads):
        assert g.grad_fn is None and not g.requires_grad, f"∂y/∂x{i} of {torch_source(case.expr)} has a graph"
        assert structurally_zero(case, [[i]], jets) == [], "the oracle says the gradient is not constant"
        with pytest.raises(RuntimeError, match="does not require grad"):
            torch.autograd.grad(g.sum(), leaves[i], allow_unused=True)
    verdicts = judge(case, [None if i not in used else grads[used.index(i)] for i in range(len(case.shapes))],
                     expected_gradients(case))
    assert_gradients_match(grad_outcome(case, verdicts, device, "gradient of a linear function"), verdict_log)


def test_nonlinear_gradient_has_a_grad_fn():
    """The contrast: x * x's gradient 2x depends on x, so it has a grad_fn and differentiates to 2."""
    x = torch.tensor([1.5, -2.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad((x * x).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    (h,) = torch.autograd.grad(g.sum(), x)
    assert h.tolist() == [2.0, 2.0]


# ------------------------------------------------------------------ torch findings
@at_points("a=2,b=0")
def test_pow_mixed_second_derivative(point_dtype):
    """∂²(a ** b)/∂b∂a at a = 2, b = 0 is a^(b-1)(1 + b log a) = 1/2, which the oracle gives; torch 2.13 returns
    0 through grad(grad(y, a), b), but 1/2 through grad(grad(y, b), a) (torch.func.hessian is asymmetric).
    The random properties count such points as registered ("known torch deviation"); findings.toml makes
    this a strict xfail (pow-double-backward-exponent-zero), so a torch that fixes it fails the run and
    pow's entry can lose its `second_order_deviation`."""
    point, dtype = point_dtype
    a_value, b_value = (float(part.split("=")[1]) for part in point.split(","))
    case = GradCase(Apply("pow", (Var(0), Var(1)), 2), ((), ()), ((a_value,), (b_value,)), dtype)
    assert point_jets(case, 2)[()].failure[1].startswith(KNOWN_DEVIATION), "the properties leave it unjudged"
    exact = exact_jet(case.expr, (arb(a_value), arb(b_value)), (0, 1), 2).derivative((0, 1))
    assert exact.contains(0.5) and exact.is_exact()
    a, b = case.make_leaves()
    (gb,) = torch.autograd.grad(a.pow(b), b, create_graph=True)
    assert torch.autograd.grad(gb, a)[0].item() == 0.5, "the other order of differentiation"
    (ga,) = torch.autograd.grad(a.pow(b), a, create_graph=True)
    (mixed,) = torch.autograd.grad(ga, b)
    assert mixed.item() == 0.5, f"torch: ∂²(a ** b)/∂b∂a = {mixed.item()} at a = 2, b = 0 ({dtype}); exact 1/2"


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=25, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)
CAUGHT = (AssertionError, pytest.fail.Exception)
FAULTY_OP, FAULT_SIZE = "sin", 1e-6


def test_wrong_second_derivative_is_caught(device):
    """`sin` whose first derivative is torch's own and whose second derivative is 1e-6 off (relative):
    the first-derivative property still passes on the same cases, the Hessian-vector property fails."""
    overrides = {FAULTY_OP: wrong_second_derivative(FAULTY_OP, FAULT_SIZE)}
    cases = grad_cases("float64", second_order(max_depth=1, root=FAULTY_OP), max_inputs=2)

    @FAULT_RUN
    @given(data=st.data())
    def first_order(data):
        assert_gradients_match(check_case(data.draw(cases, label="case"), device, overrides))

    def second_order_property(overrides):
        @FAULT_RUN
        @given(data=st.data())
        def prop(data):
            case = data.draw(cases, label="case")
            levels = [data.draw(level_weights(case, "V"), label="V")]
            assert_gradients_match(check_hvp(case, None, levels, device, overrides=overrides))

        return prop

    first_order()  # the fault is invisible to first derivatives
    second_order_property(None)()  # and the property holds for torch's own sin
    with pytest.raises(CAUGHT):
        second_order_property(overrides)()


@at_points("x=20")
def test_softplus_second_derivative_at_the_threshold(point_dtype):
    """softplus(x) (beta 1, threshold 20) at x = 20: the forward and the first derivative take the smooth
    branch (x > threshold is false), so the second derivative is σ(20)(1 - σ(20)) = 2.06e-9, the oracle's
    exact value; torch 2.13's softplus_double_backward masks with x < threshold instead and returns 0
    (registered: softplus-double-backward-threshold). float16 holds nothing that small: 0 is right there."""
    dtype = point_dtype[1]
    case = GradCase(Apply("softplus", (Var(0),), 0), ((),), ((20.0,),), dtype)
    exact = exact_jet(case.expr, (arb(20.0),), (0,), 2).derivative((0, 0))
    assert float(exact.mid()) == pytest.approx(2.061153613941849e-09, rel=1e-15, abs=0)
    (x,) = case.make_leaves()
    (g,) = torch.autograd.grad(torch.nn.functional.softplus(x), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    ulps = error_in_ulps(h.item(), float(exact.mid()), case.format)
    assert ulps <= 4, f"softplus'' at 20 ({dtype}): torch {h.item()}, exact {float(exact.mid())} ({ulps:.3g} ulp)"


@at_points("x=1.5")
def test_double_backward_of_abs_is_a_readable_tensor(point_dtype):
    """abs'' = 0 away from 0, and torch gets the value right, but torch 2.13 returns it as an efficient
    ZeroTensor without storage: `.tolist()` and `.numpy()` raise (registered: abs-double-backward-zerotensor;
    the suite reads such results as zeros, oracles.core.verdict.float64_values)."""
    dtype = point_dtype[1]
    x = torch.tensor(1.5, dtype=format_named(dtype).torch_dtype, requires_grad=True)
    (g,) = torch.autograd.grad(x.abs(), x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    assert float(h) == 0.0
    assert not h._is_zerotensor(), "torch returned an efficient ZeroTensor: h.tolist() and h.numpy() raise"


# Second derivatives far out, where the exact value is a normal number of the dtype but a partial product
# torch's double backward forms underflows (the rounding model allows for that, so the random properties
# leave such points unverified; these pin the values). point label -> (op, point, (first, then)): the
# derivative of the first grad's gradient for input `first` with respect to input `then`.
FAR_OUT = {
    "atan@2^300": ("atan", (2.0**300,), (0, 0)),  # (1/d)/d with d = x^2 + 1: 2^-1200
    "atan@2^40": ("atan", (2.0**40,), (0, 0)),
    "asinh@2^400": ("asinh", (2.0**400,), (0, 0)),  # rsqrt(x^2 + 1)^3: 2^-1200
    "asinh@2^56": ("asinh", (2.0**56,), (0, 0)),
    "atan2@2^300,1": ("atan2", (2.0**300, 1.0), (1, 0)),  # ∂/∂y of g_x = -y·recip: -recip + 2y²·recip²
    "atan2@2^40,1": ("atan2", (2.0**40, 1.0), (1, 0)),
}
_WIDE = ("float64",)
_NARROW = ("float64", "float32", "bfloat16")  # float32's range; float16 holds neither point's exact value


@at_points(("atan@2^300", _WIDE), ("atan@2^40", _NARROW), ("asinh@2^400", _WIDE), ("asinh@2^56", _NARROW),
           ("atan2@2^300,1", _WIDE), ("atan2@2^40,1", _NARROW))
def test_second_derivative_far_out(point_dtype):
    """atan'' = -2x/(1 + x²)², asinh'' = -x/(1 + x²)^(3/2) and ∂²atan2(y, x)/∂x∂y = (y² - x²)/(x² + y²)² at
    large arguments: torch 2.13 returns 0 for the first two and the opposite sign for the third where the
    exact value (SymPy) is a normal number (registered: atan-second-derivative-underflow,
    asinh-second-derivative-underflow, atan2-mixed-partial-underflow). float64 at 2^40 and 2^56 is right:
    the same formulas, inside the range."""
    label, dtype = point_dtype
    op, point, (first, then) = FAR_OUT[label]
    case = GradCase(Apply(op, tuple(Var(i) for i in range(len(point))), 0), tuple(() for _ in point),
                    tuple((v,) for v in point), dtype)
    exact = float(exact_jet(case.expr, tuple(arb(v) for v in point), case.used, 2).derivative((first, then)).mid())
    smallest_normal = torch.finfo(case.format.torch_dtype).smallest_normal
    assert abs(exact) >= smallest_normal, f"{label} is outside {dtype}'s normal range"
    leaves = case.make_leaves()
    grads = torch.autograd.grad(run_torch(case.expr, leaves), leaves, create_graph=True)
    (h,) = torch.autograd.grad(grads[first], leaves[then])
    ulps = error_in_ulps(h.item(), exact, case.format)
    assert ulps <= 4, f"{op} second derivative at {label} ({dtype}): torch {h.item()}, exact {exact} ({ulps:.3g} ulp)"


# ------------------------------------------------------------------ the jet model's own enclosures
# Each builds the value torch's formulas give from the formulas themselves (exact arithmetic, or each
# operation rounded to the dtype), never from torch, and asserts the model encloses it.

def test_model_rounds_each_exponent_of_pow_as_torch_does():
    """x ** p differentiated twice is p · fl(p - 1) · x ** fl(fl(p - 1) - 1) (torch rounds each exponent
    to a double); at x = 3.7e118 the second rounding moves the result by 7.6e-14 relative, far beyond a
    few roundings: the model must follow it, and the exact exponents alone miss it."""
    x, p = 3.704115417916011e118, -1 / 3
    p1 = p - 1
    p2 = p1 - 1  # the doubles torch uses
    formula = arb(p) * arb(p1) * arb(x) ** arb(p2)
    model = RoundingModel(format_named("float64"))
    case = GradCase(Apply("pow_scalar", (Var(0), Const(p)), 0), ((),), ((x,),), "float64")
    second = model_jet(case.expr, (arb(x),), (0,), 2, model).derivative((0, 0))
    assert second.overlaps(formula)
    exact_exponents = Jet.variable(arb(x), 0, 1, 2, tracked=True).power(arb(p1))  # (x ** p1)'s jet
    assert not (exact_exponents.derivative((0,)) * arb(p)).overlaps(formula)


def test_model_allows_for_an_underflowed_partial_product():
    """atan'' at 2^300: torch's (1/d)/d (d = x² + 1) is 2^-1200, 0 in float64, so any evaluation of its
    double backward may give 0; the exact value -2^-899 is normal. The model's enclosure holds both, so
    the random properties leave the point unverified instead of judging torch (the finding is pinned)."""
    x = 2.0**300
    case = GradCase(Apply("atan", (Var(0),), 0), ((),), ((x,),), "float64")
    second = model_jet(case.expr, (arb(x),), (0,), 2, RoundingModel(case.format)).derivative((0, 0))
    assert second.contains(0)
    assert second.contains(-arb(2) ** -899 * (1 - arb(2) ** -600) ** 2 / (1 + arb(2) ** -600) ** 2)


def _atan2_mixed_partial_by_route(a: float, b: float, first: int, fmt) -> float:
    """∂²atan2(a, b)/∂a∂b as torch's double backward forms it, every operation rounded to `fmt`: the
    gradient for input `first` from atan2_backward (recip = 1/(a² + b²); g_a = b·recip, g_b = -a·recip),
    then differentiated with respect to the other input (reciprocal's backward: -w·recip·recip)."""
    r = fmt.round
    recip = r(1 / r(r(a * a) + r(b * b)))
    recip2 = r(recip * recip)
    if first == 1:  # ∂/∂a of g_b = -a·recip: -recip + (-a)·(-recip²)·2a
        through = r(r(-a * -recip2) * a)
        return r(-recip + r(through + through))
    through = r(r(b * -recip2) * b)  # ∂/∂b of g_a = b·recip: recip + b·(-recip²)·2b
    return r(recip + r(through + through))


@scaled(40)
@given(a=st.one_of(st.floats(0.25, 3), st.floats(-3, -0.25)), b=st.floats(-3, 3),  # a != 0; no float16 overflow
       dtype=st.sampled_from(["float64", "float32", "bfloat16", "float16"]))
def test_model_encloses_each_route_of_a_mixed_partial(a, b, dtype):
    """atan2's two routes to ∂²/∂a∂b share a value and not their terms (-recip + 2a²recip² and
    recip - 2b²recip², different roundings): the route model of nested grads encloses its own route, the
    model of unknown order both."""
    fmt = format_named(dtype)
    a, b = fmt.round(a), fmt.round(b)
    case = GradCase(Apply("atan2", (Var(0), Var(1)), 0), ((), ()), ((a,), (b,)), dtype)
    (jets,) = point_jets(case, 2, routes=True).values()
    for first in (0, 1):
        value = _atan2_mixed_partial_by_route(a, b, first, fmt)
        assert jets.model_from(first).derivative((0, 1)).contains(value), (first, value)
        assert jets.model.derivative((0, 1)).contains(value), (first, value)


@pytest.mark.parametrize("a, dtype_name", [(2.0**40, "float32"), (2.0**300, "float64")],
                         ids=["2pow40-float32", "2pow300-float64"])
def test_route_model_follows_an_underflow_on_its_route(a, dtype_name):
    """At (a, 1) far out, recip·recip underflows on the route through g_b only, which gives -recip: the
    sign of atan2-mixed-partial-underflow, reproduced by rounding the formula. The route's model holds it,
    the other route's does not (the model took one route for both before)."""
    fmt = format_named(dtype_name)
    case = GradCase(Apply("atan2", (Var(0), Var(1)), 0), ((), ()), ((a,), (1.0,)), dtype_name)
    (jets,) = point_jets(case, 2, routes=True).values()
    value = _atan2_mixed_partial_by_route(a, 1.0, 1, fmt)
    assert value < 0 < float(exact_jet(case.expr, (arb(a), arb(1.0)), (0, 1), 2).derivative((0, 1)).mid())
    assert jets.model_from(1).derivative((0, 1)).contains(value)
    assert not jets.model_from(0).derivative((0, 1)).contains(value)
