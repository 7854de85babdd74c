"""cdist(x1, x2, p, compute_mode): the p-norm distance of every row of an P x M x1 to every row of an R x M x2
(p = 0: the count of nonzero differences).

torch (aten/src/ATen/native/Distance.cpp, cpu/DistanceOpsKernel.cpp, float and double only on the CPU) takes one of
two routes:
- the direct kernel (_cdist_forward, every p; p = 2 with compute_mode 'donot_use_mm_for_euclid_dist', or the default
  'use_mm_for_euclid_dist_if_necessary' while both row counts are at most 25, as the drawn shapes' always are): per pair
  the differences a - b, then sum min(ceil(|d|), 1) (p = 0), sum |d| (p = 1), sqrt(sum d²) (p = 2), max |d|
  (p = inf), or pow(sum pow(|d|, p), 1 / p); _cdist_backward per pair and element: 0 (p = 0), grad·sign(d),
  grad·d / dist, grad·d·pow(|d|, p - 2) / pow(dist, p - 1), and for p = inf grad·sign(d) on every element with
  |d| == dist; 0 where dist == 0;
- the matrix-product route (p = 2, compute_mode 'use_mm_for_euclid_dist', or the default beyond 25 rows;
  _euclidean_dist): [-2 x1, |x1|², 1] @
  [x2, 1, |x2|²]ᵀ, clamped at 0, square root; _euclidean_dist_backward with ratio = grad / dist (0 where dist == 0):
  x1·Σ_j ratio - ratio @ x2, x2·Σ_i ratio - ratioᵀ @ x1. Both cancel when a distance is small against the rows'
  norms; the model carries that cancellation.

Conventions: a zero distance (identical rows) gets the gradient 0, the minimum-norm subgradient (pinned in
oracles.table.reduction_conventions); for p = inf, elements tied at the largest |d| each get the whole gradient
(finding cdist-inf-tie), so the model leaves such ties undecided; for p = 0 a difference 0 is a jump of the count
(no derivative; torch's 0 pinned), also left undecided.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table import tensor_formulas as formula
from oracles.table.shape_ops import _params, _spelling, _with
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["cdist"]  # the entries this module adds to TENSOR_OPS (their forwards round: no index maps)
ZERO = formula.ZERO
INF = math.inf
DEFAULT_MODE = "use_mm_for_euclid_dist_if_necessary"
MATRIX_PRODUCT = "use_mm_for_euclid_dist"
DIRECT = "donot_use_mm_for_euclid_dist"
K_POW = 2  # std::pow and SLEEF's vectorised pow (1.0-ulp variant): within an ulp (two half-ulps)


def _pairs(p_rows: int, r_rows: int):
    return itertools.product(range(p_rows), range(r_rows))


# ------------------------------------------------------------------ SymPy
def _sym_distance(differences, p: float):
    if p == 0:  # the count of nonzero differences: sign(d)² is 1 or 0, constant between its jumps
        return sympy.Add(*(sympy.sign(d) ** 2 for d in differences))
    if p == 1:
        return sympy.Add(*(sympy.Abs(d) for d in differences))
    if p == 2:
        return sympy.sqrt(sympy.Add(*(d ** 2 for d in differences)))
    if p == INF:
        return formula.sym_max([sympy.Abs(d) for d in differences])
    # an integer p (3): |d|^p has an integer power, which the exact evaluator takes at d = 0
    order = sympy.Integer(int(p))
    return sympy.Add(*(sympy.Abs(d) ** order for d in differences)) ** (1 / order)


def _sym(arrays, p):
    a, b = arrays
    out = np.empty((len(a), len(b)), dtype=object)
    for i, j in _pairs(len(a), len(b)):
        out[i, j] = _sym_distance([u - v for u, v in zip(a[i], b[j])], p["p"])
    return out


# ------------------------------------------------------------------ the direct kernel in the rounding model
def _difference(F: RoundingModel, a: arb, b: arb) -> arb:
    """a - b as torch computes it: exactly 0 for two equal floats (so identical rows give an exact zero distance)."""
    if a.is_exact() and b.is_exact() and a == b:
        return ZERO
    return F.sub(a, b)


def _differences(F, a, b, i, j):
    return [_difference(F, u, v) for u, v in zip(a[i], b[j])]


def _power(F: RoundingModel, base: arb, exponent: arb) -> arb:
    """pow(base, exponent) for base >= 0: exactly 0 at an exact 0 base (a positive exponent)."""
    if formula.is_exact_zero(base):
        return ZERO
    if not base > 0:
        raise Singular("a power's base may be 0 within the rounding model")
    return F.round(base ** exponent, K_POW)


def _nonzero(v: arb) -> int:
    """min(ceil(|d|), 1), the zero norm's term: 0 for an exact 0, else 1."""
    if formula.is_exact_zero(v):
        return 0
    if v.contains(0):
        raise Singular("a difference may be 0 within the rounding model: the zero norm's count jumps there")
    return 1


