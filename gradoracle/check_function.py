"""`check_function`: the exact oracle for a user's own function, from a test or a notebook.

    from gradoracle import check_function
    check_function(my_activation, torch.zeros(3, 2))                       # composed of table ops
    check_function(MySoftplus.apply, torch.zeros(4), reference=F.softplus)  # a hand-written backward
    check_function(torch.compile(f), torch.zeros(4), reference=f)           # a compiled backward

Without `reference`, `fn` is traced to aten (oracles.core.traced) into an expression of the op table, and
its backward, which torch builds from the same ops, is judged against the exact derivative within the
rounding model of torch's own formulas, as the suite judges its random programs. With `reference` (a
function of table ops computing the same values), `fn`'s backward is code the table does not know (a
custom autograd.Function, a torch.library op, a compiled graph): it is judged against the reference's
exact derivative, allowed `error_factor` times the error torch's formulas for the reference could make
(oracles.core.foreign). Inputs are drawn by Hypothesis over the whole domain of the ops that read them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.autograd.forward_ad as fwAD
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradoracle.pytest_plugin import record
from oracles.core.case import GradCase, numel
from oracles.core.check import judge_fast_then_exact
from oracles.core.foreign import widened, widened_element
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.outcomes import Outcome, assert_gradients_match
from oracles.core.report import derivative_note
from oracles.core.traced import Traced, UntraceableError, trace
from oracles.core.verdict import Verdict, VerdictCounts, judge
from oracles.higher.functional import expected_jvp, judge_tensor, tensor_of
from oracles.higher.higher_order import expected_nested, point_jets
from oracles.higher.nested import effective_levels, judge_nested, nested_grads
from oracles.numerics.dtypes import FORMATS, format_named
from strategies.backward import upstream_values
from strategies.function_inputs import function_input_values, reader_plans

ORDERS = (1, 2)
MODES = ("reverse", "forward")
DEFAULT_ERROR_FACTOR = 4.0


BACKWARD, TANGENT, HVP = "backward", "forward-mode tangent", "Hessian-vector product"


@dataclass
class CheckSummary:
    """What `check_function` judged: the inputs drawn per dtype, and per (dtype, check) the verdicts over
    every element (`VerdictCounts`: counts, why elements were unverified, the worst error)."""

    examples_per_dtype: dict[str, int] = field(default_factory=dict)
    counts: dict[tuple[str, str], VerdictCounts] = field(default_factory=dict)

    @property
    def examples(self) -> int:
        return sum(self.examples_per_dtype.values())

    def _total(self, verdict: Verdict) -> int:
        return sum(c.counts[verdict] for c in self.counts.values())

    @property
    def verified(self) -> int:
        return self._total(Verdict.VERIFIED)

    @property
    def unverified(self) -> int:
        return self._total(Verdict.UNVERIFIED)

    def __str__(self) -> str:
        lines = [f"{dtype}: {n} inputs drawn" for dtype, n in self.examples_per_dtype.items()]
        lines += [f"{dtype} {check}: {counts.summary()}" for (dtype, check), counts in self.counts.items()]
        return "\n".join(lines)


# ------------------------------------------------------------------ argument validation
def _owner(fn: Callable) -> type | None:
    """The class of a classmethod such as a custom autograd.Function's `apply`."""
    owner = getattr(fn, "__self__", None)
    return owner if inspect.ismethod(fn) and isinstance(owner, type) else None


