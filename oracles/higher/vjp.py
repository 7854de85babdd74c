"""The oracle side of backward's semantics: what `.grad` must hold after several backward calls,
after one backward through several outputs, and with respect to an intermediate or past a cut.

- `vjp_terms` / `expected_vjp`: the exact vector-Jacobian product of one or more (expression, gradient)
  pairs over shared leaves (each pair's contributions from `gradient_oracle.point_contributions`, unsummed),
  with the model enclosure taken over *every* contribution torch sums in that one
  backward pass (the engine adds them in arrival order, interleaving the outputs' contributions, so the
  per-output enclosures may not simply be added: only the raw contributions give a valid bound).
- `accumulate`: `.grad += new` across separate backward calls: one rounded addition of two enclosures.
- Paths into the expression tree, `run_torch_with` (run the program with a hook at chosen subexpressions)
  and `cut_case` (the subexpression replaced by a fresh input holding torch's value of it): the oracle for
  retain_grad, tensor hooks, `detach()` and `no_grad()`.
- Fault injection at the level of torch.autograd: accumulation replaced by overwrite, `gradient=` ignored,
  the implicit-scalar error removed. Each must be caught by the suite (tests/test_*backward*.py, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from flint import arb

from oracles.core.case import GradCase, numel
from oracles.core.expected import ExpectedElement, ExpectedGrad, Status
from oracles.core.expr import Apply, Const, Expr, Var, variables
from oracles.core.gradient_oracle import expected_element, point_contributions
from oracles.core.render import torch_source
from oracles.numerics.rounding import Overflow, RoundingModel
from oracles.table.ops import OPS, ops_where

# Ops whose backward formula (tools/autograd/derivatives.yaml) needs no saved tensor: add and sub pass
# `grad` (times alpha, a Scalar) through, neg returns -grad. Every other op saves an input or its result;
# mul and div save even a Python scalar operand (as a wrapped-number tensor).
SAVES_NO_TENSOR = ops_where(saves_tensors=False)


# ------------------------------------------------------------------ expected gradients, before summing
# gradient_oracle.point_contributions gives each output's contributions unsummed, so contributions of
# several outputs can be summed together; test_vjp checks that one output gives the very same result as
# gradient_oracle.expected_gradients.
@dataclass
class Terms:
    """What backpropagation contributes to one element of one leaf's gradient in one backward pass."""

    exact: arb | None = field(default_factory=lambda: arb(0))  # exact sum of the contributions (None: none)
    rounded: list[arb] = field(default_factory=list)  # each contribution as torch computes it (model)
    failure: tuple[Status, str] | None = None  # somewhere on the way: singular or overflow

    def merge(self, other: Terms) -> Terms:
        exact = None if self.exact is None or other.exact is None else self.exact + other.exact
        return Terms(exact, self.rounded + other.rounded, other.failure or self.failure)


@dataclass
class LeafTerms:
    leaf: int
    expr: Expr  # the (first) expression the contributions come from, for reports
    elements: list[Terms]  # row-major over the leaf's shape

    def merge(self, other: LeafTerms) -> LeafTerms:
        return LeafTerms(self.leaf, self.expr, [a.merge(b) for a, b in zip(self.elements, other.elements)])


def vjp_terms(case: GradCase, upstream: Sequence[float] | None = None) -> dict[int, LeafTerms]:
    """Per used input, per element: the contributions of backpropagating `upstream` (row-major over the
    output; default ones) through `case.expr` (`gradient_oracle.point_contributions`, summed per element
    exactly, the rounded values kept apart)."""
    return {i: LeafTerms(i, case.expr, [Terms(c.exact, c.rounded, c.failure) for c in elements])
            for i, elements in point_contributions(case, upstream).items()}


def summed(case: GradCase, terms: Mapping[int, LeafTerms]) -> list[ExpectedGrad]:
    """Expected `.grad` of every input of `case` after one backward pass that made these contributions
    (summed by torch in any order: n - 1 rounded additions)."""
    model = RoundingModel(case.format)
    expected = []
    for i in range(len(case.shapes)):
        if i not in terms:
            expected.append(ExpectedGrad(i, False, case.expr))
            continue
        expr = terms[i].expr
        elements = [expected_element(model, e.exact, e.rounded, e.failure, f"x{i} element {flat}",
                                     lambda expr=expr: torch_source(expr))
                    for flat, e in enumerate(terms[i].elements)]
        expected.append(ExpectedGrad(i, True, expr, elements))
    return expected


