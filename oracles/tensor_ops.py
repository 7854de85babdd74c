"""The tensor-op table: ops whose Jacobian is not diagonal, one entry each (issue 6, part 3).

An entry says, like an entry of oracles.ops:
- how torch users write it (`spellings`: source text and the call, from the op's parameters);
- what it is mathematically, per element (`sympy`: numpy object arrays of SymPy expressions in, out), from
  which SymPy derives the exact Jacobian for the shape at hand (oracles.tensor_oracle);
- how torch computes it and its backward (`forward`, `backward`: numpy object arrays of balls, every float
  operation rounded by the `RoundingModel`), after torch's formulas (tools/autograd/derivatives.yaml and
  FunctionsManual.cpp, cited per op);
- which parameters it takes for a given input shape (`params`: a Hypothesis strategy, valid by construction).
Views (transpose, reshape, expand, indexing) copy elements; one entry gives their index map, from which the
forward (a copy), the backward (a scatter-add: repeated indices and expanded dims sum) and the SymPy side
all follow.

Adding an op is one entry in `TENSOR_OPS` below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch
from flint import arb
from hypothesis import strategies as st

from oracles.rounding import RoundingModel, Singular

ZERO = arb(0)

# Accuracy of the exp/log inside softmax, log_softmax and logsumexp, in half-ulps: their CPU kernels use
# SLEEF's vectorised exp (1 ulp; some torch versions a faster 2-ulp variant) and log; 4 ulps is a margin
# that holds for both and for CUDA's expf/logf (2 ulp).
K_EXP = 8
K_LOG = 8


@dataclass(frozen=True)
class Params:
    """An op's parameters. `dim` None reduces over everything; `index` is a view's index spec."""

    dim: int | None = None
    keepdim: bool = False
    shape: tuple[int, ...] | None = None
    dims: tuple[int, int] | None = None  # transpose
    index: tuple | None = None  # ("select", dim, i) | ("slice", dim, start, stop, step) | ("take", dim, idx)


@dataclass(frozen=True)
class TSpelling:
    render: Callable[[Sequence[str], Params], str]  # argument source texts (atomic) -> source
    call: Callable[[Sequence[torch.Tensor], Params], torch.Tensor]
    applies: Callable[[tuple[tuple[int, ...], ...], Params], bool] = lambda shapes, p: True
    atomic: bool = True  # False for an operator spelling (`a @ b`), which needs parentheses inside others


@dataclass(frozen=True)
class TensorOp:
    name: str
    arity: int
    spellings: tuple[TSpelling, ...]
    sympy: Callable  # (arrays of SymPy, Params) -> array of SymPy
    forward: Callable  # (RoundingModel, arrays of balls, Params) -> array of balls
    backward: Callable  # (RoundingModel, arrays of balls, output balls, grad balls, Params) -> grads per argument
    params: Callable  # (input shapes) -> strategy of Params
    ties: str = ""  # torch's rule where the op is not differentiable (documented in the generated table)
    zero_rule: str = ""

    def out_shape(self, shapes: tuple[tuple[int, ...], ...], p: Params) -> tuple[int, ...]:
        placeholders = [np.zeros(s, dtype=object) for s in shapes]
        return tuple(np.asarray(self.sympy(placeholders, p), dtype=object).shape)

    def spellings_for(self, shapes, p: Params) -> list[int]:
        return [i for i, s in enumerate(self.spellings) if s.applies(shapes, p)]


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


def reduced_shape(shape, p: Params) -> tuple[int, ...]:
    if p.dim is None:
        return tuple(1 for _ in shape) if p.keepdim else ()
    dim = p.dim % len(shape)
    return tuple(1 if d == dim else n for d, n in enumerate(shape)) if p.keepdim else \
        tuple(n for d, n in enumerate(shape) if d != dim)


def _out_index(kept: tuple[int, ...], shape, p: Params) -> tuple[int, ...]:
    """Index into the (maybe squeezed) reduction output from the keepdim index of the slice."""
    if p.keepdim:
        return kept
    if p.dim is None:
        return ()
    dim = p.dim % len(shape)
    return kept[:dim] + kept[dim + 1:]


def reduction(per_slice: Callable) -> Callable:
    """A reduction's math or forward from a function of one slice's element list."""

    def apply(*args):
        *head, arrays, p = args
        a = arrays[0]
        out = _obj(reduced_shape(a.shape, p))
        for members, kept in slices(a.shape, p.dim):
            out[_out_index(kept, a.shape, p)] = per_slice(*head, [a[m] for m in members])
        return out

    return apply


def reduction_backward(per_slice: Callable) -> Callable:
    """A reduction's backward from (F, slice values, slice result, slice grad) -> grads of the slice."""

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        result = _obj(a.shape)
        for members, kept in slices(a.shape, p.dim):
            index = _out_index(kept, a.shape, p)
            grads = per_slice(F, [a[m] for m in members], out[index], grad[index])
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
            for m, v in zip(members, per_slice(*head, [a[m] for m in members])):
                out[m] = v
        return out

    return apply


