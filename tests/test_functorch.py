"""torch.func and torch.autograd.functional against the exact oracle.

The same random compositions as the rest of the suite, as functions of their inputs:
- `grad`, `vjp`: the first-order oracle (Σ_p V[p] ∂f(p)/∂x, summed over broadcasting);
- `jvp`: J·t at every output point, forward-mode model (derivatives.yaml's forward formulas);
- `jacrev`, `jacfwd`: every entry of ∂f/∂x_i, exactly 0 off the broadcast's diagonal;
- `hessian` (= jacfwd(jacrev)) of Σ f, and `jvp` of `grad` (forward-over-reverse HVP), `jvp` of `jvp`
  (a directional second derivative): SymPy's second derivatives;
- `vmap(grad)`: per-sample gradients, batched inputs and a shared (unbatched) one;
- torch.autograd.functional.jvp (the double-backward trick), hvp and hessian (reverse-over-reverse).
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.functional as taf
import torch.func as tf
from hypothesis import event, given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import FIXTURE_HEALTH, scaled
from oracles.core.case import GradCase, all_indices, numel
from oracles.core.check import grad_outcome
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import assert_gradients_match
from oracles.core.pinning import single_op_case
from oracles.higher.functional import (
    as_function,
    expected_hessian_block,
    expected_jacobian,
    expected_jvp,
    forward_ad_may_upcast,
    judge_tensor,
    source,
    tensor_of,
)
from oracles.higher.higher_order import expected_nested, expected_terms, point_jets
from oracles.table.ops import OPS
from strategies import grad_cases
from strategies.backward import upstream_values
from strategies.higher_order import SECOND_ORDER_OPS, second_order
from strategies.shapes import MAX_SIDE

# torch.func's forward AD calls a torch.jit.script-decorated helper on first use (torch 2.13).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


# The costliest APIs (whole Jacobians and Hessians, nested forward mode: many jets per example) could run
# fewer of the ci profile's examples, scaled with the active profile; since strategies are built once
# (strategies/cached.py) CI affords them all.
HEAVY_EXAMPLES = 40


# the ops vmap batches itself under jacfwd and hessian: those it refuses are left out there
BATCHED_FORWARD_OPS = [op for op in SECOND_ORDER_OPS if not OPS[op].vmap_refusal]


def cases(dtype: str, max_depth: int = 2, max_inputs: int = 3, batched_forward: bool = False):
    ops = BATCHED_FORWARD_OPS if batched_forward else SECOND_ORDER_OPS
    return grad_cases(dtype, second_order(max_depth=max_depth, ops=ops), max_inputs=max_inputs)


def _upcast(case: GradCase, result: torch.Tensor) -> bool:
    """The known float64 upcast of torch.func's forward mode (oracles.higher.functional), recorded as an event."""
    if forward_ad_may_upcast(case, result) and result.dtype == torch.float64:
        event("known torch deviation: forward-mode tangent upcast to float64 (pytorch#90065)")
        return True
    return False


def _tangents(data, case: GradCase, label: str = "t") -> dict[int, tuple[float, ...]]:
    return {i: data.draw(upstream_values(numel(case.shapes[i])), label=f"{label} for x{i}") for i in case.used}


# ------------------------------------------------------------------ first order
@FIXTURE_HEALTH
@given(data=st.data())
def test_func_grad(dtype, device, verdict_log, data):
    """torch.func.grad(lambda *xs: f(*xs).sum(), argnums=all) is the `.grad` of y.sum().backward()."""
    case = data.draw(cases(dtype), label="case")
    f, xs = as_function(case, device)
    grads = tf.grad(lambda *a: f(*a).sum(), argnums=tuple(range(len(xs))))(*xs)
    expected = expected_gradients(case)
    verdicts = []
    for i, g in zip(case.used, grads):
        verdicts += judge_tensor(case, i, g, case.shapes[i], expected[i].elements, f"grad wrt x{i}")
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.func.grad"), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_func_vjp(dtype, device, verdict_log, data):
    """torch.func.vjp(f, *xs)[1](V): the VJP Σ_p V[p] ∂f(p)/∂x_i."""
    case = data.draw(cases(dtype), label="case")
    upstream = data.draw(upstream_values(numel(case.output_shape)), label="V")
    f, xs = as_function(case, device)
    out, vjp_fn = tf.vjp(f, *xs)
    grads = vjp_fn(tensor_of(upstream, out.shape, out))
    expected = expected_gradients(case, upstream)
    verdicts = []
    for i, g in zip(case.used, grads):
        verdicts += judge_tensor(case, i, g, case.shapes[i], expected[i].elements, f"vjp wrt x{i}")
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.func.vjp"), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_func_jvp(dtype, device, verdict_log, data):
    """torch.func.jvp(f, xs, ts)[1] = J·t, Σ_i t_i[src_i(p)] ∂f(p)/∂x_i at every output point."""
    case = data.draw(cases(dtype), label="case")
    tangents = _tangents(data, case)
    f, xs = as_function(case, device)
    _, tangent_out = tf.jvp(f, tuple(xs), tuple(tensor_of(tangents[i], x.shape, x) for i, x in zip(case.used, xs)))
    expected = expected_jvp(case, point_jets(case, 1, forward_ad=True), tangents)
    verdicts = judge_tensor(case, -1, tangent_out, case.output_shape, expected, "jvp", _upcast(case, tangent_out))
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.func.jvp"), verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_autograd_functional_jvp(dtype, device, verdict_log, data):
    """torch.autograd.functional.jvp computes J·t by the double-backward trick (reverse over reverse)."""
    case = data.draw(cases(dtype), label="case")
    tangents = _tangents(data, case)
    f, xs = as_function(case, device)
    _, tangent_out = taf.jvp(f, tuple(xs), tuple(tensor_of(tangents[i], x.shape, x) for i, x in zip(case.used, xs)))
    expected = expected_jvp(case, point_jets(case, 1), tangents)
    verdicts = judge_tensor(case, -1, tangent_out, case.output_shape, expected, "jvp")
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.autograd.functional.jvp"), verdict_log)


