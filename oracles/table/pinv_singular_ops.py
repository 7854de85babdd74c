"""linalg.pinv[singular] in the tensor-op table: the program torch's OpInfo variant checks, pinv(a @ b.mT) for a (m x k)
and b (n x k) of full column rank k < min(m, n) (sides 2 and 3, batches of at most two). The product has rank k, and
pinv is differentiable only along perturbations that keep the rank, which perturbing the factors does: this is the
pseudo-inverse of a rank-deficient matrix with its derivative defined.

Exact: with a and bᵀ of full rank k, pinv(a bᵀ) = pinv(bᵀ) pinv(a) = b (bᵀb)⁻¹ (aᵀa)⁻¹ aᵀ, a rational function of the
factors whose Jacobian SymPy takes (k <= 2: the inverses are of 1 x 1 and 2 x 2 Gram matrices).

torch: A = a @ b.mT (a GEMM, rounded: torch's A is near a rank-k matrix, its other singular values of the order of
u·‖A‖, which pinv's default cutoff max(m, n)·eps·σ₁ drops), then pinv through an SVD; as for pinv itself
(oracles.table.pinv_ops) the model takes torch's result recomputed with the same program and unites it with the exact
one. The backward: pinv_backward(grad, P, A) (pinv_ops.pinv_backward, every product and sum rounded) with A the
model's enclosure of the product torch formed, then the matrix product's: ga = gA @ b, gb = (aᵀ gA)ᵀ.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb_mat

from oracles.table import spectra
from oracles.table.pinv_ops import _array, _hull, pinv_backward
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

SIDES = [(m, n, k) for m in (2, 3) for n in (2, 3) for k in (1, 2) if k < min(m, n)]


def _sym_one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fa, fb = sympy.Matrix(a.tolist()), sympy.Matrix(b.tolist())
    ga, gb = fa.T * fa, fb.T * fb
    return _array(fb * (gb.adjugate() / gb.det()) * (ga.adjugate() / ga.det()) * fa.T)


def _sympy(arrays, p):
    return spectra.per_batch(_sym_one, *arrays)


def _exact_pinv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b (bᵀb)⁻¹ (aᵀa)⁻¹ aᵀ in ball arithmetic."""
    fa, fb = arb_mat(a.tolist()), arb_mat(b.tolist())
    value = fb * (fb.transpose() * fb).solve((fa.transpose() * fa).solve(fa.transpose()))
    out = spectra.obj((value.nrows(), value.ncols()))
    for i, j in np.ndindex(*out.shape):
        out[i, j] = value[i, j]
    return out


def _program(joined: torch.Tensor, rows: int):
    """torch's program on the factors stacked (one exact-float check and cache key for both)."""
    a, b = joined[..., :rows, :], joined[..., rows:, :]
    return (torch.linalg.pinv(a @ b.mT),)


def _pinv_balls(F, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    for value in spectra.matmul(F, a, b.T).reshape(-1):  # torch forms the product in the dtype first
        F.in_range(value)
    (recomputed,) = spectra.recomputed(F, np.concatenate([a, b], axis=0), _program, a.shape[0])
    return _hull(recomputed, _exact_pinv(a, b))


def _forward(F, arrays, p):
    return spectra.per_batch(functools.partial(_pinv_balls, F), *arrays)


def _backward(F, arrays, out, grad, p):
    a, b = arrays
    ga, gb = spectra.obj(a.shape), spectra.obj(b.shape)
    for m in spectra.batches(a):
        product = spectra.matmul(F, a[m], b[m].T)
        g_product = pinv_backward(F, grad[m], _pinv_balls(F, a[m], b[m]), product)
        for target, piece in ((ga, spectra.matmul(F, g_product, b[m])),
                              (gb, spectra.matmul(F, a[m].T, g_product).T)):
            for index in np.ndindex(*piece.shape):
                target[m + index] = piece[index]
    return ga, gb


def _operands(shape):
    lead = () if len(shape) == 2 else (min(shape[0], spectra.MAX_BATCH),)
    return [(lead + (m, k), lead + (n, k)) for m, n, k in SIDES]


def _options(shapes):
    a, b = shapes
    return [_params()] if a[:-2] == b[:-2] and (a[-2], b[-2], a[-1]) in SIDES and a[-1] == b[-1] else []


TENSOR_OPS["pinv_singular"] = TensorOp(
    "pinv_singular", 2, (_spelling("torch.linalg.pinv({0} @ {1}.mT)", lambda a, b: torch.linalg.pinv(a @ b.mT)),),
    _sympy, _forward, _backward, OptionSpace(functools.cache(lambda shapes: tuple(_options(shapes)))),
    lambda shapes, p: shapes[0][:-2] + (shapes[1][-2], shapes[0][-2]), ("linalg.pinv[singular]",), ranks=(2, 3),
    cpu_dtypes=spectra.FLOATS, operand_shapes=_operands, matrix_domains=("separated_singular", "separated_singular"))
spectra.NAMES.append("pinv_singular")
