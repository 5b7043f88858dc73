"""`conveyor deps list`: what the workspace's lockfiles pin, grouped by lockfile, as a
table, a dependency tree or JSON."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli import pipeline_file_option

if TYPE_CHECKING:
    from conveyor.deps.components import Component
    from conveyor.deps.inventory import Inventory, Lockfile, TreeRow

_JSON_HELP = """\b
--json prints one document:
  {"lockfiles": [{"path", "format", "ecosystem", "edges",
                  "components": [{"name", "version", "purl", "scope",
                                  "direct", "local", "line", "declared",
                                  "hashes", "license", "dependencies"}]}],
   "errors": [{"path", "line", "col", "message"}]}
path is workspace-relative; format the lockfile's kind ("Cargo.lock",
"go.mod", "pom.xml", ...); ecosystem as OSV names it ("crates.io", "Go",
"Maven", ...); edges whether the format records which package needs which.
Per component: version null when the lockfile records none; scope "prod",
"dev" or null (the format does not say); direct true, false or null (not
said); local for the workspace's own packages; line the 1-based line of the
entry; declared where a direct dependency is declared ("go.mod:7"); hashes
"algorithm:hex" (Go's "h1:<base64>" as go.sum has it); license as the
lockfile gives it; dependencies the purls of what it depends on, at their
locked versions (null when the format keeps no edges)."""


@click.command("list", epilog=_JSON_HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--json", "as_json", is_flag=True, help="Print the inventory as JSON (below; it has the edges)."
)
@click.option(
    "--tree",
    is_flag=True,
    help="Draw each lockfile's dependency tree from its direct dependencies (for the "
    "formats that record edges; not with --json).",
)
@pipeline_file_option
@click.pass_context
def list_command(ctx: click.Context, paths: tuple[str, ...], as_json: bool, tree: bool) -> int:
    """The packages the workspace's lockfiles pin (Cargo.lock, go.mod + go.sum,
    gradle.lockfile, pom.xml, Gemfile.lock, packages.lock.json, composer.lock, and
    Python's and JavaScript's), grouped by lockfile. Lockfiles are found among the
    workspace's files as git lists them (tracked, and untracked but not ignored),
    node_modules and vendor trees left out; PATHs (files or directories) narrow the
    list. A lockfile that cannot be read is reported as path:line:col on stderr, the
    others still listed; the exit code is then 2."""
    from conveyor.cli.deps import workspace_root
    from conveyor.deps.inventory import read_lockfiles

    root = workspace_root(ctx)
    chosen = _select(root, paths)
    inventory = read_lockfiles(root, chosen)
    if as_json:
        click.echo(json.dumps(_document(inventory), indent=2))
    else:
        for lock in inventory.lockfiles:
            for line in _tree_lines(lock) if tree else _table_lines(lock):
                click.echo(line)
            click.echo("")
        if tree and any(_drawn(lock) for lock in inventory.lockfiles):
            click.echo("(*) shown above; (cycle) depends back on a package above it")
        click.echo(_summary(inventory, root if not chosen else None))
    for error in inventory.errors:
        click.echo(f"{error.location}: {error.message}", err=True)
    return 2 if inventory.errors else 0


def _select(root: str, paths: tuple[str, ...]) -> list[str]:
    """The workspace-relative lockfiles to read: every one discovered, or those under
    the PATHs given (a lockfile named is read even where discovery would skip it)."""
    from conveyor.deps.inventory import FORMATS, discover, format_of
    from conveyor.errors import UsageError
    from conveyor.workspace.listing import tracked_files

    wanted: list[str] = []
    folders: list[str] = []
    for given in paths:
        full = os.path.abspath(given)
        if not os.path.exists(full):
            raise UsageError(f"{given}: no such file or directory")
        rel = os.path.relpath(full, root)
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            raise UsageError(f"{given} is outside the workspace ({root})")
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        if os.path.isdir(full):
            folders.append(rel)
        elif format_of(rel) is None:
            names = ", ".join(sorted({f.name for f in FORMATS}))
            raise UsageError(f"{given}: not a lockfile Conveyor reads ({names})")
        else:
            wanted.append(rel)
    if not paths or folders:
        found = discover(tracked_files(root))
        if paths:
            found = [
                f for f in found if any(not d or f == d or f.startswith(d + "/") for d in folders)
            ]
        wanted += found
    return sorted(set(wanted))


def _relation(component: Component) -> str:
    if component.local:
        return "local"
    if component.direct is None:
        return "-"
    return "direct" if component.direct else "transitive"


def _table_lines(lock: Lockfile) -> list[str]:
    count = len(lock.components)
    head = f"{lock.path} ({lock.format.ecosystem}): {count} component{'s' * (count != 1)}"
    rows = [
        (
            c.name,
            c.version or "-",
            c.scope.value if c.scope is not None else "-",
            _relation(c),
            f"{len(c.hashes)} hash{'es' * (len(c.hashes) != 1)}" if c.hashes else "-",
        )
        for c in lock.components
    ]
    if not rows:
        return [head]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [head] + [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]


def _tree_lines(lock: Lockfile) -> list[str]:
    from conveyor.deps.inventory import dependency_tree

    rows = dependency_tree(lock)
    if rows is None:
        if not lock.format.edges:
            why = f"{lock.format.name} keeps no edges between packages"
        elif lock.format.name == "requirements.txt":
            why = "no pip-compile '# via' comments say which package needs which"
        else:
            why = "the edges between its packages are not read"
        return [f"{lock.path} ({lock.format.ecosystem}): {why}, so there is no tree to draw"]
    lines = [f"{lock.path} ({lock.format.ecosystem})"]
    more_below: list[bool] = []  # per depth: does the ancestor there have siblings left
    apart = False
    for row in rows:
        if row.unreached and not apart:
            apart = True
            lines.append("  not reached from a direct dependency:")
        del more_below[row.depth :]
        prefix = "".join("│   " if more else "    " for more in more_below)
        lines.append(prefix + ("└── " if row.last else "├── ") + _node(row))
        more_below.append(not row.last)
    if len(lines) == 1:
        lines.append("    (no direct dependencies)")
    return lines


def _drawn(lock: Lockfile) -> bool:
    return lock.format.edges and all(c.dependencies is not None for c in lock.components)


def _node(row: TreeRow) -> str:
    c = row.component
    text = f"{c.name} {c.version or '-'}"
    if c.local:
        text += " [local]"
    if row.cycle:
        text += " (cycle)"
    elif row.repeat:
        text += " (*)"
    return text


def _summary(inventory: Inventory, root: str | None) -> str:
    components = inventory.components
    locks = len(inventory.lockfiles)
    by_ecosystem = Counter(str(c.ecosystem) for c in components)
    text = (
        f"{len(components)} component{'s' * (len(components) != 1)} in {locks} "
        f"lockfile{'s' * (locks != 1)}"
    )
    if by_ecosystem:
        text += (
            " ("
            + ", ".join(
                f"{eco} {n}" for eco, n in sorted(by_ecosystem.items(), key=lambda i: i[0].lower())
            )
            + ")"
        )
    if inventory.errors:
        bad = len(inventory.errors)
        text += f"; {bad} lockfile{'s' * (bad != 1)} could not be read"
    if root is not None:
        text += f"; no lockfile found under {root}"
    return text


def _document(inventory: Inventory) -> dict[str, Any]:
    return {
        "lockfiles": [
            {
                "path": lock.path,
                "format": lock.format.name,
                "ecosystem": str(lock.format.ecosystem),
                "edges": lock.format.edges,
                "components": [_component(c) for c in lock.components],
            }
            for lock in inventory.lockfiles
        ],
        "errors": [
            {"path": e.path, "line": e.line, "col": e.col, "message": e.message}
            for e in inventory.errors
        ],
    }


def _component(c: Component) -> dict[str, Any]:
    return {
        "name": c.name,
        "version": c.version,
        "purl": c.purl,
        "scope": c.scope.value if c.scope is not None else None,
        "direct": c.direct,
        "local": c.local,
        "line": c.line,
        "declared": c.declared,
        "hashes": list(c.hashes),
        "license": c.license,
        "dependencies": list(c.dependencies) if c.dependencies is not None else None,
    }
