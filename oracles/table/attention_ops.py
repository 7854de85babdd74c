"""scaled_dot_product_attention(q, k, v): softmax(scale · q kᵀ + mask) v over the last two dims, dropout_p 0.

torch's CPU dispatcher picks the kernel by layout (measured in every dtype): batched (B, H, L, E) inputs of one
head size take the flash-attention kernel, 2-D inputs (or head sizes that differ) the math path. Both are drawn:
(L, E) matrices, and the same batched (1, 1, L, E).

The math path (_scaled_dot_product_attention_math; the graph is mul, bmm, add, _safe_softmax, bmm) converts
bfloat16 and float16 inputs (and a float mask) to float first and the result back at the end: every operation is
in float there (`F.opmath`), the output and each gradient rounded to the dtype once (`F.store`). The scale,
1 / sqrt(E) unless given, is split as s = sqrt(|scale|) in double and multiplied into both sides, q · (±s) and
k · s (the sign on q's side), each a Python scalar the kernel rounds to its float type. A boolean mask (and
is_causal's lower triangle) becomes an additive 0 / -inf: a masked score is -inf, its softmax weight exactly 0;
a float mask is added (one rounding). Backward: derivatives.yaml's rules for each of those ops, bmm's two
products, _safe_softmax's _softmax_backward_data (output * (grad - sum(grad * output))), the scalar products.

The flash kernel (aten/src/ATen/native/cpu/FlashAttentionKernel.cpp; one block for the suite's sizes) computes
in the dtype's accumulation type: the scale once, q kᵀ then · scale (+ mask), exp(s - max) and their sum, the
exponentials stored in the dtype (bfloat16, float16) for the product with v, dst · (1 / sum); it saves
logsumexp = max + log(sum). Its backward recomputes the weights as exp(scale q kᵀ (+ mask) - logsumexp) and takes
dsum = rowsum(grad · out) from the stored output, not from the weights (sections below). Rows shorter than a
vector (the suite's at most 3 keys) run the kernels' scalar exp.

Rows masked entirely are not drawn: _safe_softmax's 0 there replaces softmax's 0/0, no function of the inputs.
The flash kernel with is_causal and a scale <= 0 is wrong (findings.toml: sdpa-flash-causal-scale-not-positive):
the options never combine them, tests/test_attention_ops.py pins it.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
import torch
from flint import arb

from oracles.table import tensor_formulas as formula
from oracles.table.loss_ops import Labels
from oracles.table.shape_ops import Mask, _params, _spelling, _with
from oracles.table.tensor_formulas import ZERO, fused_sum, mul
from oracles.table.tensor_ops import TENSOR_OPS, OptionSpace, TensorOp, TSpelling

NAMES = ["scaled_dot_product_attention"]  # the entries this module adds to TENSOR_OPS (their forwards round)

# sqrt(E), its reciprocal and the square root of that, each a correctly rounded double operation: the double
# s errs by at most 2 u64 relative (halved through the square root), 3 leaves a margin
DOUBLE_SCALE_ROUNDINGS = 3
U64 = arb(2) ** -53


def _scale(p, head_dim: int) -> sympy.Expr:
    """The scale as torch is given it (a double, exact), or 1 / sqrt(E)."""
    return 1 / sympy.sqrt(head_dim) if p["scale"] is None else sympy.Rational(p["scale"])


def _attended(p, length: int, keys: int) -> np.ndarray:
    """Which keys each query attends to: is_causal's lower triangle (top left aligned), a boolean mask's Trues,
    else all."""
    if p["is_causal"]:
        return np.tri(length, keys, dtype=bool)
    mask = p["attn_mask"]
    if isinstance(mask, Mask):
        return mask.array
    return np.ones((length, keys), dtype=bool)


def _additive(p, i: int, j: int):
    """A float mask's value at (i, j), else None (a boolean mask adds an exact 0 where it attends)."""
    mask = p["attn_mask"]
    return float(mask.array[i, j]) if isinstance(mask, Labels) else None


def _sym_matrices(arrays, p):
    q, k, v = arrays
    (length, head_dim), keys = q.shape, k.shape[0]
    scale = _scale(p, head_dim)
    attended = _attended(p, length, keys)
    out = np.empty((length, v.shape[1]), dtype=object)
    for i in range(length):
        js = [j for j in range(keys) if attended[i, j]]
        scores = []
        for j in js:
            score = scale * sympy.Add(*(q[i, e] * k[j, e] for e in range(head_dim)))
            extra = _additive(p, i, j)
            scores.append(score if extra is None else score + sympy.Rational(extra))
        weights = formula.sym_softmax(scores, None)
        for c in range(v.shape[1]):
            out[i, c] = sympy.Add(*(w * v[j, c] for w, j in zip(weights, js)))
    return out


