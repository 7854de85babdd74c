"""The known-findings registry (oracles/findings.toml, shipped with the package): real torch deviations,
each with evidence, the torch versions seen affected, an upstream issue if one exists, and the tests that
show it.

Those tests are marked strict xfails (`apply_findings`, called from the pytest plugin's
`pytest_collection_modifyitems`), so a torch upgrade that fixes a finding fails the suite with
"XPASS(strict)" and the entry can go. Registry test ids that match no collected test warn (stale).

Entries need evidence that torch is wrong (against its documented rule, or against the exact gradient
beyond the accuracy band); an oracle problem is fixed in the oracle, never registered here.

Test ids are written without the dtype: `tests/test_conventions.py::test_follows_rule[hypot@0,0]`
stands for one test per dtype of the entry, `...[hypot@0,0-float64]`, ...; an id that ends in a dtype
(`...[atan@2^520-float64]`) stands for itself.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from oracles.core.case import flat_index
from oracles.core.expr import Const
from oracles.core.outcomes import Outcome
from oracles.core.verdict import REGISTERED, Verdict
from oracles.numerics.dtypes import FORMATS
from oracles.table.ops import OPS
from oracles.table.reduction_conventions import PINNED_ONLY
from oracles.table.tensor_ops import TENSOR_OPS
from oracles.tensor.program import Input, Tensor, nodes

REGISTRY = Path(__file__).resolve().parents[1] / "findings.toml"
# deviation: against the documented rule; inaccuracy: beyond the accuracy band; compile: wrong under
# torch.compile only (eager torch agrees with the oracle there)
KINDS = ("deviation", "inaccuracy", "compile")
ANY_PROGRAM = "any"  # the op of a compile finding that holds for every program, not one op
_REQUIRED = {"id": str, "op": str, "where": str, "kind": str, "dtypes": list, "torch_versions": list,
             "upstream": str, "evidence": str, "tests": list}
_OPTIONAL = {"region": (dict, list),  # one region ([finding.region]) or several ([[finding.region]])
             "magnitudes": dict,  # a tensor op's: per dtype, intervals of its first input's largest magnitude
             # what the magnitudes measure: "largest" (default: the first input's largest |element|, for findings
             # of the whole tensor) or "element" (each element's own, for an op elementwise in its first input:
             # only the gradient of an element inside the magnitudes is the finding's)
             "magnitude_of": str,
             # which derivative of the op (default "reverse", its backward): "forward" (forward mode),
             # "double-backward" (autograd.grad of its gradient), "func-second" (torch.func's second-order
             # transforms: hessian, jvp of jvp)
             "mode": str}
MODES = ("reverse", "forward", "double-backward", "func-second")
MAGNITUDE_SCOPES = ("largest", "element")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TEST = re.compile(r"^tests/[\w/]+\.py::\w+\[.+\]$")  # ids may hold brackets (oracles.core.test_ids)


class RegistryError(ValueError):
    """findings.toml is malformed; the message names the entry and the field."""


class StaleFindingWarning(UserWarning):
    """A registered test id matches no collected test."""


@dataclass(frozen=True)
class Region:
    """Where a region finding holds: an interval per tensor argument (inclusive), constants appended;
    `per_dtype` replaces the intervals for a dtype whose range puts the region elsewhere."""

    args: tuple[tuple[float, float], ...]
    constants: tuple[float, ...] = ()
    per_dtype: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    mirrored: bool = False  # the region holds for each argument's negative too (an odd or even op)
    other_constants: tuple[tuple[float, ...], ...] = ()  # more choices of the constants it holds for

    def args_for(self, dtype: str) -> tuple[tuple[float, float], ...]:
        return dict(self.per_dtype).get(dtype, self.args)

    def contains(self, point: tuple[float, ...], dtype: str) -> bool:
        """Whether the op's argument tuple `point` (tensor arguments, then constants) lies in the region."""
        intervals = self.args_for(dtype)
        tensors, constants = point[:len(intervals)], tuple(point[len(intervals):])
        if constants not in (self.constants, *self.other_constants):
            return False
        return all(low <= (abs(x) if self.mirrored else x) <= high for x, (low, high) in zip(tensors, intervals))