def _name(fn: Callable) -> str:
    owner = _owner(fn)
    if owner is not None:
        return f"{owner.__qualname__}.{fn.__name__}"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _dtype_names(dtypes, example_inputs: Sequence[torch.Tensor]) -> tuple[str, ...]:
    if dtypes is None:
        names = {str(x.dtype).removeprefix("torch.") for x in example_inputs}
        if len(names) != 1:
            raise ValueError(f"dtypes=None takes the inputs' dtype, but they have several: {sorted(names)}")
        dtypes = tuple(names)
    if isinstance(dtypes, (str, torch.dtype)):
        dtypes = (dtypes,)
    names = []
    for d in dtypes:
        name = str(d).removeprefix("torch.") if isinstance(d, torch.dtype) else d
        if name not in FORMATS:
            raise ValueError(f"dtypes: unknown dtype {d!r}; choose from {', '.join(FORMATS)}")
        names.append(name)
    if not names:
        raise ValueError("dtypes: give at least one dtype")
    return tuple(dict.fromkeys(names))


def _check_device(device: str) -> str:
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: {device!r} is not a torch device") from None
    if parsed.type == "cpu":
        return str(device)
    available = getattr(torch, parsed.type, None)
    if available is None or not hasattr(available, "is_available") or not available.is_available():
        raise ValueError(f"device: {device!r} is not available in this torch ({torch.__version__})")
    return str(device)


def _check_inputs(example_inputs) -> tuple[tuple[int, ...], ...]:
    if not example_inputs:
        raise ValueError("check_function needs at least one example input tensor")
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.is_complex():
            raise ValueError(f"example input {i} must be a real floating-point tensor, got {type(x).__name__}"
                             + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    try:
        torch.broadcast_shapes(*(x.shape for x in example_inputs))
    except RuntimeError:
        shapes = [tuple(x.shape) for x in example_inputs]
        raise ValueError(f"example inputs' shapes {shapes} do not broadcast together") from None
    return tuple(tuple(x.shape) for x in example_inputs)


def _check_choices(name: str, given, allowed: tuple) -> tuple:
    given = tuple(given) if isinstance(given, (list, tuple, set)) else (given,)
    bad = [g for g in given if g not in allowed]
    if bad or not given:
        raise ValueError(f"{name}: {bad[0] if bad else given!r} is not one of {allowed}")
    return given


def _custom_backward(fn: Callable, inputs: Sequence[torch.Tensor]) -> str | None:
    """The name of a backward in `fn`'s autograd graph that torch's formulas do not describe, if any."""
    leaves = [x.detach().to(torch.float64).requires_grad_() for x in inputs]
    out = fn(*leaves)
    seen, stack = set(), [out.grad_fn] if isinstance(out, torch.Tensor) else []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            return type(node).__name__
        stack += [parent for parent, _ in node.next_functions]
    return None


def _probes(shapes) -> list[torch.Tensor]:
    """Inputs of the example shapes, values inside every op's domain that the table has (0.25 to 0.75)."""
    return [torch.linspace(0.25, 0.75, math.prod(s) or 1, dtype=torch.float64)[: math.prod(s)].reshape(s)
            for s in shapes]


def _check_same_output(fn: Callable, reference: Callable, shapes) -> None:
    with torch.no_grad():
        out, expected = fn(*_probes(shapes)), reference(*_probes(shapes))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(expected.shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"fn {_name(fn)!r} returns {got}, the reference {tuple(expected.shape)}: they must "
                         f"compute the same values")


def _traced(fn: Callable, shapes, what: str) -> Traced:
    try:
        return trace(fn, _probes(shapes))
    except UntraceableError as exc:
        raise ValueError(f"{what} {_name(fn)!r} cannot be checked: {exc}") from None


# ------------------------------------------------------------------ one example
@dataclass(frozen=True)
class _Plan:
    fn: Callable
    traced: Traced
    foreign: bool
    error_factor: float
    device: str
    orders: tuple[int, ...]
    modes: tuple[str, ...]

    def run(self, leaves):
        out = self.fn(*leaves)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"fn {_name(self.fn)!r} returned {type(out).__name__}, not a tensor")
        return out

    def expectation(self, expected, case):
        return widened(expected, case.format, self.error_factor) if self.foreign else expected

    def outcome(self, case, verdicts, call: str, reproducer=None) -> Outcome:
        what = f"{call} of {_name(self.fn)}" + (" (judged against the reference)" if self.foreign else "")
        return Outcome(case, verdicts, self.device, what, partial(derivative_note, case), reproducer)


