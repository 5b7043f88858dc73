"""The workspace's dependency inventory: every lockfile found, read into components.

One registry (`FORMATS`) says which file names are lockfiles and which parser reads
each; discovery walks the workspace's files (tracked, and untracked but not ignored), so
a monorepo's lockfiles in any directory are found, and vendored or ignored trees are not.
A lockfile that does not parse is one located `LockfileError`; the others are still read.
"""

from __future__ import annotations

import gc
import importlib
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.syntax import ParseError, read_text

LockfileSyntaxError = ParseError
"""What a parser raises for its file: what is wrong, where (1-based line and column),
and what would be right when that can be said."""


@dataclass(frozen=True)
class LockSource:
    """What a parser is given: the file's workspace-relative path and text, and a way to
    read a sibling (go.mod's go.sum) without knowing where the workspace is."""

    path: str
    text: str
    read_sibling: Callable[[str], str | None]
    glob_siblings: Callable[[str], list[str]] = lambda pattern: []
    """The directories a glob relative to the lockfile's directory matches ('packages/*',
    as Yarn 1's workspaces name their members), relative to it, sorted; never outside the
    workspace nor into node_modules and the like."""


Parser = Callable[[LockSource], list[Component]]


@dataclass(frozen=True)
class Format:
    """One kind of lockfile: the file name it is known by, its ecosystem, and its parser
    as 'module:function' under conveyor.deps.ecosystems (imported when a file of the
    kind is found, so listing the formats imports no parser)."""

    name: str
    ecosystem: Ecosystem
    parser: str
    edges: bool
    """Whether the format keeps which package depends on which (`deps list --tree`)."""

    def load(self) -> Parser:
        module, _, function = self.parser.partition(":")
        parser: Parser = getattr(
            importlib.import_module(f"conveyor.deps.ecosystems.{module}"), function
        )
        return parser


FORMATS: tuple[Format, ...] = (
    # Python
    # Edges when pip-compile wrote it (its `# via pkg` comments); a hand-written file
    # has none, and its tree says so.
    Format("requirements.txt", Ecosystem.PYPI, "requirements:read_requirements_txt", edges=True),
    Format("poetry.lock", Ecosystem.PYPI, "pylocks:read_poetry_lock", edges=True),
    Format("uv.lock", Ecosystem.PYPI, "pylocks:read_uv_lock", edges=True),
    Format("Pipfile.lock", Ecosystem.PYPI, "pylocks:read_pipfile_lock", edges=False),
    Format("pylock.toml", Ecosystem.PYPI, "pylocks:read_pylock", edges=True),
    # JavaScript
    Format("package-lock.json", Ecosystem.NPM, "npm:read_package_lock", edges=True),
    Format("npm-shrinkwrap.json", Ecosystem.NPM, "npm:read_package_lock", edges=True),
    Format("yarn.lock", Ecosystem.NPM, "yarn:read_yarn_lock", edges=True),
    Format("pnpm-lock.yaml", Ecosystem.NPM, "pnpm:read_pnpm_lock", edges=True),
    # Rust, Go
    Format("Cargo.lock", Ecosystem.CARGO, "cargo:read_cargo_lock", edges=True),
    Format("go.mod", Ecosystem.GO, "go:read_go_mod", edges=False),
    # Java, Ruby, .NET, PHP
    Format("gradle.lockfile", Ecosystem.MAVEN, "maven:read_gradle_lockfile", edges=False),
    Format("pom.xml", Ecosystem.MAVEN, "maven:read_pom", edges=False),
    Format("Gemfile.lock", Ecosystem.RUBYGEMS, "rubygems:read_gemfile_lock", edges=True),
    Format("gems.locked", Ecosystem.RUBYGEMS, "rubygems:read_gemfile_lock", edges=True),
    Format("packages.lock.json", Ecosystem.NUGET, "nuget:read_packages_lock", edges=True),
    Format("composer.lock", Ecosystem.PACKAGIST, "packagist:read_composer_lock", edges=True),
)

_BY_NAME = {f.name: f for f in FORMATS}


def format_of(path: str) -> Format | None:
    """The lockfile format a workspace-relative path is, by its file name; requirement
    files are also recognised under their common other names (requirements-dev.txt,
    requirements/test.txt)."""
    name = posixpath.basename(path)
    found = _BY_NAME.get(name)
    if found is not None:
        return found
    parent = posixpath.basename(posixpath.dirname(path))
    if name.endswith(".txt") and (name.startswith("requirements") or parent == "requirements"):
        return _BY_NAME["requirements.txt"]
    if name.endswith(".toml") and name.startswith("pylock."):  # PEP 751: pylock.<name>.toml
        return _BY_NAME["pylock.toml"]
    return None


