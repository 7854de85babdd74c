"""The second-order oracle of the tensor ops: its constant Hessians are SymPy's own Hessian of the program, and the
double-backward check catches a backward whose own derivative is wrong (a right gradient that is not differentiable,
or one that depends on the input where the op is linear)."""

from __future__ import annotations

import numpy as np
import sympy
import torch
from flint import arb
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.core.verdict import Verdict
from oracles.numerics.dtypes import format_named
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, ReductionParams
from oracles.tensor.oracle import program_sympy
from oracles.tensor.program import Input, Tensor, TensorCase
from oracles.tensor.second_order import case_form, expected_hessian, sum_of_products
from oracles.tensor.second_order_checks import double_backward
from strategies.tensor_programs import tensor_cases

QUADRATIC_OPS = ("matmul", "outer", "addcmul", "conv1d", "var", "mse_loss", "cross", "sum", "index_add", "diff")


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_constant_hessians_are_sympys_hessian_of_the_program(data):
    op = data.draw(st.sampled_from(QUADRATIC_OPS), label="op")
    case = data.draw(tensor_cases("float64", root=op, stages=1, upstream=False, direct=True), label="case")
    form = case_form(case)
    out, symbols = program_sympy(case)
    flat = [sympy.sympify(e) for e in out.reshape(-1)]
    upstream = data.draw(st.lists(st.sampled_from([1, -2, 3]), min_size=len(flat), max_size=len(flat)), label="u")
    loss = sympy.Add(*(u * e for u, e in zip(upstream, flat)))
    degree = max((sympy.Poly(e, *symbols).total_degree() for e in flat if e.free_symbols), default=0)
    if degree > 2 or TENSOR_OPS[op].backward_divides:
        assert form is None
        return
    assert form is not None
    hessian = sympy.hessian(loss, symbols)
    expected = expected_hessian(form, [float(u) for u in upstream], format_named("float64"))
    for p in range(len(symbols)):
        for q in range(len(symbols)):
            exact = hessian[p, q]
            assert exact.is_Rational, exact
            # the rational itself, not a ball of it (arb(4) / 3 is one: it may poke out of an equally tight ball of 4/3)
            assert (expected[p][q].exact * exact.q).contains(arb(exact.p)), (p, q, exact, expected[p][q].exact)


def test_sum_of_products_encloses_its_sum_and_is_exact_without_terms():
    fmt = format_named("float32")
    terms = [arb(1.5), arb(-2.25), arb(2) ** -30]
    element = sum_of_products(terms, [abs(t) for t in terms], fmt)
    assert element.exact.contains(arb(-0.75) + arb(2) ** -30)
    assert element.enclosure.contains(element.exact) and element.enclosure.rad() > 0
    # products that cancel in the exact sum still widen the enclosure
    wider = sum_of_products(terms, [abs(t) for t in terms] + [arb(16), arb(16)], fmt)
    assert wider.enclosure.rad() > element.enclosure.rad()
    empty = sum_of_products([], [], fmt)
    assert empty.enclosure.rad() == 0 and empty.exact == 0


class _Detached(torch.autograd.Function):
    """x @ y with the right gradient computed from detached inputs: first order right, its derivative lost."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x @ y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad @ y.detach().mT, x.detach().mT @ grad


class _InputDependent(torch.autograd.Function):
    """sum(x) with a gradient that depends on x by 1e-3·(x - x): the right value, a derivative where there is none."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sum()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 + 1e-3 * (x - x.detach()))


def _matmul_case() -> TensorCase:
    program = Tensor("matmul", (Input(0), Input(1)), CallParams(()))
    return TensorCase(program, ((2, 2), (2, 2)), ((1.0, 2.0, -1.0, 0.5), (3.0, -2.0, 1.0, 4.0)), "float64")


def _sum_case() -> TensorCase:
    program = Tensor("sum", (Input(0),), ReductionParams(dim=None, keepdim=False))
    return TensorCase(program, ((3,),), ((1.0, 2.0, -1.0),), "float64")


def _verdicts(case, overrides):
    n_out = int(np.prod(case.output_shape, dtype=int))
    directions = {i: tuple(1.0 + k for k in range(int(np.prod(s, dtype=int)))) for i, s in enumerate(case.shapes)}
    _, verdicts = double_backward(case, tuple(1.0 for _ in range(n_out)), directions, 4.0, overrides=overrides)
    return verdicts


def test_the_stock_double_backwards_are_verified():
    for case in (_matmul_case(), _sum_case()):
        assert case_form(case) is not None
        verdicts = _verdicts(case, None)
        assert verdicts and all(v.verdict is Verdict.VERIFIED for v in verdicts), verdicts


def test_a_gradient_that_is_not_differentiable_is_caught():
    """matmul's Hessian couples x and y: a double backward of 0 for the inputs is wrong there."""
    verdicts = _verdicts(_matmul_case(), {"matmul": lambda args, params: _Detached.apply(*args)})
    wrong = [v for v in verdicts if v.verdict is Verdict.WRONG]
    assert wrong and all(v.leaf >= 0 for v in wrong), verdicts


def test_an_input_dependent_gradient_of_a_linear_op_is_caught():
    """sum's Hessian is 0: a double backward of 1e-3·u·w for the input is wrong, however small."""
    verdicts = _verdicts(_sum_case(), {"sum": lambda args, params: _InputDependent.apply(*args)})
    assert [v.index for v in verdicts if v.verdict is Verdict.WRONG] == [(0,), (1,), (2,)], verdicts