def dimwise_backward(per_slice: Callable) -> Callable:
    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        result = _obj(a.shape)
        for members, _ in slices(a.shape, p.dim):
            grads = per_slice(F, [a[m] for m in members], [out[m] for m in members], [grad[m] for m in members])
            for m, g in zip(members, grads):
                result[m] = g
        return (result,)

    return backward


# ------------------------------------------------------------------ rounding-model helpers
def product(F: RoundingModel, values: list[arb]) -> arb:
    """A product of n factors in any order: n - 1 roundings, each by u of the result (relative errors
    compose), plus underflow: an intermediate product may lose η, scaled by the factors after it."""
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
    return F.in_range(exact + arb(0, k * (F.u * exact.abs_upper() + F.eta * scale)))


def _is_zero(value: arb) -> bool:
    return value.is_exact() and value.is_zero()


def mul(F: RoundingModel, a: arb, b: arb) -> arb:
    """a * b, exactly 0 when a factor is exactly 0 (IEEE: 0 times a finite float is ±0, no rounding), so
    zeros stay decidable (the norm of a zero slice, prod's zero path)."""
    if _is_zero(a) or _is_zero(b):
        return ZERO
    return F.mul(a, b)


def sum_any(F: RoundingModel, values: list[arb]) -> arb:
    """Sum in any order; exact zeros are left out (adding an exact 0 is exact)."""
    terms = [v for v in values if not (v.is_exact() and v.is_zero())]
    if not terms:
        return ZERO
    return F.sum(terms)


def maximum(values: list[arb]) -> tuple[arb, list[int]]:
    """The largest value and the positions torch sees as equal to it. Exact equal balls tie (torch compares
    the same floats); balls that may or may not be the largest leave the point undecidable."""
    best = max(range(len(values)), key=lambda i: values[i].upper())
    top = values[best]
    ties = []
    for i, v in enumerate(values):
        if i == best or v < top:
            if i == best:
                ties.append(i)
            continue
        if v.is_exact() and top.is_exact() and v == top:
            ties.append(i)
            continue
        raise Singular("the maximum may tie within the rounding model")
    return top, ties


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
def _sum_backward(F, a, y, g):
    return [g] * len(a)  # sum_backward: grad expanded, an exact copy


def _mean_forward(F, a):
    return F.div(F.sum(a), arb(len(a)))  # at::mean = sum(...).div_(n)


def _mean_backward(F, a, y, g):
    return [F.div(g, arb(len(a)))] * len(a)  # mean_backward: sum_backward(grad, ...).div_(n)


def _prod_backward(F, a, y, g):
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


def _amax_backward(F, a, y, g):
    """scale_grad_by_count: (grad / count) * (input == result): ties share the gradient evenly."""
    _, ties = maximum(a)
    share = g if len(ties) == 1 else F.div(g, arb(len(ties)))
    return [share if i in ties else ZERO for i in range(len(a))]


def _logsumexp_forward(F, a):
    """logsumexp_out_impl: m = amax; log(sum(exp(x - m))) + m."""
    m = hull_maximum(a)
    s = F.sum([_exp(F, F.sub(v, m)) for v in a])
    return F.add(_log(F, s), m)


def _logsumexp_backward(F, a, y, g):
    return [mul(F, g, _exp(F, F.sub(v, y))) for v in a]  # logsumexp_backward: grad * (self - result).exp()


def _norm_forward(F, a):
    s = sum_any(F, [mul(F, v, v) for v in a])
    if s.is_exact() and s.is_zero():
        return ZERO
    if not s > 0:
        raise Singular("the norm may be 0 within the rounding model")
    return F.round(s.sqrt(), 1)


def _norm_backward(F, a, y, g):
    """norm_backward, p = 2: self * (grad / norm).masked_fill_(norm == 0, 0)."""
    if y.is_exact() and y.is_zero():
        return [ZERO] * len(a)
    if y.contains(0):
        raise Singular("the norm may be 0 within the rounding model")
    scale = F.div(g, y)
    return [mul(F, v, scale) for v in a]