@dataclass(frozen=True)
class LockfileError:
    """A lockfile that could not be read, located as far as its format allows."""

    path: str
    message: str
    line: int | None = None
    col: int | None = None

    @property
    def location(self) -> str:
        """'path:line:col', 'path:line' or 'path'."""
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return where


@dataclass(frozen=True)
class Lockfile:
    """One lockfile read: its path, format and components in the file's order."""

    path: str
    format: Format
    components: tuple[Component, ...]


@dataclass(frozen=True)
class Inventory:
    """Everything the workspace's lockfiles pin, and the lockfiles that could not be read."""

    lockfiles: tuple[Lockfile, ...]
    errors: tuple[LockfileError, ...]

    @property
    def components(self) -> list[Component]:
        """Every component of every lockfile, in path order then file order."""
        return [c for lock in self.lockfiles for c in lock.components]


def discover(files: Iterable[str]) -> list[str]:
    """The lockfiles among the workspace's files (workspace-relative), sorted; a go.mod
    is its module's lockfile (Go records the selected versions there). Files under
    node_modules, vendor trees and virtual environments are packages' own, not the
    workspace's."""
    found = []
    for path in files:
        parts = path.split("/")
        if any(p in _NOT_THE_WORKSPACES for p in parts[:-1]):
            continue
        if format_of(path) is not None:
            found.append(path)
    return sorted(found)


_NOT_THE_WORKSPACES = frozenset(
    {"node_modules", "vendor", ".venv", "venv", "site-packages", ".git", ".conveyor"}
)


def read_lockfile(
    root: str, path: str, looked: dict[str, object] | None = None
) -> Lockfile | LockfileError:
    """One lockfile (workspace-relative `path`) read with its format's parser; `looked`,
    when given, is filled with what the parser looked at besides the file: each sibling
    read ('go.sum' -> its text, or None) and each glob ('glob:packages/*' -> matches)."""
    fmt = format_of(path)
    if fmt is None:
        return LockfileError(path, "not a lockfile format Conveyor reads")
    try:
        text = read_text(root, path)  # UTF-8, a byte-order mark dropped
    except LockfileSyntaxError as exc:
        return LockfileError(path, exc.message, exc.line, exc.col)

    def sibling(name: str) -> str | None:
        # Relative to the lockfile's directory ('go.sum', '../pom.xml'), never outside
        # the workspace.
        text = read_sibling(root, path, name)
        if looked is not None:
            looked[name] = text
        return text

    def siblings(pattern: str) -> list[str]:
        found = glob_siblings(root, path, pattern)
        if looked is not None:
            looked["glob:" + pattern] = found
        return found

    # A large lockfile is read into some 10^5 short-lived objects that form no cycles:
    # the cyclic collector's passes over them are pure cost (~10% of a 3,000-package
    # pnpm-lock.yaml, more in a process with a large heap).
    collecting = gc.isenabled()
    gc.disable()
    try:
        components = fmt.load()(LockSource(path, text, sibling, siblings))
    except LockfileSyntaxError as exc:
        return LockfileError(path, exc.message, exc.line, exc.col)
    finally:
        if collecting:
            gc.enable()
    return Lockfile(path, fmt, tuple(components))