@pytest.mark.parametrize("mode", ["jacrev", "jacfwd"])
@scaled(HEAVY_EXAMPLES)
@given(data=st.data())
def test_func_jacobian(mode, dtype, device, verdict_log, data):
    """jacrev/jacfwd(f, argnums=all): block i has shape out + shape of x_i; exact 0 off the diagonal."""
    case = data.draw(cases(dtype, batched_forward=mode == "jacfwd"), label="case")
    f, xs = as_function(case, device)
    jacobian = getattr(tf, mode)(f, argnums=tuple(range(len(xs))))(*xs)
    jets = point_jets(case, 1, forward_ad=mode == "jacfwd")
    verdicts = []
    for i, block in zip(case.used, jacobian):
        verdicts += judge_tensor(case, i, block, case.output_shape + case.shapes[i], expected_jacobian(case, jets, i),
                                 f"{mode} block for x{i}", mode == "jacfwd" and _upcast(case, block))
    assert_gradients_match(grad_outcome(case, verdicts, device, f"torch.func.{mode}"), verdict_log)


# ------------------------------------------------------------------ second order
@scaled(HEAVY_EXAMPLES)
@given(data=st.data())
def test_func_hessian(dtype, device, verdict_log, data):
    """torch.func.hessian(lambda *xs: f(*xs).sum(), argnums=all): every block against SymPy's second
    derivatives summed over the points reading both elements (exact 0 where none does)."""
    case = data.draw(cases(dtype, max_inputs=2, batched_forward=True), label="case")
    f, xs = as_function(case, device)
    hessian = tf.hessian(lambda *a: f(*a).sum(), argnums=tuple(range(len(xs))))(*xs)
    jets = point_jets(case, 2, forward_ad=True)
    verdicts = []
    for a, i in enumerate(case.used):
        for b, j in enumerate(case.used):
            verdicts += judge_tensor(case, i, hessian[a][b], case.shapes[i] + case.shapes[j],
                                     expected_hessian_block(case, jets, i, j), f"hessian block ({i}, {j})",
                                     _upcast(case, hessian[a][b]))
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.func.hessian"), verdict_log)


@scaled(HEAVY_EXAMPLES)
@given(data=st.data())
def test_autograd_functional_hessian(dtype, device, verdict_log, data):
    """torch.autograd.functional.hessian (reverse over reverse), the same blocks."""
    case = data.draw(cases(dtype, max_inputs=2), label="case")
    f, xs = as_function(case, device)
    hessian = taf.hessian(lambda *a: f(*a).sum(), tuple(xs))
    jets = point_jets(case, 2)
    verdicts = []
    for a, i in enumerate(case.used):
        for b, j in enumerate(case.used):
            verdicts += judge_tensor(case, i, hessian[a][b], case.shapes[i] + case.shapes[j],
                                     expected_hessian_block(case, jets, i, j), f"hessian block ({i}, {j})")
    assert_gradients_match(grad_outcome(case, verdicts, device, "torch.autograd.functional.hessian"), verdict_log)


@pytest.mark.parametrize("mode", ["jvp(grad)", "autograd.functional.hvp"])
@scaled(HEAVY_EXAMPLES)
@given(data=st.data())
def test_hessian_vector_product(mode, dtype, device, verdict_log, data):
    """H·v of Σ f: forward-over-reverse (torch.func.jvp of torch.func.grad) and the double-backward
    torch.autograd.functional.hvp, against the nested-grad oracle with U = 1, V = v."""
    case = data.draw(cases(dtype), label="case")
    v = _tangents(data, case, "v")
    f, xs = as_function(case, device)
    vs = tuple(tensor_of(v[i], x.shape, x) for i, x in zip(case.used, xs))
    total = lambda *a: f(*a).sum()  # noqa: E731
    if mode == "jvp(grad)":
        _, result = tf.jvp(tf.grad(total, argnums=tuple(range(len(xs)))), tuple(xs), vs)
    else:
        _, result = taf.hvp(total, tuple(xs), vs)
    levels = [[v.get(i) for i in range(len(case.shapes))]]
    expected = expected_nested(case, levels, None, point_jets(case, 2, forward_ad=mode == "jvp(grad)"))
    verdicts = []
    for i, r in zip(case.used, result):
        verdicts += judge_tensor(case, i, r, case.shapes[i], expected[i].elements, f"H·v for x{i}",
                                 mode == "jvp(grad)" and _upcast(case, r))
    assert_gradients_match(grad_outcome(case, verdicts, device, mode), verdict_log)


