"""pip's requirement files as lockfiles: requirements.txt and its kin (requirements-dev.txt,
requirements/test.txt), pinned by hand, by `pip freeze` or by pip-compile.

A line pinned with `==` (or `===`) is a component at that version; any other range
(`>=2`) is not a lock, and its component has no version (the audit reports it as
unpinned) rather than a guessed one. `--hash` options are its hashes. An editable or
a path is local; a URL or a repository (`name @ git+https://…`) has no version.
`-r other.txt` is read with the file, its components keeping their own file and line
(unless the included file is a requirement file by its name: it is read on its own and
only checked to exist here); `-c constraints.txt` pins without installing, so it is
only checked to exist. An include that cannot be read is an error at its line.

pip-compile's comments give what plain pins do not: `# via -r requirements.in` (or the
project, `# via app (pyproject.toml)`) marks a direct dependency, `# via pkg` one that
pkg depends on; then the components have edges and `declared` (the .in file's line).
Without such comments direct and edges are not known (None).

Scope comes from the file's name, since nothing inside says it: a file whose name or
directory has a word such as dev, test, lint, docs, ci or typing in it
(requirements-dev.txt, requirements/test.txt, requirements_lint.txt) is development,
any other production; an included file's components take the including file's scope.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.ecosystems.pypi import normalise
from conveyor.deps.ecosystems.shared import ref, sibling_document, unique
from conveyor.deps.syntax import ParseError

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_DEV_WORDS = frozenset(
    {"dev", "devel", "develop", "development", "test", "tests", "testing", "lint"}
    | {"linting", "docs", "doc", "ci", "typing", "mypy", "style", "qa", "check", "checks"}
    | {"bench", "benchmark", "benchmarks"}
)
# An option starting in the middle of a requirement line: ' --hash=…', ' -e'.
_OPTION = re.compile(r"\s--?[A-Za-z]")
_HASH = re.compile(r"--hash[=\s]\s*([A-Za-z0-9]+):([0-9A-Fa-f]+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
_WHEEL_OR_SDIST = re.compile(r"([A-Za-z0-9][A-Za-z0-9._]*?)-\d[^/]*(?:\.whl|\.tar\.gz|\.zip)$")
_INCLUDES = {"-r": "r", "--requirement": "r", "-c": "c", "--constraint": "c"}
_EDITABLE = ("-e", "--editable")


def scope_of(path: str) -> Scope:
    """DEV when a word of the file's name or directories is a development word (see the
    module's docstring), else PROD."""
    words = re.split(r"[-_./]+", posixpath.splitext(path)[0].lower())
    return Scope.DEV if any(w in _DEV_WORDS for w in words) else Scope.PROD


@dataclass
class _Pin:
    name: str
    version: str | None
    lockfile: str
    line: int
    local: bool
    hashes: tuple[str, ...]
    via: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return ref(Ecosystem.PYPI, self.name, self.version)


def read_requirements_txt(source: LockSource) -> list[Component]:
    """A requirement file's packages (see the module's docstring)."""
    pins: list[_Pin] = []
    compiled = _read(source, posixpath.basename(source.path), source.text, pins, set())
    scope = scope_of(source.path)
    if not compiled:
        return [
            Component(
                p.name,
                p.version,
                Ecosystem.PYPI,
                p.lockfile,
                local=p.local,
                line=p.line,
                scope=scope,
                hashes=p.hashes,
            )
            for p in pins
        ]
    by_name = {normalise(p.name): p.ref for p in pins}
    edges: dict[str, list[str]] = {}
    for pin in pins:
        for item in pin.via:
            parent = by_name.get(normalise(item.split("[", 1)[0]))
            if parent is not None and not item.startswith("-"):
                edges.setdefault(parent, []).append(pin.ref)
    inputs: dict[str, dict[str, int] | None] = {}  # each .in file: name -> its line
    components = []
    for pin in pins:
        declared = _declared(source, pin, inputs)
        components.append(
            Component(
                pin.name,
                pin.version,
                Ecosystem.PYPI,
                pin.lockfile,
                direct=declared is not None,
                declared=declared,
                local=pin.local,
                line=pin.line,
                scope=scope,
                hashes=pin.hashes,
                dependencies=unique(edges.get(pin.ref, ())),
            )
        )
    return components


def _declared(
    source: LockSource, pin: _Pin, inputs: dict[str, dict[str, int] | None]
) -> str | None:
    """Where pip-compile says a direct pin comes from: 'requirements.in:3' for `# via -r
    requirements.in` (naming it at line 3), 'pyproject.toml' for `# via app
    (pyproject.toml)`; None for a pin only other packages ask for."""
    folder = posixpath.dirname(pin.lockfile)
    for item in pin.via:
        if item.endswith(")") and "(" in item:  # the project, by its manifest
            manifest = item[item.rindex("(") + 1 : -1]
            return posixpath.normpath(posixpath.join(folder, manifest))
        if not item.startswith("-r "):
            continue
        where = posixpath.normpath(posixpath.join(folder, item[3:].strip()))
        if where not in inputs:
            text = source.read_sibling(_relative(source, where))
            inputs[where] = None if text is None else _input_lines(text)
        found = inputs[where]
        line = found.get(normalise(pin.name)) if found is not None else None
        return where if line is None else f"{where}:{line}"
    return None


