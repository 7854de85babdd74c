"""The explorer as pytest items (gradoracle.explore_campaign): pytest-xdist runs the slices on its workers and
the controller merges them into one report, as `python -m gradoracle explore` writes it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradoracle import explore_campaign

ROOT = Path(__file__).resolve().parent.parent


def _campaign(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "gradoracle.explore_campaign", "--pyargs",
                           "gradoracle.explore_campaign_items", "-p", "no:cacheprovider", "-q", *options],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)


def test_slices_run_on_xdist_workers_and_merge_into_one_report(tmp_path):
    out = tmp_path / "campaign"
    run = _campaign(tmp_path, "-n", "2", "--explore-ops", "abs,softmax", "--explore-dtypes", "float64",
                    "--explore-modes", "domain", "--explore-seconds", "60", "--explore-examples", "10",
                    "--explore-out", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout and "2 of 2 slices in" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "gradoracle-explore-report/1" and report["settings"]["complete"]
    assert [(s["op"], s["mode"]) for s in report["slices"]] == [("abs", "domain"), ("softmax", "domain")]
    assert all(s["examples"] == 10 and s["samples"]["rows"] for s in report["slices"])
    assert "--explore-seconds 60 --explore-examples 10 --explore-seed 0`" in (out / "report.md").read_text()
    assert "| abs | float64 | domain |" in (out / "report.md").read_text()
    assert (out / "plots" / "softmax-float64.png").is_file()


def test_bad_campaign_options_are_usage_errors_naming_the_value(tmp_path):
    run = _campaign(tmp_path, "--explore-ops", "abs,nosuch")
    assert run.returncode == 4 and "'nosuch'" in run.stderr and "Traceback" not in run.stderr, run.stderr
    for option, value, message in [("--explore-dtypes", "float8", "'float8'"),
                                   ("--explore-seconds", "soon", "expected a number, got 'soon'"),
                                   ("--explore-seconds", "nan", "must be at least 0.1 and finite"),
                                   ("--explore-examples", "0", "must be at least 1 and finite, got '0'"),
                                   ("--explore-examples", "ten", "expected a number, got 'ten'"),
                                   ("--explore-out", "/proc/campaign", "'/proc/campaign' cannot write")]:
        config = _Config({**DEFAULTS, option: value})
        with pytest.raises(pytest.UsageError, match=re.escape(message)):
            explore_campaign.pytest_configure(config)


DEFAULTS = {"--explore-ops": "abs", "--explore-dtypes": "float64", "--explore-modes": "domain",
            "--explore-seconds": "1", "--explore-examples": None, "--explore-seed": "0",
            "--explore-out": "reports/explore"}


class _Config:
    """What pytest_configure reads of pytest's config."""

    def __init__(self, options: dict[str, str]):
        self._options = options
        self.option = type("Options", (), {"explore_ops": options["--explore-ops"]})()

    def getoption(self, name: str) -> str:
        return self._options[name if name.startswith("--") else "--" + name.replace("_", "-")]
