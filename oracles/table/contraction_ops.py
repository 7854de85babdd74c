"""Products of tensors, one entry each: ops each of whose output elements is a sum of products of argument
elements (oracles.table.contractions), so that an entry is its index map (numpy on object arrays of
`Terms`: `a @ b`, `np.einsum`, a loop over a convolution's windows), its spellings, the argument shapes it is
drawn with and the list of its valid parameters for those shapes, simplest first.

The argument shapes grow from one drawn shape (`operand_shapes`): a matrix product's left operand gives the
right operand's inner size, a convolution's (channels, spatial sides) give the input, weight and bias.
Whether each map is torch's op is checked against torch's own forward for every listed parameter
(tests/test_tensor_ops.py).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch

from oracles.table.shape_ops import _no_parameters, _op, _params, _spelling, _with
from oracles.table.tensor_ops import contracting

_F = torch.nn.functional

# (beta, alpha) of the accumulating products, torch's default first: beta 0 ignores the added tensor (its
# gradient is 0), a negative alpha subtracts the product
_SCALES = [_params(beta=1, alpha=1), _params(beta=0.5, alpha=2), _params(beta=0, alpha=1),
           _params(beta=2, alpha=-1)]


def _contraction(name, index_map, spellings, options, opinfo, arity, fused: bool = False,
                 fused_backward: bool = False, **kw):
    """One entry; `fused` (`fused_backward`): its forward (its backward) is one float-accumulating kernel per
    output (oracles.table.contractions)."""
    kind = functools.partial(contracting, fused=fused, fused_backward=fused_backward)
    _op(name, index_map, spellings, options, opinfo, arity=arity, kind=kind, **kw)


def _defaults(shapes, p) -> bool:
    return p["beta"] == 1 and p["alpha"] == 1


def _scaled_spellings(function: str, method: str):
    """torch.<function>(x0, x1, x2, beta=, alpha=), x0.<method>(x1, x2, beta=, alpha=), and both without the
    keywords where they have torch's defaults."""
    call = getattr(torch, function)
    bound = getattr(torch.Tensor, method)
    return [
        _spelling(f"torch.{function}({{0}}, {{1}}, {{2}}, beta={{beta}}, alpha={{alpha}})",
                  lambda s, a, b, beta, alpha: call(s, a, b, beta=beta, alpha=alpha)),
        _spelling(f"{{0}}.{method}({{1}}, {{2}}, beta={{beta}}, alpha={{alpha}})",
                  lambda s, a, b, beta, alpha: bound(s, a, b, beta=beta, alpha=alpha)),
        _spelling(f"torch.{function}({{0}}, {{1}}, {{2}})", lambda s, a, b, beta, alpha: call(s, a, b), _defaults),
    ]


def _scaled(product):
    """beta * self + alpha * product(the other two arguments), numpy broadcasting self as torch does."""
    return lambda arrays, p: p["beta"] * arrays[0] + p["alpha"] * product(arrays[1], arrays[2])


def _scales(shapes):
    return _SCALES


def _sizes(n: int) -> range:
    return range(1, n + 1)


# ------------------------------------------------------------------ matrix products
def _batched_operands(shape):
    """(b, n, k) @ (b, k, m), with either side broadcast from a matrix or a vector."""
    b, n, k = shape
    out = []
    for m in _sizes(2):
        out += [(shape, (b, k, m)), (shape, (k, m)), ((n, k), (b, k, m))]
    out += [(shape, (k,)), ((k,), (b, k, 2))]
    return out


def _same_batches(shapes, p) -> bool:
    return len(shapes[0]) == 3 and len(shapes[1]) == 3


_contraction("batched_matmul", lambda arrays, p: np.matmul(*arrays),
             [_spelling("torch.matmul({0}, {1})", torch.matmul),
              _spelling("{1}.__rmatmul__({0})", lambda a, b: b.__rmatmul__(a)),
              _spelling("torch.bmm({0}, {1})", torch.bmm, _same_batches)],
             _no_parameters, ["matmul", "bmm", "__rmatmul__"], arity=2, ranks=(3,), operand_shapes=_batched_operands,
             fused=True, fused_backward=True)


def _addmm_operands(shape):
    n, k = shape
    return [((n, m), shape, (k, m)) for m in _sizes(2)] + [((m,), shape, (k, m)) for m in _sizes(2)]