def read_sibling(root: str, path: str, name: str) -> str | None:
    """The text of `name` relative to the lockfile `path`'s directory ('go.sum',
    '../pom.xml'), never outside the workspace; None when it cannot be read."""
    wanted = posixpath.normpath(posixpath.join(posixpath.dirname(path), name))
    if wanted == ".." or wanted.startswith(("../", "/")):
        return None
    try:
        with open(os.path.join(root, wanted), encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def glob_siblings(root: str, path: str, pattern: str) -> list[str]:
    """The directories `pattern` matches relative to the lockfile `path`'s directory
    (see LockSource.glob_siblings)."""
    import glob

    folder = os.path.join(root, posixpath.dirname(path))
    found = []
    for match in glob.glob(pattern, root_dir=folder, recursive=True):
        rel = posixpath.normpath(match.replace(os.sep, "/"))
        wanted = posixpath.normpath(posixpath.join(posixpath.dirname(path), rel))
        if wanted == ".." or wanted.startswith(("../", "/")):
            continue
        if _NOT_THE_WORKSPACES.intersection(rel.split("/")):
            continue
        if os.path.isdir(os.path.join(folder, rel)):
            found.append(rel)
    return sorted(set(found))


def read_inventory(root: str, files: Sequence[str]) -> Inventory:
    """Every lockfile among `files` (workspace-relative) read; see `discover`."""
    return read_lockfiles(root, discover(files))


def inventory_of(root: str) -> Inventory:
    """The inventory of the workspace at `root`: its files listed as git knows them
    (tracked, and untracked but not ignored; every file when it is not a checkout), its
    lockfiles found among them and read."""
    from conveyor.workspace.listing import tracked_files

    return read_inventory(root, tracked_files(root))


def read_lockfiles(root: str, paths: Iterable[str], *, cache: bool = True) -> Inventory:
    """These lockfiles (workspace-relative) read, in the order given; with `cache`, a
    lockfile read before, whose text and every file its parser looked at are the same,
    comes from the workspace's state directory (`conveyor.deps.lockcache`)."""
    from conveyor.deps import lockcache

    locks: list[Lockfile] = []
    errors: list[LockfileError] = []
    for path in paths:
        read = lockcache.read(root, path) if cache else read_lockfile(root, path)
        if isinstance(read, LockfileError):
            errors.append(read)
        else:
            locks.append(read)
    return Inventory(tuple(locks), tuple(errors))


@dataclass(frozen=True)
class TreeRow:
    """One line of a lockfile's dependency tree (`conveyor deps list --tree`)."""

    depth: int
    """0 for a root (see dependency_tree)."""
    component: Component
    repeat: bool = False
    """Already shown earlier in the tree: not expanded again."""
    cycle: bool = False
    """Depends back on one of the packages above it: the edge closes a cycle."""
    last: bool = True
    """The last of its parent's dependencies, or of its group of roots (how a tree is
    drawn)."""
    unreached: bool = False
    """A root neither the workspace's packages nor a direct dependency leads to (a
    package the lockfile keeps that nothing needs any more): shown after the others."""


def dependency_tree(lock: Lockfile) -> list[TreeRow] | None:
    """The lockfile's packages as a tree, depth first: from the workspace's own packages
    that nothing depends on (a Cargo workspace's crates, a Gemfile.lock's PATH gems),
    then from the direct dependencies not met under them (when the lockfile does not
    say which are direct: from the packages nothing depends on); a package is expanded
    the first time it is met only. Packages none of those lead to follow, as roots
    marked unreached, so that every package is shown. None when the format keeps no
    edges (gradle.lockfile, go.mod, pom.xml), or when this file has none (a
    requirements file pip-compile did not write)."""
    components = lock.components
    if not lock.format.edges or any(c.dependencies is None for c in components):
        return None
    by_ref: dict[str, Component] = {}
    for component in components:
        by_ref.setdefault(component.ref, component)
    needed = {ref for c in components for ref in c.dependencies or ()}
    rows: list[TreeRow] = []
    shown: set[str] = set()
    _grow(rows, shown, by_ref, [c for c in components if c.local and c.ref not in needed])
    if any(c.direct is not None for c in components):
        direct = [c for c in components if c.direct and c.ref not in shown]
    else:
        direct = [c for c in components if c.ref not in needed and c.ref not in shown]
    _grow(rows, shown, by_ref, direct)
    while len(shown) < len(by_ref):
        left = [c for ref, c in by_ref.items() if ref not in shown]
        needed_by_left = {ref for c in left for ref in c.dependencies or ()}
        # Those nothing left depends on; in a cycle no root is left: take its first.
        orphans = [c for c in left if c.ref not in needed_by_left] or left[:1]
        _grow(rows, shown, by_ref, orphans, unreached=True)
    # Roots grown in turns are one list: the last root of each group is the last one.
    tops = [i for i, row in enumerate(rows) if row.depth == 0]
    for i, after in zip(tops, [*tops[1:], None], strict=True):
        last = after is None or rows[after].unreached != rows[i].unreached
        if rows[i].last != last:
            rows[i] = replace(rows[i], last=last)
    return rows


def _unique(components: list[Component]) -> list[Component]:
    seen: set[str] = set()
    out = []
    for component in components:
        if component.ref not in seen:
            seen.add(component.ref)
            out.append(component)
    return out


def _grow(
    rows: list[TreeRow],
    shown: set[str],
    by_ref: Mapping[str, Component],
    roots: list[Component],
    *,
    unreached: bool = False,
) -> None:
    roots = _unique(roots)
    # An explicit stack: a deep chain must not exhaust Python's recursion limit.
    nothing_above: tuple[str, ...] = ()
    stack = [(root, 0, i == len(roots) - 1, nothing_above) for i, root in enumerate(roots)][::-1]
    while stack:
        component, depth, last, above = stack.pop()
        is_root = unreached and depth == 0
        if component.ref in above:
            rows.append(TreeRow(depth, component, cycle=True, last=last))
            continue
        if component.ref in shown:
            rows.append(TreeRow(depth, component, repeat=True, last=last, unreached=is_root))
            continue
        shown.add(component.ref)
        rows.append(TreeRow(depth, component, last=last, unreached=is_root))
        children = [by_ref[ref] for ref in component.dependencies or () if ref in by_ref]
        path = (*above, component.ref)
        stack.extend(
            (child, depth + 1, i == len(children) - 1, path)
            for i, child in reversed(list(enumerate(children)))
        )
