"""Failure reports people can act on: the message names the expression, the element, torch's value,
the exact value and the bound; the exception carries the SymPy derivative and a reproducer that runs
on its own; and the torch source text is exactly the drawn tree (parentheses included)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import mpmath
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from oracles.core.case import GradCase
from oracles.core.check import check_case, torch_gradients
from oracles.core.expr import Apply, Const, Expr, Var
from oracles.core.outcomes import assert_gradients_match
from oracles.core.render import torch_source
from oracles.core.report import grad_reproducer
from oracles.core.test_ids import selectable
from oracles.core.verdict import Verdict
from oracles.table.ops import OPS
from strategies import compositions, grad_cases, polynomials

# ------------------------------------------------------------------ a failing case, built on purpose
WRONG_AT = (1, 0)  # the one element whose gradient the planted fault changes
SIN_VALUES = (0.5, -1.25, 2.0, 0.75)  # x0, a 2x2 tensor


class _SinWrongAtOneElement(torch.autograd.Function):
    """sin whose backward is torch's cos(x)·grad except at WRONG_AT, where it is off by 1e-6."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        result = grad * torch.cos(x)
        result[WRONG_AT] = result[WRONG_AT] * (1 + 1e-6)
        return result


def _failing_outcome():
    case = GradCase(Apply("sin", (Var(0),)), ((2, 2),), (SIN_VALUES,), "float64")
    return check_case(case, overrides={"sin": _SinWrongAtOneElement.apply})


def _exact_cos(value: float) -> float:
    """cos(value) correctly rounded to float64 (mpmath at 40 digits): the exact derivative of sin."""
    with mpmath.workdps(40):
        return float(mpmath.cos(mpmath.mpf(value)))


def test_failure_message_names_expression_element_values_and_bound():
    outcome = _failing_outcome()
    assert [v.index for v in outcome.wrong] == [WRONG_AT]
    (wrong,) = outcome.wrong
    with pytest.raises(AssertionError) as info:
        assert_gradients_match(outcome)
    message = str(info.value)
    exact = _exact_cos(SIN_VALUES[2])  # row-major: element [1, 0] is the third value
    assert message.splitlines()[0] == "1 gradient element(s) wrong for y = torch.sin(x0) (float64)"
    assert "x0.grad[1, 0] = " in message and "x0.grad[0, 0]" not in message
    assert f"= {wrong.torch_value!r} but exact d/dx0 = {exact!r}" in message
    assert f"bound {wrong.bound:.3g}" in message and "torch.sin(x0), float64" in message
    # the numbers themselves: torch is off by ~1e-6 relative, far outside a bound of a few u
    assert abs(wrong.torch_value - exact) > 0.5e-6 * abs(exact)
    assert 0 < wrong.bound < 1e-14 * abs(exact)


def test_failure_notes_carry_the_sympy_derivative_and_a_reproducer():
    with pytest.raises(AssertionError) as info:
        assert_gradients_match(_failing_outcome())
    derivative_note, inputs_note, reproduce_note = info.value.__notes__
    assert "SymPy: y = sin(x0)" in derivative_note
    assert "∂y/∂x0 = cos(x0)" in derivative_note
    assert inputs_note == "inputs: x0: shape (2, 2) values [0.5, -1.25, 2.0, 0.75]"
    assert reproduce_note.startswith("Reproduce with:\n")
    assert "y = torch.sin(x0)" in reproduce_note


def test_passing_case_raises_nothing():
    """The same case with torch's own sin: every element verified, so no report at all."""
    case = GradCase(Apply("sin", (Var(0),)), ((2, 2),), (SIN_VALUES,), "float64")
    outcome = check_case(case)
    assert {v.verdict for v in outcome.verdicts} == {Verdict.VERIFIED}
    assert_gradients_match(outcome)


# ------------------------------------------------------------------ the reproducer
def _printed_grads(case: GradCase) -> str:
    """What the reproducer should print: torch's own gradients of the case, computed here."""
    grads = torch_gradients(case)
    return "".join(f"x{leaf}.grad = {grads[leaf]!s}\n" for leaf in case.used)


# broadcasting 0-d, (2, 1) and (1, 3) inputs, float32, plus an input the expression does not use
MIXED = GradCase(
    Apply("add", (Apply("mul", (Var(0), Apply("sin", (Var(1),)))), Apply("hypot", (Var(2), Var(1))))),
    ((), (2, 1), (1, 3), (2,)),
    ((1.5,), (0.25, -2.0), (3.0, -0.5, 1.0), (7.0, 8.0)),
    "float32",
)


def test_reproducer_runs_standalone_and_prints_the_same_grads():
    script = grad_reproducer(MIXED)
    assert "y = x0 * torch.sin(x1) + torch.hypot(x2, x1)" in script
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == _printed_grads(MIXED)


@given(data=st.data())
def test_reproducer_prints_what_torch_computes(dtype, data):
    """For drawn cases in every dtype, the script (run here, in a fresh namespace) builds the same
    inputs and program as the suite: it prints exactly the gradients torch_gradients computes."""
    case = data.draw(grad_cases(dtype, lambda n: compositions(n, max_depth=2)), label="case")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(grad_reproducer(case), {})  # noqa: S102 - our own generated script
    assert out.getvalue() == _printed_grads(case)


# ------------------------------------------------------------------ torch source = the drawn tree
def _add(a, b):
    return Apply("add", (a, b))


