"""The elementwise oracle's fast pass: every point of a case at once, in `Bounds` (oracles.numerics.bounds).

It runs the two derivations of oracles.core.gradient_oracle over the whole vector of points instead of point by
point in arb: torch's reverse mode with the op table's own `forward` and `local_grads` formulas, every operation
rounded by `BoundsModel` (the `RoundingModel`'s arithmetic over intervals), and the exact derivative by the
op table's SymPy partials chained over the tree. An element is *verified* here only where
- the exact value's outer hull excludes 0 and lies inside the model's inner part (so the exact path's ball
  would contain the exact value: no inconsistency),
- torch's value lies inside the model's inner part, which the exact path's enclosure contains, and
- the model's outer distance from the exact value is below half of it (the exact path's balls may be a little
  wider than these intervals: it would not call the bound wider than the value).
Everything else, and every case whose formulas branch on a sign or use a function the intervals do not
follow, goes to the exact path, which decides it as before. So the fast pass never calls an element wrong
and never verifies one the exact path would find wrong (meta_tests/test_fast_pass.py checks it against the exact
path). check_case uses it from FAST_PASS_MIN_POINTS points on (oracles.core.check).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from flint import arb

from oracles.core.case import GradCase, all_indices, numel
from oracles.core.chain_rule import exact_gradient, op_constants, op_forms
from oracles.core.expr import Apply, Const, Expr, Var, walk
from oracles.core.gradient_oracle import model_forward
from oracles.core.verdict import ElementVerdict, Verdict, float64_values
from oracles.numerics.bounds import (
    DOUBLE,
    LONG_DOUBLE,
    PRECISIONS,
    Bounds,
    NotVectorizable,
    Precision,
    as_bounds,
    outward,
)
from oracles.numerics.bounds_exact import BoundsEvaluator, compile_bounds
from oracles.numerics.dtypes import FloatFormat, format_named
from oracles.numerics.floats import ulp_of
from oracles.numerics.rounding import Overflow, Singular
from oracles.table.ops import OPS

FLOAT32 = format_named("float32")
# formats of up to 24 significant bits (float32, bfloat16, float16) are followed in doubles: the model allows
# them 2^-24 or more per operation, and a double pass errs by ~2^-52 per operation; float64 needs long doubles
DOUBLE_ENOUGH_BELOW = 24
ONE = arb(1)
# arb's enclosures contain the intervals followed here, and may be a little wider: near the top of the range
# the exact path could see an overflow this pass does not, so it stops short of it
RANGE_MARGIN = 1 - 2.0**-20


class BoundsModel:
    """`RoundingModel` (oracles.numerics.rounding) over `Bounds`: each rounded result widened by k·(u·|value| +
    η), with the bounds of |value| taken low for the inner part and high for the outer hull. Where a value may
    exceed the format's range, its points become NaN (the exact path says overflow); a decision on a sign raises
    `NotVectorizable`."""

    def __init__(self, fmt: FloatFormat, precision: Precision):
        self.format = fmt
        self.precision = precision
        self.dtype = precision.dtype
        self.u = self.dtype.type(fmt.unit_roundoff)
        self.eta = self.dtype.type(fmt.absolute_error)
        self.limit = self.dtype.type(fmt.max_finite) * self.dtype.type(RANGE_MARGIN)
        # the widening's own rounding (a few operations), taken off its low bound and added to its high one
        self.safe_low, self.safe_high = 1 - 8 * precision.arithmetic, 1 + 8 * precision.arithmetic

    @functools.cached_property
    def opmath(self) -> BoundsModel:
        if self.format.mantissa_bits >= FLOAT32.mantissa_bits:
            return self
        return BoundsModel(FLOAT32, self.precision)

    def store(self, value) -> Bounds:
        return value if self.opmath is self else self.round(value)

    def in_range(self, value) -> Bounds:
        value = as_bounds(value, self.dtype)
        a, _, _, d = value.ends
        with np.errstate(invalid="ignore"):  # NaN compares False: outside too
            outside = ~((np.abs(a) <= self.limit) & (np.abs(d) <= self.limit))
        # the outer hull decides whether torch may overflow; a NaN inner end reaches the final decision
        return value.invalidate(outside)

    def round(self, value, k=1, magnitude: tuple[np.ndarray, np.ndarray] | None = None) -> Bounds:
        value = as_bounds(value, self.dtype)
        low, high = value.max_abs() if magnitude is None else magnitude
        k = np.asarray(k, dtype=self.dtype)
        w_low = k * (self.u * low + self.eta) * self.safe_low
        w_high = k * (self.u * high + self.eta) * self.safe_high
        a, b, c, d = value.ends
        ends = np.stack(np.broadcast_arrays(a - w_high, b - w_low, c + w_low, d + w_high))
        return self.in_range(Bounds(outward(ends)))

    def add(self, a, b) -> Bounds:
        return self.round(as_bounds(a, self.dtype) + b)

    def sub(self, a, b) -> Bounds:
        return self.round(as_bounds(a, self.dtype) - b)

    def mul(self, a, b) -> Bounds:
        return self.round(as_bounds(a, self.dtype) * b)

    def div(self, a, b) -> Bounds:
        return self.round(as_bounds(a, self.dtype) / b)

    def const(self, value: float) -> Bounds:
        if self.format.round(value) == value:
            return as_bounds(arb(value), self.dtype)
        return self.round(arb(value))

    def _undecidable(self, *args, **kwargs):
        raise NotVectorizable("a decision on the sign or exactness of a value")

    sign = greater = holds = correctly_rounded = sum = _undecidable


# ------------------------------------------------------------------ the model: torch's reverse mode
def _backward(node, adjoint, model: BoundsModel, into: dict[int, list[Bounds]]) -> None:
    """oracles.core.gradient_oracle's reverse mode over intervals, from `model_forward`'s nodes."""
    if isinstance(node.expr, Var):
        into.setdefault(node.expr.index, []).append(as_bounds(adjoint, model.dtype))
        return
    for local, child in zip(node.local_grads, node.children):
        if isinstance(child.expr, Const):
            continue
        passes_through = isinstance(local, arb) and local.is_exact() and abs(local) == 1
        grad = model.in_range(as_bounds(adjoint, model.dtype) * local) if passes_through else model.mul(adjoint, local)
        _backward(child, grad, model, into)


# ------------------------------------------------------------------ the exact derivative
@dataclass(frozen=True)
class _BoundsProgram:
    value: BoundsEvaluator
    partials: tuple[BoundsEvaluator | None, ...]


@functools.cache
def _op_program(name: str, constants: tuple) -> _BoundsProgram | None:
    function, partials = op_forms(name, constants)
    value = compile_bounds(function)
    compiled = tuple(None if p is None else compile_bounds(p) for p in partials)
    if value is None or any(c is None for c, p in zip(compiled, partials) if p is not None):
        return None
    return _BoundsProgram(value, compiled)


def _program(expr: Apply) -> _BoundsProgram:
    """The op's value and partials over intervals, for oracles.core.chain_rule.exact_gradient."""
    program = _op_program(expr.op, op_constants(expr))
    if program is None:
        raise NotVectorizable(f"{expr.op} has a part the intervals do not follow")
    return program


