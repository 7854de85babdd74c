"""Expected gradients of a tensor program (oracles.tensor.program): exact, and the rounding model's enclosure.

Two independent passes over the program, each a forward pass and a reverse pass over numpy object arrays
of balls, one ball per tensor element:
- exact: a tensor op's Jacobian is derived by SymPy from the op applied to a matrix of per-element symbols
  (`op_jacobian`, cached per op, parameters and shapes: the exact Jacobian of that shape), evaluated at the
  exact values of its arguments (an op without a practical closed form, an eigen-decomposition, encloses its
  value and VJP itself: `TensorOp.exact_vjp`); elementwise parts chain SymPy's per-op partials
  (oracles.core.chain_rule).
  All in arb at 192 bits, again at higher precision where a result is unresolved. Where SymPy's derivative
  does not exist (amax at a tie, the norm at 0, the std of a constant slice), the op's minimum-norm
  subgradient from its table entry is used, the rule of torch's autograd notes for convex kinks
  (`_subgradient_vjp`).
- model: torch's forward and backward formulas of every op (the tensor-op table, and the op table for the
  elementwise parts), every float operation rounded by the `RoundingModel` of the dtype; gradients that
  torch adds up (an input used twice, broadcasting, repeated indices) are summed in any order.
The exact gradient must lie in the enclosure (`OracleInconsistency` otherwise): the two derivations check
each other. A kink, tie or possible overflow anywhere makes the whole case unverified (its reason kept).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy
from flint import arb

from oracles.core.case import broadcast_source
from oracles.core.chain_rule import at_rising_precision, exact_gradient, exact_value
from oracles.core.expected import ExpectedElement, ExpectedGrad, Status, model_then_exact, reconcile
from oracles.core.gradient_oracle import Contributions, Term, model_vjp_at_point
from oracles.core.render import symbol, to_sympy
from oracles.numerics.exact import compile_gradient, compile_sympy
from oracles.numerics.rounding import RoundingModel, Singular
from oracles.table.tensor_formulas import out_index, reduction, slices, sum_any
from oracles.table.tensor_ops import TENSOR_OPS, OpParams
from oracles.tensor.program import Input, Map, Node, TensorCase, live_args, shape_of

ZERO = arb(0)


def _obj(shape) -> np.ndarray:
    return np.empty(shape, dtype=object)


def _array(items: list, shape) -> np.ndarray:
    """An object array of `shape` from row-major `items` (np.array would try to unpack the balls)."""
    out = _obj(len(items))
    for i, item in enumerate(items):
        out[i] = item
    return out.reshape(shape)


def _filled(shape, value) -> np.ndarray:
    out = _obj(shape)
    for index in np.ndindex(*shape):
        out[index] = value
    return out


def map_values(node: Map, args: list[np.ndarray], value_at) -> np.ndarray:
    """A Map's value at every element of its broadcast shape: `value_at(expr, point)` of the arguments'
    elements that broadcasting reads there."""
    shape = tuple(np.broadcast_shapes(*(args[k].shape for k in live_args(node))))
    result = _obj(shape)
    for index in np.ndindex(*shape):
        result[index] = value_at(node.expr, tuple(a[broadcast_source(a.shape, index)] for a in args))
    return result


# ------------------------------------------------------------------ SymPy's exact Jacobian of one op
@dataclass(frozen=True)
class OpJacobian:
    values: tuple  # per output element (row-major): its exact value's program
    gradients: tuple  # per output element: its program of {symbol index: ∂out/∂symbol} (compile_gradient)
    owners: tuple  # per symbol index: (argument, flat index in it)


def symbol_arrays(shapes) -> tuple[list[np.ndarray], tuple[tuple[int, int], ...]]:
    """Arrays of fresh symbols x0, x1, ... over all arguments' elements (row-major), and per symbol index its owner
    (argument, flat index in it)."""
    arrays, owners, offset = [], [], 0
    for k, shape in enumerate(shapes):
        size = int(np.prod(shape, dtype=int))
        arrays.append(_array([symbol(offset + i) for i in range(size)], shape))
        owners.extend((k, i) for i in range(size))
        offset += size
    return arrays, tuple(owners)


def elements_of(out) -> tuple[sympy.Expr, ...]:
    """An op's SymPy result (an array of expressions, or one), row-major."""
    out = np.asarray(out, dtype=object)
    return tuple(sympy.sympify(out[index]) for index in np.ndindex(*out.shape))


