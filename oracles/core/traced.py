"""A torch function as an expression of the op table: trace it to aten (torch.fx's `make_fx`) and read each
aten call back as the table op whose spelling lowers to it.

Which aten call stands for which op is derived from the table, never listed by hand: every spelling of
every elementwise op is traced once (`lowerings`), with tensors in its tensor slots and Python scalars in
the slots that take them, and the aten call it produces becomes a `Lowering`: where the op's inputs sit
among the call's arguments, and which arguments the spelling fixes (`selu` is `elu` with selu's
constants, `x ** 2` an integer exponent, `div(.., rounding_mode='floor')` a keyword). An op that lowers
to several aten calls (softsign, ndtr) is read as those calls, each of which is an op of the table, which
is also what torch's autograd differentiates.

Supported: elementwise programs over broadcastable inputs, Python scalar constants, and a final `.sum()`.
Anything else raises `UntraceableError` naming the aten call; the caller turns it into a `ValueError`.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from oracles.core.expr import Apply, Const, Expr, Var
from oracles.core.render import run_torch
from oracles.table.ops import OPS, Operands, OpSpec

_SUM = (torch.ops.aten.sum.default,)


class UntraceableError(ValueError):
    """The function computes something the op table cannot express; the message names what."""


@dataclass(frozen=True)
class Lowering:
    """One spelling of `op` as one aten call. `arguments` names what each argument of the call's schema is
    (defaults filled in): ("slot", i) the op's argument i (a tensor or a Python scalar), ("fixed", value) a
    value the spelling always passes. `first_output`: the call returns a tuple whose element 0 is the op's
    value (log_sigmoid_forward)."""

    op: str
    spelling: int
    arguments: tuple[tuple[str, tuple[str, object]], ...]
    first_output: bool = False

    @property
    def fixed_count(self) -> int:
        """How much the spelling pins down: the more fixed values, the more specific the match."""
        return sum(kind == "fixed" for _, (kind, _) in self.arguments)


def schema_arguments(call: torch.fx.Node) -> dict[str, tuple[object, bool]]:
    """The call's arguments by schema name, defaults included, so `gelu(x)` and `gelu(x, approximate='none')`
    read alike: name -> (value, whether the call passed it)."""
    named = {}
    for i, argument in enumerate(call.target._schema.arguments):
        if i < len(call.args):
            named[argument.name] = (call.args[i], True)
        elif argument.name in call.kwargs:
            named[argument.name] = (call.kwargs[argument.name], True)
        elif argument.has_default_value():
            named[argument.name] = (argument.default_value, False)
    return named


def _probe_arguments(op: OpSpec, scalar_slots: tuple[int, ...]) -> tuple[Expr, ...] | None:
    """An argument tuple for tracing one spelling: inputs x0, x1, ... in the tensor slots, the table's first
    choice of constants (or distinct scalars 2.5, 3.5, ... where a tensor slot takes a scalar)."""
    if op.operands is Operands.EXPONENT:
        return (Var(0), Const(2.5))
    if op.operands is Operands.PARAMETERS:
        if not op.parameters:
            return None
        return (Var(0),) + tuple(Const(float(p)) for p in op.parameters[0])
    args, n_vars = [], 0
    for slot in range(op.arity):
        if slot in scalar_slots:
            args.append(Const(2.5 + slot))
        else:
            args.append(Var(n_vars))
            n_vars += 1
    return tuple(args)


def _scalar_slot_choices(op: OpSpec, spelling) -> list[tuple[int, ...]]:
    choices = [()]
    if op.operands in (Operands.TENSORS, Operands.SCALAR, Operands.ORDERED) and op.arity >= 2:
        if spelling.const_first:
            choices.append((0,))
        if spelling.const_second:
            choices.append((1,))
    return choices


def _describe_argument(value, passed: bool, args: tuple[Expr, ...], placeholders: dict) -> tuple[str, object]:
    """What a probe call's argument is: an input's slot, a constant's slot (a scalar equal to exactly one
    constant of the probe, and passed by the spelling rather than a schema default), or fixed."""
    if not passed:
        return ("fixed", value)
    if isinstance(value, torch.fx.Node):
        return ("slot", next(i for i, a in enumerate(args) if isinstance(a, Var) and a.index == placeholders[value]))
    consts = [i for i, a in enumerate(args) if isinstance(a, Const) and isinstance(value, (int, float))
              and not isinstance(value, bool) and a.value == value]
    return ("slot", consts[0]) if len(consts) == 1 else ("fixed", value)


def _lowering(op: OpSpec, spelling: int, args: tuple[Expr, ...]) -> tuple[object, Lowering] | None:
    """The aten overload this spelling with these arguments calls, and how; None where it calls several."""
    n_vars = sum(isinstance(a, Var) for a in args)
    expr = Apply(op.name, args, spelling)
    try:
        inputs = [torch.ones(2, dtype=torch.float64) for _ in range(n_vars)]  # distinct: one placeholder each
        graph = make_fx(lambda *xs: run_torch(expr, list(xs)))(*inputs)
    except Exception:  # noqa: BLE001 - a spelling that cannot take this combination of scalars: no lowering
        return None
    placeholders = {node: i for i, node in enumerate(n for n in graph.graph.nodes if n.op == "placeholder")}
    calls = [n for n in graph.graph.nodes if n.op == "call_function" and n.target is not operator.getitem]
    if len(calls) != 1 or not isinstance(calls[0].target, torch._ops.OpOverload):
        return None  # several aten calls: read as those calls
    call = calls[0]
    returned = graph.graph.output_node().args[0]
    first_output = returned is not call
    if first_output and not (returned.target is operator.getitem and returned.args == (call, 0)):
        return None
    arguments = tuple((name, _describe_argument(value, passed, args, placeholders))
                      for name, (value, passed) in schema_arguments(call).items())
    return call.target, Lowering(op.name, spelling, arguments, first_output)


@functools.cache
def lowerings() -> dict[object, tuple[Lowering, ...]]:
    """aten overload -> the table's spellings that lower to it, most specific first (2 s, once)."""
    found: dict[object, list[Lowering]] = {}
    for op in OPS.values():
        for k, spelling in enumerate(op.spellings):
            for scalar_slots in _scalar_slot_choices(op, spelling):
                args = _probe_arguments(op, scalar_slots)
                found_here = _lowering(op, k, args) if args is not None else None
                if found_here is not None:
                    target, lowering = found_here
                    found.setdefault(target, []).append(lowering)
    return {t: tuple(sorted(ls, key=lambda low: -low.fixed_count)) for t, ls in found.items()}


