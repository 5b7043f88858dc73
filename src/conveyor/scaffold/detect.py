"""What a workspace is, read from its files: each project (one per ecosystem root), its
package manager and lockfile, its monorepo members, the test runners, linters,
formatters, type checkers and coverage tools it configures, and the toolchain versions
it asks for; every finding names the file that told us, so `conveyor init` can say why
it wrote each job.

The per-ecosystem readers are `scaffold.python`, `scaffold.node` and `scaffold.others`;
this module holds the shared types, the walk over the workspace and the dispatch.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.deps.inventory import format_of as lockfile_format
from conveyor.deps.syntax import ParseError, parse_text
from conveyor.deps.syntax import format_of as syntax_of

ROLES = ("lint", "format", "typecheck", "test", "coverage")
"""What a tool is for; `pipeline` makes one job per role group."""


@dataclass(frozen=True)
class Tool:
    """A tool the project configures: its name, what it is for, the file that says so."""

    name: str
    role: str
    source: str


@dataclass(frozen=True)
class Toolchain:
    """A version range the project asks of a toolchain (`python3: >=3.11`), and where."""

    tool: str
    spec: str
    source: str


@dataclass
class Project:
    """One project root of one ecosystem; `dir` is workspace-relative ('.' at the top)."""

    ecosystem: str
    dir: str
    manifest: str
    manager: str
    manager_source: str
    lockfile: str | None = None
    members: list[str] = field(default_factory=list)
    members_source: str | None = None
    tools: list[Tool] = field(default_factory=list)
    toolchains: list[Toolchain] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)
    """npm/composer scripts by name (test, lint, build...)."""
    facts: dict[str, str] = field(default_factory=dict)
    """Anything else an ecosystem's job builder needs (extras, wrapper, coverage minimum)."""
    notes: list[str] = field(default_factory=list)
    """What was found but not used, said in the written file."""

    def tool(self, name: str) -> Tool | None:
        """The tool of that name, if the project configures it."""
        return next((t for t in self.tools if t.name == name), None)

    def role(self, role: str) -> list[Tool]:
        """The tools of one role, in the order found."""
        return [t for t in self.tools if t.role == role]

    def add(self, name: str, role: str, source: str) -> None:
        """Record a tool once (the first file that names it is kept)."""
        if self.tool(name) is None:
            self.tools.append(Tool(name, role, source))

    def path(self, name: str) -> str:
        """A file of the project, workspace-relative."""
        return name if self.dir == "." else f"{self.dir}/{name}"


@dataclass(frozen=True)
class Detection:
    """The workspace's projects, top-level first."""

    root: str
    name: str
    projects: tuple[Project, ...]
    files: frozenset[str]


class Files:
    """The workspace's files (relative, '/'-separated) and a reader of their contents,
    decoded with located errors by `deps.syntax` (shared with the lockfile readers)."""

    def __init__(self, root: str, paths: frozenset[str]) -> None:
        self.root = root
        self.paths = paths
        self._texts: dict[str, str | None] = {}

    def has(self, path: str) -> bool:
        return path in self.paths

    def text(self, path: str) -> str | None:
        """The file's text, None when it is not there or not readable as UTF-8."""
        if path not in self._texts:
            try:
                with open(os.path.join(self.root, path), encoding="utf-8") as f:
                    self._texts[path] = f.read()
            except (OSError, UnicodeDecodeError):
                self._texts[path] = None
        return self._texts[path]

    def data(self, path: str) -> Mapping[str, Any]:
        """A JSON/TOML/YAML/INI file decoded; {} when absent or unreadable (a broken
        manifest is `conveyor check`'s to report, not a reason to refuse to scaffold)."""
        text = self.text(path)
        fmt = syntax_of(path)
        if text is None or fmt is None:
            return {}
        try:
            data = parse_text(text, fmt)
        except ParseError:
            return {}
        if fmt == "YAML":  # every document of the stream; the first is the file's
            data = data[0] if isinstance(data, list) and data else {}
        return data if isinstance(data, dict) else {}

    def under(self, directory: str) -> list[str]:
        """The files below a directory ('.' is all of them), relative to the workspace."""
        if directory == ".":
            return sorted(self.paths)
        prefix = directory + "/"
        return sorted(p for p in self.paths if p.startswith(prefix))

    def glob_dirs(self, base: str, pattern: str) -> list[str]:
        """Directories (relative to the workspace) that a workspace-member glob such as
        'packages/*' names, relative to `base`, that hold at least one file."""
        import fnmatch

        pattern = pattern.strip().rstrip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        full = pattern if base == "." else f"{base}/{pattern}"
        dirs = {posixpath.dirname(p) for p in self.paths}
        depth = full.count("/")
        return sorted(d for d in dirs if d.count("/") == depth and fnmatch.fnmatchcase(d, full))


SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".conveyor",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        "target",
        "vendor",
        "build",
        "dist",
        ".gradle",
        ".idea",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "bin",
        "obj",
    }
)
"""Directories that hold what tools made or fetched, not the project's own sources."""

NOT_PROJECTS = frozenset(
    {"fixtures", "testdata", "test-data", "examples", "example", "samples"}
    | {"tests", "test", "__tests__", "testing", "fuzz"}
)
"""Directories whose manifests are test data or samples, not projects to build (a
lockfile reader's tests keep dozens of little projects under tests/; cargo-fuzz's crate
needs a nightly toolchain and its own runner)."""

MAX_FILES = 50_000


def list_files(root: str) -> frozenset[str]:
    """Every file under the workspace, skipping tool output and fetched packages."""
    found: set[str] = set()
    for here, dirs, files in os.walk(root):
        rel = os.path.relpath(here, root)
        if rel != "." and "pyvenv.cfg" in files:  # a virtualenv, whatever its name
            dirs[:] = []
            continue
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_DIRS and d != "site-packages" and not d.endswith(".egg-info")
        )
        for name in files:
            found.add(name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}")
        if len(found) > MAX_FILES:
            break
    return frozenset(found)


Reader = Callable[[Files, str], Project | None]


def _readers() -> list[tuple[tuple[str, ...], Reader]]:
    """(the manifest names that mark a project root, the reader), in the order a
    workspace's projects are listed."""
    from conveyor.scaffold import node, others, python

    return [
        (python.MANIFESTS, python.read),
        (node.MANIFESTS, node.read),
        (others.GO, others.read_go),
        (others.RUST, others.read_rust),
        (others.JVM, others.read_jvm),
        (others.DOTNET, others.read_dotnet),
        (others.RUBY, others.read_ruby),
        (others.PHP, others.read_php),
    ]


def detect(root: str) -> Detection:
    """Every project in the workspace at `root`."""
    files = Files(root, list_files(root))
    projects: list[Project] = []
    for manifests, reader in _readers():
        claimed: list[str] = []  # member directories of a workspace already read
        candidates = sorted(
            {posixpath.dirname(p) or "." for p in files.paths if _is_manifest(p, manifests)},
            key=lambda d: (d.count("/") if d != "." else -1, d),
        )
        for directory in candidates:
            if _inside(directory, claimed) or _excluded(directory):
                continue
            project = reader(files, directory)
            if project is None:
                continue
            projects.append(project)
            claimed += [directory if m == "." else _join(directory, m) for m in project.members]
            if project.members:
                claimed.append(directory)
    return Detection(
        root=root,
        name=os.path.basename(os.path.abspath(root)),
        projects=tuple(projects),
        files=files.paths,
    )


def _is_manifest(path: str, manifests: tuple[str, ...]) -> bool:
    name = posixpath.basename(path)
    return any(name == m or (m.startswith("*") and name.endswith(m[1:])) for m in manifests)


def _inside(directory: str, claimed: list[str]) -> bool:
    """Whether a directory is, or is below, a workspace member already covered (the
    workspace root itself covers its members only, not every directory below it)."""
    return any(directory == c or (c != "." and directory.startswith(c + "/")) for c in claimed)


def _excluded(directory: str) -> bool:
    return any(part in NOT_PROJECTS for part in directory.split("/"))


def _join(base: str, rel: str) -> str:
    return rel if base == "." else posixpath.normpath(f"{base}/{rel}")


def is_lockfile(path: str) -> bool:
    """Whether `deps` reads this file as a lockfile (the same registry `conveyor deps`
    uses), outside test data and samples."""
    return lockfile_format(path) is not None and not _excluded(posixpath.dirname(path))


def first_existing(files: Files, directory: str, names: tuple[str, ...]) -> str | None:
    """The first of these files that the directory holds, workspace-relative."""
    for name in names:
        path = name if directory == "." else f"{directory}/{name}"
        if files.has(path):
            return path
    return None


def mentions(files: Files, path: str, *needles: str) -> bool:
    """Whether the file's text contains any of these strings."""
    text = files.text(path)
    return text is not None and any(n in text for n in needles)