def expected_vjp(pairs: Sequence[tuple[GradCase, Sequence[float] | None]]) -> list[ExpectedGrad]:
    """Expected `.grad` after ONE backward through several outputs over the same leaves:
    `torch.autograd.backward([y1, y2, ...], [v1, v2, ...])` with y_k = pairs[k] case's expression."""
    base = pairs[0][0]
    if any((c.shapes, c.values, c.dtype) != (base.shapes, base.values, base.dtype) for c, _ in pairs):
        raise ValueError("every output must be computed from the same leaves")
    merged: dict[int, LeafTerms] = {}
    for case, upstream in pairs:
        for i, leaf_terms in vjp_terms(case, upstream).items():
            merged[i] = merged[i].merge(leaf_terms) if i in merged else leaf_terms
    return summed(base, merged)


# ------------------------------------------------------------------ accumulation across backward calls
def zeros_expected(leaf: int, shape: tuple[int, ...]) -> ExpectedGrad:
    """A `.grad` that is exactly 0 everywhere (zeroed in place, or materialized for an unused input)."""
    zero = arb(0)
    return ExpectedGrad(leaf, True, Const(0.0), [ExpectedElement(Status.OK, zero, zero)] * numel(shape))


def accumulate(model: RoundingModel, held: ExpectedGrad | None, new: ExpectedGrad) -> ExpectedGrad | None:
    """`.grad` after a backward call contributed `new` to a leaf whose `.grad` was `held` (None: unset).
    An unset `.grad` takes the new gradient as it is; a set one gets `.grad + new`, one rounded addition."""
    if not new.used:
        return held
    if held is None or not held.used:
        return new
    elements = []
    for a, b in zip(held.elements, new.elements):
        if a.status is not Status.OK or b.status is not Status.OK:
            elements.append(a if a.status is not Status.OK else b)
            continue
        try:
            elements.append(ExpectedElement(Status.OK, a.exact + b.exact, model.add(a.enclosure, b.enclosure)))
        except Overflow as exc:
            elements.append(ExpectedElement(Status.OVERFLOW, reason=str(exc)))
    return dataclasses.replace(new, elements=elements)


def scaled(model: RoundingModel, expected: ExpectedGrad, factor: float) -> ExpectedGrad:
    """`expected` times a power of two, -1 or 0: exact in binary floating point unless it overflows."""
    if factor != 0 and math.frexp(abs(factor))[0] != 0.5:
        raise ValueError(f"{factor} is not 0 or ± a power of two: the product would round")
    if not expected.used:
        return expected
    elements = []
    for e in expected.elements:
        if e.status is not Status.OK:
            elements.append(e)
            continue
        try:
            elements.append(ExpectedElement(Status.OK, e.exact * factor, model.in_range(e.enclosure * factor)))
        except Overflow as exc:
            elements.append(ExpectedElement(Status.OVERFLOW, reason=str(exc)))
    return dataclasses.replace(expected, elements=elements)


# ------------------------------------------------------------------ paths into the expression tree
Path = tuple[int, ...]


def subexpression(expr: Expr, path: Path) -> Expr:
    for k in path:
        expr = expr.args[k]
    return expr


def replace(expr: Expr, path: Path, new: Expr) -> Expr:
    """`expr` with the node at `path` (one occurrence, not every equal subtree) replaced by `new`."""
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = replace(args[path[0]], path[1:], new)
    return Apply(expr.op, tuple(args), expr.spelling)


def tensor_paths(expr: Expr, path: Path = ()) -> Iterator[Path]:
    """Every node torch computes as a tensor (it depends on an input), parents first; the root is ()."""
    if isinstance(expr, Const) or not variables(expr):
        return
    yield path
    if isinstance(expr, Apply):
        for k, arg in enumerate(expr.args):
            yield from tensor_paths(arg, path + (k,))


Wrap = Callable[[Callable[[], torch.Tensor]], torch.Tensor]


