"""The formulas behind the tensor-op table (oracles.table.tensor_ops): per slice along a dim, what each op is
mathematically (SymPy, for the exact Jacobian) and how torch computes its forward and backward (balls,
every float operation rounded by the `RoundingModel`), after derivatives.yaml and FunctionsManual.cpp.

Arrays are numpy object arrays of balls (or of SymPy expressions), one per tensor element. An op's
parameters `p` are the typed parameters of its kind (oracles.table.tensor_ops: `ReductionParams` with dim,
keepdim and correction, `ScanParams` with dim, a view's parameters); every per-slice formula receives them,
so a formula that depends on a parameter (var's `correction`) reads it where it needs it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy
from flint import arb

from oracles.numerics.rounding import RoundingModel, Singular

ZERO = arb(0)

# Accuracy of the exp/log inside softmax, log_softmax and logsumexp, in half-ulps: their CPU kernels use
# SLEEF's vectorised exp (1 ulp; some torch versions a faster 2-ulp variant) and log; 4 ulps is a margin
# that holds for both and for CUDA's expf/logf (2 ulp).
K_EXP = 8
K_LOG = 8


# ------------------------------------------------------------------ SymPy extrema without SymPy's comparisons
def _extremum(kind, args):
    args = list(dict.fromkeys(args))  # Max(x, x) is x, as SymPy would make it
    return args[0] if len(args) == 1 else kind(*args, evaluate=False)


def sym_max(args):
    """sympy.Max of `args` (symbols, or expressions SymPy cannot order), built without SymPy's pairwise
    comparisons through its assumptions system: seconds for a pooling window of 27 symbols, measured (a fifth
    of the tensor-op tests' time), for the same function."""
    return _extremum(sympy.Max, args)


def sym_min(args):
    """sympy.Min of `args`, as `sym_max`."""
    return _extremum(sympy.Min, args)


# ------------------------------------------------------------------ slices along a dim
def _obj(shape) -> np.ndarray:
    return np.empty(shape, dtype=object)


def slices(shape: tuple[int, ...], dim: int | None):
    """(full indices of the slice's elements in order along `dim`, index of the slice in the keepdim output)
    for every slice; `dim` None: one slice of every element, row-major."""
    if dim is None:
        return [(list(np.ndindex(*shape)), tuple(0 for _ in shape))]
    dim = dim % len(shape)
    rest = [range(n) if d != dim else range(1) for d, n in enumerate(shape)]
    out = []
    for base in np.ndindex(*[len(r) for r in rest]):
        members = [base[:dim] + (k,) + base[dim + 1:] for k in range(shape[dim])]
        out.append((members, base))
    return out


def slice_length(shape: tuple[int, ...], dim: int | None) -> int:
    """N, the number of elements a reduction over `dim` (None: everything) combines into one."""
    return int(np.prod(shape, dtype=int)) if dim is None else shape[dim % len(shape)]


def reduced_shape(shape, p) -> tuple[int, ...]:
    if p.dim is None:
        return tuple(1 for _ in shape) if p.keepdim else ()
    dim = p.dim % len(shape)
    return tuple(1 if d == dim else n for d, n in enumerate(shape)) if p.keepdim else \
        tuple(n for d, n in enumerate(shape) if d != dim)


def out_index(kept: tuple[int, ...], shape, p) -> tuple[int, ...]:
    """Index into the (maybe squeezed) reduction output from the keepdim index of the slice."""
    if p.keepdim:
        return kept
    if p.dim is None:
        return ()
    dim = p.dim % len(shape)
    return kept[:dim] + kept[dim + 1:]


def reduction(per_slice: Callable) -> Callable:
    """A reduction's math or forward from a function of one slice's element list and the parameters."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = _obj(reduced_shape(a.shape, p))
        for members, kept in slices(a.shape, p.dim):
            out[out_index(kept, a.shape, p)] = per_slice(*head, [a[m] for m in members], p)
        return out

    return apply


def reduction_backward(per_slice: Callable) -> Callable:
    """A reduction's backward from (F, slice values, slice result, slice grad, params) -> grads of the slice."""

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        result = _obj(a.shape)
        for members, kept in slices(a.shape, p.dim):
            index = out_index(kept, a.shape, p)
            grads = per_slice(F, [a[m] for m in members], out[index], grad[index], p)
            for m, g in zip(members, grads):
                result[m] = g
        return (result,)

    return backward


def dimwise(per_slice: Callable) -> Callable:
    """A shape-preserving op along `dim` (cumsum, softmax) from a function of one slice's list."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = _obj(a.shape)
        for members, _ in slices(a.shape, p.dim):
            for m, v in zip(members, per_slice(*head, [a[m] for m in members], p)):
                out[m] = v
        return out

    return apply


def dimwise_backward(per_slice: Callable) -> Callable:
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        result = _obj(a.shape)
        for members, _ in slices(a.shape, p.dim):
            grads = per_slice(F, [a[m] for m in members], [out[m] for m in members], [grad[m] for m in members], p)
            for m, g in zip(members, grads):
                result[m] = g
        return (result,)

    return backward


# ------------------------------------------------------------------ rounding-model helpers
def product(F: RoundingModel, values: list[arb]) -> arb:
    """A product of n factors in any order: n - 1 roundings, each by u of the result (relative errors
    compose), plus underflow: an intermediate product may lose η, scaled by the factors after it. An
    intermediate product may also overflow where the result does not (bfloat16 -3.4e10 · -9.9e27 · -0.5: the
    first two give inf): the largest one, the product of the factors above 1 in magnitude, must be in range."""
    if not values:
        return arb(1)
    exact = arb(1)
    scale = arb(1)
    for v in values:
        exact *= v
        scale *= max(arb(v.abs_upper()), arb(1))
    k = len(values) - 1
    if k == 0:
        return values[0]
    F.in_range(scale)
    return F.in_range(exact + arb(0, k * (F.u * exact.abs_upper() + F.eta * scale)))


def is_exact_zero(value: arb) -> bool:
    return value.is_exact() and value.is_zero()


def decided_sign(value: arb, undecided: str) -> int:
    """sgn of a ball (an exact 0 is 0); `Singular(undecided)` where the ball holds both signs."""
    if is_exact_zero(value):
        return 0
    if value > 0:
        return 1
    if value < 0:
        return -1
    raise Singular(undecided)


def mul(F: RoundingModel, a: arb, b: arb) -> arb:
    """a * b, exactly 0 when a factor is exactly 0 (IEEE: 0 times a finite float is ±0, no rounding), so
    zeros stay decidable (the norm of a zero slice, prod's zero path)."""
    if is_exact_zero(a) or is_exact_zero(b):
        return ZERO
    return F.mul(a, b)


def sum_any(F: RoundingModel, values: list[arb]) -> arb:
    """Sum in any order; exact zeros are left out (adding an exact 0 is exact)."""
    terms = [v for v in values if not (v.is_exact() and v.is_zero())]
    if not terms:
        return ZERO
    return F.sum(terms)


def fused_sum(F: RoundingModel, values: list[arb]) -> arb:
    """A sum as one of torch's reduction kernels computes it: added in any order in its float type
    (at::opmath_type: float for bfloat16 and float16), rounded to the format once. Measured on the CPU: the
    bfloat16 and float16 results of sum, mean, cumsum and the matrix products are the float-accumulated
    value rounded once."""
    return F.store(sum_any(F.opmath, values))


def maximum(values: list[arb]) -> tuple[arb, list[int]]:
    """The largest value and the positions torch sees as equal to it. Exact equal balls tie (torch compares
    the same floats); balls that may or may not be the largest leave the point undecidable."""
    best = max(range(len(values)), key=lambda i: values[i].upper())
    top = values[best]
    ties = [best]
    for i, v in enumerate(values):
        if i == best or v < top:
            continue
        if not (v.is_exact() and top.is_exact() and v == top):
            raise Singular("the maximum may tie within the rounding model")
        ties.append(i)
    return top, sorted(ties)


def hull_maximum(values: list[arb]) -> arb:
    """A ball containing max(values) for every choice of values within their balls (softmax's shift)."""
    lo = max(v.lower() for v in values)
    hi = max(v.upper() for v in values)
    return arb((lo + hi) / 2, (hi - lo) / 2)


def _exp(F, x, k=K_EXP):
    return F.round(x.exp(), k)


def _log(F, x, k=K_LOG):
    if not x > 0:
        raise Singular("log of a value that may be <= 0")
    return F.round(x.log(), k)


# ------------------------------------------------------------------ the reductions
def sum_backward(F, a, y, g, p):
    return [g] * len(a)  # sum_backward: grad expanded, an exact copy


def mean_forward(F, a, p):
    inner = F.opmath  # at::mean = sum(...).div_(n), in float for bfloat16 and float16, rounded once
    return F.store(inner.div(sum_any(inner, a), arb(len(a))))


def mean_backward(F, a, y, g, p):
    return [F.div(g, arb(len(a)))] * len(a)  # mean_backward: sum_backward(grad, ...).div_(n)


def prod_backward(F, a, y, g, p):
    """prod_backward (FunctionsManual.cpp): grad * (result / input) without zeros, else
    prod_safe_zeros_backward: grad * (exclusive cumprod from the left * exclusive cumprod from the right)."""
    exactly_zero = [v.is_exact() and v.is_zero() for v in a]
    if any(v.contains(0) and not z for v, z in zip(a, exactly_zero)):
        raise Singular("a factor of prod may be 0 within the rounding model (which backward torch takes)")
    if len(a) == 1:
        return [g]
    if not any(exactly_zero):
        return [mul(F, g, F.div(y, v)) for v in a]
    out = []
    for i in range(len(a)):
        left, right = product(F, a[:i]), product(F, a[i + 1:])
        out.append(mul(F, g, mul(F, left, right)))
    return out


def amax_backward(F, a, y, g, p):
    """scale_grad_by_count: (grad / count) * (input == result): ties share the gradient evenly."""
    _, ties = maximum(a)
    share = g if len(ties) == 1 else F.div(g, arb(len(ties)))
    return [share if i in ties else ZERO for i in range(len(a))]


def logsumexp_forward(F, a, p):
    """logsumexp_out_impl: m = amax; log(sum(exp(x - m))) + m."""
    m = hull_maximum(a)
    s = F.sum([_exp(F, F.sub(v, m)) for v in a])
    return F.add(_log(F, s), m)


def logsumexp_backward(F, a, y, g, p):
    return [mul(F, g, _exp(F, F.sub(v, y))) for v in a]  # logsumexp_backward: grad * (self - result).exp()


def norm_forward(F, a, p):
    # squares and root of floats torch holds are exact where the format holds the result, so that a norm of
    # exactly 1 compares equal to a maxnorm of 1 (renorm) instead of leaving the comparison undecided
    s = sum_any(F, [ZERO if is_exact_zero(v) else F.correctly_rounded(v * v) for v in a])
    if s.is_exact() and s.is_zero():
        return ZERO
    if not s > 0:
        raise Singular("the norm may be 0 within the rounding model")
    return F.correctly_rounded(s.sqrt())


def norm_backward(F, a, y, g, p):
    """norm_backward, p = 2, in the order torch 2.13's kernel rounds it: (self / norm) * grad, 0 where the norm is
    0. (Measured against torch's gradients: the quotient self / norm is rounded first, which matters where it is
    subnormal; the order self * (grad / norm) differs from torch there by an ulp before the upstream scales it.)"""
    if y.is_exact() and y.is_zero():
        return [ZERO] * len(a)
    if y.contains(0):
        raise Singular("the norm may be 0 within the rounding model")
    return [mul(F, div(F, v, y), g) for v in a]


def deviations(F, a):
    """self - self.mean(dim, true) as torch computes it (the mean: sum, then / N). A slice of one element,
    or a constant slice whose partial sums the dtype holds exactly (k·v for every k <= N), has mean exactly
    v, so its deviations are exactly 0: decidable, as torch's std needs (its backward masks a zero result)."""
    if len(a) == 1 or _constant_and_exactly_summable(F, a):
        return [ZERO] * len(a)
    mean = F.div(F.sum(a), arb(len(a)))
    return [F.sub(v, mean) for v in a]


def _constant_and_exactly_summable(F, a) -> bool:
    if not all(v.is_exact() and v == a[0] for v in a):
        return False
    numerator = abs(float(a[0].mid()).as_integer_ratio()[0])
    significand = numerator >> ((numerator & -numerator).bit_length() - 1) if numerator else 0
    fits = significand.bit_length() + len(a).bit_length() <= F.format.mantissa_bits
    return fits and len(a) * abs(float(a[0].mid())) <= F.format.max_finite


def div(F, a, b):
    """a / b, exactly 0 when a is exactly 0 (0 divided by a nonzero float is exactly ±0)."""
    return ZERO if is_exact_zero(a) else F.div(a, b)


def var_forward(F, a, p):
    """Two passes, as torch's CPU kernel for float and double: the mean, the sum of squared deviations, /
    (N - correction). bfloat16 and half take Welford's algorithm in float and round once: within this."""
    squares = sum_any(F, [mul(F, d, d) for d in deviations(F, a)])
    return div(F, squares, arb(len(a) - p.correction))


def var_backward(F, a, y, g, p):
    """var_backward: (2 / (N - correction)) * grad * (self - self.mean(dim, true)); the scalar 2 / (N -
    correction) is a double, rounded to the dtype where it does not hold it."""
    scale = mul(F, F.const(2 / (len(a) - p.correction)), g)
    return [mul(F, scale, d) for d in deviations(F, a)]


def std_forward(F, a, p):
    """sqrt of the variance, one more rounding; exactly 0 where the deviations are exactly 0."""
    var = var_forward(F, a, p)
    if is_exact_zero(var):
        return ZERO
    if not var > 0:
        raise Singular("the std may be 0 within the rounding model")
    return F.round(var.sqrt(), 1)


def std_backward(F, a, y, g, p):
    """std_backward: var_backward((grad / (result * 2)).masked_fill_(result == 0, 0), ...): 0 at a zero std."""
    if is_exact_zero(y):
        return [ZERO] * len(a)
    if y.contains(0):
        raise Singular("the std may be 0 within the rounding model")
    return var_backward(F, a, None, div(F, g, y * 2), p)  # result * 2: exact


def sym_var(a, p):
    mean = sympy.Add(*a) / len(a)
    return sympy.Add(*((v - mean) ** 2 for v in a)) / (len(a) - p.correction)


def _exact_deviations(a):
    mean = sum(a, ZERO) / len(a)
    return [v - mean for v in a]


def norm_value(a, p):
    """The 2-norm in arb directly: SymPy's evaluator refuses sqrt(0) (the power rule at base 0)."""
    return sum((v * v for v in a), ZERO).sqrt()


def std_value(a, p):
    return norm_value(_exact_deviations(a), p) / arb(len(a) - p.correction).sqrt()


def norm_subgradient(a, g, p):
    """x / |x|, and at the zero vector the minimum-norm subgradient 0."""
    if all(is_exact_zero(v) for v in a):
        return [ZERO] * len(a)
    norm = norm_value(a, p)
    return [g * v / norm for v in a]


def std_subgradient(a, g, p):
    """(x - mean) / ((N - correction) std), and at a constant slice (std 0) the minimum-norm subgradient 0:
    std is the norm of the deviations, scaled."""
    deviations = _exact_deviations(a)
    if all(is_exact_zero(d) for d in deviations):
        return [ZERO] * len(a)
    scale = g / (arb(len(a) - p.correction) * std_value(a, p))
    return [scale * d for d in deviations]


def amax_subgradient(a, g, p):
    """The indicator of the maximum; at an exact tie of k maxima, 1/k each (the minimum-norm subgradient).
    `Singular` where a tie is possible but not certain."""
    _, tied = maximum(a)
    return [g / len(tied) if i in tied else ZERO for i in range(len(a))]


# ------------------------------------------------------------------ cumulative ops and softmax
def prefix_sums(F, a, p):
    return [fused_sum(F, a[:i + 1]) for i in range(len(a))]


def _reversed_cumsum(F, w):
    """reversed_cumsum(w) = w.flip(dim).cumsum(dim).flip(dim), element i: Σ_{j >= i} w_j. Widened by the
    magnitude of the whole slice, not of the suffix: some torch versions compute it without flips as
    sum - cumsum + w, which errs by u times the whole slice."""
    total = arb(0)
    for v in w:
        total += arb(v.abs_upper())
    out = []
    for i in range(len(w)):
        exact = arb(0)
        for v in w[i:]:
            exact += v
        out.append(F.round(exact, 3 * max(len(w) - 1, 1), total))
    return out


def cumsum_backward(F, a, y, g, p):
    return [g[0]] if len(a) == 1 else _reversed_cumsum(F, g)  # cumsum_backward


def prefix_products(F, a, p):
    return [product(F, a[:i + 1]) for i in range(len(a))]


def cumprod_backward(F, a, y, g, p):
    """cumprod_backward (ReduceOps.cpp), first order: without zeros reversed_cumsum(output * grad) / input;
    with zeros, before the first zero z1 the same on the masked slice, at z1
    sum(cumprod(input on (z1, z2)) * grad on [z1, z2)) * output[z1 - 1], after it 0."""
    exactly_zero = [v.is_exact() and v.is_zero() for v in a]
    if any(v.contains(0) and not z for v, z in zip(a, exactly_zero)):
        raise Singular("a factor of cumprod may be 0 within the rounding model (which backward torch takes)")
    n = len(a)
    if n == 1:
        return [g[0]]
    w = [mul(F, yj, gj) for yj, gj in zip(y, g)]
    if not any(exactly_zero):
        return [F.div(s, v) for s, v in zip(_reversed_cumsum(F, w), a)]
    z1 = exactly_zero.index(True)
    later = [i for i in range(z1 + 1, n) if exactly_zero[i]]
    z2 = later[0] if later else n
    before = [ZERO if i >= z1 else w[i] for i in range(n)]
    out = [ZERO] * n
    for i, s in enumerate(_reversed_cumsum(F, before)[:z1]):
        out[i] = F.div(s, a[i])
    chain = [product(F, a[z1 + 1:j + 1]) for j in range(z1, z2)]  # cumprod of the masked input
    at_zero = sum_any(F, [mul(F, c, g[j]) for c, j in zip(chain, range(z1, z2))])
    out[z1] = at_zero if z1 == 0 else mul(F, at_zero, y[z1 - 1])
    return out


def softmax_forward(F, a, p):
    """exp(x - max) / sum: the CPU kernel multiplies by 1 / sum (two roundings) or divides (one)."""
    m = hull_maximum(a)
    e = [_exp(F, F.sub(v, m)) for v in a]
    s = F.sum(e)
    return [F.round(v / s, 2) for v in e]


def softmax_backward(F, a, y, g, p):
    """_softmax_backward_data: output * (grad - sum(grad * output))."""
    s = sum_any(F, [mul(F, gj, yj) for gj, yj in zip(g, y)])
    return [mul(F, yi, F.sub(gi, s)) for yi, gi in zip(y, g)]


def log_softmax_forward(F, a, p):
    """x - max - log(sum(exp(x - max))), associated either way: (x - max) - lse or x - (max + lse)."""
    m = hull_maximum(a)
    s = F.sum([_exp(F, F.sub(v, m)) for v in a])
    lse = _log(F, s)
    return [F.round(v - m - lse, 2, arb(v.abs_upper()) + m.abs_upper() + lse.abs_upper()) for v in a]


def log_softmax_backward(F, a, y, g, p):
    """_log_softmax_backward_data: grad - exp(output) * sum(grad)."""
    s = sum_any(F, list(g))
    return [F.sub(gi, mul(F, _exp(F, yi), s)) for gi, yi in zip(g, y)]


def _log_add_exp(G: RoundingModel, x: arb, y: arb) -> arb:
    """_log_add_exp_helper(x, y) = log1p(exp(min - max)) + max in the kernel's accumulation type `G`. Where the
    balls overlap, either may be the max: the values of both orders (the function is symmetric, its roundings
    are not)."""
    orders = [(x, y)] if x > y else [(y, x)] if y > x else [(x, y), (y, x)]
    out = None
    for high, low in orders:
        value = G.add(G.round(_exp(G, G.sub(low, high)).log1p(), K_LOG), high)
        out = value if out is None else out.union(value)
    return out


def log_cumsumexp(F: RoundingModel, a: list[arb]) -> list[arb]:
    """logcumsumexp's CPU kernel: the running value starts at -inf (so the first is x0 exactly) and takes
    _log_add_exp_helper with each element in at::acc_type (double for float32 and float64: enclosed by the
    format's own arithmetic; float for bfloat16 and float16), each output stored in the dtype."""
    G = F.opmath
    running, out = None, []
    for v in a:
        running = v if running is None else _log_add_exp(G, v, running)
        out.append(F.store(running))
    return out


def logcumsumexp_backward(F, a, y, g, p):
    """logcumsumexp_backward (FunctionsManual.cpp), real branch: per sign s of grad, log_grad_s = log|grad| where
    grad has that sign, else the dtype's lowest value; out_s = exp(reverse_logcumsumexp(log_grad_s - result) +
    self); the gradient is out_pos - out_neg. A lowest value adds exp(lowest - ...) = 0 to the running sum
    exactly, so it is left out; a suffix of them alone gives exp(about lowest) = 0 exactly. A grad element whose
    sign the model cannot decide (a ball around 0) is left out of both sums, and its share |grad_j| e^(x_i - r_j)
    on either side, twice over (the roundings it would take part in), widens the gradient instead."""
    signs = [0 if is_exact_zero(gj) or gj.contains(0) else F.sign(gj) for gj in g]
    parts = []
    for sign in (1, -1):
        terms = [F.sub(_log(F, abs(gj)), yj) if s == sign else None for gj, yj, s in zip(g, y, signs)]
        part = [ZERO] * len(a)
        for i in range(len(a)):
            suffix = [t for t in terms[i:] if t is not None]
            if suffix:
                total = log_cumsumexp(F, suffix[::-1])[-1]  # reverse_logcumsumexp: flip, scan, flip
                part[i] = _exp(F, F.add(total, a[i]))
        parts.append(part)
    out = [pos if is_exact_zero(neg) else (-neg if is_exact_zero(pos) else F.sub(pos, neg)) for pos, neg in zip(*parts)]
    for j, gj in enumerate(g):
        if signs[j] == 0 and not is_exact_zero(gj):
            for i in range(j + 1):
                out[i] = F.in_range(out[i] + arb(0, 2 * gj.abs_upper() * (a[i] - y[j]).exp().abs_upper()))
    return out

# ------------------------------------------------------------------ the SymPy side
def sym_softmax(a, p):
    e = [sympy.exp(v) for v in a]
    total = sympy.Add(*e)
    return [v / total for v in e]


def sym_log_softmax(a, p):
    lse = sympy.log(sympy.Add(*(sympy.exp(v) for v in a)))
    return [v - lse for v in a]


def sym_cumprod(a, p):
    return [sympy.Mul(*a[:i + 1]) for i in range(len(a))]


# ------------------------------------------------------------------ matmul
def sym_matmul(arrays, p):
    a, b = arrays
    out = np.matmul(a, b) if a.ndim and b.ndim and not (a.ndim == 1 and b.ndim == 1) else None
    if out is None:  # 1-D @ 1-D: a 0-d dot product
        return np.array(sympy.Add(*(x * y for x, y in zip(a, b))), dtype=object)
    return np.asarray(out, dtype=object)


def _as_matrices(a, b):
    """matmul's 1-D operands as a row (left) or a column (right), as torch documents."""
    return (a.reshape(1, -1) if a.ndim == 1 else a), (b.reshape(-1, 1) if b.ndim == 1 else b)


def matmul_forward(F, arrays, p):
    a, b = arrays
    A, B = _as_matrices(a, b)
    out = _obj((A.shape[0], B.shape[1]))
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            out[i, j] = sum_any(F, [mul(F, A[i, k], B[k, j]) for k in range(A.shape[1])])
    return out.reshape(matmul_out_shape(a.shape, b.shape))


def matmul_out_shape(sa, sb):
    if len(sa) == 1 and len(sb) == 1:
        return ()
    if len(sa) == 1:
        return (sb[1],)
    if len(sb) == 1:
        return (sa[0],)
    return (sa[0], sb[1])


def matmul_backward(F, arrays, out, grad, p):
    """matmul's backward: grad @ other^T and self^T @ grad (each entry a dot product, any order)."""
    a, b = arrays
    A, B = _as_matrices(a, b)
    G = grad.reshape(A.shape[0], B.shape[1])
    ga, gb = _obj(A.shape), _obj(B.shape)
    for i in range(A.shape[0]):
        for k in range(A.shape[1]):
            ga[i, k] = sum_any(F, [mul(F, G[i, j], B[k, j]) for j in range(B.shape[1])])
    for k in range(B.shape[0]):
        for j in range(B.shape[1]):
            gb[k, j] = sum_any(F, [mul(F, A[i, k], G[i, j]) for i in range(A.shape[0])])
    return ga.reshape(a.shape), gb.reshape(b.shape)


# ------------------------------------------------------------------ ops that gather (and add up) elements
@dataclass(frozen=True)
class Constant:
    """An output element that holds a constant (padding, a masked fill, the zeros off a diagonal)."""

    value: float


@dataclass(frozen=True)
class Total:
    """An output element that is a sum of argument elements, each added (+1) or subtracted (-1): scatter_add's
    and index_add's accumulations, trace, diff; with a `divisor`, their mean (average pooling)."""

    terms: tuple[tuple[int, int], ...]  # (element id, +1 or -1)
    divisor: int = 1


# An average's division: by the window's size, by its sides one after the other (adaptive pooling) or times
# a rounded reciprocal; two roundings enclose each of these.
K_DIVISION = 2


def _divided(F: RoundingModel, value: arb, divisor: int) -> arb:
    return value if divisor == 1 else F.round(value / divisor, K_DIVISION)


def _terms(item) -> tuple[tuple[int, int], ...]:
    if isinstance(item, Total):
        if item.divisor != 1:
            raise ValueError("an average cannot be part of a sum")
        return item.terms
    if isinstance(item, Constant):
        if item.value != 0:
            raise ValueError(f"only a constant 0 can be part of a sum, got {item.value}")
        return ()
    return ((item, 1),)


def plus(a, b):
    """The element a + b, for index maps that add (on element ids, as `gathered` runs them)."""
    return Total(_terms(a) + _terms(b))


def minus(a, b):
    return Total(_terms(a) + tuple((element, -sign) for element, sign in _terms(b)))


def _tokens(shapes) -> list[np.ndarray]:
    """Per argument, an object array of the global row-major ids of its elements (argument after argument)."""
    out, first = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=int))
        out.append(np.arange(first, first + size).astype(object).reshape(shape))
        first += size
    return out


