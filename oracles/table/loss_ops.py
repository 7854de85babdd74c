"""Loss functions (torch.nn.functional), one entry each: a loss of one element and a reduction over all of them.

An entry is its `ElementLoss`: the element's mathematics (SymPy), torch's forward of it and torch's backward of
it (balls, every float operation rounded by the `RoundingModel`), after the kernels of
aten/src/ATen/native/Loss.cpp, cpu/PointwiseOpsKernel.cpp and derivatives.yaml. The reduction ('mean', 'sum',
'none') is a parameter: forward `unreduced.mean()` (a sum, then / N) or `.sum()`; backward either torch's fused
loss-backward kernel, which takes the reduction's 1 / N as its `norm` (mse_loss, smooth_l1_loss, huber_loss,
soft_margin_loss, binary_cross_entropy_with_logits), or autograd through the composite loss, whose mean's
backward divides the gradient by N first (l1_loss, poisson_nll_loss, kl_div, the margin losses).

Every tensor argument torch differentiates is an argument here (mse_loss's target too); a tensor torch does
not differentiate (soft_margin_loss's ±1 labels, gaussian_nll_loss's variances, binary_cross_entropy's
targets) is a parameter, a tensor of the input's dtype (`x.new_tensor([...])`). Losses of whole rows (class
scores, feature vectors) are in oracles.table.sample_losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from flint import arb

from oracles.numerics.rounding import EpsilonUnderflow, RoundingModel, Singular
from oracles.table.ops import OPS, unary_kernel
from oracles.table.tensor_formulas import ZERO, mul, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, CallParams, OptionSpace, TensorOp, TSpelling

ONE = arb(1)
HALF = arb(0.5)
REDUCTIONS = ("mean", "sum", "none")  # the default first: what a failing case shrinks to
EXP_K = 2  # torch's exp and log kernels: 1 ulp (Sleef's _u10), as the op table's exp and log
LOG_K = 2
SIGMOID_K = 4  # torch.sigmoid: 2 ulps, as the op table's sigmoid
NAMES: list[str] = []  # the entries this module adds to TENSOR_OPS


# ------------------------------------------------------------------ rounding-model helpers
def correctly_rounded(F: RoundingModel, value: arb) -> arb:
    """The result of one correctly rounded IEEE operation (+, -, *, /) whose exact result is `value`: exact where
    `value` is an exact number the dtype holds, so ties, kinks, branches and zero tests stay decidable."""
    if value.is_exact():
        as_float = float(value.mid())
        if arb(as_float) == value and F.format.round(as_float) == as_float:
            return value
    return F.round(value)


def difference(F: RoundingModel, a: arb, b: arb) -> arb:
    """a - b as a kernel computes it (exact at a tie of exact inputs: 0)."""
    return correctly_rounded(F, a - b)


def either_precision(F: RoundingModel, compute: Callable[[RoundingModel], arb]) -> arb:
    """A kernel whose bfloat16/float16 code may compute in float and round once (its Vectorized path) or
    round every operation in the dtype (its scalar path): the hull of both; float32 and float64 have one."""
    in_dtype = compute(F)
    if F.opmath is F:
        return in_dtype
    return in_dtype.union(F.store(compute(F.opmath)))


def guarded_by_eps(F: RoundingModel, eps: float, divisor: str) -> Singular:
    """The exception for a divisor that may be 0 where torch guards it with `eps`: `EpsilonUnderflow` where the
    dtype holds no eps (float16 and 1e-12: torch then divides by 0), else `Singular` (which side of the guard
    torch takes is undecided)."""
    if F.format.round(eps) == 0:
        return EpsilonUnderflow(f"{divisor} may be 0 and eps = {eps:g} is 0 in {F.format.name}")
    return Singular(f"{divisor} may be below eps = {eps:g} within the rounding model")


def hull(*values: arb) -> arb:
    out = values[0]
    for v in values[1:]:
        out = out.union(v)
    return out


def _exp(F, x):
    return unary_kernel(F, x.exp(), EXP_K)


def _log(F, x):
    return unary_kernel(F, x.log(), LOG_K)


def _sigmoid(F, x):
    return unary_kernel(F, 1 / (1 + (-x).exp()), SIGMOID_K)


def mean_gradient(F, g: arb, mean_of: int | None) -> arb:
    """The gradient reaching each element through `.mean()` (mean_backward: the expanded grad / N, one
    rounding) or `.sum()`/no reduction (a copy)."""
    return g if mean_of is None else F.div(g, arb(mean_of))


def fused_norm(mean_of: int | None, factor: float = 1.0) -> float:
    """The `norm` a fused loss-backward kernel receives: factor / N for 'mean', else factor (a double)."""
    return factor / mean_of if mean_of is not None else factor


# ------------------------------------------------------------------ one element of a loss
@dataclass(frozen=True)
class ElementLoss:
    """One element of a loss before reduction, of its operands: the tensor arguments' elements, then the
    elements of the tensor parameters (`constants`, e.g. ±1 labels) and the op's parameters `p`.
    `backward(F, operands, g, mean_of, p)`: the gradients of the tensor arguments for upstream g of the
    element's loss; `mean_of` is what the reduction divides by (`divisor`), else None."""

    math: Callable  # (SymPy operands, p) -> SymPy expression
    forward: Callable  # (F, balls, p) -> ball
    backward: Callable  # (F, balls, g, mean_of, p) -> tuple of gradients, one per tensor argument