def _import_lines(fn: Callable) -> list[str]:
    """How the reproducer gets `fn`: imported where it can be, else a line for the user to fill in."""
    owner = _owner(fn)
    if owner is not None and "<" not in owner.__qualname__:
        return [f"from {owner.__module__} import {owner.__qualname__.split('.')[0]}",
                f"fn = {owner.__qualname__}.{fn.__name__}"]
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "<unknown>")
    if module and "<" not in qualname:
        return [f"from {module} import {qualname.split('.')[0]}", f"fn = {qualname}"]
    return [f"fn = ...  # {_name(fn)}: your function"]


def _reproducer(plan: _Plan, case: GradCase) -> str:
    lines = ["import torch", *_import_lines(plan.fn), ""]
    lines += [f"x{i} = {case.input_literal(i, plan.device)}" for i in range(len(case.shapes))]
    xs = ", ".join(f"x{i}" for i in range(len(case.shapes)))
    lines += [f"fn({xs}).sum().backward()"] + [f"print('x{i}.grad =', x{i}.grad)" for i in case.used]
    return "\n".join(lines) + "\n"


def _first_order(plan: _Plan, case: GradCase, counts: VerdictCounts) -> None:
    """`.grad` after fn(x).sum().backward()."""
    leaves = case.make_leaves(plan.device)
    plan.run(leaves).sum().backward()
    grads = [leaf.grad for leaf in leaves]
    if plan.foreign:  # judged against the reference's formulas, widened: the fast pass follows the table's own
        verdicts = judge(case, grads, plan.expectation(expected_gradients(case), case))
    else:
        verdicts = judge_fast_then_exact(case, grads)
    outcome = plan.outcome(case, verdicts, "backward", partial(_reproducer, plan, case))
    counts.add(verdicts, case)
    assert_gradients_match(outcome)


def _forward_mode(plan: _Plan, case: GradCase, tangents, counts: VerdictCounts) -> None:
    """The tangent of fn at dual inputs: J·t at every output point."""
    leaves = [leaf.detach() for leaf in case.make_leaves(plan.device)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, tensor_of(tangents[i], x.shape, x)) if i in tangents else x
                 for i, x in enumerate(leaves)]
        out = fwAD.unpack_dual(plan.run(duals))
    expected = expected_jvp(case, point_jets(case, 1, forward_ad=True), tangents)
    if plan.foreign:
        expected = [widened_element(e, case.format, plan.error_factor) for e in expected]
    shape = case.output_shape
    tangent = out.tangent if out.tangent is not None else torch.zeros(shape, dtype=case.format.torch_dtype)
    verdicts = judge_tensor(case, -1, tangent, shape, expected, "the tangent")
    counts.add(verdicts, case)
    assert_gradients_match(plan.outcome(case, verdicts, "forward-mode tangent"))


def _second_order(plan: _Plan, case: GradCase, weights, counts: VerdictCounts) -> None:
    """grad(grad(fn(x).sum(), xs, create_graph=True), xs, V): Hessian-vector products."""
    levels = [weights]
    run = nested_grads(case, None, levels, plan.device, program=lambda leaves: plan.run(leaves).sum())
    jets = point_jets(case, 2, routes=True)
    expected = plan.expectation(expected_nested(case, effective_levels(case, levels, run), None, jets), case)
    verdicts = judge_nested(case, run, expected, jets)
    counts.add(verdicts, case)
    assert_gradients_match(plan.outcome(case, verdicts, "Hessian-vector product (nested torch.autograd.grad)"))


