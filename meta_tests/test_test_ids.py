"""Every test id of the suite can be named in pytest's `-k` (oracles.core.test_ids), and naming one selects it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from oracles.core.test_ids import selectable
from oracles.numerics.dtypes import FORMATS

ROOT = Path(__file__).resolve().parent.parent
# the characters of a `-k` identifier (pytest's expression grammar)
_TAKEN = re.compile(r"[\w:+\-./\[\]\\]*")


def _collect(*args: str) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "--dtypes", ",".join(FORMATS), *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return [line.strip() for line in run.stdout.splitlines() if "::" in line]


def test_every_id_can_be_named_in_k():
    unnamable = [node for node in _collect() if not _TAKEN.fullmatch(node.partition("[")[2].removesuffix("]"))]
    assert not unnamable, f"{len(unnamable)} ids -k cannot name, e.g. {unnamable[:5]}"


def test_naming_a_convention_selects_it():
    selected = _collect("tests/test_conventions.py", "-k", "test_pinned and clamp/0:lo:0:hi:1")
    assert selected == [f"tests/test_conventions.py::test_pinned[clamp/0:lo:0:hi:1-{d}]" for d in FORMATS]


def test_selectable_spells_what_k_cannot_take():
    assert selectable("clamp@0,lo=0,hi=1") == "clamp/0:lo:0:hi:1"
    assert selectable("(x0 ** x1) * x2") == "[x0_pow_x1]_times_x2"
    assert selectable("atan2@2^40,1") == "atan2/2pow40:1"
    assert _TAKEN.fullmatch(selectable("".join(chr(c) for c in range(32, 127))))