def _factors(F, p, head_dim: int) -> tuple[arb, arb]:
    """(q's factor ±s, k's factor s) as the multiplications use them: s = sqrt(|scale|) within its double
    roundings, then rounded to the kernel's float type."""
    s = sympy.sqrt(abs(_scale(p, head_dim)))
    exact = arb(str(sympy.N(s, 70)))
    in_double = exact + arb(0, DOUBLE_SCALE_ROUNDINGS * U64 * exact.abs_upper())
    factor = F.opmath.round(in_double)
    negative = p["scale"] is not None and p["scale"] < 0
    return (-factor if negative else factor), factor


def _forward_parts(F, arrays, p):
    """(q · ±s, k · s, the softmax weights (exact 0 where masked)), in the kernel's float type."""
    G = F.opmath
    q, k, _ = arrays
    (length, head_dim), keys = q.shape, k.shape[0]
    q_factor, k_factor = _factors(F, p, head_dim)
    qs = np.array([[mul(G, x, q_factor) for x in row] for row in q], dtype=object)
    ks = np.array([[mul(G, x, k_factor) for x in row] for row in k], dtype=object)
    attended = _attended(p, length, keys)
    weights = np.full((length, keys), ZERO, dtype=object)
    for i in range(length):
        js = [j for j in range(keys) if attended[i, j]]
        scores = []
        for j in js:
            score = fused_sum(G, [mul(G, qs[i, e], ks[j, e]) for e in range(head_dim)])
            extra = _additive(p, i, j)
            scores.append(score if extra is None else G.add(score, arb(extra)))
        for j, w in zip(js, formula.softmax_forward(G, scores, None)):
            weights[i, j] = w
    return qs, ks, weights


def _math_forward(F, arrays, p):
    G = F.opmath
    v = arrays[2]
    _, _, weights = _forward_parts(F, arrays, p)
    out = np.empty((weights.shape[0], v.shape[1]), dtype=object)
    for i, c in np.ndindex(*out.shape):
        out[i, c] = F.store(fused_sum(G, [mul(G, weights[i, j], v[j, c]) for j in range(v.shape[0])]))
    return out


def _math_backward(F, arrays, out, grad, p):
    G = F.opmath
    q, k, v = arrays
    (length, head_dim), keys, width = q.shape, k.shape[0], v.shape[1]
    q_factor, k_factor = _factors(F, p, head_dim)
    qs, ks, weights = _forward_parts(F, arrays, p)
    attended = _attended(p, length, keys)
    # bmm(weights, v): grad @ vᵀ and weightsᵀ @ grad
    d_weights = np.array([[fused_sum(G, [mul(G, grad[i, c], v[j, c]) for c in range(width)]) for j in range(keys)]
                          for i in range(length)], dtype=object)
    d_v = np.empty(v.shape, dtype=object)
    for j, c in np.ndindex(*v.shape):
        d_v[j, c] = F.store(fused_sum(G, [mul(G, weights[i, j], grad[i, c]) for i in range(length)]))
    # _safe_softmax: a masked weight is exactly 0, so is its score's gradient
    d_scores = np.full((length, keys), ZERO, dtype=object)
    for i in range(length):
        js = [j for j in range(keys) if attended[i, j]]
        row = formula.softmax_backward(G, None, [weights[i, j] for j in js], [d_weights[i, j] for j in js], None)
        for j, d in zip(js, row):
            d_scores[i, j] = d
    # bmm(q · ±s, (k · s)ᵀ), then the scalar products
    d_q = np.empty(q.shape, dtype=object)
    for i, e in np.ndindex(*q.shape):
        d_q[i, e] = F.store(mul(G, fused_sum(G, [mul(G, d_scores[i, j], ks[j, e]) for j in range(keys)]), q_factor))
    d_k = np.empty(k.shape, dtype=object)
    for j, e in np.ndindex(*k.shape):
        d_k[j, e] = F.store(mul(G, fused_sum(G, [mul(G, d_scores[i, j], qs[i, e]) for i in range(length)]), k_factor))
    return d_q, d_k, d_v


# ------------------------------------------------------------------ the flash-attention CPU kernel (4-D inputs)
def _flash_scale(F, p, head_dim: int) -> arb:
    """calculate_scale in double (1 / sqrt(E): two roundings), as the kernel's accumulation type."""
    exact = arb(str(sympy.N(_scale(p, head_dim), 70)))
    return F.opmath.round(exact + arb(0, DOUBLE_SCALE_ROUNDINGS * U64 * exact.abs_upper()))