@dataclass(frozen=True)
class Labels:
    """A tensor parameter torch does not differentiate (±1 labels, variances), exact in every dtype and made in
    the input's dtype: `x.new_tensor([...])`."""

    values: tuple  # nested tuples, the tensor's shape

    @property
    def array(self) -> np.ndarray:
        return np.array(self.values, dtype=float)

    def __repr__(self) -> str:
        return repr(self.array.tolist())


def _operands(arrays, p: CallParams, constants: Sequence[str]):
    """Per element (row-major): the tensor arguments' elements and the tensor parameters' elements."""
    shape = arrays[0].shape
    for index in np.ndindex(*shape):
        yield index, [a[index] for a in arrays] + [p[name].array[index] for name in constants]


def divisor(shape: tuple[int, ...], reduction: str) -> int | None:
    """What the reduced loss is divided by: N for 'mean', the batch size for kl_div's 'batchmean' (the sum /
    input.size(0)); None for 'sum' and 'none'."""
    if reduction == "mean":
        return int(np.prod(shape, dtype=int))
    return shape[0] if reduction == "batchmean" else None


def _reduce_math(out: np.ndarray, p: CallParams):
    if p["reduction"] == "none":
        return out
    total = sympy.Add(*out.reshape(-1))
    n = divisor(out.shape, p["reduction"])
    return np.array(total if n is None else total / n, dtype=object)


def _reduce_forward(F, out: np.ndarray, p: CallParams):
    """`.mean()`: the sum, then / N; `.sum()`; batchmean: the sum, then / size(0)."""
    if p["reduction"] == "none":
        return out
    flat = list(out.reshape(-1))
    n = divisor(out.shape, p["reduction"])
    result = np.empty((), dtype=object)
    result[()] = sum_any(F, flat) if n is None else F.div(F.sum(flat), arb(n))
    return result


def loss_op(name: str, element: ElementLoss, spellings, options: Callable, opinfo: Sequence[str], arity: int,
            constants: Sequence[str] = (), ranks: tuple[int, ...] = (1, 2), **kw) -> TensorOp:
    """A loss entry: `element` applied to every element of its arguments (one shape), then reduced."""

    def math(arrays, p):
        out = np.empty(arrays[0].shape, dtype=object)
        for index, operands in _operands(arrays, p, constants):
            out[index] = element.math([sympy.Rational(v) if isinstance(v, float) else v for v in operands], p)
        return _reduce_math(out, p)

    def forward(F, arrays, p):
        out = np.empty(arrays[0].shape, dtype=object)
        for index, operands in _operands(arrays, p, constants):
            out[index] = element.forward(F, [arb(v) if isinstance(v, float) else v for v in operands], p)
        return _reduce_forward(F, out, p)

    def backward(F, arrays, out, grad, p):
        shape = arrays[0].shape
        mean_of = divisor(shape, p["reduction"])
        grads = [np.empty(shape, dtype=object) for _ in range(arity)]
        for index, operands in _operands(arrays, p, constants):
            g = grad[index] if p["reduction"] == "none" else grad[()]
            balls = [arb(v) if isinstance(v, float) else v for v in operands]
            for k, value in enumerate(element.backward(F, balls, g, mean_of, p)):
                grads[k][index] = value
        return tuple(grads)

    def shape(shapes, p):
        return shapes[0] if p["reduction"] == "none" else ()

    def listed(shapes):
        return tuple(options(shapes[0])) if len(shapes[0]) in ranks else ()

    return TensorOp(name, arity, tuple(spellings), math, forward, backward, OptionSpace(listed), shape, tuple(opinfo),
                    ranks=ranks, **kw)