_contraction("addmm", _scaled(np.matmul), _scaled_spellings("addmm", "addmm"), _scales,
             ["addmm", "addmm[decomposed]"], arity=3, ranks=(2,), operand_shapes=_addmm_operands,
             fused=True, fused_backward=True)


def _addmv_operands(shape):
    n, k = shape
    return [((n,), shape, (k,)), ((1,), shape, (k,))]


_contraction("addmv", _scaled(np.matmul), _scaled_spellings("addmv", "addmv"), _scales, ["addmv"], arity=3,
             ranks=(2,), operand_shapes=_addmv_operands, fused=True, fused_backward=True)


def _addbmm_operands(shape):
    b, n, k = shape
    return [((n, m), shape, (b, k, m)) for m in _sizes(2)]


_contraction("addbmm", _scaled(lambda a, b: np.matmul(a, b).sum(axis=0)), _scaled_spellings("addbmm", "addbmm"),
             _scales, ["addbmm"], arity=3, ranks=(3,), operand_shapes=_addbmm_operands)


def _baddbmm_operands(shape):
    b, n, k = shape
    return [(s, shape, (b, k, m)) for m in _sizes(2) for s in ((b, n, m), (n, m), (1, m))]


_contraction("baddbmm", _scaled(np.matmul), _scaled_spellings("baddbmm", "baddbmm"), _scales, ["baddbmm"],
             arity=3, ranks=(3,), operand_shapes=_baddbmm_operands, fused=True, fused_backward=True)


def _addr_operands(shape):
    n, m = shape
    return [(shape, (n,), (m,)), ((m,), (n,), (m,))]


_contraction("addr", _scaled(np.multiply.outer), _scaled_spellings("addr", "addr"), _scales, ["addr"], arity=3,
             ranks=(2,), operand_shapes=_addr_operands)


def _vector_pairs(shape):
    return [(shape, (m,)) for m in _sizes(3)]


_contraction("outer", lambda arrays, p: np.multiply.outer(*arrays),
             [_spelling("torch.outer({0}, {1})", torch.outer), _spelling("{0}.outer({1})", torch.Tensor.outer),
              _spelling("torch.ger({0}, {1})", torch.ger)],
             _no_parameters, ["outer"], arity=2, ranks=(1,), operand_shapes=_vector_pairs, fused=True)
_contraction("vdot", lambda arrays, p: np.dot(*arrays),
             [_spelling("torch.vdot({0}, {1})", torch.vdot), _spelling("{0}.vdot({1})", torch.Tensor.vdot)],
             _no_parameters, ["vdot"], arity=2, ranks=(1,), operand_shapes=lambda shape: [(shape, shape)],
             fused=True, fused_backward=True)


def _inner_operands(shape):
    """inner contracts the last dims: a partner of any rank up to 2 with the same last size."""
    k = shape[-1]
    return [(shape, (k,))] + [(shape, (m, k)) for m in _sizes(2)]


_contraction("inner", lambda arrays, p: np.inner(*arrays),
             [_spelling("torch.inner({0}, {1})", torch.inner), _spelling("{0}.inner({1})", torch.Tensor.inner)],
             _no_parameters, ["inner"], arity=2, ranks=(1, 2), operand_shapes=_inner_operands,
             fused=True, fused_backward=True)


def _kron_operands(shape):
    return [(shape, tuple(sides)) for sides in itertools.product(_sizes(2), repeat=len(shape))] + [(shape, (2,))]


_contraction("kron", lambda arrays, p: np.kron(*arrays),
             [_spelling("torch.kron({0}, {1})", torch.kron), _spelling("{0}.kron({1})", torch.Tensor.kron)],
             _no_parameters, ["kron"], arity=2, ranks=(1, 2), operand_shapes=_kron_operands, fused=True)


def _tensordot_operands(shape):
    """A partner whose leading sides are the left operand's trailing ones (0, 1 or 2 of them), then 0 or 1
    more sides."""
    out = []
    for shared in range(len(shape) + 1):
        head = shape[len(shape) - shared:]
        out += [(shape, head + tail) for tail in ((), (2,)) if head + tail]
    return out


