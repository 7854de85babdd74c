"""The suite testing itself: the oracle against derivatives written by hand and against finite
differences, the generators against their own promises, the renderings against each other, and the
whole judge against planted bugs (a suite that passes a wrong torch is worse than none)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mpmath
import pytest
import torch
from flint import arb, ctx
from hypothesis import given, settings
from hypothesis import strategies as st

from gradoracle import sensitivity
from gradoracle.pytest_plugin import scaled_examples
from oracles.core.case import GradCase, all_indices, broadcast_source, flat_index
from oracles.core.chain_rule import at_rising_precision
from oracles.core.check import torch_gradients
from oracles.core.expected import Status
from oracles.core.expr import Apply, Const, Expr, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.render import run_torch, to_sympy, torch_source
from oracles.core.test_ids import selectable
from oracles.core.verdict import Verdict, judge
from oracles.faults.planted import planted_backward_error
from oracles.numerics.exact import compile_sympy
from oracles.table.ops import OPS
from strategies import compositions, grad_cases, polynomials

REPO = Path(__file__).resolve().parent.parent
EXPRESSIONS = {"compositions": compositions, "polynomials": polynomials}


def inner_settings(examples: int) -> settings:
    """For a property run inside a test that also judges a tally afterwards: the active profile (read
    when the test runs) with `scaled_examples(examples)` examples."""
    return settings(settings(), max_examples=scaled_examples(examples))


# ===================================================================== a. known derivatives
@dataclass(frozen=True)
class Known:
    """One of an entry's `references` (oracles.table.ops.Reference), named by its op for the test id."""

    op: str
    point: tuple[float, ...]
    partials: Callable[..., tuple]


# Every entry's hand-written derivatives (meta_tests/test_op_table.py checks every entry has one).
KNOWN = [Known(name, r.point, r.partials) for name, op in OPS.items() for r in op.references]
KNOWN_DIGITS = 50
KNOWN_RTOL = mpmath.mpf(10) ** -40  # arb works at 192 bits (57 digits); mpmath at 50


def known_case(known: Known) -> GradCase:
    """The op applied to inputs x0, x1, ... (0-d tensors) and to its constant arguments, in float64."""
    constants = OPS[known.op].constant_args
    args: list[Expr] = []
    values: list[tuple[float]] = []
    for position, value in enumerate(known.point):
        if position in constants:
            args.append(Const(value))
        else:
            args.append(Var(len(values)))
            values.append((value,))
    return GradCase(Apply(known.op, tuple(args)), ((),) * len(values), tuple(values), "float64")


def as_mpf(ball: arb) -> mpmath.mpf:
    """The ball's midpoint, exactly (its binary value printed to 80 digits is exact enough here)."""
    return mpmath.mpf(ball.mid().str(80, radius=False))


@pytest.mark.parametrize("known", KNOWN, ids=lambda k: selectable(f"{k.op}{k.point}"))
def test_oracle_matches_known_derivative(known):
    """SymPy's derivative evaluated in arb (the oracle's exact value) equals the closed form to 40
    digits: catches a wrong `sympy` entry in the op table or a wrong rule in the exact evaluator."""
    if known.op not in OPS:
        pytest.fail(f"{known.op!r} is not in the op table")
    case = known_case(known)
    expected = expected_gradients(case)
    with mpmath.workdps(KNOWN_DIGITS):
        args = [mpmath.mpf(v) for v in known.point]
        partials = known.partials(*args)
        assert len(partials) == len(case.shapes), "one partial per tensor argument"
        for leaf, closed_form in enumerate(partials):
            (element,) = expected[leaf].elements
            assert element.status is Status.OK, element.reason
            value, oracle = mpmath.mpf(closed_form), as_mpf(element.exact)
            tolerance = KNOWN_RTOL * abs(value) if value != 0 else KNOWN_RTOL
            assert abs(oracle - value) <= tolerance, (
                f"d{known.op}/d(arg {leaf}) at {known.point}: oracle {mpmath.nstr(oracle, 45)}, "
                f"closed form {mpmath.nstr(value, 45)} (SymPy: {expected[leaf].derivative})")
            assert float(element.exact.rad()) <= 1e-45 * max(1.0, float(abs(value)))


# ===================================================================== b. finite differences
FD_STEP_BITS = 66  # step h = 2**-66 (~1.4e-20), scaled down with |v| below 1 (so x**4 at x = 1e-100 works)
FD_MIN_DIGITS = 20  # a comparison resolves the derivative when it pins it to 20 digits
FD_MAX_PRECISION = 8192  # bits; arb starts at the oracle's 192 and doubles while unresolved


@contextmanager
def working_precision(bits: int):
    """arb's global precision, raised for the block (compile_sympy reads it when evaluating)."""
    saved = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = saved