# ------------------------------------------------------------------ cumulative ops and softmax
def _prefix_sums(F, a):
    return [sum_any(F, a[:i + 1]) for i in range(len(a))]


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


def _cumsum_backward(F, a, y, g):
    return [g[0]] if len(a) == 1 else _reversed_cumsum(F, g)  # cumsum_backward


def _prefix_products(F, a):
    return [product(F, a[:i + 1]) for i in range(len(a))]


def _cumprod_backward(F, a, y, g):
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


def _softmax_forward(F, a):
    """exp(x - max) / sum: the CPU kernel multiplies by 1 / sum (two roundings) or divides (one)."""
    m = hull_maximum(a)
    e = [_exp(F, F.sub(v, m)) for v in a]
    s = F.sum(e)
    return [F.round(v / s, 2) for v in e]


def _softmax_backward(F, a, y, g):
    """_softmax_backward_data: output * (grad - sum(grad * output))."""
    s = sum_any(F, [mul(F, gj, yj) for gj, yj in zip(g, y)])
    return [mul(F, yi, F.sub(gi, s)) for yi, gi in zip(y, g)]


def _log_softmax_forward(F, a):
    """x - max - log(sum(exp(x - max))), associated either way: (x - max) - lse or x - (max + lse)."""
    m = hull_maximum(a)
    s = F.sum([_exp(F, F.sub(v, m)) for v in a])
    lse = _log(F, s)
    return [F.round(v - m - lse, 2, arb(v.abs_upper()) + m.abs_upper() + lse.abs_upper()) for v in a]


def _log_softmax_backward(F, a, y, g):
    """_log_softmax_backward_data: grad - exp(output) * sum(grad)."""
    s = sum_any(F, list(g))
    return [F.sub(gi, mul(F, _exp(F, yi), s)) for gi, yi in zip(g, y)]


# ------------------------------------------------------------------ the SymPy side
def _sym_softmax(a):
    e = [sympy.exp(v) for v in a]
    total = sympy.Add(*e)
    return [v / total for v in e]


def _sym_log_softmax(a):
    lse = sympy.log(sympy.Add(*(sympy.exp(v) for v in a)))
    return [v - lse for v in a]


def _sym_cumprod(a):
    return [sympy.Mul(*a[:i + 1]) for i in range(len(a))]


# ------------------------------------------------------------------ matmul
def _sym_matmul(arrays, p):
    a, b = arrays
    out = np.matmul(a, b) if a.ndim and b.ndim and not (a.ndim == 1 and b.ndim == 1) else None
    if out is None:  # 1-D @ 1-D: a 0-d dot product
        return np.array(sympy.Add(*(x * y for x, y in zip(a, b))), dtype=object)
    return np.asarray(out, dtype=object)


def _as_matrices(a, b):
    """matmul's 1-D operands as a row (left) or a column (right), as torch documents."""
    return (a.reshape(1, -1) if a.ndim == 1 else a), (b.reshape(-1, 1) if b.ndim == 1 else b)


def _matmul_forward(F, arrays, p):
    a, b = arrays
    A, B = _as_matrices(a, b)
    out = _obj((A.shape[0], B.shape[1]))
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            out[i, j] = sum_any(F, [mul(F, A[i, k], B[k, j]) for k in range(A.shape[1])])
    return out.reshape(_matmul_out(a.shape, b.shape))


def _matmul_out(sa, sb):
    if len(sa) == 1 and len(sb) == 1:
        return ()
    if len(sa) == 1:
        return (sb[1],)
    if len(sb) == 1:
        return (sa[0],)
    return (sa[0], sb[1])


def _matmul_backward(F, arrays, out, grad, p):
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


# ------------------------------------------------------------------ views
def view(index_map: Callable[[np.ndarray, Params], np.ndarray]):
    """forward, backward and SymPy of a view from `index_map` (numpy array -> the same view of it)."""

    def sympy_side(arrays, p):
        return np.asarray(index_map(arrays[0], p), dtype=object)

    def forward(F, arrays, p):
        return np.asarray(index_map(arrays[0], p), dtype=object)

    def backward(F, arrays, out, grad, p):
        a = arrays[0]
        sources = np.asarray(index_map(np.arange(a.size).reshape(a.shape), p))
        collected: list[list[arb]] = [[] for _ in range(a.size)]
        for o in np.ndindex(*sources.shape):
            collected[int(sources[o])].append(grad[o])
        grads = _obj(a.shape)  # index_put_(accumulate=True) / sum_to_size: repeats and expanded dims add up
        for flat, index in enumerate(np.ndindex(*a.shape)):
            grads[index] = sum_any(F, collected[flat])
        return (grads,)

    return sympy_side, forward, backward


