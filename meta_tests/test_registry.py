"""The known-findings registry: it loads and validates, it lists exactly the deviations of the conventions
table, its ids match real tests, and the pytest hook marks and warns."""

from __future__ import annotations

import warnings

import pytest

from oracles.core.pinning import (
    cases,
)
from oracles.numerics.dtypes import FORMATS
from oracles.reports import findings
from oracles.table.ops import OPS
from oracles.table.tensor_ops import TENSOR_OPS
from tests import test_compile, test_forward_ad, test_higher_order
from tests.test_antialias_ops import ONE_COLUMN_DTYPES
from tests.test_attention_ops import FLASH_CASES
from tests.test_known_findings import (
    EPS_DTYPES,
    ERF_POINTS,
    EXCLUDED_SELF_CASES,
    INDEX_REDUCE_PROD_DTYPES,
    JVP_CRASH_DTYPES,
    POLAR_DTYPES,
    STRIDED_SCATTER_DTYPES,
    SUBNORMAL_SIZES,
)

REGISTRY = findings.load()
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
    """Every registered node id is one this suite generates (for some dtype selection)."""
    possible = set()
    for pinned, dtype in cases(FORMATS):
        possible.add(f"{CONVENTION_TESTS}test_pinned[{pinned.id}-{dtype}]")
        possible.add(f"{CONVENTION_TESTS}test_follows_rule[{pinned.id}-{dtype}]")
        for approach in pinned.convention.approaches:
            possible.add(f"{CONVENTION_TESTS}test_approach[{pinned.id}:{approach.label}-{dtype}]")
    possible |= {f"tests/test_findings.py::test_region[{f.id}-{d}]" for f in REGISTRY if f.regions for d in f.dtypes}
    possible |= {f"tests/test_known_findings.py::test_erf_keeps_relative_accuracy_near_zero[{name}-{d}]"
                 for name in ERF_POINTS for d in FORMATS}
    possible |= {f"tests/test_known_findings.py::test_bfloat16_subnormal_results_are_kept[gelu-{n}-bfloat16]"
                 for n in SUBNORMAL_SIZES}
    possible.add("tests/test_known_findings.py::test_gradient_fits_although_an_intermediate_overflows"
                 "[pow_scalar@2^-23-float16]")
    possible.add("tests/test_known_findings.py::test_gradient_fits_although_an_intermediate_overflows_to_nan"
                 "[cosh-chain@1-float16]")
    possible.add("tests/test_known_findings.py::test_gradient_fits_although_an_intermediate_overflows_to_inf"
                 "[polygamma-chain@0-float16]")
    possible |= {f"tests/test_known_findings.py::test_func_jvp_of_logsigmoid_of_a_0d_tensor_plus_a_scalar"
                 f"[logsigmoid@1-{d}]" for d in JVP_CRASH_DTYPES}
    possible |= {f"tests/test_known_findings.py::test_as_strided_scatter_passes_no_gradient_to_overwritten_places"
                 f"[as_strided_scatter@0-{d}]" for d in STRIDED_SCATTER_DTYPES}
    possible |= {f"tests/test_tensor_ops.py::test_tensor_op_gradient[{d}-{op}]" for op in TENSOR_OPS for d in FORMATS}
    possible |= {f"tests/test_known_findings.py::test_excluded_self_takes_no_share_of_the_gradient"
                 f"[{m}_{r}@self-tie-{d}]" for m, r, d in EXCLUDED_SELF_CASES}
    possible |= {f"tests/test_known_findings.py::test_binary_cross_entropy_of_a_saturated_sigmoid_is_finite"
                 f"[binary_cross_entropy@sigmoid(12)-{d}]" for d in EPS_DTYPES}
    possible |= {f"tests/test_known_findings.py::test_cosine_embedding_loss_of_a_zero_vector_is_finite"
                 f"[cosine_embedding_loss@zero-{d}]" for d in EPS_DTYPES}
    possible.add("tests/test_known_findings.py::test_masked_std_of_tiny_deviations_has_a_finite_gradient"
                 "[masked_std@underflow-float16]")
    possible |= {f"tests/test_known_findings.py::test_index_reduce_prod_runs_on_a_row[index_reduce_prod@1x1-{d}]"
                 for d in INDEX_REDUCE_PROD_DTYPES}
    possible |= {f"tests/test_known_findings.py::test_polar_abs_gradient_at_zero[polar@0-{d}]" for d in POLAR_DTYPES}
    possible |= {f"tests/test_attention_ops.py::test_flash_causal_attention_with_a_scale_not_above_zero"
                 f"[sdpa-flash@causal,scale={s}-{d}]" for s, d in FLASH_CASES}
    possible |= {f"tests/test_antialias_ops.py::test_antialiased_resize_to_one_column[aa@2x1->3x1-{d}]"
                 for d in ONE_COLUMN_DTYPES}
    for module in (test_higher_order, test_forward_ad, test_compile):  # tests pinned with pytest_plugin.at_points
        for name, test in vars(module).items():
            possible |= {f"tests/{module.__name__.split('.')[-1]}.py::{name}[{label}-{d}]"
                         for label, only in getattr(test, "points", ()) for d in (only or FORMATS)}
    unknown = sorted(set(findings.registered_nodes(REGISTRY)) - possible)
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
tests = ["tests/test_conventions.py::test_follows_rule[abs@0]"]
'''


@pytest.mark.parametrize("change, message", [
    (("op = \"abs\"", "op = \"absolute\""), "op 'absolute' is not in the op table"),
    (("kind = \"deviation\"", "kind = \"bug\""), "kind must be one of"),
    (("dtypes = [\"float64\"]", "dtypes = [\"float8\"]"), "dtypes ['float8']"),
    (("upstream = \"none found\"", "upstream = \"see slack\""), "upstream must be a GitHub URL"),
    (("tests = [\"tests/test_conventions.py::test_follows_rule[abs@0]\"]", "tests = [\"abs@0\"]"),
     "test id 'abs@0' must look like"),
    (("torch_versions = [\"2.13.0\"]", "torch_versions = []"), "torch_versions must list"),
    (("where = \"somewhere\"\n", ""), "missing field 'where'"),
    (("id = \"x-y\"", "id = \"x-y\"\ncolour = \"red\""), "unknown field(s) colour"),
    (("evidence = \"torch gives this, the exact value is that, because the backward formula does so.\"",
      "evidence = \"wrong\""), "evidence must say"),
])
def test_malformed_registry_is_reported(tmp_path, change, message):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID.replace(*change))
    with pytest.raises(findings.RegistryError) as info:
        findings.load(path)
    assert message in str(info.value)
    assert "x-y" in str(info.value) or "entry 0" in str(info.value)


def test_valid_registry_and_duplicates(tmp_path):
    path = tmp_path / "findings.toml"
    path.write_text(_VALID)
    [finding] = findings.load(path)
    assert finding.node_ids() == ["tests/test_conventions.py::test_follows_rule[abs@0-float64]"]
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
    registered = _Item("tests/test_conventions.py::test_follows_rule[abs@0-float64]")
    other = _Item("tests/test_conventions.py::test_follows_rule[relu@0-float64]")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        findings.apply_findings([registered, other], _Config(), path)
    [mark] = registered.marks
    assert mark.name == "xfail" and mark.kwargs["strict"] is True and "x-y" in mark.kwargs["reason"]
    assert other.marks == []
    stale = [w for w in caught if issubclass(w.category, findings.StaleFindingWarning)]
    assert len(stale) == 1 and "abs@0-float32" in str(stale[0].message)


def test_op_entries_list_their_findings():
    """Each finding registered for an op of the table is on that op's entry, and every id an entry lists
    is registered (an entry may list a finding registered under a sibling op: fmin under fmax's)."""
    ids = {f.id for f in REGISTRY}
    for finding in REGISTRY:
        if finding.op in OPS:
            assert finding.id in OPS[finding.op].findings, f"{finding.op}'s entry lacks {finding.id!r}"
    stale = {(name, i) for name, op in OPS.items() for i in op.findings if i not in ids}
    assert not stale, f"entries list findings that are not registered: {sorted(stale)}"
