"""An op the installed torch has no kernel for is reported as unsupported, once per kernel, and its tests are
skipped without shrinking (oracles.core.unsupported): torch 2.0's CPU float16 kernels are missing, and a run
there must stay readable rather than fail every float16 test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradoracle import compare
from oracles.core.unsupported import UnsupportedKernel, missing_kernel, skipping_missing_kernels

ROOT = Path(__file__).resolve().parent.parent
HALF = "\"sin_vml_cpu\" not implemented for 'Half'"  # torch 2.0.1's message, CPU, float16


@pytest.mark.parametrize("error, kernel", [
    (RuntimeError(HALF), "sin_vml_cpu for Half"),
    (NotImplementedError("Could not run 'aten::erfinv.out' with arguments from the 'MPS' backend. This could be"),
     "aten::erfinv.out for MPS"),
    (NotImplementedError("the derivative for 'nextafter' is not implemented."),
     "the derivative of nextafter for this version"),
    (AttributeError("module 'torch.nn.functional' has no attribute 'rms_norm'"),
     "torch.nn.functional.rms_norm for this version"),
    (RuntimeError("derivative for aten::_ctc_loss_backward is not implemented"),
     "the derivative of aten::_ctc_loss_backward for this version"),
    (RuntimeError("This function was deprecated since version 1.9 and is now removed. `torch.qr` is deprecated in "
                  "favor of `torch.linalg.qr`"), "torch.qr for this version (removed)"),
    (AttributeError("'Tensor' object has no attribute 'frobnicate'"), None),
    (RuntimeError("expected scalar type Float but found Double"), None),
    (ValueError(HALF), None),
])
def test_missing_kernel_is_read_from_torchs_message(error, kernel):
    found = missing_kernel(error)
    assert (found.kernel if found else None) == kernel


def test_a_missing_kernel_skips_and_other_errors_stay_errors():
    def sin_in_half():
        raise RuntimeError(HALF)

    def wrong():
        raise RuntimeError("something else")

    with pytest.raises(UnsupportedKernel, match="unsupported by this torch: sin_vml_cpu for Half"):
        skipping_missing_kernels(sin_in_half)()
    with pytest.raises(RuntimeError, match="something else"):
        skipping_missing_kernels(wrong)()


PROJECT_TEST = '''
    import pytest
    from hypothesis import given, strategies as st

    CALLS = []

    def old_torch_sin(x, dtype):
        CALLS.append(x)
        if dtype == "float16":
            raise RuntimeError({half!r})
        return x

    @given(x=st.floats(0, 1))
    def test_property(x, dtype):
        old_torch_sin(x, dtype)

    def test_pinned(dtype):
        old_torch_sin(0.5, dtype)

    def test_property_was_not_shrunk():
        assert len(CALLS) < 150  # 100 examples of float64 (the default profile), 1 of float16, 2 pinned calls
'''


def test_a_run_on_a_torch_without_a_kernel_reports_it_and_passes(tmp_path):
    (tmp_path / "test_old_torch.py").write_text(textwrap.dedent(PROJECT_TEST.format(half=HALF)))
    report = tmp_path / "run.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "gradoracle.pytest_plugin", "-p", "no:cacheprovider",
                          "-p", "no:randomly", "--dtypes", "float64,float16", f"--report-json={report}", "-rs",
                          "test_old_torch.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "3 passed, 2 skipped" in run.stdout, run.stdout
    assert "unsupported by this torch (tests skipped)" in run.stdout and "sin_vml_cpu for Half: 2 tests" in run.stdout
    data = json.loads(report.read_text())
    assert data["unsupported"] == {"sin_vml_cpu for Half": 2}
    # an upgrade that loses a kernel: listed, and exit status 1
    old = dict(data, unsupported={}, file="old.json")
    new = dict(data, file="new.json")
    sections = compare.compare(old, new, shift_factor=2)
    assert sections["unsupported only in new"] == ["sin_vml_cpu for Half (2 tests skipped)"]