def _numpy_index(spec: tuple):
    kind, dim = spec[0], spec[1]
    if kind == "select":
        item = spec[2]
    elif kind == "slice":
        item = slice(*spec[2:])
    else:
        item = list(spec[2])
    return (slice(None),) * dim + (item,)


def _index_text(spec: tuple) -> str:
    kind, dim = spec[0], spec[1]
    if kind == "select":
        item = str(spec[2])
    elif kind == "slice":
        start, stop, step = spec[2:]
        item = f"{'' if start is None else start}:{'' if stop is None else stop}" + ("" if step is None else f":{step}")
    else:
        item = "[" + ", ".join(map(str, spec[2])) + "]"
    return ", ".join([":"] * dim + [item])


def _expand(a, p):
    return np.broadcast_to(a, p.shape)


# ------------------------------------------------------------------ parameter strategies
def _dims(shape, allow_none: bool):
    if not shape:
        return st.just(None) if allow_none else st.nothing()
    rank = len(shape)
    ints = st.integers(-rank, rank - 1)
    return st.one_of(st.just(None), ints) if allow_none else ints


def reduce_params(allow_none: bool = True, keepdim_without_dim: bool = True):
    """dim (None: everything, where the op allows it) and keepdim; `keepdim_without_dim` False where torch
    has no full reduction with keepdim (prod)."""
    def strategy(shapes):
        return _dims(shapes[0], allow_none).flatmap(
            lambda dim: st.builds(Params, dim=st.just(dim),
                                  keepdim=st.booleans() if dim is not None or keepdim_without_dim else st.just(False)))
    return strategy


def dim_params(shapes):
    return st.builds(Params, dim=_dims(shapes[0], False))


def _factorizations(n: int) -> list[tuple[int, ...]]:
    out = [(n,), (1, n), (n, 1)]
    out += [(d, n // d) for d in range(2, n) if n % d == 0]
    return out


def reshape_params(shapes):
    n = math.prod(shapes[0])
    return st.sampled_from(_factorizations(n)).map(lambda s: Params(shape=s))


def transpose_params(shapes):
    rank = len(shapes[0])
    return st.sampled_from([(0, 1), (1, 0), (-1, -2)] if rank >= 2 else [(0, 0)]).map(lambda d: Params(dims=d))


def expand_params(shapes):
    shape = shapes[0]
    return st.tuples(st.sampled_from([(), (2,)]), st.lists(st.sampled_from([2, 3]), min_size=len(shape),
                                                          max_size=len(shape))).map(
        lambda lead_sizes: Params(shape=lead_sizes[0] + tuple(s if n == 1 else n for n, s in
                                                               zip(shape, lead_sizes[1]))))


@st.composite
def _index_spec(draw, shapes):
    shape = shapes[0]
    dim = draw(st.integers(0, len(shape) - 1), label="index dim")
    n = shape[dim]
    kind = draw(st.sampled_from(["take", "select", "slice"]), label="index kind")
    if kind == "select":
        return Params(index=("select", dim, draw(st.integers(-n, n - 1), label="index")))
    if kind == "slice":
        start = draw(st.sampled_from([None, 0] + ([1] if n > 1 else [])), label="start")
        step = draw(st.sampled_from([None, 2]), label="step")
        return Params(index=("slice", dim, start, None, step))
    # advanced indexing with repeats: its backward accumulates (index_put_ with accumulate=True)
    idx = tuple(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4), label="indices"))
    return Params(index=("take", dim, idx))


def index_params(shapes):
    return _index_spec(shapes)


# ------------------------------------------------------------------ spellings
def _keep(p: Params) -> str:
    return f", keepdim={p.keepdim}" if p.keepdim else ""


