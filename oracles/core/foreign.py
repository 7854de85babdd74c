"""The expected derivative of code whose formulas the table does not know (a custom autograd.Function, a
torch.library op with its own backward, a compiled function), judged against a reference written with
table ops that computes the same function.

The exact value is the reference's exact derivative. The error allowed is derived from the reference's
rounding model: at each element, `factor` times the largest error torch's own formulas for the reference
can make there (the distance from the exact value to the edge of the model's enclosure), and never less
than one unit in the last place of the exact value (an implementation that rounds its result once is
allowed that, even where torch's formulas happen to be exact). The factor is the caller's statement of how
much more rounding the unknown code may do than torch's formulas for the same function: 4 allows, for
example, twice as many rounded operations, each with twice the error; it is a stated assumption about the
code under test, not a tolerance fitted to results.

Where the reference's model cannot bound torch's formulas (a kink, a possible overflow, an eps that
underflows), nothing is said about the unknown code either, except that NaN or ±inf where the exact
value is finite is wrong: the unknown code is not torch's formula, so torch's registered deviations do
not excuse it.
"""

from __future__ import annotations

import dataclasses

from flint import arb

from oracles.core.expected import ExpectedElement, ExpectedGrad, Status
from oracles.numerics.dtypes import FloatFormat
from oracles.numerics.floats import ulp_of

# the model statuses that name a torch deviation (judge_element excuses torch's NaN there); for unknown code
# they are only "cannot bound here"
_TORCH_DEVIATIONS = (Status.OVERFLOW, Status.EPSILON_UNDERFLOW)


def widened_element(element: ExpectedElement, fmt: FloatFormat, factor: float) -> ExpectedElement:
    if element.status in _TORCH_DEVIATIONS:
        return dataclasses.replace(element, status=Status.SINGULAR,
                                   reason=f"the reference's formulas cannot be bounded here ({element.status.value})")
    if element.status is not Status.OK:
        return element
    exact, enclosure = element.exact, element.enclosure
    model_error = max(enclosure.upper() - exact.lower(), exact.upper() - enclosure.lower())
    one_ulp = arb(ulp_of(abs(float(exact.mid())), fmt))
    radius = max(arb(factor) * model_error, one_ulp).upper()
    return dataclasses.replace(element, enclosure=exact + arb(0, radius))


def widened(expected: list[ExpectedGrad], fmt: FloatFormat, factor: float) -> list[ExpectedGrad]:
    """`expected` (of the reference) as the expectation of unknown code computing the same function."""
    return [dataclasses.replace(grad, elements=[widened_element(e, fmt, factor) for e in grad.elements])
            for grad in expected]