@functools.cache
def op_sympy(name: str, params: OpParams, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple, tuple]:
    """The op on `symbol_arrays`: each output element's SymPy expression (row-major), and the symbols' owners."""
    arrays, owners = symbol_arrays(shapes)
    return elements_of(TENSOR_OPS[name].sympy(arrays, params)), owners


@functools.cache
def op_jacobian(name: str, params: OpParams, shapes: tuple[tuple[int, ...], ...]) -> OpJacobian:
    """Each output element's value and partial derivatives (SymPy's, chained in reverse mode) of `op_sympy`,
    compiled."""
    exprs, owners = op_sympy(name, params, shapes)
    return OpJacobian(tuple(compile_sympy(e) for e in exprs), tuple(compile_gradient(e) for e in exprs), owners)


# ------------------------------------------------------------------ the exact pass
class _Exact:
    def __init__(self, case: TensorCase):
        self.case = case
        self.values: dict[int, np.ndarray] = {}
        self.pullbacks: dict[int, object] = {}  # an op's own exact VJP (TensorOp.exact_vjp), per node

    def forward(self, node: Node) -> np.ndarray:
        if isinstance(node, Input):
            shape = self.case.shapes[node.index]
            result = _array([arb(v) for v in self.case.values[node.index]], shape)
        elif isinstance(node, Map):
            result = map_values(node, [self.forward(a) for a in node.args], exact_value)
        elif TENSOR_OPS[node.op].exact_vjp is not None:
            args = [self.forward(a) for a in node.args]
            result, self.pullbacks[id(node)] = TENSOR_OPS[node.op].exact_vjp(self.case.format, args, node.params)
        else:
            args = [self.forward(a) for a in node.args]
            jac = op_jacobian(node.op, node.params, tuple(a.shape for a in args))
            env = tuple(v for a in args for v in a.reshape(-1))
            shape = shape_of(node, self.case.shapes)
            try:
                result = _array([program(env) for program in jac.values], shape)
            except Singular:
                value = TENSOR_OPS[node.op].value
                if value is None:
                    raise
                result = reduction(value)(args, node.params)  # sqrt(0): the evaluator's power rule refuses base 0
        self.values[id(node)] = result
        return result

    def backward(self, node: Node, adjoint: np.ndarray, into: dict[int, np.ndarray]) -> None:
        if isinstance(node, Input):
            total = into.get(node.index)
            into[node.index] = adjoint if total is None else total + adjoint
            return
        args = [self.values[id(a)] for a in node.args]
        grads = [_filled(a.shape, ZERO) for a in args]
        if isinstance(node, Map):
            for index in np.ndindex(*adjoint.shape):
                sources = [broadcast_source(a.shape, index) for a in args]
                point = tuple(a[s] for a, s in zip(args, sources))
                for k, g in exact_gradient(node.expr, point, adjoint[index]).items():
                    grads[k][sources[k]] += g
        else:
            grads = self._tensor_vjp(node, args, adjoint)
        for k in live_args(node):
            self.backward(node.args[k], grads[k], into)

    def _tensor_vjp(self, node, args, adjoint) -> list[np.ndarray]:
        if id(node) in self.pullbacks:
            return self.pullbacks[id(node)](adjoint)
        jac = op_jacobian(node.op, node.params, tuple(a.shape for a in args))
        env = tuple(v for a in args for v in a.reshape(-1))
        flat_grads = [[ZERO] * a.size for a in args]
        flat_adjoint = adjoint.reshape(-1)
        try:
            for o, gradient in enumerate(jac.gradients):
                if not (flat_adjoint[o].is_exact() and flat_adjoint[o].is_zero()):
                    for i, partial in gradient(env).items():
                        k, a = jac.owners[i]
                        flat_grads[k][a] += flat_adjoint[o] * partial
        except Singular:
            op = TENSOR_OPS[node.op]
            if op.subgradient_vjp is not None:
                return op.subgradient_vjp(args, adjoint, node.params)
            subgradient = op.subgradient
            if subgradient is None:
                raise
            return [_subgradient_vjp(subgradient, args[0], adjoint, node.params)]
        return [_array(g, a.shape) for g, a in zip(flat_grads, args)]