def _points_reading(case: GradCase, leaf: int, flat: int) -> list[tuple[int, ...]]:
    """Output points at which broadcasting reads element `flat` of input `leaf`."""
    shape = case.shapes[leaf]
    return [index for index in all_indices(case.output_shape)
            if flat_index(shape, broadcast_source(shape, index)) == flat]


def _summed(f, case: GradCase, leaf: int, points, value: arb) -> arb:
    """Σ over `points` of the exact function with input `leaf`'s element set to `value`: the function
    whose derivative is that element's expected `.grad` (a broadcast input sums over its reads)."""
    total = arb(0)
    for index in points:
        point = tuple(value if i == leaf else arb(case.value_at(i, index)) if i in case.used else arb(0)
                      for i in range(len(case.shapes)))
        total += f(point)
    return total


def _step(v: float) -> arb:
    """2**-66, or 2**-66 of v's binade below 1: exact in binary, so v ± h is exact at high precision."""
    exponent = math.frexp(v)[1] if v != 0 else 1
    return arb(2) ** (min(exponent - 1, 0) - FD_STEP_BITS)


def finite_difference(expr: Expr, case: GradCase, leaf: int, flat: int, exact: arb) -> tuple[arb, arb, bool]:
    """(D(h), tolerance, resolved): the central difference quotient, an error bound for it (ball radii
    plus |D(2h) - D(h)|, three times the leading truncation term c·h²), and whether that bound pins
    the derivative to FD_MIN_DIGITS digits. The precision doubles until it does (cancellation in
    F(v + h) - F(v - h) needs about log2(|F| / |F'| h) bits), up to FD_MAX_PRECISION."""
    v = case.values[leaf][flat]
    points = _points_reading(case, leaf, flat)
    bits = ctx.prec
    while True:
        with working_precision(bits):
            f = compile_sympy.__wrapped__(to_sympy(expr))  # uncached: constants made at this precision
            h = _step(v)
            quotients = [(_summed(f, case, leaf, points, arb(v) + step) -
                          _summed(f, case, leaf, points, arb(v) - step)) / (2 * step) for step in (h, 2 * h)]
            d1, d2 = quotients
            tolerance = d1.rad() + d2.rad() + exact.rad() + abs(d1.mid() - d2.mid())
            resolved = not exact.contains(0) and tolerance < abs(exact) * arb(10) ** -FD_MIN_DIGITS
        if resolved or exact.contains(0) or bits >= FD_MAX_PRECISION:
            return d1, tolerance, resolved
        bits *= 2


@pytest.mark.parametrize("kind", list(EXPRESSIONS))
def test_exact_derivative_matches_finite_differences(kind):
    """The oracle's exact derivative against central differences of the exact function (arb balls,
    step ~2**-66 = 1.4e-20), in float64, for random compositions and polynomials.

    D(h) is enclosed rigorously (its radius covers the cancellation), and its truncation error c·h²
    is bounded by |D(2h) - D(h)| = 3|c|h² (Richardson): |D(h) - exact| must lie within the radii plus
    that, while a wrong derivative rule misses by O(|exact|). Elements that are not OK (singular,
    overflow) are counted, not compared: most must be OK; and most comparisons must resolve the
    derivative to 20 digits (exact zeros, e.g. maximum's losing side, are compared but not counted),
    so the check is never vacuous."""
    statuses: Counter = Counter()
    resolution: Counter = Counter()

    @inner_settings(40)
    @given(case=grad_cases("float64", EXPRESSIONS[kind]))
    def compare(case):
        for grad in expected_gradients(case):
            for flat, element in enumerate(grad.elements if grad.used else []):
                statuses[element.status] += 1
                if element.status is not Status.OK:
                    continue
                d1, tolerance, resolved = finite_difference(case.expr, case, grad.leaf, flat, element.exact)
                assert abs(d1.mid() - element.exact.mid()) <= tolerance, (
                    f"{torch_source(case.expr)}: d/dx{grad.leaf}[{flat}] oracle {element.exact.str(25)}, "
                    f"finite differences {d1.str(25)}; inputs {case.values}")
                resolution["zero" if element.exact.contains(0) else resolved] += 1

    compare()
    total = sum(statuses.values())
    assert total and statuses[Status.OK] >= 0.9 * total, f"element statuses: {dict(statuses)}"
    nonzero = resolution[True] + resolution[False]
    assert resolution[True] >= 0.9 * nonzero, f"resolved to {FD_MIN_DIGITS} digits: {dict(resolution)}"


# ===================================================================== c. inputs valid by construction
def _points(case: GradCase):
    """Every point of the broadcast output, as arb values of x0, x1, ... (unused inputs: 0)."""
    for index in all_indices(case.output_shape):
        yield tuple(arb(case.value_at(i, index)) if i in case.used else arb(0) for i in range(len(case.shapes)))