def _tensordot_options(shapes):
    a, b = shapes
    counts = [d for d in range(min(len(a), len(b)) + 1) if a[len(a) - d:] == b[:d]]
    out = [_params(dims=d) for d in counts]
    # explicit pairs: the left's last dim with the right's first, and (where both are matrices) in reverse
    if a[-1] == b[0]:
        out.append(_params(dims=((len(a) - 1,), (0,))))
    if len(a) == 2 and len(b) == 2 and a[0] == b[1]:
        out.append(_params(dims=((0,), (1,))))
    return out


def _tensordot_map(arrays, p):
    dims = p["dims"]
    return np.tensordot(arrays[0], arrays[1], axes=dims if isinstance(dims, int) else (dims[0], dims[1]))


_contraction("tensordot", _tensordot_map,
             [_spelling("torch.tensordot({0}, {1}, dims={dims})", lambda a, b, dims: torch.tensordot(a, b, dims=dims))],
             _tensordot_options, ["tensordot"], arity=2, ranks=(1, 2), operand_shapes=_tensordot_operands,
             fused=True, fused_backward=True)


def _einsum_operands(shape):
    """A matrix (n, k) with a (k, m) matrix, a k-vector, itself or an (m, k) matrix."""
    n, k = shape
    partners = [(k, m) for m in _sizes(2)] + [(k,), shape] + [(m, k) for m in _sizes(2)]
    return [(shape, b) for b in dict.fromkeys(partners)]


def _einsum_options(shapes):
    """Equations whose letters fit the shapes: products, transposed results, contractions to a vector or a
    scalar, elementwise products, batch-diagonal ones."""
    (n, k), b = shapes
    equations = []
    if b == (k,):
        equations = ["ij,j->i", "ij,j->ij", "ij,j->j", "ij,j->"]
    elif b[1] == k:  # (m, k): contract the shared last letter, or keep it
        equations = ["ij,kj->ik", "ij,kj->ki", "ij,kj->"]
        if b[0] == n:
            equations += ["ij,ij->i", "ij,ij->ij", "ij,ij->", "ij,ij->j"]
    if len(b) == 2 and b[0] == k:  # (k, m): a matrix product
        equations += ["ij,jk->ik", "ij,jk->ki", "ij,jk->i", "ij,jk->"]
    return [_params(equation=e) for e in dict.fromkeys(equations)]


_contraction("einsum", lambda arrays, p: np.einsum(p["equation"], *arrays),
             [_spelling("torch.einsum({equation}, {0}, {1})", lambda a, b, equation: torch.einsum(equation, a, b))],
             _einsum_options, ["einsum"], arity=2, ranks=(2,), operand_shapes=_einsum_operands)


def _vecdot_options(shapes):
    rank = len(shapes[0])
    return [_params(dim=d) for d in [-1] + [d for d in range(-rank, rank) if d != -1]]


_contraction("vecdot", lambda arrays, p: (arrays[0] * arrays[1]).sum(axis=p["dim"]),
             [_spelling("torch.linalg.vecdot({0}, {1}, dim={dim})",
                        lambda a, b, dim: torch.linalg.vecdot(a, b, dim=dim)),
              _spelling("torch.linalg.vecdot({0}, {1})", lambda a, b, dim: torch.linalg.vecdot(a, b), _with(dim=-1))],
             _vecdot_options, ["linalg.vecdot"], arity=2, ranks=(1, 2),
             operand_shapes=lambda shape: [(shape, shape), (shape, shape[-1:])])


def _cross_options(shapes):
    shape = shapes[0]
    return [_params(dim=d) for d in range(-len(shape), 0) if shape[d] == 3]


_contraction("cross", lambda arrays, p: np.cross(*arrays, axis=p["dim"]),
             [_spelling("torch.linalg.cross({0}, {1}, dim={dim})",
                        lambda a, b, dim: torch.linalg.cross(a, b, dim=dim)),
              _spelling("torch.cross({0}, {1}, dim={dim})", lambda a, b, dim: torch.cross(a, b, dim=dim)),
              _spelling("{0}.cross({1}, dim={dim})", lambda a, b, dim: a.cross(b, dim=dim))],
             _cross_options, ["cross", "linalg.cross"], arity=2, ranks=(1, 2),
             operand_shapes=lambda shape: [(shape, shape)])


def _linear_operands(shape):
    """x (..., in), weight (out, in), bias (out,)."""
    return [(shape, (o, shape[-1]), (o,)) for o in _sizes(2)]


