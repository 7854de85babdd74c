"""Checking torch against its pinned conventions: at the exact points (every spelling, compared exactly),
against the rule's prescription, and on each side a few ulps away (the one-sided limits).

Every check returns messages (empty when torch agrees), each naming the op, the point, the pinned value
with its rule clause and what torch gives now, so a change of convention reads as what changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sympy
import torch
import torch.autograd.forward_ad as fwAD
from flint import arb, ctx

from oracles.core.case import GradCase
from oracles.core.expr import Apply, Const, Var
from oracles.core.render import derivative, symbol, to_sympy
from oracles.core.test_ids import selectable
from oracles.numerics.dtypes import FORMATS, FloatFormat
from oracles.numerics.exact import compile_sympy
from oracles.numerics.floats import ulp_of, ulp_step
from oracles.numerics.rounding import Singular
from oracles.table.conventions import (
    Approach,
    Convention,
    PinnedOnly,
    Rule,
    agrees,
    fmt_value,
    same,
)
from oracles.table.ops import OPS, OpSpec
from oracles.table.reduction_conventions import PINNED_ONLY

# A finite one-sided limit is met when torch's gradient a few ulps away is within LIMIT_TOLERANCE
# (relative to max(1, |limit|)) plus the distance moved (the gradient's own slope, assumed below 1: a few
# ulps of a float16 are 1e-2): far looser than rounding, far tighter than any change of convention.
LIMIT_TOLERANCE = 2.0 ** -8


@dataclass(frozen=True)
class Pinned:
    """One convention of one op, as tests see it: `op/label` (oracles.core.test_ids: `-k` can name it)."""

    op: str
    convention: Convention

    @property
    def id(self) -> str:
        return selectable(f"{self.op}@{self.convention.name}")

    @property
    def spec(self) -> OpSpec | PinnedOnly:
        return OPS[self.op] if self.op in OPS else PINNED_ONLY[self.op]

    @property
    def constant_args(self) -> tuple[int, ...]:
        return self.spec.constant_args

    @property
    def tensor_args(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.convention.at)) if i not in self.constant_args)

    @property
    def elementwise(self) -> bool:
        return self.op in OPS

    def where(self) -> str:
        at = self.convention.at
        if not self.constant_args:
            return f"({', '.join(fmt_value(v) for v in at)})" if len(at) > 1 else fmt_value(at[0])
        args = [fmt_value(v) for i, v in enumerate(at) if i not in self.constant_args]
        consts = [fmt_value(v) for i, v in enumerate(at) if i in self.constant_args]
        return f"{', '.join(args)} (constants {', '.join(consts)})"


def all_pinned() -> list[Pinned]:
    table = [Pinned(name, c) for name, op in OPS.items() for c in op.conventions]
    return table + [Pinned(name, c) for name, op in PINNED_ONLY.items() for c in op.conventions]


def pinned_named(pin_id: str, dtype: str) -> Pinned:
    for pinned in all_pinned():
        if pinned.id == pin_id and dtype in pinned.convention.dtypes:
            return pinned
    raise KeyError(f"no convention {pin_id!r} for {dtype}")


def cases(dtypes) -> Iterator[tuple[Pinned, str]]:
    for pinned in all_pinned():
        for dtype in dtypes:
            if dtype in pinned.convention.dtypes:
                yield pinned, dtype


# ------------------------------------------------------------------ torch at the point
def torch_gradients(pinned: Pinned, at: tuple[float, ...], dtype: str, spelling: int = 0,
                    call: Callable | None = None, device: str = "cpu") -> tuple[float, ...]:
    """torch's gradient per tensor argument of `pinned`'s op at `at`, via spelling number `spelling`
    (or `call`, for fault injection)."""
    fmt = FORMATS[dtype]
    leaves = {i: torch.tensor(at[i], dtype=torch.float64).to(device=device, dtype=fmt.torch_dtype).requires_grad_()
              for i in pinned.tensor_args}
    args = [leaves[i] if i in leaves else at[i] for i in range(len(at))]
    fn = call or pinned.spec.spellings[spelling].call
    fn(*args).sum().backward()
    return tuple(leaves[i].grad.item() for i in pinned.tensor_args)


def torch_tangents(pinned: Pinned, at: tuple[float, ...], dtype: str, device: str = "cpu") -> tuple[float, ...]:
    """torch's forward-mode derivative per tensor argument of `pinned`'s op at `at` (its first spelling): the
    tangent of the summed output with that argument's tangent 1 and the others' 0 (0 where the output's tangent
    is None: torch found no dependence)."""
    fmt = FORMATS[dtype]
    fn = pinned.spec.spellings[0].call
    tangents = []
    for i in pinned.tensor_args:
        with fwAD.dual_level():
            args = []
            for j, value in enumerate(at):
                if j not in pinned.tensor_args:
                    args.append(value)
                    continue
                primal = torch.tensor(value, dtype=torch.float64).to(device=device, dtype=fmt.torch_dtype)
                args.append(fwAD.make_dual(primal, torch.ones_like(primal) if j == i else torch.zeros_like(primal)))
            tangent = fwAD.unpack_dual(fn(*args).sum()).tangent
            tangents.append(0.0 if tangent is None else tangent.item())
    return tuple(tangents)


def _pinned_matches(torch_value: float, pinned_value: float, fmt: FloatFormat) -> bool:
    """Exactly (NaN, ±inf, the sign of zero); a finite nonzero pinned value rounded to the dtype, within
    one ulp (the last bit of a transcendental kernel may differ between CPU vector paths)."""
    expected = fmt.round(pinned_value)
    if not math.isfinite(expected) or expected == 0 or not math.isfinite(torch_value):
        return same(torch_value, expected)
    return abs(torch_value - expected) <= ulp_of(expected, fmt)


def _values(values) -> str:
    return "(" + ", ".join(fmt_value(v) for v in values) + ")" if len(values) > 1 else fmt_value(values[0])


def _rules(convention: Convention) -> str:
    return ", ".join(dict.fromkeys(r.value for r in convention.rules))


def pinned_mismatches(pinned: Pinned, dtype: str, convention: Convention | None = None,
                      call: Callable | None = None, device: str = "cpu") -> list[str]:
    """torch against the pinned value at the exact point, for every spelling; `convention` and `call`
    replace the table's entry and torch's function (fault injection)."""
    convention = convention or pinned.convention
    fmt = FORMATS[dtype]
    spellings = range(len(pinned.spec.spellings)) if call is None else [0]
    messages = []
    for spelling in spellings:
        got = torch_gradients(pinned, convention.at, dtype, spelling, call, device)
        if not all(_pinned_matches(g, p, fmt) for g, p in zip(got, convention.torch)):
            template = pinned.spec.spellings[spelling].template if call is None else "(injected call)"
            messages.append(f"{pinned.op} at {pinned.where()}, {dtype}, {template}: pinned "
                            f"{_values(convention.torch)} ({_rules(convention)}), torch now gives {_values(got)}")
    return messages


def rule_mismatches(pinned: Pinned, dtype: str, device: str = "cpu", forward_mode: bool = False) -> list[str]:
    """torch against what the rule prescribes (fails exactly for the deviations, which are registered): its
    gradient, or with `forward_mode` its forward-mode derivatives (`torch_tangents`), which the rule prescribes
    alike: forward and reverse mode are two evaluations of one linear map."""
    convention = pinned.convention
    fmt = FORMATS[dtype]
    if forward_mode:
        got = torch_tangents(pinned, convention.at, dtype, device)
    else:
        got = torch_gradients(pinned, convention.at, dtype, device=device)
    wrong = [i for i, (g, e, r) in enumerate(zip(got, convention.expected, convention.rules))
             if not agrees(g, e, r, fmt)]
    if not wrong:
        return []
    rule = "; ".join(f"x{i}: {convention.rules[i].clause} -> {fmt_value(convention.expected[i])}" for i in wrong)
    what = "torch's forward mode gives" if forward_mode else "torch gives"
    message = f"{pinned.op} at {pinned.where()}, {dtype}: {what} {_values(got)} but the rule says {rule}."
    return [f"{message} Why: {convention.why}"]


# ------------------------------------------------------------------ approaching the point
def approach_point(pinned: Pinned, approach: Approach, k: int, dtype: str) -> tuple[float, ...]:
    """The point with argument `approach.arg` moved k ulps towards `approach.side`."""
    at = list(pinned.convention.at)
    at[approach.arg] = ulp_step(at[approach.arg], approach.side * k, FORMATS[dtype])
    return tuple(at)


def single_op_case(op: str, at: tuple[float, ...], dtype: str, spelling: int = 0) -> GradCase:
    """Op `op` of the table applied to inputs x0, x1, ... (one per tensor argument, 0-d) and its
    constants, at `at`."""
    constants = OPS[op].constant_args
    args, values, n = [], [], 0
    for i, value in enumerate(at):
        if i in constants:
            args.append(Const(value))
        else:
            args.append(Var(n))
            values.append((value,))
            n += 1
    return GradCase(Apply(op, tuple(args), spelling), ((),) * n, tuple(values), dtype)


def approach_case(pinned: Pinned, at: tuple[float, ...], dtype: str, spelling: int = 0) -> GradCase:
    return single_op_case(pinned.op, at, dtype, spelling)


# Precisions tried in turn when SymPy's form of a derivative cancels (1 - tanh(x)^2 at x = 1e16 leaves
# a ball of ±1e-57 at the working precision): the value must be known to 2^-70 relatively, or lie
# within 2^-1100 of 0 (below every float's resolution), else it is unknown.
EXACT_PRECISIONS = (ctx.prec, 1024, 8192)


def _precise(evaluate, point) -> float | None:
    """`evaluate` at `point` (floats, or a function building the point's balls at the current precision)."""
    saved = ctx.prec
    try:
        for bits in EXACT_PRECISIONS:
            ctx.prec = bits
            value = evaluate(point() if callable(point) else tuple(arb(p) for p in point))
            if not value.is_finite():
                return None
            if value.rad() <= abs(value.mid()) * arb(2) ** -70 or value.rad() < arb(2) ** -1100:
                return float(value.mid())
        return None
    finally:
        ctx.prec = saved


def exact_gradients(case: GradCase) -> tuple[float | None, ...]:
    """SymPy's exact derivative per input at the case's (scalar) point, rounded to a Python float;
    None where it is singular or cannot be pinned down (see EXACT_PRECISIONS)."""
    point = tuple(v[0] for v in case.values)
    out = []
    for i in range(len(case.values)):
        try:
            out.append(_precise(compile_sympy(derivative(case.expr, i)), point))
        except Singular:
            out.append(None)
    return tuple(out)


def exact_value(case: GradCase) -> float | None:
    """SymPy's exact value of the case's expression at its (scalar) point."""
    try:
        return _precise(compile_sympy(to_sympy(case.expr)), tuple(v[0] for v in case.values))
    except Singular:
        return None


# ------------------------------------------------------------------ the second derivative at the point
# A one-sided limit of the second derivative is read exactly at two distances off the point (relative to
# max(1, |x|)), both far below every dtype's resolution: where the two values agree (LIMIT_TOLERANCE) the piece is
# analytic up to the point and that is the limit; where the nearer is far larger, with the same sign, it diverges.
SIDE_OFFSETS = (2.0 ** -80, 2.0 ** -100)


def _one_sided_second(program, point: list[float], var: int, direction: int) -> float | None:
    values = []
    for offset in SIDE_OFFSETS:
        def shifted(offset=offset):
            balls = [arb(v) for v in point]
            balls[var] += direction * arb(offset) * max(1.0, abs(point[var]))
            return tuple(balls)
        values.append(_precise(program, shifted))
    far, near = values
    if far is None or near is None:
        return None
    if abs(far - near) <= LIMIT_TOLERANCE * max(1.0, abs(near)):
        return near
    if (far > 0) == (near > 0) and abs(near) > 2 * abs(far):
        return math.copysign(math.inf, near)
    return None


def second_derivative_limit(pinned: Pinned, arg: int) -> float | None:
    """The limit of ∂²f/∂x_arg² at the convention point, from the sides the convention approaches x_arg from
    (both where it names none): where they agree, the value the calculus prescribes there (a smooth point has
    it; a kink of a piecewise-linear function has 0 on both sides; a pole of the first derivative, ±inf). None
    where the first derivative is undefined there, or the sides differ or are unknown."""
    convention = pinned.convention
    var = pinned.tensor_args.index(arg)
    if convention.rules[var] is Rule.UNDEFINED:
        return None
    case = single_op_case(pinned.op, convention.at, "float64")
    try:
        program = compile_sympy(sympy.diff(derivative(case.expr, var), symbol(var)))
    except Singular:
        return None
    point = [v[0] for v in case.values]
    directions = sorted({a.side for a in convention.approaches if a.arg == arg}) or [-1, 1]
    try:
        sides = [_one_sided_second(program, point, var, direction) for direction in directions]
    except Singular:
        return None
    if any(side is None for side in sides):
        return None
    if all(math.isinf(side) for side in sides):
        return sides[0] if len(set(sides)) == 1 else None
    if any(math.isinf(side) for side in sides):
        return None
    if max(sides) - min(sides) <= LIMIT_TOLERANCE * max(1.0, *(abs(side) for side in sides)):
        return sum(sides) / len(sides)
    return None


def torch_second_derivatives(pinned: Pinned, at: tuple[float, ...], dtype: str,
                             device: str = "cpu") -> tuple[float, ...]:
    """torch's ∂²f/∂x_i² per tensor argument of `pinned`'s op at `at` (its first spelling): autograd.grad of the
    gradient, built with create_graph=True (0 where the gradient does not depend on x_i)."""
    fmt = FORMATS[dtype]
    values = []
    for i in pinned.tensor_args:
        leaves = {j: torch.tensor(at[j], dtype=torch.float64).to(device=device, dtype=fmt.torch_dtype).requires_grad_()
                  for j in pinned.tensor_args}
        args = [leaves[j] if j in leaves else at[j] for j in range(len(at))]
        (gradient,) = torch.autograd.grad(pinned.spec.spellings[0].call(*args).sum(), leaves[i], create_graph=True)
        if not gradient.requires_grad:
            values.append(0.0)
            continue
        (second,) = torch.autograd.grad(gradient, leaves[i], allow_unused=True)
        values.append(0.0 if second is None else second.item())
    return tuple(values)


def second_order_mismatches(pinned: Pinned, dtype: str, device: str = "cpu") -> tuple[list[str], int]:
    """torch's second derivative at the point against `second_derivative_limit`, per tensor argument that has
    one: the messages, and how many arguments were judged. A finite limit rounded to the dtype is met within
    LIMIT_TOLERANCE of max(1, |limit|); an infinite one (or one beyond the dtype's range) only by that
    infinity."""
    fmt = FORMATS[dtype]
    limits = {i: second_derivative_limit(pinned, i) for i in pinned.tensor_args}
    judged = {i: limit for i, limit in limits.items() if limit is not None}
    if not judged:
        return [], 0
    got = dict(zip(pinned.tensor_args, torch_second_derivatives(pinned, pinned.convention.at, dtype, device)))
    messages = []
    for i, limit in judged.items():
        expected = fmt.round(limit)
        if math.isinf(expected):
            ok = same(got[i], expected)
        else:
            ok = math.isfinite(got[i]) and abs(got[i] - expected) <= LIMIT_TOLERANCE * max(1.0, abs(expected))
        if not ok:
            messages.append(f"{pinned.op} at {pinned.where()}, {dtype}: torch's second derivative in x{i} is "
                            f"{got[i]!r}, where its limit is {fmt_value(limit)}")
    return messages, len(judged)


def limit_mismatches(pinned: Pinned, approach: Approach, k: int, dtype: str, got: tuple[float, ...],
                     exact: tuple[float | None, ...]) -> list[str]:
    """torch's gradient k ulps off the point against the pinned one-sided limit: within LIMIT_TOLERANCE
    of a finite limit; for an infinite one, the same sign and at least half the exact magnitude (inf
    itself where the exact value overflows the dtype)."""
    fmt = FORMATS[dtype]
    messages = []
    x = approach_point(pinned, approach, k, dtype)[approach.arg]
    for j, (limit, g, e) in enumerate(zip(approach.limit, got, exact)):
        if limit is None:
            continue
        if math.isfinite(limit):
            moved = abs(x - pinned.convention.at[approach.arg])
            ok = math.isfinite(g) and abs(g - limit) <= LIMIT_TOLERANCE * max(1.0, abs(limit)) + moved
        elif math.isnan(g) or g == 0 or math.copysign(1.0, g) != math.copysign(1.0, limit):
            ok = False
        elif e is not None and abs(e) > fmt.max_finite:
            ok = same(g, limit)
        else:
            ok = e is None or abs(g) >= abs(e) / 2
        if not ok:
            exact_text = "singular" if e is None else repr(e)
            messages.append(
                f"{pinned.op} approaching {pinned.where()} from {approach.label} ({k} ulp{'s' * (k > 1)}, "
                f"x{approach.arg} = {x!r}), {dtype}: pinned one-sided limit of grad x{j} is "
                f"{fmt_value(limit)} ({pinned.convention.rules[j].value}), torch gives {g!r} (exact {exact_text})")
    return messages


def table_problems() -> list[str]:
    """Consistency of the conventions table itself (no torch involved)."""
    problems = []
    seen = set()
    for pinned in all_pinned():
        c = pinned.convention
        for dtype in c.dtypes:  # an id may repeat for disjoint dtypes (values that differ by dtype)
            if (pinned.id, dtype) in seen:
                problems.append(f"{pinned.id}: duplicate id for {dtype}")
            seen.add((pinned.id, dtype))
        if pinned.elementwise and len(c.at) != OPS[pinned.op].arity:
            problems.append(f"{pinned.id}: {len(c.at)} arguments, {pinned.op} takes {OPS[pinned.op].arity}")
        if len(c.torch) != len(pinned.tensor_args):
            problems.append(f"{pinned.id}: {len(c.torch)} pinned gradients for {len(pinned.tensor_args)} tensors")
        for dtype in c.dtypes:
            fmt = FORMATS[dtype]
            for i in pinned.tensor_args:
                if not same(fmt.round(c.at[i]), c.at[i]):
                    problems.append(f"{pinned.id}: x{i} = {c.at[i]!r} is not representable in {dtype}")
        for rule, expected in zip(c.rules, c.expected):
            if (expected is None) != (rule is Rule.UNDEFINED):
                problems.append(f"{pinned.id}: only the UNDEFINED clause may leave the expected value open")
        for approach in c.approaches:
            if approach.arg not in pinned.tensor_args or approach.side not in (1, -1):
                problems.append(f"{pinned.id}: approach {approach.label} moves no tensor argument")
        if c.approaches and not pinned.elementwise:
            problems.append(f"{pinned.id}: approaches need an elementwise op")
    return problems
