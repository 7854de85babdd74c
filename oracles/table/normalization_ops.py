"""Normalizing ops of the tensor-op table: softmin, and var_mean and std_mean (one of the pair taken), after
torch's kernels and derivatives.yaml, per slice along a dim as oracles.table.tensor_formulas writes them.

var_mean and std_mean run one CPU kernel for every floating dtype (ReduceOps: std_var_stub, WelfordOps with a
double accumulator, one element after the other): mean += delta / n, m2 += delta * (x - new mean), then var =
m2 / (n - correction), std its sqrt, and both results cast to the dtype once. Their backward is var_backward
or std_backward for the first piece and mean_backward for the second (var_mean_backward, std_mean_backward:
the piece not taken gets no gradient and adds nothing).
"""

from __future__ import annotations

import sympy
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import tensor_formulas as formula
from oracles.table.loss_ops import correctly_rounded, difference
from oracles.table.tensor_formulas import ZERO, SliceFormulas
from oracles.table.tensor_ops import (
    DEFAULT_CORRECTION,
    TENSOR_OPS,
    ReductionParams,
    ReductionSpace,
    ScanSpace,
    TensorOp,
    TSpelling,
)

DOUBLE = RoundingModel(format_named("float64"))  # WelfordOps' accumulator
NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS


# ------------------------------------------------------------------ softmin
def _softmin_forward(F, a, p):
    return formula.softmax_forward(F, [-v for v in a], p)  # softmin: (-input).softmax(dim), the negation exact


def _softmin_backward(F, a, y, g, p):
    """SoftmaxBackward0 (output * (grad - sum(grad * output))), then NegBackward0: exactly its negation."""
    return [-v for v in formula.softmax_backward(F, [-v for v in a], y, g, p)]


SOFTMIN = SliceFormulas(lambda a, p: formula.sym_softmax([-v for v in a], p), _softmin_forward, _softmin_backward)


# ------------------------------------------------------------------ var_mean and std_mean
def _cast(F: RoundingModel, value: arb) -> arb:
    """A double accumulator's result as a tensor of the dtype: rounded once (a float64 result is the double)."""
    return value if F.format.name == "float64" else F.round(value)


def welford(a: list[arb], correction: int) -> tuple[arb, arb]:
    """(var, mean) in double as WelfordOps accumulates the slice in order, each operation correctly rounded and
    exact where double holds its result (a constant slice has var exactly 0, which std_backward's mask needs
    decided)."""
    mean, m2 = ZERO, ZERO
    for n, x in enumerate(a, start=1):
        delta = difference(DOUBLE, x, mean)
        mean = correctly_rounded(DOUBLE, mean + correctly_rounded(DOUBLE, delta / n))
        m2 = correctly_rounded(DOUBLE, m2 + correctly_rounded(DOUBLE, delta * difference(DOUBLE, x, mean)))
    return correctly_rounded(DOUBLE, m2 / (len(a) - correction)), mean


def _var_piece(F, a, p):
    return _cast(F, welford(a, p.correction)[0])


def _std_piece(F, a, p):
    var = welford(a, p.correction)[0]
    if var.is_exact() and var.is_zero():
        return ZERO
    if not var > 0:
        raise Singular("the std may be 0 within the rounding model")
    return _cast(F, DOUBLE.round(var.sqrt()))


def _mean_piece(F, a, p):
    return _cast(F, welford(a, p.correction)[1])


VAR_PIECE = SliceFormulas(formula.sym_var, _var_piece, formula.var_backward)
STD_PIECE = SliceFormulas(lambda a, p: sympy.sqrt(formula.sym_var(a, p)), _std_piece, formula.std_backward)
MEAN_PIECE = SliceFormulas(lambda a, p: sympy.Add(*a) / len(a), _mean_piece, formula.mean_backward)


def _options(p: ReductionParams) -> str:
    return f", correction={p.correction}" + (", keepdim=True" if p.keepdim else "")


def _pair_spellings(name: str, piece: int) -> tuple[TSpelling, ...]:
    """torch.<name>(x, dim=d, correction=c[, keepdim=True])[piece]; torch.<name>(x)[piece] at the defaults;
    torch.<name>(x, unbiased=b)[piece] for correction 1 (True) or 0 (False), the `unbiased` OpInfo variant."""
    function = getattr(torch, name)
    return (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, dim={p.dim}{_options(p)})[{piece}]",
                  lambda a, p: function(a[0], dim=p.dim, correction=p.correction, keepdim=p.keepdim)[piece]),
        TSpelling(lambda a, p: f"torch.{name}({a[0]})[{piece}]", lambda a, p: function(a[0])[piece],
                  lambda s, p: p.dim is None and not p.keepdim and p.correction == DEFAULT_CORRECTION),
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, unbiased={p.correction == 1})[{piece}]",
                  lambda a, p: function(a[0], unbiased=p.correction == 1)[piece],
                  lambda s, p: p.dim is None and not p.keepdim and p.correction in (0, 1)),
    )


def _pair_piece(name: str, piece: int, slice_formulas: SliceFormulas, **kw) -> TensorOp:
    f = slice_formulas
    return TensorOp(f"{name}[{piece}]", 1, _pair_spellings(name, piece), formula.reduction(f.math),
                    formula.reduction(f.forward), formula.reduction_backward(f.backward),
                    ReductionSpace(corrections=(0, 1, 2)), lambda shapes, p: formula.reduced_shape(shapes[0], p),
                    (name, f"{name}[unbiased]"), **kw)


_STD_ZERO = dict(ties="at a constant slice (std 0) the gradient is 0 (the minimum-norm subgradient)",
                 value=formula.std_value, subgradient=formula.std_subgradient, pinned_as=("std",))

for _op in (
    TensorOp("softmin", 1, (
        TSpelling(lambda a, p: f"torch.nn.functional.softmin({a[0]}, dim={p.dim})",
                  lambda a, p: torch.nn.functional.softmin(a[0], dim=p.dim)),
        TSpelling(lambda a, p: f"torch.nn.Softmin(dim={p.dim})({a[0]})",
                  lambda a, p: torch.nn.Softmin(dim=p.dim)(a[0])),
    ), formula.dimwise(SOFTMIN.math), formula.dimwise(SOFTMIN.forward), formula.dimwise_backward(SOFTMIN.backward),
        ScanSpace(), lambda shapes, p: shapes[0], ("nn.functional.softmin",)),
    _pair_piece("var_mean", 0, VAR_PIECE),
    _pair_piece("var_mean", 1, MEAN_PIECE),
    _pair_piece("std_mean", 0, STD_PIECE, **_STD_ZERO),
    _pair_piece("std_mean", 1, MEAN_PIECE),
):
    TENSOR_OPS[_op.name] = _op
    NAMES.append(_op.name)
