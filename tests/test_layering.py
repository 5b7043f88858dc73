"""The import direction of DESIGN.md, checked on every test run (import-linter checks the
same in `conveyor run`): the core never imports the CLI; `model` imports nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import conveyor

SRC = Path(conveyor.__file__).parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "conveyor" or name.startswith("conveyor.")}


def test_core_never_imports_the_cli() -> None:
    offenders = {
        str(path.relative_to(SRC)): sorted(
            i for i in imports_of(path) if i.startswith("conveyor.cli")
        )
        for path in SRC.rglob("*.py")
        if "cli" not in path.relative_to(SRC).parts and path.name != "__main__.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_model_imports_nothing_of_ours() -> None:
    assert imports_of(SRC / "model.py") == set()


def test_core_has_no_print_or_exit() -> None:
    """Progress flows through events: only the CLI prints or exits."""
    bad = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                target = node.func.value if isinstance(node.func, ast.Attribute) else None
                if name == "print" or (
                    name == "exit" and isinstance(target, ast.Name) and target.id == "sys"
                ):
                    bad.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert bad == []