# ------------------------------------------------------------------ the entry point
def check_function(fn: Callable, *example_inputs: torch.Tensor, reference: Callable | None = None,
                   dtypes=("float64", "float32"), max_examples: int = 100, device: str = "cpu",
                   orders: Sequence[int] = (1,), modes: Sequence[str] = ("reverse",),
                   error_factor: float = DEFAULT_ERROR_FACTOR) -> CheckSummary:
    """Check `fn`'s derivatives against the exact ones over inputs of the example inputs' shapes.

    `dtypes`: names or torch dtypes (None: the example inputs' own); `orders`: 1 (`.grad` after backward)
    and/or 2 (Hessian-vector products by nested torch.autograd.grad); `modes`: "reverse" and/or "forward"
    (forward-mode AD's tangent, first order). Raises AssertionError with the element, exact value, error,
    bound and a reproducer if any derivative is wrong; returns the tally otherwise. Bad arguments raise
    ValueError naming the value."""
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if reference is not None and not callable(reference):
        raise ValueError(f"reference must be callable or None, got {reference!r}")
    shapes = _check_inputs(example_inputs)
    names = _dtype_names(dtypes, example_inputs)
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples: expected a positive integer, got {max_examples!r}")
    device = _check_device(device)
    orders = _check_choices("orders", orders, ORDERS)
    modes = _check_choices("modes", modes, MODES)
    if not isinstance(error_factor, (int, float)) or isinstance(error_factor, bool) or not error_factor >= 1:
        raise ValueError(f"error_factor: expected a number >= 1, got {error_factor!r}")
    if reference is None:  # before tracing: a custom Function's forward need not be made of table ops
        custom = _custom_backward(fn, example_inputs)
        if custom is not None:
            raise ValueError(f"fn {_name(fn)!r} has a backward torch's formulas do not describe ({custom}): "
                             f"pass reference=, a function of table ops computing the same values")
    traced = _traced(reference if reference is not None else fn, shapes, "reference" if reference else "fn")
    if traced.summed and "forward" in modes:  # the tangent of a sum is not judged point by point
        raise ValueError("modes: 'forward' needs the function to return its elementwise result, not its sum")
    if reference is not None:
        _check_same_output(fn, reference, shapes)
    plan = _Plan(fn, traced, reference is not None, float(error_factor), device, orders, modes)
    summary = CheckSummary()
    for name in names:
        _check_dtype(plan, shapes, name, max_examples, summary)
    return summary


def _check_dtype(plan: _Plan, shapes, dtype: str, max_examples: int, summary: CheckSummary) -> None:
    fmt = format_named(dtype)
    plans = reader_plans(plan.traced.expr, fmt)
    sizes = tuple(numel(s) for s in shapes)
    checks = [c for c, wanted in ((BACKWARD, 1 in plan.orders and "reverse" in plan.modes),
                                  (TANGENT, "forward" in plan.modes), (HVP, 2 in plan.orders)) if wanted]
    counts = {check: summary.counts.setdefault((dtype, check), VerdictCounts()) for check in checks}
    summary.examples_per_dtype[dtype] = 0

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def examples(data):
        values = data.draw(function_input_values(plans, sizes, fmt), label="inputs")
        case = GradCase(plan.traced.expr, shapes, values, dtype)
        summary.examples_per_dtype[dtype] += 1
        if BACKWARD in counts:
            _first_order(plan, case, counts[BACKWARD])
        if TANGENT in counts:
            tangents = {i: data.draw(upstream_values(sizes[i]), label=f"tangent for x{i}") for i in case.used}
            _forward_mode(plan, case, tangents, counts[TANGENT])
        if HVP in counts:
            weights = [data.draw(upstream_values(sizes[i]), label=f"V for x{i}") if i in case.used else None
                       for i in range(len(shapes))]
            _second_order(plan, case, weights, counts[HVP])

    try:
        examples()
    finally:  # a failing check's verdicts count too
        for check, tally in counts.items():
            record(f"check_function({_name(plan.fn)}) {check}", dtype, tally)
