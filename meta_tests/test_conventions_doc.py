"""docs/conventions.md is generated from the op table and the registry: it must be current."""

from __future__ import annotations

from gradoracle import conventions_doc
from oracles.core.pinning import all_pinned
from oracles.reports import findings


def test_document_is_current(capsys):
    assert conventions_doc.main(["--check"]) == 0, capsys.readouterr().err


def test_stale_document_is_reported(tmp_path, capsys):
    stale = tmp_path / "conventions.md"
    stale.write_text(conventions_doc.render().replace("| abs |", "| abs (edited) |", 1) + "\n")
    assert conventions_doc.main(["--check", "--path", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert conventions_doc.main(["--check", "--path", str(tmp_path / "missing.md")]) == 1


def test_document_covers_every_convention_and_finding():
    text = conventions_doc.render()
    for pinned in all_pinned():
        assert f"`{pinned.id}`" in text
    for finding in findings.load():
        assert f"### finding-{finding.id}" in text


def test_a_broken_registry_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    broken = tmp_path / "findings.toml"
    broken.write_text("[[finding]]\nid = 'x'\n")
    monkeypatch.setattr(findings, "REGISTRY", broken)
    monkeypatch.setattr(findings.load, "__defaults__", (broken,))
    try:
        status = conventions_doc.main(["--check"])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and "findings.toml" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