def _direct_distance(F, d: list[arb], p: float) -> arb:
    magnitudes = [abs(v) for v in d]
    if p == 0:
        return arb(sum(_nonzero(v) for v in d))
    if p == 1:
        return formula.sum_any(F, magnitudes)
    if p == 2:
        return formula.norm_forward(F, d, None)
    if p == INF:
        return formula.hull_maximum(magnitudes)
    total = formula.sum_any(F, [_power(F, m, arb(p)) for m in magnitudes])
    # finish: std::pow(agg, 1.0 / p), the exponent rounded to the format (float's is the wider ball)
    return _power(F, total, F.div(arb(1), arb(p)))


def _direct_shares(F, d: list[arb], dist: arb, g: arb, p: float) -> list[arb]:
    """x1's part of one pair's gradient (x2's is its negation: torch runs the same kernel on x2 - x1)."""
    if p == 0:  # torch fills 0; the count is constant only where no difference is 0
        if any(_nonzero(v) == 0 for v in d):
            raise Singular("a difference is 0: the zero norm's count jumps there (no derivative)")
        return [ZERO] * len(d)
    if formula.is_exact_zero(dist):
        return [ZERO] * len(d)  # dist == 0 ? 0 (and sign(0) = 0 for p = 1 and inf)
    if dist.contains(0) and p != 1:
        raise Singular("a distance may be 0 within the rounding model")
    if p == 1:
        return [ZERO if formula.is_exact_zero(v) else g * F.sign(v) for v in d]
    if p == 2:
        return [formula.div(F, formula.mul(F, g, v), dist) for v in d]
    if p == INF:
        _, ties = formula.maximum([abs(v) for v in d])
        if len(ties) > 1:
            raise Singular("|x1 - x2| ties at its maximum: torch gives each tied element the whole gradient "
                           "(finding cdist-inf-tie)")
        return [g * F.sign(d[c]) if c in ties else ZERO for c in range(len(d))]
    scale = _power(F, dist, arb(p - 1))
    return [formula.div(F, formula.mul(F, formula.mul(F, v, _power(F, abs(v), arb(p - 2))), g), scale) for v in d]


# ------------------------------------------------------------------ the matrix-product route
def _squared_norms(F, rows):
    return [formula.sum_any(F, [formula.mul(F, v, v) for v in row]) for row in rows]


def _product_distance(F, a_row, b_row, a_norm: arb, b_norm: arb) -> arb:
    """sqrt(clamp_min(-2 a·b + |a|² + |b|², 0)) as one matrix product of the padded rows computes it."""
    terms = [formula.mul(F, -2 * u, v) for u, v in zip(a_row, b_row)] + [a_norm, b_norm]
    squared = formula.sum_any(F, terms)
    if formula.is_exact_zero(squared):
        return ZERO
    if not squared > 0:
        raise Singular("the squared distance may be 0 or clamped within the rounding model")
    return F.round(squared.sqrt(), 1)


def _product_backward(F, a, b, out, grad):
    ratio = np.empty(out.shape, dtype=object)
    for index in np.ndindex(*out.shape):
        if formula.is_exact_zero(out[index]):
            ratio[index] = ZERO  # masked_fill_(res == 0, 0)
            continue
        if out[index].contains(0):
            raise Singular("a distance may be 0 within the rounding model")
        ratio[index] = formula.div(F, grad[index], out[index])

    def side(x, y, r):  # x·Σ_k r[:, k] - r @ y, for x1 (r = ratio) and for x2 (r = ratioᵀ)
        result = np.empty(x.shape, dtype=object)
        for i in range(x.shape[0]):
            total = formula.sum_any(F, list(r[i]))
            for c in range(x.shape[1]):
                mixed = formula.sum_any(F, [formula.mul(F, r[i, k], y[k, c]) for k in range(y.shape[0])])
                result[i, c] = F.sub(formula.mul(F, x[i, c], total), mixed)
        return result

    return side(a, b, ratio), side(b, a, ratio.T)


# ------------------------------------------------------------------ the entry's forward and backward
# the default compute_mode takes the matrix-product route for p = 2 where either argument has more rows than this
MOST_ROWS_WITHOUT_PRODUCT = 25


def _uses_product(a, b, p) -> bool:
    mode = p["compute_mode"]
    return p["p"] == 2 and (mode == MATRIX_PRODUCT or (
        mode == DEFAULT_MODE and max(len(a), len(b)) > MOST_ROWS_WITHOUT_PRODUCT))


def _forward(F, arrays, p):
    a, b = arrays
    out = np.empty((len(a), len(b)), dtype=object)
    if _uses_product(a, b, p):
        a_norms, b_norms = _squared_norms(F, a), _squared_norms(F, b)
        for i, j in _pairs(len(a), len(b)):
            out[i, j] = _product_distance(F, a[i], b[j], a_norms[i], b_norms[j])
        return out
    for i, j in _pairs(len(a), len(b)):
        out[i, j] = _direct_distance(F, _differences(F, a, b, i, j), p["p"])
    return out