def _subgradient_vjp(subgradient, arg: np.ndarray, adjoint: np.ndarray, params) -> np.ndarray:
    """Slice by slice where SymPy's derivative does not exist somewhere: the op's minimum-norm subgradient
    (amax: shared evenly by exactly tied maxima; norm, std: 0 where they are 0), which elsewhere is the
    derivative itself."""
    out = _filled(arg.shape, ZERO)
    for members, kept in slices(arg.shape, params.dim):
        g = adjoint[out_index(kept, arg.shape, params)]
        for m, grad in zip(members, subgradient([arg[m] for m in members], g, params)):
            out[m] = grad
    return out


def exact_vjp(case: TensorCase) -> dict[int, np.ndarray]:
    """Σ_o upstream[o] ∂y_o/∂x_i for every used input, exactly; re-evaluated at up to 4096 bits while an
    entry is an unresolved ball. Raises `Singular` where the derivative does not exist."""
    def evaluate() -> dict[int, np.ndarray]:
        exact = _Exact(case)
        out = exact.forward(case.program)
        into: dict[int, np.ndarray] = {}
        exact.backward(case.program, _upstream(case, out.shape, lambda v: arb(v)), into)
        return into

    return at_rising_precision(evaluate, lambda into: (v for g in into.values() for v in g.reshape(-1)))


def _upstream(case: TensorCase, shape, convert) -> np.ndarray:
    if case.upstream is None:
        return _filled(shape, arb(1))
    if len(case.upstream) != int(np.prod(shape, dtype=int)):
        raise ValueError(f"upstream has {len(case.upstream)} values, the output has shape {shape}")
    return _array([convert(v) for v in case.upstream], shape)


# ------------------------------------------------------------------ the model pass
class _Model:
    def __init__(self, case: TensorCase, overrides=None):
        self.case = case
        self.F = RoundingModel(case.format)
        self.values: dict[int, np.ndarray] = {}
        self.overrides = overrides or {}

    def forward(self, node: Node) -> np.ndarray:
        F = self.F
        if isinstance(node, Input):
            shape = self.case.shapes[node.index]
            result = _array([arb(v) for v in self.case.values[node.index]], shape)
        elif isinstance(node, Map):
            result = map_values(node, [self.forward(a) for a in node.args],
                                lambda expr, point: model_vjp_at_point(expr, point, None, F)[0])
        else:
            args = [self.forward(a) for a in node.args]
            result = np.asarray(TENSOR_OPS[node.op].forward(F, args, node.params), dtype=object)
            for index in np.ndindex(*result.shape):
                F.in_range(result[index])
        self.values[id(node)] = result
        return result

    def backward(self, node: Node, adjoint: np.ndarray, into: dict[int, list]) -> None:
        """`adjoint`: one ball per element of `node`. Inputs collect every contribution (summed at the end)."""
        F = self.F
        if isinstance(node, Input):
            collected = into.setdefault(node.index, _lists(self.case.shapes[node.index]))
            for index in np.ndindex(*adjoint.shape):
                collected[index].append(adjoint[index])
            return
        args = [self.values[id(a)] for a in node.args]
        if isinstance(node, Map):
            parts = [_lists(a.shape) for a in args]
            for index in np.ndindex(*adjoint.shape):
                sources = [broadcast_source(a.shape, index) for a in args]
                point = tuple(a[s] for a, s in zip(args, sources))
                _, contributions = model_vjp_at_point(node.expr, point, adjoint[index], F)
                for k, terms in contributions.items():
                    parts[k][sources[k]].extend(terms)
            grads = [_summed(F, p) for p in parts]
        else:
            backward = self.overrides.get(node.op) or TENSOR_OPS[node.op].backward
            grads = backward(F, args, self.values[id(node)], adjoint, node.params)
            for g in grads:
                for index in np.ndindex(*g.shape):
                    F.in_range(g[index])
        for k in live_args(node):
            self.backward(node.args[k], grads[k], into)


def _lists(shape) -> np.ndarray:
    out = _obj(shape)
    for index in np.ndindex(*shape):
        out[index] = []
    return out


