"""The package's layering, read from the source (ast), so it cannot decay unnoticed: `oracles`' subpackages
import only their own layer or lower ones, nothing in `oracles` imports `strategies` or `gradoracle`,
`strategies` never imports `gradoracle`, no module imports inside a function without a comment saying
why, and the import graph of all three packages has no cycle."""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("oracles", "strategies", "gradoracle")
# oracles' layers, lowest first (oracles/__init__.py says what each holds)
LAYERS = ("numerics", "table", "core", "tensor", "higher", "faults", "reports")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = modules()


def imported(tree: ast.AST) -> list[tuple[str, ast.stmt]]:
    """(module, statement) for every import of one of our packages; `from a import b` counts as a.b when
    a.b is a module of ours, else as a."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((candidate if candidate in MODULES else node.module, node))
    return [(name, node) for name, node in found if name.split(".")[0] in PACKAGES]


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(target for target, _ in imported(ast.parse(path.read_text())))
            for name, path in MODULES.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "oracles" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_every_oracles_module_is_in_a_layer():
    stray = [m for m in MODULES if m.startswith("oracles.") and layer(m) is None]
    assert not stray, f"modules of oracles outside its layers {LAYERS}: {stray}"


def layering_problems(module: str, targets) -> list[str]:
    problems = []
    for target in sorted(targets):
        package = target.split(".")[0]
        if module.startswith("oracles") and package != "oracles":
            problems.append(f"imports {target} (nothing in oracles imports {package})")
        elif module.startswith("strategies") and package == "gradoracle":
            problems.append(f"imports {target} (strategies never imports the commands)")
        elif layer(module) is not None and layer(target) is not None and layer(target) > layer(module):
            problems.append(f"imports {target}, a higher layer ({LAYERS[layer(target)]} above "
                            f"{LAYERS[layer(module)]})")
    return problems


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_layers(module):
    problems = layering_problems(module, graph()[module])
    assert not problems, f"{module}: " + "; ".join(problems)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_inside_a_function_without_a_reason(module):
    """An import inside a function hides a dependency (or a cycle): allowed only under a comment."""
    path = MODULES[module]
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    unexplained = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
                if not above.startswith("#"):
                    unexplained.append(f"line {node.lineno}")
    assert not unexplained, f"{module}: imports inside functions with no comment above: {unexplained}"


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue
            if state.get(target) == 1:
                return path + [node, target]
            if state.get(target) is None:
                cycle = visit(target, path + [node])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):])


def test_the_checks_see_planted_violations():
    """The rules above flag an upward import and an oracles -> strategies import, and the ast reading
    resolves `from package import module` to the module."""
    tree = ast.parse("from strategies.cached import choice\nfrom oracles.reports import findings\n")
    targets = {name for name, _ in imported(tree)}
    assert targets == {"strategies.cached", "oracles.reports.findings"}
    problems = layering_problems("oracles.table.ops", targets)
    assert len(problems) == 2 and "nothing in oracles imports strategies" in problems[1]
    assert "a higher layer (reports above table)" in problems[0]
    assert layering_problems("strategies.cases", {"gradoracle.explore"}) != []
    assert layering_problems("gradoracle.explore", {"strategies.cases", "oracles.reports.findings"}) == []
