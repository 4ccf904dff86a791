"""Imports point one way: no circle in the package, and a strategy imports only the strategy API.

Every `import` and `from ... import` counts, including those inside functions and under
`TYPE_CHECKING`: an import hidden there is still a dependency, only a late one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = "cryptobot"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path, package: str) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name `path` imports, anywhere in the file, relative imports resolved.

    `from a.b import c` yields `a.b.c`, which `resolve` maps to `a.b` when `c` is not a module."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module `name` refers to: itself, or the nearest enclosing module (an attribute)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = package_modules(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name, modules) for name in imported_names(path, module)}
        graph[module] = {target for target in targets if target and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_finder_sees_a_circle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from . import b\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_the_package_has_no_import_circle():
    assert cycles(import_graph(REPO_ROOT, PACKAGE)) == []


def test_a_strategy_imports_only_the_strategy_api():
    """cryptobot.strategy itself (not its modules), the standard library, numpy and pandas."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "pandas", "__future__"}
    wrong = {}
    for path in sorted((REPO_ROOT / "strategies").glob("*.py")):
        names = imported_names(path, f"strategies.{path.stem}")
        others = sorted(name for name in names if name != "cryptobot.strategy" and not (
            name.startswith("cryptobot.strategy.") and name.count(".") == 2
            and name.rpartition(".")[2][:1] != "_" and not _is_module(name))
            and name.partition(".")[0] not in allowed)
        if others:
            wrong[path.name] = others
    assert wrong == {}


def _is_module(name: str) -> bool:
    """`cryptobot.strategy.api` names a module of the API's package, not one of its names."""
    return (REPO_ROOT / name.replace(".", "/")).with_suffix(".py").exists()