def _summed(F: RoundingModel, parts: np.ndarray) -> np.ndarray:
    out = _obj(parts.shape)
    for index in np.ndindex(*parts.shape):
        out[index] = sum_any(F, parts[index])
    return out


def _model_parts(case: TensorCase, backward_overrides=None) -> tuple[RoundingModel, dict[int, np.ndarray]]:
    """The model pass: per used input, per element, every rounded contribution torch adds up."""
    model = _Model(case, backward_overrides)
    out = model.forward(case.program)
    into: dict[int, np.ndarray] = {}
    model.backward(case.program, _upstream(case, out.shape, lambda v: model.F.const(v)), into)
    return model.F, into


def model_vjp(case: TensorCase, backward_overrides=None) -> dict[int, np.ndarray]:
    """torch's gradient of every used input as the rounding model encloses it. `backward_overrides` replace
    a tensor op's backward formula in the model (the self-tests' planted faults)."""
    F, into = _model_parts(case, backward_overrides)
    return {i: _summed(F, parts) for i, parts in into.items()}


def step_contributions(case: TensorCase) -> dict[int, list[Contributions]]:
    """Per used input, per element (row-major): what backpropagating the case's upstream through its program
    contributes, exact and as the model encloses torch's formula; a failure of either pass on every element.
    For a program of one op, this is that op's backward step (oracles.core.stepwise)."""
    rounded, exact, failure = model_then_exact(lambda: _model_parts(case)[1], lambda: exact_vjp(case))
    contributions = {}
    for i in case.used:
        elements = []
        for index in np.ndindex(*case.shapes[i]):
            value = exact[i][index] if exact is not None else None
            if failure is not None:
                elements.append(Contributions(failure=failure, unmodelled=[value]))
            elif not value.is_finite():
                elements.append(Contributions(failure=(Status.SINGULAR, "exact derivative not finite"),
                                              unmodelled=[None]))
            else:
                elements.append(Contributions([Term(value, list(rounded[i][index]))]))
        contributions[i] = elements
    return contributions


# ------------------------------------------------------------------ expected gradients
def expected_tensor_gradients(case: TensorCase) -> list[ExpectedGrad]:
    """Per input: whether it is in the graph, and per element (row-major) the exact value and enclosure."""
    enclosures, exact, failure = model_then_exact(lambda: model_vjp(case), lambda: exact_vjp(case))
    expected = []
    for i, shape in enumerate(case.shapes):
        if i not in case.used:
            expected.append(ExpectedGrad(i, False, None))
            continue
        grad = ExpectedGrad(i, True, None)
        for index in np.ndindex(*shape):
            if failure is not None:
                value = exact[i][index] if exact is not None else None
                grad.elements.append(ExpectedElement(failure[0], value, reason=failure[1]))
                continue
            grad.elements.append(reconcile(exact[i][index], enclosures[i][index],
                                           lambda i=i, index=index: f"x{i}{list(index)}, for {case.source}"))
        expected.append(grad)
    return expected


# ------------------------------------------------------------------ the whole program in SymPy
def program_sympy(case: TensorCase) -> tuple[np.ndarray, list[sympy.Symbol]]:
    """The output as an array of SymPy expressions in per-element symbols of the inputs (x0, x1, ... over
    all inputs' elements, row-major), and those symbols: the whole program's exact mathematics, whose
    Jacobian SymPy can take directly (the self-tests compare it with the chained `exact_vjp`)."""
    arrays, owners = symbol_arrays(case.shapes)
    symbols = [symbol(i) for i in range(len(owners))]

    def build(node: Node) -> np.ndarray:
        if isinstance(node, Input):
            return arrays[node.index]
        args = [build(a) for a in node.args]
        if isinstance(node, Map):
            live = live_args(node)
            shape = tuple(np.broadcast_shapes(*(args[k].shape for k in live)))
            out = _obj(shape)
            body = to_sympy(node.expr)
            for index in np.ndindex(*shape):
                out[index] = body.xreplace({symbol(k): args[k][broadcast_source(args[k].shape, index)] for k in live})
            return out
        return np.asarray(TENSOR_OPS[node.op].sympy(args, node.params), dtype=object)

    return build(case.program), symbols