@functools.lru_cache(maxsize=4096)  # per op, shapes and parameters: every forward and backward asks again
def structure(index_map: Callable, shapes: tuple[tuple[int, ...], ...], p) -> np.ndarray:
    """The op's output on element ids: per element an id, a `Constant` or a `Total` (shared: read only)."""
    layout = np.asarray(index_map(_tokens(shapes), p, Constant), dtype=object)
    layout.flags.writeable = False
    return layout


def gathered_shape(index_map: Callable, shapes, p) -> tuple[int, ...]:
    return structure(index_map, tuple(map(tuple, shapes)), p).shape


def gathered(index_map: Callable):
    """forward, backward and SymPy of an op whose every output element is an element of one of its arguments,
    a constant or a sum of elements, from `index_map(arrays, params, constant)`: the op on numpy object arrays
    (one per argument; `constant(value)` is what it puts where the output holds a constant, and it adds with
    `plus`/`minus`). The map runs once on element ids (`structure`); from that:
    - SymPy: each output element is its element, constant or sum;
    - torch's forward: a copy is exact, a sum is rounded in any order (`sum_any`);
    - torch's backward: each output element's gradient goes to every element it came from (negated where
      subtracted), and copies of one element add up, as torch's scatter-add, index_put_(accumulate=True) and
      sum_to_size do; a constant passes no gradient."""

    def evaluate(arrays, p, element, constant, total):
        flat = [v for a in arrays for v in a.reshape(-1)]
        layout = structure(index_map, tuple(a.shape for a in arrays), p)
        out = _obj(layout.shape)
        for o in np.ndindex(*layout.shape):
            item = layout[o]
            if isinstance(item, Constant):
                out[o] = constant(item.value)
            elif isinstance(item, Total):
                out[o] = total([flat[e] if sign > 0 else -flat[e] for e, sign in item.terms], item.divisor)
            else:
                out[o] = element(flat[item])
        return out

    def sympy_side(arrays, p):
        return evaluate(arrays, p, lambda v: v, sympy.Rational, lambda terms, d: sympy.Add(*terms) / d)

    def forward(F, arrays, p):
        return evaluate(arrays, p, lambda v: v, arb, lambda terms, d: _divided(F, sum_any(F, terms), d))

    def backward(F, arrays, out, grad, p):
        layout = structure(index_map, tuple(a.shape for a in arrays), p)
        collected: list[list[arb]] = [[] for _ in range(sum(a.size for a in arrays))]
        for o in np.ndindex(*layout.shape):
            item = layout[o]
            if isinstance(item, Constant):
                continue
            share = grad[o]
            if isinstance(item, Total):  # an average's gradient is divided once per output element
                share = _divided(F, share, item.divisor)
                terms = item.terms
            else:
                terms = ((item, 1),)
            for element, sign in terms:
                collected[element].append(share if sign > 0 else -share)
        grads, first = [], 0
        for a in arrays:
            g = _obj(a.shape)
            for flat, index in enumerate(np.ndindex(*a.shape)):
                g[index] = sum_any(F, collected[first + flat])
            grads.append(g)
            first += a.size
        return tuple(grads)

    return sympy_side, forward, backward