# ------------------------------------------------------------------ spellings and parameter lists
def _keywords(p: CallParams, skip: Sequence[str]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in p.items if k not in skip)


def functional(function: str, arity: int, constants: Sequence[str] = (), defaults: dict | None = None) -> list:
    """torch.nn.functional.<function>(arguments, labels as x.new_tensor([...]), keyword=...) with every parameter
    named, and without keywords where every parameter has torch's default (`defaults`; None: no parameter set
    of the entry has them all)."""
    call = getattr(torch.nn.functional, function)

    def positional(texts, p):
        return list(texts[:arity]) + [f"{texts[0]}.new_tensor({p[name]!r})" for name in constants]

    def tensors(args, p):
        return list(args[:arity]) + [args[0].new_tensor(p[name].array.tolist()) for name in constants]

    def keywords(p):
        return {k: v for k, v in p.items if k not in constants}

    named = TSpelling(
        lambda texts, p: f"torch.nn.functional.{function}({', '.join(positional(texts, p))}, "
                         f"{_keywords(p, constants)})",
        lambda args, p: call(*tensors(args, p), **keywords(p)))
    if defaults is None:
        return [named]
    bare = TSpelling(
        lambda texts, p: f"torch.nn.functional.{function}({', '.join(positional(texts, p))})",
        lambda args, p: call(*tensors(args, p)),
        lambda shapes, p: all(p.get(k) == v for k, v in defaults.items()))
    return [named, bare]


def module(class_name: str, arity: int, constants: Sequence[str] = ()) -> TSpelling:
    """torch.nn.<Loss>(keyword=...)(arguments): the module form, every parameter named."""
    cls = getattr(torch.nn, class_name)

    def render(texts, p):
        labels = [f"{texts[0]}.new_tensor({p[name]!r})" for name in constants]
        return f"torch.nn.{class_name}({_keywords(p, constants)})({', '.join(list(texts[:arity]) + labels)})"

    def call(args, p):
        labels = [args[0].new_tensor(p[name].array.tolist()) for name in constants]
        return cls(**{k: v for k, v in p.items if k not in constants})(*args[:arity], *labels)

    return TSpelling(render, call)


def _params(**items) -> CallParams:
    return CallParams(tuple(items.items()))


def reductions(**choices) -> Callable:
    """Every reduction with every combination of the listed parameter values (the first of each simplest)."""
    def options(shape):
        out = [{"reduction": r} for r in REDUCTIONS]
        for key, values in choices.items():
            out = [dict(o, **{key: v}) for o in out for v in values]
        return [_params(**o) for o in out]
    return options


def label_patterns(shape: tuple[int, ...]) -> list[Labels]:
    """±1 labels: all +1, all -1, alternating either way."""
    size = int(np.prod(shape, dtype=int))
    flat = np.arange(size)
    patterns = [np.ones(size), -np.ones(size), np.where(flat % 2 == 0, 1.0, -1.0), np.where(flat % 2 == 0, -1.0, 1.0)]
    unique = {}
    for values in patterns:
        unique.setdefault(values.tobytes(), Labels(_nested(values.reshape(shape))))
    return list(unique.values())


def _nested(array: np.ndarray):
    return tuple(_nested(a) for a in array) if array.ndim else float(array)


def with_labels(options: Callable) -> Callable:
    def listed(shape):
        return [CallParams(o.items + (("target", labels),)) for o in options(shape) for labels in label_patterns(shape)]
    return listed


# ------------------------------------------------------------------ the losses
def _branches(x: arb, edge: arb) -> list[str]:
    """The branches a kernel may take for x against ±edge: "low" (x <= -edge), "high" (x >= edge), "middle"
    (|x| < edge); more than one where x's ball straddles an edge."""
    out = []
    if not x > -edge:
        out.append("low")
    if not x < edge:
        out.append("high")
    if not (x <= -edge or x >= edge):
        out.append("middle")
    return out