@pytest.mark.parametrize("kind", list(EXPRESSIONS))
def test_generated_expressions_are_defined_at_their_inputs(kind):
    """Strategies build inputs inside every op's domain: the exact function value is finite at every
    broadcast point (no log of a negative, no pole, no asin outside [-1, 1])."""

    @inner_settings(40)
    @given(case=grad_cases("float64", EXPRESSIONS[kind]))
    def defined(case):
        f = compile_sympy(to_sympy(case.expr))
        for point in _points(case):
            value = at_rising_precision(partial(f, point), lambda v: (v,))
            assert value.is_finite(), f"{to_sympy(case.expr)} = {value} at {point}"

    defined()


@pytest.mark.parametrize("kind", list(EXPRESSIONS))
def test_generated_expressions_stay_in_float64_range(kind):
    """...and torch's float64 forward pass is finite everywhere: no generated value overflows."""

    @inner_settings(40)
    @given(case=grad_cases("float64", EXPRESSIONS[kind]))
    def in_range(case):
        with torch.no_grad():
            out = run_torch(case.expr, case.make_leaves())
        assert bool(torch.isfinite(out).all()), f"{torch_source(case.expr)} = {out} at {case.values}"

    in_range()


# Regressions: oracle bugs found while writing these properties (python-flint 0.9's `arb ** n` is NaN
# for a ball [0 +/- r]); integer powers now go through oracles.numerics.rounding.int_power.
LOG_COSH_SQUARED = Apply("pow_scalar", (Apply("log", (Apply("cosh", (Var(0),)),)), Const(2.0)))


def test_exact_evaluator_integer_power_of_a_ball_around_zero():
    """(log cosh x)² at x = 1e-135 is about 2.1e-541: finite. arb's log(cosh(x)) there is [0 +/- 5e-135]
    (midpoint exactly 0), and squaring that with ** gives NaN instead of [+/- 3e-269]."""
    value = compile_sympy(to_sympy(LOG_COSH_SQUARED))((arb(1e-135),))
    assert value.is_finite()


def test_rounding_model_integer_power_of_a_rounded_zero():
    """torch.sin(x0) ** 2 at x0 = 0: the gradient is 2·sin(0)·cos(0) = 0, a plain OK point. The model
    widens the rounded sin(0) to [0 +/- η], and `** 1` of that (in the local gradient 2·y**1) is NaN,
    so the point comes out SINGULAR ("undefined within the rounding model"), i.e. never judged; 0.0
    is one of the strategies' simplest input values, so this hole is drawn often."""
    case = GradCase(Apply("pow_scalar", (Apply("sin", (Var(0),)), Const(2.0))), ((),), ((0.0,),), "float64")
    (grad,) = expected_gradients(case)
    assert [e.status for e in grad.elements] == [Status.OK], grad.elements[0].reason