@dataclass(frozen=True)
class Finding:
    id: str
    op: str
    where: str
    kind: str
    dtypes: tuple[str, ...]
    torch_versions: tuple[str, ...]
    upstream: str
    evidence: str
    tests: tuple[str, ...]
    regions: tuple[Region, ...] = ()
    # a tensor-op finding's region: per dtype, intervals that hold the largest |element| of the op's first input
    # (the matrix, the tensor reduced, the queries) wherever the finding shows (squares underflow below, overflow
    # above)
    magnitudes: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    mode: str = "reverse"
    magnitude_of: str = "largest"

    def holds_at_magnitude(self, largest: float, dtype: str) -> bool:
        intervals = dict(self.magnitudes).get(dtype, ())
        return dtype in self.dtypes and any(low <= largest <= high for low, high in intervals)

    def holds_at(self, point: tuple[float, ...], dtype: str) -> bool:
        """Whether `point` (tensor arguments, then constants) lies in one of the finding's regions in `dtype`."""
        return dtype in self.dtypes and any(region.contains(point, dtype) for region in self.regions)

    def node_ids(self) -> list[str]:
        """The pytest node ids this entry marks: each test id once per dtype, or as written when it
        names its dtype (values that hold for one dtype only)."""
        nodes = []
        for test in self.tests:
            if _dtype_of(test):
                nodes.append(test)
            else:
                nodes += [f"{test[:-1]}-{dtype}]" for dtype in self.dtypes]
        return nodes

    @property
    def reason(self) -> str:
        return f"known finding {self.id} ({self.upstream}): {self.where}"


def _entry(raw: dict, position: int, known_ops) -> Finding:
    name = raw.get("id", f"entry {position}")
    where = f"findings.toml [[finding]] {name!r}"
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key, kind in _REQUIRED.items():
        if key not in raw:
            raise RegistryError(f"{where}: missing field {key!r}")
        if not isinstance(raw[key], kind):
            raise RegistryError(f"{where}: {key!r} must be a {kind.__name__}, got {raw[key]!r}")
    if not _ID.match(raw["id"]):
        raise RegistryError(f"{where}: id must be lower-case letters, digits, '-', '_' or '.'")
    if raw["op"] not in known_ops and not (raw["op"] == ANY_PROGRAM and raw.get("kind") == "compile"):
        raise RegistryError(f"{where}: op {raw['op']!r} is not in the op table, the tensor-op table or "
                            f"the pinned-only conventions (a compile finding may say {ANY_PROGRAM!r})")
    if raw["kind"] not in KINDS:
        raise RegistryError(f"{where}: kind must be one of {', '.join(KINDS)}, got {raw['kind']!r}")
    bad = [d for d in raw["dtypes"] if d not in FORMATS]
    if bad or not raw["dtypes"]:
        raise RegistryError(f"{where}: dtypes {bad or raw['dtypes']!r}; choose from {', '.join(FORMATS)}")
    if not raw["torch_versions"] or not all(isinstance(v, str) for v in raw["torch_versions"]):
        raise RegistryError(f"{where}: torch_versions must list the versions seen affected, as strings")
    upstream = raw["upstream"]
    if upstream != "none found" and not upstream.startswith("https://github.com/"):
        raise RegistryError(f"{where}: upstream must be a GitHub URL or 'none found', got {upstream!r}")
    if len(raw["evidence"].strip()) < 40:
        raise RegistryError(f"{where}: evidence must say what torch returns, the exact or rule value, and why")
    if not raw["tests"]:
        raise RegistryError(f"{where}: list at least one test id")
    for test in raw["tests"]:
        if not isinstance(test, str) or not _TEST.match(test):
            raise RegistryError(f"{where}: test id {test!r} must look like 'tests/file.py::test_name[param]' "
                                f"(the dtype is added per entry dtype unless the id ends in one)")
        if _dtype_of(test) and _dtype_of(test) not in raw["dtypes"]:
            raise RegistryError(f"{where}: test id {test!r} names dtype {_dtype_of(test)!r}, "
                                f"which the entry's dtypes {raw['dtypes']} lack")
    regions = raw.get("region", [])
    if not isinstance(regions, (dict, list)) or not all(isinstance(r, dict) for r in (
            [regions] if isinstance(regions, dict) else regions)):
        raise RegistryError(f"{where}: region must be a table ([finding.region]) or tables ([[finding.region]])")
    regions = tuple(_region(r, where) for r in ([regions] if isinstance(regions, dict) else regions))
    magnitudes = _magnitudes(raw.get("magnitudes", {}), raw["dtypes"], where)
    mode = raw.get("mode", "reverse")
    if mode not in MODES:
        raise RegistryError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    magnitude_of = raw.get("magnitude_of", "largest")
    if magnitude_of not in MAGNITUDE_SCOPES:
        raise RegistryError(f"{where}: magnitude_of must be one of {', '.join(MAGNITUDE_SCOPES)}, "
                            f"got {magnitude_of!r}")
    return Finding(raw["id"], raw["op"], raw["where"], raw["kind"], tuple(raw["dtypes"]),
                   tuple(raw["torch_versions"]), upstream, raw["evidence"].strip(), tuple(raw["tests"]), regions,
                   magnitudes, mode, magnitude_of)


