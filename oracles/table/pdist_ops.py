"""pdist(x, p=2): the 2-norm distance of every pair of rows i < j of an N x M input, in that order.

torch (aten/src/ATen/native/cpu/DistanceOpsKernel.cpp, float and double only on the CPU): per pair the sum of
the squared differences, then its square root; _pdist_backward: grad * diff / dist per pair (0 where dist ==
0), added to row i and subtracted from row j. Identical rows are the norm's kink at 0: torch's 0 there is the
minimum-norm subgradient (pinned in oracles.table.reduction_conventions).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import sympy
import torch

from oracles.numerics.rounding import Singular
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["pdist"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
ZERO = formula.ZERO


def _pairs(n: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n), 2))


def _sym(arrays, p):
    a = arrays[0]
    return np.array([sympy.sqrt(sympy.Add(*((u - v) ** 2 for u, v in zip(a[i], a[j])))) for i, j in _pairs(len(a))],
                    dtype=object)


def _differences(F, a, i, j):
    return [F.sub(u, v) for u, v in zip(a[i], a[j])]


def _forward(F, arrays, p):
    a = arrays[0]
    return np.array([formula.norm_forward(F, _differences(F, a, i, j), None) for i, j in _pairs(len(a))],
                    dtype=object)


def _backward(F, arrays, out, grad, p):
    a = arrays[0]
    collected = {index: [] for index in np.ndindex(*a.shape)}
    for k, (i, j) in enumerate(_pairs(len(a))):
        dist = out[k]
        if formula.is_exact_zero(dist):
            continue
        if dist.contains(0):
            raise Singular("a distance may be 0 within the rounding model")
        for c, d in enumerate(_differences(F, a, i, j)):
            share = F.div(formula.mul(F, grad[k], d), dist)
            collected[(i, c)].append(share)
            collected[(j, c)].append(-share)
    result = np.empty(a.shape, dtype=object)
    for index, shares in collected.items():
        result[index] = formula.sum_any(F, shares)
    return (result,)


def _subgradient_vjp(args, adjoint, p):
    """Exactly: g (x_i - x_j) / |x_i - x_j| per pair, and the minimum-norm subgradient 0 for identical rows."""
    a = args[0]
    result = np.full(a.shape, ZERO, dtype=object)
    for k, (i, j) in enumerate(_pairs(len(a))):
        differences = [u - v for u, v in zip(a[i], a[j])]
        if all(formula.is_exact_zero(d) for d in differences):
            continue
        scale = adjoint[k] / formula.norm_value(differences, None)
        for c, d in enumerate(differences):
            result[i, c] += scale * d
            result[j, c] -= scale * d
    return [result]


def _options(shapes):
    """pdist takes a matrix; one row has no pairs."""
    shape = shapes[0]
    return (_params(),) if len(shape) == 2 and shape[0] >= 2 else ()


TENSOR_OPS["pdist"] = TensorOp(
    "pdist", 1,
    (_spelling("torch.pdist({0})", lambda x: torch.pdist(x)),
     _spelling("torch.nn.functional.pdist({0}, 2)", lambda x: torch.nn.functional.pdist(x, 2))),
    _sym, _forward, _backward,
    OptionSpace(functools.cache(_options)),
    lambda shapes, p: (len(_pairs(shapes[0][0])),), ("nn.functional.pdist",), ranks=(2,),
    cpu_dtypes=("float64", "float32"),
    ties="identical rows (distance 0): the gradient 0, the minimum-norm subgradient", pinned_as=("pdist",),
    subgradient_vjp=_subgradient_vjp)
