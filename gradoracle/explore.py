"""The explorer: per op and dtype, a Hypothesis targeted search for torch's worst gradient error.

    python -m gradoracle explore --ops all --dtypes float64,float32 --minutes 20 --out reports/explore

Each op x dtype x mode gets an equal slice of the time. `--examples N` also ends each slice after N examples:
one Hypothesis run of N examples from the slice's seed, so a run that finishes within its time is the same run
again on any machine (a slice that runs out of time first is cut short, as without it).
"domain" draws the op's arguments anywhere in its domain over the dtype's whole range; "near" starts from the
op's pinned convention points (kinks, poles, saturation) and moves 1 to 2^62 ulps off them, log-uniformly. The
tensor ops (sum, softmax, matmul, ...: the tensor-op table) are explored in "domain" mode only, as random
programs rooted at the op, zeros and ties among the simple values drawn first (gradoracle.explore_tensor).
"second" (not in the default modes) draws as "domain" and judges torch's double backward instead
(gradoracle.explore_higher), for the ops whose second derivative the oracle models; "second-near" judges it at
the points "near" draws. Within a slice Hypothesis generates, then hill-climbs (`hypothesis.target`) on the
error in ulps and on the error relative to the rounding model's bound. Every sample is classified
(gradoracle.explore_eval): wrong, inaccurate (beyond BAND_ULPS), convention (within CONVENTION_RADIUS ulps of
a pinned point), ok, or an oracle problem. A progress line per slice; at the end `report.md` (tables,
reproducers) and `report.json` in --out.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings, target
from hypothesis import strategies as st

from gradoracle.arguments import positive_int
from gradoracle.explore_eval import SEVERITY, Sample, evaluate, plot_point
from gradoracle.explore_higher import evaluate_second
from gradoracle.explore_plots import draw as draw_plots
from gradoracle.explore_progress import SliceProgress
from gradoracle.explore_report import write_reports
from gradoracle.explore_tensor import evaluate_tensor
from oracles.numerics.dtypes import FORMATS, format_named
from oracles.reports.files import directory_problem
from oracles.table.ops import OPS
from oracles.table.tensor_ops import TENSOR_OPS
from strategies.points import domain_points, near_conventions, near_points
from strategies.tensor_programs import tensor_cases

MODES = ("domain", "near", "second", "second-near")
CALIBRATION_EXAMPLES = 25
MAX_ROUNDS = 4  # a calibration round, then searches sized to the time left (the first ones run slow)
MAX_SAMPLES = 500  # examples a slice keeps for its plots (report.json grows by ~60 bytes an example)
SAMPLE_COLUMNS = ("x", "ulps", "over_bound", "class", "finding")  # explore_eval.plot_point's keys


class _TimeUp(Exception):
    pass


@dataclass
class SliceResult:
    op: str
    dtype: str
    mode: str
    seconds: float = 0.0
    examples: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {c: 0 for c in SEVERITY})
    worst_by_ulps: Sample | None = None
    worst_by_bound: Sample | None = None
    first_by_class: dict[str, Sample] = field(default_factory=dict)  # the worst example of each non-ok class
    errors: list[str] = field(default_factory=list)
    # every example as a point of the error-against-input plots, a uniform sample of at most MAX_SAMPLES
    samples: list[dict] = field(default_factory=list)
    _sampler: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def record(self, sample: Sample) -> None:
        self.examples += 1
        self._keep(sample)
        self.counts[sample.classification] += 1
        if self.worst_by_ulps is None or _rank(sample) > _rank(self.worst_by_ulps):
            self.worst_by_ulps = sample
        if self.worst_by_bound is None or sample.worst_over_bound > self.worst_by_bound.worst_over_bound:
            self.worst_by_bound = sample
        if sample.classification != "ok":
            best = self.first_by_class.get(sample.classification)
            if best is None or sample.worst_ulps > best.worst_ulps:
                self.first_by_class[sample.classification] = sample

    def _keep(self, sample: Sample) -> None:
        """Reservoir sampling: after n examples each one is kept with probability MAX_SAMPLES / n."""
        tensor_op = self.op in TENSOR_OPS
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(plot_point(sample, tensor_op))
            return
        slot = self._sampler.randrange(self.examples)
        if slot < MAX_SAMPLES:
            self.samples[slot] = plot_point(sample, tensor_op)

    @property
    def classification(self) -> str:
        """The most severe class seen; "no examples" when the budget ran out before the first one: nothing
        was shown, which is never "ok"."""
        if not self.examples:
            return "no examples"
        return next((c for c in SEVERITY if self.counts[c]), "ok")

    def to_json(self) -> dict:
        return {"op": self.op, "dtype": self.dtype, "mode": self.mode, "seconds": round(self.seconds, 2),
                "examples": self.examples, "counts": self.counts, "classification": self.classification,
                "worst_by_ulps": self.worst_by_ulps.to_json() if self.worst_by_ulps else None,
                "worst_by_bound": self.worst_by_bound.to_json() if self.worst_by_bound else None,
                "by_class": {c: s.to_json() for c, s in self.first_by_class.items()}, "errors": self.errors,
                "x_is": "largest |input|" if self.op in TENSOR_OPS else "arguments",
                "samples": {"columns": list(SAMPLE_COLUMNS),
                            "rows": [[s[c] for c in SAMPLE_COLUMNS] for s in self.samples]}}


def _rank(sample: Sample) -> tuple[int, float]:
    """Order samples: more severe class first, then larger error."""
    return (-SEVERITY.index(sample.classification), sample.worst_ulps)


def _point_strategy(op: str, dtype: str, mode: str):
    if op in TENSOR_OPS:  # (mode "domain": plan() gives tensor ops no other)
        return tensor_cases(dtype, root=op, stages=1).map(lambda case: (case, None, None, {}))
    spec, fmt = OPS[op], format_named(dtype)
    spelling = st.integers(0, len(spec.spellings) - 1)
    if mode in ("domain", "second"):
        return st.tuples(domain_points(spec, fmt), spelling).map(lambda p: (p[0], p[1], None, {}))
    if mode == "second-near":  # the double backward judges the point, not the convention it started from
        return st.tuples(near_points(spec, fmt), spelling).map(lambda p: (p[0][0], p[1], None, {}))
    return st.tuples(near_points(spec, fmt), spelling).map(lambda p: (p[0][0], p[1], p[0][1], p[0][2]))


def _search(op: str, dtype: str, mode: str, result: SliceResult, max_examples: int, deadline: float,
            random_seed: int, progress: SliceProgress | None) -> None:
    @seed(random_seed)
    @settings(max_examples=max_examples, phases=[Phase.generate, Phase.target], database=None,
              deadline=None, derandomize=False, verbosity=Verbosity.quiet, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(drawn=_point_strategy(op, dtype, mode))
    def search(drawn):
        if time.monotonic() > deadline or STOP.requested:
            raise _TimeUp
        point, spelling, convention, moved = drawn
        try:
            if mode in ("second", "second-near"):
                sample = evaluate_second(op, dtype, point, spelling)
            elif op in TENSOR_OPS:
                sample = evaluate_tensor(op, point)  # the drawn "point" is a whole TensorCase
            else:
                sample = evaluate(op, dtype, point, spelling, convention, moved)
        except Exception as exc:  # noqa: BLE001 - a crash (torch's or ours) is a result, not the end of the run
            where = (tuple(v for vals in point.values for v in vals), 0) if op in TENSOR_OPS else (point, spelling)
            sample = Sample(op, dtype, *where, classification="oracle", convention=convention,
                            moved=moved, note=f"evaluation raised {type(exc).__name__}: {exc}")
        result.record(sample)
        if progress is not None:
            progress.update(result.examples, result.worst_by_ulps.worst_ulps, result.worst_by_bound.worst_over_bound)
        by_ulps, by_bound = sample.scores()
        target(by_ulps, label="log2(1 + error in ulps)")
        target(by_bound, label="error / bound")

    try:
        search()
    except _TimeUp:
        pass
    except Exception as exc:  # noqa: BLE001 - Hypothesis gave up (e.g. a health check): keep what was found
        result.errors.append(f"{type(exc).__name__}: {exc}")


def explore_slice(op: str, dtype: str, mode: str, seconds: float, random_seed: int,
                  progress: SliceProgress | None = None, examples: int | None = None) -> SliceResult:
    """Search one op x dtype x mode for `seconds`: a short calibration run sets how many examples fit,
    so Hypothesis's targeting phase (after half the examples of a run) gets its share of the time.
    `examples`: instead one run of that many examples (its targeting phase the second half), within `seconds`."""
    result = SliceResult(op, dtype, mode)
    start = time.monotonic()
    deadline = start + seconds
    if examples is not None:
        _search(op, dtype, mode, result, examples, deadline, random_seed * MAX_ROUNDS, progress)
        result.seconds = time.monotonic() - start
        return result
    examples = CALIBRATION_EXAMPLES
    for round_ in range(MAX_ROUNDS):
        before, round_start = result.examples, time.monotonic()
        _search(op, dtype, mode, result, examples, deadline, random_seed * MAX_ROUNDS + round_, progress)
        now = time.monotonic()
        rate = (result.examples - before) / max(now - round_start, 1e-3)
        remaining = deadline - now
        if remaining < 0.5 or result.examples == before or STOP.requested:
            break
        examples = max(CALIBRATION_EXAMPLES, int(rate * remaining * 0.95))
    result.seconds = time.monotonic() - start
    return result


def skip_reason(op: str, dtype: str, mode: str) -> str | None:
    """Why an op x dtype x mode slice cannot run, or None."""
    if op in TENSOR_OPS and TENSOR_OPS[op].cpu_dtypes is not None and dtype not in TENSOR_OPS[op].cpu_dtypes:
        return f"torch has no {dtype} CPU kernel for it"
    if mode in ("near", "second-near") and op in TENSOR_OPS:
        return "tensor ops have no convention points to start near"
    if mode in ("second", "second-near") and op in TENSOR_OPS:
        return "the second mode judges elementwise ops only"
    if mode in ("second", "second-near") and not OPS[op].second_order:
        return "no double backward to judge (a step function)"
    if mode in ("near", "second-near") and not near_conventions(OPS[op], dtype):
        return f"no convention point pinned for {dtype}"
    if mode == "domain" and op in OPS:
        # the domain mode draws the points the whole-domain property does: where the entry says torch (or the
        # model of it) cannot run there, one example could hold the slice for hours
        return OPS[op].skip_reason("test_op_whole_domain", dtype)
    return None


def plan(ops: list[str], dtypes: list[str], modes: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every op x dtype x mode that can run, and a line for each one that cannot, saying why."""
    slices, skipped = [], []
    for dtype in dtypes:
        for op in ops:
            for mode in modes:
                reason = skip_reason(op, dtype, mode)
                if reason is None:
                    slices.append((op, dtype, mode))
                else:
                    skipped.append(f"{op} {dtype} {mode}: {reason}")
    return slices, skipped


