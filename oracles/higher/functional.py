"""torch.func, torch.autograd.functional and forward-mode AD against the exact oracle.

A case's expression becomes a function of its used inputs (`as_function`); each API's result is laid out
by torch's documented conventions and judged element by element against expectations built from the
per-point jets of oracles.higher.higher_order (exact values and rounding-model enclosures):

- jvp / forward_ad tangents: J·t at every output point, Σ_i t_i[src_i(p)] ∂f(p)/∂x_i (forward-mode model);
- jacrev / jacfwd: J[p, a] = ∂f(p)/∂x_i where the broadcast reads element a at p, exactly 0 elsewhere;
- hessian of y.sum(): H[a, b] = Σ over the points that read element a of x_i and b of x_j of ∂²f/∂x_i∂x_j;
- vmap(grad): per-sample gradients, each the first-order oracle (gradient_oracle) of its own slice;
- grad / vjp: the first-order oracle (`expected_gradients`, with `upstream` for vjp).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from flint import arb

from oracles.core.case import GradCase, all_indices, broadcast_source, flat_index
from oracles.core.expected import ExpectedElement, Status
from oracles.core.expr import Apply, Const, variables, walk
from oracles.core.render import run_torch
from oracles.core.verdict import ElementVerdict, Verdict, float64_values
from oracles.higher.higher_order import PointJets, expected_terms
from oracles.higher.nested import judged
from oracles.table.ops import OPS

EXACT_ZERO = ExpectedElement(Status.OK, arb(0), arb(0))


def as_function(case: GradCase, device: str = "cpu", overrides=None) -> tuple[Callable, list[torch.Tensor]]:
    """(f, xs): f(*xs) runs the drawn torch program with the used inputs xs (plain tensors, no grad)."""
    leaves = [leaf.detach() for leaf in case.make_leaves(device)]
    used = list(case.used)

    def f(*xs):
        full = list(leaves)
        for i, x in zip(used, xs):
            full[i] = x
        return run_torch(case.expr, full, overrides)

    return f, [leaves[i] for i in used]


def dual_tangent(case: GradCase, tangents: dict[int, Sequence[float]], device: str = "cpu"):
    """(primal, tangent, plain) of the drawn program run on dual numbers make_dual(x_i, t_i), and its value
    on the plain inputs."""
    leaves = [leaf.detach() for leaf in case.make_leaves(device)]
    with fwAD.dual_level():
        duals = list(leaves)
        for i, t in tangents.items():
            duals[i] = fwAD.make_dual(leaves[i], tensor_of(t, leaves[i].shape, leaves[i]))
        out = fwAD.unpack_dual(run_torch(case.expr, duals))
    return out.primal, out.tangent, run_torch(case.expr, leaves)


def tensor_of(values: Sequence[float], shape, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).to(device=like.device, dtype=like.dtype)


def source(case: GradCase, leaf: int, point: tuple[int, ...]) -> int:
    """Row-major index of the element of input `leaf` that the broadcast reads at output `point`."""
    return flat_index(case.shapes[leaf], broadcast_source(case.shapes[leaf], point))


# torch.func's forward mode (jvp, jacfwd, jvp of grad) returns a float64 tangent for a 0-d computation in a
# lower precision that adds, subtracts, multiplies or divides by a Python float: the zero tangent of the
# wrapped scalar is a float64 tensor that lost its wrapped-number status, so type promotion upcasts
# (pytorch#90065, #160513; torch.autograd.forward_ad's make_dual no longer does, torch 2.13). Pinned in
# tests/test_forward_ad.py; where it applies, the values are judged (a float64 computation of the same
# formulas lies inside the enclosure) and the dtype is let pass.
UPCAST_OPS = tuple(name for name, op in OPS.items() if "func-forward-mode-upcast" in op.findings)


def _is_0d(case: GradCase, expr) -> bool:
    return all(case.shapes[i] == () for i in variables(expr))


def forward_ad_may_upcast(case: GradCase, result: torch.Tensor) -> bool:
    """Whether a float64 `result` of torch.func's forward mode is that known upcast: a 0-d result, and a
    0-d subexpression combined with a Python float by add/sub/mul/div."""
    return case.format.name != "float64" and result.dim() == 0 and any(
        isinstance(node, Apply) and node.op in UPCAST_OPS and any(isinstance(a, Const) for a in node.args)
        and _is_0d(case, node) for node in walk(case.expr))


def judge_tensor(case: GradCase, label: int, tensor: torch.Tensor, shape: tuple[int, ...],
                 expected: Sequence[ExpectedElement], what: str, may_upcast: bool = False) -> list[ElementVerdict]:
    """Each element of `tensor` (row-major, `shape`) against `expected`; a wrong shape or dtype is wrong
    (`may_upcast`: a float64 result is the known upcast above, judged by value)."""
    upcast = may_upcast and tensor.dtype == torch.float64
    if tuple(tensor.shape) != tuple(shape) or (tensor.dtype != case.format.torch_dtype and not upcast):
        return [ElementVerdict(label, (), Verdict.WRONG, reason=(
            f"{what} has shape {tuple(tensor.shape)} and dtype {tensor.dtype}, expected {tuple(shape)} and "
            f"{case.format.torch_dtype}"))]
    values = float64_values(tensor)
    return [judged(label, index, value, element, case)
            for index, value, element in zip(all_indices(shape), values, expected)]


# ------------------------------------------------------------------ expectations
def expected_jvp(case: GradCase, jets: dict[tuple[int, ...], PointJets],
                 tangents: dict[int, Sequence[float]]) -> list[ExpectedElement]:
    """Per output point (row-major): Σ_i tangents[i][src_i(p)] · ∂f(p)/∂x_i (inputs without a tangent: 0)."""
    out = []
    for p in all_indices(case.output_shape):
        terms = [(p, (i,), t[source(case, i, p)]) for i, t in tangents.items()]
        out.append(expected_terms(case, jets, terms, f"JVP at {list(p)}"))
    return out


def expected_jacobian(case: GradCase, jets: dict[tuple[int, ...], PointJets], leaf: int) -> list[ExpectedElement]:
    """∂f/∂x_leaf laid out as jacrev/jacfwd return it: output shape + input shape, row-major."""
    out = []
    for p in all_indices(case.output_shape):
        reads = source(case, leaf, p)
        for a in range(len(case.values[leaf])):
            out.append(expected_terms(case, jets, [(p, (leaf,), 1.0)], f"∂f{list(p)}/∂x{leaf}[{a}]")
                       if a == reads else EXACT_ZERO)
    return out


def expected_hessian_block(case: GradCase, jets: dict[tuple[int, ...], PointJets], i: int, j: int,
                           upstream: Sequence[float] | None = None) -> list[ExpectedElement]:
    """Block (i, j) of the Hessian of Σ_p U[p] f(p): shape of x_i + shape of x_j, row-major."""
    points = list(all_indices(case.output_shape))
    out = []
    for a in range(len(case.values[i])):
        for b in range(len(case.values[j])):
            terms = [(p, (i, j), 1.0 if upstream is None else upstream[k]) for k, p in enumerate(points)
                     if source(case, i, p) == a and source(case, j, p) == b]
            out.append(expected_terms(case, jets, terms, f"∂²/∂x{i}[{a}]∂x{j}[{b}]") if terms else EXACT_ZERO)
    return out
