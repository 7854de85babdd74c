"""Non-diagonal Jacobians: reductions, cumulative ops, softmax, matmul and views, composed
with the elementwise expressions, against SymPy's exact Jacobian of per-element symbols.

- every tensor op at the root of a program, with and without `gradient=` (oracles.tensor.oracle);
- random two-stage programs (elementwise -> tensor op -> elementwise -> tensor op);
- torch.func.jacrev of programs: the whole Jacobian, row by row;
- the chained exact VJP equals the Jacobian SymPy takes of the whole program at once;
- pinned cases worked by hand: prod and cumprod with zeros, amax with ties, the norm at 0, repeated indices;
- the rendered source is the program that runs; a reduction whose backward broadcasts along the wrong
  axis is caught.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy
import torch
from flint import arb
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from gradoracle.check_function import DEFAULT_ERROR_FACTOR
from gradoracle.pytest_plugin import FIXTURE_HEALTH, scaled
from oracles.core.expected import ExpectedElement, Status
from oracles.core.expr import Apply, Var
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.core.verdict import ElementVerdict, Verdict, judge_element
from oracles.faults.derivatives import planted_tensor_backward_error, reduction_backward_on_wrong_axis
from oracles.numerics.dtypes import format_named
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import RoundingModel, Singular
from oracles.reports import findings
from oracles.table import (
    attention_ops,
    batch_norm_ops,
    cast_ops,
    cdist_ops,
    chunked_linear_loss_ops,
    complex_ops,
    cov_ops,
    ctc_ops,
    dropout_ops,
    float_power_ops,
    gradient_ops,
    grid_sample_ops,
    inf_norm_ops,
    linalg_ops,
    linear_loss_ops,
    loss_ops,
    normalization_ops,
    pdist_ops,
    polar_ops,
    prelu_ops,
    renorm_ops,
    sample_losses,
    softmax_internals,
    spectra,
)
from oracles.table.shape_ops import Indices
from oracles.table.tensor_ops import (
    TENSOR_OPS,
    CallParams,
    IndexParams,
    OpParams,
    OptionSpace,
    ReductionParams,
    ScanParams,
    ShapeParams,
)
from oracles.tensor.check import check_tensor_case, tensor_reproducer
from oracles.tensor.forward import expected_jvp, in_output_dtype, jacobian_rows
from oracles.tensor.oracle import exact_vjp, expected_tensor_gradients, program_sympy
from oracles.tensor.program import Input, Map, Tensor, TensorCase, run_program
from strategies.backward import upstream_values
from strategies.expressions import compositions
from strategies.tensor_params import op_params
from strategies.tensor_programs import tangents_for, tensor_cases
from strategies.values import leaf_value_lists

REGISTRY = findings.load()
FORWARD_FINDINGS = findings.findings_of_mode(REGISTRY, "forward")
# a few examples per op and dtype: each draws every magnitude afresh, and the ops are many
WHOLE_RANGE_EXAMPLES = 4
# forward mode: a few examples per op, the dtype drawn per example (each needs the whole Jacobian)
JVP_EXAMPLES = 3


def check(case: TensorCase, device: str, verdict_log, overrides=None):
    """The case judged, an element inside a registered finding's magnitudes counted as that finding (the random
    programs draw subnormal inputs too: polar's abs of 5e-324)."""
    __tracebackhide__ = True
    outcome = findings.excuse_registered_magnitudes(check_tensor_case(case, device, overrides), REGISTRY)
    assert_gradients_match(outcome, verdict_log)


# ------------------------------------------------------------------ random programs
@pytest.mark.parametrize("op", list(TENSOR_OPS))
@scaled(10)
@given(data=st.data())
def test_tensor_op_gradient(op, dtype, device, verdict_log, data):
    """`op` on elementwise compositions of the inputs (or the inputs themselves), maybe followed by an
    elementwise map and a second tensor op; `y.sum().backward()` or `y.backward(gradient=...)`."""
    supported = TENSOR_OPS[op].cpu_dtypes
    if device == "cpu" and supported is not None and dtype not in supported:
        pytest.skip(f"torch {torch.__version__} has no {dtype} kernel for {op} on the CPU")
    if device != "cpu" and TENSOR_OPS[op].seeded:
        pytest.skip(f"{op}'s noise is reproduced from torch's CPU generator only")
    check(data.draw(tensor_cases(dtype, root=op), label="case"), device, verdict_log)


