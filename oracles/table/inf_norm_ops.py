"""The infinity norms of a vector: max |x| (p = inf) and min |x| (p = -inf), as torch.norm, Tensor.norm,
torch.linalg.vector_norm and torch.linalg.norm (a vector norm over one dim) compute them.

torch (linalg_vector_norm; its backward is norm_backward in FunctionsManual.cpp): the forward is amax / amin of
|x|, exact; the backward gives sgn(x) * grad / count to every element with |x| == norm (count of them), the rule's
minimum-norm subgradient (max |x|, convex) or supergradient (min |x| at a tie of nonzero values, concave), and 0 to
an element 0 (sgn(0) = 0). At the zero vector every |x| ties and sgn gives 0: the minimum-norm subgradient of the
norm at 0 (pinned with the other orders of linalg.norm at 0 in oracles.table.reduction_conventions).
"""

from __future__ import annotations

import math

import sympy
import torch
from flint import arb

from oracles.table import tensor_formulas as formula
from oracles.table.tensor_formulas import SliceFormulas
from oracles.table.tensor_ops import TENSOR_OPS, ReductionParams, TSpelling, _reduction

NAMES = ["norm_inf", "norm_neg_inf"]  # the entries this module adds to TENSOR_OPS
ZERO = formula.ZERO


def _sign(v) -> int:
    """sgn of a value the model decides (exact 0 is 0)."""
    return formula.decided_sign(v, "the sign of an element at the norm may be either within the rounding model")


def _extreme(values, largest: bool):
    """The extreme |x| and the positions torch's mask |x| == norm selects (exact ties; Singular if undecidable)."""
    if largest:
        return formula.maximum(values)
    top, ties = formula.maximum([-v for v in values])
    return -top, ties


def _forward(largest: bool):
    def forward(F, a, p):
        magnitudes = [abs(v) for v in a]
        return formula.hull_maximum(magnitudes) if largest else -formula.hull_maximum([-m for m in magnitudes])
    return forward


def _backward(largest: bool):
    def backward(F, a, y, g, p):
        """sgn(x) * ((grad / mask.sum()) * mask), mask = |x| == norm."""
        _, ties = _extreme([abs(v) for v in a], largest)
        share = g if len(ties) == 1 else F.div(g, arb(len(ties)))
        return [share * _sign(a[i]) if i in ties else ZERO for i in range(len(a))]
    return backward


def _subgradient(largest: bool):
    def subgradient(a, g, p):
        """Exactly: the indicator of the extreme |x| times sgn(x), 1/k each at a tie of k (the minimum-norm
        sub- or supergradient), and 0 for an element 0 (|x|'s own kink)."""
        _, ties = _extreme([abs(v) for v in a], largest)
        return [g / len(ties) * _sign(a[i]) if i in ties else ZERO for i in range(len(a))]
    return subgradient


def _math(largest: bool):
    extremum = formula.sym_max if largest else formula.sym_min
    return lambda a, p: extremum([sympy.Abs(v) for v in a])


def _keep(p: ReductionParams) -> str:
    return f", keepdim={p.keepdim}" if p.keepdim else ""


def _spellings(order: float):
    text = "float('inf')" if order > 0 else "float('-inf')"

    def at_defaults(shapes, p):
        return p.dim is None and not p.keepdim

    def with_dim(shapes, p):
        return p.dim is not None

    def a_vector_norm(shapes, p):  # linalg.norm over every dim of a matrix is a matrix norm
        return p.dim is not None or len(shapes[0]) == 1

    return (
        TSpelling(lambda a, p: f"torch.norm({a[0]}, p={text})", lambda a, p: torch.norm(a[0], p=order), at_defaults),
        TSpelling(lambda a, p: f"torch.norm({a[0]}, p={text}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.norm(a[0], p=order, dim=p.dim, keepdim=p.keepdim), with_dim),
        TSpelling(lambda a, p: f"{a[0]}.norm(p={text}, dim={p.dim}{_keep(p)})",
                  lambda a, p: a[0].norm(p=order, dim=p.dim, keepdim=p.keepdim), with_dim),
        TSpelling(lambda a, p: f"torch.linalg.vector_norm({a[0]}, ord={text}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.linalg.vector_norm(a[0], ord=order, dim=p.dim, keepdim=p.keepdim)),
        TSpelling(lambda a, p: f"torch.linalg.norm({a[0]}, ord={text}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.linalg.norm(a[0], ord=order, dim=p.dim, keepdim=p.keepdim), a_vector_norm),
    )


for _name, _largest in (("norm_inf", True), ("norm_neg_inf", False)):
    TENSOR_OPS[_name] = _reduction(
        _name, _spellings(math.inf if _largest else -math.inf),
        SliceFormulas(_math(_largest), _forward(_largest), _backward(_largest)),
        ["norm[inf]", "linalg.vector_norm", "linalg.norm[subgradients_at_zero]"],
        ties=("ties of |x| at the " + ("largest" if _largest else "smallest") + " share the gradient evenly, times "
              "sgn(x); an element 0 gets 0 (at the zero vector: the minimum-norm subgradient 0)"),
        subgradient=_subgradient(_largest), pinned_as=("linalg_norm_vector_inf" if _largest else
                                                       "linalg_norm_vector_-inf",))
