"""Dropout, one entry each: nn.functional.dropout, dropout2d, dropout3d, alpha_dropout, feature_alpha_dropout in
training (random noise) and out of it (the identity), and native_dropout_backward (a given mask).

torch's CPU dropout (aten/src/ATen/native/Dropout.cpp, _dropout_impl) draws noise = bernoulli(1 - p) of the
input's shape (of (N, C, 1, ...) for the feature forms), and returns input * noise / (1 - p) (noise.div_(1 - p),
then input.mul(noise)); alpha dropout returns input * noise * a + b with a = 1 / sqrt((alpha^2 p + 1)(1 - p)) and
b = (noise - 1) alpha a + alpha a p. Autograd runs through those ops: the gradient is grad * noise (MulBackward),
exactly the function's derivative once the noise is fixed.

The noise is fixed by a seed among the parameters: the spelling seeds torch's CPU generator right before the
call, `(torch.default_generator.manual_seed(3), torch.nn.functional.dropout(x0, p=0.5))[1]`, and the oracle reads
the noise from torch's own output under the same seed, on ones and zeros of the argument's shape in float64
(`_noise`: the kept elements are where the two differ). The CPU generator draws the same mask in every dtype
(tests/test_dropout_ops.py checks it for every listed shape); other devices' generators draw other masks, and
torch.compile draws its own, so these entries are `seeded`: checked on the CPU, eagerly, and left out of random
programs. The scale 1 / (1 - p) and alpha dropout's a and b are the mathematics' exact reals on the SymPy side;
torch's rounded ones lie in the model's balls.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import Mask, _masks, _params, _spelling
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, gathering

NAMES = ["dropout", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "native_dropout_backward"]
F_ = torch.nn.functional
PROBABILITIES = (0.5, 0.25)  # 1 / (1 - p): 2, exact in every dtype; 4/3, rounded
SEEDS = (0, 1, 2)
MAX_ELEMENTS = 12  # the feature forms take rank-4 tensors: kept small, as their SymPy Jacobians
ALPHA = 1.7580993408473766  # _dropout_impl's alpha (a double)
K_ALPHA = 8  # a and b: a few roundings in double (at most 7 u of a double), each scalar converted to the dtype
# (through float for bfloat16 and float16), b's product and sum rounded in it


# ------------------------------------------------------------------ the noise torch draws
@functools.cache
def _noise(name: str, p: float, seed: int, shape: tuple[int, ...]) -> tuple[bool, ...]:
    """The kept elements (row-major) of the op under the seed, read from torch's output on ones and zeros."""
    function = _FUNCTIONS[name]
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        on_ones = function(torch.ones(shape, dtype=torch.float64), p)
        torch.default_generator.manual_seed(seed)
        on_zeros = function(torch.zeros(shape, dtype=torch.float64), p)
    return tuple((on_ones != on_zeros).reshape(-1).tolist())


def _kept(name: str, a: np.ndarray, p) -> np.ndarray:
    return np.array(_noise(name, p["p"], p["seed"], a.shape), dtype=bool).reshape(a.shape)


def _sym_scalars(name: str, p: float):
    """(the kept elements' factor, b where kept, b where dropped), exactly: 1 / (1 - p), 0, 0; alpha dropout's
    a, alpha a p and alpha a (p - 1)."""
    if name not in ALPHA_FORMS:
        return 1 / (1 - sympy.Rational(p)), sympy.Integer(0), sympy.Integer(0)
    a = 1 / sympy.sqrt((sympy.Rational(ALPHA) ** 2 * sympy.Rational(p) + 1) * (1 - sympy.Rational(p)))
    scale = sympy.Rational(ALPHA) * a
    return a, scale * sympy.Rational(p), scale * (sympy.Rational(p) - 1)


def _ball(value) -> arb:
    return arb(str(sympy.N(value, 80)))


