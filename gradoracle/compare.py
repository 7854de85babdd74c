"""Compare two run reports (e.g. torch 2.13.0 vs 2.14.1): what regressed, what was fixed, accuracy shifts.

    python -m gradoracle compare OLD.json NEW.json [--markdown] [--shift-factor 2] [--plot shifts.png]

Exit status 1 when the new run has wrong verdicts, failing tests or kernels torch lacks (its tests skipped as
unsupported) that the old one did not, 2 when a report
cannot be read (named in one line), else 0.
A registered finding whose strict xfail passes in the new run (torch changed there) is listed on its own.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from gradoracle import compare_plot
from oracles.reports.files import file_problem
from oracles.reports.run_report import SCHEMA


@dataclass(frozen=True)
class Row:
    key: tuple[str, str, str]
    old: dict | None
    new: dict | None


class ReportError(ValueError):
    pass


def load(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ReportError(f"{path!r} is not a file")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path!r} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportError(f"{path!r} is not a gradoracle run report (expected schema {SCHEMA!r})")
    problem = body_problem(data)
    if problem:
        raise ReportError(f"{path!r} is a damaged run report: {problem}")
    data["file"] = path
    return data


_NUMBERS = ("examples", "verified", "wrong", "unverified", "worst_error_ulps")


def body_problem(data: dict) -> str | None:
    """What in a report's body compare cannot read, or None: everything it reads is checked up front,
    so a damaged file is a one-line error (exit 2), never a traceback or a false "regressed" (exit 1)."""
    if not isinstance(data.get("versions"), dict) or not isinstance(data["versions"].get("torch"), str):
        return "no versions.torch"
    if not isinstance(data.get("profile"), str) or not isinstance(data.get("max_examples"), int):
        return "no profile or max_examples"
    checks = data.get("checks")
    if not isinstance(checks, list):
        return "checks is not a list"
    for n, check in enumerate(checks):
        if not isinstance(check, dict):
            return f"checks[{n}] is not an object"
        missing = [k for k in ("check", "op", "dtype") if not isinstance(check.get(k), str)]
        missing += [k for k in _NUMBERS if not isinstance(check.get(k), int | float) or isinstance(check.get(k), bool)]
        if not isinstance(check.get("failures"), list):
            missing.append("failures")
        if missing:
            return f"checks[{n}] lacks or mistypes {', '.join(missing)}"
    for key in ("test_outcomes", "findings", "unsupported"):
        if not isinstance(data.get(key, {}), dict):
            return f"{key} is not an object"
    return None


def _rows(old: dict, new: dict) -> list[Row]:
    def index(report):
        return {(c["check"], c["op"], c["dtype"]): c for c in report["checks"]}

    a, b = index(old), index(new)
    return [Row(key, a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys())]


def _name(key) -> str:
    check, op, dtype = key
    return " ".join(part for part in (check, op if op != "-" else "", dtype if dtype != "-" else "") if part)


def _compare_tests(old: dict, new: dict, sections: dict[str, list[str]]) -> None:
    """Registered findings whose tests changed outcome, and other tests failing on one side only."""
    old_findings, new_findings = old.get("findings", {}), new.get("findings", {})
    for finding in sorted(old_findings.keys() | new_findings.keys()):
        was, now = old_findings.get(finding, {}), new_findings.get(finding, {})
        changed = sorted(n for n in was.keys() & now.keys() if was[n] != now[n])
        if changed:
            sections["registered findings changed"].append(
                f"{finding}: {len(changed)} test(s) {was[changed[0]]} -> {now[changed[0]]} (e.g. {changed[0]})")
    registered = {n for tests in (*old_findings.values(), *new_findings.values()) for n in tests}
    old_failed = {n for n, o in old.get("test_outcomes", {}).items() if o == "failed"} - registered
    new_failed = {n for n, o in new.get("test_outcomes", {}).items() if o == "failed"} - registered
    sections["tests failing only in new"] += sorted(new_failed - old_failed)
    sections["tests failing only in old"] += sorted(old_failed - new_failed)
    # kernels one torch lacks (its tests skipped there): an old torch's float16 CPU ops, a kernel removed
    old_missing, new_missing = old.get("unsupported", {}), new.get("unsupported", {})
    sections["unsupported only in new"] += [f"{k} ({new_missing[k]} tests skipped)"
                                            for k in sorted(new_missing.keys() - old_missing.keys())]
    sections["unsupported only in old"] += [f"{k} ({old_missing[k]} tests skipped)"
                                            for k in sorted(old_missing.keys() - new_missing.keys())]


def compare(old: dict, new: dict, shift_factor: float) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"regressed": [], "fixed": [], "registered findings changed": [],
                                      "tests failing only in new": [], "tests failing only in old": [],
                                      "unsupported only in new": [], "unsupported only in old": [],
                                      "accuracy shifts": [], "only in old": [], "only in new": []}
    _compare_tests(old, new, sections)
    for row in _rows(old, new):
        name = _name(row.key)
        if row.new is None:
            sections["only in old"].append(name)
            continue
        if row.old is None:
            sections["only in new"].append(name)
            continue
        if row.new["wrong"] and not row.old["wrong"]:
            first = row.new["failures"][0].splitlines()[0] if row.new["failures"] else "(no failure text)"
            sections["regressed"].append(f"{name}: {row.new['wrong']} wrong (was 0) - {first}")
        elif row.old["wrong"] and not row.new["wrong"]:
            sections["fixed"].append(f"{name}: 0 wrong (was {row.old['wrong']})")
        was, now = row.old["worst_error_ulps"], row.new["worst_error_ulps"]
        if was > 0 and now > 0 and (now / was >= shift_factor or was / now >= shift_factor):
            direction = "worse" if now > was else "better"
            sections["accuracy shifts"].append(f"{name}: worst error {was:.3g} -> {now:.3g} ulp ({direction})")
    return sections


def _totals(report: dict) -> str:
    checks = report["checks"]
    total = {k: sum(c.get(k, 0) for c in checks) for k in ("examples", "verified", "wrong", "unverified", "registered")}
    return (f"{report['file']} (torch {report['versions']['torch']}): {len(checks)} checks, "
            f"{total['examples']} examples, "
            f"{total['verified']} verified, {total['wrong']} wrong, {total['unverified']} unverified, "
            f"{total['registered']} registered "
            f"(profile {report['profile']}, max_examples {report['max_examples']})")


def sampling_warning(old: dict, new: dict) -> str | None:
    """Runs drawn under different profiles or example counts see different inputs: their worst errors
    differ by sampling alone, so accuracy shifts between them say little."""
    if (old["profile"], old["max_examples"]) == (new["profile"], new["max_examples"]):
        return None
    return (f"warning: the runs sampled differently (profile {old['profile']}, max_examples {old['max_examples']} "
            f"vs profile {new['profile']}, max_examples {new['max_examples']}): accuracy shifts may be sampling noise")


def render(old: dict, new: dict, sections: dict[str, list[str]], markdown: bool) -> str:
    head = f"torch {old['versions']['torch']} -> {new['versions']['torch']}"
    lines = [f"## gradoracle: {head}" if markdown else f"gradoracle comparison: {head}"]
    lines += [f"- {_totals(r)}" if markdown else f"  {_totals(r)}" for r in (old, new)]
    warning = sampling_warning(old, new)
    if warning:
        lines.append(f"- {warning}" if markdown else f"  {warning}")
    for title, items in sections.items():
        lines.append(f"\n### {title} ({len(items)})" if markdown else f"\n{title.upper()} ({len(items)})")
        bullet = "- " if markdown else "  "
        lines += [f"{bullet}{item}" for item in items] or [f"{bullet}none"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradoracle compare", description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--markdown", action="store_true", help="markdown for a PR comment")
    parser.add_argument("--shift-factor", type=float, default=2.0,
                        help="report worst-error changes by at least this factor (default 2)")
    parser.add_argument("--plot", metavar="FILE", help="also draw every check's worst error, old against new, "
                                                       "into FILE (.png or .svg; needs matplotlib)")
    args = parser.parse_args(argv)
    if not args.shift_factor > 1:
        parser.error(f"--shift-factor must be greater than 1, got {args.shift_factor!r}")
    if args.plot is not None:
        problem = compare_plot.format_problem(args.plot) or file_problem(args.plot)
        if problem:
            parser.error(f"--plot: {args.plot!r} {problem}")
    try:
        old, new = load(args.old), load(args.new)
    except ReportError as exc:
        parser.error(str(exc))
    sections = compare(old, new, args.shift_factor)
    print(render(old, new, sections, args.markdown))
    if args.plot is not None:
        compare_plot.draw(Path(args.plot), old, new, args.shift_factor)
        print(f"drew {args.plot}")
    return 1 if sections["regressed"] or sections["tests failing only in new"] or sections["unsupported only in new"] \
        else 0

