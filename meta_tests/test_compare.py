"""The upgrade comparison: regressions, fixes and accuracy shifts between two run reports, and clear
errors for files that are not run reports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from gradoracle import compare
from oracles.core.verdict import Verdict, VerdictCounts
from oracles.reports.run_report import SCHEMA, tallies_to_json

ROOT = Path(__file__).resolve().parent.parent


def _report(torch_version: str, wrong: int, worst_ulps: float) -> dict:
    counts = VerdictCounts()
    counts.examples = 40
    counts.counts[Verdict.VERIFIED] = 100
    counts.counts[Verdict.WRONG] = wrong
    counts.worst_ulps = worst_ulps
    if wrong:
        counts.add_failure("1 gradient element(s) wrong for y = torch.sin(x0) (float64)")
    return {"schema": SCHEMA, "versions": {"torch": torch_version}, "profile": "ci", "max_examples": 40,
            "checks": tallies_to_json({("test_op_gradient", "sin", "float64"): counts})}


def test_a_new_wrong_verdict_is_a_regression():
    sections = compare.compare(_report("2.13.0", 0, 1.0), _report("2.14.1", 3, 1.0), shift_factor=2)
    assert sections["regressed"] == [
        "test_op_gradient sin float64: 3 wrong (was 0) - 1 gradient element(s) wrong for y = torch.sin(x0) (float64)"]
    assert not sections["fixed"]


def test_a_vanished_wrong_verdict_is_a_fix_and_accuracy_shifts_are_reported():
    sections = compare.compare(_report("2.13.0", 2, 1.0), _report("2.14.1", 0, 8.0), shift_factor=2)
    assert sections["fixed"] == ["test_op_gradient sin float64: 0 wrong (was 2)"]
    assert sections["accuracy shifts"] == ["test_op_gradient sin float64: worst error 1 -> 8 ulp (worse)"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradoracle", "compare", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_exit_status_and_markdown(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report("2.13.0", 0, 1.0)))
    new.write_text(json.dumps(_report("2.14.1", 1, 1.0)))
    result = _cli(str(old), str(new), "--markdown")
    assert result.returncode == 1
    assert "## gradoracle: torch 2.13.0 -> 2.14.1" in result.stdout
    assert "### regressed (1)" in result.stdout
    assert _main(str(old), str(old), capsys=capsys)[0] == 0


def _main(*args: str, capsys) -> tuple[int, str]:
    """The command line in this process (the subprocess test above covers `python -m`): exit status, stderr."""
    try:
        status = compare.main(list(args))
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


def test_cli_names_bad_inputs(tmp_path, capsys):
    not_json = tmp_path / "x.json"
    not_json.write_text("hello")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    for args, message in [((str(tmp_path / "missing.json"), str(not_json)), "missing.json' is not a file"),
                          ((str(not_json), str(not_json)), "x.json' is not JSON"),
                          ((str(other), str(other)), "is not a gradoracle run report"),
                          ((str(not_json), str(not_json), "--shift-factor", "0.5"), "--shift-factor must be")]:
        status, err = _main(*args, capsys=capsys)
        assert status == 2
        assert message in err
        assert "Traceback" not in err


def test_a_damaged_body_is_named_with_exit_2_not_a_regression(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_report("2.13.0", 0, 1.0)))
    for damage, message in [(lambda r: r["checks"][0].pop("wrong"), "checks[0] lacks or mistypes wrong"),
                            (lambda r: r.update(checks={"a": 1}), "checks is not a list"),
                            (lambda r: r.update(versions={}), "no versions.torch"),
                            (lambda r: r["checks"][0].update(failures=None), "lacks or mistypes failures")]:
        report = _report("2.14.1", 1, 1.0)
        damage(report)
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps(report))
        status, err = _main(str(good), str(broken), capsys=capsys)
        assert status == 2 and "broken.json' is a damaged run report" in err and message in err, err
        assert "Traceback" not in err


def test_runs_sampled_differently_are_warned_and_sides_named_by_file(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report("2.13.0", 0, 1.0)))
    thorough = _report("2.13.0", 0, 8.0)
    thorough.update(profile="thorough", max_examples=1000)
    new.write_text(json.dumps(thorough))
    assert compare.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "warning: the runs sampled differently (profile ci, max_examples 40 vs profile thorough" in out
    assert f"{old} (torch 2.13.0)" in out and f"{new} (torch 2.13.0)" in out


def test_plot_of_the_worst_error_shifts(tmp_path, capsys):
    """--plot draws every check's worst error old against new (an infinite one too); a bad --plot is a usage
    error before any work, naming the value."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report("2.13.0", 0, 1.0)))
    new.write_text(json.dumps(_report("2.14.1", 0, math.inf)))
    for suffix, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
        status, err = _main(str(old), str(new), "--plot", str(tmp_path / f"shifts.{suffix}"), capsys=capsys)
        assert status == 0 and not err
        assert (tmp_path / f"shifts.{suffix}").read_bytes().startswith(magic)
    (tmp_path / "a-directory.png").mkdir()
    for plot, message in [(str(tmp_path / "shifts.pdf"), "shifts.pdf' must end in .png or .svg"),
                          ("/proc/shifts.png", "'/proc/shifts.png' cannot write into '/proc'"),
                          (str(tmp_path / "a-directory.png"), "is a directory")]:
        status, err = _main(str(old), str(new), "--plot", plot, capsys=capsys)
        assert status == 2 and message in err and "Traceback" not in err, err
