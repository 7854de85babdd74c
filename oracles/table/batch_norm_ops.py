"""Layer, group, instance and batch normalization in the tensor-op table, each with its weight and bias as
further arguments, after torch's CPU kernels (layer_norm_kernel.cpp, group_norm_kernel.cpp,
batch_norm_kernel.cpp, Normalization.cpp, moments_utils.h) and derivatives.yaml.

layer_norm and group_norm take their statistics from RowwiseMoments: Welford's algorithm in opmath (float
for bfloat16 and float16), run per vector lane over the row's whole vectors (a chunk of up to 16 vectors per
lane, each chunk merged into a cascade of partial moments), then sequentially over the tail, the lanes
merged into the tail's moments last (AddMoments). Which elements share a lane depends on the vector width of
the CPU capability torch dispatches to, read from torch at import. batch_norm (and instance_norm, which is
batch_norm on a reshaped view) sums in the accumulator type (double for float) in two passes. The saved
statistics (mean, rstd or invstd) are held in the input's dtype and read back by the backward kernels.

Every operation is modelled as correctly rounded; where a kernel writes a fused multiply-add (or the compiler
may contract one) it is modelled as a product and a sum each rounded, whose enclosure contains the fused
result.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel
from oracles.table.loss_ops import correctly_rounded
from oracles.table.tensor_formulas import ZERO, is_exact_zero
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, OptionSpace, TensorOp, TSpelling

NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS
ONE = arb(1)
CHUNK = 16  # kChunkSize: vectors per lane before a chunk's moments join the cascade


def _cpu_capability() -> str:
    """The CPU kernels torch dispatches to (AVX512, AVX2, DEFAULT): torch.backends.cpu since torch 2.1, before
    that only in the build configuration's text ("CPU capability usage: AVX2")."""
    cpu = getattr(torch.backends, "cpu", None)
    if cpu is not None:
        return cpu.get_cpu_capability()
    lines = [line for line in torch.__config__.show().splitlines() if "CPU capability usage:" in line]
    return lines[0].split(":", 1)[1].strip() if lines else "DEFAULT"


# Vectorized<T>'s width in bytes: 64 under AVX512, 32 under AVX2 and the default build
VECTOR_BYTES = 64 if _cpu_capability().startswith("AVX512") else 32
LAYER_EPS = 1e-5  # layer_norm's default eps, cast to the kernel's type (float for bfloat16 and float16)


# ------------------------------------------------------------------ exact-preserving float operations
def _add(C: RoundingModel, a: arb, b: arb) -> arb:
    """a + b rounded once; adding an exact 0 is exact."""
    if is_exact_zero(b):
        return a
    if is_exact_zero(a):
        return b
    return correctly_rounded(C, a + b)


def _sub(C: RoundingModel, a: arb, b: arb) -> arb:
    return _add(C, a, -b)


def _mul(C: RoundingModel, a: arb, b: arb) -> arb:
    """a * b rounded once; a factor exactly 0 or 1 makes it exact."""
    if is_exact_zero(a) or is_exact_zero(b):
        return ZERO
    if a.is_exact() and a == 1:
        return b
    if b.is_exact() and b == 1:
        return a
    return correctly_rounded(C, a * b)


def _fmadd(C: RoundingModel, a: arb, b: arb, c: arb) -> arb:
    """fmadd(a, b, c), or a * b + c where it is not fused: two roundings enclose both."""
    return _add(C, _mul(C, a, b), c)


def _nonnegative(value: arb) -> arb:
    """A ball cut to [0, inf): for the kernel's sums of squared deviations, which no rounding makes negative
    (each term is a product of two factors of one sign: x - m1 keeps delta's sign, m1 moving by at most half
    of delta after the first element, and rounding is monotone)."""
    if value.lower() >= 0:
        return value
    return arb(0).union(arb(value.upper()))


def _ratio(C: RoundingModel, p: int, q: int) -> arb:
    """math_t(p) / math_t(q) for small integers: the one float nearest p / q (a double rounded to float:
    double's 53 bits exceed 2 * 24 + 2, so the double rounding is innocuous)."""
    return ZERO if q == 0 else arb(C.format.round(p / q))


