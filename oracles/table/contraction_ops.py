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


def _contraction(name, index_map, spellings, options, opinfo, arity, **kw):
    _op(name, index_map, spellings, options, opinfo, arity=arity, kind=contracting, **kw)


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
             _no_parameters, ["matmul", "bmm", "__rmatmul__"], arity=2, ranks=(3,), operand_shapes=_batched_operands)


def _addmm_operands(shape):
    n, k = shape
    return [((n, m), shape, (k, m)) for m in _sizes(2)] + [((m,), shape, (k, m)) for m in _sizes(2)]


_contraction("addmm", _scaled(np.matmul), _scaled_spellings("addmm", "addmm"), _scales,
             ["addmm", "addmm[decomposed]"], arity=3, ranks=(2,), operand_shapes=_addmm_operands)


def _addmv_operands(shape):
    n, k = shape
    return [((n,), shape, (k,)), ((1,), shape, (k,))]


_contraction("addmv", _scaled(np.matmul), _scaled_spellings("addmv", "addmv"), _scales, ["addmv"], arity=3,
             ranks=(2,), operand_shapes=_addmv_operands)


def _addbmm_operands(shape):
    b, n, k = shape
    return [((n, m), shape, (b, k, m)) for m in _sizes(2)]


_contraction("addbmm", _scaled(lambda a, b: np.matmul(a, b).sum(axis=0)), _scaled_spellings("addbmm", "addbmm"),
             _scales, ["addbmm"], arity=3, ranks=(3,), operand_shapes=_addbmm_operands)


def _baddbmm_operands(shape):
    b, n, k = shape
    return [(s, shape, (b, k, m)) for m in _sizes(2) for s in ((b, n, m), (n, m), (1, m))]


_contraction("baddbmm", _scaled(np.matmul), _scaled_spellings("baddbmm", "baddbmm"), _scales, ["baddbmm"],
             arity=3, ranks=(3,), operand_shapes=_baddbmm_operands)


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
             _no_parameters, ["outer"], arity=2, ranks=(1,), operand_shapes=_vector_pairs)
_contraction("vdot", lambda arrays, p: np.dot(*arrays),
             [_spelling("torch.vdot({0}, {1})", torch.vdot), _spelling("{0}.vdot({1})", torch.Tensor.vdot)],
             _no_parameters, ["vdot"], arity=2, ranks=(1,), operand_shapes=lambda shape: [(shape, shape)])


def _inner_operands(shape):
    """inner contracts the last dims: a partner of any rank up to 2 with the same last size."""
    k = shape[-1]
    return [(shape, (k,))] + [(shape, (m, k)) for m in _sizes(2)]


_contraction("inner", lambda arrays, p: np.inner(*arrays),
             [_spelling("torch.inner({0}, {1})", torch.inner), _spelling("{0}.inner({1})", torch.Tensor.inner)],
             _no_parameters, ["inner"], arity=2, ranks=(1, 2), operand_shapes=_inner_operands)


def _kron_operands(shape):
    return [(shape, tuple(sides)) for sides in itertools.product(_sizes(2), repeat=len(shape))] + [(shape, (2,))]


_contraction("kron", lambda arrays, p: np.kron(*arrays),
             [_spelling("torch.kron({0}, {1})", torch.kron), _spelling("{0}.kron({1})", torch.Tensor.kron)],
             _no_parameters, ["kron"], arity=2, ranks=(1, 2), operand_shapes=_kron_operands)


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
             _tensordot_options, ["tensordot"], arity=2, ranks=(1, 2), operand_shapes=_tensordot_operands)


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
             _no_parameters, ["nn.functional.linear"], arity=3, ranks=(1, 2), operand_shapes=_linear_operands)


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
             operand_shapes=_addcmul_operands)
