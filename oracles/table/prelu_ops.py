"""prelu(x, weight): x where x > 0, weight[c] * x elsewhere, c the element's channel (dim 1 of a matrix; one
weight for everything where the weight has one element, which a vector input requires).

torch (_prelu_kernel, _prelu_kernel_backward): input > 0 ? grad : weight * grad for the input, input > 0 ? 0 :
input * grad for the weight, per element, in float for bfloat16 and float16 and rounded once; autograd sums the
weight's gradient over the elements that share it (the weight is broadcast to the input). At x = 0 prelu has a
kink (convex for weight <= 1, concave above): torch takes the weight there, pinned in
oracles.table.reduction_conventions; the property tests leave points whose ball may hold 0 undecided.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch

from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["prelu"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)


def _weight_of(index: tuple[int, ...], weight: np.ndarray):
    return weight[0] if weight.size == 1 else weight[index[1]]


def _sym(arrays, p):
    x, w = arrays
    out = np.empty(x.shape, dtype=object)
    for i in np.ndindex(*x.shape):
        out[i] = sympy.Piecewise((x[i], x[i] > 0), (_weight_of(i, w) * x[i], True))
    return out


def _forward(F, arrays, p):
    x, w = arrays
    out = np.empty(x.shape, dtype=object)
    for i in np.ndindex(*x.shape):
        out[i] = x[i] if F.sign(x[i]) > 0 else F.store(F.opmath.mul(_weight_of(i, w), x[i]))
    return out


def _backward(F, arrays, out, grad, p):
    x, w = arrays
    to_x = np.empty(x.shape, dtype=object)
    shares = {j: [] for j in np.ndindex(*w.shape)}
    for i in np.ndindex(*x.shape):
        channel = (0,) if w.size == 1 else (i[1],)
        if F.sign(x[i]) > 0:
            to_x[i] = grad[i]
        else:
            to_x[i] = F.store(F.opmath.mul(_weight_of(i, w), grad[i]))
            shares[channel].append(F.store(F.opmath.mul(x[i], grad[i])))
    to_w = np.empty(w.shape, dtype=object)
    for j, terms in shares.items():
        to_w[j] = formula.fused_sum(F, terms)
    return to_x, to_w


def _operand_shapes(shape):
    """A weight of one element, or one per channel (dim 1) of a matrix."""
    return [(shape, (1,))] + ([(shape, (shape[1],))] if len(shape) == 2 and shape[1] > 1 else [])


def _options(shapes):
    x, w = shapes
    fits = len(w) == 1 and (w[0] == 1 or (len(x) == 2 and w[0] == x[1]))
    return (_params(),) if fits else ()


TENSOR_OPS["prelu"] = TensorOp(
    "prelu", 2,
    (_spelling("torch.nn.functional.prelu({0}, {1})", torch.nn.functional.prelu),
     _spelling("torch.prelu({0}, {1})", torch.prelu)),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)), lambda shapes, p: shapes[0],
    ("nn.functional.prelu",), operand_shapes=_operand_shapes,
    ties="x = 0: torch takes the weight (the left slope), the minimum-norm subgradient where the weight is at most "
         "1, not above (finding concave-kink-left-slope)", pinned_as=("prelu",))
