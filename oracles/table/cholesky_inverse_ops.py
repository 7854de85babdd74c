"""cholesky_inverse in the tensor-op table: (L Lᵀ)⁻¹ from a Cholesky factor L (upper=False), or (Uᵀ U)⁻¹ from U
(upper=True, drawn as the transpose of a lower factor, so that both are the same function of the drawn L), for small
matrices (sides 2 and 3, batches of at most two), after FunctionsManual.cpp (cholesky_inverse_backward).

Convention, as for cholesky_solve (oracles.table.linalg_ops): LAPACK's potri reads one triangle, but the backward
returns -(S L) (upper: -(U S)) for every element, the derivative of (L Lᵀ)⁻¹ in every element of a full L; that is
the function whose derivative the exact side takes, and L is drawn triangular (its other triangle exactly 0), where it
is the value torch computes.

The forward: potri (an inverse of the triangle, trtri, then a product, lauum) has no element formulas fixed by LAPACK
(reference trtri is column-oriented, blocked and recursive variants solve with the diagonal blocks instead), so, as
for the spectral entries (oracles.table.spectra), the model's forward is the hull of torch's result (recomputed with
the same call) and the exact inverse, and the backward is evaluated in balls over it:
common = grad + gradᵀ (one rounding each), S = inverse (common inverse) (two matrix products),
gL = -(S L) (upper: gU = -(U S), a view's transpose away from L).
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from oracles.table import factorizations as lapack
from oracles.table import spectra
from oracles.table.linalg_ops import _entry, _matrix_operand, _negated, _per_matrix, _per_matrix_backward, _same
from oracles.table.lu_ops import _triangular_inverse
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_formulas import ZERO


@_per_matrix
def _sym_inverse(arrays, p):
    """(L Lᵀ)⁻¹ = adj(L)ᵀ adj(L) / det(L)²: far smaller expressions than the inverse of the product (degree 2n
    polynomials), for SymPy's Jacobian."""
    low = sympy.Matrix(arrays[0].tolist())
    adjugate = low.adjugate()
    return np.array((adjugate.T * adjugate / low.det(method="berkowitz") ** 2).tolist(), dtype=object)


def _cholesky_inverse(t: torch.Tensor, upper: bool):
    return (torch.cholesky_inverse(t.mT, upper=True) if upper else torch.cholesky_inverse(t)),


def _exact_inverse(low: np.ndarray) -> np.ndarray:
    """L⁻ᵀ L⁻¹ in ball arithmetic."""
    inverse = _triangular_inverse(low, upper=False)
    n = low.shape[0]
    out = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        out[i, j] = sum((inverse[k, i] * inverse[k, j] for k in range(n)), ZERO)
    return out


def _forward(F, arrays, p):
    a = arrays[0]
    (recomputed,) = spectra.recomputed(F, a, _cholesky_inverse, p["upper"])
    out = spectra.obj(a.shape)
    for b in spectra.batches(a):
        exact = _exact_inverse(a[b])
        torch_value = spectra.at(recomputed, b)
        for i, j in np.ndindex(*exact.shape):
            out[b + (i, j)] = spectra.hull(torch_value[i][j], exact[i, j])
    return out


@_per_matrix_backward
def _backward(F, arrays, out, grad, p):
    low = arrays[0]
    n = low.shape[0]
    common = spectra.obj((n, n))
    for i, j in np.ndindex(n, n):
        common[i, j] = F.add(grad[i, j], grad[j, i])
    s = lapack.matmul(F, out, lapack.matmul(F, common, out))
    if p["upper"]:
        return (_negated(lapack.matmul(F, low.T, s)).T,)
    return (_negated(lapack.matmul(F, s, low)),)


def _options(shapes):
    a = shapes[0]
    square = len(a) in (2, 3) and a[-1] == a[-2] and (len(a) == 2 or a[0] <= spectra.MAX_BATCH)
    return [_params(upper=upper) for upper in (False, True)] if square else []


_entry("cholesky_inverse", _sym_inverse, _forward, _backward,
       [_spelling("torch.cholesky_inverse({0})", lambda a, upper: torch.cholesky_inverse(a),
                  lambda shapes, p: not p["upper"]),
        _spelling("{0}.cholesky_inverse()", lambda a, upper: a.cholesky_inverse(), lambda shapes, p: not p["upper"]),
        _spelling("torch.cholesky_inverse({0}.mT, upper=True)",
                  lambda a, upper: torch.cholesky_inverse(a.mT, upper=True), lambda shapes, p: p["upper"])],
       ["cholesky_inverse"], ["cholesky_factor"], _same, operand_shapes=_matrix_operand, options=_options)
