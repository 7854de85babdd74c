"""torch.gradient(x, spacing, dim, edge_order): finite differences along each dim, a linear map of x.

torch composes it of differentiable ops (aten/src/ATen/native/ReduceOps.cpp, gradient_helper_float and
gradient_helper); autograd runs each op's backward, which the model replays:
- a scalar spacing h (1 by default, one per dim in a list): the interior (x[i+1] - x[i-1]) / h / 2; the ends
  (x[1] - x[0]) / h and (x[-1] - x[-2]) / h (edge_order 1), or (-1.5 x[0] + 2 x[1] - 0.5 x[2]) / h and
  (0.5 x[-3] - 2 x[-2] + 1.5 x[-1]) / h (edge_order 2);
- coordinates c (a tensor per dim, in x's dtype): dx = diff(c), the interior a x[i-1] + b x[i] + c x[i+1] with
  the second-order weights of the unequal steps dx1 = dx[i-1], dx2 = dx[i], computed in the dtype; the ends
  (x[1] - x[0]) / dx[0] and (x[-1] - x[-2]) / dx[-1], or the second-order one-sided weights.
The result is one tensor per dim: the entry takes the one of an int dim (`[0]`), or stacks those of every dim
(`torch.stack`, an exact copy). The weights are constants (spacings and coordinates exact in every dtype), and the
SymPy form is the same map with the weights in exact rationals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["gradient"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
ZERO = formula.ZERO
SCALAR_SPACING = 2.0
LIST_SPACINGS = (0.5, 1.5)  # the list's spacing for dim 0, dim 1
# unequal steps (2 then -1, as in torch's OpInfo samples); the first n for a dim of n
COORDINATES = (1.0, 3.0, 2.0)


@dataclass(frozen=True)
class Coordinates:
    """spacing as one coordinate tensor per dim (each the first n of COORDINATES, made in x's dtype)."""

    sizes: tuple[int, ...]

    def values(self, k: int) -> tuple[float, ...]:
        return COORDINATES[:self.sizes[k]]


def _dims(p, rank: int) -> tuple[int, ...]:
    return tuple(range(rank)) if p["dim"] is None else (p["dim"],)


def _spacing(p, k: int):
    """The spacing of the k-th dim of the call: a scalar h or coordinates (a tuple)."""
    spacing = p["spacing"]
    if spacing is None:
        return 1.0
    if isinstance(spacing, Coordinates):
        return spacing.values(k)
    if isinstance(spacing, tuple):
        return spacing[k]
    return spacing


# ------------------------------------------------------------------ exact weights (SymPy)
def _exact_rows(n: int, spacing, edge_order: int) -> list[dict[int, Fraction]]:
    """Per output position, its weights on the slice's elements, in exact rationals."""
    if not isinstance(spacing, tuple):
        h = Fraction(spacing)
        first = {0: Fraction(-1) / h, 1: 1 / h} if edge_order == 1 else {0: Fraction(-3, 2) / h, 1: 2 / h,
                                                                          2: Fraction(-1, 2) / h}
        last = ({n - 2: -1 / h, n - 1: 1 / h} if edge_order == 1
                else {n - 3: Fraction(1, 2) / h, n - 2: -2 / h, n - 1: Fraction(3, 2) / h})
        middle = [{i - 1: -1 / (2 * h), i + 1: 1 / (2 * h)} for i in range(1, n - 1)]
        return [first, *middle, last]
    dx = [Fraction(spacing[k + 1]) - Fraction(spacing[k]) for k in range(n - 1)]
    middle = []
    for i in range(1, n - 1):
        d1, d2 = dx[i - 1], dx[i]
        middle.append({i - 1: -d2 / (d1 * (d1 + d2)), i: (d2 - d1) / (d1 * d2), i + 1: d1 / (d2 * (d1 + d2))})
    if edge_order == 1:
        first, last = {0: -1 / dx[0], 1: 1 / dx[0]}, {n - 2: -1 / dx[-1], n - 1: 1 / dx[-1]}
    else:
        d0, d1 = dx[0], dx[1]
        first = {0: -(2 * d0 + d1) / (d0 * (d0 + d1)), 1: (d0 + d1) / (d0 * d1), 2: -d0 / (d1 * (d0 + d1))}
        e1, e2 = dx[-1], dx[-2]
        last = {n - 3: e1 / (e2 * (e1 + e2)), n - 2: -(e1 + e2) / (e1 * e2), n - 1: (2 * e1 + e2) / (e1 * (e1 + e2))}
    return [first, *middle, last]


def _sym_slice(v: list, spacing, edge_order: int) -> list:
    return [sympy.Add(*(sympy.Rational(w.numerator, w.denominator) * v[j] for j, w in row.items()))
            for row in _exact_rows(len(v), spacing, edge_order)]


# ------------------------------------------------------------------ torch's ops in the rounding model
def _mul(F, w: arb, v: arb) -> arb:
    return formula.mul(F, w, v)


def _uniform_forward(F: RoundingModel, v: list[arb], h: arb, edge_order: int) -> list[arb]:
    n = len(v)
    middle = [F.div(F.div(F.sub(v[i + 1], v[i - 1]), h), arb(2)) for i in range(1, n - 1)]
    if edge_order == 1:
        first, last = F.div(F.sub(v[1], v[0]), h), F.div(F.sub(v[n - 1], v[n - 2]), h)
    else:
        first = F.div(F.sub(F.add(_mul(F, arb(-1.5), v[0]), _mul(F, arb(2), v[1])), _mul(F, arb(0.5), v[2])), h)
        last = F.div(F.add(F.sub(_mul(F, arb(0.5), v[n - 3]), _mul(F, arb(2), v[n - 2])),
                           _mul(F, arb(1.5), v[n - 1])), h)
    return [first, *middle, last]


def _uniform_backward(F: RoundingModel, n: int, h: arb, g: list[arb], edge_order: int) -> list[list[arb]]:
    """Each element's contributions (autograd adds them up in some order)."""
    parts: list[list[arb]] = [[] for _ in range(n)]
    for i in range(1, n - 1):  # (x[i+1] - x[i-1]) / h / 2: DivBackward twice, then SubBackward's ±
        share = formula.div(F, formula.div(F, g[i], arb(2)), h)
        parts[i + 1].append(share)
        parts[i - 1].append(-share)
    first, last = formula.div(F, g[0], h), formula.div(F, g[n - 1], h)
    if edge_order == 1:
        parts[1].append(first)
        parts[0].append(-first)
        parts[n - 1].append(last)
        parts[n - 2].append(-last)
    else:  # MulBackward by each weight (the subtracted term's gradient negated first)
        for j, w in ((0, -1.5), (1, 2.0), (2, -0.5)):
            parts[j].append(_mul(F, first, arb(w)))
        for j, w in ((n - 3, 0.5), (n - 2, -2.0), (n - 1, 1.5)):
            parts[j].append(_mul(F, last, arb(w)))
    return parts


@dataclass(frozen=True)
class _Weights:
    """torch's weights for coordinates, computed from them in the dtype: dx, the interior's (a, b, c) per
    position, and the second-order ends' (a, b, c)."""

    dx: list[arb]
    middle: list[tuple[arb, arb, arb]]
    first: tuple[arb, arb, arb] | None
    last: tuple[arb, arb, arb] | None


def _weights(F: RoundingModel, coordinates: tuple[float, ...], edge_order: int) -> _Weights:
    c = [arb(v) for v in coordinates]
    dx = [F.sub(c[k + 1], c[k]) for k in range(len(c) - 1)]
    middle = []
    for d1, d2 in zip(dx[:-1], dx[1:]):
        total = F.add(d1, d2)
        middle.append((F.div(-d2, F.mul(d1, total)), F.div(F.sub(d2, d1), F.mul(d1, d2)),
                       F.div(d1, F.mul(d2, total))))
    if edge_order == 1:
        return _Weights(dx, middle, None, None)
    d0, d1 = dx[0], dx[1]
    total = F.add(d0, d1)
    first = (F.div(-F.add(F.mul(arb(2), d0), d1), F.mul(d0, total)), F.div(total, F.mul(d0, d1)),
             F.div(-d0, F.mul(d1, total)))
    e1, e2 = dx[-1], dx[-2]
    total = F.add(e1, e2)
    last = (F.div(e1, F.mul(e2, total)), F.div(-total, F.mul(e1, e2)),
            F.div(F.add(F.mul(arb(2), e1), e2), F.mul(e1, total)))
    return _Weights(dx, middle, first, last)


def _weighted(F, weights, values) -> arb:
    """a x + b y + c z as torch adds the three products (left to right)."""
    a, b, c = (_mul(F, w, v) for w, v in zip(weights, values))
    return F.add(F.add(a, b), c)


def _coordinates_forward(F, v: list[arb], w: _Weights, edge_order: int) -> list[arb]:
    n = len(v)
    middle = [_weighted(F, w.middle[i - 1], v[i - 1:i + 2]) for i in range(1, n - 1)]
    if edge_order == 1:
        first, last = F.div(F.sub(v[1], v[0]), w.dx[0]), F.div(F.sub(v[n - 1], v[n - 2]), w.dx[-1])
    else:
        first, last = _weighted(F, w.first, v[:3]), _weighted(F, w.last, v[n - 3:])
    return [first, *middle, last]


def _coordinates_backward(F, n: int, w: _Weights, g: list[arb], edge_order: int) -> list[list[arb]]:
    parts: list[list[arb]] = [[] for _ in range(n)]
    for i in range(1, n - 1):
        for j, weight in zip((i - 1, i, i + 1), w.middle[i - 1]):
            parts[j].append(_mul(F, g[i], weight))
    if edge_order == 1:
        first, last = formula.div(F, g[0], w.dx[0]), formula.div(F, g[n - 1], w.dx[-1])
        parts[1].append(first)
        parts[0].append(-first)
        parts[n - 1].append(last)
        parts[n - 2].append(-last)
    else:
        for j, weight in zip((0, 1, 2), w.first):
            parts[j].append(_mul(F, g[0], weight))
        for j, weight in zip((n - 3, n - 2, n - 1), w.last):
            parts[j].append(_mul(F, g[n - 1], weight))
    return parts


# ------------------------------------------------------------------ the entry
def _out_shape(shapes, p) -> tuple[int, ...]:
    shape = shapes[0]
    return shape if p["dim"] is not None else (len(shape),) + shape


def _components(x: np.ndarray, p):
    """(output index prefix, dim, spacing) per result tensor of the call."""
    dims = _dims(p, x.ndim)
    prefix = (lambda k: ()) if p["dim"] is not None else (lambda k: (k,))
    return [(prefix(k), d, _spacing(p, k)) for k, d in enumerate(dims)]


def _sym(arrays, p):
    x = arrays[0]
    out = np.empty(_out_shape((x.shape,), p), dtype=object)
    for prefix, d, spacing in _components(x, p):
        for members, _ in formula.slices(x.shape, d):
            for m, e in zip(members, _sym_slice([x[m] for m in members], spacing, p["edge_order"])):
                out[prefix + m] = e
    return out


def _forward(F, arrays, p):
    x = arrays[0]
    out = np.empty(_out_shape((x.shape,), p), dtype=object)
    for prefix, d, spacing in _components(x, p):
        for members, _ in formula.slices(x.shape, d):
            v = [x[m] for m in members]
            if isinstance(spacing, tuple):
                values = _coordinates_forward(F, v, _weights(F, spacing, p["edge_order"]), p["edge_order"])
            else:
                values = _uniform_forward(F, v, arb(spacing), p["edge_order"])
            for m, e in zip(members, values):
                out[prefix + m] = e
    return out


def _backward(F, arrays, out, grad, p):
    x = arrays[0]
    parts = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        parts[index] = []
    for prefix, d, spacing in _components(x, p):
        for members, _ in formula.slices(x.shape, d):
            g = [grad[prefix + m] for m in members]
            if isinstance(spacing, tuple):
                contributions = _coordinates_backward(F, len(members), _weights(F, spacing, p["edge_order"]), g,
                                                      p["edge_order"])
            else:
                contributions = _uniform_backward(F, len(members), arb(spacing), g, p["edge_order"])
            for m, c in zip(members, contributions):
                parts[m].extend(c)
    result = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        result[index] = formula.sum_any(F, parts[index])
    return (result,)


def _options(shapes):
    """Per edge order, each dim long enough (edge_order + 1 elements) with every kind of spacing, and every dim
    at once for a matrix."""
    shape = shapes[0]
    if len(shape) not in (1, 2):
        return ()
    found = []
    for edge_order in (1, 2):
        long_enough = [d for d, n in enumerate(shape) if n > edge_order]
        for d in long_enough:
            for spacing in (None, SCALAR_SPACING, (LIST_SPACINGS[d],), Coordinates((shape[d],))):
                found.append(_params(dim=d, spacing=spacing, edge_order=edge_order))
        if len(shape) == 2 and len(long_enough) == 2:
            for spacing in (None, LIST_SPACINGS, Coordinates(shape)):
                found.append(_params(dim=None, spacing=spacing, edge_order=edge_order))
    return tuple(found)


def _spacing_text(x: str, spacing) -> str:
    if spacing is None:
        return ""
    if isinstance(spacing, Coordinates):
        tensors = ", ".join(f"{x}.new_tensor({list(spacing.values(k))})" for k in range(len(spacing.sizes)))
        return f", spacing=[{tensors}]"
    if isinstance(spacing, tuple):
        return f", spacing={list(spacing)}"
    return f", spacing={spacing!r}"


def _spacing_argument(x: torch.Tensor, spacing):
    if spacing is None:
        return {}
    if isinstance(spacing, Coordinates):
        return {"spacing": [x.new_tensor(spacing.values(k)) for k in range(len(spacing.sizes))]}
    return {"spacing": list(spacing) if isinstance(spacing, tuple) else spacing}


def _render(texts, p) -> str:
    call = f"torch.gradient({texts[0]}{_spacing_text(texts[0], p['spacing'])}"
    if p["dim"] is None:
        return f"torch.stack({call}, edge_order={p['edge_order']}))"
    return f"{call}, dim={p['dim']}, edge_order={p['edge_order']})[0]"


def _call(tensors, p):
    x = tensors[0]
    results = torch.gradient(x, **_spacing_argument(x, p["spacing"]), dim=p["dim"], edge_order=p["edge_order"])
    return torch.stack(results) if p["dim"] is None else results[0]


def _at_defaults(shapes, p) -> bool:
    """A vector with every parameter at torch's default: its one result."""
    return len(shapes[0]) == 1 and p["spacing"] is None and p["edge_order"] == 1


TENSOR_OPS["gradient"] = TensorOp(
    "gradient", 1,
    (TSpelling(_render, _call),
     TSpelling(lambda texts, p: f"torch.gradient({texts[0]})[0]", lambda tensors, p: torch.gradient(tensors[0])[0],
               _at_defaults)),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)), _out_shape, ("gradient",))
