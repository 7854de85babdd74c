"""Output files are checked before work starts and written whole (oracles.reports.files)."""

from __future__ import annotations

import os
import stat

import pytest

from oracles.reports.files import directory_problem, file_problem, write_atomically


@pytest.mark.parametrize("text, problem", [
    ("", "is empty"),
    ("/proc/x.json", "cannot write into '/proc'"),
    ("/nonexistent-dir/x.json", "not a directory that exists"),
])
def test_unwritable_files_are_named(text, problem):
    assert problem in file_problem(text)


def test_writable_file_and_directory(tmp_path):
    assert file_problem(str(tmp_path / "report.json")) is None
    assert file_problem(str(tmp_path)) == "is a directory; give a file path"
    assert directory_problem(str(tmp_path / "new" / "deeper")) is None  # created later, under a writable one
    (tmp_path / "file").write_text("")
    assert directory_problem(str(tmp_path / "file")) == "exists and is not a directory"
    assert "is under" in directory_problem(str(tmp_path / "file" / "sub"))
    assert list(tmp_path.iterdir()) == [tmp_path / "file"], "a probe was left behind"


def test_atomic_write_replaces_whole_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    write_atomically(path, "new contents")
    assert path.read_text() == "new contents" and list(tmp_path.iterdir()) == [path]


def test_atomic_files_are_as_readable_as_open_makes_them(tmp_path):
    """A temporary file is created 0600; the report renamed from it must not stay private to its writer."""
    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "report.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644
