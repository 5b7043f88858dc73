"""The package's shape: module count per package, the largest modules and the longest
functions of src/conveyor (DESIGN.md: a module past ~600 lines, or a function past ~80,
is two). Run from the repository root: `python bench/layout.py`."""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/conveyor")
    per_package: Counter[str] = Counter()
    modules: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "migrations" in rel.parts:
            continue
        package = rel.parts[0] if len(rel.parts) > 1 else "(top level)"
        per_package[package] += 1
        text = path.read_text()
        modules.append((len(text.splitlines()), str(rel)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{rel}:{node.name}"))
    print(f"modules: {sum(per_package.values())}")
    for package, count in sorted(per_package.items()):
        print(f"  {package:<14} {count}")
    print("largest modules:")
    for lines, name in sorted(modules, reverse=True)[:8]:
        print(f"  {lines:5d}  {name}")
    print(f"functions over 80 lines: {sum(1 for n, _ in functions if n > 80)}")
    for lines, name in sorted(functions, reverse=True)[:10]:
        print(f"  {lines:5d}  {name}")


main()