def _matches(lowering: Lowering, call: torch.fx.Node, env: dict) -> tuple[Expr, ...] | None:
    """The op's arguments if `call` is `lowering` (tensors from `env`, scalars as constants), else None."""
    given = schema_arguments(call)
    if set(given) != {name for name, _ in lowering.arguments}:
        return None
    args: dict[int, Expr] = {}
    for name, (kind, what) in lowering.arguments:
        value = given[name][0]
        if kind == "fixed":
            if isinstance(value, torch.fx.Node) or type(value) is not type(what) or value != what:
                return None
            continue
        if isinstance(value, torch.fx.Node):
            arg = env[value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            arg = Const(float(value))
        else:
            return None
        if args.setdefault(what, arg) != arg:  # the spelling passes one argument twice; here they differ
            return None
    arity = OPS[lowering.op].arity
    if sorted(args) != list(range(arity)):
        return None
    return tuple(args[i] for i in range(arity))


def _shape(node: torch.fx.Node) -> tuple[int, ...] | None:
    value = node.meta.get("val")
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


@dataclass(frozen=True)
class Traced:
    """`expr` computes the function's output elementwise over the broadcast inputs; `summed`: the function
    returns the sum of it (a final `.sum()`)."""

    expr: Expr
    summed: bool


def trace(fn: Callable, inputs: Sequence[torch.Tensor]) -> Traced:
    """`fn` (a function of the tensors `inputs`, returning one tensor) as an expression of the op table."""
    try:
        graph = make_fx(fn)(*inputs)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises while running the function is the user's
        raise UntraceableError(f"tracing failed: {type(exc).__name__}: {exc}") from None
    table = lowerings()
    env: dict[torch.fx.Node, Expr] = {}
    output, summed = None, False
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            env[node] = Var(len(env))
        elif node.op == "call_function":
            if node.target is operator.getitem and node.args[0] in env:
                if node.args[1] == 0:
                    env[node] = env[node.args[0]]
                elif node.users:
                    raise UntraceableError(f"{node.args[0].target}: only its first output is an op of the table")
                continue
            if node.target in _SUM and node.args[0] in env and len(node.args) == 1 and not node.kwargs:
                env[node], summed = env[node.args[0]], True
                continue
            if summed:
                raise UntraceableError(f"{node.target} after the final sum: only a sum may end the function")
            env[node] = _read_call(node, table, env)
        elif node.op == "output":
            output = node.args[0]
        else:
            raise UntraceableError(f"{node.op} {node.target}: the function reads a tensor that is not an input "
                                   f"(a tensor constant or a module's parameter); pass it as an input")
    if not isinstance(output, torch.fx.Node) or output not in env:
        raise UntraceableError("the function must return one tensor computed from its inputs")
    expr = env[output]
    if isinstance(expr, Var):
        raise UntraceableError("the function returns an input unchanged: there is no derivative to check")
    broadcast = tuple(torch.broadcast_shapes(*(tuple(x.shape) for x in inputs)))
    if not summed and _shape(output) != broadcast:
        raise UntraceableError(f"the output has shape {_shape(output)}, not the inputs' broadcast shape {broadcast}")
    return Traced(expr, summed)


def _read_call(node: torch.fx.Node, table: dict, env: dict) -> Expr:
    for lowering in table.get(node.target, ()):
        args = _matches(lowering, node, env)
        if args is not None:
            return Apply(lowering.op, args, lowering.spelling)
    shown = ", ".join(f"{name}={'<tensor>' if isinstance(value, torch.fx.Node) else repr(value)}"
                      for name, (value, passed) in schema_arguments(node).items() if passed)
    raise UntraceableError(f"{node.target}({shown}) is not an elementwise op of the table with these arguments")
