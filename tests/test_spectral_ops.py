"""The spectral and factorization entries of the tensor-op table (oracles.table.spectral_ops, singular_ops, qr_ops,
pinv_ops, householder_ops, ormqr_ops; shared parts in oracles.table.spectra), most of which take LAPACK's results as
the model's inputs.

Their gradients are checked like every tensor op's by tests/test_tensor_ops.py (test_tensor_op_gradient); here:
- torch's forward of every spelling lies in the model's enclosure, on drawn matrices of the op's domain (which
  shows every spelling computes the results the model recomputes: a driver whose results are not reproducible,
  lstsq's gelsy, fails here);
- the factors the model recomputes are bit for bit those torch's autograd saved for the backward (the model's
  one assumption about LAPACK);
- the exact side agrees with SymPy's closed forms at matrices with a side 2 (eigen-decompositions by the quadratic
  formula and Jacobi's angle, SVD through AᵀA, QR by Gram-Schmidt, the norms and cond of the singular values);
- gradients worked out by hand; a repeated eigenvalue or singular value leaves every element unverified;
- a backward wrong by a relative 1e-12 in float64 is caught, for every entry.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import sympy
import torch
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from gradoracle.pytest_plugin import scaled
from oracles.core.expected import Status
from oracles.core.render import symbol
from oracles.core.verdict import Verdict, judge_element
from oracles.numerics.dtypes import format_named
from oracles.numerics.exact import compile_sympy
from oracles.numerics.rounding import RoundingModel
from oracles.table import qr_ops, singular_ops, spectra, spectral_ops
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
    """(argument shapes, parameters, the first argument's values) of a drawn case of `op`."""
    shapes, p, values = draw(_drawn_all(op, dtype, shapes))
    return shapes, p, values[0]


@st.composite
def _drawn_all(draw, op: str, dtype: str, shapes=None):
    """(argument shapes, parameters, every argument's values): the matrices in the entry's domains, any other
    argument (lstsq's B) small floats of the dtype."""
    entry = TENSOR_OPS[op]
    fmt = format_named(dtype)
    if shapes is None:
        shapes = draw(choice([s for seed in SEEDS if len(seed) in entry.ranks for s in entry.argument_shapes(seed)
                              if entry.space.options(s)]), label="argument shapes")
    p = draw(choice(entry.space.options(shapes)), label="parameters")
    values = [draw(spectral_values(fmt, shape, domain) if domain else
                   st.lists(st.floats(-3, 3).map(fmt.round), min_size=math.prod(shape), max_size=math.prod(shape)),
                   label=f"x{k}") for k, (shape, domain) in enumerate(zip(shapes, entry.matrix_domains))]
    return shapes, p, values


@pytest.mark.parametrize("op", spectra.NAMES)
@scaled(2)
@given(data=st.data())
def test_forward_is_inside_the_model(op, dtype, data):
    """torch's forward of each spelling, and the rendered source, lie in the model's forward enclosure (the hull of
    the recomputed factors and the exact ones: what this shows is that every spelling computes the factors the
    model recomputes, or ones as close to the exact; few examples, torch's QR costs milliseconds on two threads)."""
    if dtype not in spectra.FLOATS:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    entry = TENSOR_OPS[op]
    shapes, p, values = data.draw(_drawn_all(op, dtype), label="case")
    tensors = [torch.tensor(v, dtype=torch.float64).reshape(s).to(fmt.torch_dtype) for v, s in zip(values, shapes)]
    model = np.asarray(entry.forward(RoundingModel(fmt), [_arrays(v, s) for v, s in zip(values, shapes)], p),
                       dtype=object)
    assert_spellings_inside_the_model(entry, shapes, p, tensors, model, dtype)


@scaled(5)
@given(data=st.data())
def test_recomputed_factors_are_the_ones_autograd_saved(dtype, data):
    """The model recomputes LAPACK's factors with the same call on the same matrix (the entries' own functions):
    they are bit for bit the eigenvectors, singular vectors and QR factors torch's autograd saved for the backward."""
    if dtype not in spectra.FLOATS:
        pytest.skip(f"LAPACK has no {dtype} kernels")
    fmt = format_named(dtype)
    for op in ("eigvalsh", "svdvals", "qr_q"):
        shapes, p, values = data.draw(_drawn(op, dtype), label=op)
        matrix = torch.tensor(values, dtype=torch.float64).reshape(shapes[0]).to(fmt.torch_dtype)
        leaf = matrix.clone().requires_grad_()
        if op == "eigvalsh":
            saved = [torch.linalg.eigvalsh(leaf, UPLO=p["UPLO"]).grad_fn._saved_eigenvectors]
            recomputed = [spectral_ops._eigh(matrix, p["UPLO"])[1]]
        elif op == "svdvals":
            function = torch.linalg.svd(leaf, full_matrices=p["full_matrices"])[1].grad_fn
            k = min(shapes[0][-2:])
            saved = [function._saved_U[..., :k], function._saved_Vh[..., :k, :]]
            recomputed = list(singular_ops._gesdd(matrix, p["full_matrices"])[::2])
        else:
            function = torch.linalg.qr(leaf, mode=p["mode"])[0].grad_fn
            saved = [function._saved_Q, function._saved_R]
            recomputed = list(qr_ops._qr(matrix, p["mode"]))
        for a, b in zip(saved, recomputed):
            assert torch.equal(a, b), f"{op} of {values}: saved {a.tolist()}, recomputed {b.tolist()}"


# ------------------------------------------------------------------ the exact side against SymPy's closed forms
def _eigen_2x2(p, q, r):
    """λ ascending and unit eigenvectors of [[p, q], [q, r]]: the rotation by θ = atan2(2q, p - r) / 2 (Jacobi's)
    takes e_0 to the eigenvector of the larger eigenvalue (small expressions, so SymPy differentiates them fast)."""
    root = sympy.sqrt(((p - r) / 2) ** 2 + q**2)
    theta = sympy.atan2(2 * q, p - r) / 2
    c, s = sympy.cos(theta), sympy.sin(theta)
    return [(p + r) / 2 - root, (p + r) / 2 + root], [[-s, c], [c, s]]


def _closed_eigen(x):
    """The eigenvalues and eigenvectors of the symmetric part of [[x0, x1], [x2, x3]] (what torch differentiates)."""
    return _eigen_2x2(x[0], (x[1] + x[2]) / 2, x[3])


def _closed_svd(x, m: int, n: int):
    """σ descending, u_k, v_k of the m x n matrix of symbols x (one side 2): the eigen-decomposition of the 2 x 2
    AᵀA (or AAᵀ) by the quadratic formula, the other vectors A v_k / σ_k (Aᵀ u_k / σ_k)."""
    a = sympy.Matrix(m, n, x)
    gram = a.T * a if m >= n else a * a.T
    lam, vectors = _eigen_2x2(gram[0, 0], gram[0, 1], gram[1, 1])
    sigmas = [sympy.sqrt(v) for v in reversed(lam)]
    near = [sympy.Matrix(v) for v in reversed(vectors)]
    far = [(a * v if m >= n else a.T * v) / s for v, s in zip(near, sigmas)]
    us, vs = (far, near) if m >= n else (near, far)
    return sigmas, [list(u) for u in us], [list(v) for v in vs]


def _closed_qr(x, m: int, n: int):
    """Q (columns) and R (rows) of the m x n matrix of symbols x by Gram-Schmidt, R's diagonal positive."""
    a = sympy.Matrix(m, n, x)
    k = min(m, n)
    q: list[sympy.Matrix] = []
    r = [[sympy.Integer(0)] * n for _ in range(k)]
    for j in range(k):
        remainder = a[:, j] - sum((q[i] * q[i].dot(a[:, j]) for i in range(j)), sympy.zeros(m, 1))
        r[j][j] = sympy.sqrt(remainder.dot(remainder))
        q.append(remainder / r[j][j])
    for i in range(k):
        for j in range(i + 1, n):
            r[i][j] = q[i].dot(a[:, j])
    return [list(column) for column in q], r


@functools.cache
def _closed_forms(op: str, p, shape):
    """(symbols, {output index: (its closed form, the k whose sign the oracle chose, or None)}) of `op`
    with parameters `p`."""
    m, n = shape
    x = [symbol(i) for i in range(m * n)]
    if op in ("eigvalsh", "eigh_vectors"):
        lam, vectors = _closed_eigen(x)
        if op == "eigvalsh":
            return x, {(k,): (lam[k], None) for k in range(2)}
        return x, {(i, k): (vectors[k][i], k) for i in range(2) for k in range(2)}
    k = min(m, n)
    if op.startswith("qr"):
        q, r = _closed_qr(x, m, n)
        if op == "qr_q":
            return x, {(i, j): (q[j][i], j) for i in range(m) for j in range(k)}
        return x, {(i, j): (r[i][j], i) for i in range(k) for j in range(n)}
    sigmas, us, vs = _closed_svd(x, m, n)
    if op == "svdvals":
        return x, {(c,): (sigmas[c], None) for c in range(k)}
    if op == "svd_u":
        return x, {(i, c): (us[c][i], c) for i in range(m) for c in range(k)}
    if op == "svd_vh":
        return x, {((i, c) if p["V"] else (c, i)): (vs[c][i], c) for i in range(n) for c in range(k)}
    if op == "cond":
        top, bottom = (1, 0) if p["ord"] == -2 else (0, 1)
        return x, {(): (sigmas[top] / sigmas[bottom], None)}
    value = sigmas[0] + sigmas[1] if p["ord"] == "nuc" else sigmas[0 if p["ord"] == 2 else 1]
    return x, {(0, 0) if p["keepdim"] else (): (value, None)}


@functools.cache
def _compiled(op: str, p, shape, index=None):
    """The programs of the closed forms' values, or of one output's partial derivatives (`index`)."""
    x, forms = _closed_forms(op, p, shape)
    if index is None:
        return {i: compile_sympy(form) for i, (form, _) in forms.items()}
    return [compile_sympy(sympy.diff(forms[index][0], v)) for v in x]


def _one_hot(shape, index) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for i in np.ndindex(*shape):
        out[i] = arb(1 if i == index else 0)
    return out


@pytest.mark.parametrize("op", ["eigvalsh", "eigh_vectors", "svdvals", "svd_u", "svd_vh", "qr_q", "qr_r",
                                "spectral_norm", "cond"])
@scaled(3)
@given(data=st.data())
def test_exact_side_is_sympys_closed_form(op, data):
    """At drawn matrices with a side 2 (2 x 2; 3 x 2 and 2 x 3 for SVD and QR), the exact values and VJPs of the entry
    (arb's verified eigen-decompositions; for singular vectors, the differential of A = U S Vᵀ) overlap SymPy's
    derivatives of the closed forms: eigenvalues by the quadratic formula, eigenvectors by Jacobi's rotation angle,
    singular triples from the eigen-decomposition of AᵀA or AAᵀ, QR by Gram-Schmidt, each vector (and R's row) times
    the sign the oracle took."""
    fmt = format_named("float64")
    shapes = [((2, 2),)] if op.startswith("eig") else [((2, 2),), ((3, 2),), ((2, 3),)]
    shape = data.draw(choice(shapes), label="shape")
    _, p, values = data.draw(_drawn(op, "float64", shape), label="case")
    env = tuple(arb(v) for v in values)
    value, pullback = TENSOR_OPS[op].exact_vjp(fmt, [_arrays(values, shape[0])], p)
    _, forms = _closed_forms(op, p, shape[0])
    values_of = {index: program(env) for index, program in _compiled(op, p, shape[0]).items()}
    signs = {}
    for index, (_, k) in forms.items():  # the sign of vector k: the oracle's (torch's), at its largest element
        if k is not None and not value[index].contains(0) and (
                k not in signs or abs(value[index].mid()) > abs(value[signs[k][0]].mid())):
            signs[k] = (index, 1 if value[index] * values_of[index] > 0 else -1)
    sign_of = {index: 1 if k is None else signs[k][1] for index, (_, k) in forms.items()}
    for index in forms:
        assert value[index].overlaps(sign_of[index] * values_of[index]), f"{op}{list(index)} at {values}"
    index = data.draw(choice(list(forms)), label="output differentiated")  # SymPy's derivatives are the slow part
    (got,) = pullback(_one_hot(value.shape, index))
    for g, partial in zip(got.reshape(-1), _compiled(op, p, shape[0], index)):
        want = sign_of[index] * partial(env)
        assert g.overlaps(want), f"{op}: d{list(index)} is {g.str(15)}, SymPy {want.str(15)} at {values}"


# ------------------------------------------------------------------ by hand
def _assert_by_hand(node, shapes, values, by_hand, upstream=None, rel=2**-52):
    """The oracle's exact gradient is the one worked out by hand, and torch's is verified in each dtype."""
    for dtype in spectra.FLOATS:
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
    return Tensor(op, (Input(0),), TENSOR_OPS[op].space.options(((2, 2),))[0], spelling)


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


@pytest.mark.parametrize("op", spectra.NAMES)
def test_a_backward_off_by_1e_12_is_caught(op, device):
    """torch's own backward times 1 + 1e-12 (float64) on matrices with separated spectra: the model's enclosure
    (LAPACK's factors within a few ulps of the exact ones) is tighter than that, so some example fails."""
    assert_planted_error_caught(op, device, 1e-12)


@pytest.mark.parametrize(("op", "matrix"), [("eigvalsh", (2.0, 0.0, 0.0, 2.0)), ("eigh_vectors", (2.0, 0.0, 0.0, 2.0)),
                                            ("svdvals", (3.0, 0.0, 0.0, 3.0)), ("svdvals", (1.0, 2.0, 2.0, 4.0)),
                                            ("svd_u", (1.0, 2.0, 2.0, 4.0))])
def test_oracle_says_nothing_where_the_spectrum_is_not_separated(op, matrix):
    """A repeated eigenvalue or singular value, or a singular value 0: the derivatives of the decomposition do not
    exist there (arb cannot isolate the values), and every element is unverified with that reason, never judged
    (torch's eigenvector gradient there is NaN: it divides by the zero gap)."""
    node = Tensor(op, (Input(0),), TENSOR_OPS[op].space.options(((2, 2),))[0], 0)
    case = TensorCase(node, ((2, 2),), (matrix,), "float64")
    grads = torch_gradients(case)[0].reshape(-1).tolist()
    for value, element in zip(grads, expected_tensor_gradients(case)[0].elements):
        assert element.status is Status.SINGULAR and ("isolated" in element.reason or "0" in element.reason), (
            f"{case.source}: {element}")
        assert judge_element(0, (), value, element, case.format).verdict is Verdict.UNVERIFIED
