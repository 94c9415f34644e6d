"""Layers point one way (docs/ARCHITECTURE.md): each package imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "translate"

# What each package (or top-level module) of translate/ may import, besides itself.
ALLOWED = {
    "errors": set(),
    "exports": set(),
    "lazy": set(),
    "registry": {"errors", "config"},
    "labels": {"errors"},
    "config": {"errors", "labels"},
    "config_files": {"errors", "config"},
    "layers": {"errors", "registry", "config"},
    "generators": {"errors", "registry", "layers"},
    "discriminators": {"errors", "registry", "layers"},
    "losses": {"errors", "registry"},
    "data": {"errors", "registry", "config", "labels"},
    "catalog": {"errors", "data"},
    "tasks": {"errors", "registry", "config", "labels", "layers", "generators", "discriminators", "losses"},
    "engine": {"errors", "registry", "config", "labels", "layers", "losses", "data", "tasks"},
    "metrics": {"errors", "config", "data"},
    "components": {"data", "discriminators", "engine", "generators", "losses", "tasks"},
    "kinds": {"errors", "registry", "labels", "layers", "data", "metrics"},
    "inference": {
        "errors",
        "registry",
        "labels",
        "layers",
        "data",
        "tasks",
        "engine",
        "kinds",
        "components",
        "lazy",
    },
    "evaluation": {
        "errors",
        "registry",
        "config",
        "labels",
        "data",
        "metrics",
        "kinds",
        "engine",
        "tasks",
        "inference",
    },
    "api": {
        "errors",
        "registry",
        "config",
        "config_files",
        "data",
        "catalog",
        "engine",
        "evaluation",
        "tasks",
        "components",
    },
    "cli": {
        "errors",
        "registry",
        "config",
        "config_files",
        "labels",
        "data",
        "catalog",
        "engine",
        "metrics",
        "kinds",
        "evaluation",
        "inference",
        "api",
        "components",
    },
    "__init__": {"components", "api", "inference", "lazy"},
    "__main__": {"cli"},
}
# The export contract is the ground floor: every package may import it.
for _package, _allowed in ALLOWED.items():
    if _package not in ("errors", "exports"):
        _allowed.add("exports")
# Modules that a package may not import even though their package is allowed.
FORBIDDEN_MODULES = {"inference": {"translate.engine.trainer", "translate.api"}}


def package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
    return parts[0]


def imports(path: Path) -> set[str]:
    """Every ``translate.*`` module imported anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "translate" or name.startswith("translate.")}


def top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


FILES = sorted(PACKAGE_ROOT.rglob("*.py"))


def test_every_package_is_in_the_table():
    assert {package_of(f) for f in FILES} == set(ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_imports_point_one_way(path):
    package = package_of(path)
    for module in imports(path):
        target = top(module)
        if (
            target is None
            or target == package
            or not (PACKAGE_ROOT / target).exists()
            and not (PACKAGE_ROOT / f"{target}.py").exists()
        ):
            continue  # ``from translate import x`` names resolve below, or attributes of a module
        assert target in ALLOWED[package], f"{path.name} ({package}) imports {module}"
        assert module not in FORBIDDEN_MODULES.get(package, set()), f"{path.name} imports {module}"


def test_the_allowed_graph_has_no_cycle():
    state: dict[str, str] = {}

    def visit(node: str) -> None:
        assert state.get(node) != "open", f"import cycle through {node}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for target in ALLOWED[node]:
            visit(target)
        state[node] = "done"

    for node in ALLOWED:
        visit(node)


def test_click_is_imported_only_by_the_cli():
    for path in FILES:
        if package_of(path) == "cli":
            continue
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n == "click" or n.startswith("click.") for n in names), path


def test_importing_the_components_fills_every_registry():
    """``import translate`` stays cheap (no torch); ``translate.components`` is what registers everything."""
    import subprocess
    import sys

    code = (
        "import translate.components\nfrom translate.registry import ALL\n"
        "print({k: len(r.names()) for k, r in ALL.items()})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    counts = eval(out)  # noqa: S307 - our own dict literal
    assert all(count > 0 for count in counts.values()), counts


CLI_FILES = [f for f in FILES if package_of(f) == "cli"]


def imports_the_cli_package(tree: ast.AST) -> list[str]:
    """The imports of the package ``translate.cli`` itself (not of one of its modules) in ``tree``:
    ``import translate.cli``, ``from translate.cli import x``, ``from translate import cli`` and
    ``from . import x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name == "translate.cli"]
        elif isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            relative = node.level == 1 and not node.module  # from . import x
            if relative or (node.level == 0 and node.module == "translate.cli"):
                found.append(f"from {'.' * node.level}{node.module or ''} import {', '.join(sorted(names))}")
            elif node.level == 0 and node.module == "translate" and "cli" in names:
                found.append("from translate import cli")
    return found


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_no_cli_module_imports_the_cli_package_or_imports_late(path):
    """The commands import what they share from ``translate.cli.options``; the package only assembles
    them, with its imports at the top (a late import behind ``noqa: E402`` hid a cycle)."""
    text = path.read_text()
    assert "noqa: E402" not in text, f"{path.name}: an import after code"
    assert imports_the_cli_package(ast.parse(text)) == [], f"{path.name} imports the package translate.cli"


def test_the_cli_package_check_finds_each_form():
    code = "import translate.cli\nfrom translate.cli import main\nfrom translate import cli\nfrom . import x"
    assert len(imports_the_cli_package(ast.parse(code))) == 4
    fine = "import translate.cli.options\nfrom translate.cli.options import ManyValues\nfrom .apply import y"
    assert imports_the_cli_package(ast.parse(fine)) == []


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_cli_modules_and_functions_stay_short(path):
    """A thin layer: each module under about 500 lines, each function under about 60."""
    text = path.read_text()
    assert len(text.splitlines()) <= 500, path.name
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}: {node.name}"
