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
A formula that branches on a sign or a comparison (relu, clamp, maximum) splits the points: the pass runs again
on the points on each side of the decision (`Split`, up to MAX_SPLITS deep), and the points that straddle it go
to the exact path. Everything else, and every case using a function the intervals do not follow, goes to the
exact path, which decides it as before. So the fast pass never calls an element wrong
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
from oracles.core.expr import Apply, Expr, walk
from oracles.core.gradient_oracle import model_forward, reverse_mode
from oracles.core.verdict import ElementVerdict, Verdict, float64_values
from oracles.numerics.bounds import (
    DOUBLE,
    LONG_DOUBLE,
    PRECISIONS,
    Bounds,
    NotVectorizable,
    Precision,
    Split,
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
# nested splits of the points at decisions that differ between them (each level at most doubles the runs); the
# points of a deeper split go to the exact path
MAX_SPLITS = 4


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

    def sign(self, value) -> int:
        """The sign every point's interval has, as `RoundingModel.sign`; `Split` where the points differ (those
        whose interval may touch 0 in neither group: a kink, for the exact path)."""
        a, _, _, d = as_bounds(value, self.dtype).ends
        return _decided((a > 0, d < 0), (1, -1))

    def greater(self, x, y) -> bool:
        """x > y at every point, as `RoundingModel.greater`; `Split` where the points differ (a possible tie in
        neither group)."""
        x, y = as_bounds(x, self.dtype).ends, as_bounds(y, self.dtype).ends
        return _decided((x[0] > y[3], x[3] <= y[0]), (True, False))

    def times_local(self, adjoint, local) -> Bounds:
        """As `RoundingModel.times_local`, point by point: exact where the local derivative is exactly ±1 there,
        rounded elsewhere. Never wider than the exact path's model: a wider enclosure could take a torch value it
        rejects."""
        adjoint, local = as_bounds(adjoint, self.dtype), as_bounds(local, self.dtype)
        a, _, _, d = local.ends
        unit = (a == d) & (np.abs(a) == 1)
        if not unit.any():
            return self.mul(adjoint, local)
        exact = self.in_range(adjoint * local)
        if unit.all():
            return exact
        return Bounds(np.where(unit, exact.ends, self.mul(adjoint, local).ends))

    def _undecidable(self, *args, **kwargs):
        raise NotVectorizable("a decision on the exactness of a value, or a sum of a varying number of terms")

    holds = correctly_rounded = sum = _undecidable


def _decided(groups: tuple[np.ndarray, np.ndarray], outcomes: tuple):
    """The outcome every point shares, or `Split` into the points of each outcome. A decision no point can make
    (all straddle: a constant at the kink) is `Singular`, as in `RoundingModel`."""
    for group, outcome in zip(groups, outcomes):
        if group.all():
            return outcome
    if not any(group.any() for group in groups):
        raise Singular("the decision may tie at every point")
    raise Split(groups)


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
            found = _both_sides(case, point, weight, model, np.arange(points), 0)
    except _NOT_FOLLOWED:
        return {}
    if found is None:
        return {}
    into, exact = found
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


Sides = tuple[dict[int, list[Bounds]], dict[int, Bounds]]  # per input: the model's terms, the exact gradient
# where the pass stops and the exact path, which follows every formula, decides; TypeError: an arb function of the
# table called on an interval (e.g. `arb.atan2`)
_NOT_FOLLOWED = (NotVectorizable, Singular, Overflow, TypeError, ArithmeticError)


def _both_sides(case: GradCase, point: tuple, weight: Bounds, model: BoundsModel, at: np.ndarray,
                depth: int) -> Sides | None:
    """The model's terms and the exact gradient at the points `at` (positions in the case's points; `point` and
    `weight` hold those points only), each as long as all the case's points, NaN where not followed. Where a
    formula's decision differs between the points, each group of points that decides it alike runs again."""
    try:
        into: dict[int, list[Bounds]] = {}
        forward = model_forward(case.expr, point, model)
        reverse_mode(forward, weight, model, into)
        exact = exact_gradient(case.expr, point, weight, _program)
        if any(leaf not in exact for leaf in case.used):
            return None
        # the exact path judges a point whole: a value outside an op's domain or an overflow anywhere in the forward
        # or in any input's gradient is a failure for every input there, whatever the other formulas give
        failed = _undefined(forward)
        for value in [*exact.values(), *(term for terms in into.values() for term in terms)]:
            failed = failed | np.isnan(value.ends).any(axis=0)
        exact = {leaf: value.invalidate(failed) for leaf, value in exact.items()}
        return _placed(into, exact, at, case)
    except Split as split:
        if depth == MAX_SPLITS:
            return None
        parts = []
        for group in split.groups:
            chosen = np.flatnonzero(np.broadcast_to(group, at.shape))
            if chosen.size:
                sub = tuple(None if p is None else p.take(chosen) for p in point)
                try:
                    found = _both_sides(case, sub, weight.take(chosen), model, at[chosen], depth + 1)
                except _NOT_FOLLOWED:  # on this side only (elu's exp branch): the other groups still count
                    found = None
                if found is not None:
                    parts.append(found)
        return _merged(parts, case)


def _undefined(node) -> np.ndarray:
    """Per point, whether any value of the forward pass is NaN (not followed, or outside the model)."""
    undefined = np.zeros(1, dtype=bool)
    for child in node.children:
        undefined = undefined | _undefined(child)
    if isinstance(node.value, Bounds):
        undefined = undefined | np.isnan(node.value.ends).any(axis=0)
    return undefined


def _placed(into: dict[int, list[Bounds]], exact: dict[int, Bounds], at: np.ndarray, case: GradCase) -> Sides:
    """Terms and exact gradients at the points `at`, spread over all the case's points (NaN elsewhere)."""
    points = numel(case.output_shape)
    if at.size == points:
        return into, exact

    def spread(value: Bounds) -> Bounds:
        ends = np.full((4, points), np.nan, dtype=value.ends.dtype)
        ends[:, at] = np.broadcast_to(value.ends, (4, at.size))
        return Bounds(ends)

    return ({leaf: [spread(t) for t in terms] for leaf, terms in into.items()},
            {leaf: spread(value) for leaf, value in exact.items()})


def _merged(parts: list[Sides], case: GradCase) -> Sides | None:
    """The groups' results, each NaN outside its own points, as one. The groups run the same tree, so each input
    has as many terms in each (a term per path from the output to it); otherwise the exact path decides."""
    if not parts:
        return None
    into, exact = parts[0]
    for other_into, other_exact in parts[1:]:
        if other_into.keys() != into.keys() or any(len(other_into[k]) != len(into[k]) for k in into):
            return None
        into = {leaf: [_either(t, u) for t, u in zip(terms, other_into[leaf])] for leaf, terms in into.items()}
        exact = {leaf: _either(value, other_exact[leaf]) for leaf, value in exact.items()}
    return into, exact


def _either(x: Bounds, y: Bounds) -> Bounds:
    """Where x is NaN (not its points), y."""
    return Bounds(np.where(np.isnan(x.ends), y.ends, x.ends))


def points_reading(case: GradCase, undecided: dict[int, set[int]]) -> list[int]:
    """The output points (row-major flat indices) that read any of the `undecided` elements of each input."""
    needed = np.zeros(numel(case.output_shape), dtype=bool)
    for leaf, flats in undecided.items():
        if flats:
            mask = np.zeros(numel(case.shapes[leaf]), dtype=bool)
            mask[list(flats)] = True
            needed |= mask[_sources(case, leaf)]
    return np.flatnonzero(needed).tolist()
