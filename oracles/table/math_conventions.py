"""torch's conventions for the entries of oracles.table.math_functions, one tuple per op, in the style of
oracles.table.op_conventions: the point, torch's gradient there, the clause of the documented rule that
applies, the value that clause prescribes (derived here, in `why`, from the mathematics, never read off
torch), and torch's formula (derivatives.yaml) that explains torch's value.
"""

from __future__ import annotations

import math

from oracles.table.conventions import Rule, conv, side

LIMIT, UNDEFINED = Rule.LIMIT, Rule.UNDEFINED
INF = math.inf

ACOSH = (
    conv(1.0, INF, LIMIT, INF,
         "acosh is defined on [1, inf) and continuous at 1, its derivative 1/sqrt(x^2 - 1) -> +inf: the one-sided "
         "limit. torch: grad * (self.pow(2) - 1).rsqrt() = rsqrt(0) = inf.",
         approaches=(side(0, 1, INF),)),
)
LOGIT = (
    conv(0.0, INF, UNDEFINED, None,
         "logit(x) = log(x / (1 - x)) is not defined at 0 (log 0). torch: grad / (self * (1 - self)) = 1/0 = "
         "+inf, the one-sided limit from above.", approaches=(side(0, 1, INF),)),
    conv(-0.0, INF, UNDEFINED, None,
         "-0 is the point 0 (as above); torch's value is +inf there too.", approaches=(side(0, 1, INF),)),
    conv(1.0, INF, UNDEFINED, None,
         "logit is not defined at 1 (x / (1 - x) = 1/0). torch: grad / (1 * 0) = +inf, the one-sided limit "
         "from below.", approaches=(side(0, -1, INF),)),
)