def run_torch_with(expr: Expr, leaves: list[torch.Tensor], wraps: Mapping[Path, Wrap], path: Path = ()):
    """`render.run_torch`, except that the node at each path of `wraps` is computed as `wraps[path](compute)`:
    the wrap may call `compute()` under `torch.no_grad()`, detach its result, register hooks on it..."""

    def compute():
        if isinstance(expr, Var):
            return leaves[expr.index]
        if isinstance(expr, Const):
            return expr.value
        args = [run_torch_with(arg, leaves, wraps, path + (k,)) for k, arg in enumerate(expr.args)]
        return OPS[expr.op].spellings[expr.spelling].call(*args)

    wrap = wraps.get(path)
    return compute() if wrap is None else wrap(compute)


def tensor_values(tensor: torch.Tensor) -> tuple[float, ...]:
    """Row-major exact values of a tensor (every float dtype under test embeds in float64)."""
    return tuple(tensor.detach().to("cpu", torch.float64).reshape(-1).tolist())


def cut_case(case: GradCase, path: Path, value: torch.Tensor) -> GradCase:
    """`case` with the node at `path` replaced by a fresh input x_n holding `value`, torch's value of that
    node (exact in the dtype: torch stored it there). ∂f/∂x_n is the derivative with respect to that
    intermediate; for the other inputs, it is the gradient when that node is a constant (a cut graph)."""
    n = len(case.shapes)
    return GradCase(replace(case.expr, path, Var(n)), case.shapes + (tuple(value.shape),),
                    case.values + (tensor_values(value),), case.dtype)


def sources(cases: Sequence[GradCase]) -> str:
    return "; ".join(f"y{k} = {torch_source(c.expr)}" for k, c in enumerate(cases))


# ------------------------------------------------------------------ fault injection (torch.autograd level)
# Tensor.backward calls `torch.autograd.backward` through the module attribute, so replacing the attribute
# changes both spellings. Each fault is a context manager; the fault-injection tests assert that the
# properties fail under it.
def _leaves_reached(roots) -> list[torch.Tensor]:
    """The leaves whose AccumulateGrad nodes a backward from `roots` reaches."""
    leaves = [r for r in roots if r.grad_fn is None and r.requires_grad]  # a leaf as its own output
    seen, stack = set(), [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def _as_list(tensors) -> list:
    return [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)


@contextlib.contextmanager
def _replacing_backward(make: Callable[[Callable], Callable]):
    real = torch.autograd.backward
    torch.autograd.backward = make(real)
    try:
        yield
    finally:
        torch.autograd.backward = real


def overwrite_instead_of_accumulate():
    """Fault: every backward call overwrites `.grad` instead of adding to it, in the same tensor object
    (`grad.copy_(new)` for `grad += new`), so only the values can tell."""

    def make(real):
        def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
                     inputs=None):
            targets = _as_list(inputs) if inputs is not None else _leaves_reached(_as_list(tensors))
            targets = [tensor for tensor in targets if tensor.is_leaf]  # what AccumulateGrad writes
            held = [tensor.grad for tensor in targets]
            for tensor in targets:
                tensor.grad = None
            result = real(tensors, grad_tensors, retain_graph, create_graph, grad_variables, inputs=inputs)
            for tensor, old in zip(targets, held):
                if old is not None and tensor.grad is None:
                    tensor.grad = old  # not reached: untouched
                elif old is not None and not create_graph:
                    with torch.no_grad():
                        old.copy_(tensor.grad)
                    tensor.grad = old
            return result

        return backward

    return _replacing_backward(make)


@contextlib.contextmanager
def _replacing_make_grads(seed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor | None]):
    """Replace the seed gradient of each output before torch.autograd's `_make_grads` (which checks shapes
    and raises the implicit-scalar error) sees it: both `backward` and `grad` go through it."""
    real = torch.autograd._make_grads

    def make_grads(outputs, grads, is_grads_batched):
        return real(outputs, [seed(out, grad) for out, grad in zip(outputs, grads)], is_grads_batched)

    torch.autograd._make_grads = make_grads
    try:
        yield
    finally:
        torch.autograd._make_grads = real


def ignore_gradient_argument():
    """Fault: `gradient=` / `grad_outputs=` is ignored; every output is seeded with ones (as if summed)."""
    return _replacing_make_grads(lambda out, grad: torch.ones_like(out))


def implicit_gradient_for_any_shape():
    """Fault: without a gradient, an output of any shape is seeded with ones instead of raising."""
    return _replacing_make_grads(lambda out, grad: torch.ones_like(out) if grad is None else grad)