def _mse_forward(F, ops, p):
    def kernel(G):
        d = difference(G, ops[0], ops[1])
        return mul(G, d, d)  # mse_kernel: diff * diff
    return either_precision(F, kernel)


def _mse_backward(F, ops, g, mean_of, p):
    """mse_backward_cpu_kernel: norm * (self - target) * grad, each operation in the dtype, norm = 2 / N ('mean')
    or 2 cast to the dtype; the target's gradient is the same kernel with the two swapped: exactly the negation."""
    norm = F.const(fused_norm(mean_of, 2.0))
    grad = mul(F, mul(F, norm, difference(F, ops[0], ops[1])), g)
    return grad, -grad


MSE = ElementLoss(lambda ops, p: (ops[0] - ops[1]) ** 2, _mse_forward, _mse_backward)


def _l1_backward(F, ops, g, mean_of, p):
    """Autograd through the composite (input - target).abs() and its mean: grad / N, then abs's grad * sgn(diff),
    exact, 0 at a tie (the minimum-norm subgradient); the target's is its negation (sub's backward)."""
    d = difference(F, ops[0], ops[1])
    share = mean_gradient(F, g, mean_of)
    grad = ZERO if d.is_exact() and d.is_zero() else share * F.sign(d)
    return grad, -grad


L1 = ElementLoss(lambda ops, p: sympy.Abs(ops[0] - ops[1]), lambda F, ops, p: abs(difference(F, ops[0], ops[1])),
                 _l1_backward)


def _smooth_l1_math(ops, p):
    d, beta = ops[0] - ops[1], sympy.Rational(p["beta"])
    return sympy.Piecewise((d**2 / (2 * beta), sympy.Abs(d) < beta), (sympy.Abs(d) - beta / 2, True))


def _smooth_l1_forward(F, ops, p):
    """smooth_l1_kernel: z = |a - b|; z < beta ? 0.5 * z * z / beta : z - 0.5 * beta."""
    beta = arb(p["beta"])

    def kernel(G):
        z = abs(difference(G, ops[0], ops[1]))
        values = []
        if not z >= beta:
            values.append(G.div(mul(G, mul(G, HALF, z), z), beta))
        if not z < beta:
            values.append(G.sub(z, HALF * beta))
        return hull(*values)
    return either_precision(F, kernel)


def _smooth_l1_backward(F, ops, g, mean_of, p):
    """smooth_l1_backward_cpu_kernel, x = input - target: -norm * grad (x <= -beta), norm * grad (x >= beta),
    else norm * x * grad / beta (its scalar loop) or norm * (x / beta) * grad (its Vectorized loop); bfloat16 and
    float16 in float, norm read as a float, rounded once. norm = 1 / N ('mean') or 1. The target's gradient is
    the kernel with the two swapped: exactly the negation."""
    G, beta = F.opmath, arb(p["beta"])
    norm = G.const(fused_norm(mean_of))
    x = difference(G, ops[0], ops[1])
    values = []
    for branch in _branches(x, beta):
        if branch == "middle":
            values += [G.div(mul(G, mul(G, norm, x), g), beta), mul(G, mul(G, norm, G.div(x, beta)), g)]
        else:
            values.append(mul(G, norm if branch == "high" else -norm, g))
    grad = F.store(hull(*values))
    return grad, -grad


SMOOTH_L1 = ElementLoss(_smooth_l1_math, _smooth_l1_forward, _smooth_l1_backward)


def _huber_math(ops, p):
    d, delta = ops[0] - ops[1], sympy.Rational(p["delta"])
    return sympy.Piecewise((d**2 / 2, sympy.Abs(d) < delta), (delta * (sympy.Abs(d) - delta / 2), True))


def _huber_forward(F, ops, p):
    """huber_kernel: z = |a - b|; z < delta ? 0.5 * z * z : delta * (z - 0.5 * delta)."""
    delta = arb(p["delta"])

    def kernel(G):
        z = abs(difference(G, ops[0], ops[1]))
        values = []
        if not z >= delta:
            values.append(mul(G, mul(G, HALF, z), z))
        if not z < delta:
            values.append(mul(G, delta, G.sub(z, HALF * delta)))
        return hull(*values)
    return either_precision(F, kernel)


