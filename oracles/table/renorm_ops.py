"""renorm(x, p=2, dim, maxnorm): each sub-tensor x[..., k, ...] along `dim` whose 2-norm exceeds maxnorm is
scaled by maxnorm / (norm + 1e-7); the others are copied. The function jumps (by the 1e-7) where a norm
crosses maxnorm, which the model leaves undecided (`Singular`) where it cannot tell the two apart.

torch (TORCH_IMPL_FUNC(renorm_out), renorm_scale_factor_impl): the norm in at::acc_type for CUDA (the dtype for
float32 and float64, float for bfloat16 and float16), factor = norm > maxnorm ? maxnorm / (norm + eps) : 1 with eps
= 1e-7 as that type holds it, stored in the dtype, and x * factor. Backward (renorm_backward, FunctionsManual.cpp):
in at::acc_type for the CPU (double for float32), norm and grad_output = sum(self * grad); nb = norm_backward =
self * (grad_output / norm); invnorm = 1 / (norm + 1e-7); where(norm > maxnorm, invnorm * maxnorm * (grad - invnorm
* nb), grad), rounded to the dtype. The model computes the accumulations in the format's own opmath (float32 for
float32 encloses double).
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp

NAMES = ["renorm"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
EPS = 1e-7
MAXNORMS = (1.0, 0.5, 2.0)


def _groups(shape: tuple[int, ...], dim: int) -> list[list[tuple[int, ...]]]:
    """The sub-tensors renorm scales: per index k along `dim`, every element with that index."""
    dim %= len(shape)
    everything = list(np.ndindex(*shape))
    return [[i for i in everything if i[dim] == k] for k in range(shape[dim])]


def _per_group(per_group):
    """An elementwise-shaped op from a function of one group's values (and, for a backward, its outputs and
    gradients) and maxnorm."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = np.empty(a.shape, dtype=object)
        for members in _groups(a.shape, p["dim"]):
            for m, v in zip(members, per_group(*head, [a[m] for m in members], p["maxnorm"])):
                out[m] = v
        return out

    return apply


def _sym(values, maxnorm):
    norm, bound = sympy.sqrt(sympy.Add(*(v**2 for v in values))), sympy.Rational(maxnorm)
    factor = bound / (norm + sympy.Rational(EPS))
    return [sympy.Piecewise((v * factor, norm > bound), (v, True)) for v in values]


def _forward(F, values, maxnorm):
    G = F.opmath
    norm = formula.norm_forward(G, values, None)
    if not G.greater(norm, arb(maxnorm)):
        return list(values)
    factor = F.store(G.div(arb(maxnorm), G.add(norm, G.const(EPS))))
    return [formula.mul(F, v, factor) for v in values]


def _backward(F, arrays, out, grad, p):
    a, maxnorm, G = arrays[0], p["maxnorm"], F.opmath
    result = np.empty(a.shape, dtype=object)
    for members in _groups(a.shape, p["dim"]):
        values, grads = [a[m] for m in members], [grad[m] for m in members]
        norm = formula.norm_forward(G, values, None)
        if not G.greater(norm, arb(maxnorm)):
            scaled = grads
        else:
            grad_output = formula.sum_any(G, [formula.mul(F, v, g) for v, g in zip(values, grads)])
            ratio = G.div(grad_output, norm)
            invnorm = G.div(arb(1), G.add(norm, G.const(EPS)))
            factor = G.mul(invnorm, arb(maxnorm))
            scaled = [F.store(G.mul(factor, G.sub(g, G.mul(invnorm, formula.mul(G, v, ratio)))))
                      for v, g in zip(values, grads)]
        for m, g in zip(members, scaled):
            result[m] = g
    return (result,)


def _options(shapes):
    shape = shapes[0]
    if len(shape) < 2:  # torch's renorm takes 2 dims or more
        return []
    return [_params(dim=d, maxnorm=m) for d in range(len(shape)) for m in MAXNORMS]


TENSOR_OPS["renorm"] = TensorOp(
    "renorm", 1,
    (_spelling("torch.renorm({0}, 2, {dim}, {maxnorm})", lambda x, dim, maxnorm: torch.renorm(x, 2, dim, maxnorm)),
     _spelling("{0}.renorm(2, {dim}, {maxnorm})", lambda x, dim, maxnorm: x.renorm(2, dim, maxnorm))),
    _per_group(_sym), _per_group(_forward), _backward, OptionSpace(functools.cache(lambda s: tuple(_options(s)))),
    lambda shapes, p: shapes[0], ("renorm",), ranks=(2,),
    ties="where a sub-tensor's norm equals maxnorm the function jumps (by the 1e-7 in the divisor): torch copies "
         "the gradient there, as below maxnorm", pinned_as=("renorm",))