@functools.cache
def _scalars(dtype: str, name: str, p: float) -> tuple[arb, arb, arb]:
    """The same as torch holds them in the dtype: the factor 1 / (1 - p) divided in opmath and stored (exact
    where the dtype holds it); alpha's a within K_ALPHA roundings of |a|, its b within K_ALPHA roundings of the
    magnitude of the two terms b adds (alpha a and alpha a p: b where dropped is their difference)."""
    F = RoundingModel(format_named(dtype))
    factor, kept_b, dropped_b = _sym_scalars(name, p)
    if name not in ALPHA_FORMS:
        q = arb(1) / arb(1 - p)
        return (q if q.is_exact() else F.store(F.opmath.round(q))), formula.ZERO, formula.ZERO
    terms = _ball(factor * sympy.Rational(ALPHA) * (1 + sympy.Rational(p)))
    return (F.round(_ball(factor), K_ALPHA), F.round(_ball(kept_b), K_ALPHA, terms),
            F.round(_ball(dropped_b), K_ALPHA, terms))


def _sym(name: str):
    def apply(arrays, p):
        a = arrays[0]
        factor, kept_b, dropped_b = _sym_scalars(name, p["p"])
        kept = _kept(name, a, p)
        out = np.empty(a.shape, dtype=object)
        for i in np.ndindex(*a.shape):
            out[i] = a[i] * factor + kept_b if kept[i] else dropped_b
        return out

    return apply


def _forward(name: str):
    def apply(F, arrays, p):
        a = arrays[0]
        factor, kept_b, dropped_b = _scalars(F.format.name, name, p["p"])
        kept = _kept(name, a, p)
        out = np.empty(a.shape, dtype=object)
        for i in np.ndindex(*a.shape):
            if name in ALPHA_FORMS:  # input.mul(noise).add_(b): the dropped elements' product is an exact 0
                out[i] = F.add(F.mul(a[i], factor), kept_b) if kept[i] else dropped_b
            else:
                out[i] = formula.mul(F, a[i], factor) if kept[i] else formula.ZERO
        return out

    return apply


def _backward(name: str):
    def apply(F, arrays, out, grad, p):
        a = arrays[0]
        factor = _scalars(F.format.name, name, p["p"])[0]
        kept = _kept(name, a, p)
        result = np.empty(a.shape, dtype=object)
        for i in np.ndindex(*a.shape):  # MulBackward0: grad * noise
            result[i] = formula.mul(F, grad[i], factor) if kept[i] else formula.ZERO
        return (result,)

    return apply


def _seeded_call(function):
    """The op under the seed, on the CPU generator, leaving the generator's state as it was."""

    def call(x, p, seed):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return function(x, p)

    return call


def _options(ranks):
    def listed(shapes):
        shape = shapes[0]
        if len(shape) not in ranks or math.prod(shape) > MAX_ELEMENTS:
            return ()
        return tuple(_params(p=p, seed=s) for s in SEEDS for p in PROBABILITIES)

    return functools.cache(listed)


_FUNCTIONS = {
    "dropout": lambda x, p: F_.dropout(x, p=p),
    "dropout2d": lambda x, p: F_.dropout2d(x, p=p),
    "dropout3d": lambda x, p: F_.dropout3d(x, p=p),
    "alpha_dropout": lambda x, p: F_.alpha_dropout(x, p=p, training=True),
    "feature_alpha_dropout": lambda x, p: F_.feature_alpha_dropout(x, p=p, training=True),
}
ALPHA_FORMS = ("alpha_dropout", "feature_alpha_dropout")
_TEXTS = {
    "dropout": "torch.nn.functional.dropout({0}, p={p})",
    "dropout2d": "torch.nn.functional.dropout2d({0}, p={p})",
    "dropout3d": "torch.nn.functional.dropout3d({0}, p={p})",
    "alpha_dropout": "torch.nn.functional.alpha_dropout({0}, p={p}, training=True)",
    "feature_alpha_dropout": "torch.nn.functional.feature_alpha_dropout({0}, p={p}, training=True)",
}
# the feature forms take (N, C, H, W) (dropout2d) and an unbatched (C, D, H, W) (dropout3d): a drawn rank-3 shape
# with a trailing 1
_RANKS = {"dropout": (1, 2), "dropout2d": (3,), "dropout3d": (3,), "alpha_dropout": (1, 2),
          "feature_alpha_dropout": (2, 3)}