def _magnitudes(raw: dict, dtypes: list[str], where: str) -> tuple[tuple[str, tuple[tuple[float, float], ...]], ...]:
    out = []
    for dtype, intervals in raw.items():
        if dtype not in dtypes:
            raise RegistryError(f"{where}: magnitudes.{dtype}: not one of the entry's dtypes {dtypes}")
        bounds = _intervals(intervals, where, f"magnitudes.{dtype}")
        if any(low < 0 for low, _ in bounds):
            raise RegistryError(f"{where}: magnitudes.{dtype} are magnitudes: intervals from 0 up")
        out.append((dtype, bounds))
    return tuple(out)


def _dtype_of(test: str) -> str | None:
    """The dtype a test id names: its parameters' last (test_region[...-float16]) or first (the tensor-op
    property tests, test_tensor_op_gradient[float16-...])."""
    names = "|".join(FORMATS)
    match = re.search(rf"-({names})\]$", test) or re.search(rf"\[({names})[-\]]", test)
    return match.group(1) if match else None


def _intervals(args, where: str, field: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(args, list) or not args or not all(
            isinstance(a, list) and len(a) == 2 and all(isinstance(v, (int, float)) for v in a) and a[0] <= a[1]
            for a in args):
        raise RegistryError(f"{where}: {field} must list one [low, high] interval per tensor argument")
    return tuple((float(a), float(b)) for a, b in args)


def _region(raw: dict, where: str) -> Region:
    args = _intervals(raw.get("args"), where, "region.args")
    constants = raw.get("constants", [])
    if not isinstance(constants, list) or not all(isinstance(v, (int, float)) for v in constants):
        raise RegistryError(f"{where}: region.constants must be a list of numbers")
    others = raw.get("other_constants", [])
    if not isinstance(others, list) or not all(
            isinstance(c, list) and len(c) == len(constants) and all(isinstance(v, (int, float)) for v in c)
            for c in others):
        raise RegistryError(f"{where}: region.other_constants must list choices shaped as region.constants")
    mirrored = raw.get("mirrored", False)
    if not isinstance(mirrored, bool):
        raise RegistryError(f"{where}: region.mirrored must be true or false, not {mirrored!r}")
    per_dtype = []
    for key, value in raw.items():
        if key in ("args", "constants", "other_constants", "mirrored"):
            continue
        if key not in FORMATS or not isinstance(value, dict) or set(value) != {"args"}:
            raise RegistryError(f"{where}: unknown region field {key!r} (a dtype table takes only args)")
        per_dtype.append((key, _intervals(value["args"], where, f"region.{key}.args")))
        if len(per_dtype[-1][1]) != len(args):
            raise RegistryError(f"{where}: region.{key}.args needs {len(args)} interval(s), as region.args")
    return Region(args, tuple(float(c) for c in constants), tuple(per_dtype), mirrored,
                  tuple(tuple(float(v) for v in c) for c in others))


def findings_of_mode(registry: list[Finding], mode: str) -> dict[str, Finding]:
    """Per op, the registered finding about that derivative of it (one of MODES; its own tests pin it), leaving
    out those of convention points only (tests/test_conventions.py pins them): the random properties leave a
    kink or tie unverified anyway, so such a finding is no reason to skip the op's property."""
    return {f.op: f for f in registry if f.mode == mode
            and not all(test.startswith("tests/test_conventions.py::") for test in f.tests)}


def excuse_registered_magnitudes(outcome: Outcome, registry: list[Finding]) -> Outcome:
    """`outcome` of a tensor case with the elements torch does not pass counted as a registered finding
    (Verdict.REGISTERED, reason `registered finding <id>`) where an op's first input lies in that finding's
    magnitudes: for the case's root op, its largest |element| (every element torch does not pass is excused); for a
    finding of `magnitude_of = "element"`, each element's own |value|, wherever in the program its op reads an input
    directly (only that element's gradient is excused). The finding is pinned by its own strict test."""
    case = outcome.case
    program = case.program
    root_first = program.args[0] if isinstance(program, Tensor) else None
    largest = (max((abs(v) for v in case.values[root_first.index]), default=0.0)
               if isinstance(root_first, Input) else None)
    # (op, input index) of every tensor op that reads an input directly as its first argument
    reading = {(node.op, node.args[0].index) for node in nodes(program)
               if isinstance(node, Tensor) and isinstance(node.args[0], Input)}

    def excusing(v) -> Finding | None:
        for f in registry:
            if f.magnitude_of == "element":
                if (f.op, v.leaf) in reading:
                    value = case.values[v.leaf][flat_index(case.shapes[v.leaf], v.index)]
                    if f.holds_at_magnitude(abs(value), case.dtype):
                        return f
            elif largest is not None and f.op == program.op and f.holds_at_magnitude(largest, case.dtype):
                return f
        return None

    verdicts = []
    for v in outcome.verdicts:
        finding = None if v.verdict is Verdict.VERIFIED else excusing(v)
        verdicts.append(v if finding is None else replace(v, verdict=Verdict.REGISTERED,
                                                         reason=f"{REGISTERED} {finding.id}"))
    return replace(outcome, verdicts=verdicts)


def registered_region(registry: list[Finding], op: str, dtype: str, point: tuple[float, ...]) -> Finding | None:
    """The registered finding with a region that holds `op`'s argument tuple `point` in `dtype`, if any."""
    return next((f for f in registry if f.op == op and f.holds_at(point, dtype)), None)


def registered_finding_at(registry: list[Finding], op: str, dtype: str, point: tuple[float, ...]) -> str | None:
    """The id of the registered finding whose region holds `op`'s argument tuple `point` in `dtype`, if any; for a
    tensor op, `point` is one element of its first input, held by a finding's element-scoped magnitudes."""
    finding = registered_region(registry, op, dtype, point) or next(
        (f for f in registry if f.op == op and f.magnitude_of == "element" and len(point) == 1
         and f.holds_at_magnitude(abs(point[0]), dtype)), None)
    return None if finding is None else finding.id


def load(path: Path = REGISTRY) -> list[Finding]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"no findings registry at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path.name} is not valid TOML: {exc}") from None
    extra = set(data) - {"finding"}
    if extra:
        raise RegistryError(f"{path.name}: unknown top-level key(s) {', '.join(sorted(extra))}; "
                            f"entries are [[finding]] tables")
    known = set(OPS) | set(PINNED_ONLY) | set(TENSOR_OPS)
    findings = [_entry(raw, i, known) for i, raw in enumerate(data.get("finding", []))]
    seen: dict[str, str] = {}
    for finding in findings:
        if finding.id in seen:
            raise RegistryError(f"{path.name}: duplicate id {finding.id!r}")
        seen[finding.id] = finding.id
        for node in finding.node_ids():
            if node in seen:
                raise RegistryError(f"{path.name}: test {node} is registered by {seen[node]!r} and {finding.id!r}")
            seen[node] = finding.id
    return findings