@scaled(HEAVY_EXAMPLES)
@given(data=st.data())
def test_jvp_of_jvp(dtype, device, verdict_log, data):
    """torch.func.jvp(lambda *xs: jvp(f, xs, s)[1], xs, t)[1]: the directional second derivative
    Σ_ij s_i t_j ∂²f(p)/∂x_i∂x_j at every output point (forward over forward)."""
    case = data.draw(cases(dtype), label="case")
    s, t = _tangents(data, case, "s"), _tangents(data, case, "t")
    f, xs = as_function(case, device)
    ss = tuple(tensor_of(s[i], x.shape, x) for i, x in zip(case.used, xs))
    ts = tuple(tensor_of(t[i], x.shape, x) for i, x in zip(case.used, xs))
    _, result = tf.jvp(lambda *a: tf.jvp(f, a, ss)[1], tuple(xs), ts)
    jets = point_jets(case, 2, forward_ad=True)
    expected = [expected_terms(case, jets, [(p, (i, j), s[i][source(case, i, p)] * t[j][source(case, j, p)])
                                            for i in case.used for j in case.used], f"d²f at {list(p)}")
                for p in all_indices(case.output_shape)]
    verdicts = judge_tensor(case, -1, result, case.output_shape, expected, "jvp of jvp", _upcast(case, result))
    assert_gradients_match(grad_outcome(case, verdicts, device, "jvp of jvp"), verdict_log)


# ------------------------------------------------------------------ vmap
@st.composite
def batched_cases(draw, dtype: str):
    """A case whose inputs share a leading batch dimension B, except possibly one shared (unbatched) input:
    vmap maps over the batched ones (in_dims 0) and passes the shared one whole (in_dims None)."""
    per_sample = draw(cases(dtype), label="per-sample case")
    batch = draw(st.integers(1, MAX_SIDE), label="batch size")
    shared = draw(st.sampled_from([None, *per_sample.used]), label="shared input") if len(per_sample.used) > 1 else None
    from oracles.numerics.dtypes import format_named
    from strategies.values import leaf_value_lists

    fmt = format_named(dtype)
    shapes, values = [], []
    for i, shape in enumerate(per_sample.shapes):
        full = shape if i == shared else (batch,) + shape
        shapes.append(full)
        values.append(tuple(draw(leaf_value_lists(fmt, numel(full)),
                                 label=f"x{i} values")))
    return GradCase(per_sample.expr, tuple(shapes), tuple(values), dtype), per_sample, shared, batch


@FIXTURE_HEALTH
@given(data=st.data())
def test_vmap_grad(dtype, device, verdict_log, data):
    """vmap(grad(lambda *xs: f(*xs).sum()), in_dims=...) gives each sample's gradient: sample b's is the
    first-order oracle of the case made of that sample's slices (and the shared input whole)."""
    batched, per_sample, shared, batch = data.draw(batched_cases(dtype), label="batched case")
    f, xs = as_function(batched, device)
    used = list(batched.used)
    in_dims = tuple(None if i == shared else 0 for i in used)
    grads = tf.vmap(tf.grad(lambda *a: f(*a).sum(), argnums=tuple(range(len(xs)))), in_dims=in_dims)(*xs)
    verdicts = []
    for b in range(batch):
        sizes = [numel(shape) for shape in per_sample.shapes]
        values = tuple(vals if i == shared else vals[b * sizes[i]:(b + 1) * sizes[i]]
                       for i, vals in enumerate(batched.values))
        sample = GradCase(per_sample.expr, per_sample.shapes, values, dtype)
        expected = expected_gradients(sample)
        for i, g in zip(used, grads):
            verdicts += judge_tensor(sample, i, g[b], per_sample.shapes[i], expected[i].elements,
                                     f"per-sample grad {b} wrt x{i}")
    assert_gradients_match(grad_outcome(batched, verdicts, device, "vmap(grad)"), verdict_log)


@pytest.mark.parametrize("op", [name for name, spec in OPS.items() if spec.vmap_refusal])
def test_vmap_still_refuses_the_ops_whose_entry_says_so(op):
    """An entry's `vmap_refusal` keeps the op out of jacfwd and hessian: while torch still refuses it. A torch
    that batches the op fails here, and the entry can lose the refusal."""
    at = (0.5,) + (OPS[op].parameters[0] if OPS[op].parameters else ())
    f, xs = as_function(single_op_case(op, at, "float64"))
    with pytest.raises(RuntimeError, match="vmap"):
        tf.jacfwd(f)(*xs)