# ------------------------------------------------------------------ RowwiseMoments
class Moments:
    """A count and the (mean, sum of squared deviations) of a set of elements, as the kernel holds them."""

    def __init__(self, count: int = 0, m1: arb = ZERO, m2: arb = ZERO):
        self.count, self.m1, self.m2 = count, m1, m2

    def merge_vec(self, C: RoundingModel, other: Moments) -> None:
        """AddMomentsVec: c = n_add / n; m1 + c * delta; fmadd(delta * m0, c * delta, m2 + m2_add)."""
        n = self.count + other.count
        c = _ratio(C, other.count, n)
        delta = _sub(C, other.m1, self.m1)
        m2_tmp = _add(C, self.m2, other.m2)
        c_delta = _mul(C, c, delta)
        m0_delta = _mul(C, delta, arb(self.count))
        self.m1 = _add(C, self.m1, c_delta)
        self.m2 = _nonnegative(_fmadd(C, m0_delta, c_delta, m2_tmp))
        self.count = n

    def merge(self, C: RoundingModel, other: Moments) -> None:
        """AddMoments (the scalar merge): m1 += c * delta; m2 += m2_add + delta * delta * c * m0."""
        n = self.count + other.count
        c = _ratio(C, other.count, n)
        delta = _sub(C, other.m1, self.m1)
        self.m1 = _add(C, self.m1, _mul(C, c, delta))
        spread = _mul(C, _mul(C, _mul(C, delta, delta), c), arb(self.count))
        self.m2 = _nonnegative(_add(C, self.m2, _add(C, other.m2, spread)))
        self.count = n


def _chunk_lane(C: RoundingModel, xs: list[arb]) -> Moments:
    """UpdateMomentsVec for one lane: delta = x - m1; m1 = fmadd(1/(j+1), delta, m1) (the reciprocal a
    float); m2 = fmadd(delta, x - m1, m2)."""
    m1, m2 = ZERO, ZERO
    for j, x in enumerate(xs):
        delta = _sub(C, x, m1)
        m1 = _fmadd(C, _ratio(C, 1, j + 1), delta, m1)
        m2 = _nonnegative(_fmadd(C, delta, _sub(C, x, m1), m2))
    return Moments(len(xs), m1, m2)


