"""The suite's own command-line options, as a user meets them: a bad value is a usage error that names
it, and the report header says what was tested (versions, profile, dtypes, device).

pytest runs at the repository root (whose conftest.py loads the plugin), collecting a single small
module, so no test actually runs inside: one subprocess runs it once per option set (`_BATCH_SCRIPT`)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest
import sympy
import torch

from gradoracle import pytest_plugin
from oracles.reports import findings

REPO = Path(__file__).resolve().parent.parent
TARGET = "tests/test_seed_guide.py"
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR  # 4

# (option, value, the text the one-line error must name)
BAD_VALUES = [("--dtypes", "float64,float8", "'float8'"),
              ("--dtypes", "float64,float64", "'float64' given more than once"), ("--device", "tpu", "'tpu'"),
              ("--device", "cuda:x", "'cuda:x'"),
              ("--examples", "0", "'0'"), ("--examples", "abc", "'abc'"),
              ("--hypothesis-profile", "nope", "unknown profile 'nope'"),
              ("--report-json", "/proc/x.json", "'/proc/x.json' cannot write into '/proc'"),
              ("--report-json", "", "'' is empty")]
HEADER_RUN = ("--dtypes", "float32,float64")
CUDA_RUN = ("--device", "cuda", "-q")
_BATCH = {}  # options -> CompletedProcess-like result, once this module's batch has run

# One interpreter runs pytest once per option set (each run costs seconds of imports: torch, sympy), with
# stdout and stderr captured per run, exactly as a user's shell would see them.
_BATCH_SCRIPT = r"""
import contextlib, io, json, sys
import pytest
results = []
for options in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = pytest.main(["-p", "no:cacheprovider", "--collect-only", *options, sys.argv[2]])
    results.append([int(code), out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def _all_runs() -> list[tuple[str, ...]]:
    runs = [(option, value, "-q") for option, value, _ in BAD_VALUES] + [HEADER_RUN]
    return runs + ([] if torch.cuda.is_available() else [CUDA_RUN])


def _pytest(*options: str) -> subprocess.CompletedProcess:
    """pytest at the repository root with `options`, collecting TARGET only."""
    if not _BATCH:
        runs = _all_runs()
        done = subprocess.run([sys.executable, "-c", _BATCH_SCRIPT, json.dumps(runs), TARGET], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(done.stdout.strip().splitlines()[-1])
        _BATCH.update({run: subprocess.CompletedProcess(run, *result) for run, result in zip(runs, results)})
    return _BATCH[tuple(options)]


@pytest.mark.parametrize("option, value, named", BAD_VALUES)
def test_bad_option_value_is_a_usage_error_naming_it(option, value, named):
    result = _pytest(option, value, "-q")
    assert result.returncode == USAGE_ERROR, (result.returncode, result.stdout, result.stderr)
    error = result.stderr
    assert f"ERROR: {option}: " in error and named in error and "Traceback" not in error, error
    assert len(error.strip().splitlines()) == 1, error


def test_a_broken_findings_registry_is_a_usage_error_not_an_internal_error(monkeypatch):
    def broken():
        raise findings.RegistryError("findings.toml is not valid TOML: Invalid value (at line 3)")

    monkeypatch.setattr(pytest_plugin, "load_findings", broken)
    with pytest.raises(pytest.UsageError, match=r"^findings.toml: findings.toml is not valid TOML"):
        pytest_plugin._CheckedFirst().pytest_configure(_NoOptions())


class _NoOptions:
    """A pytest config as far as the early checks read it: no option given."""

    def getoption(self, name, default=None):
        return default


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA, so --device cuda is valid here")
def test_device_cuda_without_cuda_is_a_usage_error():
    result = _pytest(*CUDA_RUN)
    assert result.returncode == USAGE_ERROR, (result.returncode, result.stdout, result.stderr)
    assert "ERROR: --device cuda" in result.stderr and "no usable cuda device" in result.stderr, result.stderr


def test_report_header_names_versions_profile_and_configuration():
    """Without -q the header shows torch, sympy, hypothesis and python versions (of this interpreter's
    packages), the Hypothesis profile with its max_examples (default: ci, 40), the dtypes and the device."""
    result = _pytest(*HEADER_RUN)
    assert result.returncode == pytest.ExitCode.OK, result.stderr
    header = result.stdout
    assert (f"gradoracle: torch {torch.__version__} (cuda {torch.version.cuda}), sympy {sympy.__version__}, "
            f"hypothesis {hypothesis.__version__}, python {platform.python_version()}") in header, header
    assert "gradoracle: profile 'ci' (max_examples=40), dtypes float32,float64, device cpu" in header, header