def _reduce_spellings(name: str, function, method_name: str, dim_required: bool = False, none_dim: bool = True):
    """torch.<name>(x, dim=d, keepdim=k) (`none_dim`: d may be None) and x.<name>(d, keepdim=k); without a
    dim, torch.<name>(x), x.<name>()."""
    method = getattr(torch.Tensor, method_name)

    def with_dim(p):
        return p.dim is not None

    def function_applies(s, p):
        return p.dim is not None or none_dim

    with_dims = (
        TSpelling(lambda a, p: f"torch.{name}({a[0]}, dim={p.dim}{_keep(p)})",
                  lambda a, p: function(a[0], dim=p.dim, keepdim=p.keepdim), function_applies),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}({p.dim}{_keep(p)})",
                  lambda a, p: method(a[0], p.dim, keepdim=p.keepdim), lambda s, p: with_dim(p)),
    )
    if dim_required:
        return with_dims

    def everything(s, p):
        return p.dim is None and not p.keepdim

    return with_dims + (
        TSpelling(lambda a, p: f"torch.{name}({a[0]})", lambda a, p: function(a[0]), everything),
        TSpelling(lambda a, p: f"{a[0]}.{method_name}()", lambda a, p: method(a[0]), everything),
    )


def _dim_spellings(name: str, functions: Sequence[tuple[str, Callable]]):
    out = [TSpelling(lambda a, p, text=text: f"{text}({a[0]}, dim={p.dim})",
                     lambda a, p, f=f: f(a[0], dim=p.dim)) for text, f in functions]
    method = getattr(torch.Tensor, name)
    out.append(TSpelling(lambda a, p: f"{a[0]}.{name}({p.dim})", lambda a, p: method(a[0], p.dim)))
    return tuple(out)


def _norm_spellings():
    def with_dim(p):
        return p.dim is not None

    return (
        TSpelling(lambda a, p: f"torch.linalg.vector_norm({a[0]}, dim={p.dim}{_keep(p)})",
                  lambda a, p: torch.linalg.vector_norm(a[0], dim=p.dim, keepdim=p.keepdim)),
        TSpelling(lambda a, p: f"{a[0]}.norm(dim={p.dim}{_keep(p)})",
                  lambda a, p: a[0].norm(dim=p.dim, keepdim=p.keepdim), lambda s, p: with_dim(p)),
        TSpelling(lambda a, p: f"torch.norm({a[0]})", lambda a, p: torch.norm(a[0]),
                  lambda s, p: p.dim is None and not p.keepdim),
    )


def _is_2d(shapes, p):
    return all(len(s) == 2 for s in shapes)


_matmul_spellings = (
    TSpelling(lambda a, p: f"torch.matmul({a[0]}, {a[1]})", lambda a, p: torch.matmul(a[0], a[1])),
    TSpelling(lambda a, p: f"{a[0]} @ {a[1]}", lambda a, p: a[0] @ a[1], atomic=False),
    TSpelling(lambda a, p: f"{a[0]}.mm({a[1]})", lambda a, p: a[0].mm(a[1]), _is_2d),
    TSpelling(lambda a, p: f"torch.mv({a[0]}, {a[1]})", lambda a, p: torch.mv(a[0], a[1]),
              lambda s, p: len(s[0]) == 2 and len(s[1]) == 1),
    TSpelling(lambda a, p: f"torch.dot({a[0]}, {a[1]})", lambda a, p: torch.dot(a[0], a[1]),
              lambda s, p: len(s[0]) == 1 and len(s[1]) == 1),
)


def _t_applies(shapes, p):
    return len(shapes[0]) == 2 and p.dims in ((0, 1), (1, 0))


_transpose_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.transpose({p.dims[0]}, {p.dims[1]})",
              lambda a, p: a[0].transpose(*p.dims)),
    TSpelling(lambda a, p: f"torch.transpose({a[0]}, {p.dims[0]}, {p.dims[1]})",
              lambda a, p: torch.transpose(a[0], *p.dims)),
    TSpelling(lambda a, p: f"{a[0]}.T", lambda a, p: a[0].T, _t_applies),
)

_reshape_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.reshape({p.shape})", lambda a, p: a[0].reshape(p.shape)),
    TSpelling(lambda a, p: f"torch.reshape({a[0]}, {p.shape})", lambda a, p: torch.reshape(a[0], p.shape)),
    TSpelling(lambda a, p: f"{a[0]}.flatten()", lambda a, p: a[0].flatten(), lambda s, p: len(p.shape) == 1),
)

_expand_spellings = (
    TSpelling(lambda a, p: f"{a[0]}.expand({p.shape})", lambda a, p: a[0].expand(p.shape)),
    TSpelling(lambda a, p: f"torch.broadcast_to({a[0]}, {p.shape})", lambda a, p: torch.broadcast_to(a[0], p.shape)),
)

_index_spellings = (
    TSpelling(lambda a, p: f"{a[0]}[{_index_text(p.index)}]", lambda a, p: a[0][_numpy_index(p.index)]),
)


