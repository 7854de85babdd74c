"""Which of the installed torch's differentiable OpInfo entries the op tables verify.

    python -m gradoracle coverage                 # the count, per category
    python -m gradoracle coverage --missing       # and every entry not verified yet
    python -m gradoracle coverage --json PATH     # the same as JSON (written atomically)

Counted against torch's own OpInfo database (torch.testing._internal.common_methods_invocations.op_db):
the entries that support autograd and float64 on the CPU, named `name` or `name[variant]`. An entry is
verified when an op of the tables names it in its `opinfo`; nothing here is a hand-kept list.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from oracles.reports.files import file_problem, write_atomically
from oracles.table.ops import OPS
from oracles.table.tensor_ops import TENSOR_OPS

# Categories from torch's own OpInfo metadata: the OpInfo class where it says what kind of op this is,
# else the namespace of the name.
CLASS_CATEGORIES = {"UnaryUfuncInfo": "unary elementwise", "BinaryUfuncInfo": "binary elementwise",
                    "ReductionOpInfo": "reductions", "SpectralFuncInfo": "fft"}
PREFIX_CATEGORIES = (("linalg.", "linalg"), ("fft.", "fft"), ("masked.", "masked"), ("sparse.", "sparse"),
                     ("special.", "special"), ("nn.functional.", "nn.functional"))


def opinfo_name(info) -> str:
    return f"{info.name}[{info.variant_test_name}]" if info.variant_test_name else info.name


def differentiable_opinfos() -> dict[str, str]:
    """Name -> category of torch's OpInfo entries with autograd and float64 on the CPU, in op_db's order.
    op_db lives in torch's test utilities, which import `expecttest` (requirements.txt has it)."""
    # Imported here, not at the top: building op_db takes seconds and imports torch's test machinery,
    # which no other command (nor `--help`) needs.
    from torch.testing._internal.common_methods_invocations import op_db

    return {opinfo_name(info): category(info) for info in op_db
            if info.supports_autograd and torch.float64 in info.supported_dtypes("cpu")}


def category(info) -> str:
    by_prefix = next((name for prefix, name in PREFIX_CATEGORIES if info.name.startswith(prefix)), None)
    if by_prefix in ("linalg", "fft", "masked", "sparse"):
        return by_prefix
    return CLASS_CATEGORIES.get(type(info).__name__) or by_prefix or "other"


def claimed() -> dict[str, list[str]]:
    """OpInfo name -> the table entries that verify it (elementwise and tensor ops)."""
    claims: dict[str, list[str]] = {}
    for table in (OPS, TENSOR_OPS):
        for name, op in table.items():
            for info in op.opinfo:
                claims.setdefault(info, []).append(name)
    return claims


@dataclass
class Coverage:
    torch_version: str
    differentiable: dict[str, str]  # OpInfo name -> category
    verified: dict[str, list[str]]  # OpInfo name -> entries
    unknown: dict[str, list[str]]  # names claimed by an entry that the installed torch's op_db lacks

    @property
    def missing(self) -> list[str]:
        return [name for name in self.differentiable if name not in self.verified]

    def categories(self) -> dict[str, dict]:
        """Per category, largest first: total, covered and the missing names."""
        out: dict[str, dict] = {}
        for name, cat in self.differentiable.items():
            entry = out.setdefault(cat, {"total": 0, "covered": 0, "missing": []})
            entry["total"] += 1
            if name in self.verified:
                entry["covered"] += 1
            else:
                entry["missing"].append(name)
        return dict(sorted(out.items(), key=lambda item: -item[1]["total"]))

    def to_json(self) -> dict:
        return {"schema": "gradoracle-coverage/1", "torch": self.torch_version, "total": len(self.differentiable),
                "covered": len(self.verified), "categories": self.categories(), "entries": self.verified,
                "unknown": self.unknown}


def measure() -> Coverage:
    names = differentiable_opinfos()
    claims = claimed()
    verified = {n: claims[n] for n in names if n in claims}
    unknown = {n: entries for n, entries in claims.items() if n not in names}
    return Coverage(torch.__version__, names, verified, unknown)


def render(cov: Coverage, missing: bool) -> str:
    n, m = len(cov.verified), len(cov.differentiable)
    lines = [f"torch {cov.torch_version}: {n} of {m} differentiable OpInfo entries verified ({n / m:.0%})"]
    lines += [f"  {cat:<20} {c['covered']:>4} of {c['total']:<4}" for cat, c in cov.categories().items()]
    for name, entries in sorted(cov.unknown.items()):
        lines.append(f"warning: {', '.join(entries)} claims OpInfo {name!r}, which this torch's op_db lacks")
    if missing:
        lines.append(f"not verified ({len(cov.missing)}):")
        lines += [f"  {name}" for name in cov.missing]
    return "\n".join(lines)


def writable_path(text: str) -> Path:
    problem = file_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradoracle coverage", description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list every differentiable OpInfo entry not verified")
    parser.add_argument("--json", type=writable_path, metavar="PATH", help="also write the coverage as JSON to PATH")
    args = parser.parse_args(argv)
    try:
        cov = measure()
    except ModuleNotFoundError as exc:
        print(f"coverage: torch's OpInfo database needs {exc.name!r} (pip install {exc.name})", file=sys.stderr)
        return 2
    print(render(cov, args.missing))
    if args.json:
        write_atomically(args.json, json.dumps(cov.to_json(), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0