def _flash_scores(F, q, k, p, scale: arb, i: int, js: list[int], fused_scale: bool) -> list[arb]:
    """Row i of the scores: the forward's gemm then * scale (+ mask), or the backward's gemm with alpha = scale
    (`fused_scale`: every product times scale, as enclosing as the scaled sum) + mask."""
    G = F.opmath
    out = []
    for j in js:
        if fused_scale:
            score = formula.sum_any(G, [formula.product(G, [scale, q[i, e], k[j, e]]) for e in range(q.shape[1])])
        else:
            score = mul(G, fused_sum(G, [mul(G, q[i, e], k[j, e]) for e in range(q.shape[1])]), scale)
        extra = _additive(p, i, j)
        out.append(score if extra is None else G.add(score, arb(extra)))
    return out


def _flash_rows(F, arrays, p):
    """Per query row: (attended keys, scores' max, exp(score - max) per key, their sum) of the forward."""
    G = F.opmath
    q, k, _ = arrays
    scale = _flash_scale(F, p, q.shape[1])
    attended = _attended(p, q.shape[0], k.shape[0])
    rows = []
    for i in range(q.shape[0]):
        js = [j for j in range(k.shape[0]) if attended[i, j]]
        scores = _flash_scores(F, q, k, p, scale, i, js, fused_scale=False)
        top = formula.hull_maximum(scores)
        exps = [formula._exp(G, G.sub(s, top)) for s in scores]
        rows.append((js, top, exps, G.sum(exps)))
    return rows


def _flash_forward(F, arrays, p):
    """cpu_flash_attention with one block: exp(s - max) summed in the accumulation type and stored in the
    dtype for the product with v (bfloat16, float16), dst * (1 / sum), stored."""
    G = F.opmath
    v = arrays[2]
    out = np.empty((arrays[0].shape[0], v.shape[1]), dtype=object)
    for i, (js, _, exps, total) in enumerate(_flash_rows(F, arrays, p)):
        reciprocal = G.div(arb(1), total)
        for c in range(v.shape[1]):
            dst = fused_sum(G, [mul(G, F.store(e), v[j, c]) for e, j in zip(exps, js)])
            out[i, c] = F.store(G.mul(dst, reciprocal))
    return out


def _flash_backward(F, arrays, out, grad, p):
    """cpu_flash_attention_backward with one block: dsum = rowsum(grad * out); attn = exp(scale q kᵀ (+ mask) -
    logsumexp), the saved logsumexp max + log(sum); grad_v = attnᵀ grad, grad_attn = attn (grad vᵀ - dsum), both
    products with attn and grad_attn stored in the dtype first (bfloat16, float16); grad_q = scale grad_attn k,
    grad_k = scale grad_attnᵀ q; each gradient stored in the dtype once."""
    G = F.opmath
    q, k, v = arrays
    (length, head_dim), keys, width = q.shape, k.shape[0], v.shape[1]
    scale = _flash_scale(F, p, head_dim)
    attn = np.full((length, keys), ZERO, dtype=object)
    d_scores = np.full((length, keys), ZERO, dtype=object)
    for i, (js, top, _, total) in enumerate(_flash_rows(F, arrays, p)):
        lse = G.add(top, formula._log(G, total))
        dsum = fused_sum(G, [mul(G, grad[i, c], out[i, c]) for c in range(width)])
        scores = _flash_scores(F, q, k, p, scale, i, js, fused_scale=True)
        for j, s in zip(js, scores):
            a = formula._exp(G, G.sub(s, lse))
            d_attn = fused_sum(G, [mul(G, grad[i, c], v[j, c]) for c in range(width)])
            attn[i, j] = F.store(a)
            d_scores[i, j] = F.store(mul(G, a, G.sub(d_attn, dsum)))
    d_v = np.empty(v.shape, dtype=object)
    for j, c in np.ndindex(*v.shape):
        d_v[j, c] = F.store(fused_sum(G, [mul(G, attn[i, j], grad[i, c]) for i in range(length)]))
    d_q = np.empty(q.shape, dtype=object)
    for i, e in np.ndindex(*q.shape):
        d_q[i, e] = F.store(formula.sum_any(G, [formula.product(G, [scale, d_scores[i, j], k[j, e]])
                                                for j in range(keys) if not formula.is_exact_zero(d_scores[i, j])]))
    d_k = np.empty(k.shape, dtype=object)
    for j, e in np.ndindex(*k.shape):
        d_k[j, e] = F.store(formula.sum_any(G, [formula.product(G, [scale, d_scores[i, j], q[i, e]])
                                                for i in range(length) if not formula.is_exact_zero(d_scores[i, j])]))
    return d_q, d_k, d_v


