"""gradoracle as another project installs it: `pip install <checkout>` gives the libraries, the pytest plugin
(through its pytest11 entry point: the other project has no conftest.py of ours), `check_function` and the
`gradoracle` console script, and a test file using them runs green outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# what a checkout's top level holds besides the package sources and their metadata: never copied for the build
_TOP_LEVEL_EXTRAS = {".git", ".venv", ".ci-venv", ".tox", "build", "reports", "docs", "tests", "meta_tests",
                     "benchmarks"}


def _not_sources(directory: str, names: list[str]) -> set[str]:
    extras = _TOP_LEVEL_EXTRAS if Path(directory) == REPO else set()
    return {n for n in names if n in extras or n == "__pycache__" or n.endswith(".egg-info")}

USER_TEST = textwrap.dedent('''
    import torch

    from gradoracle import check_function


    def swish(x):
        return x * torch.sigmoid(x)


    def test_the_plugin_parametrizes_dtype(dtype, device, verdict_log):
        assert dtype == "float64" and device == "cpu"


    def test_my_activation(dtype):
        summary = check_function(swish, torch.zeros(3), dtypes=(dtype,), max_examples=5)
        assert summary.verified > 0
''')


def test_installed_package_serves_another_project(tmp_path):
    source, site, project = tmp_path / "source", tmp_path / "site", tmp_path / "project"
    shutil.copytree(REPO, source, ignore=_not_sources, symlinks=True)
    # built as a user's pip builds it (an isolated build environment with setuptools from the index: a fresh
    # venv's own setuptools may lack bdist_wheel); --no-deps: the dependencies are this environment's own
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                            str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    project.mkdir()
    (project / "test_user.py").write_text(USER_TEST)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "--dtypes", "float64", "test_user.py"], cwd=project, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "gradoracle: profile" in run.stdout and "gradoracle verdicts" in run.stdout
    assert "2 passed" in run.stdout
    script = subprocess.run([str(site / "bin" / "gradoracle"), "--help"], env=env, capture_output=True, text=True)
    assert script.returncode == 0 and "usage: gradoracle <command>" in script.stdout
