"""Fault injection: torch ops with a planted error in their backward, to measure what the suite catches.

`planted_backward_error("sin", 1e-9)` returns a replacement for `sin`'s torch call (for the `overrides`
of `check.check_case`): its forward is torch's own, and its backward is torch's own backward (recomputed
with `torch.autograd.grad`, so bitwise what autograd would give) times (1 + rel_error). A suite that
cannot tell that apart from a correct torch is blind to bugs of that size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from oracles.table.ops import OpSpec, op_named


def torch_call(op: OpSpec, args: tuple) -> Callable:
    """The first of the op's spellings that accepts these arguments (a Python scalar is only allowed
    where the spelling allows one, e.g. `2 - x` but not `torch.hypot(x, 2)`)."""
    scalar_first = not isinstance(args[0], torch.Tensor)
    scalar_second = len(args) > 1 and not isinstance(args[1], torch.Tensor)
    for spelling in op.spellings:
        if (spelling.const_first or not scalar_first) and (spelling.const_second or not scalar_second):
            return spelling.call
    raise ValueError(f"no spelling of {op.name} takes a Python scalar in that position")


class _PlantedBackward(torch.autograd.Function):
    """forward: `call(*args)`; backward: autograd's true vector-Jacobian product times (1 + rel_error)."""

    @staticmethod
    def forward(ctx, call, rel_error, where, *args):
        ctx.call, ctx.rel_error, ctx.where = call, rel_error, where
        ctx.is_tensor = [isinstance(a, torch.Tensor) for a in args]
        ctx.scalars = [None if t else a for a, t in zip(args, ctx.is_tensor)]
        ctx.save_for_backward(*(a for a, t in zip(args, ctx.is_tensor) if t))
        return call(*args)

    @staticmethod
    def backward(ctx, grad_output):
        saved = iter(ctx.saved_tensors)
        with torch.enable_grad():
            args = [next(saved).detach().requires_grad_() if t else s for t, s in zip(ctx.is_tensor, ctx.scalars)]
            inputs = [a for a, t in zip(args, ctx.is_tensor) if t]
            true_grads = iter(torch.autograd.grad(ctx.call(*args), inputs, grad_output, allow_unused=True))
        # the error goes where the first argument satisfies `where` (everywhere without one)
        first = args[0].detach() if ctx.is_tensor[0] else None
        factor = 1 + ctx.rel_error if ctx.where is None else 1 + ctx.rel_error * ctx.where(first).to(first.dtype)
        grads = []
        for is_tensor in ctx.is_tensor:
            g = next(true_grads) if is_tensor else None
            grads.append(None if g is None else g * factor)
        return (None, None, None, *grads)


def planted_backward_error(op_name: str, rel_error: float,
                           where: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Callable:
    """An override for `op_name` whose backward errs by `rel_error` relative (rounded to the dtype:
    1e-9 survives in float64, but vanishes in float32, whose unit roundoff is 6e-8); with `where`, only
    at the elements whose first argument it holds for (`lambda x: x > 20`: a bug of one region)."""
    op = op_named(op_name)

    def faulty(*args):
        return _PlantedBackward.apply(torch_call(op, args), rel_error, where, *args)

    faulty.__name__ = f"{op_name}_with_backward_error_{rel_error:g}"
    return faulty
