"""Under pytest-xdist (-n 2) the suite reaches the same verdicts as in one process: the ci profile is
derandomized, and the workers' tallies are merged into the same run report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# A few checks with many examples each, named by node id (`-k polynomial` matches every test of that module).
SELECTION = ["tests/test_first_derivatives.py::test_polynomial_gradient",
             *(f"tests/test_first_derivatives.py::test_op_gradient[{dtype}-{op}]"
               for dtype in ("float64", "float32") for op in ("sinh", "hypot"))]


def _run(tmp_path: Path, name: str, *extra: str) -> dict:
    report = tmp_path / f"{name}.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-profile", "ci",
               "--dtypes", "float64,float32", "--examples", "10", "--report-json", str(report),
               *SELECTION, *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(report.read_text())


def _verdicts(report: dict) -> dict:
    keys = ("examples", "verified", "wrong", "unverified", "unverified_reasons")
    return {(c["check"], c["op"], c["dtype"]): {k: c[k] for k in keys} for c in report["checks"]}


def test_xdist_gives_the_same_verdicts(tmp_path):
    pytest.importorskip("xdist")
    serial = _verdicts(_run(tmp_path, "serial"))
    parallel = _verdicts(_run(tmp_path, "parallel", "-n", "2"))
    assert serial, "the serial run recorded no checks"
    assert parallel == serial
