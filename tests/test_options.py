"""The suite's own command-line options, as a user meets them: a bad value is a usage error that names
it, and the report header says what was tested (versions, profile, dtypes, device).

Each test runs pytest in a subprocess at the repository root (conftest.py's options only exist there),
collecting a single small module, so no test actually runs inside."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest
import sympy
import torch

REPO = Path(__file__).resolve().parent.parent
TARGET = "tests/test_seed_guide.py"
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR  # 4

BAD_VALUES = [("--dtypes", "float64,float8"), ("--device", "tpu"), ("--examples", "0"), ("--examples", "abc")]
HEADER_RUN = ("--dtypes", "float32,float64")
CUDA_RUN = ("--device", "cuda", "-q")
_RUNS: dict[tuple[str, ...], subprocess.Popen] = {}


def _start(options: tuple[str, ...]) -> None:
    if options not in _RUNS:
        _RUNS[options] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", *options, TARGET],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_of(item) -> tuple[str, ...] | None:
    """The pytest options a selected test of this module will run."""
    if item.originalname == "test_bad_option_value_is_a_usage_error_naming_it":
        return (item.callspec.params["option"], item.callspec.params["value"], "-q")
    return {"test_device_cuda_without_cuda_is_a_usage_error": None if torch.cuda.is_available() else CUDA_RUN,
            "test_report_header_names_versions_profile_and_configuration": HEADER_RUN}.get(item.originalname)


@pytest.fixture(scope="module", autouse=True)
def _start_selected_runs(request):
    """Each run costs seconds of imports (torch, sympy): start those of the selected tests at once, to
    use every core, unless pytest-xdist already spreads the tests over workers."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for item in request.session.items:
            if item.module is request.module and (options := _run_of(item)) is not None:
                _start(options)
    yield
    for process in _RUNS.values():  # only processes this module started
        if process.poll() is None:
            process.kill()
            process.wait()
    _RUNS.clear()


def _pytest(*options: str) -> subprocess.CompletedProcess:
    """pytest at the repository root with `options`, collecting TARGET only."""
    _start(options)
    process = _RUNS[options]
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("option, value", BAD_VALUES)
def test_bad_option_value_is_a_usage_error_naming_it(option, value):
    result = _pytest(option, value, "-q")
    assert result.returncode == USAGE_ERROR, (result.returncode, result.stdout, result.stderr)
    error = result.stderr
    bad = "'float8'" if option == "--dtypes" else repr(value)
    assert f"ERROR: {option}" in error and bad in error, error


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA, so --device cuda is valid here")
def test_device_cuda_without_cuda_is_a_usage_error():
    result = _pytest(*CUDA_RUN)
    assert result.returncode == USAGE_ERROR, (result.returncode, result.stdout, result.stderr)
    assert "ERROR: --device cuda" in result.stderr and "no usable CUDA device" in result.stderr, result.stderr


def test_report_header_names_versions_profile_and_configuration():
    """Without -q the header shows torch, sympy, hypothesis and python versions (of this interpreter's
    packages), the Hypothesis profile with its max_examples (default: ci, 40), the dtypes and the device."""
    result = _pytest(*HEADER_RUN)
    assert result.returncode == pytest.ExitCode.OK, result.stderr
    header = result.stdout
    assert (f"gradoracle: torch {torch.__version__} (cuda {torch.version.cuda}), sympy {sympy.__version__}, "
            f"hypothesis {hypothesis.__version__}, python {platform.python_version()}") in header, header
    assert "gradoracle: profile 'ci' (max_examples=40), dtypes float32,float64, device cpu" in header, header
