"""The known-findings registry: it loads and validates, it lists exactly the deviations of the conventions
table, its ids match real tests, and the pytest hook marks and warns."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from oracles.core import verdict
from oracles.core.pinning import (
    cases,
)
from oracles.numerics.dtypes import FORMATS
from oracles.reports import findings
from oracles.table.ops import OPS

REGISTRY = findings.load()
ROOT = Path(__file__).resolve().parent.parent
CONVENTION_TESTS = "tests/test_conventions.py::"


# ------------------------------------------------------------------ the registry's contents
def test_every_deviation_is_registered():
    nodes = findings.registered_nodes(REGISTRY)
    missing = [f"{p.id}-{d}" for p, d in cases(FORMATS) if p.convention.deviates(d)
               and f"{CONVENTION_TESTS}test_follows_rule[{p.id}-{d}]" not in nodes]
    assert not missing, f"conventions that deviate from torch's rule but are no registered finding: {missing}"


def test_registered_rule_tests_deviate():
    deviating = {f"{CONVENTION_TESTS}test_follows_rule[{p.id}-{d}]" for p, d in cases(FORMATS)
                 if p.convention.deviates(d)}
    registered = {n for n in findings.registered_nodes(REGISTRY) if "::test_follows_rule[" in n}
    assert registered <= deviating, f"registered, but the table says torch follows the rule: {registered - deviating}"


def test_registered_ids_name_real_tests():
    """Every registered node id is one this suite collects in some dtype: asked of pytest itself (the files
    the registry names, all four dtypes), so no list of the suite's ids is kept here by hand."""
    registered = set(findings.registered_nodes(REGISTRY))
    files = sorted({node.split("::")[0] for node in registered})
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "--dtypes", ",".join(FORMATS), *files],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    collected = {line.strip() for line in run.stdout.splitlines() if "::" in line}
    unknown = sorted(registered - collected)
    assert not unknown, f"findings.toml names tests that do not exist: {unknown}"


def test_every_entry_has_evidence_and_a_source():
    for finding in REGISTRY:
        assert finding.upstream == "none found" or "/issues/" in finding.upstream or "/pull/" in finding.upstream
        assert any(word in finding.evidence for word in ("Cause", "cause", "because", "backward")), finding.id


# ------------------------------------------------------------------ validation errors
_VALID = '''
[[finding]]
id = "x-y"
op = "abs"
where = "somewhere"
kind = "deviation"
dtypes = ["float64"]
torch_versions = ["2.13.0"]
upstream = "none found"
evidence = "torch gives this, the exact value is that, because the backward formula does so."
tests = ["tests/test_conventions.py::test_follows_rule[abs/0]"]
'''


@pytest.mark.parametrize("change, message", [
    (("op = \"abs\"", "op = \"absolute\""), "op 'absolute' is not in the op table"),
    (("kind = \"deviation\"", "kind = \"bug\""), "kind must be one of"),
    (("dtypes = [\"float64\"]", "dtypes = [\"float8\"]"), "dtypes ['float8']"),
    (("upstream = \"none found\"", "upstream = \"see slack\""), "upstream must be a GitHub URL"),
    (("tests = [\"tests/test_conventions.py::test_follows_rule[abs/0]\"]", "tests = [\"abs/0\"]"),
     "test id 'abs/0' must look like"),
    (("torch_versions = [\"2.13.0\"]", "torch_versions = []"), "torch_versions must list"),
    (("where = \"somewhere\"\n", ""), "missing field 'where'"),
    (("id = \"x-y\"", "id = \"x-y\"\ncolour = \"red\""), "unknown field(s) colour"),
    (("evidence = \"torch gives this, the exact value is that, because the backward formula does so.\"",
      "evidence = \"wrong\""), "evidence must say"),
    (("id = \"x-y\"", "id = \"x-y\"\nmagnitudes = { float32 = [[0.0, 1.0]] }"),
     "magnitudes.float32: not one of the entry's dtypes"),
    (("id = \"x-y\"", "id = \"x-y\"\nmagnitudes = { float64 = [[-1.0, 1.0]] }"), "intervals from 0 up"),
    (("id = \"x-y\"", "id = \"x-y\"\nmagnitudes = { float64 = [1.0] }"), "magnitudes.float64 must list"),
    (("id = \"x-y\"", "id = \"x-y\"\nmode = \"sideways\""), "mode must be one of reverse, forward"),
    (("id = \"x-y\"", "id = \"x-y\"\nmagnitude_of = \"smallest\""), "magnitude_of must be one of largest"),
])
def test_malformed_registry_is_reported(tmp_path, change, message):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID.replace(*change))
    with pytest.raises(findings.RegistryError) as info:
        findings.load(path)
    assert message in str(info.value)
    assert "x-y" in str(info.value) or "entry 0" in str(info.value)


