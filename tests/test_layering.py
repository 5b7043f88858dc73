"""The import direction of DESIGN.md, checked on every test run: import-linter's contracts
in pyproject.toml (the layers over the whole tree, top to bottom), and the rules a
contract cannot say: the core never imports the CLI, prints or exits; `model` imports
nothing of ours."""

from __future__ import annotations

import ast
import contextlib
import io
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


def test_the_layers_of_design_md_hold_over_the_whole_tree() -> None:
    """cli > run > features > cache | executor | history > config | graph > workspace >
    shared types: `lint-imports` with the project's own contracts."""
    from importlinter.cli import lint_imports

    pyproject = SRC.parent.parent / "pyproject.toml"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = lint_imports(config_filename=str(pyproject), no_cache=True, no_logo=True)
    assert code == 0, out.getvalue()
    assert "BROKEN" not in out.getvalue()
    assert "layers of DESIGN.md over the whole tree" in out.getvalue(), "the contract ran"