def progress_line(i: int, n: int, r: SliceResult) -> str:
    """One line per finished slice. The worst error in ulps and the worst against the bound are usually met
    at different points: each is named with its own."""
    by_ulps, by_bound = r.worst_by_ulps, r.worst_by_bound
    ulps = f"{by_ulps.worst_ulps:.3g} ulp" + _at(by_ulps) if by_ulps else "-"
    bound = f"{by_bound.worst_over_bound:.3g} x bound" + _at(by_bound) if by_bound else "-"
    return (f"[{i}/{n}] {r.op:<11} {r.dtype:<8} {r.mode:<6} {r.examples:>6} examples {r.seconds:5.1f}s  "
            f"{r.classification}; worst {ulps}; worst {bound}")


def _at(sample: Sample) -> str:
    if sample.op in TENSOR_OPS:
        return f" (largest |input| {max((abs(v) for v in sample.point), default=0.0):.3g})"
    return f" at ({', '.join(repr(v) for v in sample.point)})"


# ------------------------------------------------------------------ command line
def _parse_list(text: str, known, what: str, parser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(known)
    if "all" in names:
        parser.error(f"--{what}: 'all' stands alone (got {text!r})")
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"--{what}: unknown {what[:-1]} {', '.join(map(repr, unknown)) or repr(text)}; "
                     f"choose from all, {', '.join(known)}")
    return list(dict.fromkeys(names))


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"minutes must be positive and finite, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradoracle explore", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="all", help="comma-separated op names of the op table or the tensor-op "
                                                     "table, or all")
    parser.add_argument("--dtypes", default="float64,float32", help="comma-separated dtypes (default float64,float32)")
    parser.add_argument("--modes", default="domain,near",
                        help="domain, near, second (double backward), second-near (double backward near the "
                             "convention points), comma-separated (default domain,near)")
    parser.add_argument("--minutes", type=_positive_minutes, default=20.0, help="total time budget (default 20)")
    parser.add_argument("--examples", type=positive_int, default=None,
                        help="also end each slice after this many examples (default: its time alone)")
    parser.add_argument("--out", default="reports/explore", help="directory for report.md and report.json")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    ops = _parse_list(args.ops, list(OPS) + list(TENSOR_OPS), "ops", parser)
    dtypes = _parse_list(args.dtypes, list(FORMATS), "dtypes", parser)
    modes = _parse_list(args.modes, list(MODES), "modes", parser)
    out = Path(args.out)
    problem = directory_problem(args.out)
    if problem:
        parser.error(f"--out: {args.out!r} {problem}")
    slices, skipped = plan(ops, dtypes, modes)
    for line in skipped:
        print(f"skipped {line}", flush=True)
    if not slices:
        parser.error("nothing to explore: the near mode needs ops with convention points for these dtypes, "
                     "the second mode ops with a modelled second derivative, tensor ops the domain mode")
    out.mkdir(parents=True, exist_ok=True)
    try:
        lock = take_lock(out)
    except OutputBusy as exc:
        parser.error(f"--out: {exc}")
    try:
        return _run(slices, out, {"ops": ops, "dtypes": dtypes, "modes": modes, "minutes": args.minutes,
                                  "examples_per_slice": args.examples, "seed": args.seed}, args)
    finally:
        lock.unlink(missing_ok=True)


