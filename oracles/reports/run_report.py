"""The JSON run report: per check x op x dtype tallies plus the versions under test, so two runs (say
torch 2.13.0 and 2.14.1) can be compared."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import hypothesis
import pytest
import sympy
import torch

from oracles.core.verdict import VerdictCounts
from oracles.reports.files import file_problem, write_atomically
from oracles.reports.findings import load, registered_nodes

SCHEMA = "gradoracle-run-report/1"


def validate_path(text: str) -> Path:
    """The report's path, checked writable before the run starts."""
    problem = file_problem(text)
    if problem:
        raise pytest.UsageError(f"--report-json: {text!r} {problem}")
    return Path(text)


def tallies_to_json(tallies: dict) -> list[dict]:
    return [
        {"check": check, "op": op, "dtype": dtype, **counts.to_json()}
        for (check, op, dtype), counts in sorted(tallies.items())
    ]


def tallies_from_json(rows: list[dict]) -> dict:
    return {(row["check"], row["op"], row["dtype"]): VerdictCounts.from_json(row) for row in rows}


def finding_outcomes(outcomes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per registered finding, the outcome of each of its tests that ran (xfailed: torch still shows
    it; xpassed (strict): torch no longer does)."""
    per_finding: dict[str, dict[str, str]] = {}
    for node, finding in registered_nodes(load()).items():
        if node in outcomes:
            per_finding.setdefault(finding.id, {})[node] = outcomes[node]
    return per_finding


def versions() -> dict:
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "sympy": sympy.__version__,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
    }


def write(path: Path, tallies: dict, config) -> None:
    profile = hypothesis.settings._current_profile  # noqa: SLF001
    report = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        "profile": profile,
        "max_examples": hypothesis.settings().max_examples,
        "device": config.gradoracle_device,
        "dtypes": config.gradoracle_dtypes,
        "checks": tallies_to_json(tallies),
        "test_outcomes": dict(sorted(getattr(config, "gradoracle_test_outcomes", {}).items())),
        "findings": finding_outcomes(getattr(config, "gradoracle_test_outcomes", {})),
        # kernels the installed torch lacks (an old torch's float16 CPU ops) -> tests skipped for each
        "unsupported": dict(sorted(getattr(config, "gradoracle_unsupported", {}).items())),
    }
    write_atomically(path, json.dumps(report, indent=1) + "\n")
