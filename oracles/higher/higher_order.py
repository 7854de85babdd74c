"""Higher derivatives of an expression at every point: exact, and torch's enclosure.

Per point of the broadcast output, two jets (oracles.higher.jets) of order 2 or 3 over the point's inputs:
- exact: each op's partial derivatives up to that order, derived by SymPy on fresh symbols and chained
  exactly by Taylor composition in arb at 192 bits (re-evaluated at higher precision where SymPy's form
  cancels) -- the higher-order analogue of oracles.core.chain_rule;
- model: torch's forward values as `RoundingModel` computes them, and derivatives obtained by
  differentiating torch's own backward formulas (the op table's `local_grads`, evaluated on jets by
  `JetModel`): the first derivative of y = op(a) is Σ_k L_k·∂a_k with L_k torch's local derivative; its
  derivative needs L_k's, which is L_k's formula evaluated on the jets of its arguments and of y itself
  (torch differentiates `tanh_backward(grad, y)` through y, `grad * cos(x)` through x). So saturation
  and cancellation inside torch's formulas (1 - y*y at y = 1, (1 - y)*y for sigmoid) are modelled as
  they are computed, one order up as at first order.
The two are independent; the exact value must lie in the enclosure (`OracleInconsistency` otherwise).

`expected_nested` turns per-point derivative tensors into what nested `torch.autograd.grad` calls return:
grad(y, xs, U) -> g; grad(g, xs, V) -> h; grad(h, xs, W) -> t, summed over broadcasting.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial

import sympy
from flint import arb

from oracles.core.case import GradCase, all_indices, broadcast_source, flat_index, numel
from oracles.core.chain_rule import at_rising_precision
from oracles.core.expected import ExpectedElement, ExpectedGrad, Status, model_then_exact, reconcile
from oracles.core.expr import Apply, Const, Expr, Var
from oracles.core.render import symbol, torch_source
from oracles.higher.jets import Jet, JetModel, check_peaks, factorial_of, monomials
from oracles.higher.jets import _factor as peak_factor
from oracles.higher.jets import _factor_or_one as peak_factor_or_one
from oracles.numerics.exact import Evaluator, compile_sympy
from oracles.numerics.rounding import Overflow, RoundingModel, Singular
from oracles.table.ops import OPS

ONE = arb(1)


# ------------------------------------------------------------------ exact jets
@functools.cache
def op_partials(name: str, constants: tuple[Fraction | None, ...], order: int) -> dict[tuple[int, ...], Evaluator]:
    """Every partial derivative of the op up to `order` with respect to its tensor arguments (keys:
    sorted tuples of argument positions, () for the value), derived by SymPy and compiled; constant
    arguments fixed to their exact values, as in oracles.core.chain_rule."""
    args = [symbol(i) if c is None else sympy.Rational(c.numerator, c.denominator) for i, c in enumerate(constants)]
    function = OPS[name].sympy(*args)
    tensor_positions = [i for i, c in enumerate(constants) if c is None]
    partials = {}
    for degree in range(order + 1):
        for key in itertools.combinations_with_replacement(tensor_positions, degree):
            derivative = sympy.diff(function, *(symbol(i) for i in key)) if key else function
            partials[key] = compile_sympy(derivative)
    return partials


def _constants(expr: Apply) -> tuple[Fraction | None, ...]:
    return tuple(arg.exact if isinstance(arg, Const) else None for arg in expr.args)


def _exact_jet(expr: Expr, point: tuple[arb, ...], slot: dict[int, int], n: int, order: int):
    if isinstance(expr, Var):
        return Jet.variable(point[expr.index], slot[expr.index], n, order, tracked=False)
    if isinstance(expr, Const):
        return arb(expr.value)
    kids = [None if isinstance(a, Const) else _exact_jet(a, point, slot, n, order) for a in expr.args]
    args = tuple(arb(0) if k is None else k.value for k in kids)
    partials = op_partials(expr.op, _constants(expr), order)
    tensor = [(position, kid) for position, kid in enumerate(kids) if kid is not None]
    steps = [kid - kid.value for _, kid in tensor]  # the nilpotent parts
    powers: dict[tuple[int, int], Jet] = {}

    def power(which: int, exponent: int) -> Jet:
        if (which, exponent) not in powers:
            powers[(which, exponent)] = steps[which] if exponent == 1 else power(which, exponent - 1) * steps[which]
        return powers[(which, exponent)]

    result = Jet.constant(partials[()](args), n, order, tracked=False)
    position_of = {position: which for which, (position, _) in enumerate(tensor)}
    for key, program in partials.items():
        if not key:
            continue
        value = program(args)
        if not value.is_finite():
            raise Singular(f"a partial derivative of {expr.op} is undefined here")
        term = None
        for position in sorted(set(key)):
            factor = power(position_of[position], key.count(position))
            term = factor if term is None else term * factor
        result = result + term * (value / factorial_of(key))
    return result


def exact_jet(expr: Expr, point: tuple[arb, ...], variables: Sequence[int], order: int) -> Jet:
    """Taylor coefficients of `expr` at `point` up to `order` in the inputs `variables` (slot k is input
    variables[k]), exactly (balls of radius ~2^-190, re-evaluated at up to 4096 bits where a coefficient is
    an unresolved ball). Raises `Singular` at kinks and ties."""
    slot = {v: k for k, v in enumerate(variables)}
    return at_rising_precision(lambda: _exact_jet(expr, point, slot, len(variables), order), lambda jet: jet.c)


# ------------------------------------------------------------------ model jets
KNOWN_DEVIATION = "known torch deviation"


class KnownDeviation(Singular):
    """A point where torch's higher derivative is known to differ from the mathematics (pinned by a test
    of its own): counted as unverified with its reason, never judged."""


def _passes_through(local) -> bool:
    return isinstance(local, arb) and local.is_exact() and abs(local) == 1


def _model_jet(expr: Expr, point: tuple[arb, ...], slot: dict[int, int], n: int, order: int,
               F: RoundingModel, JF: JetModel, forward_ad: bool, first: int | None = None):
    if isinstance(expr, Var):
        return Jet.variable(point[expr.index], slot[expr.index], n, order, tracked=True)
    if isinstance(expr, Const):
        return F.const(expr.value)
    op = OPS[expr.op]
    kids = [_model_jet(a, point, slot, n, order, F, JF, forward_ad, first) for a in expr.args]
    values = [k.value if isinstance(k, Jet) else k for k in kids]
    y = Jet.constant(F.in_range(op.forward(F, *values)), n, order, tracked=True)
    tensor = [(k, kid) for k, (arg, kid) in enumerate(zip(expr.args, kids)) if not isinstance(arg, Const)]
    if not tensor:  # a constant subexpression (`1.0 / 2.0` in a polynomial): every derivative is 0
        return JF.in_range(y)
    keys = monomials(n, order)
    deviation = op.second_order_deviation
    if order >= 2 and deviation is not None and deviation.applies(values):
        raise KnownDeviation(f"{KNOWN_DEVIATION}: {deviation.description}")
    for r in range(1, order + 1):
        if r == 1:
            local = op.local_grads(F, values, y.value)
        else:
            lowered = [kid.truncated(r - 1) if isinstance(kid, Jet) else kid for kid in kids]
            local = op.local_grads(JF, lowered, y.truncated(r - 1))
        rule = op.forward_tangent if forward_ad and r == 1 else None
        # A mixed partial has a route per distinct variable in it: torch's backward formula of that one
        # first, then derivatives of the formula (∂/∂x0 of atan2's g_1 is -recip + 2x0²recip², ∂/∂x1 of
        # g_0 is recip - 2x1²recip²: the same value from different terms, rounded differently). `first`
        # (a variable slot) takes that route where the key has it; otherwise the model encloses every route.
        routed = set()
        for var in range(n):
            targets = [(i, key) for i, key in enumerate(keys) if len(key) == r and var in key]
            if not targets:
                continue
            if rule is not None:
                total = rule(JF, values, [kid.partial(var).truncated(0) for _, kid in tensor])
            else:
                terms = []
                for k, kid in tensor:
                    step = kid.partial(var).truncated(r - 1)
                    terms.append(step * local[k] if _passes_through(local[k]) else JF.mul(local[k], step))
                total = JF.sum(terms) if len(terms) > 1 else terms[0]
            for i, key in targets:
                if first is not None and first in key and var != first:
                    continue
                rest = list(key)
                rest.remove(var)
                count = key.count(var)
                c, m, p = (total.coefficient(rest) / count, total.magnitude(rest) / count,
                           total.peak(rest) / count)
                if i in routed:
                    c, m, p = y.c[i].union(c), max(y.m[i], m), max(y.p[i], p)
                routed.add(i)
                y.c[i], y.m[i], y.p[i] = c, m, p
    return JF.in_range(y)


def model_jet(expr: Expr, point: tuple[arb, ...], variables: Sequence[int], order: int,
              fmt_model: RoundingModel, forward_ad: bool = False, first: int | None = None) -> Jet:
    """torch's value and derivatives up to `order` as the rounding model encloses them (see module doc);
    `forward_ad`: first derivatives by forward-mode AD's formulas (the entries' `forward_tangent`) where they differ;
    `first`: mixed partials as torch computes them from the first backward's gradient for that variable
    slot (default: enclosing every order of differentiation)."""
    slot = {v: k for k, v in enumerate(variables)}
    return _model_jet(expr, point, slot, len(variables), order, fmt_model, JetModel(fmt_model), forward_ad,
                      first)


# ------------------------------------------------------------------ per point
@dataclass
class PointJets:
    exact: Jet | None
    model: Jet | None  # every route of a mixed partial enclosed
    failure: tuple[Status, str] | None = None
    routes: dict[int, Jet] | None = None  # variable slot differentiated first -> its route's model jet

    def model_from(self, first: int) -> Jet:
        """The model of derivatives taken first (by torch's backward formulas) for variable slot `first`."""
        return self.model if self.routes is None else self.routes[first]


def _model_jets(case: GradCase, point: tuple[arb, ...], order: int, model: RoundingModel, forward_ad: bool,
                routes: bool) -> tuple[Jet, dict[int, Jet] | None]:
    """The model pass: torch's jet (the hull of every route's where the routes differ), and per route."""
    used = case.used
    if routes and order >= 2 and len(used) > 1:
        by_route = {first: model_jet(case.expr, point, used, order, model, forward_ad, first)
                    for first in range(len(used))}
        return Jet.hull(list(by_route.values())), by_route  # every route, without a model of its own
    return model_jet(case.expr, point, used, order, model, forward_ad), None


def point_jets(case: GradCase, order: int, forward_ad: bool = False,
               routes: bool = False) -> dict[tuple[int, ...], PointJets]:
    """Exact and model jets of `case.expr` at every point of the broadcast output (variables: case.used);
    `forward_ad` for what torch computes with forward-mode AD (jvp, jacfwd, forward-over-reverse);
    `routes`: also a model per variable differentiated first, for nested reverse-mode grads
    (`expected_nested`), whose order of differentiation is known."""
    model = RoundingModel(case.format)
    used = case.used
    out = {}
    for index in all_indices(case.output_shape):
        point = tuple(arb(case.value_at(i, index)) if i in used else arb(0) for i in range(len(case.shapes)))
        models, exact_here, failure = model_then_exact(
            partial(_model_jets, case, point, order, model, forward_ad, routes),
            partial(exact_jet, case.expr, point, used, order))
        if failure is None and not all(c.is_finite() for c in exact_here.c):
            failure = (Status.SINGULAR, "exact derivative not finite")
        if failure is not None:
            out[index] = PointJets(None, None, failure)
            continue
        model_here, by_route = models
        out[index] = PointJets(exact_here, model_here, routes=by_route)
    return out


# ------------------------------------------------------------------ enclosures of sums of terms
@dataclass
class Accumulator:
    """Terms torch adds up for one element, in any order: exact sum, ball sum and magnitude."""

    exact: arb = None
    ball: arb = None
    magnitude: arb = None
    peak: arb = None
    terms: int = 0
    term_operations: int = 0  # the most rounded operations that form one term
    failure: tuple[Status, str] | None = None

    def __post_init__(self):
        self.exact, self.ball, self.magnitude, self.peak = arb(0), arb(0), arb(0), arb(0)

    def add(self, exact: arb, ball: arb, magnitude: arb, peak: arb, operations: int = 1) -> None:
        """One term: `ball` encloses it before the `operations` roundings that scale it here; `magnitude`
        and `peak` as in oracles.higher.jets."""
        self.exact += exact
        self.ball += ball
        self.magnitude += magnitude
        self.peak += peak
        self.terms += 1
        self.term_operations = max(self.term_operations, operations)

    @property
    def operations(self) -> int:
        """Rounded operations on the way of any one term: its own, and the additions of all terms."""
        return self.term_operations + max(self.terms - 1, 0)

    def expected(self, model: RoundingModel, where: str) -> ExpectedElement:
        """The element torch returns: every term (products of weights and model derivatives) may be
        rounded at each of its operations and in any order, each by u times the magnitude of the terms."""
        if self.failure is not None:
            return ExpectedElement(self.failure[0], reason=self.failure[1])
        try:
            check_peaks([self.peak], model.limit, model.format.name)
            # an underflow in a partial product errs by eta times the factors still to come (oracles.higher.jets)
            underflow = arb(0, self.operations * model.eta * peak_factor_or_one(self.peak))
            enclosure = model.round(self.ball + underflow, max(self.operations, 0), self.magnitude)
        except Overflow as exc:  # the exact value stays: a NaN or inf torch returns is judged against it
            return ExpectedElement(Status.OVERFLOW, self.exact, reason=str(exc))
        return reconcile(self.exact, enclosure, lambda: where)


def _derivative_key(slots: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted(slots))


def expected_nested(case: GradCase, levels: Sequence[Sequence[Sequence[float] | None]],
                    upstream: Sequence[float] | None = None,
                    jets: dict[tuple[int, ...], PointJets] | None = None) -> list[ExpectedGrad]:
    """What `len(levels) + 1` nested `torch.autograd.grad` calls return for every input:
    g = grad(y, xs, U); then for each level, grad(previous, xs, [W_0, W_1, ...]) with W_i the level's weights
    for input i (row-major over its shape; None: that output is left out, i.e. weight 0).
    Per point p: Σ_{i1..ir} U[p]·Π_l W^l_{i_l}[src p] · ∂^{r+1} f(p)/∂x_{i1}..∂x_{ir}∂x_k, summed over the points
    reading each element of x_k."""
    order = len(levels) + 1
    if jets is None:
        jets = point_jets(case, order, routes=True)
    model = RoundingModel(case.format)
    used = case.used
    slot = {v: k for k, v in enumerate(used)}
    accumulators = {k: [Accumulator() for _ in range(numel(case.shapes[k]))] for k in used}
    for flat_out, index in enumerate(all_indices(case.output_shape)):
        here = jets[index]
        weight_u = ONE if upstream is None else arb(upstream[flat_out])
        # weights of each level at this point, per used input
        level_weights = []
        for level in levels:
            weights = {}
            for i in used:
                if level[i] is not None:
                    weights[i] = arb(level[i][flat_index(case.shapes[i], broadcast_source(case.shapes[i], index))])
            level_weights.append(weights)
        for k in used:
            acc = accumulators[k][flat_index(case.shapes[k], broadcast_source(case.shapes[k], index))]
            if here.failure is not None:
                acc.failure = here.failure
                continue
            if acc.failure is not None:
                continue
            for combo in itertools.product(*(sorted(w.items()) for w in level_weights)):
                weight = weight_u
                peak_weight = peak_factor(abs(weight_u))
                for _, w in combo:
                    weight = weight * w
                    peak_weight = peak_weight * peak_factor(abs(w))
                if weight.is_zero():
                    continue
                key = _derivative_key([slot[i] for i, _ in combo] + [slot[k]])
                factor = factorial_of(key)
                exact = here.exact.coefficient(key) * factor
                # the first grad's gradient for combo[0] is differentiated further
                model_jet_here = here.model_from(slot[combo[0][0]]) if combo else here.model
                ball = model_jet_here.coefficient(key) * factor
                magnitude = model_jet_here.magnitude(key) * factor
                peak = model_jet_here.peak(key) * factor
                acc.add(exact * weight, ball * weight, magnitude * abs(weight), peak * peak_weight,
                        operations=len(combo) + 1)
    expected = []
    for i in range(len(case.shapes)):
        if i not in accumulators:
            expected.append(ExpectedGrad(i, False, case.expr))
            continue
        elements = [acc.expected(model, f"x{i} element {flat} of {torch_source(case.expr)}")
                    for flat, acc in enumerate(accumulators[i])]
        expected.append(ExpectedGrad(i, True, case.expr, elements))
    return expected


def structurally_zero(case: GradCase, inputs: Sequence[Sequence[int]],
                      jets: dict[tuple[int, ...], PointJets]) -> list[tuple[tuple[int, ...], arb]]:
    """torch returned a derivative without grad_fn: a constant. `inputs` lists, per differentiation so far,
    the inputs it was taken with respect to (the last: the one whose result has no grad_fn), so every
    derivative one order higher, ∂/∂x_k of ∂^r f/∂x_{i1}..∂x_{ir} (i_l in inputs[l], any k), must be exactly 0
    at every point. Returns the offending (point, exact coefficient) pairs; failed points are skipped."""
    used = list(case.used)
    slot = {v: k for k, v in enumerate(used)}
    offending = []
    for index, here in jets.items():
        if here.failure is not None:
            continue
        for combo in itertools.product(*inputs):
            for k in used:
                key = _derivative_key([slot[i] for i in combo] + [slot[k]])
                value = here.exact.coefficient(key)
                if not (value.is_exact() and value.is_zero()):
                    offending.append((index, value))
    return offending


def expected_terms(case: GradCase, jets: dict[tuple[int, ...], PointJets],
                   terms: Sequence[tuple[tuple[int, ...], Sequence[int], float]], where: str = "") -> ExpectedElement:
    """One element torch computes as Σ weight · ∂^r f(point)/∂x_{inputs...} over `terms` (point, inputs,
    weight), in any order: a Hessian entry (one term), a block of torch.func.hessian under broadcasting (the
    points reading both elements), a Jacobian entry, a JVP (Σ_i t_i ∂f/∂x_i)."""
    model = RoundingModel(case.format)
    slot = {v: k for k, v in enumerate(case.used)}
    acc = Accumulator()
    for index, inputs, weight in terms:
        here = jets[index]
        if here.failure is not None:
            acc.failure = here.failure
            break
        if weight == 0 or any(i not in slot for i in inputs):
            continue
        key = _derivative_key([slot[i] for i in inputs])
        factor = factorial_of(key)
        w = arb(weight)
        acc.add(here.exact.coefficient(key) * factor * w, here.model.coefficient(key) * factor * w,
                here.model.magnitude(key) * factor * abs(w), here.model.peak(key) * factor * peak_factor(abs(w)),
                operations=0 if weight in (1, -1) else 1)
    return acc.expected(model, where or f"a derivative of {torch_source(case.expr)}")