def _run(slices, out: Path, settings_used: dict, args) -> int:
    """Explore every slice, rewriting both reports (atomically) after each one, marked partial until the
    last: an interrupted or killed run keeps every slice it finished."""
    per_slice = args.minutes * 60 / len(slices)
    cap = f" (or {args.examples} examples)" if args.examples else ""
    print(f"exploring {len(slices)} op x dtype x mode slices, {per_slice:.1f} s each{cap}, "
          f"{args.minutes:g} min in all; reports in {out}/", flush=True)
    started = time.time()
    done: list[dict] = []  # the finished slices' JSON, as the reports hold them
    progress = {**settings_used, "seconds_per_slice": per_slice, "slices_planned": len(slices)}

    def write(**state) -> None:
        write_reports(out, done, {**progress, "wall_seconds": round(time.time() - started, 1), **state})

    STOP.requested = False
    previous = {sig: signal.signal(sig, STOP.request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i, (op, dtype, mode) in enumerate(slices, 1):
            bar = SliceProgress(f"[{i}/{len(slices)}] {op} {dtype} {mode}", per_slice)
            try:
                result = explore_slice(op, dtype, mode, per_slice, args.seed * 1000 + i, bar, args.examples)
            finally:
                bar.close()
            done.append(result.to_json())
            print(progress_line(i, len(slices), result), flush=True)
            draw_plots(out, [s for s in done if (s["op"], s["dtype"]) == (op, dtype)])
            if STOP.requested:
                break
            write(complete=i == len(slices))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if STOP.requested:
        write(complete=False, interrupted=True)
        print(f"interrupted: {len(done)} of {len(slices)} slices kept (the last one cut short) in "
              f"{out}/report.md and report.json", flush=True)
        return 130
    print(f"wrote {out / 'report.md'} and {out / 'report.json'}", flush=True)
    return 0


class _Stop:
    """Ctrl-C or SIGTERM asks the run to stop: the slice in progress ends at its next example (Hypothesis
    would absorb a KeyboardInterrupt raised inside its run), and the reports keep everything done."""

    requested = False

    def request(self, signum, frame) -> None:
        self.requested = True


STOP = _Stop()


class OutputBusy(Exception):
    pass


def take_lock(out: Path) -> Path:
    """One explorer per output directory: a lock file naming its process, taken over only when that
    process is gone (a run killed with SIGKILL leaves its lock behind)."""
    lock = out / ".explore.lock"
    for _ in range(2):
        try:
            with open(lock, "x") as handle:
                handle.write(str(os.getpid()))
            return lock
        except FileExistsError:
            owner = lock.read_text().strip()
            if owner.isdigit() and _alive(int(owner)):
                raise OutputBusy(f"another explorer (process {owner}) is writing to {str(out)!r}") from None
            lock.unlink(missing_ok=True)
    raise OutputBusy(f"cannot take {str(lock)!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

