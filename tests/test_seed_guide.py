"""The seed guides' autograd workflow (the project's two "01 Basic Autograd" guides) as explicit tests.

Flag inputs with requires_grad, compute, call backward() on a scalar, read .grad. Every expected value
is derived here from the mathematics (exact rationals), never copied from torch's output; then each
example is also run through the oracle, built as expression IR from the op table.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from flint import arb, fmpq

from oracles.core.case import GradCase
from oracles.core.check import check_case
from oracles.core.expected import Status
from oracles.core.expr import Apply, Const, Var
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.render import torch_source
from oracles.core.verdict import Verdict

FLOAT32_U = Fraction(1, 2**24)  # unit roundoff of float32


def fl32(value: float) -> Fraction:
    """The exact value float32 stores for `value` (round to nearest even, done by exact arithmetic:
    independent of torch's conversion). Valid for normal numbers, which is all this module uses."""
    exact = Fraction(value)
    exponent = 0
    while abs(exact) >= 2 * 2**exponent:
        exponent += 1
    while abs(exact) < 2**exponent:
        exponent -= 1
    ulp = Fraction(2) ** (exponent - 23)
    return round(exact / ulp) * ulp  # Fraction.__round__ rounds half to even


# ------------------------------------------------------------------ the guide's examples in torch
def test_quadratic_gradient_is_2x_plus_3():
    """y = x**2 + 3x + 1 at x = 2: dy/dx = 2x + 3 = 7. Every intermediate (4, 6, 11; 4 + 3) is a small
    integer, exact in float32, so the gradient is exactly 7 and prints as `tensor([7.])`."""
    x = torch.tensor([2.0], requires_grad=True)
    y = x**2 + 3 * x + 1
    y.backward()
    expected = 2 * Fraction(2) + 3
    assert x.grad.dtype == torch.float32 and x.grad.shape == (1,)
    assert Fraction(x.grad.item()) == expected == 7
    assert str(x.grad) == "tensor([7.])"
    assert Fraction(y.item()) == Fraction(2) ** 2 + 3 * 2 + 1


def test_cube_gradient_is_3z_squared():
    """w = z**3 at z = 3: dw/dz = 3z² = 27, exact in float32."""
    z = torch.tensor([3.0], requires_grad=True)
    w = z**3
    w.backward()
    assert Fraction(z.grad.item()) == 3 * Fraction(3) ** 2 == 27
    assert str(z.grad) == "tensor([27.])"


def test_brightness_penalty_gradient():
    """P = (p - 0.8)**2 at p = 0.5, in float32 as the guide writes it.

    Textbook: dP/dp = 2(p - 0.8) = -0.6. But torch computes with float32's 0.8, c = fl32(0.8) =
    13421773/2**24, so the function torch differentiates has derivative 2(p - c) = -5033165/2**23.
    Rounding error: p - c is exact (Sterbenz: c/2 <= p <= 2c), and the backward's 2 * (p - c)**1 only
    doubles it, so float32 contributes no error at all: the tolerance is 0, and the gradient must be
    2(p - c) exactly. (Had torch used 0.8 in double, p - 0.8 would round once, relative error <= u =
    2**-24, to the same float32.) Its distance from the textbook -0.6 is 2|c - 0.8| ~ 2.4e-8, below
    half a float32 ulp at 0.6 (2**-25 ~ 3.0e-8), which is why it prints as -0.6000."""
    p = torch.tensor([0.5], requires_grad=True)
    target_brightness = 0.8
    brightness_penalty = (p - target_brightness) ** 2
    brightness_penalty.backward()

    c = fl32(0.8)
    assert c == Fraction(13421773, 2**24)
    expected = 2 * (Fraction(1, 2) - c)
    assert expected == Fraction(-5033165, 2**23)
    assert Fraction(p.grad.item()) == expected
    textbook = 2 * (Fraction(1, 2) - Fraction(8, 10))
    assert textbook == Fraction(-3, 5)
    assert abs(expected - textbook) == 2 * abs(c - Fraction(8, 10)) < FLOAT32_U / 2  # u/2 = 2**-25
    assert str(p.grad) == f"tensor([{float(expected):.4f}])" == "tensor([-0.6000])"
    # The penalty itself: (p - c)**2 rounded once to float32 (pow: accurate to 1 ulp = 2u relative).
    penalty = (Fraction(1, 2) - c) ** 2
    assert abs(Fraction(brightness_penalty.item()) - penalty) <= 2 * FLOAT32_U * penalty


def test_grad_fn_names_the_last_operation():
    """grad_fn is the backward node of the op that produced the tensor: `... + 1` -> AddBackward0,
    `(...) ** 2` and `z ** 3` -> PowBackward0; leaves have none."""
    x = torch.tensor([2.0], requires_grad=True)
    y = x**2 + 3 * x + 1
    p = torch.tensor([0.5], requires_grad=True)
    penalty = (p - 0.8) ** 2
    z = torch.tensor([3.0], requires_grad=True)
    w = z**3
    assert y.grad_fn.name() == "AddBackward0"
    assert penalty.grad_fn.name() == "PowBackward0"
    assert w.grad_fn.name() == "PowBackward0"
    assert "grad_fn=<AddBackward0>" in repr(y)
    assert x.grad_fn is None and p.grad_fn is None and z.grad_fn is None


def test_requires_grad_propagates_from_flagged_inputs_only():
    """A result requires grad iff some input does (outside no_grad); only leaves receive .grad."""
    x = torch.tensor([2.0], requires_grad=True)
    y = x**2 + 3 * x + 1
    assert y.requires_grad and not y.is_leaf
    assert x.requires_grad and x.is_leaf

    plain = torch.tensor([2.0])
    unflagged = plain**2 + 3 * plain + 1
    assert not unflagged.requires_grad and unflagged.grad_fn is None and unflagged.is_leaf

    mixed = plain * x
    assert mixed.requires_grad and mixed.grad_fn.name() == "MulBackward0"

    with torch.no_grad():
        untracked = x**2
    assert not untracked.requires_grad and untracked.grad_fn is None

    y.backward()
    assert plain.grad is None  # never flagged: no gradient is computed for it


def test_backward_accumulates_into_grad():
    """The guide: gradients are *accumulated* into .grad. Two backward passes of y = x**2 + 3x + 1 at
    x = 2 leave 7 + 7 = 14 (exact in float32)."""
    x = torch.tensor([2.0], requires_grad=True)
    for _ in range(2):
        y = x**2 + 3 * x + 1
        y.backward()
    assert Fraction(x.grad.item()) == 2 * (2 * 2 + 3)


def test_backward_needs_a_scalar_or_a_gradient_argument():
    """The guide's note: backward() on a non-scalar needs `gradient=`. With gradient v, x.grad is the
    vector-Jacobian product v·∂y/∂x = v * 2x for y = x**2, elementwise (exact here)."""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x**2
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    y.backward(gradient=torch.tensor([1.0, 0.5]))
    assert [Fraction(g) for g in x.grad.tolist()] == [1 * 2 * 1, Fraction(1, 2) * 2 * 2]


# ------------------------------------------------------------------ the same examples through the oracle
QUADRATIC = Apply("add", (Apply("add", (Apply("pow_scalar", (Var(0), Const(2.0))),
                                        Apply("mul", (Const(3.0), Var(0))))), Const(1.0)))
CUBE = Apply("pow_scalar", (Var(0), Const(3.0)))
PENALTY = Apply("pow_scalar", (Apply("sub", (Var(0), Const(0.8))), Const(2.0)))

# expression, source the guide writes, input x, the exact derivative of the function the oracle sees
# (SymPy reads the Python float 0.8 as its exact binary value, Fraction(0.8), as torch receives it)
GUIDE_EXAMPLES = {
    "quadratic": (QUADRATIC, "x0 ** 2 + 3 * x0 + 1", 2.0, 2 * Fraction(2) + 3),
    "cube": (CUBE, "x0 ** 3", 3.0, 3 * Fraction(3) ** 2),
    "penalty": (PENALTY, "(x0 - 0.8) ** 2", 0.5, 2 * (Fraction(1, 2) - Fraction(0.8))),
}


@pytest.mark.parametrize("example", list(GUIDE_EXAMPLES))
def test_guide_examples_through_the_oracle(example, dtype, device):
    """The oracle renders the guide's source text, finds the exact derivative (to arb's 192 bits) and
    judges torch's gradient verified in every dtype under test."""
    expr, source, x, derivative = GUIDE_EXAMPLES[example]
    assert torch_source(expr) == source
    case = GradCase(expr, ((1,),), ((x,),), dtype)
    (grad,) = expected_gradients(case)
    (element,) = grad.elements
    assert element.status is Status.OK
    exact_ball = arb(fmpq(derivative.numerator, derivative.denominator))
    assert (element.exact - exact_ball).abs_upper() <= abs(exact_ball) * arb(2) ** -180
    outcome = check_case(case, device)
    assert [v.verdict for v in outcome.verdicts] == [Verdict.VERIFIED]


def test_oracle_judges_the_float32_penalty_by_the_float32_constant():
    """Torch's float32 gradient (2(p - fl32(0.8)), exact, derived above) is 2.4e-8 (0.7u relative) from
    the oracle's exact 2(p - 0.8): the error model's enclosure must account for the constant's float32
    rounding. Its worst case is about 11u relative here (the constant's rounding, the subtraction's,
    widened by |p| + |0.8| for any accumulation order, and the backward's pow and product), so it
    must still exclude a gradient off by 1e-6 relative (17u)."""
    case = GradCase(PENALTY, ((1,),), ((0.5,),), "float32")
    (grad,) = expected_gradients(case)
    (element,) = grad.elements
    torch_value = 2 * (Fraction(1, 2) - fl32(0.8))

    def ball(value: Fraction) -> arb:
        return arb(fmpq(value.numerator, value.denominator))

    assert element.enclosure.contains(ball(torch_value))
    for off_by in (Fraction(1, 10**6), -Fraction(1, 10**6)):
        assert not element.enclosure.overlaps(ball(torch_value * (1 + off_by)))