_FOUR_D = ("dropout2d", "dropout3d")
_OPINFO = {"dropout": "nn.functional.dropout", "dropout2d": "nn.functional.dropout2d",
           "dropout3d": "nn.functional.dropout3d", "alpha_dropout": "nn.functional.alpha_dropout",
           "feature_alpha_dropout": "nn.functional.feature_alpha_dropout[with_train]"}

for _name, _function in _FUNCTIONS.items():
    TENSOR_OPS[_name] = TensorOp(
        _name, 1,
        (_spelling(f"(torch.default_generator.manual_seed({{seed}}), {_TEXTS[_name]})[1]", _seeded_call(_function)),),
        _sym(_name), _forward(_name), _backward(_name),
        OptionSpace(_options((4,) if _name in _FOUR_D else _RANKS[_name])),
        lambda shapes, p: shapes[0], (_OPINFO[_name],), ranks=_RANKS[_name], seeded=True,
        operand_shapes=(lambda s: [(tuple(s) + (1,),)]) if _name in _FOUR_D else None)


# ------------------------------------------------------------------ no noise
# out of training feature_alpha_dropout returns its input itself
TENSOR_OPS["feature_alpha_dropout_eval"] = gathering(
    "feature_alpha_dropout_eval", lambda arrays, p, constant: arrays[0],
    [_spelling("torch.nn.functional.feature_alpha_dropout({0}, p={p}, training=False)",
               lambda x, p: F_.feature_alpha_dropout(x, p=p, training=False))],
    OptionSpace(functools.cache(lambda shapes: tuple(_params(p=p) for p in PROBABILITIES))),
    ["nn.functional.feature_alpha_dropout[without_train]"])


# native_dropout_backward(grad, mask, scale) = grad * mask * scale (the mask as 0 or 1 of the dtype: exact; the
# double scale in opmath, the product rounded and stored); its own derivative (native_dropout_double_backward,
# grad * mask.type_as(grad) * scale) multiplies mask by scale first, in the dtype: the scale rounded to the dtype,
# then the product (measured: float16, 7 * 4/3 is 9.328125 there, 9.3359375 in the forward)
SCALES = (2.0, 4 / 3)


def _scaled_forward(F, arrays, p):
    a, kept = arrays[0], p["mask"].array
    scale = arb(p["scale"]) if F.opmath.format.round(p["scale"]) == p["scale"] else F.opmath.round(arb(p["scale"]))
    out = np.empty(a.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        out[i] = F.store(formula.mul(F.opmath, a[i], scale)) if kept[i] else formula.ZERO
    return out


def _scaled_sym(arrays, p):
    a, kept = arrays[0], p["mask"].array
    out = np.empty(a.shape, dtype=object)
    for i in np.ndindex(*a.shape):
        out[i] = a[i] * sympy.Rational(p["scale"]) if kept[i] else sympy.Integer(0)
    return out


def _scaled_backward(F, arrays, out, grad, p):
    kept, scale = p["mask"].array, F.const(p["scale"])
    result = np.empty(grad.shape, dtype=object)
    for i in np.ndindex(*grad.shape):
        result[i] = formula.mul(F, grad[i], scale) if kept[i] else formula.ZERO
    return (result,)


TENSOR_OPS["native_dropout_backward"] = TensorOp(
    "native_dropout_backward", 1,
    (_spelling("torch.ops.aten.native_dropout_backward({0}, {mask}, {scale})",
               lambda x, mask, scale: torch.ops.aten.native_dropout_backward(x, mask, scale)),),
    _scaled_sym, _scaled_forward, _scaled_backward,
    OptionSpace(functools.cache(lambda shapes: tuple(_params(mask=Mask.of(m), scale=s) for m in _masks(shapes[0])
                                                     for s in SCALES))),
    lambda shapes, p: shapes[0], ("native_dropout_backward",))
