"""Spectral ops of the tensor-op table (oracles.table.spectral_ops) and their exact side (oracles.table.spectra).

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient); here:
- torch's forward of every spelling lies in the model's enclosure, on drawn matrices of the op's domain;
- the factors the model recomputes are bit for bit those torch's autograd saved for the backward (the model's
  one assumption about LAPACK);
- the exact side (arb's verified eigen-decompositions) agrees with SymPy's closed forms of 2 x 2 matrices;
- gradients worked out by hand;
- a backward wrong by a relative 1e-12 in float64 is caught, for every entry.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.core.render import symbol
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import RoundingModel
from oracles.table import spectral_ops
from oracles.table.shape_ops import _params
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.check import torch_gradients
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.cached import choice
from strategies.spectra import spectral_values
from tests.test_tensor_ops import assert_planted_error_caught, assert_spellings_inside_the_model

SEEDS = [(3,), (2,), (3, 3), (2, 2), (2, 3), (2, 3, 3), (2, 2, 2)]  # drawn shapes the entries grow from


def _arrays(values, shape):
    return np.array([arb(v) for v in values], dtype=object).reshape(shape)


@st.composite
def _drawn(draw, op: str, dtype: str, shapes=None):
    """(argument shapes, parameters, the matrix's values) of a drawn case of `op`."""
    entry = TENSOR_OPS[op]
    if shapes is None:
        shapes = draw(choice([s for seed in SEEDS if len(seed) in entry.ranks for s in entry.argument_shapes(seed)
                              if entry.space.options(s)]), label="argument shapes")
    p = draw(choice(entry.space.options(shapes)), label="parameters")
    values = draw(spectral_values(format_named(dtype), shapes[0], entry.matrix_domains[0]), label="matrix")
    return shapes, p, values


@pytest.mark.parametrize("op", spectral_ops.NAMES)
@scaled(10)
@given(data=st.data())
def test_forward_is_inside_the_model(op, dtype, data):
    """torch's forward of each spelling, and the rendered source, lie in the model's forward enclosure."""
    if dtype not in spectral_ops.FLOATS:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    entry = TENSOR_OPS[op]
    shapes, p, values = data.draw(_drawn(op, dtype), label="case")
    tensor = torch.tensor(values, dtype=torch.float64).reshape(shapes[0]).to(fmt.torch_dtype)
    model = np.asarray(entry.forward(RoundingModel(fmt), [_arrays(values, shapes[0])], p), dtype=object)
    assert_spellings_inside_the_model(entry, shapes, p, [tensor], model, dtype)


@scaled(10)
@given(data=st.data())
def test_recomputed_factors_are_the_ones_autograd_saved(dtype, data):
    """The model recomputes LAPACK's factors with the same call on the same matrix: they are bit for bit the
    eigenvectors and singular vectors torch's autograd saved for the backward."""
    if dtype not in spectral_ops.FLOATS:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    for op in ("eigvalsh", "svdvals"):
        shapes, p, values = data.draw(_drawn(op, dtype), label=op)
        leaf = torch.tensor(values, dtype=torch.float64).reshape(shapes[0]).to(fmt.torch_dtype).requires_grad_()
        if op == "eigvalsh":
            saved = [torch.linalg.eigvalsh(leaf, UPLO=p["UPLO"]).grad_fn._saved_eigenvectors]
            recomputed = [torch.linalg.eigh(leaf.detach(), UPLO=p["UPLO"])[1]]
        else:
            function = torch.linalg.svdvals(leaf).grad_fn
            saved = [function._saved_U, function._saved_Vh]
            u, _, vh = torch.linalg.svd(leaf.detach(), full_matrices=False)
            recomputed = [u, vh]
        for a, b in zip(saved, recomputed):
            assert torch.equal(a, b), f"{op} of {values}: saved {a.tolist()}, recomputed {b.tolist()}"


# ------------------------------------------------------------------ the exact side against SymPy's closed forms
def _symbols_2x2():
    x = [symbol(i) for i in range(4)]
    a, b, d = x[0], (x[1] + x[2]) / 2, x[3]  # the symmetric part, as torch differentiates
    return x, a, b, d


def _closed_eigen():
    """λ ascending and unit eigenvectors (b, λ - a) / norm of the symmetric part of [[x0, x1], [x2, x3]]."""
    x, a, b, d = _symbols_2x2()
    root = sympy.sqrt(((a - d) / 2) ** 2 + b**2)
    lam = [(a + d) / 2 - root, (a + d) / 2 + root]
    vectors = []
    for value in lam:
        norm = sympy.sqrt(b**2 + (value - a) ** 2)
        vectors.append([b / norm, (value - a) / norm])
    return x, lam, vectors


def _closed_singular_values():
    """σ descending of [[x0, x1], [x2, x3]]: the square roots of the eigenvalues of AᵀA."""
    x = [symbol(i) for i in range(4)]
    t = sum(v**2 for v in x)
    det = x[0] * x[3] - x[1] * x[2]
    root = sympy.sqrt(t**2 - 4 * det**2)
    return x, [sympy.sqrt((t + root) / 2), sympy.sqrt((t - root) / 2)]


def _gradient(expr, x, env) -> list[arb]:
    return [compile_sympy(sympy.diff(expr, v))(env) for v in x]


def _one_hot(shape, index) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for i in np.ndindex(*shape):
        out[i] = arb(1 if i == index else 0)
    return out


@scaled(5)
@given(data=st.data())
def test_exact_side_is_sympys_closed_form_for_2x2(data):
    """At drawn 2 x 2 matrices, the exact values and VJPs of each entry (arb's verified eigen-decompositions)
    overlap SymPy's derivatives of the closed forms: eigenvalues by the quadratic formula, eigenvectors (b, λ - a)
    normalized, times the sign the oracle took (torch's), singular values as square roots of AᵀA's eigenvalues."""
    fmt = format_named("float64")
    shapes = ((2, 2),)
    for op in spectral_ops.NAMES:
        _, p, values = data.draw(_drawn(op, "float64", shapes), label=op)
        env = tuple(arb(v) for v in values)
        value, pullback = TENSOR_OPS[op].exact_vjp(fmt, [_arrays(values, (2, 2))], p)
        if op == "eigvalsh":
            x, closed, _ = _closed_eigen()
            outputs = {(k,): (closed[k], 1) for k in range(2)}
        elif op == "svdvals":
            x, closed = _closed_singular_values()
            outputs = {(k,): (closed[k], 1) for k in range(2)}
        else:
            x, _, vectors = _closed_eigen()
            outputs = {}
            for i in range(2):
                for k in range(2):
                    closed = compile_sympy(vectors[k][0])(env)
                    sign = 1 if (value[0, k] * closed) > 0 else -1  # the oracle's sign: torch's
                    outputs[(i, k)] = (vectors[k][i], sign)
        for index, (expr, sign) in outputs.items():
            assert value[index].overlaps(sign * compile_sympy(expr)(env)), f"{op}{list(index)} at {values}"
            (got,) = pullback(_one_hot(value.shape, index))
            for g, want in zip(got.reshape(-1), _gradient(expr, x, env)):
                assert g.overlaps(sign * want), f"{op}: d{list(index)} is {g.str(15)}, SymPy {want.str(15)}"


# ------------------------------------------------------------------ by hand
def _assert_by_hand(node, shapes, values, by_hand, upstream=None, rel=2**-52):
    """The oracle's exact gradient is the one worked out by hand, and torch's is verified in each dtype."""
    for dtype in spectral_ops.FLOATS:
        case = TensorCase(node, shapes, values, dtype, upstream)
        expected = expected_tensor_gradients(case)
        grads = torch_gradients(case)
        for i, hand in by_hand.items():
            exact = [float(e.exact.mid()) for e in expected[i].elements]
            assert exact == pytest.approx(list(hand), rel=rel, abs=2**-60), f"x{i} of {case.source}: {exact}"
            torch_values = grads[i].to(torch.float64).reshape(-1).tolist()
            verdicts = [judge_element(i, (), v, e, case.format) for v, e in zip(torch_values, expected[i].elements)]
            assert all(v.verdict is Verdict.VERIFIED for v in verdicts), f"{case.source} ({dtype}): {torch_values}"


def _node(op: str, spelling: int = 0) -> Tensor:
    return Tensor(op, (Input(0),), _params(**({} if op == "svdvals" else {"UPLO": "L"})), spelling)


A = (2.0, 1.0, 1.0, 2.0)  # [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, -1)/√2 and (1, 1)/√2


def test_eigenvalue_gradient_is_the_eigenvectors_projector():
    """∂λ_k/∂A = v_k v_kᵀ: for [[2, 1], [1, 2]] and λ = 1, [[1, -1], [-1, 1]] / 2; gradient (1, 1): the identity."""
    _assert_by_hand(_node("eigvalsh"), ((2, 2),), (A,), {0: (0.5, -0.5, -0.5, 0.5)}, upstream=(1.0, 0.0))
    _assert_by_hand(_node("eigvalsh", 2), ((2, 2),), (A,), {0: (1.0, 0.0, 0.0, 1.0)})


def test_singular_value_gradient_is_u_v_transposed():
    """∂σ_k/∂A = u_k v_kᵀ: for [[2, 1], [1, 2]] (σ = 3, 1, u = v = (1, 1)/√2 and (1, -1)/√2) and σ_1 = 3,
    [[1, 1], [1, 1]] / 2."""
    _assert_by_hand(_node("svdvals"), ((2, 2),), (A,), {0: (0.5, 0.5, 0.5, 0.5)}, upstream=(1.0, 0.0))


def test_eigenvector_gradient_by_hand():
    """dv_2 = v_1 v_1ᵀ dA v_2 / (λ_2 - λ_1): for [[2, 1], [1, 2]] and the loss v_2[0] (the first component of the
    eigenvector of 3, with torch's sign s), the symmetric part of (e_0ᵀ v_1) v_1 v_2ᵀ / 2:
    s [[1, 0], [0, -1]] / (4√2)."""
    s = float(torch.linalg.eigh(torch.tensor(A, dtype=torch.float64).reshape(2, 2))[1][0, 1].sign())
    c = s / (4 * 2**0.5)
    _assert_by_hand(_node("eigh_vectors"), ((2, 2),), (A,), {0: (c, 0.0, 0.0, -c)}, upstream=(0.0, 1.0, 0.0, 0.0),
                    rel=2**-50)


@pytest.mark.parametrize("op", spectral_ops.NAMES)
def test_a_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64) on matrices with separated spectra: the model's enclosure
    (LAPACK's factors within a few ulps of the exact ones) is tighter than that, so some example fails."""
    assert_planted_error_caught(op, device, 1e-12)
