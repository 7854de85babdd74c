"""The explorer: argument checking, classification of known cases, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import signal

import pytest
from hypothesis import HealthCheck, given, settings

from gradoracle import explore, explore_plots, explore_progress, explore_report
from gradoracle.explore_eval import BAND_ULPS, Sample, evaluate
from gradoracle.explore_higher import evaluate_second
from gradoracle.explore_tensor import evaluate_tensor
from oracles.core.test_ids import selectable
from oracles.numerics.dtypes import format_named
from oracles.table.domains import REALS
from oracles.table.ops import OPS
from oracles.table.tensor_ops import ReductionParams
from oracles.tensor.program import Input, Tensor, TensorCase
from strategies.points import domain_points, near_conventions, near_points


@pytest.mark.parametrize("argv, message", [
    (["--ops", "abs,absolute"], "--ops: unknown op 'absolute'"),
    (["--dtypes", "float8"], "--dtypes: unknown dtype 'float8'"),
    (["--modes", "far"], "--modes: unknown mode 'far'"),
    (["--minutes", "0"], "minutes must be positive"),
    (["--minutes", "-1"], "minutes must be positive"),
    (["--minutes", "soon"], "expected a number of minutes, got 'soon'"),
    (["--minutes", "nan"], "minutes must be positive"),
    (["--examples", "0"], "--examples: expected a positive integer, got '0'"),
    (["--examples", "many"], "--examples: expected a positive integer, got 'many'"),
    (["--examples", "2.5"], "--examples: expected a positive integer, got '2.5'"),
    (["--ops", "all,sin"], "--ops: 'all' stands alone"),
])
def test_bad_arguments_are_reported_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        explore.main(argv + ["--out", "/nonexistent/never-written"])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("out, message", [
    ("FILE", "exists and is not a directory"),
    ("", "'' is empty"),
    ("/proc/explore", "cannot write into '/proc'"),
])
def test_out_is_checked_before_the_run(tmp_path, capsys, out, message):
    """An output directory that cannot be written fails at once, not after the whole budget."""
    if out == "FILE":
        out = str(tmp_path / "file")
        (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as info:
        explore.main(["--ops", "abs", "--minutes", "10", "--out", out])
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and "Traceback" not in err


def test_near_mode_needs_conventions(capsys):
    with pytest.raises(SystemExit):
        explore.main(["--ops", "add", "--modes", "near", "--minutes", "0.01", "--out", "/nonexistent/x"])
    assert "nothing to explore" in capsys.readouterr().err


@pytest.mark.parametrize("op, case_dtype, point, convention, moved, expected", [
    ("abs", "float64", (1.5,), None, {}, "ok"),
    ("asinh", "float64", (2.0 ** 520,), None, {}, "inaccurate"),  # the square overflows: 0 for 2^-520
    ("atan2", "float64", (2.0 ** -540, 2.0 ** -540), None, {}, "inaccurate"),
    ("tanh", "float64", (20.0,), "tanh/20", {0: 3}, "convention"),  # saturation, 3 ulps off a pinned point
    ("tanh", "float64", (20.0,), "tanh/20", {0: 1000}, "inaccurate"),
    ("hypot", "float64", (1.7976931348623155e308, 4e305), None, {}, "range"),  # hypot itself overflows
])
def test_classification(op, case_dtype, point, convention, moved, expected):
    sample = evaluate(op, case_dtype, point, 0, convention, moved)
    assert sample.classification == expected, sample.to_json()
    if expected != "ok":
        assert sample.worst_ulps > BAND_ULPS and "import torch" in sample.reproducer


def test_a_short_run_writes_both_reports(tmp_path, capsys):
    assert explore.main(["--ops", "abs,atan2", "--dtypes", "float64", "--minutes", "5", "--examples", "40",
                         "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[1/4] abs" in out and "wrote" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == "gradoracle-explore-report/1"
    assert {(s["op"], s["mode"]) for s in report["slices"]} == {("abs", "domain"), ("abs", "near"),
                                                                ("atan2", "domain"), ("atan2", "near")}
    assert all(s["examples"] > 0 for s in report["slices"])
    assert "| op | dtype | mode |" in (tmp_path / "report.md").read_text()
    # every example kept for the plots, and a figure per op and dtype, linked from report.md
    for s in report["slices"]:
        assert len(s["samples"]["rows"]) == min(s["examples"], explore.MAX_SAMPLES)
        assert s["samples"]["columns"] == list(explore.SAMPLE_COLUMNS)
    for op in ("abs", "atan2"):
        assert (tmp_path / "plots" / f"{op}-float64.png").read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in (tmp_path / "plots" / f"{op}-float64.svg").read_bytes()[:1000]
        assert f"(plots/{op}-float64.png)" in (tmp_path / "report.md").read_text()
    # atan2's registered region at the origin is drawn from: its samples there are marked as the finding's
    atan2 = [row for s in report["slices"] if s["op"] == "atan2" for row in s["samples"]["rows"]]
    assert any(row[4] == "atan2-denominator-range" for row in atan2)


def test_an_examples_cap_makes_a_run_reproducible(tmp_path, capsys, monkeypatch):
    """--examples N: each slice is one search of N examples from its seed, so the same command gives the same
    samples, classes and worst cases again; the command in report.md says so."""
    monkeypatch.setattr(explore_plots, "Figure", None)  # the plots are drawn from the samples compared here
    reports = []
    for run in ("first", "second"):
        assert explore.main(["--ops", "atan2,softmax", "--dtypes", "float64", "--minutes", "5", "--examples", "15",
                             "--seed", "3", "--out", str(tmp_path / run)]) == 0
        reports.append(json.loads((tmp_path / run / "report.json").read_text()))
    first, second = ([{k: v for k, v in s.items() if k != "seconds"} for s in r["slices"]] for r in reports)
    assert first == second and [s["examples"] for s in first] == [15, 15, 15]
    assert reports[0]["settings"]["examples_per_slice"] == 15
    assert "--minutes 5 --examples 15 --seed 3`" in (tmp_path / "first" / "report.md").read_text()


def test_a_slice_keeps_a_bounded_uniform_sample(monkeypatch):
    monkeypatch.setattr(explore, "MAX_SAMPLES", 5)
    result = explore.SliceResult("abs", "float64", "domain")
    for k in range(100):
        result.record(Sample("abs", "float64", (float(k),), 0))
    kept = [row["x"][0] for row in result.samples]
    assert result.examples == 100 and len(kept) == 5 and len(set(kept)) == 5
    assert max(kept) >= 5  # later examples replace earlier ones


def test_progress_inside_a_slice(tmp_path, capsys, monkeypatch):
    """A slice reports its examples, their rate, the worst error so far and the time left while it runs."""
    monkeypatch.setattr(explore_progress, "LOG_INTERVAL", 0.0)
    assert explore.main(["--ops", "abs", "--dtypes", "float64", "--modes", "domain", "--minutes", "5",
                         "--examples", "5", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[1/1] abs float64 domain" in err and "examples (" in err and "/s), worst so far" in err
    assert " s, " in err and "left;" in err


def test_markdown_re_renders_from_json(tmp_path, capsys):
    assert explore.main(["--ops", "abs", "--dtypes", "float64", "--modes", "domain", "--minutes", "5",
                         "--examples", "5", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "report.md").read_text()
    (tmp_path / "report.md").unlink()
    assert explore_report.main([str(tmp_path / "report.json")]) == 0
    assert (tmp_path / "report.md").read_text() == first
    (tmp_path / "plots" / "abs-float64.png").unlink()
    assert explore_report.main([str(tmp_path / "report.json")]) == 0  # draws the plots again
    assert (tmp_path / "plots" / "abs-float64.png").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        explore_report.main([str(tmp_path / "missing.json")])
    assert info.value.code == 2 and "missing.json' is not a file" in capsys.readouterr().err


def test_tensor_ops_and_second_derivatives_are_explored(tmp_path, capsys):
    """Tensor ops take the domain mode only (random programs rooted at the op); the second mode judges
    torch's double backward, for ops with a modelled second derivative."""
    assert explore.main(["--ops", "softmax,tanh", "--dtypes", "float64", "--modes", "domain,near,second",
                         "--minutes", "10", "--examples", "10", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    slices = {(s["op"], s["mode"]): s for s in report["slices"]}
    assert set(slices) == {("softmax", "domain"), ("tanh", "domain"), ("tanh", "near"), ("tanh", "second")}
    assert all(s["examples"] == 10 and not s["errors"] for s in slices.values())
    assert slices["softmax", "domain"]["classification"] != "oracle", slices["softmax", "domain"]


def test_tensor_and_second_samples_are_classified():
    case = TensorCase(Tensor("prod", (Input(0),), ReductionParams(dim=0), 0), ((3,),), ((2.0, 0.0, 3.0),), "float64")
    sample = evaluate_tensor("prod", case)
    assert sample.classification == "ok" and [e["exact"] for e in sample.elements] == [0.0, 6.0, 0.0]
    assert evaluate_second("sin", "float64", (1.0,)).classification == "ok"
    # tanh'' = -2 tanh (1 - tanh²) at 20: torch's 1 - y*y is 0 where the exact value is ~ -1.7e-17
    saturated = evaluate_second("tanh", "float64", (20.0,))
    assert saturated.classification == "inaccurate" and "import torch" in saturated.reproducer


def test_skipped_slices_are_named_and_an_empty_slice_is_not_ok(tmp_path, capsys):
    """--modes second with a tensor op says it skips it; a budget too short for one example is reported
    as "no examples", never "ok"."""
    assert explore.main(["--ops", "softmax,tanh", "--dtypes", "float64", "--modes", "second", "--minutes", "1e-9",
                         "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped softmax float64 second: the second mode judges elementwise ops only" in out
    report = json.loads((tmp_path / "report.json").read_text())
    [tanh] = report["slices"]
    assert (tanh["examples"], tanh["classification"]) == (0, "no examples")


def test_an_interrupted_run_keeps_the_slices_it_finished(tmp_path, capsys, monkeypatch):
    """A SIGINT (Ctrl-C) or SIGTERM during the second slice: that slice ends at its next example, both
    reports keep the two slices, marked partial, and the exit status is 130."""
    real = explore.explore_slice
    calls = []

    def interrupted_in_the_second(*args):
        calls.append(args)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(explore, "explore_slice", interrupted_in_the_second)
    # not necessarily Python's default: another test in this process may have left a library's handler
    # (measured under pytest-xdist: SIG_IGN)
    before = signal.getsignal(signal.SIGINT)
    status = explore.main(["--ops", "abs,sin,cos", "--dtypes", "float64", "--modes", "domain", "--minutes", "5",
                           "--examples", "5", "--out", str(tmp_path)])
    assert status == 130 and "interrupted: 2 of 3 slices kept" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["op"] for s in report["slices"]] == ["abs", "sin"]
    assert report["settings"]["complete"] is False and report["settings"]["interrupted"] is True
    assert "Partial report (interrupted):** 2 of 3 slices" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / ".explore.lock").exists()
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back


def test_one_explorer_per_output_directory(tmp_path, capsys):
    (tmp_path / ".explore.lock").write_text(str(os.getpid()))  # a live process holds it
    with pytest.raises(SystemExit) as info:
        explore.main(["--ops", "abs", "--minutes", "0.01", "--out", str(tmp_path)])
    assert info.value.code == 2 and "another explorer (process" in capsys.readouterr().err
    (tmp_path / ".explore.lock").write_text("999999999")  # a process that is gone: its lock is stale
    assert explore.take_lock(tmp_path).read_text() == str(os.getpid())


def test_without_matplotlib_the_report_says_why_there_are_no_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(explore_plots, "Figure", None)
    assert explore.main(["--ops", "abs", "--dtypes", "float64", "--modes", "domain", "--minutes", "5",
                         "--examples", "3", "--out", str(tmp_path)]) == 0
    assert "Not drawn: matplotlib is not installed" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "plots").exists()


def test_the_domain_mode_skips_an_op_whose_whole_domain_cannot_be_run():
    """polygamma's zeta runs in time linear in |x| below 0 (hours at -1e15): the whole-domain property skips
    it, and so does the explorer's domain mode, naming why."""
    slices, skipped = explore.plan(["polygamma_n_2", "sin"], ["float64"], ["domain"])
    assert slices == [("sin", "float64", "domain")]
    assert skipped == ["polygamma_n_2 float64 domain: " + OPS["polygamma_n_2"].skip_reason("test_op_whole_domain",
                                                                                          "float64")]
    assert "linear in |x|" in skipped[0]


def test_the_second_near_mode_judges_the_double_backward_near_the_convention_points(tmp_path):
    """second-near draws as near (from the pinned points) and judges the double backward, as second does;
    an op without a double backward, or without a convention point in the dtype, is skipped with its reason."""
    slices, skipped = explore.plan(["tanh", "floor", "softmax"], ["float64"], ["second-near"])
    assert slices == [("tanh", "float64", "second-near")]
    assert any(line.startswith("floor float64 second-near: no double backward") for line in skipped)
    assert any(line.startswith("softmax float64 second-near: tensor ops") for line in skipped)
    assert explore.main(["--ops", "tanh", "--dtypes", "float64", "--modes", "second-near", "--minutes", "5",
                         "--examples", "5", "--out", str(tmp_path)]) == 0
    [tanh] = json.loads((tmp_path / "report.json").read_text())["slices"]
    assert tanh["mode"] == "second-near" and tanh["examples"] > 0


@pytest.mark.parametrize("op", [name for name, spec in OPS.items() if any(i != REALS for i in spec.intervals)])
def test_domain_and_near_points_lie_inside_the_entrys_intervals(op):
    """The explorer's points do not leave an argument's interval (logit's (0, 1), mvlgamma's x > (p - 1)/2): outside
    it the function is not real, torch gives NaN and SymPy's derivative formula still gives a number. A near point
    moved off a convention in the interval's closure stays inside; one pinned outside it (pow at a negative base,
    its exponent an integer) moves as the argument's domain allows."""
    spec, fmt = OPS[op], format_named("float64")
    starts = {selectable(f"{op}@{c.name}"): c.at for c in spec.conventions}

    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(domain_points(spec, fmt))
    def domain_inside(point):
        for value, interval in zip(point, spec.intervals):
            assert value in interval, f"{op}: {value} outside {interval}"

    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(near_points(spec, fmt))
    def near_inside(drawn):
        point, pin, moved = drawn
        for arg in moved:
            interval, start = spec.intervals[arg], starts[pin][arg]
            if interval.low <= start <= interval.high:
                assert point[arg] in interval, f"{op}: moved from {start} to {point[arg]}, outside {interval}"

    domain_inside()
    if near_conventions(spec, "float64"):
        near_inside()