def _input_lines(text: str) -> dict[str, int]:
    """The line of each requirement of a pip-compile input (.in) file, by name."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _NAME.match(line.strip())
        if match:
            lines.setdefault(normalise(match.group()), number)
    return lines


def _relative(source: LockSource, workspace_path: str) -> str:
    """A workspace-relative path as read_sibling takes it (relative to the lockfile)."""
    return posixpath.relpath(workspace_path, posixpath.dirname(source.path) or ".")


def _logical_lines(text: str) -> list[tuple[int, str, str]]:
    """(first line number, the line with continuations joined, its comment) of each
    logical line; a comment is what follows a '#' at the start or after a space."""
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i]
            i += 1
        line = line.removesuffix("\\")
        comment = ""
        cut = line.find("#")
        while cut >= 0:
            if cut == 0 or line[cut - 1] in " \t":
                line, comment = line[:cut], line[cut + 1 :]
                break
            cut = line.find("#", cut + 1)
        out.append((start, line.strip(), comment.strip()))
    return out


def _read(source: LockSource, relative: str, text: str, pins: list[_Pin], seen: set[str]) -> bool:
    """Add the pins of one file (`relative` to the top lockfile's directory) to `pins`;
    True when pip-compile's `# via` comments are in it."""
    seen.add(relative)
    folder = posixpath.dirname(source.path)
    lockfile = posixpath.normpath(posixpath.join(folder, relative))
    compiled = False
    in_via = False
    for number, line, comment in _logical_lines(text):
        if not line:
            if comment.startswith("via"):
                compiled = True
                rest = comment[3:].strip()
                in_via = not rest
                if rest and pins:
                    pins[-1].via.append(rest)
            elif in_via and comment and pins:
                pins[-1].via.append(comment)
            else:
                in_via = False
            continue
        in_via = False
        col = 1
        if line.startswith("-"):
            option, _, value = line.partition(" ")
            if "=" in option:
                option, _, value = option.partition("=")
            value = value.strip()
            kind = _INCLUDES.get(option)
            if kind is not None:
                _include(source, relative, value, kind, number, pins, seen)
                continue
            if option not in _EDITABLE:
                continue  # a global option: an index, find-links, --require-hashes…
            pins.append(_editable(source, relative, value, number))
            continue
        cut = _OPTION.search(line)
        requirement = line[: cut.start()] if cut else line
        hashes = tuple(f"{a.lower()}:{h.lower()}" for a, h in _HASH.findall(line))
        pins.append(_pin(requirement.strip(), hashes, lockfile, number, col))
    return compiled


def _include(
    source: LockSource,
    relative: str,
    value: str,
    kind: str,
    number: int,
    pins: list[_Pin],
    seen: set[str],
) -> None:
    from conveyor.deps.inventory import format_of

    if not value:
        raise ParseError(f"-{kind} names no file", number, 1)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(relative), value))
    if target in seen:
        return
    text = source.read_sibling(target)
    if text is None:
        what = "included requirement file" if kind == "r" else "constraint file"
        raise ParseError(f"the {what} {value} cannot be read", number, 1)
    workspace_path = posixpath.normpath(posixpath.join(posixpath.dirname(source.path), target))
    if kind == "c" or format_of(workspace_path) is not None:
        return  # a constraint installs nothing; a requirement file is read on its own
    try:
        _read(source, target, text, pins, seen)
    except ParseError as exc:
        where = f"{value}:{exc.line}" if exc.line is not None else value
        raise ParseError(f"in {where}: {exc.message}", number, 1) from None


def _pin(text: str, hashes: tuple[str, ...], lockfile: str, number: int, col: int) -> _Pin:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(text)
    except InvalidRequirement:
        found = _path_or_url(text, lockfile, number)
        if found is None:
            raise ParseError("not a requirement (PEP 508), a path or a URL", number, col) from None
        return found
    version = None
    specs = list(parsed.specifier)
    pinned = len(specs) == 1 and specs[0].operator in ("==", "===")
    if parsed.url is None and pinned and not specs[0].version.endswith("*"):
        version = specs[0].version
    local = parsed.url is not None and parsed.url.startswith("file:")
    return _Pin(parsed.name, version, lockfile, number, local, hashes)


def _path_or_url(text: str, lockfile: str, number: int) -> _Pin | None:
    """A requirement given as a path or URL: named by its #egg= or its archive's name."""
    target = text.split(";", 1)[0].strip()
    egg = _EGG.search(target)
    archive = _WHEEL_OR_SDIST.search(target.split("#", 1)[0])
    name = egg.group(1) if egg else archive.group(1) if archive else None
    if name is None:
        return None
    remote = "://" in target and not target.startswith("file:")
    return _Pin(name, None, lockfile, number, not remote, ())


def _editable(source: LockSource, relative: str, value: str, number: int) -> _Pin:
    """An editable install: named by its #egg=, else by the pyproject.toml in its
    directory, else by the directory."""
    lockfile = posixpath.normpath(posixpath.join(posixpath.dirname(source.path), relative))
    target = value.split(";", 1)[0].strip()
    remote = "://" in target and not target.startswith("file:")
    egg = _EGG.search(target)
    if egg:
        return _Pin(egg.group(1), None, lockfile, number, not remote, ())
    path = target.split("#", 1)[0].removeprefix("file:")
    directory = posixpath.normpath(posixpath.join(posixpath.dirname(relative), path))
    name = _project_name(source, directory) if not remote else None
    if name is None:
        where = posixpath.normpath(posixpath.join(posixpath.dirname(source.path), directory))
        name = posixpath.basename(where) or posixpath.basename(posixpath.normpath(path))
    return _Pin(name or target, None, lockfile, number, not remote, ())


def _project_name(source: LockSource, directory: str) -> str | None:
    manifest = posixpath.join(directory, "pyproject.toml")
    data = sibling_document(source.read_sibling, manifest, "TOML")
    if data is None:
        return None
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    for table in (data.get("project"), poetry):
        if isinstance(table, dict) and isinstance(table.get("name"), str):
            return str(table["name"])
    return None