# ===================================================================== d. enclosures and renderings
def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit patterns, so -0.0 vs 0.0 and NaN payloads count as differences."""
    width = {8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()]
    return t.detach().contiguous().view(width)


@pytest.mark.parametrize("kind", list(EXPRESSIONS))
@settings(max_examples=scaled_examples(25))
@given(data=st.data())
def test_enclosure_contains_exact_and_source_text_runs_the_same_program(kind, dtype, data):
    """Every OK element's exact derivative lies inside its enclosure (expected_gradients also checks
    overlap, raising OracleInconsistency), and the torch source text shown in reports, executed on the
    leaves, gives bitwise the output that run_torch computes from the tree."""
    case = data.draw(grad_cases(dtype, EXPRESSIONS[kind]), label="case")
    for grad in expected_gradients(case):
        for element in grad.elements:
            if element.status is Status.OK:
                assert element.enclosure.contains(element.exact), (element.exact, element.enclosure)
    leaves = case.make_leaves()
    namespace = {"torch": torch, **{f"x{i}": leaf for i, leaf in enumerate(leaves)}}
    from_text = eval(torch_source(case.expr), namespace)  # our own generated text
    from_tree = run_torch(case.expr, leaves)
    assert from_text.dtype == from_tree.dtype and from_text.shape == from_tree.shape
    assert torch.equal(_bits(from_text), _bits(from_tree)), torch_source(case.expr)


# ===================================================================== e. planted faults
FAULT_OPS = ("sin", "exp", "mul", "div", "tanh", "sigmoid", "atan2", "pow")
PLANTED = {"float64": 1e-9, "float32": 1e-5}  # each far above the dtype's u (1.1e-16, 6.0e-8)


def _verdict_tally(case: GradCase, op: str, rel_error: float) -> tuple[bool, bool]:
    """(wrong without a fault, wrong with `rel_error` planted in `op`'s backward): one oracle call."""
    expected = expected_gradients(case)

    def wrong(overrides):
        grads = torch_gradients(case, overrides=overrides)
        return any(v.verdict is Verdict.WRONG for v in judge(case, grads, expected))

    return wrong(None), wrong({op: planted_backward_error(op, rel_error)})


@pytest.mark.parametrize("dtype_name", list(PLANTED))
@pytest.mark.parametrize("op", FAULT_OPS)
def test_planted_backward_error_is_caught(op, dtype_name):
    """A relative error planted in one op's backward makes some generated case (the op at the root)
    WRONG, while the same cases with torch's own backward have no wrong verdict at all."""
    tally: Counter = Counter()

    @inner_settings(20)
    @given(case=grad_cases(dtype_name, lambda n: compositions(n, max_depth=2, root=op)))
    def run(case):
        clean, faulty = _verdict_tally(case, op, PLANTED[dtype_name])
        tally["examples"] += 1
        tally["wrong without fault"] += clean
        tally["caught"] += faulty

    run()
    assert tally["wrong without fault"] == 0, dict(tally)
    assert tally["caught"] >= 1, f"a {PLANTED[dtype_name]:g} backward error in {op} went unnoticed: {dict(tally)}"


@pytest.mark.parametrize("op", FAULT_OPS)
@settings(max_examples=scaled_examples(10))
@given(data=st.data())
def test_fault_wrapper_is_transparent_without_error(op, dtype, data):
    """With rel_error = 0 the wrapper's forward and backward are bitwise torch's own, so what the test
    above catches is the planted error, not the wrapper."""
    case = data.draw(grad_cases(dtype, lambda n: compositions(n, max_depth=2, root=op)), label="case")
    plain = torch_gradients(case)
    wrapped = torch_gradients(case, overrides={op: planted_backward_error(op, 0.0)})
    for a, b in zip(plain, wrapped):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(_bits(a), _bits(b))


def test_planted_error_has_the_planted_size():
    """sin's backward at x = 0.5 becomes cos(0.5)·(1 + 1e-6): the fault is what it says it is. Within
    4u: torch's cos (1 ulp = 2u), the double 1 + 1e-6 (u) and the product (u)."""
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    planted_backward_error("sin", 1e-6)(x).backward()
    with mpmath.workdps(30):
        expected = mpmath.cos(mpmath.mpf(0.5)) * (1 + mpmath.mpf(1e-6))
        assert abs(mpmath.mpf(x.grad.item()) - expected) <= 4 * 2.0**-53 * abs(expected)


# ===================================================================== sensitivity command
def _run_sensitivity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradoracle", "sensitivity", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("args, named", [
    (["--dtype", "float8"], "'float8'"),
    (["--ops", "sin,bogus"], "'bogus'"),
    (["--examples", "0"], "'0'"),
    (["--examples", "-3"], "'-3'"),
    (["--examples", "abc"], "'abc'"),
    (["--ops", ","], "','"),
])
def test_sensitivity_rejects_bad_arguments(args, named, capsys):
    """Usage errors exit with status 2 and name the bad value (checked in-process: argparse's own
    exit; the subprocess test below covers the real command line)."""
    with pytest.raises(SystemExit) as exit_info:
        sensitivity.parse_args(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named in err and args[0] in err, err


def test_sensitivity_shows_progress_on_stderr(capsys, monkeypatch):
    monkeypatch.setattr(sensitivity, "PROGRESS_DELAY", 0.0)
    def measure(op, dtype, n):  # the progress, not the measurement
        return sensitivity.OpSensitivity(op, n, None, 0, 0.1, 0.1, 1, 0.1)

    monkeypatch.setattr(sensitivity, "measure", measure)
    assert sensitivity.main(["--ops", "sin,mul", "--examples", "1"]) == 0
    captured = capsys.readouterr()
    assert "ops measured" in captured.err and "2/2" in captured.err and "ops measured" not in captured.out


def test_sensitivity_command_line():
    """The real command: a bad op is a usage error naming it; a tiny run prints the table and the
    throughput lines."""
    bad = _run_sensitivity("--ops", "sin,nosuchop", "--examples", "2")
    assert bad.returncode == 2 and "'nosuchop'" in bad.stderr, bad.stderr
    good = _run_sensitivity("--ops", "sin,mul", "--examples", "3", "--dtype", "float32")
    assert good.returncode == 0, good.stderr
    rows = {line.split()[0]: line.split() for line in good.stdout.splitlines()
            if line.split()[:1] in (["sin"], ["mul"])}
    assert set(rows) == {"sin", "mul"}, good.stdout
    for row in rows.values():
        caught = float(row[1].lstrip("<="))
        assert 1e-7 <= caught <= 1e-3, good.stdout  # in float32, 1 + 1e-8 rounds to 1: invisible
        assert row[3] == "0", good.stdout  # no false alarms
    assert "examples per second" in good.stdout and "oracle (expected_gradients)" in good.stdout