def _backward(F, arrays, out, grad, p):
    a, b = arrays
    if _uses_product(a, b, p):
        return _product_backward(F, a, b, out, grad)
    collected = [{index: [] for index in np.ndindex(*x.shape)} for x in (a, b)]
    for i, j in _pairs(len(a), len(b)):
        shares = _direct_shares(F, _differences(F, a, b, i, j), out[i, j], grad[i, j], p["p"])
        for c, share in enumerate(shares):
            collected[0][(i, c)].append(share)
            collected[1][(j, c)].append(-share)
    results = []
    for x, parts in zip((a, b), collected):
        result = np.empty(x.shape, dtype=object)
        for index, shares in parts.items():
            result[index] = formula.sum_any(F, shares)
        results.append(result)
    return results


# ------------------------------------------------------------------ exactly, where SymPy's derivative does not exist
def _exact_sign(v: arb) -> int:
    return formula.decided_sign(v, "a difference may be 0")


def _exact_shares(d: list[arb], g: arb, p: float) -> list[arb]:
    """The minimum-norm subgradient of the pair's p-norm times g (the derivative itself where there is one)."""
    if p == 0:
        if any(_exact_sign(v) == 0 for v in d):
            raise Singular("a difference is 0: the zero norm's count jumps there (no derivative)")
        return [ZERO] * len(d)
    if all(formula.is_exact_zero(v) for v in d):
        return [ZERO] * len(d)  # the norm's kink at 0: its subdifferential is the dual ball, of minimum norm 0
    if p == 1:
        return [g * _exact_sign(v) for v in d]
    if p == INF:
        _, ties = formula.maximum([abs(v) for v in d])  # exact balls: equal ones tie, overlapping ones raise
        share = g / len(ties)
        return [share * _exact_sign(d[c]) if c in ties else ZERO for c in range(len(d))]
    dist = sum((abs(v) ** int(p) for v in d), arb(0)) ** (arb(1) / int(p))
    return [g * v * abs(v) ** int(p - 2) / dist ** int(p - 1) for v in d]


def _subgradient_vjp(args, adjoint, p):
    a, b = args
    grads = [np.full(a.shape, ZERO, dtype=object), np.full(b.shape, ZERO, dtype=object)]
    for i, j in _pairs(len(a), len(b)):
        for c, share in enumerate(_exact_shares([u - v for u, v in zip(a[i], b[j])], adjoint[i, j], p["p"])):
            grads[0][i, c] += share
            grads[1][j, c] -= share
    return grads


# ------------------------------------------------------------------ parameters and spellings
def _operand_shapes(shape):
    """x1 (P, M) against as many rows, or against two (M columns both)."""
    return list(dict.fromkeys([(shape, shape), (shape, (2, shape[1]))]))


def _options(shapes):
    if len(shapes[0]) != 2:
        return ()
    return (_params(p=2.0, compute_mode=DEFAULT_MODE), _params(p=1.0, compute_mode=DEFAULT_MODE),
            _params(p=INF, compute_mode=DEFAULT_MODE), _params(p=3.0, compute_mode=DEFAULT_MODE),
            _params(p=0.0, compute_mode=DEFAULT_MODE),
            _params(p=2.0, compute_mode=MATRIX_PRODUCT), _params(p=2.0, compute_mode=DIRECT))


def _render_p(p: float) -> str:
    return "float('inf')" if p == INF else repr(p)


def _rendered(with_mode: bool):
    def render(texts, p) -> str:
        mode = f", compute_mode={p['compute_mode']!r}" if with_mode else ""
        return f"torch.cdist({texts[0]}, {texts[1]}, p={_render_p(p['p'])}{mode})"
    return render


def _cdist(x1, x2, p, compute_mode):
    return torch.cdist(x1, x2, p=p, compute_mode=compute_mode)


TENSOR_OPS["cdist"] = TensorOp(
    "cdist", 2,
    (_spelling("torch.cdist({0}, {1})", lambda x1, x2, **_: torch.cdist(x1, x2),
               _with(p=2.0, compute_mode=DEFAULT_MODE)),
     TSpelling(_rendered(False), _spelling("", lambda x1, x2, p, **_: torch.cdist(x1, x2, p=p)).call,
               _with(compute_mode=DEFAULT_MODE)),
     TSpelling(_rendered(True), _spelling("", _cdist).call)),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)),
    lambda shapes, p: (shapes[0][0], shapes[1][0]), ("cdist",), ranks=(2,), operand_shapes=_operand_shapes,
    cpu_dtypes=("float64", "float32"),
    ties="identical rows (distance 0): the gradient 0, the minimum-norm subgradient; p = inf, |x1 - x2| tied at "
         "its maximum: each tied element gets the whole gradient (finding cdist-inf-tie); p = 0, a difference 0: "
         "a jump, torch gives 0",
    pinned_as=("cdist", "cdist_p0", "cdist_p1", "cdist_inf"), subgradient_vjp=_subgradient_vjp)
