"""The explorer's reports: report.json (everything) and report.md (a table per op x dtype x mode, then
the worst case of every class that is not ok, with a reproducer).

    python -m gradoracle explore-report reports/explore/report.json   # re-render report.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from gradoracle import explore_plots as plots
from gradoracle.explore_eval import BAND_ULPS, CONVENTION_RADIUS, SEVERITY, SLICE_CLASSES, Sample
from oracles.reports.files import write_atomically
from oracles.reports.run_report import versions

SCHEMA = "gradoracle-explore-report/1"

CLASSES = {
    "oracle": "SymPy's exact derivative lies outside the rounding model's enclosure: a bug of this suite",
    "wrong": "torch's gradient lies outside the rounding model's enclosure (beyond the error model)",
    "inaccurate": f"inside the model or beyond its reach (overflow, near-singular), but more than "
                  f"{BAND_ULPS} ulps from the exact gradient",
    "convention": f"an inaccuracy within {CONVENTION_RADIUS} ulps of a pinned convention point "
                  f"(tests/test_conventions.py pins it)",
    "range": "an inaccurate gradient where the op's own exact value overflows the dtype (not a finding)",
    "ok": f"within {BAND_ULPS} ulps of the exact gradient and inside the model",
    "no examples": "the slice's time ran out before its first example: nothing was shown",
}


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}"


def _point(sample: Sample) -> str:
    text = ", ".join(repr(v) for v in sample.point)
    if sample.moved:
        text += " (" + ", ".join(f"x{i} {k:+d} ulps" for i, k in sample.moved.items()) + f" from {sample.convention})"
    return text


def _elements(sample: Sample) -> tuple[str, str]:
    torch_values = ", ".join(_num(e["torch"], 10) for e in sample.elements) or "-"
    exact_values = ", ".join(_num(e["exact"], 10) for e in sample.elements) or "-"
    return torch_values, exact_values


def markdown(results, settings_used: dict, meta: dict) -> str:
    ops = ",".join(settings_used["ops"]) if len(settings_used["ops"]) < 8 else "all"
    versions_line = (f"torch {meta['versions']['torch']}, sympy {meta['versions']['sympy']}, hypothesis "
                     f"{meta['versions']['hypothesis']}, python {meta['versions']['python']}; "
                     f"created {meta['created']}.")
    command = settings_used.get("command") or (
        f"python -m gradoracle explore --ops {ops} --dtypes {','.join(settings_used['dtypes'])} "
        f"--modes {','.join(settings_used['modes'])} --minutes {settings_used['minutes']:g} "
        + (f"--examples {settings_used['examples_per_slice']} " if settings_used.get("examples_per_slice") else "")
        + f"--seed {settings_used['seed']}")
    command = (f"Command: `{command}` ({len(results)} slices of "
               f"{settings_used['seconds_per_slice']:.1f} s, {settings_used['wall_seconds'] / 60:.1f} min wall, "
               f"{sum(r.examples for r in results)} examples).")
    lines = ["# gradoracle explorer report", "", versions_line, "", command]
    if not settings_used.get("complete", True):
        why = "interrupted" if settings_used.get("interrupted") else "still running"
        lines += ["", f"**Partial report ({why}):** {len(results)} of {settings_used['slices_planned']} slices."]
    lines += ["", "Classes:", ""]
    lines += [f"- **{name}**: {text}" for name, text in CLASSES.items()]
    totals = {c: sum(1 for r in results if r.classification == c) for c in SLICE_CLASSES}
    lines += ["", "Slices by their most severe class: " + ", ".join(f"{n} {c}" for c, n in totals.items()), "",
              "## Worst case per op x dtype x mode", "",
              "| op | dtype | mode | examples | class | worst (ulp) | worst / bound | point | torch | exact |",
              "|---|---|---|---:|---|---:|---:|---|---|---|"]
    for r in sorted(results, key=lambda r: (SLICE_CLASSES.index(r.classification), r.op, r.dtype, r.mode)):
        worst = r.worst_by_ulps
        bound = r.worst_by_bound.worst_over_bound if r.worst_by_bound else None
        torch_values, exact_values = _elements(worst) if worst else ("-", "-")
        lines.append(f"| {r.op} | {r.dtype} | {r.mode} | {r.examples} | {r.classification} | "
                     f"{_num(worst.worst_ulps if worst else None)} | {_num(bound)} | "
                     f"{_point(worst) if worst else '-'} | {torch_values} | {exact_values} |")
    lines += ["", "## Error against the input", ""] + _plot_links(results)
    lines += ["", "## Cases that are not ok", ""]
    for r in sorted(results, key=lambda r: (SLICE_CLASSES.index(r.classification), r.op, r.dtype, r.mode)):
        for cls in SEVERITY[:-1]:
            sample = r.first_by_class.get(cls)
            if sample is None:
                continue
            torch_values, exact_values = _elements(sample)
            lines += [f"### {r.op}, {r.dtype}, {r.mode}: {cls} ({r.counts[cls]} of {r.examples} examples)", "",
                      f"worst {_num(sample.worst_ulps)} ulp at {_point(sample)}: torch {torch_values}, "
                      f"exact {exact_values}" + (f"; {sample.note}" if sample.note else ""), "",
                      "```python", sample.reproducer.rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def _plot_links(results) -> list[str]:
    """A line per op and dtype, linking its figure in plots/ (explore_plots), or why there are none."""
    missing = plots.unavailable()
    if missing:
        return [f"Not drawn: {missing}."]
    pairs = dict.fromkeys((r.op, r.dtype) for r in results if r.examples)
    links = []
    for op, dtype in pairs:
        name = plots.plot_name(op, dtype)
        links.append(f"- {op} {dtype}: [PNG](plots/{name}.png), [SVG](plots/{name}.svg)")
    return links or ["No slice ran an example."]


def write_reports(out: Path, slices: list[dict], settings_used: dict) -> tuple[Path, Path]:
    """report.json and report.md in `out` from the slices' JSON (a run's own, or a campaign's merged ones)."""
    meta = {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": versions(), "band_ulps": BAND_ULPS, "convention_radius_ulps": CONVENTION_RADIUS}
    report = {**meta, "settings": settings_used, "classes": CLASSES, "slices": slices}
    results = results_from_json(report)
    js = out / "report.json"
    md = out / "report.md"
    # compact: a slice keeps up to explore.MAX_SAMPLES samples (indented, a campaign's report ran to 100s of MB)
    write_atomically(js, json.dumps(report, separators=(",", ":")) + "\n")
    write_atomically(md, markdown(results, settings_used, meta))
    return md, js


def _sample(data: dict | None) -> Sample | None:
    if data is None:
        return None
    def number(v):
        return float(v) if isinstance(v, str) else v  # 'inf', 'nan' were written as strings
    elements = [{k: number(v) if k in ("torch", "exact", "bound", "ulps", "over_bound") else v
                 for k, v in e.items()} for e in data["elements"]]
    return Sample(data["op"], data["dtype"], tuple(data["point"]), data["spelling"], data["classification"],
                  elements, data["convention"], {int(k[1:]): v for k, v in data["moved_ulps"].items()},
                  data["note"], data["reproducer"])


def results_from_json(report: dict) -> list:
    """The slices of a report.json, with what `markdown` reads."""
    return [SimpleNamespace(op=s["op"], dtype=s["dtype"], mode=s["mode"], examples=s["examples"],
                            counts=s["counts"], classification=s["classification"],
                            worst_by_ulps=_sample(s["worst_by_ulps"]), worst_by_bound=_sample(s["worst_by_bound"]),
                            first_by_class={c: _sample(d) for c, d in s["by_class"].items()})
            for s in report["slices"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradoracle explore-report",
                                     description="Re-render an explorer's report.md from its report.json.")
    parser.add_argument("report", help="an explorer report.json; report.md is written beside it")
    path = Path(parser.parse_args(argv).report)
    if not path.is_file():
        parser.error(f"{str(path)!r} is not a file (an explorer report.json)")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        print(f"{path} is not JSON ({exc.msg} at line {exc.lineno})", file=sys.stderr)
        return 2
    if report.get("schema") != SCHEMA:
        print(f"{path} is not an explorer report (expected schema {SCHEMA!r})", file=sys.stderr)
        return 2
    md = path.with_name("report.md")
    write_atomically(md, markdown(results_from_json(report), report["settings"], report))
    drawn = 0
    for op, dtype in dict.fromkeys((s["op"], s["dtype"]) for s in report["slices"]):
        drawn += len(plots.draw(path.parent, [s for s in report["slices"] if (s["op"], s["dtype"]) == (op, dtype)]))
    print(f"wrote {md}" + (f" and {drawn} plot files in {path.parent / 'plots'}" if drawn else ""))
    return 0