def registered_nodes(findings: list[Finding]) -> dict[str, Finding]:
    return {node: f for f in findings for node in f.node_ids()}


def apply_findings(items, config, path: Path = REGISTRY) -> None:
    """Mark every collected test registered in findings.toml as a strict xfail; warn about registered
    ids whose test function was collected but which match no collected parametrization (stale ids).
    Called from the plugin's `pytest_collection_modifyitems(config, items)`."""
    nodes = registered_nodes(load(path))
    collected = {item.nodeid for item in items}
    for item in items:
        finding = nodes.get(item.nodeid)
        if finding is not None:
            item.add_marker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=finding.reason))
            item.registered_finding = finding.id  # its wrong verdicts are tallied as the finding's
    functions = {item.nodeid.split("[")[0] for item in items}
    selected = set(getattr(config, "gradoracle_dtypes", FORMATS))
    for node, finding in nodes.items():
        dtype = node.rsplit("-", 1)[-1].rstrip("]")
        if node not in collected and node.split("[")[0] in functions and dtype in selected:
            warnings.warn(StaleFindingWarning(f"findings.toml: {finding.id!r} registers {node}, which matches "
                                              f"no collected test (stale entry?)"), stacklevel=1)


def excuse_registered_regions(outcome: Outcome, registry: list[Finding]) -> Outcome:
    """`outcome` of a single-op case whose tensor inputs are all of one shape (n,) (point i reads element i
    of each), with every element torch does not pass that lies in a registered finding's region counted as
    that finding (Verdict.REGISTERED, reason `registered finding <id>`): the finding is pinned by its own strict
    test, and everywhere else the check stays as strict as before."""
    case = outcome.case
    expr = case.expr
    verdicts = []
    for v in outcome.verdicts:
        if v.verdict is not Verdict.VERIFIED and v.index:
            values = iter(case.values)
            point = tuple(arg.value if isinstance(arg, Const) else next(values)[v.index[0]] for arg in expr.args)
            finding = registered_region(registry, expr.op, case.dtype, point)
            if finding is not None:
                v = replace(v, verdict=Verdict.REGISTERED, reason=f"{REGISTERED} {finding.id}")
        verdicts.append(v)
    return replace(outcome, verdicts=verdicts)