# ------------------------------------------------------------------ the entry: 2-D inputs take the math path, 4-D
# inputs (a batch and a head of one) with q, k and v as wide the flash kernel (measured: the graph's one node is
# ScaledDotProductFlashAttentionForCpuBackward0)
def _matrices(arrays):
    return [a.reshape(a.shape[-2:]) for a in arrays]


def _batched(matrix: np.ndarray, like: np.ndarray) -> np.ndarray:
    return matrix.reshape(like.shape[:-2] + matrix.shape)


def _is_flash(arrays) -> bool:
    return arrays[0].ndim == 4


def _sym(arrays, p):
    return _batched(_sym_matrices(_matrices(arrays), p), arrays[0])


def _forward(F, arrays, p):
    compute = _flash_forward if _is_flash(arrays) else _math_forward
    return _batched(compute(F, _matrices(arrays), p), arrays[0])


def _backward(F, arrays, out, grad, p):
    compute = _flash_backward if _is_flash(arrays) else _math_backward
    matrices = _matrices(arrays)
    grads = compute(F, matrices, out.reshape(out.shape[-2:]), grad.reshape(grad.shape[-2:]), p)
    return tuple(_batched(g, a) for g, a in zip(grads, arrays))



def _operand_shapes(shape):
    """q (L, E) with keys and values as many as the queries (and as wide), or two keys of one value each (the
    math path); the same batched (1, 1, L, E) with two keys or as many as the queries (the flash kernel)."""
    length, head_dim = shape
    flash = (1, 1) + shape
    return list(dict.fromkeys([(shape, shape, shape), (shape, (2, head_dim), (2, 1)), (flash, flash, flash),
                               (flash, (1, 1, 2, head_dim), (1, 1, 2, head_dim))]))


def _mask(length: int, keys: int) -> Mask:
    """Each query leaves out one key (the next after its own index), none where there is one key."""
    return Mask(tuple(tuple(keys == 1 or j != (i + 1) % keys for j in range(keys)) for i in range(length)))


def _float_mask(length: int, keys: int) -> Labels:
    values = (0.0, -1.5, 0.5, 2.0)
    return Labels(tuple(tuple(values[(i + 2 * j) % 4] for j in range(keys)) for i in range(length)))


def _options(shapes):
    if len(shapes[0]) not in (2, 4):
        return ()
    (length, _), (keys, _) = shapes[0][-2:], shapes[1][-2:]
    plain = dict(attn_mask=None, is_causal=False)
    return (_params(**plain, scale=None), _params(attn_mask=None, is_causal=True, scale=None),
            _params(**plain, scale=0.5), _params(**plain, scale=-1.0),
            _params(attn_mask=_mask(length, keys), is_causal=False, scale=None),
            _params(attn_mask=_float_mask(length, keys), is_causal=False, scale=0.25))


def _attention(q, k, v, attn_mask, is_causal, scale):
    if isinstance(attn_mask, Labels):
        attn_mask = q.new_tensor(attn_mask.array.tolist())
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                                            scale=scale)


def _render_mask(mask, query: str) -> str:
    return f"{query}.new_tensor({mask!r})" if isinstance(mask, Labels) else repr(mask)


def _render(texts, p) -> str:
    mask = p["attn_mask"]
    mask_text = f"{texts[0]}.new_tensor({mask!r})" if isinstance(mask, Labels) else repr(mask)
    return (f"torch.nn.functional.scaled_dot_product_attention({texts[0]}, {texts[1]}, {texts[2]}, "
            f"attn_mask={mask_text}, is_causal={p['is_causal']}, scale={p['scale']!r})")


TENSOR_OPS["scaled_dot_product_attention"] = TensorOp(
    "scaled_dot_product_attention", 3,
    (_spelling("torch.nn.functional.scaled_dot_product_attention({0}, {1}, {2})",
               lambda q, k, v, **_: torch.nn.functional.scaled_dot_product_attention(q, k, v),
               _with(attn_mask=None, is_causal=False, scale=None)),
     TSpelling(_render, _spelling("", _attention).call)),
    _sym, _forward, _backward, OptionSpace(functools.cache(_options)),
    lambda shapes, p: shapes[0][:-1] + shapes[2][-1:], ("nn.functional.scaled_dot_product_attention",),
    ranks=(2,), operand_shapes=_operand_shapes)