def _huber_backward(F, ops, g, mean_of, p):
    """huber_backward_cpu_kernel, every operation in the dtype (bfloat16 and float16 too), x = input - target:
    ±norm * grad * delta (|x| >= delta; its Vectorized loop: norm * (±delta) * grad), else norm * x * grad;
    norm = 1 / N ('mean') or 1, cast to the dtype. The target's gradient: exactly the negation."""
    delta = arb(p["delta"])
    norm = F.const(fused_norm(mean_of))
    x = difference(F, ops[0], ops[1])
    values = []
    for branch in _branches(x, delta):
        if branch == "middle":
            values.append(mul(F, mul(F, norm, x), g))
        else:
            signed = delta if branch == "high" else -delta
            values += [mul(F, mul(F, norm, g), signed), mul(F, mul(F, norm, signed), g)]
    grad = hull(*values)
    return grad, -grad


HUBER = ElementLoss(_huber_math, _huber_forward, _huber_backward)


def _soft_margin_forward(F, ops, p):
    """soft_margin_loss_out: (-input * target).exp_().add_(1.).log_(), one kernel each (y = ±1: the product is
    exact)."""
    x, y = ops
    return _log(F, F.add(_exp(F, -y * x), ONE))


def _soft_margin_backward(F, ops, g, mean_of, p):
    """soft_margin_loss_backward_out: z = exp(-target * input); (target * z).mul_(-norm), norm = 1 / N ('mean')
    or 1, a scalar the mul kernel reads in opmath (float for bfloat16 and float16); .div_(z + 1).mul_(grad)."""
    x, y = ops
    z = _exp(F, -y * x)
    scaled = F.store(mul(F.opmath, y * z, F.opmath.const(-fused_norm(mean_of))))
    return (mul(F, F.div(scaled, F.add(z, ONE)), g),)


SOFT_MARGIN = ElementLoss(lambda ops, p: sympy.log(1 + sympy.exp(-ops[1] * ops[0])), _soft_margin_forward,
                          _soft_margin_backward)


def _bce_logits_forward(F, ops, p):
    """binary_cross_entropy_with_logits: max_val = (-input).clamp_min(0); (1 - target) * input + max_val +
    log(exp(-max_val) + exp(-input - max_val)), one kernel each."""
    x, t = ops
    top = (-x).max(ZERO)
    linear = F.add(mul(F, F.sub(ONE, t), x), top)
    return F.add(linear, _log(F, F.add(_exp(F, -top), _exp(F, difference(F, -x, top)))))


def _bce_logits_backward(F, ops, g, mean_of, p):
    """binary_cross_entropy_with_logits_backward: (input.sigmoid() - target) * grad; the target's
    (binary_cross_entropy_with_logits_target_backward): -input * grad; each / N for 'mean'."""
    x, t = ops
    grads = (mul(F, F.sub(_sigmoid(F, x), t), g), mul(F, -x, g))
    return tuple(v if mean_of is None else F.div(v, arb(mean_of)) for v in grads)


BCE_LOGITS = ElementLoss(lambda ops, p: (1 - ops[1]) * ops[0] + sympy.log(1 + sympy.exp(-ops[0])),
                         _bce_logits_forward, _bce_logits_backward)


def _poisson_backward(F, ops, g, mean_of, p):
    """Autograd through the composite exp(input) - target * input (log_input=True) and its mean: the input gets
    grad * exp(input) (exp's backward, from its result) and -grad * target, added once; the target -grad * input."""
    x, t = ops
    share = mean_gradient(F, g, mean_of)
    return sum_any(F, [mul(F, share, _exp(F, x)), mul(F, -share, t)]), mul(F, -share, x)


POISSON_NLL = ElementLoss(lambda ops, p: sympy.exp(ops[0]) - ops[1] * ops[0],
                          lambda F, ops, p: F.sub(_exp(F, ops[0]), mul(F, ops[1], ops[0])), _poisson_backward)


def _kl_div_log_forward(F, ops, p):
    x, t = ops
    return mul(F, _exp(F, t), difference(F, t, x))  # _kl_div_log_target: exp(target) * (target - input)


