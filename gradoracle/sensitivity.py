"""How small a backward bug the suite catches, per op: plant a relative error in the op's backward
(oracles.faults.planted) and find the smallest one that some generated example judges WRONG.

    python -m gradoracle sensitivity [--dtype float64] [--examples 20] [--ops sin,exp,...]

For each op, `--examples` cases rooted at that op are drawn once (deterministically), their expected
gradients computed once, and torch is rerun under planted errors 1e-3, 1e-4, ..., 1e-15. An error
level counts as caught when any example gets a WRONG verdict; the smallest caught level is found by
bisection over the decades, which assumes a larger planted error is caught whenever a smaller one is.
The same examples are also run without a fault: any WRONG verdict there is a false alarm, reported in
its own column (and then "caught" means little). Also prints examples per second and where the time
goes (the oracle's expected_gradients vs torch).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, Phase, given, settings
from tqdm import tqdm

from gradoracle.arguments import positive_int
from oracles.core.case import GradCase
from oracles.core.check import torch_gradients
from oracles.core.expected import ExpectedGrad
from oracles.core.gradient_oracle import expected_gradients
from oracles.core.verdict import Verdict, judge
from oracles.faults.planted import planted_backward_error
from oracles.numerics.dtypes import FORMATS
from oracles.table.ops import OPS
from strategies import compositions, grad_cases

LEVELS = tuple(10.0**-k for k in range(3, 16))  # 1e-3 ... 1e-15
DEFAULT_EXAMPLES = 20
PROGRESS_DELAY = 2.0  # seconds before the progress bar first shows (a short run prints only its table)
MAX_DEPTH = 2  # as the per-op tests draw them: the op at the root, arguments up to 2 levels deep


@dataclass
class OpSensitivity:
    op: str
    examples: int
    smallest_caught: float | None  # None: not even the largest level was caught
    caught_by: int  # how many examples were judged wrong at `smallest_caught`
    oracle_seconds: float
    torch_seconds: float  # over all torch runs
    torch_runs: int
    judge_seconds: float
    false_alarms: int = 0  # examples judged wrong with torch's own backward
    no_effect: bool = False  # the planted error changed no gradient at all (the op's backward is 0)
    levels_tried: dict[float, int] = field(default_factory=dict)  # level -> examples judged wrong


def draw_cases(op: str, dtype: str, n: int) -> list[GradCase]:
    """`n` cases with `op` at the root, the same ones on every run (derandomized, no database)."""
    cases: list[GradCase] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(grad_cases(dtype, lambda n_vars: compositions(n_vars, max_depth=MAX_DEPTH, root=op)))
    def collect(case):
        cases.append(case)

    collect()
    return cases[:n]


def measure(op: str, dtype: str, n: int) -> OpSensitivity:
    """Draw the cases, compute their expected gradients once, then bisect over the planted levels
    (each level one torch run per case), timing the oracle, torch and the judge separately."""
    cases = draw_cases(op, dtype, n)
    start = time.perf_counter()
    expected: list[list[ExpectedGrad]] = [expected_gradients(case) for case in cases]
    oracle_seconds = time.perf_counter() - start
    result = OpSensitivity(op, len(cases), None, 0, oracle_seconds, 0.0, 0, 0.0)

    def wrong_count(level: float) -> int:
        if level not in result.levels_tried:
            overrides = {op: planted_backward_error(op, level)} if level else None
            wrong = 0
            for case, exp in zip(cases, expected):
                t0 = time.perf_counter()
                grads = torch_gradients(case, overrides=overrides)
                t1 = time.perf_counter()
                verdicts = judge(case, grads, exp)
                result.judge_seconds += time.perf_counter() - t1
                result.torch_seconds += t1 - t0
                result.torch_runs += 1
                wrong += any(v.verdict is Verdict.WRONG for v in verdicts)
            result.levels_tried[level] = wrong
        return result.levels_tried[level]

    result.false_alarms = wrong_count(0.0)
    if wrong_count(LEVELS[0]) == 0:
        result.no_effect = not any(_changes_gradients(case, op, LEVELS[0]) for case in cases)
        return result
    lo, hi = 0, len(LEVELS)  # LEVELS[lo] is caught; LEVELS[hi:] are not (or lie past the end)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if wrong_count(LEVELS[mid]):
            lo = mid
        else:
            hi = mid
    result.smallest_caught = LEVELS[lo]
    result.caught_by = result.levels_tried[LEVELS[lo]]
    return result


def _changes_gradients(case: GradCase, op: str, level: float) -> bool:
    """Whether planting `level` in `op`'s backward changes any bit of torch's gradients for `case`."""
    faulty = torch_gradients(case, overrides={op: planted_backward_error(op, level)})
    for clean, planted in zip(torch_gradients(case), faulty):
        if (clean is None) != (planted is None) or (clean is not None and not torch.equal(clean, planted)):
            return True
    return False


def _level(value: float | None) -> str:
    """The smallest caught level; `<=` at the bottom of the range (smaller errors were not tried)."""
    if value is None:
        return f">{LEVELS[0]:.0e}"
    return f"<={value:.0e}" if value == LEVELS[-1] else f"{value:.0e}"


def render(dtype: str, rows: list[OpSensitivity], wall_seconds: float) -> str:
    title = (f"smallest planted relative backward error caught ({dtype}; levels {LEVELS[0]:.0e} .. "
             f"{LEVELS[-1]:.0e}; caught = some example judged wrong; by = examples judged wrong there)")
    lines = [title,
             f"{'op':<12} {'caught at':>10} {'by':>7} {'false alarms':>13} {'oracle ms/ex':>13} {'torch ms/run':>13}"]
    for r in rows:
        caught = "no effect" if r.no_effect else _level(r.smallest_caught)
        lines.append(f"{r.op:<12} {caught:>10} {f'{r.caught_by}/{r.examples}':>7} {r.false_alarms:>13} "
                     f"{1e3 * r.oracle_seconds / max(r.examples, 1):>13.2f} "
                     f"{1e3 * r.torch_seconds / max(r.torch_runs, 1):>13.2f}")
    examples = sum(r.examples for r in rows)
    oracle = sum(r.oracle_seconds for r in rows)
    runs = sum(r.torch_runs for r in rows)
    torch_s = sum(r.torch_seconds for r in rows)
    judge_s = sum(r.judge_seconds for r in rows)
    per_example = oracle / examples + (torch_s + judge_s) / runs if examples and runs else float("nan")
    if any(r.no_effect for r in rows):
        lines.append("no effect: the op's backward is 0 at every example, so a relative error changes nothing")
    lines += [
        "",
        f"{examples} examples, {runs} torch runs, {wall_seconds:.1f} s wall (drawing cases included)",
        (f"per example: oracle (expected_gradients) {1e3 * oracle / max(examples, 1):.2f} ms, "
         f"torch forward+backward {1e3 * torch_s / max(runs, 1):.2f} ms, judge {1e3 * judge_s / max(runs, 1):.2f} ms"),
        f"examples per second (one oracle + one torch run + judge each): {1 / per_example:.1f}",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ command line
def _dtype(text: str) -> str:
    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown dtype {text!r}; choose from {', '.join(FORMATS)}")
    return text


def _ops(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated op names, got {text!r}")
    unknown = [name for name in names if name not in OPS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown op(s) {', '.join(map(repr, unknown))}; "
                                         f"the op table has {', '.join(OPS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gradoracle sensitivity", description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", type=_dtype, default="float64",
                        help=f"dtype under test (default float64; one of {', '.join(FORMATS)})")
    parser.add_argument("--examples", type=positive_int, default=DEFAULT_EXAMPLES,
                        help=f"generated examples per op (default {DEFAULT_EXAMPLES})")
    parser.add_argument("--ops", type=_ops, default=list(OPS),
                        help="comma-separated ops to measure (default: the whole op table)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = []
    # progress on stderr (the table goes to stdout): ops done, their rate, time left, the op being measured
    with tqdm(args.ops, desc="ops measured", unit="op", file=sys.stderr, delay=PROGRESS_DELAY,
              mininterval=1.0 if sys.stderr.isatty() else 30.0) as ops:
        for op in ops:
            ops.set_postfix_str(op, refresh=False)
            rows.append(measure(op, args.dtype, args.examples))
    print(render(args.dtype, rows, time.perf_counter() - start))
    return 0

