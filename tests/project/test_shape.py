"""The shape of the code: no module over 400 lines, no function over 60, no import cycle (src and scripts), and
imports between packages only in the directions docs/design.md gives."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

SRC = ROOT / "src"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60

# what each package may import (besides itself and the foundation: rnnclf, rnnclf.errors, rnnclf.files)
ALLOWED = {
    "config": set(),
    "device": set(),
    "data": {"config"},
    "evaluation": set(),
    "models": {"config", "data"},
    "runs": {"config", "data", "evaluation", "models"},
    "inference": {"config", "data", "device", "evaluation", "models", "runs"},
    "views": {"config", "evaluation", "inference", "runs"},
    "training": {"config", "data", "device", "evaluation", "inference", "models", "runs", "views"},
    "recipes": {"config", "data", "device", "evaluation", "models", "runs", "views", "inference", "training", "check"},
    "check": {"config", "data", "models"},
    "active": {"config", "data", "evaluation", "check", "runs"},
    "serve": {"config", "device", "evaluation", "inference", "runs", "views"},
    "cli": {"*"},
}
FOUNDATION = {"rnnclf", "rnnclf.errors", "rnnclf.files", "rnnclf.__main__"}


def python_files() -> list[Path]:
    return sorted([*(SRC / "rnnclf").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])


def module_name(path: Path) -> str:
    """rnnclf.x.y for the package; scripts by their name from scripts/ (how they import each other)."""
    base = SRC if path.is_relative_to(SRC) else ROOT / "scripts"
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module of the project that `path` imports, at any depth of its code (inside functions too)."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # rnnclf.x.y.Name -> rnnclf.x.y
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = python_files()
    known = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, known) - {module_name(path)} for path in files}


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path}: {len(source.splitlines())} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: {', '.join(long)}"


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_packages_import_only_downward():
    wrong = []
    for module, targets in import_graph().items():
        parts = module.split(".")
        if parts[0] != "rnnclf" or len(parts) < 2 or module in FOUNDATION:
            continue
        package, allowed = parts[1], ALLOWED.get(parts[1])
        assert allowed is not None, f"{module}: package rnnclf.{package} is not in ALLOWED (tests/test_shape.py)"
        for target in targets:
            if target in FOUNDATION or "*" in allowed:
                continue
            other = target.split(".")[1]
            if other != package and other not in allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_top_level_holds_only_packages_and_the_foundation():
    modules = {path.stem for path in (SRC / "rnnclf").glob("*.py")}
    assert modules <= {"__init__", "__main__", "errors", "files"}, modules