_contraction("linear", lambda arrays, p: np.matmul(arrays[0], arrays[1].T) + arrays[2],
             [_spelling("torch.nn.functional.linear({0}, {1}, {2})", _F.linear),
              _spelling("torch.nn.functional.linear({0}, {1}, bias={2})", lambda x, w, b: _F.linear(x, w, bias=b))],
             _no_parameters, ["nn.functional.linear"], arity=3, ranks=(1, 2), operand_shapes=_linear_operands,
             fused=True, fused_backward=True)


def _bilinear_operands(shape):
    """x1 (n, i), x2 (n, j), weight (out, i, j), bias (out,)."""
    n, i = shape
    return [(shape, (n, j), (o, i, j), (o,)) for j in _sizes(2) for o in _sizes(2)]


_contraction("bilinear", lambda arrays, p: np.einsum("ni,oij,nj->no", arrays[0], arrays[2], arrays[1]) + arrays[3],
             [_spelling("torch.nn.functional.bilinear({0}, {1}, {2}, {3})", _F.bilinear)],
             _no_parameters, ["nn.functional.bilinear"], arity=4, ranks=(2,), operand_shapes=_bilinear_operands)


def _multi_dot_operands(shape):
    """A (n, k) or (k,), B (k, j), C (j, m) or (j,)."""
    k = shape[-1]
    return [(shape, (k, j), last) for j in _sizes(2) for last in ((j, 1), (j, 2), (j,))]


_contraction("multi_dot", lambda arrays, p: np.linalg.multi_dot(list(arrays)),
             [_spelling("torch.linalg.multi_dot([{0}, {1}, {2}])",
                        lambda a, b, c: torch.linalg.multi_dot([a, b, c]))],
             _no_parameters, ["linalg.multi_dot"], arity=3, ranks=(1, 2), operand_shapes=_multi_dot_operands)


def _addcmul_operands(shape):
    """self + value * t1 * t2 with broadcasting: any of the three may be the others' last side or a 1."""
    small = shape[-1:]
    return [(shape, shape, shape), (shape, shape, small), (small, shape, shape), (shape, (1,), shape)]


_contraction("addcmul", lambda arrays, p: arrays[0] + p["value"] * arrays[1] * arrays[2],
             [_spelling("torch.addcmul({0}, {1}, {2}, value={value})",
                        lambda s, a, b, value: torch.addcmul(s, a, b, value=value)),
              _spelling("{0}.addcmul({1}, {2}, value={value})", lambda s, a, b, value: s.addcmul(a, b, value=value)),
              _spelling("torch.addcmul({0}, {1}, {2})", lambda s, a, b, value: torch.addcmul(s, a, b), _with(value=1))],
             lambda shapes: [_params(value=v) for v in (1, 2, -0.5)], ["addcmul"], arity=3, ranks=(1, 2),
             operand_shapes=_addcmul_operands, fused=True)