# ------------------------------------------------------------------ per op: one slice's formulas
@dataclass(frozen=True)
class SliceFormulas:
    """One slice's mathematics and torch's computation of it; the op's kind (a reduction, an op along a dim)
    lifts them to whole arrays (`reduction`, `dimwise`). Each receives the op's parameters last."""

    math: Callable  # (SymPy expressions, params) -> SymPy expression (a reduction) or list (along a dim)
    forward: Callable  # (F, balls, params) -> ball or list of balls
    backward: Callable  # (F, balls, result, grad, params) -> the slice's gradients


SUM = SliceFormulas(lambda a, p: sympy.Add(*a), lambda F, a, p: fused_sum(F, a), sum_backward)
MEAN = SliceFormulas(lambda a, p: sympy.Add(*a) / len(a), mean_forward, mean_backward)
PROD = SliceFormulas(lambda a, p: sympy.Mul(*a), lambda F, a, p: product(F, a), prod_backward)
AMAX = SliceFormulas(lambda a, p: sym_max(a), lambda F, a, p: maximum(a)[0], amax_backward)
LOGSUMEXP = SliceFormulas(lambda a, p: sympy.log(sympy.Add(*(sympy.exp(v) for v in a))), logsumexp_forward,
                          logsumexp_backward)
NORM = SliceFormulas(lambda a, p: sympy.sqrt(sympy.Add(*(v**2 for v in a))), norm_forward, norm_backward)
VAR = SliceFormulas(sym_var, var_forward, var_backward)
STD = SliceFormulas(lambda a, p: sympy.sqrt(sym_var(a, p)), std_forward, std_backward)
CUMSUM = SliceFormulas(lambda a, p: [sympy.Add(*a[:i + 1]) for i in range(len(a))], prefix_sums, cumsum_backward)
CUMPROD = SliceFormulas(sym_cumprod, prefix_products, cumprod_backward)
SOFTMAX = SliceFormulas(sym_softmax, softmax_forward, softmax_backward)
LOG_SOFTMAX = SliceFormulas(sym_log_softmax, log_softmax_forward, log_softmax_backward)
LOGCUMSUMEXP = SliceFormulas(
    lambda a, p: [sympy.log(sympy.Add(*(sympy.exp(v) for v in a[:i + 1]))) for i in range(len(a))],
    lambda F, a, p: log_cumsumexp(F, a), logcumsumexp_backward)
MATMUL = (sym_matmul, matmul_forward, matmul_backward)