@pytest.mark.parametrize("op", list(TENSOR_OPS))
@pytest.mark.unverified_by_design(
    "half of a dtype's binades lie where a square overflows or underflows: there the rounding model cannot "
    "bound torch's sums of squares, products and pivots, so elements are unverified with that reason, per op in "
    "the run report")
@scaled(WHOLE_RANGE_EXAMPLES)
@given(data=st.data())
def test_tensor_op_whole_domain(op, dtype, device, verdict_log, data):
    """`op` applied to its inputs themselves, their values over the dtype's whole range of magnitudes
    (strategies/tensor_whole_domain.py); the run report records the binades shown."""
    supported = TENSOR_OPS[op].cpu_dtypes
    if device == "cpu" and supported is not None and dtype not in supported:
        pytest.skip(f"torch {torch.__version__} has no {dtype} kernel for {op} on the CPU")
    if device != "cpu" and TENSOR_OPS[op].seeded:
        pytest.skip(f"{op}'s noise is reproduced from torch's CPU generator only")
    case = data.draw(tensor_cases(dtype, root=op, stages=1, whole_range=True), label="case")
    verdict_log.show(case, ((),) * len(case.shapes))
    outcome = findings.excuse_registered_magnitudes(check_tensor_case(case, device), REGISTRY)
    assert_gradients_match(outcome, verdict_log)


@FIXTURE_HEALTH
@given(data=st.data())
def test_tensor_program_gradient(dtype, device, verdict_log, data):
    """Any first-stage op, any second stage: non-diagonal Jacobians chained through each other."""
    check(data.draw(tensor_cases(dtype), label="case"), device, verdict_log)


def _function_of_used_inputs(case: TensorCase, device: str):
    """The program as a function of its used inputs (the others held), and those inputs: torch.func's view."""
    used = list(case.used)
    leaves = [leaf.detach() for leaf in case.make_leaves(device)]

    def f(*xs):
        full = list(leaves)
        for i, x in zip(used, xs):
            full[i] = x
        return run_program(case.program, full)

    return f, [leaves[i] for i in used]


@scaled(20)
@given(data=st.data())
def test_jacrev_of_tensor_programs(dtype, device, verdict_log, data):
    """torch.func.jacrev: J[o, a] for every output o and input element a, each row the exact VJP with a
    one-hot gradient (and its enclosure: jacrev runs the same backward formulas, batched)."""
    import torch.func as tf

    case = data.draw(tensor_cases(dtype, upstream=False), label="case")
    used = list(case.used)
    f, primals = _function_of_used_inputs(case, device)
    jacobians = tf.jacrev(f, argnums=tuple(range(len(used))))(*primals)
    out_shape, n_out = case.output_shape, int(np.prod(case.output_shape, dtype=int))
    verdicts = []
    rows = jacobian_rows(case)
    for k, i in enumerate(used):
        jac = jacobians[k]
        expected_shape = out_shape + case.shapes[i]
        if tuple(jac.shape) != expected_shape or jac.dtype != case.format.torch_dtype:
            reason = (f"jacrev wrt x{i} has shape {tuple(jac.shape)} and dtype {jac.dtype}, expected "
                      f"{expected_shape} and {case.format.torch_dtype}")
            verdicts.append(ElementVerdict(i, (), Verdict.WRONG, reason=reason))
            continue
        values = jac.detach().to("cpu", torch.float64).reshape(n_out, -1).tolist()
        for o in range(n_out):
            for a, element in enumerate(rows[o][i].elements):
                verdicts.append(judge_element(i, (o, a), values[o][a], element, case.format))
    assert_gradients_match(Outcome(case, verdicts, device, call="torch.func.jacrev (index: [output, element])"),
                           verdict_log)