def _kl_div_log_backward(F, ops, g, mean_of, p):
    """Autograd through exp(target) * (target - input) and its reduction (mean: grad / N; batchmean: / size(0)):
    the product's backward gives grad * (target - input) to exp (then * exp(target), exp's result) and
    grad * exp(target) to the difference: the target adds both (one rounding), the input gets the negation."""
    x, t = ops
    share = mean_gradient(F, g, mean_of)
    e = _exp(F, t)
    to_difference = mul(F, share, e)
    through_exp = mul(F, mul(F, share, difference(F, t, x)), e)
    return -to_difference, sum_any(F, [through_exp, to_difference])


KL_DIV_LOG = ElementLoss(lambda ops, p: sympy.exp(ops[1]) * (ops[1] - ops[0]), _kl_div_log_forward,
                         _kl_div_log_backward)

def ramp_passes(F, z: arb) -> bool:
    """clamp_min(z, 0)'s backward, where(z >= 0, grad, 0): whether the gradient passes; `Singular` where z may
    be on either side of 0 (an exact 0 passes: torch's convention, the clamp-bound-subgradient finding)."""
    if z.is_exact() and z.is_zero():
        return True
    return F.sign(z) > 0


def _margin_ranking_forward(F, ops, p):
    """(-target * (input1 - input2) + margin).clamp_min_(0), one kernel each (target ±1: the product is exact)."""
    x1, x2, y = ops
    return F.add(-y * difference(F, x1, x2), arb(p["margin"])).max(ZERO)


def _margin_ranking_backward(F, ops, g, mean_of, p):
    """Autograd through the composite: the reduction's backward, clamp_min's where(z >= 0, grad, 0), the
    product's grad * (-target) (exact), the difference's +/-."""
    x1, x2, y = ops
    z = F.add(-y * difference(F, x1, x2), arb(p["margin"]))
    share = mean_gradient(F, g, mean_of) if ramp_passes(F, z) else ZERO
    grad = -y * share
    return grad, -grad


def _margin_ranking_math(ops, p):
    x1, x2, y = ops
    return sympy.Max(-y * (x1 - x2) + sympy.Rational(p["margin"]), 0)


MARGIN_RANKING = ElementLoss(_margin_ranking_math, _margin_ranking_forward, _margin_ranking_backward)


def _hinge_forward(F, ops, p):
    """where(target != 1, (margin - self).clamp_min_(0), 0) + where(target != -1, self, 0), target ±1."""
    x, y = ops
    return x if y > 0 else difference(F, arb(p["margin"]), x).max(ZERO)


def _hinge_backward(F, ops, g, mean_of, p):
    """The sum's backward to both where's: the self branch passes grad where target is 1; the margin branch
    where target is -1, through clamp_min's where(z >= 0, grad, 0) and the difference's -grad (the other
    branch's zero adds exactly)."""
    x, y = ops
    share = mean_gradient(F, g, mean_of)
    if y > 0:
        return (share,)
    return (-share if ramp_passes(F, difference(F, arb(p["margin"]), x)) else ZERO,)


def _hinge_math(ops, p):
    x, y = ops
    return x if y > 0 else sympy.Max(sympy.Rational(p["margin"]) - x, 0)


HINGE_EMBEDDING = ElementLoss(_hinge_math, _hinge_forward, _hinge_backward)

def _gaussian_nll_forward(F, ops, p):
    """0.5 * (log(var) + (input - target) ** 2 / var), one kernel each (the 0.5 exact; var above eps, unclamped)."""
    x, t, v = ops
    d = difference(F, x, t)
    return HALF * F.add(_log(F, v), F.div(mul(F, d, d), v))


def _gaussian_nll_backward(F, ops, g, mean_of, p):
    """Autograd through the composite: the reduction's, the 0.5 (exact), the division's grad / var, the square's
    (pow_backward) grad * (2 * d) (2 * d exact), the difference's +/-."""
    x, t, v = ops
    share = HALF * mean_gradient(F, g, mean_of)
    grad = mul(F, F.div(share, v), 2 * difference(F, x, t))
    return grad, -grad


def _variances(shape: tuple[int, ...]) -> list[Labels]:
    """Positive variances (above gaussian_nll_loss's eps, so unclamped): all 1, and 0.5 and 2 alternating."""
    size = int(np.prod(shape, dtype=int))
    alternating = np.where(np.arange(size) % 2 == 0, 0.5, 2.0).reshape(shape)
    return [Labels(_nested(np.ones(shape))), Labels(_nested(alternating))]