# ------------------------------------------------------------------ the table
def _entry(name, arity, spellings, sympy_fn, forward, backward, params, **kw):
    return TensorOp(name, arity, tuple(spellings), sympy_fn, forward, backward, params, **kw)


def _transpose(a, p):
    return np.swapaxes(a, *p.dims)


_VIEWS = {
    "transpose": (view(_transpose), _transpose_spellings, transpose_params),
    "reshape": (view(lambda a, p: a.reshape(p.shape)), _reshape_spellings, reshape_params),
    "expand": (view(_expand), _expand_spellings, expand_params),
    "index": (view(lambda a, p: a[_numpy_index(p.index)]), _index_spellings, index_params),
}

TENSOR_OPS: dict[str, TensorOp] = {
    op.name: op for op in [
        _entry("sum", 1, _reduce_spellings("sum", torch.sum, "sum"), reduction(lambda a: sympy.Add(*a)),
               reduction(sum_any), reduction_backward(_sum_backward), reduce_params()),
        _entry("mean", 1, _reduce_spellings("mean", torch.mean, "mean"),
               reduction(lambda a: sympy.Add(*a) / len(a)), reduction(_mean_forward),
               reduction_backward(_mean_backward), reduce_params()),
        _entry("prod", 1, _reduce_spellings("prod", torch.prod, "prod", none_dim=False),
               reduction(lambda a: sympy.Mul(*a)),
               reduction(product), reduction_backward(_prod_backward), reduce_params(keepdim_without_dim=False),
               zero_rule="the product of the other factors (prod_safe_zeros_backward)"),
        _entry("amax", 1, _reduce_spellings("amax", torch.amax, "amax"), reduction(lambda a: sympy.Max(*a)),
               reduction(lambda F, a: maximum(a)[0]), reduction_backward(_amax_backward), reduce_params(),
               ties="ties share the gradient evenly (the minimum-norm subgradient)"),
        _entry("logsumexp", 1, _reduce_spellings("logsumexp", torch.logsumexp, "logsumexp", dim_required=True,
                                                  none_dim=False),
               reduction(lambda a: sympy.log(sympy.Add(*(sympy.exp(v) for v in a)))),
               reduction(_logsumexp_forward), reduction_backward(_logsumexp_backward), reduce_params(False)),
        _entry("norm", 1, _norm_spellings(), reduction(lambda a: sympy.sqrt(sympy.Add(*(v**2 for v in a)))),
               reduction(_norm_forward), reduction_backward(_norm_backward), reduce_params(),
               ties="at a zero vector the gradient is 0 (the minimum-norm subgradient)"),
        _entry("cumsum", 1, _dim_spellings("cumsum", [("torch.cumsum", torch.cumsum)]),
               dimwise(lambda a: [sympy.Add(*a[:i + 1]) for i in range(len(a))]), dimwise(_prefix_sums),
               dimwise_backward(_cumsum_backward), dim_params),
        _entry("cumprod", 1, _dim_spellings("cumprod", [("torch.cumprod", torch.cumprod)]), dimwise(_sym_cumprod),
               dimwise(_prefix_products), dimwise_backward(_cumprod_backward), dim_params,
               zero_rule="cumprod_backward's first-zero formula"),
        _entry("softmax", 1, _dim_spellings("softmax", [("torch.softmax", torch.softmax),
                                                        ("torch.nn.functional.softmax", torch.nn.functional.softmax)]),
               dimwise(_sym_softmax), dimwise(_softmax_forward), dimwise_backward(_softmax_backward), dim_params),
        _entry("log_softmax", 1, _dim_spellings("log_softmax", [
            ("torch.log_softmax", torch.log_softmax), ("torch.nn.functional.log_softmax",
                                                       torch.nn.functional.log_softmax)]),
               dimwise(_sym_log_softmax), dimwise(_log_softmax_forward), dimwise_backward(_log_softmax_backward),
               dim_params),
        _entry("matmul", 2, _matmul_spellings, _sym_matmul, _matmul_forward, _matmul_backward,
               lambda shapes: st.just(Params())),
        *(_entry(name, 1, spellings, *functions, params) for name, (functions, spellings, params) in _VIEWS.items()),
    ]
}

REDUCTIONS = ("sum", "mean", "prod", "amax", "logsumexp", "norm")
DIMWISE = ("cumsum", "cumprod", "softmax", "log_softmax")
VIEWS = tuple(_VIEWS)
