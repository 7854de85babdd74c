"""Fault injection: bugs a first-derivative suite cannot see.

- `wrong_second_derivative(op, rel)`: an override for a unary op (for `render.run_torch`'s `overrides`)
  whose forward and first derivative are torch's own, bit for bit, but whose *second* derivative is torch's
  times (1 + rel). Its backward returns grad · f'(x), with f'(x) recomputed by torch (create_graph) and
  passed through an identity whose backward scales by (1 + rel): the value of f' is untouched, the
  derivative of f' is not.
- `reduction_backward_on_wrong_axis()`: an override of the tensor op `sum` (oracles.tensor.program) whose
  backward broadcasts the gradient along the wrong axis of a square matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from oracles.table.ops import op_named
from oracles.table.tensor_ops import TENSOR_OPS


class _ScaledBackward(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by `factor`."""

    @staticmethod
    def forward(ctx, tensor, factor):
        ctx.factor = factor
        return tensor.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def wrong_second_derivative(op_name: str, rel_error: float) -> Callable:
    """An override for unary `op_name`: same value and first derivative, second derivative × (1 + rel_error)."""
    op = op_named(op_name)
    if op.arity != 1:
        raise ValueError(f"{op_name} is not unary")
    call = op.spellings[0].call

    class _WrongSecond(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return call(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                base = x if x.requires_grad else x.detach().requires_grad_()
                (local,) = torch.autograd.grad(call(base), base, torch.ones_like(base), create_graph=True)
            return grad * _ScaledBackward.apply(local, 1 + rel_error)

    def faulty(x):
        return _WrongSecond.apply(x)

    faulty.__name__ = f"{op_name}_with_second_derivative_error_{rel_error:g}"
    return faulty


class _SumOnWrongAxis(torch.autograd.Function):
    """x.sum(dim) of a square matrix whose backward broadcasts the gradient along the other axis: the
    shapes still agree, so nothing raises; every element gets the gradient of the wrong row or column."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return x.sum(dim)

    @staticmethod
    def backward(ctx, grad):
        wrong = 1 - ctx.dim % 2
        return grad.unsqueeze(wrong).expand(grad.shape[0], grad.shape[0]), None


def reduction_backward_on_wrong_axis():
    """An override of the tensor op `sum` (for `tensor_program.run_program`'s `overrides`) on 2-D square
    inputs reduced over one dim without keepdim: torch's forward, the backward expanded along the wrong axis."""

    def faulty(args, params):
        (x,) = args
        if x.dim() != 2 or x.shape[0] != x.shape[1] or params.dim is None or params.keepdim:
            raise ValueError(f"the planted fault needs a square matrix and one dim without keepdim, got shape "
                             f"{tuple(x.shape)} and {params}")
        return _SumOnWrongAxis.apply(x, params.dim)

    return faulty


def planted_tensor_backward_error(op_name: str, rel_error: float, where=None):
    """An override of a tensor op (oracles.tensor.program's `overrides`): torch's forward and backward,
    the backward's result times (1 + rel_error) (the sensitivity benchmark's fault); with `where` (the op's
    argument tensors -> bool), only where it holds (a bug of one region of the inputs)."""
    op = TENSOR_OPS[op_name]

    class _Planted(torch.autograd.Function):
        @staticmethod
        def forward(ctx, call, params, *args):
            ctx.call, ctx.params = call, params
            ctx.save_for_backward(*args)
            return call(args, params)

        @staticmethod
        def backward(ctx, grad):
            args = [a.detach().requires_grad_() for a in ctx.saved_tensors]
            with torch.enable_grad():
                grads = torch.autograd.grad(ctx.call(args, ctx.params), args, grad, allow_unused=True)
            factor = 1 + rel_error if where is None or where(ctx.saved_tensors) else 1
            return (None, None, *(None if g is None else g * factor for g in grads))

    def faulty(args, params):
        spelling = op.spellings[op.spellings_for(tuple(tuple(a.shape) for a in args), params)[0]]
        return _Planted.apply(spelling.call, params, *args)

    return faulty