X0, X1, X2 = Var(0), Var(1), Var(2)
PARENTHESISATION = [
    (_add(X0, _add(X1, X2)), "x0 + (x1 + x2)"),  # float + is not associative: keep them
    (_add(_add(X0, X1), X2), "x0 + x1 + x2"),
    (Apply("sub", (X0, Apply("sub", (X1, X2)))), "x0 - (x1 - x2)"),
    (Apply("div", (X0, Apply("mul", (X1, X2)))), "x0 / (x1 * x2)"),
    (Apply("mul", (X0, Apply("div", (X1, X2)))), "x0 * (x1 / x2)"),
    (Apply("pow", (Apply("pow", (X0, X1)), X2)), "(x0 ** x1) ** x2"),  # ** is right-associative
    (Apply("pow", (X0, Apply("pow", (X1, X2)))), "x0 ** x1 ** x2"),
    (Apply("pow_scalar", (Apply("neg", (X0,)), Const(2.0))), "(-x0) ** 2"),  # -x0 ** 2 is -(x0 ** 2)
    (Apply("neg", (Apply("pow_scalar", (X0, Const(2.0))),)), "-x0 ** 2"),
    (Apply("neg", (_add(X0, X1),)), "-(x0 + x1)"),
    (Apply("sin", (_add(X0, X1),), spelling=1), "(x0 + x1).sin()"),
    (Apply("sin", (_add(X0, X1),), spelling=0), "torch.sin(x0 + x1)"),
    (Apply("mul", (Const(3.0), _add(X0, X1))), "3 * (x0 + x1)"),
    (Apply("sub", (Const(2.0), Apply("sub", (X0, X1)))), "2 - (x0 - x1)"),
]


@pytest.mark.parametrize("expr, source", PARENTHESISATION, ids=[selectable(s) for _, s in PARENTHESISATION])
def test_torch_source_keeps_the_needed_parentheses(expr, source):
    assert torch_source(expr) == source
    assert _traced(source, 3) == _tree(expr)


class _Traced:
    """A value that records every operation applied to it, to read back the tree Python evaluates."""

    def __init__(self, label: str, args: tuple = ()):
        self.label, self.args = label, args

    def _op(symbol, reflected=False):  # builds the operator methods below
        def method(self, other):
            return _Traced(symbol, (other, self) if reflected else (self, other))

        return method

    __add__, __radd__ = _op("+"), _op("+", True)
    __sub__, __rsub__ = _op("-"), _op("-", True)
    __mul__, __rmul__ = _op("*"), _op("*", True)
    __truediv__, __rtruediv__ = _op("/"), _op("/", True)
    __mod__, __rmod__ = _op("%"), _op("%", True)
    __pow__, __rpow__ = _op("**"), _op("**", True)

    def __neg__(self):
        return _Traced("neg", (self,))

    def __abs__(self):
        return _Traced("abs()", (self,))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: _Traced(f".{name}()", (self, *_operands(args, kwargs)))


class _TracedModule:
    """`torch` (and torch.nn.functional, torch.special): any call records its full name."""

    def __init__(self, path: str):
        self.path = path

    def __getattr__(self, name):
        return _TracedModule(f"{self.path}.{name}")

    def __call__(self, *args, **kwargs):
        return _Traced(f"{self.path}()", _operands(args, kwargs))


def _operands(args: tuple, kwargs: dict) -> tuple:
    return (*args, *kwargs.values())


def _shape(value) -> tuple:
    if isinstance(value, _Traced):
        return (value.label, tuple(_shape(a) for a in value.args))
    if isinstance(value, str):  # a literal of the spelling: rounding_mode='trunc'
        return ("literal", value)
    return ("const", float(value))


def _traced(source: str, n_vars: int, names: tuple[str, ...] = ()) -> tuple:
    """The tree Python builds when it evaluates `source` (what torch would be asked to compute)."""
    namespace = {"torch": _TracedModule("torch"), "abs": abs,
                 **{name: _Traced(name) for name in (*(f"x{i}" for i in range(n_vars)), *names)}}
    return _shape(eval(source, namespace))  # our own generated text


def _substitute(tree: tuple, slots: dict[str, tuple]) -> tuple:
    label, args = tree
    if label in ("const", "literal"):
        return tree
    if label in slots and not args:
        return slots[label]
    return (label, tuple(_substitute(a, slots) for a in args))


def _tree(expr: Expr) -> tuple:
    """The tree as the tracer should see it: each spelling's own template traced with its arguments in the slots
    (so a spelling's literals, polygamma's order or decimals=-3, are on both sides). An op on Python scalars
    alone (a polynomial's `1 / 3`) is evaluated by Python before torch sees it, in the source text as in
    run_torch: a constant."""
    if isinstance(expr, Var):
        return (expr.name, ())
    if isinstance(expr, Const):
        return ("const", expr.value)
    spelling = OPS[expr.op].spellings[expr.spelling]
    if all(isinstance(a, Const) for a in expr.args):
        return ("const", float(spelling.call(*(a.value for a in expr.args))))
    slots = {f"slot{i}": _tree(a) for i, a in enumerate(expr.args)}
    return _substitute(_traced(spelling.template.format(*slots), 0, tuple(slots)), slots)


@given(data=st.data())
@pytest.mark.parametrize("kind", ["compositions", "polynomials"])
def test_torch_source_evaluates_as_the_drawn_tree(kind, data):
    """Python, evaluating the rendered source, applies exactly the drawn operations in the drawn
    order to the drawn operands: rendering never drops a parenthesis that changes the tree."""
    strategy = {"compositions": lambda: compositions(3, max_depth=4), "polynomials": lambda: polynomials(3)}[kind]
    expr = data.draw(strategy(), label="expression")
    assert _traced(torch_source(expr), 3) == _tree(expr), torch_source(expr)
