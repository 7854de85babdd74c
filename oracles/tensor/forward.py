"""Forward mode through tensor programs (torch.func.jvp): J·t against the exact Jacobian.

The exact side is the Jacobian the reverse pass already derives (oracles.tensor.oracle), row by row: J·t at
output o is Σ_a J[o, a] t[a], summed in arb. torch's forward-mode formulas of the tensor ops (derivatives.yaml's
`result:` lines, or the op applied to the tangents for a linear op) are not in the rounding model; they are judged
as code whose formulas the suite does not know (oracles.core.foreign): the exact J·t, allowed `factor` times the
error the model of torch's backward formulas allows for the same Jacobian entries (per entry, the distance from its
exact value to the edge of its enclosure, times |t[a]|, plus the rounding of the dot product), never less than one
ulp. The factor is the stated assumption that an op's forward formula rounds no worse than that multiple of its
backward formula for the same derivatives; it is not fitted to results. Where the backward model cannot bound an
entry that t reaches (a kink, a tie, an overflow), nothing is said beyond this: NaN or inf where the exact value is
finite is wrong.
"""

from __future__ import annotations

import dataclasses

from flint import arb

from oracles.core.case import numel
from oracles.core.expected import ExpectedElement, ExpectedGrad, Status
from oracles.core.foreign import widened_element
from oracles.tensor.oracle import expected_tensor_gradients
from oracles.tensor.program import Input, Tensor, TensorCase


def one_hot(n: int, k: int) -> tuple[float, ...]:
    return tuple(1.0 if i == k else 0.0 for i in range(n))


def in_output_dtype(case: TensorCase, out_dtype: str) -> TensorCase:
    """The case whose Jacobian rows torch's result is judged against. An op that computes in a wider dtype than its
    input's (softmax(x, dtype=torch.float64)) and reads the inputs themselves casts them, exactly, and differentiates
    in the wider dtype: its rows are those of the same values in that dtype. After an elementwise map, which runs in
    the input's dtype, the case's own rows: their model rounds every step in the narrower dtype, which encloses the
    wider one's steps too."""
    node = case.program
    reads_inputs = isinstance(node, Tensor) and all(isinstance(a, Input) for a in node.args)
    return dataclasses.replace(case, dtype=out_dtype) if out_dtype != case.dtype and reads_inputs else case


def jacobian_rows(case: TensorCase) -> list[list[ExpectedGrad]]:
    """Per output element o (row-major), the expected gradients of every input for the upstream e_o: row o of
    the Jacobian, exact and enclosed."""
    n_out = numel(case.output_shape)
    return [expected_tensor_gradients(dataclasses.replace(case, upstream=one_hot(n_out, o))) for o in range(n_out)]


def _model_error(element: ExpectedElement) -> arb:
    exact, enclosure = element.exact, element.enclosure
    return max(enclosure.upper() - exact.lower(), exact.upper() - enclosure.lower())


def expected_jvp(case: TensorCase, rows: list[list[ExpectedGrad]], tangents: dict[int, tuple[float, ...]],
                 factor: float) -> list[ExpectedElement]:
    """Per output element, the exact (J·t)[o] and the error allowed to torch's forward formulas (module docstring)."""
    fmt = case.format
    expected = []
    for row in rows:
        exact, error, magnitude, terms, failure = arb(0), arb(0), arb(0), 0, None
        for grad in row:
            if not grad.used:
                continue
            for element, t in zip(grad.elements, tangents[grad.leaf]):
                if t == 0:
                    continue
                if element.status is not Status.OK:
                    failure = failure or element
                    exact = None if exact is None or element.exact is None else exact + element.exact * t
                    continue
                term = element.exact * t
                exact = None if exact is None else exact + term
                magnitude += abs(term)
                error += abs(arb(t)) * _model_error(element)
                terms += 1
        if failure is not None:
            # an overflow the backward model foresees is the same intermediate in forward mode's chain (the products
            # in the other order: registered as backward-intermediate-overflow), an eps that is 0 in the dtype the
            # same guard (half-epsilon-underflow); any other failure says nothing
            element = ExpectedElement(failure.status, exact, reason=failure.reason)
            named = failure.status in (Status.OVERFLOW, Status.EPSILON_UNDERFLOW)
            expected.append(element if named else widened_element(element, fmt, factor))
            continue
        # the dot product of `terms` rounded products and sums, in any order: gamma_n |J| |t| (Higham, 3.1)
        u = arb(fmt.unit_roundoff)
        rounding = terms * u / (1 - terms * u) * magnitude if terms else arb(0)
        enclosure = exact + arb(0, (error + rounding).upper())
        expected.append(widened_element(ExpectedElement(Status.OK, exact, enclosure), fmt, factor))
    return expected