@pytest.mark.parametrize("reason", [verdict.INTERMEDIATE_OVERFLOW, verdict.EPSILON_UNDERFLOW])
def test_the_findings_the_judge_names_are_registered(reason):
    """judge_element names two registered findings without looking them up; they exist, and the intermediate
    overflow's covers every dtype, since the judge applies it in any."""
    named = reason.removeprefix(f"{verdict.REGISTERED} ")
    [finding] = [f for f in REGISTRY if f.id == named]
    if reason == verdict.INTERMEDIATE_OVERFLOW:
        assert set(finding.dtypes) == set(FORMATS)


def test_magnitudes_hold_the_largest_input(tmp_path):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID.replace("id = \"x-y\"", "id = \"x-y\"\nmagnitudes = { float64 = [[0.0, 1e-300]] }"))
    [finding] = findings.load(path)
    assert finding.holds_at_magnitude(1e-301, "float64") and finding.holds_at_magnitude(0.0, "float64")
    assert not finding.holds_at_magnitude(1e-299, "float64") and not finding.holds_at_magnitude(1e-301, "float32")


def test_valid_registry_and_duplicates(tmp_path):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID)
    [finding] = findings.load(path)
    assert finding.node_ids() == ["tests/test_conventions.py::test_follows_rule[abs/0-float64]"]
    path.write_text(_VALID + _VALID.replace("x-y", "x-z"))
    with pytest.raises(findings.RegistryError, match="registered by 'x-y' and 'x-z'"):
        findings.load(path)
    path.write_text("not = [toml")
    with pytest.raises(findings.RegistryError, match="not valid TOML"):
        findings.load(path)


class _Item:
    def __init__(self, nodeid):
        self.nodeid = nodeid
        self.marks = []

    def add_marker(self, mark):
        self.marks.append(mark)


class _Config:
    gradoracle_dtypes = tuple(FORMATS)


def test_apply_findings_marks_strict_xfail_and_warns_on_stale_ids(tmp_path):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID.replace('["float64"]', '["float64", "float32"]'))
    registered = _Item("tests/test_conventions.py::test_follows_rule[abs/0-float64]")
    other = _Item("tests/test_conventions.py::test_follows_rule[relu@0-float64]")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        findings.apply_findings([registered, other], _Config(), path)
    [mark] = registered.marks
    assert mark.name == "xfail" and mark.kwargs["strict"] is True and "x-y" in mark.kwargs["reason"]
    assert other.marks == []
    stale = [w for w in caught if issubclass(w.category, findings.StaleFindingWarning)]
    assert len(stale) == 1 and "abs/0-float32" in str(stale[0].message)


def test_op_entries_list_their_findings():
    """Each finding registered for an op of the table is on that op's entry, and every id an entry lists
    is registered (an entry may list a finding registered under a sibling op: fmin under fmax's)."""
    ids = {f.id for f in REGISTRY}
    for finding in REGISTRY:
        if finding.op in OPS:
            assert finding.id in OPS[finding.op].findings, f"{finding.op}'s entry lacks {finding.id!r}"
    stale = {(name, i) for name, op in OPS.items() for i in op.findings if i not in ids}
    assert not stale, f"entries list findings that are not registered: {sorted(stale)}"


def test_an_element_scoped_magnitude_excuses_only_that_elements_gradient():
    """polar-abs-zero-gradient holds where an abs is subnormal: at abs = (2^-128, 1) torch's gradient of the first
    is inf (the finding's), the second's is verified, so only the first may be excused."""
    from oracles.core.verdict import Verdict
    from oracles.table.tensor_ops import CallParams
    from oracles.tensor.check import check_tensor_case
    from oracles.tensor.program import Input, Tensor, TensorCase

    program = Tensor("polar", (Input(0), Input(1)), CallParams(()), 0)
    case = TensorCase(program, ((2,), (2,)), ((-2.0**-128, 1.0), (1.0, 1.0)), "float32", None)
    outcome = findings.excuse_registered_magnitudes(check_tensor_case(case, "cpu"), REGISTRY)
    by_element = {(v.leaf, v.index): v for v in outcome.verdicts}
    assert by_element[(0, (0,))].reason == f"{verdict.REGISTERED} polar-abs-zero-gradient"
    assert by_element[(0, (1,))].verdict is Verdict.VERIFIED and by_element[(1, (0,))].verdict is Verdict.VERIFIED