GAUSSIAN_NLL = ElementLoss(lambda ops, p: (sympy.log(ops[2]) + (ops[0] - ops[1]) ** 2 / ops[2]) / 2,
                           _gaussian_nll_forward, _gaussian_nll_backward)

BCE_EPS = 1e-12  # binary_cross_entropy_backward's clamp of (1 - p) * p, cast to the dtype


BCE_LOG_FLOOR = -100  # binary_cross_entropy's clamp of each log


def _clamped_log(G, v: arb) -> arb:
    """max(log(v), -100): v may reach 0 where the sigmoid saturates to 1 in the dtype (float16: sigmoid(23.6))."""
    floor = arb(BCE_LOG_FLOOR)
    if v > floor.exp():
        return _log(G, v)
    if not v.upper() > floor.exp():
        return floor
    return floor.union(_log(G, arb(v.upper())))  # log is increasing: between the floor and log(v's top)


def _bce_forward(F, ops, p):
    """p = torch.sigmoid(input) (the op table's sigmoid), then binary_cross_entropy's kernel: (target - 1) *
    max(log(1 - p), -100) - target * max(log(p), -100)."""
    x, t = ops
    q = OPS["sigmoid"].forward(F, x)

    def kernel(G):
        return G.sub(mul(G, G.sub(t, ONE), _clamped_log(G, G.sub(ONE, q))), mul(G, t, _clamped_log(G, q)))
    return either_precision(F, kernel)


def _bce_backward(F, ops, g, mean_of, p):
    """binary_cross_entropy_backward's kernel: grad * (p - target) / max((1 - p) * p, 1e-12), then / N ('mean');
    then sigmoid's backward (the op table's)."""
    x, t = ops
    q = OPS["sigmoid"].forward(F, x)

    def kernel(G):
        denominator = mul(G, G.sub(ONE, q), q)
        if not denominator > arb(BCE_EPS):
            raise guarded_by_eps(G, BCE_EPS, "binary_cross_entropy's (1 - p) * p")
        return G.div(mul(G, g, G.sub(q, t)), denominator)
    through_loss = either_precision(F, kernel)
    if mean_of is not None:
        through_loss = F.div(through_loss, arb(mean_of))
    return (mul(F, through_loss, OPS["sigmoid"].local_grads(F, (x,), q)[0]),)


def _bce_math(ops, p):
    x, t = ops
    q = 1 / (1 + sympy.exp(-x))
    return -(t * sympy.log(q) + (1 - t) * sympy.log(1 - q))


BCE = ElementLoss(_bce_math, _bce_forward, _bce_backward)


def _probabilities(shape: tuple[int, ...]) -> list[Labels]:
    """Targets in [0, 1], exact in every dtype: all 1/2, and 0, 1, 1/4 in turn."""
    size = int(np.prod(shape, dtype=int))
    cycle = np.array([0.0, 1.0, 0.25])[np.arange(size) % 3].reshape(shape)
    return [Labels(_nested(np.full(shape, 0.5))), Labels(_nested(cycle))]


def _bce_spellings() -> list[TSpelling]:
    """binary_cross_entropy of torch.sigmoid(x) (its input must lie in [0, 1]) and a target parameter."""
    def texts(t, p):
        return f"torch.sigmoid({t[0]}), {t[0]}.new_tensor({p['target']!r})"

    def tensors(a, p):
        return torch.sigmoid(a[0]), a[0].new_tensor(p["target"].array.tolist())

    return [
        TSpelling(lambda t, p: f"torch.nn.functional.binary_cross_entropy({texts(t, p)}, reduction={p['reduction']!r})",
                  lambda a, p: torch.nn.functional.binary_cross_entropy(*tensors(a, p), reduction=p["reduction"])),
        TSpelling(lambda t, p: f"torch.nn.functional.binary_cross_entropy({texts(t, p)})",
                  lambda a, p: torch.nn.functional.binary_cross_entropy(*tensors(a, p)),
                  lambda shapes, p: p["reduction"] == "mean"),
        TSpelling(lambda t, p: f"torch.nn.BCELoss(reduction={p['reduction']!r})({texts(t, p)})",
                  lambda a, p: torch.nn.BCELoss(reduction=p["reduction"])(*tensors(a, p))),
    ]