def _lane_moments(C: RoundingModel, row: list[arb], width: int, lanes: int) -> list[Moments]:
    """The per-lane moments of the row's first n = N // width whole vectors: chunks of up to 16 vectors, a
    reduced-precision vector's two float halves merged one after the other, the chunks cascaded pairwise
    (stack level j takes level j - 1 when bit j - 1 of the chunk count turns over), the levels merged into
    level 0 at the end."""
    n = len(row) // width
    chunks = -(-n // CHUNK)
    depth = math.ceil(math.log2(chunks)) if chunks > 1 else 0
    stack = [[Moments() for _ in range(lanes)] for _ in range(max(depth, 1))]
    for i in range(chunks):
        first, count = i * CHUNK, min(CHUNK, n - i * CHUNK)
        for half in range(width // lanes):
            for lane in range(lanes):
                xs = [row[(first + j) * width + half * lanes + lane] for j in range(count)]
                stack[0][lane].merge_vec(C, _chunk_lane(C, xs))
        mask = i + 1
        for j in range(1, depth):
            if mask & 1:
                break
            for lane in range(lanes):
                stack[j][lane].merge_vec(C, stack[j - 1][lane])
            stack[j - 1] = [Moments() for _ in range(lanes)]
            mask >>= 1
    for j in range(1, depth):
        for lane in range(lanes):
            stack[0][lane].merge_vec(C, stack[j][lane])
    return stack[0]


def rowwise_moments(F: RoundingModel, row: list[arb]) -> tuple[arb, arb]:
    """(mean, population variance) of the row in opmath, as RowwiseMoments computes them."""
    C = F.opmath
    width = VECTOR_BYTES // _bytes(F)
    lanes = VECTOR_BYTES // _bytes(C)
    lane_moments = _lane_moments(C, row, width, lanes)
    tail = Moments()
    for x in row[len(row) // width * width:]:
        delta = _sub(C, x, tail.m1)
        tail.count += 1
        tail.m1 = _add(C, tail.m1, _div(C, delta, arb(tail.count)))
        tail.m2 = _nonnegative(_add(C, tail.m2, _mul(C, delta, _sub(C, x, tail.m1))))
    for lane in lane_moments:
        if lane.count:
            tail.merge(C, lane)
    return tail.m1, _div(C, tail.m2, arb(len(row)))


def _bytes(F: RoundingModel) -> int:
    return {"float64": 8, "float32": 4}.get(F.format.name, 2)


def _div(C: RoundingModel, a: arb, b: arb) -> arb:
    if is_exact_zero(a):
        return ZERO
    if b.is_exact() and b == 1:
        return a
    return correctly_rounded(C, a / b)


def stored(F: RoundingModel, value: arb) -> arb:
    """An opmath value written to a tensor of the dtype: rounded once where opmath is wider."""
    return value if F.opmath is F else correctly_rounded(F, value)


def _sum(C: RoundingModel, values: list[arb]) -> arb:
    """A vectorised reduction (reduce_all, map2_reduce_all) in any order; exact zeros add nothing."""
    terms = [v for v in values if not is_exact_zero(v)]
    return ZERO if not terms else terms[0] if len(terms) == 1 else C.sum(terms)


def _buffered_sum(F: RoundingModel, terms: list[arb]) -> arb:
    """The weight's and bias's gradients: each row's term added, in opmath, into a per-thread buffer of the
    dtype (rounded there), the threads' buffers then added in opmath and stored: at most 2 * rows roundings,
    each within u of the dtype times the terms' total magnitude."""
    terms = [t for t in terms if not is_exact_zero(t)]
    if not terms:
        return ZERO
    if len(terms) == 1:
        return stored(F, terms[0])
    k = 2 * len(terms)
    magnitude = sum((arb(t.abs_upper()) for t in terms), ZERO) * (1 + k * F.u)
    return F.round(sum(terms, ZERO), k, magnitude)


# ------------------------------------------------------------------ layer_norm
def _rows(a: np.ndarray, k: int) -> np.ndarray:
    """(M, N): the last k dims of each leading index, row-major."""
    return a.reshape(-1, int(np.prod(a.shape[a.ndim - k:], dtype=int)))


def _layer_math(arrays, p):
    x, w, b = arrays
    k = len(p["normalized_shape"])
    rows, weight, bias = _rows(x, k), w.reshape(-1), b.reshape(-1)
    out = np.empty(rows.shape, dtype=object)
    eps = sympy.Rational(LAYER_EPS)
    for i, row in enumerate(rows):
        mean = sympy.Add(*row) / len(row)
        var = sympy.Add(*((v - mean) ** 2 for v in row)) / len(row)
        for j, v in enumerate(row):
            out[i, j] = (v - mean) / sympy.sqrt(var + eps) * weight[j] + bias[j]
    return out.reshape(x.shape)


def row_statistics(F: RoundingModel, row: list[arb]) -> tuple[arb, arb]:
    """(mean, rstd) in opmath: RowwiseMoments, then 1 / sqrt(var + eps), each operation rounded."""
    C = F.opmath
    mean, var = rowwise_moments(F, row)
    root = correctly_rounded(C, _add(C, var, C.const(LAYER_EPS)).sqrt())
    return mean, correctly_rounded(C, ONE / root)


def _layer_forward(F, arrays, p):
    """float and double: (x - mean) * rstd * gamma + beta; bfloat16 and float16 (in float, stored once):
    (x * rstd + (-rstd * mean)) * gamma + beta."""
    C = F.opmath
    x, w, b = arrays
    rows, weight, bias = _rows(x, len(p["normalized_shape"])), w.reshape(-1), b.reshape(-1)
    out = np.empty(rows.shape, dtype=object)
    for i, row in enumerate(rows):
        mean, rstd = row_statistics(F, list(row))
        shift = _mul(C, -rstd, mean)
        for j, v in enumerate(row):
            if C is F:
                normal = _mul(C, _sub(C, v, mean), rstd)
            else:
                normal = _add(C, _mul(C, v, rstd), shift)
            out[i, j] = stored(F, _add(C, _mul(C, normal, weight[j]), bias[j]))
    return out.reshape(x.shape)


def _layer_backward(F, arrays, out, grad, p):
    """LayerNormBackwardKernel with the statistics native_layer_norm saved (stored in the dtype: a
    bfloat16 input keeps a bfloat16 mean and rstd). Per row, in opmath: ds = sum(dy * x * gamma), db =
    sum(dy * gamma); b = (db * mean - ds) * rstd^3 / N; c = -b * mean - db * rstd / N; dx = rstd * dy * gamma
    + b * x + c. gamma's gradient sums dy * (rstd * x - rstd * mean) over the rows, beta's dy."""
    C = F.opmath
    x, w, _ = arrays
    rows, g_rows = _rows(x, len(p["normalized_shape"])), _rows(grad, len(p["normalized_shape"]))
    weight = w.reshape(-1)
    n = rows.shape[1]
    scale = _ratio(C, 1, n)
    dx = np.empty(rows.shape, dtype=object)
    to_weight: list[list[arb]] = [[] for _ in range(n)]
    for i, (row, dy) in enumerate(zip(rows, g_rows)):
        mean, rstd = (stored(F, v) for v in row_statistics(F, list(row)))
        ds = _sum(C, [_mul(C, _mul(C, d, v), g) for d, v, g in zip(dy, row, weight)])
        db = _sum(C, [_mul(C, d, g) for d, g in zip(dy, weight)])
        cubed = _mul(C, _mul(C, _mul(C, _sub(C, _mul(C, db, mean), ds), rstd), rstd), rstd)
        b = _mul(C, cubed, scale)
        c = _sub(C, _mul(C, -b, mean), _mul(C, _mul(C, db, rstd), scale))
        shift = _mul(C, -rstd, mean)
        for j, (d, v, g) in enumerate(zip(dy, row, weight)):
            dx[i, j] = stored(F, _add(C, _add(C, _mul(C, _mul(C, rstd, d), g), _mul(C, b, v)), c))
            to_weight[j].append(_mul(C, d, _add(C, _mul(C, rstd, v), shift)))
    g_weight = np.array([_buffered_sum(F, t) for t in to_weight], dtype=object)
    g_bias = np.array([_buffered_sum(F, list(g_rows[:, j])) for j in range(n)], dtype=object)
    return dx.reshape(x.shape), g_weight.reshape(w.shape), g_bias.reshape(w.shape)


def _normalized_shapes(shape: tuple[int, ...]):
    """The weight's and bias's shape is normalized_shape: the input's last k dims."""
    return [(shape, shape[len(shape) - k:], shape[len(shape) - k:]) for k in range(1, len(shape) + 1)]


def _layer_options(shapes):
    return [CallParams((("normalized_shape", tuple(shapes[1])),))]


_F = torch.nn.functional
TENSOR_OPS["layer_norm"] = TensorOp("layer_norm", 3, (
    TSpelling(lambda a, p: f"torch.nn.functional.layer_norm({a[0]}, {p['normalized_shape']}, {a[1]}, {a[2]})",
              lambda a, p: _F.layer_norm(a[0], p["normalized_shape"], a[1], a[2])),
    TSpelling(lambda a, p: f"torch.nn.functional.layer_norm({a[0]}, {p['normalized_shape']}, weight={a[1]}, "
                           f"bias={a[2]}, eps={LAYER_EPS!r})",
              lambda a, p: _F.layer_norm(a[0], p["normalized_shape"], weight=a[1], bias=a[2], eps=LAYER_EPS)),
    TSpelling(lambda a, p: f"torch.layer_norm({a[0]}, {p['normalized_shape']}, {a[1]}, {a[2]})",
              lambda a, p: torch.layer_norm(a[0], p["normalized_shape"], a[1], a[2])),
    TSpelling(lambda a, p: f"torch.native_layer_norm({a[0]}, {p['normalized_shape']}, {a[1]}, {a[2]}, "
                           f"{LAYER_EPS!r})[0]",
              lambda a, p: torch.native_layer_norm(a[0], p["normalized_shape"], a[1], a[2], LAYER_EPS)[0]),
), _layer_math, _layer_forward, _layer_backward, OptionSpace(_layer_options), lambda shapes, p: shapes[0],
    ("nn.functional.layer_norm", "native_layer_norm"), ranks=(1, 2, 3), operand_shapes=_normalized_shapes)
NAMES.append("layer_norm")


# ------------------------------------------------------------------ group_norm
DOUBLE = RoundingModel(format_named("float64"))
GROUP_EPS = 1e-5  # group_norm's default eps, a double in the kernel


def _group_math(arrays, p):
    x, w, b = arrays
    groups = p["groups"]
    out = np.empty(x.shape, dtype=object)
    per_group = x.shape[1] // groups
    eps = sympy.Rational(GROUP_EPS)
    for n in range(x.shape[0]):
        for g in range(groups):
            members = [(n, c) + rest for c in range(g * per_group, (g + 1) * per_group)
                       for rest in np.ndindex(*x.shape[2:])]
            values = [x[m] for m in members]
            mean = sympy.Add(*values) / len(values)
            var = sympy.Add(*((v - mean) ** 2 for v in values)) / len(values)
            for m, v in zip(members, values):
                out[m] = (v - mean) / sympy.sqrt(var + eps) * w[m[1]] + b[m[1]]
    return out


def _group_rstd(F: RoundingModel, var: arb) -> arb:
    """1 / sqrt(max(var, 0) + eps) with eps a double: computed in double, then held in opmath."""
    root = correctly_rounded(DOUBLE, _add(DOUBLE, var, arb(GROUP_EPS)).sqrt())
    rstd = correctly_rounded(DOUBLE, ONE / root)
    return rstd if F.opmath.format.name == "float64" else correctly_rounded(F.opmath, rstd)


def _group_statistics(F: RoundingModel, x: np.ndarray, groups: int):
    """Per (sample, group): (mean, rstd) in opmath, RowwiseMoments over the group's channels and positions
    (contiguous in memory), and the group's channel range."""
    per_group = x.shape[1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            channels = range(g * per_group, (g + 1) * per_group)
            mean, var = rowwise_moments(F, list(x[n, g * per_group:(g + 1) * per_group].reshape(-1)))
            yield n, channels, mean, _group_rstd(F, var)


def _group_forward(F, arrays, p):
    """scale = rstd * gamma, bias = -scale * mean + beta per channel, y = scale * x + bias, in opmath."""
    C = F.opmath
    x, w, b = arrays
    out = np.empty(x.shape, dtype=object)
    for n, channels, mean, rstd in _group_statistics(F, x, p["groups"]):
        for c in channels:
            scale = _mul(C, rstd, w[c])
            shift = _add(C, _mul(C, -scale, mean), b[c])
            for k in np.ndindex(*x.shape[2:]):
                out[(n, c) + k] = stored(F, _add(C, _mul(C, scale, x[(n, c) + k]), shift))
    return out


def _group_backward(F, arrays, out, grad, p):
    """GroupNormBackwardKernel with the statistics native_group_norm saved (in the dtype): per (sample,
    channel) ds = sum(dy * x), db = sum(dy) in opmath; per group ds_g = sum(ds * gamma), db_g = sum(db *
    gamma); c2 = (db_g * mean - ds_g) * rstd^3 / (D * HxW), c3 = -c2 * mean - db_g * rstd / (D * HxW);
    dx = rstd * gamma * dy + c2 * x + c3. gamma's gradient sums (ds - db * mean) * rstd over the samples,
    beta's db."""
    C = F.opmath
    x, w, _ = arrays
    spatial = list(np.ndindex(*x.shape[2:]))
    dx = np.empty(x.shape, dtype=object)
    to_weight: list[list[arb]] = [[] for _ in range(x.shape[1])]
    to_bias: list[list[arb]] = [[] for _ in range(x.shape[1])]
    for n, channels, mean, rstd in _group_statistics(F, x, p["groups"]):
        mean, rstd = stored(F, mean), stored(F, rstd)
        ds = {c: _sum(C, [_mul(C, grad[(n, c) + k], x[(n, c) + k]) for k in spatial]) for c in channels}
        db = {c: _sum(C, [grad[(n, c) + k] for k in spatial]) for c in channels}
        ds_g = _sum(C, [_mul(C, ds[c], w[c]) for c in channels])
        db_g = _sum(C, [_mul(C, db[c], w[c]) for c in channels])
        s = _ratio(C, 1, len(channels) * len(spatial))
        cubed = _mul(C, _mul(C, _mul(C, _sub(C, _mul(C, db_g, mean), ds_g), rstd), rstd), rstd)
        c2 = _mul(C, cubed, s)
        c3 = _sub(C, _mul(C, -c2, mean), _mul(C, _mul(C, db_g, rstd), s))
        for c in channels:
            c1 = _mul(C, rstd, w[c])
            for k in spatial:
                i = (n, c) + k
                dx[i] = stored(F, _add(C, _add(C, _mul(C, c1, grad[i]), _mul(C, c2, x[i])), c3))
            to_weight[c].append(_mul(C, _sub(C, ds[c], _mul(C, db[c], mean)), rstd))
            to_bias[c].append(db[c])
    g_weight = np.array([stored(F, _sum(C, t)) for t in to_weight], dtype=object)
    g_bias = np.array([stored(F, _sum(C, t)) for t in to_bias], dtype=object)
    return dx, g_weight, g_bias


def _channel_parameters(shape: tuple[int, ...]):
    """(N, C, *) with a weight and a bias of C."""
    return [(shape, shape[1:2], shape[1:2])]


def _group_options(shapes):
    """Group counts dividing C whose groups hold more than one value (group_norm refuses one)."""
    channels, size = shapes[0][1], math.prod(shapes[0][1:])
    return [CallParams((("groups", g),)) for g in range(1, channels + 1) if channels % g == 0 and size > g]


def _native_group_norm(a, p):
    x = a[0]
    return torch.native_group_norm(x, a[1], a[2], x.shape[0], x.shape[1], math.prod(x.shape[2:]), p["groups"],
                                   GROUP_EPS)[0]


TENSOR_OPS["group_norm"] = TensorOp("group_norm", 3, (
    TSpelling(lambda a, p: f"torch.nn.functional.group_norm({a[0]}, {p['groups']}, {a[1]}, {a[2]})",
              lambda a, p: _F.group_norm(a[0], p["groups"], a[1], a[2])),
    TSpelling(lambda a, p: f"torch.group_norm({a[0]}, {p['groups']}, {a[1]}, {a[2]})",
              lambda a, p: torch.group_norm(a[0], p["groups"], a[1], a[2])),
    TSpelling(lambda a, p: f"torch.native_group_norm({a[0]}, {a[1]}, {a[2]}, {a[0]}.shape[0], {a[0]}.shape[1], "
                           f"{a[0]}[0, 0].numel(), {p['groups']}, {GROUP_EPS!r})[0]", _native_group_norm),
), _group_math, _group_forward, _group_backward, OptionSpace(_group_options), lambda shapes, p: shapes[0],
    ("nn.functional.group_norm", "native_group_norm"), ranks=(2, 3), operand_shapes=_channel_parameters)
NAMES.append("group_norm")


# ------------------------------------------------------------------ batch_norm
BATCH_EPS = 1e-5  # batch_norm's default eps, a double in the kernel
MOMENTUM = 0.1


def running_mean(c: int) -> float:
    """The constant running mean of channel c in eval mode: exact in every dtype."""
    return 0.25 * c - 0.5


def running_var(c: int) -> float:
    return 1.0 + 0.5 * c


def _running(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh running statistics for one call, in the input's dtype."""
    channels = range(x.shape[1])
    return (torch.tensor([running_mean(c) for c in channels], dtype=x.dtype),
            torch.tensor([running_var(c) for c in channels], dtype=x.dtype))


def _statistic(p, c: int) -> int:
    """The running statistic's index of channel c: instance_norm repeats C statistics for each sample."""
    return c % p.get("channels", c + 1)


def _channel(shape: tuple[int, ...], c: int) -> list[tuple[int, ...]]:
    """The positions of channel c, in memory order."""
    return [(n, c) + k for n in range(shape[0]) for k in np.ndindex(*shape[2:])]


def _batch_math(arrays, p):
    x, w, b = arrays
    out = np.empty(x.shape, dtype=object)
    eps = sympy.Rational(BATCH_EPS)
    for c in range(x.shape[1]):
        members = _channel(x.shape, c)
        values = [x[m] for m in members]
        if p["training"]:
            mean = sympy.Add(*values) / len(values)
            var = sympy.Add(*((v - mean) ** 2 for v in values)) / len(values)
        else:
            mean, var = sympy.Rational(running_mean(_statistic(p, c))), sympy.Rational(running_var(_statistic(p, c)))
        for m, v in zip(members, values):
            out[m] = (v - mean) / sympy.sqrt(var + eps) * w[c] + b[c]
    return out


def _accumulator(F: RoundingModel) -> RoundingModel:
    """at::acc_type<T, false> on the CPU: double for float and double; float for bfloat16 and float16."""
    return DOUBLE if F.opmath is F else F.opmath


def _inverse_std(F: RoundingModel, var: arb) -> arb:
    """1 / sqrt(var + eps) with eps a double: the sum, the root and the quotient in double, the result held in
    the dtype's opmath (InvStd, and the backward's running statistics)."""
    root = correctly_rounded(DOUBLE, _add(DOUBLE, var, arb(BATCH_EPS)).sqrt())
    return _in(F.opmath, correctly_rounded(DOUBLE, ONE / root))


def _in(G: RoundingModel, value: arb) -> arb:
    return value if G.format.name == "float64" else correctly_rounded(G, value)


def _batch_statistics(F: RoundingModel, values: list[arb]) -> tuple[arb, arb]:
    """(save_mean, save_invstd) as batch_norm_cpu_collect_stats and InvStd leave them, in the dtype. float
    and double: the sum in double, mean = sum / N in double held in the dtype; var_sum adds the dtype's (x -
    mean)^2 in double, held in the dtype. bfloat16 and float16: both sums in float, the variance's from the
    float mean; mean and var_sum held in the dtype. Then var = var_sum / N in the dtype and 1 / sqrt(var + eps)
    in double, held in the dtype."""
    C, A = F.opmath, _accumulator(F)
    mean = correctly_rounded(A, _sum(A, values) / len(values))
    if C is F:
        mean = _in(F, mean)
    deviations = [_sub(C, v, mean) for v in values]
    var_sum = _in(F, _nonnegative(_sum(A, [_mul(C, d, d) for d in deviations])))
    var = _div(F, var_sum, arb(len(values)))
    return _in(F, mean), _in(F, _inverse_std(F, var))


def _eval_inverse_std_forward(F: RoundingModel, var: float) -> arb:
    """The forward's eval-mode 1 / sqrt(running_var + eps), in opmath with eps cast to it."""
    C = F.opmath
    root = correctly_rounded(C, _add(C, arb(var), C.const(BATCH_EPS)).sqrt())
    return correctly_rounded(C, ONE / root)


def _batch_forward(F, arrays, p):
    """alpha = invstd * weight, beta = bias - mean * alpha (opmath), y = x * alpha + beta."""
    C = F.opmath
    x, w, b = arrays
    out = np.empty(x.shape, dtype=object)
    for c in range(x.shape[1]):
        members = _channel(x.shape, c)
        if p["training"]:
            mean, invstd = _batch_statistics(F, [x[m] for m in members])
        else:
            k = _statistic(p, c)
            mean, invstd = arb(running_mean(k)), _eval_inverse_std_forward(F, running_var(k))
        alpha = _mul(C, invstd, w[c])
        beta = _sub(C, b[c], _mul(C, mean, alpha))
        for m in members:
            out[m] = stored(F, _add(C, _mul(C, x[m], alpha), beta))
    return out


def _contiguous_channel(F: RoundingModel, x, dy, w, mean: arb, invstd: arb, training: bool):
    """batch_norm_cpu_backward's contiguous kernel for one channel, in opmath: sum = sum(dy), dotp = sum((x -
    mean) * dy) (per sample in vectors, across samples in the accumulator type); training: k = dotp * invstd^2
    / N, grad_mean = sum / N, dx = (dy - grad_mean - (x - mean) * k) * invstd * w; eval: dx = dy * invstd *
    w. grad_weight = dotp * invstd, grad_bias = sum."""
    C, A = F.opmath, _accumulator(F)
    n = arb(len(x))
    total = _sum(A, dy)
    dotp = _sum(A, [_mul(C, _sub(C, v, mean), d) for v, d in zip(x, dy)])
    if training:
        k = _div(C, _mul(C, _mul(C, _in(C, dotp), invstd), invstd), n)
        grad_mean = _in(C, _div(A, total, n))
        dx = [_mul(C, _mul(C, _sub(C, _sub(C, d, grad_mean), _mul(C, _sub(C, v, mean), k)), invstd), w)
              for v, d in zip(x, dy)]
    else:
        dx = [_mul(C, _mul(C, d, invstd), w) for d in dy]
    return [stored(F, v) for v in dx], _in(F, _mul(A, dotp, invstd)), _in(F, total)


def _strided_channel(F: RoundingModel, x, dy, w, mean: arb, invstd: arb, training: bool):
    """batch_norm_backward_cpu_template, which torch takes where grad_output is not contiguous (the expanded
    gradient of y.sum()): every operation in the dtype (bfloat16 arithmetic rounds each result), only dotp
    accumulated wider; sum from at::sum, held in the dtype."""
    A = _accumulator(F)
    n = arb(len(x))
    total = stored(F, _sum(F.opmath, dy))
    dotp = _sum(A, [_mul(F, _sub(F, v, mean), d) for v, d in zip(x, dy)])
    if training:
        k = _div(F, _mul(F, _mul(F, _in(F, dotp), invstd), invstd), n)
        grad_mean = _div(F, total, n)
        dx = [_mul(F, _mul(F, _sub(F, _sub(F, d, grad_mean), _mul(F, _sub(F, v, mean), k)), invstd), w)
              for v, d in zip(x, dy)]
    else:
        dx = [_mul(F, _mul(F, d, invstd), w) for d in dy]
    return dx, _in(F, _mul(A, dotp, _in(A, invstd))), total


def _batch_backward(F, arrays, out, grad, p):
    """Per channel, the hull of the two kernels torch may take (which depends on grad_output's layout); eval
    mode's invstd from running_var + eps in double, held in opmath (contiguous) or the dtype (strided)."""
    x, w, _ = arrays
    dx = np.empty(x.shape, dtype=object)
    g_weight = np.empty(w.shape, dtype=object)
    g_bias = np.empty(w.shape, dtype=object)
    for c in range(x.shape[1]):
        members = _channel(x.shape, c)
        values, dy = [x[m] for m in members], [grad[m] for m in members]
        if p["training"]:
            mean, invstd = _batch_statistics(F, values)
            inverse = {"contiguous": invstd, "strided": invstd}
        else:
            k = _statistic(p, c)
            mean, invstd = arb(running_mean(k)), _inverse_std(F, arb(running_var(k)))
            inverse = {"contiguous": invstd, "strided": _in(F, invstd)}
        first = _contiguous_channel(F, values, dy, w[c], mean, inverse["contiguous"], p["training"])
        second = _strided_channel(F, values, dy, w[c], mean, inverse["strided"], p["training"])
        for m, u, v in zip(members, first[0], second[0]):
            dx[m] = u.union(v)
        g_weight[c], g_bias[c] = first[1].union(second[1]), first[2].union(second[2])
    return dx, g_weight, g_bias


def _batch_options(shapes):
    """Training needs more than one value per channel; eval mode takes any."""
    per_channel = math.prod(shapes[0]) // shapes[0][1]
    return [CallParams((("training", t),)) for t in (True, False) if per_channel > 1 or not t]


def _functional_batch_norm(a, p):
    rm, rv = _running(a[0])
    return _F.batch_norm(a[0], rm, rv, a[1], a[2], training=p["training"])


def _native(function):
    def call(a, p):
        rm, rv = _running(a[0])
        return function(a[0], a[1], a[2], rm, rv, p["training"], MOMENTUM, BATCH_EPS)[0]
    return call


def _with_update(a, p):
    rm, rv = _running(a[0])
    return torch.ops.aten._batch_norm_with_update(a[0], a[1], a[2], rm, rv, MOMENTUM, BATCH_EPS)[0]


def _running_text(x: str) -> str:
    return (f"torch.tensor([0.25 * c - 0.5 for c in range({x}.shape[1])], dtype={x}.dtype), "
            f"torch.tensor([1.0 + 0.5 * c for c in range({x}.shape[1])], dtype={x}.dtype)")


TENSOR_OPS["batch_norm"] = TensorOp("batch_norm", 3, (
    TSpelling(lambda a, p: f"torch.nn.functional.batch_norm({a[0]}, {_running_text(a[0])}, {a[1]}, {a[2]}, "
                           f"training={p['training']})", _functional_batch_norm),
    TSpelling(lambda a, p: f"torch.native_batch_norm({a[0]}, {a[1]}, {a[2]}, {_running_text(a[0])}, "
                           f"{p['training']}, {MOMENTUM!r}, {BATCH_EPS!r})[0]", _native(torch.native_batch_norm)),
    TSpelling(lambda a, p: f"torch._native_batch_norm_legit({a[0]}, {a[1]}, {a[2]}, {_running_text(a[0])}, "
                           f"{p['training']}, {MOMENTUM!r}, {BATCH_EPS!r})[0]",
              _native(torch._native_batch_norm_legit)),
    TSpelling(lambda a, p: f"torch.ops.aten._batch_norm_with_update({a[0]}, {a[1]}, {a[2]}, {_running_text(a[0])}, "
                           f"{MOMENTUM!r}, {BATCH_EPS!r})[0]", _with_update, lambda s, p: p["training"]),
), _batch_math, _batch_forward, _batch_backward, OptionSpace(_batch_options), lambda shapes, p: shapes[0],
    ("nn.functional.batch_norm", "native_batch_norm", "_native_batch_norm_legit", "_batch_norm_with_update"),
    ranks=(2, 3), operand_shapes=_channel_parameters)
NAMES.append("batch_norm")


# ------------------------------------------------------------------ instance_norm
def _as_batch(arrays, p):
    """instance_norm's batch_norm call: the input viewed as (1, N * C, *), weight and bias repeated N times,
    the running statistics (eval mode) too."""
    x, w, b = arrays
    samples = x.shape[0]
    params = CallParams((("training", p["training"]), ("channels", x.shape[1])))
    return [x.reshape((1, -1) + x.shape[2:]), np.tile(w, samples), np.tile(b, samples)], params


def _instance_math(arrays, p):
    batch, params = _as_batch(arrays, p)
    return _batch_math(batch, params).reshape(arrays[0].shape)


def _instance_forward(F, arrays, p):
    batch, params = _as_batch(arrays, p)
    return _batch_forward(F, batch, params).reshape(arrays[0].shape)


def _instance_backward(F, arrays, out, grad, p):
    """batch_norm's backward on the (1, N * C, *) view; the repeated weight's and bias's gradients summed over
    the samples (RepeatBackward: a sum in opmath, held in the dtype)."""
    x = arrays[0]
    batch, params = _as_batch(arrays, p)
    dx, g_weight, g_bias = _batch_backward(F, batch, None, grad.reshape(batch[0].shape), params)
    channels = x.shape[1]

    def summed(g):
        return np.array([stored(F, _sum(F.opmath, list(g[c::channels]))) for c in range(channels)], dtype=object)

    return dx.reshape(x.shape), summed(g_weight), summed(g_bias)


def _instance_options(shapes):
    """use_input_stats (each (sample, channel) needs more than one value), or the running statistics."""
    spatial = math.prod(shapes[0][2:])
    return [CallParams((("training", t),)) for t in (True, False) if spatial > 1 or not t]


def _functional_instance_norm(a, p):
    if p["training"]:
        return _F.instance_norm(a[0], weight=a[1], bias=a[2])
    rm, rv = _running(a[0])
    return _F.instance_norm(a[0], rm, rv, a[1], a[2], use_input_stats=False)


def _torch_instance_norm(a, p):
    rm, rv = _running(a[0])
    return torch.instance_norm(a[0], a[1], a[2], rm, rv, p["training"], MOMENTUM, BATCH_EPS, False)


TENSOR_OPS["instance_norm"] = TensorOp("instance_norm", 3, (
    TSpelling(lambda a, p: f"torch.nn.functional.instance_norm({a[0]}, weight={a[1]}, bias={a[2]})"
              if p["training"] else
              f"torch.nn.functional.instance_norm({a[0]}, {_running_text(a[0])}, {a[1]}, {a[2]}, "
              f"use_input_stats=False)", _functional_instance_norm),
    TSpelling(lambda a, p: f"torch.instance_norm({a[0]}, {a[1]}, {a[2]}, {_running_text(a[0])}, {p['training']}, "
                           f"{MOMENTUM!r}, {BATCH_EPS!r}, False)", _torch_instance_norm),
), _instance_math, _instance_forward, _instance_backward, OptionSpace(_instance_options),
    lambda shapes, p: shapes[0], ("nn.functional.instance_norm",), ranks=(3,), operand_shapes=_channel_parameters)
NAMES.append("instance_norm")