@pytest.mark.parametrize("op", list(TENSOR_OPS))
@scaled(JVP_EXAMPLES)
@given(data=st.data())
def test_tensor_op_jvp(op, dtypes, device, verdict_log, data):
    """torch.func.jvp of `op` on elementwise compositions of its inputs: J·t for drawn tangents (inside each matrix
    domain's set), against the exact Jacobian, torch's forward formulas allowed the foreign-code bound
    (oracles.tensor.forward). The dtype is drawn per example from the run's."""
    import torch.func as tf

    entry, finding = TENSOR_OPS[op], FORWARD_FINDINGS.get(op)
    if finding is not None:
        pytest.skip(f"torch's forward mode of {op}: registered finding {finding.id} (pinned by its own tests)")
    if not entry.torch_func:
        pytest.skip(f"torch.func refuses {op} by design")
    runs = [d for d in dtypes if device != "cpu" or entry.cpu_dtypes is None or d in entry.cpu_dtypes]
    if not runs or entry.seeded:
        pytest.skip(f"{op} runs in none of the dtypes {dtypes} on {device}, or draws noise forward mode redraws")
    dtype = data.draw(st.sampled_from(runs), label="dtype")
    case = data.draw(tensor_cases(dtype, root=op, stages=1, upstream=False), label="case")
    tangents = data.draw(tangents_for(case), label="tangents")
    f, primals = _function_of_used_inputs(case, device)
    primal_out, tangent_out = tf.jvp(f, tuple(primals), tuple(
        torch.tensor(tangents[i], dtype=torch.float64).reshape(case.shapes[i]).to(p)
        for i, p in zip(case.used, primals)))
    if tuple(tangent_out.shape) != case.output_shape or tangent_out.dtype != primal_out.dtype:
        verdicts = [ElementVerdict(-1, (), Verdict.WRONG, reason=(
            f"jvp has shape {tuple(tangent_out.shape)} and dtype {tangent_out.dtype}, the output "
            f"{case.output_shape} and {primal_out.dtype}"))]
    else:
        out_dtype = str(primal_out.dtype).removeprefix("torch.")
        fmt = format_named(out_dtype)
        rows_case = in_output_dtype(case, out_dtype)
        expected = expected_jvp(rows_case, jacobian_rows(rows_case), tangents, DEFAULT_ERROR_FACTOR)
        values = tangent_out.detach().to("cpu", torch.float64).reshape(-1).tolist()
        verdicts = [judge_element(-1, (o,), v, e, fmt) for o, (v, e) in enumerate(zip(values, expected))]
    assert_gradients_match(Outcome(case, verdicts, device, call=f"torch.func.jvp, tangents {tangents}"),
                           verdict_log)


# ------------------------------------------------------------------ the exact side checks itself
@scaled(15)
@given(data=st.data())
def test_chained_exact_vjp_is_sympys_whole_program_jacobian(data):
    """The exact VJP (per-op Jacobians chained in arb) equals uᵀ J with J = SymPy's Jacobian of the whole
    program in per-element symbols (sympy.Matrix.jacobian), at the exact inputs."""
    case = data.draw(tensor_cases("float64", stages=2), label="case")
    out, symbols = program_sympy(case)
    flat_out = [sympy.sympify(e) for e in out.reshape(-1)]
    upstream = case.upstream or (1.0,) * len(flat_out)
    loss = sympy.Add(*(sympy.Rational(u) * e for u, e in zip(upstream, flat_out)))
    jacobian = sympy.Matrix([loss]).jacobian(symbols)
    env = tuple(arb(v) for values in case.values for v in values)
    try:
        exact = exact_vjp(case)
        whole = [compile_sympy(jacobian[0, j])(env) for j in range(len(symbols))]
    except Singular as exc:  # a tie or a zero norm: SymPy's Jacobian does not exist there
        event(f"singular: {exc}")
        return
    offset = 0
    for i, shape in enumerate(case.shapes):
        size = int(np.prod(shape, dtype=int))
        for a, index in enumerate(np.ndindex(*shape)):
            expected = whole[offset + a]
            if i in exact:
                assert exact[i][index].overlaps(expected), (
                    f"x{i}{list(index)}: chained {exact[i][index].str(15)}, SymPy {expected.str(15)} for {case.source}")
            else:
                assert expected.contains(0), f"x{i} unused but SymPy's derivative is {expected.str(10)}"
        offset += size


@scaled(20)
@given(data=st.data())
def test_rendered_source_is_the_program(data):
    """The source a failure report prints computes exactly what the suite ran (same values, bit for bit)."""
    case = data.draw(tensor_cases("float64", upstream=False), label="case")
    leaves = case.make_leaves()
    names = {f"x{i}": leaf for i, leaf in enumerate(leaves)} | {"torch": torch}
    from_source = eval(compile(case.source, "<program>", "eval"), {}, names)  # our own generated text
    assert torch.equal(from_source, run_program(case.program, leaves)), case.source


# Small shapes of every rank a shape op is drawn with: sizes 1 (squeezable) to 3, for the exhaustive checks.
SMALL_SHAPES = {1: [(1,), (3,)], 2: [(2, 3), (3, 1)], 3: [(2, 1, 3), (3, 2, 2)]}