# ------------------------------------------------------------------ convolutions
def _sides(padding, kernel, dilation) -> list[tuple[int, int]]:
    """Per spatial dim, the zeros padded before and after: an int on both sides; 'valid' none; 'same' the
    dilated kernel's extent less one, split with the odd one after (torch's rule for an even kernel)."""
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        totals = [dilation * (k - 1) for k in kernel]
        return [(t // 2, t - t // 2) for t in totals]
    return [(padding, padding)] * len(kernel)


def _conv_map(dims: int):
    """torch's convolution with bias: out[n, o, q] = bias[o] + sum over the group's channels c and kernel
    offsets k of x[n, c, q * stride + k * dilation - padding] * weight[o, c, k] (zeros outside x)."""

    def conv(arrays, p):
        x, w, b = arrays
        unbatched = x.ndim == dims + 1
        if unbatched:
            x = x[None]
        stride, dilation, groups = p["stride"], p["dilation"], p["groups"]
        kernel = w.shape[2:]
        sides = _sides(p["padding"], kernel, dilation)
        sizes = [(n + lo + hi - dilation * (k - 1) - 1) // stride + 1
                 for n, k, (lo, hi) in zip(x.shape[2:], kernel, sides)]
        per_group_out, per_group_in = w.shape[0] // groups, w.shape[1]
        out = np.empty((x.shape[0], w.shape[0], *sizes), dtype=object)
        for n, o, *q in np.ndindex(*out.shape):
            total = b[o]
            first = (o // per_group_out) * per_group_in
            for c in range(per_group_in):
                for k in np.ndindex(*kernel):
                    at = [qi * stride + ki * dilation - lo for qi, ki, (lo, _) in zip(q, k, sides)]
                    if all(0 <= a < n_ for a, n_ in zip(at, x.shape[2:])):
                        total = total + x[(n, first + c, *at)] * w[(o, c, *k)]
            out[(n, o, *q)] = total
        return out[0] if unbatched else out

    return conv


def _conv_operands(dims: int, unbatched: bool):
    """From (channels, spatial sides...): input batches of 1 and 2 (and none, where torch takes an unbatched
    input), weights of 1 or 2 output channels per group for every group count dividing the channels, kernels
    of side 1 or 2, and the bias."""

    def operands(seed):
        channels, spatial = seed[0], tuple(seed[1:]) + (2,) * (dims - len(seed) + 1)
        inputs = [(1, channels, *spatial), (2, channels, *spatial)] + ([(channels, *spatial)] if unbatched else [])
        out = []
        for x in inputs:
            for groups in (g for g in (1, 2, 3) if channels % g == 0):
                for per_group in (1, 2):
                    for k in (1, 2):
                        o = groups * per_group
                        out.append((x, (o, channels // groups) + (k,) * dims, (o,)))
        return out

    return operands


def _conv_output_fits(x_spatial, kernel, p) -> bool:
    sides = _sides(p["padding"], kernel, p["dilation"])
    return all(n + lo + hi - p["dilation"] * (k - 1) - 1 >= 0 for n, k, (lo, hi) in zip(x_spatial, kernel, sides))


def _conv_options(dims: int):
    """Torch's defaults first, then each of stride 2, padding 1, 'valid', 'same', dilation 2 alone, then
    stride with padding and dilation with padding; the group count is the one the weight's shape says."""

    def options(shapes):
        x, w, _ = shapes
        groups = x[-dims - 1] // w[1]
        out = []
        for stride, padding, dilation in ((1, 0, 1), (2, 0, 1), (1, 1, 1), (1, "valid", 1), (1, "same", 1),
                                          (1, 0, 2), (2, 1, 1), (1, 1, 2), (1, "same", 2)):
            p = _params(stride=stride, padding=padding, dilation=dilation, groups=groups)
            if _conv_output_fits(x[-dims:], w[2:], p):
                out.append(p)
        return out

    return options


for _dims, _unbatched in ((1, True), (2, True), (3, False)):
    _name = f"conv{_dims}d"
    _function = getattr(_F, _name)
    _contraction(
        _name, _conv_map(_dims),
        [_spelling(f"torch.nn.functional.{_name}({{0}}, {{1}}, {{2}}, stride={{stride}}, padding={{padding}}, "
                   "dilation={dilation}, groups={groups})",
                   lambda x, w, b, stride, padding, dilation, groups, _f=_function:
                   _f(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)),
         _spelling(f"torch.nn.functional.{_name}({{0}}, {{1}}, {{2}})",
                   lambda x, w, b, stride, padding, dilation, groups, _f=_function: _f(x, w, b),
                   _with(stride=1, padding=0, dilation=1, groups=1))],
        _conv_options(_dims), [f"nn.functional.{_name}"], arity=3, ranks=(min(_dims + 1, 3),),
        operand_shapes=_conv_operands(_dims, _unbatched), fused=True)


def _transposed_map(dims: int):
    """torch's transposed convolution with bias, the adjoint of `_conv_map`'s: each x[n, c, i] times
    weight[c, o, k] is added to out[n, o, i * stride + k * dilation - padding] (dropped outside the
    output), out of size (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1."""

    def transposed(arrays, p):
        x, w, b = arrays
        stride, padding, dilation, groups = p["stride"], p["padding"], p["dilation"], p["groups"]
        kernel = w.shape[2:]
        sizes = [(n - 1) * stride - 2 * padding + dilation * (k - 1) + p["output_padding"] + 1
                 for n, k in zip(x.shape[2:], kernel)]
        per_group_in, per_group_out = x.shape[1] // groups, w.shape[1]
        out = np.empty((x.shape[0], per_group_out * groups, *sizes), dtype=object)
        for n, o, *q in np.ndindex(*out.shape):
            out[(n, o, *q)] = b[o]
        for n, c, *i in np.ndindex(*x.shape):
            group = c // per_group_in
            for o in range(per_group_out):
                for k in np.ndindex(*kernel):
                    at = [ii * stride + ki * dilation - padding for ii, ki in zip(i, k)]
                    if all(0 <= a < s for a, s in zip(at, sizes)):
                        target = (n, group * per_group_out + o, *at)
                        out[target] = out[target] + x[(n, c, *i)] * w[(c, o, *k)]
        return out

    return transposed


def _transposed_operands(dims: int):
    """From (channels, spatial sides...): batches of 1 and 2, weights (channels, 1 or 2 outputs per group,
    kernel of side 1 or 2), the bias of every group count dividing the channels."""

    def operands(seed):
        channels, spatial = seed[0], tuple(seed[1:]) + (2,) * (dims - len(seed) + 1)
        out = []
        for batch in (1, 2):
            for groups in (g for g in (1, 2, 3) if channels % g == 0):
                for per_group in (1, 2):
                    for k in (1, 2):
                        out.append(((batch, channels, *spatial), (channels, per_group) + (k,) * dims,
                                    (per_group * groups,)))
        return out

    return operands


def _transposed_options(dims: int):
    """Torch's defaults first; stride 2 (with output_padding 1), padding 1, dilation 2; the group count is
    the one the bias's length says (the weight's second side is per group)."""

    def options(shapes):
        x, w, b = shapes
        groups = b[0] // w[1]
        if x[1] % groups:
            return []
        out = []
        for stride, padding, dilation, output_padding in ((1, 0, 1, 0), (2, 0, 1, 0), (2, 0, 1, 1), (1, 1, 1, 0),
                                                          (1, 0, 2, 0), (2, 1, 2, 1)):
            sizes = [(n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
                     for n, k in zip(x[2:], w[2:])]
            if min(sizes) >= 1:
                out.append(_params(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                                   dilation=dilation))
        return out

    return options


for _dims in (1, 2, 3):
    _name = f"conv_transpose{_dims}d"
    _function = getattr(_F, _name)
    _contraction(
        _name, _transposed_map(_dims),
        [_spelling(f"torch.nn.functional.{_name}({{0}}, {{1}}, {{2}}, stride={{stride}}, padding={{padding}}, "
                   "output_padding={output_padding}, groups={groups}, dilation={dilation})",
                   lambda x, w, b, stride, padding, output_padding, groups, dilation, _f=_function:
                   _f(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                      dilation=dilation)),
         _spelling(f"torch.nn.functional.{_name}({{0}}, {{1}}, {{2}})",
                   lambda x, w, b, stride, padding, output_padding, groups, dilation, _f=_function: _f(x, w, b),
                   _with(stride=1, padding=0, output_padding=0, groups=1, dilation=1))],
        _transposed_options(_dims), [f"nn.functional.{_name}"], arity=3, ranks=(min(_dims + 1, 3),),
        operand_shapes=_transposed_operands(_dims))


# ------------------------------------------------------------------ the trapezoid rule (ATen's Integration.cpp)
def _ends(a: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The slices before and after each step along `dim`: y[:-1] and y[1:]."""
    a = np.moveaxis(a, dim, 0)
    return np.moveaxis(a[:-1], 0, dim), np.moveaxis(a[1:], 0, dim)


def _trapezoid_dx(arrays, p):
    """Constant spacing: dx * (sum(y) - (y_first + y_last) / 2), as ATen computes it."""
    y, dim, dx = arrays[0], p["dim"], p["dx"]
    along = np.moveaxis(y, dim, 0)
    return (along.sum(axis=0) - (along[0] + along[-1]) * 0.5) * dx


def _trapezoid_x(arrays, p):
    """Sample points x: sum((y[:-1] + y[1:]) * diff(x)) / 2."""
    (left, right), (x0, x1) = _ends(arrays[0], p["dim"]), _ends(arrays[1], p["dim"])
    return ((left + right) * (x1 - x0)).sum(axis=p["dim"]) * 0.5


def _cumulative_dx(arrays, p):
    left, right = _ends(arrays[0], p["dim"])
    return np.cumsum(p["dx"] * 0.5 * (left + right), axis=p["dim"])


def _cumulative_x(arrays, p):
    (left, right), (x0, x1) = _ends(arrays[0], p["dim"]), _ends(arrays[1], p["dim"])
    return np.cumsum((x1 - x0) * (left + right), axis=p["dim"]) * 0.5


def _steps(shape) -> list[int]:
    """The dims with at least one step (two samples), the last first (torch's default dim=-1)."""
    rank = len(shape)
    return [d for d in [-1] + list(range(-rank, -1)) if shape[d] >= 2]


def _dx_options(shapes):
    return [_params(dx=dx, dim=d) for d in _steps(shapes[0]) for dx in (1, 0.5, -2)]


def _x_options(shapes):
    return [_params(dim=d) for d in _steps(shapes[0])]


for _function, _dx_map, _x_map, _opinfo in (("trapezoid", _trapezoid_dx, _trapezoid_x, ["trapezoid"]),
                                            ("trapz", _trapezoid_dx, _trapezoid_x, ["trapz"]),
                                            ("cumulative_trapezoid", _cumulative_dx, _cumulative_x,
                                             ["cumulative_trapezoid"])):
    _call = getattr(torch, _function)
    _contraction(f"{_function}_dx", _dx_map,
                 [_spelling(f"torch.{_function}({{0}}, dx={{dx}}, dim={{dim}})",
                            lambda y, dx, dim, _c=_call: _c(y, dx=dx, dim=dim)),
                  _spelling(f"torch.{_function}({{0}})", lambda y, dx, dim, _c=_call: _c(y), _with(dx=1, dim=-1))],
                 _dx_options, _opinfo, arity=1, ranks=(1, 2))
    _contraction(f"{_function}_x", _x_map,
                 [_spelling(f"torch.{_function}({{0}}, {{1}}, dim={{dim}})",
                            lambda y, x, dim, _c=_call: _c(y, x, dim=dim)),
                  _spelling(f"torch.{_function}({{0}}, x={{1}}, dim={{dim}})",
                            lambda y, x, dim, _c=_call: _c(y, x=x, dim=dim))],
                 _x_options, _opinfo, arity=2, ranks=(1, 2))


# ------------------------------------------------------------------ matrix powers
def _matrix_power(arrays, p):
    """A^n for n >= 0 as products of n factors (torch multiplies by repeated squaring: any bracketing of the
    same products); A^0 is the identity, which depends on nothing."""
    a = arrays[0]
    if p["n"] == 0:
        return np.eye(a.shape[-1], dtype=int) + 0 * a
    return np.linalg.matrix_power(a, p["n"]) if a.ndim == 2 else np.stack([_matrix_power([m], p) for m in a])


_contraction("matrix_power", _matrix_power,
             [_spelling("torch.linalg.matrix_power({0}, {n})", lambda a, n: torch.linalg.matrix_power(a, n)),
              _spelling("torch.matrix_power({0}, {n})", lambda a, n: torch.matrix_power(a, n)),
              _spelling("{0}.matrix_power({n})", lambda a, n: a.matrix_power(n))],
             lambda shapes: [_params(n=n) for n in (2, 1, 3, 0, 4)] if shapes[0][-1] == shapes[0][-2] else [],
             ["linalg.matrix_power"], arity=1, ranks=(2, 3))


# ------------------------------------------------------------------ lerp with a scalar weight
def _lerp(arrays, p):
    """ATen's lerp: start + weight * (end - start) for |weight| < 1/2, else end - (end - start) * (1 - weight)
    (exact at both ends); products and sums as the kernel forms them, left unexpanded in rounding."""
    start, end, weight = arrays[0], arrays[1], p["weight"]
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


_contraction("lerp", _lerp,
             [_spelling("torch.lerp({0}, {1}, {weight})", lambda a, b, weight: torch.lerp(a, b, weight)),
              _spelling("{0}.lerp({1}, {weight})", lambda a, b, weight: a.lerp(b, weight))],
             lambda shapes: [_params(weight=w) for w in (0.25, 0.75, 0.5, 0, 1, -0.5, 1.5)], ["lerp"], arity=2,
             ranks=(1, 2), operand_shapes=lambda shape: [(shape, shape), (shape, shape[-1:]), (shape[-1:], shape)])
