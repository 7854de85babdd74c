"""The coverage count: derived from the op tables' `opinfo` names against the installed torch's own OpInfo
database, every claimed name real, and the command's output and errors as a user meets them."""

from __future__ import annotations

import json

import pytest

from gradoracle import coverage
from gradoracle.__main__ import main


@pytest.fixture(scope="module")
def measured() -> coverage.Coverage:
    return coverage.measure()


def test_every_claimed_opinfo_name_is_in_torchs_op_db(measured):
    assert measured.unknown == {}, f"entries claim OpInfo names this torch lacks: {measured.unknown}"


def test_the_count_is_the_claims_that_torch_lists(measured):
    claims = coverage.claimed()
    assert set(measured.verified) == set(claims) & set(measured.differentiable)
    assert len(measured.missing) + len(measured.verified) == len(measured.differentiable)
    categories = measured.categories()
    assert sum(c["covered"] for c in categories.values()) == len(measured.verified)
    assert sum(c["total"] for c in categories.values()) == len(measured.differentiable)
    assert sorted(n for c in categories.values() for n in c["missing"]) == sorted(measured.missing)


def test_every_table_entry_claims_an_opinfo_name():
    """An entry verifies at least one OpInfo entry: the count can only grow with the tables."""
    unclaimed = [name for name, entries in coverage.claimed().items() if not entries]
    assert unclaimed == []
    for table in (coverage.OPS, coverage.TENSOR_OPS):
        assert all(op.opinfo for op in table.values())


def test_command_prints_the_count_and_writes_json(tmp_path, capsys):
    path = tmp_path / "coverage.json"
    assert main(["coverage", "--missing", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "differentiable OpInfo entries verified" in out and "not verified (" in out
    data = json.loads(path.read_text())
    assert data["schema"] == "gradoracle-coverage/1" and data["covered"] == len(data["entries"])
    assert data["total"] == sum(c["total"] for c in data["categories"].values())
    assert not list(tmp_path.glob(".coverage.json.*.tmp")), "the temporary file was left behind"


@pytest.mark.parametrize("value, message", [
    ("", "'' is empty"),
    ("/nonexistent-dir/c.json", "'/nonexistent-dir', which is not a directory that exists"),
    ("/proc/c.json", "cannot write into '/proc'"),
    ("/tmp", "'/tmp' is a directory"),
])
def test_bad_json_path_is_one_line_naming_it(value, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["coverage", "--json", value])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


def test_unknown_command_is_named(capsys):
    assert main(["coverge"]) == 2
    assert "unknown command 'coverge'" in capsys.readouterr().err