def _listed(op) -> list[tuple[tuple[tuple[int, ...], ...], OpParams]]:
    """(argument shapes, parameters) of a shape op (OptionSpace): every listed parameter set of small shapes."""
    return [(shapes, p) for rank in op.ranks for shape in SMALL_SHAPES[rank] for shapes in op.argument_shapes(shape)
            for p in op.space.options(shapes)]


def test_every_spelling_is_reachable():
    """Each spelling of each tensor op applies to some parameters of a small shape (none is dead)."""
    shapes = {1: [((3,),), ((2, 3),), ((1, 3),)], 2: [((2, 3), (3, 2)), ((2, 3), (3,)), ((3,), (3, 2)), ((3,), (3,))]}
    for name, op in TENSOR_OPS.items():
        reached = set()
        if isinstance(op.space, OptionSpace):
            for arg_shapes, p in _listed(op):
                reached.update(op.spellings_for(arg_shapes, p))
        else:
            for arg_shapes in shapes[op.arity]:
                for example in _params_examples(op, arg_shapes):
                    reached.update(op.spellings_for(arg_shapes, example))
        assert reached == set(range(len(op.spellings))), f"{name}: spellings {set(range(len(op.spellings))) - reached}"


# Tensor ops that list their parameters but whose forward rounds: tests/test_loss_ops.py checks it lies in the
# model's enclosure (linear algebra, on matrices drawn for it, tests/test_linalg_ops.py).
ROUNDING_FORWARD = (loss_ops.NAMES + sample_losses.NAMES + normalization_ops.NAMES + batch_norm_ops.NAMES
                    + renorm_ops.NAMES + pdist_ops.NAMES + prelu_ops.NAMES + polar_ops.NAMES
                    + attention_ops.NAMES + grid_sample_ops.NAMES + linear_loss_ops.NAMES
                    + chunked_linear_loss_ops.NAMES + cast_ops.NAMES + complex_ops.NAMES + float_power_ops.NAMES
                    + dropout_ops.NAMES + softmax_internals.NAMES + ctc_ops.NAMES
                    + cdist_ops.NAMES + cov_ops.NAMES + inf_norm_ops.NAMES + gradient_ops.NAMES)
# The ops whose forward is an index map (gathering ops, contractions).
INDEX_MAPS = [name for name, op in TENSOR_OPS.items() if isinstance(op.space, OptionSpace)
              and name not in ROUNDING_FORWARD + linalg_ops.NAMES + spectra.NAMES + cov_ops.WEIGHTED]


def assert_spellings_inside_the_model(entry, shapes, p, tensors, model, dtype: str) -> int:
    """Every spelling of `entry` that applies, and its rendered source, give torch's same result, which lies in
    the model's forward enclosure `model` (an array of balls) element by element. Returns how many were checked."""
    names = {f"x{i}": t for i, t in enumerate(tensors)} | {"torch": torch}
    spellings = entry.spellings_for(shapes, p)
    for k in spellings:
        spelling = entry.spellings[k]
        text = spelling.render([f"x{i}" for i in range(entry.arity)], p)
        got = spelling.call(tensors, p)
        assert torch.equal(got, eval(text, {}, names)), text  # our own generated text
        assert tuple(got.shape) == model.shape, f"{text}: shape {tuple(got.shape)}, model {model.shape}"
        for index in np.ndindex(*model.shape):
            value = got[index].item()
            assert model[index].contains(arb(value)), (
                f"{text} for {[t.tolist() for t in tensors]} ({dtype}): torch {value!r} outside the model's "
                f"{model[index].str(10)} at {list(index)}")
    return len(spellings)


@pytest.mark.parametrize("op", INDEX_MAPS)
def test_shape_op_is_torchs_op(op):
    """A shape op's index map is torch's op: for every listed parameter set of small shapes and every
    spelling, torch's result on distinct values is the map's (same shape, same elements: in the rounding
    model's enclosure of the map's value, which for a copy is the element itself), and the rendered source
    computes the same."""
    entry = TENSOR_OPS[op]
    F = RoundingModel(format_named("float64"))
    listed = _listed(entry)
    assert listed, f"{op}: no parameters for any small shape of ranks {entry.ranks}"
    for arg_shapes, p in listed:
        tensors, arrays, first = [], [], 0
        for shape in arg_shapes:
            size = int(np.prod(shape, dtype=int))
            tensors.append(torch.arange(first + 1.0, first + size + 1.0, dtype=torch.float64).reshape(shape))
            arrays.append(np.array([arb(v) for v in range(first + 1, first + size + 1)], dtype=object).reshape(shape))
            first += size
        mapped = np.asarray(entry.forward(F, arrays, p), dtype=object)
        expected = mapped.reshape(-1)
        names = {f"x{i}": t for i, t in enumerate(tensors)} | {"torch": torch}
        for k in entry.spellings_for(arg_shapes, p):
            spelling = entry.spellings[k]
            text = spelling.render([f"x{i}" for i in range(entry.arity)], p)
            for got in (spelling.call(tensors, p), eval(text, {}, names)):  # our own generated text
                assert tuple(got.shape) == mapped.shape and all(
                    e.contains(arb(v)) for e, v in zip(expected, got.reshape(-1).tolist())), (
                    f"{text} with shapes {arg_shapes}: torch gives {got.tolist()}, "
                    f"the index map {np.reshape([e.str(5) for e in expected], mapped.shape).tolist()}")