# ------------------------------------------------------------------ per element, and the decision
def _per_element(terms: list[Bounds], source: np.ndarray, count: int, points: int) -> tuple[Bounds, np.ndarray]:
    """The sum of every term (a vector over the points) into the element each point reads (`source`), and how
    many terms each element sums; the additions' own rounding moved outward."""
    dtype = terms[0].ends.dtype
    total = np.zeros((4, count), dtype=dtype)
    size = np.zeros((4, count), dtype=dtype)
    for term in terms:
        ends = np.broadcast_to(term.ends, (4, points))
        for k in range(4):
            np.add.at(total[k], source, ends[k])
            np.add.at(size[k], source, np.abs(ends[k]))
    n = np.bincount(source, minlength=count) * len(terms)
    return Bounds(outward(total, 0, size * (n * PRECISIONS[dtype].arithmetic))), n


def _magnitude(terms: list[Bounds], source: np.ndarray, count: int, points: int,
               model: BoundsModel) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on Σ max|term| per element (the magnitude `RoundingModel.sum` scales a sum's error by)."""
    low, high = np.zeros(count, dtype=model.dtype), np.zeros(count, dtype=model.dtype)
    for term in terms:
        term_low, term_high = (np.broadcast_to(m, (points,)) for m in term.max_abs())
        np.add.at(low, source, term_low)
        np.add.at(high, source, term_high)
    return low * model.safe_low, high * model.safe_high


def _sources(case: GradCase, leaf: int) -> np.ndarray:
    """For each point of the output (row-major), the flat index of the element of input `leaf` it reads."""
    shape = case.shapes[leaf]
    return np.broadcast_to(np.arange(numel(shape)).reshape(shape), case.output_shape).reshape(-1)


def _well_formed(case: GradCase, grads: Sequence[torch.Tensor | None]) -> bool:
    """Every used input has a `.grad` of its shape and dtype, every other none: what `judge` checks first."""
    for leaf, grad in enumerate(grads):
        if leaf not in case.used:
            if grad is not None:
                return False
        elif grad is None or tuple(grad.shape) != case.shapes[leaf] or grad.dtype != case.format.torch_dtype:
            return False
    return True


def follows(expr: Expr) -> bool:
    """Whether every op of `expr` has formulas the intervals can run (`OpSpec.interval_formulas`)."""
    return all(OPS[node.op].interval_formulas for node in walk(expr) if isinstance(node, Apply))


def fast_verdicts(case: GradCase, grads: Sequence[torch.Tensor | None],
                  upstream: Sequence[float] | None = None) -> dict[tuple[int, int], ElementVerdict]:
    """The elements of every input's `.grad` this pass verifies, keyed by (input, flat index); the others (all
    of them where the case's formulas leave the pass) are for the exact path."""
    if not _well_formed(case, grads) or not follows(case.expr):
        return {}
    points = numel(case.output_shape)
    precision = LONG_DOUBLE if case.format.mantissa_bits > DOUBLE_ENOUGH_BELOW else DOUBLE
    model = BoundsModel(case.format, precision)
    point = tuple(Bounds.points(np.broadcast_to(np.asarray(case.values[i], dtype=np.float64).reshape(case.shapes[i]),
                                                case.output_shape).reshape(-1), precision) if i in case.used else None
                  for i in range(len(case.shapes)))
    weight = as_bounds(ONE, model.dtype) if upstream is None else Bounds.points(upstream, precision)
    try:
        with np.errstate(all="ignore"):
            into: dict[int, list[Bounds]] = {}
            _backward(model_forward(case.expr, point, model), weight, model, into)
            exact = exact_gradient(case.expr, point, weight, _program)
        if any(leaf not in exact for leaf in case.used):
            return {}
    except (NotVectorizable, Singular, Overflow, TypeError, ArithmeticError):
        # TypeError: an arb function of the table called on an interval (e.g. `arb.atan2`); the exact path
        # follows every formula
        return {}
    decided: dict[tuple[int, int], ElementVerdict] = {}
    for leaf in case.used:
        source, count = _sources(case, leaf), numel(case.shapes[leaf])
        with np.errstate(all="ignore"):
            terms = into.get(leaf, [])
            if not terms:
                continue
            total, n = _per_element(terms, source, count, points)
            enclosure = model.round(total, np.maximum(n - 1, 0), _magnitude(terms, source, count, points, model))
            exact_sum, _ = _per_element([exact[leaf]], source, count, points)
            a, b, c, d = enclosure.ends
            low, high = exact_sum.outer
            torch_values = np.asarray(float64_values(grads[leaf]), dtype=np.float64)
            t = torch_values.astype(model.dtype)
            bound = np.maximum(d - low, high - a) * model.safe_high
            verified = (np.isfinite(enclosure.ends).all(axis=0) & np.isfinite(low) & np.isfinite(high)
                        & ((low > 0) | (high < 0)) & (b <= low) & (high <= c)
                        & np.isfinite(torch_values) & (b <= t) & (t <= c)
                        & (2 * bound < np.minimum(np.abs(low), np.abs(high))))
        exact_values = ((low + high) / 2).astype(np.float64)
        for flat, index in enumerate(all_indices(case.shapes[leaf])):
            if verified[flat]:
                exact_f = float(exact_values[flat])
                decided[(leaf, flat)] = ElementVerdict(leaf, index, Verdict.VERIFIED, float(torch_values[flat]),
                                                       exact_f, float(bound[flat]), ulp=ulp_of(exact_f, case.format))
    return decided


def points_reading(case: GradCase, undecided: dict[int, set[int]]) -> list[int]:
    """The output points (row-major flat indices) that read any of the `undecided` elements of each input."""
    needed = np.zeros(numel(case.output_shape), dtype=bool)
    for leaf, flats in undecided.items():
        if flats:
            mask = np.zeros(numel(case.shapes[leaf]), dtype=bool)
            mask[list(flats)] = True
            needed |= mask[_sources(case, leaf)]
    return np.flatnonzero(needed).tolist()