_MEAN = {"reduction": "mean"}
RAMP_TIES = ("where the clamped margin term is exactly 0 torch passes the whole gradient (clamp_min's z >= 0), not "
              "the minimum-norm subgradient 0: unverified there, pinned")
_BETAS = (1.0, 0.5, 2.0)  # powers of two: torch's beta and delta are exact in every dtype

for _op in [
    loss_op("mse_loss", MSE, functional("mse_loss", 2, defaults=_MEAN) + [module("MSELoss", 2)],
            reductions(), ["nn.functional.mse_loss"], 2),
    loss_op("l1_loss", L1, functional("l1_loss", 2, defaults=_MEAN) + [module("L1Loss", 2)],
            reductions(), ["nn.functional.l1_loss"], 2,
            ties="at input == target the gradient is 0 (sgn(0), the minimum-norm subgradient)", pinned_as=("l1_loss",)),
    loss_op("smooth_l1_loss", SMOOTH_L1,
            functional("smooth_l1_loss", 2, defaults={"reduction": "mean", "beta": 1.0}) + [module("SmoothL1Loss", 2)],
            reductions(beta=_BETAS), ["nn.functional.smooth_l1_loss"], 2),
    loss_op("huber_loss", HUBER,
            functional("huber_loss", 2, defaults={"reduction": "mean", "delta": 1.0}) + [module("HuberLoss", 2)],
            reductions(delta=_BETAS), ["nn.functional.huber_loss"], 2),
    loss_op("soft_margin_loss", SOFT_MARGIN,
            functional("soft_margin_loss", 1, ("target",), defaults=_MEAN) + [module("SoftMarginLoss", 1, ("target",))],
            with_labels(reductions()), ["nn.functional.soft_margin_loss"], 1, constants=("target",)),
    loss_op("margin_ranking_loss", MARGIN_RANKING,
            functional("margin_ranking_loss", 2, ("target",), defaults={"reduction": "mean", "margin": 0.0})
            + [module("MarginRankingLoss", 2, ("target",))],
            with_labels(reductions(margin=(0.5, 0.0, 1.0))), ["nn.functional.margin_ranking_loss"], 2,
            constants=("target",), ties=RAMP_TIES, pinned_as=("margin_ranking_loss",)),
    loss_op("hinge_embedding_loss", HINGE_EMBEDDING,
            functional("hinge_embedding_loss", 1, ("target",), defaults={"reduction": "mean", "margin": 1.0})
            + [module("HingeEmbeddingLoss", 1, ("target",))],
            with_labels(reductions(margin=(1.0, 0.5, 2.0))), ["nn.functional.hinge_embedding_loss"], 1,
            constants=("target",), ties=RAMP_TIES, pinned_as=("hinge_embedding_loss",)),
    loss_op("gaussian_nll_loss", GAUSSIAN_NLL,
            functional("gaussian_nll_loss", 2, ("var",), defaults=_MEAN) + [module("GaussianNLLLoss", 2, ("var",))],
            lambda shape: [CallParams(o.items + (("var", v),)) for o in reductions()(shape) for v in _variances(shape)],
            ["nn.functional.gaussian_nll_loss"], 2, constants=("var",)),
    loss_op("binary_cross_entropy", BCE, _bce_spellings(),
            lambda shape: [CallParams(o.items + (("target", t),)) for o in reductions()(shape)
                           for t in _probabilities(shape)],
            ["nn.functional.binary_cross_entropy"], 1, constants=("target",)),
    loss_op("binary_cross_entropy_with_logits", BCE_LOGITS,
            functional("binary_cross_entropy_with_logits", 2, defaults=_MEAN) + [module("BCEWithLogitsLoss", 2)],
            reductions(), ["nn.functional.binary_cross_entropy_with_logits"], 2),
    loss_op("poisson_nll_loss", POISSON_NLL,
            functional("poisson_nll_loss", 2, defaults=_MEAN) + [module("PoissonNLLLoss", 2)],
            reductions(), ["nn.functional.poisson_nll_loss"], 2),
    loss_op("kl_div_log_target", KL_DIV_LOG, functional("kl_div", 2) + [module("KLDivLoss", 2)],
            lambda shape: [_params(reduction=r, log_target=True) for r in ("batchmean", "sum", "none")],
            ["nn.functional.kl_div"], 2),
]:
    TENSOR_OPS[_op.name] = _op
    NAMES.append(_op.name)
