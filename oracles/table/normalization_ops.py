"""Normalizing ops of the tensor-op table and their kin: softmin, var_mean and std_mean (one of the pair taken),
glu, dist and pairwise_distance (and the triplet losses built on it), normalize and cosine_similarity, rms_norm,
local_response_norm, after torch's kernels and derivatives.yaml.

var_mean and std_mean run one CPU kernel for every floating dtype (ReduceOps: std_var_stub, WelfordOps with a
double accumulator, one element after the other): mean += delta / n, m2 += delta * (x - new mean), then var =
m2 / (n - correction), std its sqrt, and both results cast to the dtype once. Their backward is var_backward
or std_backward for the first piece and mean_backward for the second (var_mean_backward, std_mean_backward:
the piece not taken gets no gradient and adds nothing).
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.dtypes import format_named
from oracles.numerics.rounding import RoundingModel, Singular, int_power
from oracles.table import tensor_formulas as formula
from oracles.table.loss_ops import (
    EXP_K,
    ONE,
    RAMP_TIES,
    REDUCTIONS,
    SIGMOID_K,
    correctly_rounded,
    difference,
    guarded_by_eps,
    mean_gradient,
    ramp_passes,
)
from oracles.table.ops import OPS, unary_kernel
from oracles.table.sample_losses import per_sample_shape, reduce_samples
from oracles.table.tensor_formulas import K_DIVISION, ZERO, SliceFormulas, mul
from oracles.table.tensor_ops import (
    DEFAULT_CORRECTION,
    TENSOR_OPS,
    CallParams,
    OptionSpace,
    ReductionParams,
    ReductionSpace,
    ScanSpace,
    TensorOp,
    TSpelling,
)

DOUBLE = RoundingModel(format_named("float64"))  # WelfordOps' accumulator
HALF_EXACT = arb(0.5)
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


def vector_norm(F, a) -> arb:
    """linalg_vector_norm's 2-norm: accumulated in opmath (float for bfloat16 and float16: measured, a float16
    1e-5 has norm 1e-5, its square being 0 in float16) and rounded to the dtype once."""
    norm = formula.norm_forward(F.opmath, a, None)
    return norm if norm.is_exact() and norm.is_zero() else F.store(norm)


# ------------------------------------------------------------------ glu
def _halves(a: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    half = a.shape[dim] // 2
    return np.take(a, range(half), axis=dim), np.take(a, range(half, 2 * half), axis=dim)


def _glu_math(arrays, p):
    a, b = _halves(arrays[0], p["dim"])
    return np.vectorize(lambda x, y: x / (1 + sympy.exp(-y)), otypes=[object])(a, b)


def _glu_forward(F, arrays, p):
    """glu_kernel: a * (1 / (1 + exp(-b))), in float for bfloat16 and float16 and rounded once."""
    G = F.opmath
    a, b = _halves(arrays[0], p["dim"])
    gate = np.vectorize(lambda y: G.div(ONE, G.add(ONE, G.round((-y).exp(), EXP_K))), otypes=[object])(b)
    return np.vectorize(lambda x, s: F.store(mul(G, x, s)), otypes=[object])(a, gate)


def _glu_backward(F, arrays, out, grad, p):
    """glu_backward_cpu_out: s = sigmoid(b) (torch.sigmoid's kernel, into the dtype); the first half's gradient
    s * grad; the second's glu_backward_kernel: (1 - s) * s * a * grad, in float for bfloat16 and float16 and
    rounded once."""
    G, dim = F.opmath, p["dim"]
    a, b = _halves(arrays[0], dim)
    s = np.vectorize(lambda y: unary_kernel(F, 1 / (1 + (-y).exp()), SIGMOID_K), otypes=[object])(b)
    first = np.vectorize(lambda si, g: mul(F, si, g), otypes=[object])(s, grad)
    second = np.vectorize(lambda si, x, g: F.store(mul(G, mul(G, mul(G, G.sub(ONE, si), si), x), g)),
                          otypes=[object])(s, a, grad)
    return (np.concatenate([first, second], axis=dim),)


def _glu_options(shapes):
    return [CallParams((("dim", d),)) for d in (-1, *range(len(shapes[0]) - 1)) if shapes[0][d] % 2 == 0]


# ------------------------------------------------------------------ distances: dist, pairwise_distance
PAIRWISE_EPS = 1e-6  # pairwise_distance's default eps, added to the difference


def _distance_slices(arrays, p):
    """(slice of x1, slice of x2, output index) per distance: dist over every element, pairwise_distance over
    the last dim."""
    x1, x2 = arrays
    if p["pairwise"]:
        for index in np.ndindex(*x1.shape[:-1]):
            yield list(x1[index]), list(x2[index]), index
    else:
        yield list(x1.reshape(-1)), list(x2.reshape(-1)), ()


def _differences(F, a, b, p):
    """self - other (dist), x1 - x2 + eps (pairwise_distance), in the dtype."""
    d = [difference(F, x, y) for x, y in zip(a, b)]
    return [F.add(v, F.const(PAIRWISE_EPS)) for v in d] if p["pairwise"] else d


def _distance_math(arrays, p):
    out = np.empty(arrays[0].shape[:-1] if p["pairwise"] else (), dtype=object)
    eps = sympy.Rational(PAIRWISE_EPS) if p["pairwise"] else 0
    for a, b, index in _distance_slices(arrays, p):
        out[index] = sympy.sqrt(sympy.Add(*((x - y + eps) ** 2 for x, y in zip(a, b))))
    return out


def _distance_forward(F, arrays, p):
    out = np.empty(arrays[0].shape[:-1] if p["pairwise"] else (), dtype=object)
    for a, b, index in _distance_slices(arrays, p):
        out[index] = vector_norm(F, _differences(F, a, b, p))
    return out


def _distance_backward(F, arrays, out, grad, p):
    """dist's norm_backward(grad, self - other, 2, result), the other's its negation; pairwise_distance's
    NormBackward1 of x1 - x2 + eps, through the addition and the difference: the same. Both mask the division
    where the norm is 0 (gradient 0)."""
    g1 = np.empty(arrays[0].shape, dtype=object)
    for a, b, index in _distance_slices(arrays, p):
        grads = formula.norm_backward(F, _differences(F, a, b, p), out[index], grad[index], p)
        target = g1[index] if p["pairwise"] else g1.reshape(-1)
        for i, value in enumerate(grads):
            target[i] = value
    return g1, -g1


def _fixed(**items) -> OptionSpace:
    """One parameter set for every shape of the entry's ranks."""
    return OptionSpace(lambda shapes: (CallParams(tuple(items.items())),))


for _op in (
    TensorOp("glu", 1, (
        TSpelling(lambda a, p: f"torch.nn.functional.glu({a[0]}, dim={p['dim']})",
                  lambda a, p: torch.nn.functional.glu(a[0], dim=p["dim"])),
        TSpelling(lambda a, p: f"torch.nn.GLU(dim={p['dim']})({a[0]})", lambda a, p: torch.nn.GLU(dim=p["dim"])(a[0])),
    ), _glu_math, _glu_forward, _glu_backward, OptionSpace(_glu_options),
        lambda shapes, p: tuple(n // 2 if d == p["dim"] % len(shapes[0]) else n for d, n in enumerate(shapes[0])),
        ("nn.functional.glu",), operand_shapes=lambda s: [(s[:-1] + (2 * s[-1],),)]),
    TensorOp("dist", 2, (
        TSpelling(lambda a, p: f"torch.dist({a[0]}, {a[1]})", lambda a, p: torch.dist(a[0], a[1])),
        TSpelling(lambda a, p: f"{a[0]}.dist({a[1]})", lambda a, p: a[0].dist(a[1])),
    ), _distance_math, _distance_forward, _distance_backward, _fixed(pairwise=False), lambda shapes, p: (),
        ("dist",), ties="where the two tensors are equal the gradient is 0 (the minimum-norm subgradient)",
        pinned_as=("vector_norm",)),
    TensorOp("pairwise_distance", 2, (
        TSpelling(lambda a, p: f"torch.nn.functional.pairwise_distance({a[0]}, {a[1]})",
                  lambda a, p: torch.nn.functional.pairwise_distance(a[0], a[1])),
        TSpelling(lambda a, p: f"torch.nn.PairwiseDistance()({a[0]}, {a[1]})",
                  lambda a, p: torch.nn.PairwiseDistance()(a[0], a[1])),
    ), _distance_math, _distance_forward, _distance_backward, _fixed(pairwise=True),
        lambda shapes, p: shapes[0][:-1], ("nn.functional.pairwise_distance",)),
):
    TENSOR_OPS[_op.name] = _op
    NAMES.append(_op.name)


# ------------------------------------------------------------------ normalize, cosine_similarity
NORMALIZE_EPS = 1e-12  # nn.functional.normalize's default
COSINE_EPS = 1e-8  # nn.functional.cosine_similarity's default


def _clamped_norm(F, a, eps: float) -> arb:
    """The 2-norm of a slice, clamped below at eps: decided only where the norm is above eps, where the clamp
    (and its backward) is the identity. clamp_min compares the norm, a tensor of the dtype, with eps converted
    to the dtype (0 for 1e-12 in float16: a float16 norm that is not 0 is never clamped)."""
    try:
        norm = vector_norm(F, a)
    except Singular:  # the sum of squares may be 0 within the rounding model
        raise guarded_by_eps(F, eps, "the norm") from None
    if not norm > arb(F.format.round(eps)):
        raise guarded_by_eps(F, eps, "the norm") if norm.contains(0) else Singular("the norm may be below eps")
    return norm


def _divided_by_norm_backward(F, a, norm, upstream) -> list[arb]:
    """The gradient of a_i / norm(a) for upstream u: DivBackward0's u_i / norm to a_i, and -u_i * ((a_i / norm) /
    norm) to the norm, summed over the slice (the expand's backward) and through norm_backward (a * (S / norm)),
    added to a_i's."""
    direct = [F.div(u, norm) for u in upstream]
    to_norm = formula.sum_any(F, [mul(F, -u, F.div(F.div(v, norm), norm)) for v, u in zip(a, upstream)])
    scale = F.div(to_norm, norm)
    return [formula.sum_any(F, [d, mul(F, v, scale)]) for d, v in zip(direct, a)]


def _sym_norm(a, eps: float):
    return formula.sym_max([sympy.sqrt(sympy.Add(*(v**2 for v in a))), sympy.Rational(eps)])


def _normalize_forward(F, a, p):
    """input / input.norm(2, dim, keepdim=True).clamp_min(eps).expand_as(input)."""
    norm = _clamped_norm(F, a, NORMALIZE_EPS)
    return [F.div(v, norm) for v in a]


def _normalize_backward(F, a, y, g, p):
    return _divided_by_norm_backward(F, a, _clamped_norm(F, a, NORMALIZE_EPS), g)


NORMALIZE = SliceFormulas(lambda a, p: [v / _sym_norm(a, NORMALIZE_EPS) for v in a], _normalize_forward,
                          _normalize_backward)


def _cosine_slices(arrays, dim: int):
    """(x1 slice, x2 slice, members, output index) per slice along dim."""
    x1, x2 = arrays
    for members, kept in formula.slices(x1.shape, dim):
        yield [x1[m] for m in members], [x2[m] for m in members], members, kept[:dim] + kept[dim + 1:]


def _cosine_math(arrays, p):
    dim = p.dim % arrays[0].ndim
    out = np.empty(formula.reduced_shape(arrays[0].shape, ReductionParams(dim)), dtype=object)
    for a, b, _, index in _cosine_slices(arrays, dim):
        out[index] = sympy.Add(*(x * y for x, y in zip(a, b))) / (_sym_norm(a, COSINE_EPS) * _sym_norm(b, COSINE_EPS))
    return out


def _cosine_forward(F, arrays, p):
    """((x1 / x1_norm) * (x2 / x2_norm)).sum(dim), each norm linalg_vector_norm(x, 2, dim, keepdim=True) clamped
    at eps without grad."""
    dim = p.dim % arrays[0].ndim
    out = np.empty(formula.reduced_shape(arrays[0].shape, ReductionParams(dim)), dtype=object)
    for a, b, _, index in _cosine_slices(arrays, dim):
        na, nb = _clamped_norm(F, a, COSINE_EPS), _clamped_norm(F, b, COSINE_EPS)
        out[index] = formula.sum_any(F, [mul(F, F.div(x, na), F.div(y, nb)) for x, y in zip(a, b)])
    return out


def _cosine_backward(F, arrays, out, grad, p):
    """The sum's backward (grad expanded), the product's (grad * the other factor), then each factor's
    `_divided_by_norm_backward` (the clamp, done without grad, is the identity above eps)."""
    dim = p.dim % arrays[0].ndim
    g1, g2 = np.empty(arrays[0].shape, dtype=object), np.empty(arrays[1].shape, dtype=object)
    for a, b, members, index in _cosine_slices(arrays, dim):
        na, nb = _clamped_norm(F, a, COSINE_EPS), _clamped_norm(F, b, COSINE_EPS)
        qa, qb = [F.div(x, na) for x in a], [F.div(y, nb) for y in b]
        ga = _divided_by_norm_backward(F, a, na, [mul(F, grad[index], v) for v in qb])
        gb = _divided_by_norm_backward(F, b, nb, [mul(F, grad[index], v) for v in qa])
        for m, u, v in zip(members, ga, gb):
            g1[m], g2[m] = u, v
    return g1, g2


for _op in (
    TensorOp("normalize", 1, (
        TSpelling(lambda a, p: f"torch.nn.functional.normalize({a[0]}, dim={p.dim})",
                  lambda a, p: torch.nn.functional.normalize(a[0], dim=p.dim)),
        TSpelling(lambda a, p: f"torch.nn.functional.normalize({a[0]})",
                  lambda a, p: torch.nn.functional.normalize(a[0]), lambda s, p: p.dim == 1),
    ), formula.dimwise(NORMALIZE.math), formula.dimwise(NORMALIZE.forward),
        formula.dimwise_backward(NORMALIZE.backward), ScanSpace(), lambda shapes, p: shapes[0],
        ("nn.functional.normalize",)),
    TensorOp("cosine_similarity", 2, (
        TSpelling(lambda a, p: f"torch.nn.functional.cosine_similarity({a[0]}, {a[1]}, dim={p.dim})",
                  lambda a, p: torch.nn.functional.cosine_similarity(a[0], a[1], dim=p.dim)),
        TSpelling(lambda a, p: f"torch.nn.functional.cosine_similarity({a[0]}, {a[1]})",
                  lambda a, p: torch.nn.functional.cosine_similarity(a[0], a[1]), lambda s, p: p.dim == 1),
        TSpelling(lambda a, p: f"torch.nn.CosineSimilarity(dim={p.dim})({a[0]}, {a[1]})",
                  lambda a, p: torch.nn.CosineSimilarity(dim=p.dim)(a[0], a[1])),
    ), _cosine_math, _cosine_forward, _cosine_backward, ScanSpace(),
        lambda shapes, p: formula.reduced_shape(shapes[0], ReductionParams(p.dim)),
        ("nn.functional.cosine_similarity",)),
):
    TENSOR_OPS[_op.name] = _op
    NAMES.append(_op.name)


# ------------------------------------------------------------------ softmax, log_softmax, softmin in float64
def _in_double(f: SliceFormulas) -> SliceFormulas:
    """`f` run on the input converted to float64 (exact), returning float64: forward and backward in double, the
    gradient then cast to the input's dtype once (ToCopyBackward0). What follows the op in a program runs in
    float64 too, which the model's rounding in the input's dtype encloses."""
    def backward(F, a, y, g, p):
        return [_cast(F, v) for v in f.backward(DOUBLE, a, y, g, p)]
    return SliceFormulas(f.math, lambda F, a, p: f.forward(DOUBLE, a, p), backward)


def _with_dtype(name: str, functions: list[tuple[str, object]], method: str | None, f: SliceFormulas,
                opinfo: str) -> TensorOp:
    spellings = [TSpelling(lambda a, p, text=text: f"{text}({a[0]}, dim={p.dim}, dtype=torch.float64)",
                           lambda a, p, fn=fn: fn(a[0], dim=p.dim, dtype=torch.float64)) for text, fn in functions]
    if method:
        spellings.append(TSpelling(lambda a, p: f"{a[0]}.{method}({p.dim}, dtype=torch.float64)",
                                   lambda a, p: getattr(a[0], method)(p.dim, dtype=torch.float64)))
    g = _in_double(f)
    return TensorOp(name, 1, tuple(spellings), formula.dimwise(g.math), formula.dimwise(g.forward),
                    formula.dimwise_backward(g.backward), ScanSpace(), lambda shapes, p: shapes[0], (opinfo,))


_NN = torch.nn.functional
for _op in (
    _with_dtype("softmax_float64", [("torch.softmax", torch.softmax), ("torch.nn.functional.softmax", _NN.softmax)],
                "softmax", formula.SOFTMAX, "softmax[with_dtype]"),
    _with_dtype("log_softmax_float64", [("torch.log_softmax", torch.log_softmax),
                                        ("torch.nn.functional.log_softmax", _NN.log_softmax)],
                "log_softmax", formula.LOG_SOFTMAX, "log_softmax[with_dtype]"),
    _with_dtype("softmin_float64", [("torch.nn.functional.softmin", _NN.softmin)], None, SOFTMIN,
                "nn.functional.softmin[with_dtype]"),
):
    TENSOR_OPS[_op.name] = _op
    NAMES.append(_op.name)


# ------------------------------------------------------------------ rms_norm
RMS_EPS = 2.0**-20  # passed as eps=: exact in float and double (eps=None would make the function dtype-dependent)


def _groups(a: np.ndarray, p) -> np.ndarray:
    """(groups, group size): the last len(normalized_shape) dims of each leading index, row-major."""
    k = len(p["normalized_shape"])
    return a.reshape(-1, int(np.prod(a.shape[a.ndim - k:], dtype=int)))


def _rms_math(arrays, p):
    groups = _groups(arrays[0], p)
    out = np.empty(groups.shape, dtype=object)
    for i, row in enumerate(groups):
        scale = sympy.sqrt(sympy.Add(*(v**2 for v in row)) / len(row) + sympy.Rational(RMS_EPS))
        for j, v in enumerate(row):
            out[i, j] = v / scale
    return out.reshape(arrays[0].shape)


def _rms_scale(C: RoundingModel, row) -> arb:
    """rsqrt(x.pow(2).mean(dims, keepdim=True) + eps) in the compute type: each square, the mean (a sum, then
    / N), the addition, rsqrt (1 ulp, as the op table's)."""
    mean = C.div(C.sum([mul(C, v, v) for v in row]), arb(len(row)))
    return C.round(C.add(mean, arb(RMS_EPS)).rsqrt(), 2)


def _rms_forward(F, arrays, p):
    """x * rsqrt(mean(x^2) + eps), in opmath (float for bfloat16 and float16: the input converted exactly, the
    result rounded to the dtype once)."""
    C = F.opmath
    groups = _groups(arrays[0], p)
    out = np.empty(groups.shape, dtype=object)
    for i, row in enumerate(groups):
        scale = _rms_scale(C, row)
        for j, v in enumerate(row):
            out[i, j] = F.store(mul(C, v, scale))
    return out.reshape(arrays[0].shape)


def _rms_backward(F, arrays, out, grad, p):
    """Autograd through the composite, in opmath: the product's grad * scale to x and sum(grad * x) to the scale;
    rsqrt's -0.5 * grad * result.pow(3); the mean's grad / N; pow's grad * (2 * x) (2 * x exact); x's two
    contributions added once, then rounded to the dtype once (ToCopyBackward0)."""
    C = F.opmath
    groups, g = _groups(arrays[0], p), _groups(grad, p)
    out_grads = np.empty(groups.shape, dtype=object)
    for i, (row, g_row) in enumerate(zip(groups, g)):
        scale = _rms_scale(C, row)
        to_scale = formula.sum_any(C, [mul(C, gi, v) for gi, v in zip(g_row, row)])
        to_mean = mul(C, -HALF_EXACT * to_scale, C.round(int_power(scale, 3), 2))
        share = C.div(to_mean, arb(len(row)))
        for j, (gi, v) in enumerate(zip(g_row, row)):
            out_grads[i, j] = F.store(formula.sum_any(C, [mul(C, gi, scale), mul(C, share, 2 * v)]))
    return (out_grads.reshape(arrays[0].shape),)


def _rms_options(shapes):
    shape = shapes[0]
    return [CallParams((("normalized_shape", shape[len(shape) - k:]),)) for k in range(1, len(shape) + 1)]


TENSOR_OPS["rms_norm"] = TensorOp("rms_norm", 1, (
    TSpelling(lambda a, p: f"torch.nn.functional.rms_norm({a[0]}, {p['normalized_shape']}, eps={RMS_EPS!r})",
              lambda a, p: torch.nn.functional.rms_norm(a[0], p["normalized_shape"], eps=RMS_EPS)),
    TSpelling(lambda a, p: f"torch.nn.RMSNorm({p['normalized_shape']}, eps={RMS_EPS!r}, "
                           f"elementwise_affine=False)({a[0]})",
              lambda a, p: torch.nn.RMSNorm(p["normalized_shape"], eps=RMS_EPS, elementwise_affine=False)(a[0])),
), _rms_math, _rms_forward, _rms_backward, OptionSpace(_rms_options), lambda shapes, p: shapes[0],
    ("nn.functional.rms_norm",))
NAMES.append("rms_norm")


# ------------------------------------------------------------------ triplet losses: pairwise distances, clamped
def _triplets(arrays):
    """(anchor row, positive row, negative row, output index) per sample: (N, D) inputs, or one (D,) sample."""
    a, pos, neg = arrays
    if a.ndim == 1:
        yield list(a), list(pos), list(neg), ()
    else:
        for i in range(a.shape[0]):
            yield list(a[i]), list(pos[i]), list(neg[i]), (i,)


_PAIRWISE = CallParams((("pairwise", True),))


def _triplet_parts(F, a, pos, neg, p):
    """The two distances (pairwise_distance, eps 1e-6), margin + dist_pos - dist_neg, one kernel each."""
    d_pos, d_neg = _differences(F, a, pos, _PAIRWISE), _differences(F, a, neg, _PAIRWISE)
    dist_pos, dist_neg = vector_norm(F, d_pos), vector_norm(F, d_neg)
    return d_pos, d_neg, dist_pos, dist_neg, F.sub(F.add(dist_pos, arb(p["margin"])), dist_neg)


def _triplet_math(arrays, p):
    eps = sympy.Rational(PAIRWISE_EPS)
    losses = []
    for a, pos, neg, _ in _triplets(arrays):
        dist_pos = sympy.sqrt(sympy.Add(*((x - y + eps) ** 2 for x, y in zip(a, pos))))
        dist_neg = sympy.sqrt(sympy.Add(*((x - y + eps) ** 2 for x, y in zip(a, neg))))
        losses.append(formula.sym_max([sympy.Rational(p["margin"]) + dist_pos - dist_neg, sympy.Integer(0)]))
    return reduce_samples(losses, arrays[0].ndim, p, lambda v: sympy.Add(*v), lambda s, n: s / n)


def _triplet_forward(F, arrays, p):
    """clamp_min(margin + dist_pos - dist_neg, 0), then the reduction."""
    losses = [_triplet_parts(F, a, pos, neg, p)[4].max(ZERO) for a, pos, neg, _ in _triplets(arrays)]
    return reduce_samples(losses, arrays[0].ndim, p, lambda v: formula.sum_any(F, v), lambda s, n: F.div(s, arb(n)))


def _triplet_backward(F, arrays, out, grad, p):
    """The reduction's; clamp_min's where(z >= 0, grad, 0); +grad to dist_pos and -grad to dist_neg; each
    pairwise_distance's norm_backward, to the anchor (the two added once) and, negated, to the other."""
    ga, gp, gn = (np.empty(x.shape, dtype=object) for x in arrays)
    samples = list(_triplets(arrays))
    for a, pos, neg, index in samples:
        g = grad[index] if p["reduction"] == "none" else grad[()]
        share = mean_gradient(F, g, len(samples) if p["reduction"] == "mean" else None)
        d_pos, d_neg, dist_pos, dist_neg, z = _triplet_parts(F, a, pos, neg, p)
        to_z = share if ramp_passes(F, z) else ZERO
        through_pos = formula.norm_backward(F, d_pos, dist_pos, to_z, p)
        through_neg = formula.norm_backward(F, d_neg, dist_neg, -to_z, p)
        for j, (u, v) in enumerate(zip(through_pos, through_neg)):
            ga[index + (j,)] = formula.sum_any(F, [u, v])
            gp[index + (j,)], gn[index + (j,)] = -u, -v
    return ga, gp, gn


def _triplet_options(shapes):
    return [CallParams((("reduction", r), ("margin", m))) for r in REDUCTIONS for m in (1.0, 0.5)]


def _triplet_spellings(function: str, module_name: str) -> tuple[TSpelling, ...]:
    call, cls = getattr(torch.nn.functional, function), getattr(torch.nn, module_name)
    return (
        TSpelling(lambda a, p: f"torch.nn.functional.{function}({a[0]}, {a[1]}, {a[2]}, margin={p['margin']!r}, "
                               f"reduction={p['reduction']!r})",
                  lambda a, p: call(a[0], a[1], a[2], margin=p["margin"], reduction=p["reduction"])),
        TSpelling(lambda a, p: f"torch.nn.{module_name}(margin={p['margin']!r}, reduction={p['reduction']!r})"
                               f"({a[0]}, {a[1]}, {a[2]})",
                  lambda a, p: cls(margin=p["margin"], reduction=p["reduction"])(a[0], a[1], a[2])),
        TSpelling(lambda a, p: f"torch.nn.functional.{function}({a[0]}, {a[1]}, {a[2]})",
                  lambda a, p: call(a[0], a[1], a[2]), lambda s, p: p["reduction"] == "mean" and p["margin"] == 1.0),
    )


for _name, _module in (("triplet_margin_loss", "TripletMarginLoss"),
                       ("triplet_margin_with_distance_loss", "TripletMarginWithDistanceLoss")):
    TENSOR_OPS[_name] = TensorOp(
        _name, 3, _triplet_spellings(_name, _module), _triplet_math, _triplet_forward, _triplet_backward,
        OptionSpace(_triplet_options), per_sample_shape, (f"nn.functional.{_name}",), ties=RAMP_TIES,
        pinned_as=("margin_ranking_loss",))
    NAMES.append(_name)


# ------------------------------------------------------------------ local_response_norm (3-D input)
LRN_BETA, LRN_K = 0.75, 1.0  # torch's defaults, exact in every dtype


def _lrn_window(c: int, channels: int, size: int) -> range:
    """The channels avg_pool2d averages at channel c: the input padded by size // 2 before and (size - 1) // 2
    after, a window of `size` from c - size // 2 (the padding's zeros count: the divisor is always `size`)."""
    return range(max(c - size // 2, 0), min(c - size // 2 + size, channels))


def _averaged(F, total: arb, size: int) -> arb:
    """avg_pool2d's division of a window's sum by its size, as the pooling entries model it (two roundings
    enclose a division, or a product with a rounded reciprocal)."""
    return total if size == 1 else F.round(total / size, K_DIVISION)


def _scalar_mul(F, a: arb, scalar: float) -> arb:
    """tensor * a Python scalar: the mul kernel reads the scalar in opmath and rounds the product once."""
    return F.store(mul(F.opmath, a, F.opmath.const(scalar)))


def _lrn_column(F, x: list, p):
    """One (sample, position) across channels: squares (x.mul(x)), the window averages (avg_pool2d: a sum,
    then / size), div = (average * alpha + k) ** beta, and x / div."""
    size, alpha = p["size"], p["alpha"]
    squares = [mul(F, v, v) for v in x]
    averages = [_averaged(F, formula.sum_any(F, [squares[j] for j in _lrn_window(c, len(x), size)]), size)
                for c in range(len(x))]
    bases = [F.add(_scalar_mul(F, a, alpha), arb(LRN_K)) for a in averages]
    divisors = [OPS["pow_scalar"].forward(F, b, arb(LRN_BETA)) for b in bases]
    return squares, bases, divisors


def _columns(a: np.ndarray):
    for n in range(a.shape[0]):
        for position in range(a.shape[2]):
            yield (n, slice(None), position)


def _lrn_math(arrays, p):
    a = arrays[0]
    out = np.empty(a.shape, dtype=object)
    for index in _columns(a):
        x = list(a[index])
        for c in range(len(x)):
            window = sympy.Add(*(x[j] ** 2 for j in _lrn_window(c, len(x), p["size"])))
            base = sympy.Rational(p["alpha"]) * window / p["size"] + sympy.Rational(LRN_K)
            out[index][c] = x[c] / base ** sympy.Rational(LRN_BETA)
    return out


def _lrn_forward(F, arrays, p):
    a = arrays[0]
    out = np.empty(a.shape, dtype=object)
    for index in _columns(a):
        x = list(a[index])
        _, _, divisors = _lrn_column(F, x, p)
        for c, (v, d) in enumerate(zip(x, divisors)):
            out[index][c] = F.div(v, d)
    return out


def _lrn_backward(F, arrays, out, grad, p):
    """Autograd through the composite: the division's grad / div to x and -grad * ((x / div) / div) to div;
    pow's grad * (beta * base ** (beta - 1)) (the op table's pow_scalar); the addition's copy; the scalar
    product's grad * alpha; avg_pool2d's grad / size to each channel of the window (added up); x * x's two
    factors, added to x's direct gradient once."""
    a = arrays[0]
    result = np.empty(a.shape, dtype=object)
    size, alpha = p["size"], p["alpha"]
    for index in _columns(a):
        x, g = list(a[index]), list(grad[index])
        squares, bases, divisors = _lrn_column(F, x, p)
        to_average = []
        for v, gc, b, d in zip(x, g, bases, divisors):
            to_divisor = mul(F, -gc, F.div(F.div(v, d), d))
            to_base = mul(F, to_divisor, OPS["pow_scalar"].local_grads(F, (b, arb(LRN_BETA)), d)[0])
            to_average.append(_averaged(F, _scalar_mul(F, to_base, alpha), size))
        for c, (v, gc, d) in enumerate(zip(x, g, divisors)):
            to_square = formula.sum_any(F, [to_average[o] for o in range(len(x)) if c in _lrn_window(o, len(x), size)])
            result[index][c] = formula.sum_any(F, [F.div(gc, d), mul(F, to_square, v), mul(F, to_square, v)])
    return (result,)


def _lrn_options(shapes):
    """Sizes and alphas for a 3-D input (a 4-D or 5-D one runs avg_pool3d, which has no float16 CPU kernel)."""
    if len(shapes[0]) != 3:
        return []
    return [CallParams((("size", size), ("alpha", alpha))) for size in (2, 1, 3) for alpha in (1e-4, 0.5)]


TENSOR_OPS["local_response_norm"] = TensorOp("local_response_norm", 1, (
    TSpelling(lambda a, p: f"torch.nn.functional.local_response_norm({a[0]}, {p['size']}, alpha={p['alpha']!r})",
              lambda a, p: torch.nn.functional.local_response_norm(a[0], p["size"], alpha=p["alpha"])),
    TSpelling(lambda a, p: f"torch.nn.LocalResponseNorm({p['size']}, alpha={p['alpha']!r})({a[0]})",
              lambda a, p: torch.nn.LocalResponseNorm(p["size"], alpha=p["alpha"])(a[0])),
), _lrn_math, _lrn_forward, _lrn_backward, OptionSpace(_lrn_options), lambda shapes, p: shapes[0],
    ("nn.functional.local_response_norm",), ranks=(3,))
NAMES.append("local_response_norm")
