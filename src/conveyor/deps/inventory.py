"""The workspace's dependency inventory: every lockfile found, read into components.

One registry (`FORMATS`) says which file names are lockfiles and which parser reads
each; discovery walks the workspace's files (tracked, and untracked but not ignored), so
a monorepo's lockfiles in any directory are found, and vendored or ignored trees are not.
A lockfile that does not parse is one located `LockfileError`; the others are still read.
"""

from __future__ import annotations

import importlib
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.syntax import ParseError

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
    Format("requirements.txt", Ecosystem.PYPI, "pypi:read_requirements_txt", edges=False),
    Format("poetry.lock", Ecosystem.PYPI, "pypi:read_poetry_lock", edges=True),
    Format("uv.lock", Ecosystem.PYPI, "pypi:read_uv_lock", edges=True),
    Format("Pipfile.lock", Ecosystem.PYPI, "pypi:read_pipfile_lock", edges=False),
    Format("pylock.toml", Ecosystem.PYPI, "pypi:read_pylock", edges=True),
    # JavaScript
    Format("package-lock.json", Ecosystem.NPM, "npm:read_package_lock", edges=True),
    Format("npm-shrinkwrap.json", Ecosystem.NPM, "npm:read_package_lock", edges=True),
    Format("yarn.lock", Ecosystem.NPM, "npm:read_yarn_lock", edges=True),
    Format("pnpm-lock.yaml", Ecosystem.NPM, "npm:read_pnpm_lock", edges=True),
    # Rust, Go
    Format("Cargo.lock", Ecosystem.CARGO, "cargo:read_cargo_lock", edges=True),
    Format("go.mod", Ecosystem.GO, "go:read_go_mod", edges=False),
    # Java, Ruby, .NET, PHP
    Format("gradle.lockfile", Ecosystem.MAVEN, "maven:read_gradle_lockfile", edges=False),
    Format("pom.xml", Ecosystem.MAVEN, "maven:read_pom", edges=False),
    Format("Gemfile.lock", Ecosystem.RUBYGEMS, "rubygems:read_gemfile_lock", edges=True),
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


def read_lockfile(root: str, path: str) -> Lockfile | LockfileError:
    """One lockfile (workspace-relative `path`) read with its format's parser."""
    fmt = format_of(path)
    if fmt is None:
        return LockfileError(path, "not a lockfile format Conveyor reads")
    full = os.path.join(root, path)
    try:
        with open(full, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        return LockfileError(path, f"not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        return LockfileError(path, f"cannot be read: {exc.strerror}")

    def sibling(name: str) -> str | None:
        try:
            with open(os.path.join(os.path.dirname(full), name), encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    try:
        components = fmt.load()(LockSource(path, text, sibling))
    except LockfileSyntaxError as exc:
        return LockfileError(path, exc.message, exc.line, exc.col)
    return Lockfile(path, fmt, tuple(components))


def read_inventory(root: str, files: Sequence[str]) -> Inventory:
    """Every lockfile among `files` (workspace-relative) read; see `discover`."""
    locks: list[Lockfile] = []
    errors: list[LockfileError] = []
    for path in discover(files):
        read = read_lockfile(root, path)
        if isinstance(read, LockfileError):
            errors.append(read)
        else:
            locks.append(read)
    return Inventory(tuple(locks), tuple(errors))