def test_opinfo_names_are_torchs():
    """Each entry's `opinfo` names an OpInfo of torch's op_db (name[variant]) that supports autograd in
    float64, so a coverage report can line the table up with torch's own test matrix."""
    from torch.testing._internal.common_methods_invocations import op_db

    known = {o.name + (f"[{o.variant_test_name}]" if o.variant_test_name else "") for o in op_db
             if o.supports_autograd and torch.float64 in o.supported_dtypes("cpu")}
    for name, op in TENSOR_OPS.items():
        assert op.opinfo and set(op.opinfo) <= known, f"{name}: {sorted(set(op.opinfo) - known)} not in op_db"


def test_reduction_spellings_name_every_parameter():
    """A spelling leaves a parameter out only where it has torch's default: var's correction 0 is always
    written (or spelled unbiased=False), and each rendered source computes what its call computes."""
    x = torch.tensor([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
    op = TENSOR_OPS["var"]
    for p in (ReductionParams(None, False, 0), ReductionParams(1, True, 0), ReductionParams(None, False, 1),
              ReductionParams(-1, False, 2)):
        for k in op.spellings_for((x.shape,), p):
            text = op.spellings[k].render(["x0"], p)
            assert f"correction={p.correction}" in text or "unbiased" in text or p.correction == 1, text
            from_text = eval(text, {"torch": torch, "x0": x})  # our own generated text
            assert torch.equal(from_text, op.spellings[k].call([x], p)), text
            assert torch.equal(from_text, torch.var(x, dim=p.dim, correction=p.correction, keepdim=p.keepdim)), text


def _params_examples(op, arg_shapes) -> list[OpParams]:
    found = []

    @settings(max_examples=60, database=None, derandomize=True, phases=[Phase.generate])
    @given(op_params(op, arg_shapes))
    def collect(p):
        found.append(p)

    collect()
    return found


# ------------------------------------------------------------------ pinned cases, worked by hand
def _grads(node, shapes, values, upstream=None, dtype="float64"):
    case = TensorCase(node, shapes, values, dtype, upstream)
    expected = expected_tensor_gradients(case)
    from oracles.tensor.check import torch_gradients

    grads = torch_gradients(case)
    return case, expected, grads


def _assert_pinned(node, shapes, values, by_hand, upstream=None, dtypes=("float64", "float32")):
    """The oracle's exact value is the one worked out by hand (to float64's last bit), and torch's .grad
    lies in the model's enclosure around it (verified) in each dtype."""
    for dtype in dtypes:
        case, expected, grads = _grads(node, shapes, values, upstream, dtype)
        for i, hand in by_hand.items():
            exact = [float(e.exact.mid()) if e.status is Status.OK else e.reason for e in expected[i].elements]
            assert exact == pytest.approx(list(hand), rel=2**-52, abs=0), (
                f"oracle for x{i} of {case.source}: {exact}, by hand {list(hand)}")
            torch_values = grads[i].to(torch.float64).reshape(-1).tolist()
            verdicts = [judge_element(i, (), v, e, case.format) for v, e in zip(torch_values, expected[i].elements)]
            assert all(v.verdict is Verdict.VERIFIED for v in verdicts), (
                f"torch for x{i} of {case.source} ({dtype}): {torch_values}, by hand {list(hand)}\n"
                + tensor_reproducer(case))


X = Input(0)


@pytest.mark.parametrize("spelling", [0, 1])
def test_prod_with_one_zero(spelling):
    """d/dx_i Π x = product of the others: at the zero, the product of the rest; elsewhere 0."""
    node = Tensor("prod", (X,), ReductionParams(dim=1), spelling)
    _assert_pinned(node, ((2, 3),), ((2.0, 0.0, 3.0, 1.5, 2.0, -1.0),), {0: (0.0, 6.0, 0.0, -2.0, -1.5, 3.0)})


def test_prod_with_two_zeros_is_zero_everywhere():
    node = Tensor("prod", (X,), ReductionParams(), 2)  # torch.prod(x0): full reduction
    _assert_pinned(node, ((4,),), ((0.0, 2.0, 0.0, 3.0),), {0: (0.0, 0.0, 0.0, 0.0)})


def test_prod_with_zeros_and_gradient():
    node = Tensor("prod", (X,), ReductionParams(dim=0, keepdim=True), 0)
    _assert_pinned(node, ((2, 2),), ((0.0, 2.0, 3.0, 0.0),), {0: (6.0, 0.0, 0.0, -4.0)}, upstream=(2.0, -2.0))


def test_cumprod_with_zeros():
    """y = cumprod([2, 0, 3, 0.5]) = [2, 0, 0, 0]; ∂y_j/∂x_k = Π_{i<=j, i != k} x_i, so with gradient g:
    x0: g0 + g1*0 + ... = g0; x1: g1*2 + g2*2*3 + g3*2*3*0.5; x2, x3: every term holds x1 = 0."""
    node = Tensor("cumprod", (X,), ScanParams(dim=0), 0)
    g = (1.0, 2.0, -1.0, 4.0)
    _assert_pinned(node, ((4,),), ((2.0, 0.0, 3.0, 0.5),), {0: (1.0, 2 * 2.0 - 1.0 * 6.0 + 4.0 * 3.0, 0.0, 0.0)},
                   upstream=g)


def _reduced_by_product(method: str, index: tuple, include_self: bool, spelling: int = 0) -> Tensor:
    """`method`(x0, 0, index, x1, 'prod', include_self) of a vector x0 and the sources x1."""
    return Tensor(f"{method}_prod", (X, Input(1)), CallParams((("dim", 0), ("index", Indices(index)),
                                                                ("include_self", include_self))), spelling)


@pytest.mark.parametrize("method", ["scatter_reduce", "index_reduce"])
def test_scattered_product_with_one_zero_source(method):
    """y0 = x0 * s0 * s1 with s0 = 0: ∂y0/∂s0 = x0 * s1 = 6 (the branch for a single zero source), ∂y0/∂s1 =
    x0 * s0 = 0, ∂y0/∂x0 = s0 * s1 = 0; the unwritten place x0[1] passes its gradient (grad * x / x)."""
    _assert_pinned(_reduced_by_product(method, (0, 0), True), ((2,), (2,)), ((2.0, 5.0), (0.0, 3.0)),
                   {0: (0.0, 1.0), 1: (6.0, 0.0)})


@pytest.mark.parametrize("method", ["scatter_reduce", "index_reduce"])
def test_scattered_product_with_two_zero_sources_is_zero(method):
    _assert_pinned(_reduced_by_product(method, (0, 0), True), ((1,), (2,)), ((2.0,), (0.0, 0.0)),
                   {0: (0.0,), 1: (0.0, 0.0)})


@pytest.mark.parametrize("method", ["scatter_reduce", "index_reduce"])
def test_scattered_product_into_a_zero(method):
    """x0 = 0 is masked to 1 in its own gradient: ∂(x0 s0 s1)/∂x0 = s0 s1 = 6; the sources' x0 * other = 0."""
    _assert_pinned(_reduced_by_product(method, (0, 0), True), ((1,), (2,)), ((0.0,), (2.0, 3.0)),
                   {0: (6.0,), 1: (0.0, 0.0)})


@pytest.mark.parametrize("method", ["scatter_reduce", "index_reduce"])
def test_scattered_product_without_self(method):
    """include_self=False: y0 = s0 * s1 with s0 = 0 (x0 left out, its gradient 0), y1 = x1 untouched."""
    _assert_pinned(_reduced_by_product(method, (0, 0), False), ((2,), (2,)), ((5.0, -1.5), (0.0, 3.0)),
                   {0: (0.0, 1.0), 1: (3.0, 0.0)})


@pytest.mark.parametrize(("upstream", "by_hand"), [((1.0, -1.0), (0.5, -0.5)), ((0.0, 2.0), (1.0, 1.0))])
def test_logcumsumexp_with_gradients_of_both_signs_and_zero(upstream, by_hand):
    """y = (x0, log(e^x0 + e^x1)) at x = (0, 0): ∂(g·y)/∂x0 = g0 + g1 / 2, ∂/∂x1 = g1 / 2. torch's backward splits
    the gradient by sign and treats a zero gradient as the lowest value; both parts must add up."""
    node = Tensor("logcumsumexp", (X,), ScanParams(dim=0), 0)
    _assert_pinned(node, ((2,),), ((0.0, 0.0),), {0: by_hand}, upstream=upstream)


def test_renorm_scales_a_row_above_maxnorm():
    """renorm of the row (3, 4) (norm 5) to maxnorm 1 is x / (5 + 1e-7); with the sum as output, ∂/∂x_j =
    1 / (5 + e) - (3 + 4) x_j / (5 (5 + e)^2); the row (0.5, 0) (norm 1/2) is copied, gradient 1."""
    e = Fraction(1e-7)  # the double nearest 1e-7, exactly
    node = Tensor("renorm", (X,), CallParams((("dim", 0), ("maxnorm", 1.0))), 0)
    scaled = tuple(float(1 / (5 + e) - 7 * x / (5 * (5 + e) ** 2)) for x in (3, 4))
    _assert_pinned(node, ((2, 2),), ((3.0, 4.0, 0.5, 0.0),), {0: scaled + (1.0, 1.0)})


@pytest.mark.parametrize("spelling", [0, 1])
def test_amax_ties_share_the_gradient_evenly(spelling):
    """At a tie amax has no derivative; torch gives each tied maximum 1/k of the gradient, the
    minimum-norm subgradient (derivatives.yaml: scale_grad_by_count)."""
    node = Tensor("amax", (X,), ReductionParams(dim=1), spelling)
    _assert_pinned(node, ((2, 4),), ((3.0, 1.0, 3.0, -3.0, 2.0, 2.0, 2.0, 2.0),),
                   {0: (0.5, 0.0, 0.5, 0.0, 0.25, 0.25, 0.25, 0.25)})


def test_max_of_everything_shares_ties_like_amax():
    node = Tensor("amax", (X,), ReductionParams(), 2)  # torch.amax(x0)
    _assert_pinned(node, ((2, 2),), ((1.0, 4.0, 4.0, -4.0),), {0: (0.0, 0.5, 0.5, 0.0)})


def test_norm_at_zero_has_gradient_zero():
    """The 2-norm is not differentiable at 0; torch's norm_backward masks the division by 0 to give 0,
    the minimum-norm subgradient. Away from 0: x / |x|."""
    node = Tensor("norm", (X,), ReductionParams(dim=1), 0)
    _assert_pinned(node, ((2, 2),), ((0.0, 0.0, 3.0, -4.0),), {0: (0.0, 0.0, 0.6, -0.8)})


def test_repeated_indices_accumulate():
    """x[[0, 0, 2]] reads x0 twice: its gradient is the sum of both (index_put_ with accumulate)."""
    node = Tensor("index", (X,), IndexParams(("take", 0, (0, 0, 2))), 0)
    _assert_pinned(node, ((3,),), ((1.0, 2.0, 3.0),), {0: (3.0, 0.0, 0.25)}, upstream=(1.0, 2.0, 0.25))


def test_expand_sums_over_the_expanded_dims():
    node = Tensor("expand", (X,), ShapeParams((2, 3)), 0)
    _assert_pinned(node, ((1, 3),), ((1.0, 2.0, 3.0),), {0: (1.5, 2.0, -1.0)}, upstream=(1.0, 1.0, 1.0, 0.5, 1.0, -2.0))


def test_var_gradient_by_hand():
    """d/dx_i var = 2 (x_i - mean) / (N - correction): [1, 2, 3] with correction 0 gives (2/3)(x - 2)."""
    node = Tensor("var", (X,), ReductionParams(dim=0, correction=0), 0)
    _assert_pinned(node, ((3,),), ((1.0, 2.0, 3.0),), {0: (-2 / 3, 0.0, 2 / 3)})


def test_std_of_a_constant_slice_has_gradient_zero(dtype):
    """std is the norm of the deviations (scaled), not differentiable where they are all 0; torch's
    std_backward masks the division by a zero result to give 0, the minimum-norm subgradient. The other
    row: (x - mean) / ((N - 1) std) = (x - 2) / 2."""
    node = Tensor("std", (X,), ReductionParams(dim=1, correction=1), 1)
    _assert_pinned(node, ((2, 3),), ((2.0, 2.0, 2.0, 1.0, 2.0, 3.0),), {0: (0.0, 0.0, 0.0, -0.5, 0.0, 0.5)},
                   dtypes=(dtype,))


def test_std_of_a_constant_slice_torch_may_not_see_is_unverified():
    """0.1 three times: float64's sum 0.1 + 0.1 + 0.1 rounds, so torch's mean is not 0.1, its std not 0 and
    its gradient the ratio of rounding errors; the exact value is the subgradient 0. The model cannot decide
    torch's zero test: unverified (singular), never judged."""
    node = Tensor("std", (X,), ReductionParams(correction=1), 2)  # torch.std(x0)
    expected = expected_tensor_gradients(TensorCase(node, ((3,),), ((0.1, 0.1, 0.1),), "float64"))
    assert all(e.status is Status.SINGULAR for e in expected[0].elements)


def test_softmax_gradient_of_the_sum_is_zero():
    """Σ softmax(x) = 1 for every x, so the gradient of y.sum() is exactly 0 (torch: up to rounding)."""
    node = Tensor("softmax", (X,), ScanParams(dim=0), 0)
    case, expected, grads = _grads(node, ((3,),), ((1.0, 2.0, -0.5),))
    for element, value in zip(expected[0].elements, grads[0].tolist()):
        assert element.exact.contains(0) and element.exact.rad() < 1e-50
        assert judge_element(0, (), value, element, case.format).verdict is Verdict.VERIFIED


# ------------------------------------------------------------------ fault injection
FAULT_RUN = settings(max_examples=30, phases=[Phase.explicit, Phase.generate], database=None, derandomize=True,
                     deadline=None)


@st.composite
def square_sums(draw):
    """f(x.sum(dim)) for a square x (n = 2, 3), f elementwise: the gradient reaching the sum differs from
    row to row, so broadcasting it along the wrong axis changes .grad."""
    n = draw(st.integers(2, 3), label="n")
    dim = draw(st.sampled_from([0, 1, -1]), label="dim")
    outer = draw(compositions(1, max_depth=1), label="f")
    node = Map(outer, (Tensor("sum", (X,), ReductionParams(dim=dim), 1),))
    values = tuple(draw(leaf_value_lists(_fmt("float64"), n * n), label="x0"))
    upstream = draw(st.one_of(st.none(), upstream_values(n)), label="gradient")
    return TensorCase(node, ((n, n),), (values,), "float64", upstream)


def _fmt(name):
    from oracles.numerics.dtypes import format_named

    return format_named(name)


def test_reduction_backward_on_the_wrong_axis_is_caught(device):
    """The planted sum runs torch's forward and broadcasts the gradient along the wrong axis: the same
    property passes on torch's own sum and fails on the planted one."""

    def prop(overrides):
        @FAULT_RUN
        @given(data=st.data())
        def run(data):
            case = data.draw(square_sums(), label="case")
            assert_gradients_match(check_tensor_case(case, device, overrides))

        return run

    prop(None)()
    with pytest.raises(AssertionError):
        prop({"sum": reduction_backward_on_wrong_axis()})()


@pytest.mark.parametrize("op", ["flip", "pad_reflect", "index_add", "scatter_add", "avg_pool1d", "diff"])
def test_a_gathering_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64): the copies, sums and averages the index map implies
    leave no room for it."""

    assert_planted_error_caught(op, device, 1e-12)


def assert_planted_error_caught(op: str, device: str, relative: float) -> None:
    """torch's own backward of `op` times 1 + `relative` (float64, programs rooted at the op): some example fails."""

    @FAULT_RUN
    @given(data=st.data())
    def run(data):
        case = data.draw(tensor_cases("float64", root=op, stages=1), label="case")
        assert_gradients_match(check_tensor_case(case, device, {op: planted_tensor_backward_error(op, relative)}))

    with pytest.raises(AssertionError):
        run()


def test_planted_fault_refuses_shapes_it_cannot_fake():
    with pytest.raises(ValueError, match=r"square matrix.*\(2, 3\)"):
        reduction_backward_on_wrong_axis()([torch.zeros(2, 3)], ReductionParams(dim=0))


def test_oracle_knows_when_it_cannot_say():
    """sin(x) for x = 0 is not exactly 0 in the model, so prod's backward path (zero or not) is undecidable:
    unverified with its reason, never judged."""
    node = Tensor("prod", (Map(Apply("sin", (Var(0),), 0), (X,)),), ReductionParams(dim=0), 0)
    case = TensorCase(node, ((2,),), ((0.0, 1.0),), "float64")
    expected = expected_tensor_gradients(case)
    assert all(isinstance(e, ExpectedElement) and e.status is Status.SINGULAR for e in expected[0].elements)
