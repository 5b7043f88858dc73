"""Python's lockfiles other than requirement files: poetry.lock, uv.lock, Pipfile.lock
and PEP 751's pylock.toml, each read into components with the line of its entry, its
hashes, scope and, where the file keeps them, its edges.

What the lockfile does not say is taken from the manifest beside it: Poetry's direct
dependencies from pyproject.toml, Pipenv's from Pipfile, pylock.toml's direct ones and
their scope from pyproject.toml. Scope: poetry.lock's `groups` (or the older
`category`): 'main' is production, any other group development; uv.lock's by
reachability from the project's dependencies (production) and its dependency groups
(development); Pipfile.lock's 'default' is production, 'develop' (and any other
category) development.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.ecosystems.pypi import (
    normalise,
    pipfile_category,
    pipfile_requirements,
    pyproject_requirements,
)
from conveyor.deps.ecosystems.shared import (
    LineFinder,
    header_lines,
    json_key,
    reachable_scopes,
    ref,
    sibling_document,
    unique,
)
from conveyor.deps.syntax import ParseError, parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

# pyproject.toml sections whose dependencies only development needs.
_DEV_SECTIONS = re.compile(
    r"dependency-groups\.|tool\.uv\.dev-dependencies|tool\.poetry\.dev-dependencies"
    r"|tool\.poetry\.group\."
)
_LOCAL_SOURCES = ("editable", "virtual", "directory", "path")


def _table(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _tables(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _declared(source: LockSource, manifest: str) -> dict[str, Scope] | None:
    """Each name the manifest beside the lockfile declares -> PROD, or DEV when only
    development sections declare it; None when it cannot be read."""
    data = sibling_document(source.read_sibling, manifest, "TOML")
    if data is None:
        return None
    if manifest == "Pipfile":
        names: dict[str, Scope] = {}
        for r in pipfile_requirements(data, manifest):
            scope = Scope.PROD if pipfile_category(r.section) == "default" else Scope.DEV
            if names.get(normalise(r.name)) is not Scope.PROD:
                names[normalise(r.name)] = scope
        return names
    names = {}
    for r in pyproject_requirements(data, manifest).requirements:
        scope = Scope.DEV if _DEV_SECTIONS.match(r.section) else Scope.PROD
        if names.get(normalise(r.name)) is not Scope.PROD:
            names[normalise(r.name)] = scope
    return names


def _manifest_path(source: LockSource, name: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(source.path), name))


def _packages(
    data: Mapping[str, Any], key: str, text: str
) -> list[tuple[Mapping[str, Any], int | None]]:
    """The `[[key]]` tables with the line of each (None for all when the headers found
    do not match the tables parsed one for one, e.g. an inline array of tables)."""
    packages = data.get(key)
    if not isinstance(packages, list):
        return []
    lines: list[int | None] = list(header_lines(text, key))
    if len(lines) != len(packages):
        lines = [None] * len(packages)
    return [(p, line) for p, line in zip(packages, lines, strict=True) if isinstance(p, dict)]


class _ByName:
    """The locked packages by PEP 503 name; an edge picks the version it names, or every
    version locked when it names none (several, each for its own markers)."""

    def __init__(self) -> None:
        self._refs: dict[str, list[tuple[str | None, str]]] = {}

    def add(self, name: str, version: str | None) -> str:
        own = ref(Ecosystem.PYPI, name, version)
        self._refs.setdefault(normalise(name), []).append((version, own))
        return own

    def find(self, name: str, version: object = None, spec: object = None) -> list[str]:
        found = self._refs.get(normalise(name), [])
        if isinstance(version, str):
            exact = [r for v, r in found if v == version]
            if exact:
                return exact
        if len(found) > 1 and isinstance(spec, str):
            matching = _matching(found, spec)
            if matching:
                return matching
        return [r for _, r in found]


def _matching(found: list[tuple[str | None, str]], spec: str) -> list[str]:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        specifier = SpecifierSet(spec)
    except InvalidSpecifier:
        return []
    return [r for v, r in found if v is not None and specifier.contains(v, prereleases=True)]


# poetry.lock ---------------------------------------------------------------------------


def read_poetry_lock(source: LockSource) -> list[Component]:
    """poetry.lock's packages (lock formats 1.x and 2.x)."""
    data = parse_text(source.text, "TOML")
    entries = _packages(data, "package", source.text)
    old_files = _table(_table(data.get("metadata")).get("files"))
    by_name = _ByName()
    refs: list[tuple[str | None, str]] = []
    for package, _ in entries:
        version = package.get("version")
        kind = _table(package.get("source")).get("type")
        if kind in ("git", "url") or not isinstance(version, str):
            version = None
        refs.append((version, by_name.add(str(package.get("name", "")), version)))
    declared = _declared(source, "pyproject.toml")
    manifest = _manifest_path(source, "pyproject.toml")
    components = []
    for (package, line), (version, _) in zip(entries, refs, strict=True):
        name = str(package.get("name", ""))
        edges: list[str] = []
        for dep, spec in _table(package.get("dependencies")).items():
            for one in spec if isinstance(spec, list) else [spec]:
                wanted = one.get("version") if isinstance(one, dict) else one
                edges += by_name.find(dep, spec=wanted)
        files = _tables(package.get("files")) or _tables(old_files.get(name))
        is_direct = None if declared is None else normalise(name) in declared
        components.append(
            Component(
                name,
                version,
                Ecosystem.PYPI,
                source.path,
                direct=is_direct,
                declared=manifest if is_direct else None,
                local=_table(package.get("source")).get("type") in ("directory", "file"),
                line=line,
                scope=_poetry_scope(package),
                hashes=tuple(str(f["hash"]) for f in files if isinstance(f.get("hash"), str)),
                dependencies=unique(edges),
            )
        )
    return components


def _poetry_scope(package: Mapping[str, Any]) -> Scope | None:
    groups = package.get("groups")
    if isinstance(groups, list) and groups:
        return Scope.PROD if "main" in groups else Scope.DEV
    category = package.get("category")
    if isinstance(category, str):
        return Scope.PROD if category == "main" else Scope.DEV
    return None


# uv.lock -------------------------------------------------------------------------------


def read_uv_lock(source: LockSource) -> list[Component]:
    """uv.lock's packages; the project (and workspace members) marked local."""
    data = parse_text(source.text, "TOML")
    entries = _packages(data, "package", source.text)
    by_name = _ByName()
    refs: list[tuple[str | None, str]] = []
    for package, _ in entries:
        version = package.get("version")
        kind = _table(package.get("source"))
        if "git" in kind or "url" in kind or not isinstance(version, str):
            version = None
        refs.append((version, by_name.add(str(package.get("name", "")), version)))

    def targets(listed: object) -> list[str]:
        found: list[str] = []
        for dep in _tables(listed):
            if isinstance(dep.get("name"), str):
                found += by_name.find(dep["name"], dep.get("version"))
        return found

    edges: dict[str, list[str]] = {}
    needs: dict[str, list[str]] = {}  # the edges without the dependency groups
    direct: dict[str, str] = {}
    prod_roots: list[str] = []
    dev_roots: list[str] = []
    for (package, _), (_, own) in zip(entries, refs, strict=True):
        found = targets(package.get("dependencies"))
        for extra in _table(package.get("optional-dependencies")).values():
            found += targets(extra)
        groups = [t for g in _table(package.get("dev-dependencies")).values() for t in targets(g)]
        edges[own] = found + groups
        needs[own] = found
        place = _table(package.get("source"))
        if any(k in place for k in _LOCAL_SOURCES) and isinstance(
            place.get("editable") or place.get("virtual"), str
        ):
            folder = str(place.get("editable") or place.get("virtual"))
            manifest = _manifest_path(source, posixpath.join(folder, "pyproject.toml"))
            for target in found + groups:
                direct.setdefault(target, manifest)
            prod_roots.append(own)
            dev_roots += groups
    scopes = reachable_scopes(prod_roots, dev_roots, needs)
    components = []
    for (package, line), (version, own) in zip(entries, refs, strict=True):
        place = _table(package.get("source"))
        local = any(k in place for k in _LOCAL_SOURCES)
        hashes = [_table(package.get("sdist")).get("hash")]
        hashes += [w.get("hash") for w in _tables(package.get("wheels"))]
        components.append(
            Component(
                str(package.get("name", "")),
                version,
                Ecosystem.PYPI,
                source.path,
                direct=own in direct if direct or prod_roots else None,
                declared=direct.get(own),
                local=local,
                line=line,
                scope=scopes.get(own),
                hashes=tuple(h for h in hashes if isinstance(h, str)),
                dependencies=unique(edges[own]),
            )
        )
    return components


# Pipfile.lock --------------------------------------------------------------------------


def read_pipfile_lock(source: LockSource) -> list[Component]:
    """Pipfile.lock's packages: 'default' production, every other category development
    (a package in both is listed once, as production). The file keeps no edges."""
    data = parse_text(source.text, "JSON")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object at the top level", 1, 1)
    declared = _declared(source, "Pipfile")
    manifest = _manifest_path(source, "Pipfile")
    lines = LineFinder(source.text)
    seen: set[str] = set()
    components = []
    categories = sorted((k for k in data if k != "_meta"), key=lambda k: k != "default")
    # Lines are found in the file's order, whatever order the categories are read in.
    order = {k: i for i, k in enumerate(data)}
    found_lines: dict[tuple[str, str], int | None] = {}
    for category in sorted(categories, key=order.__getitem__):
        lines.find(f'"{json_key(category)}": {{')
        for name in _table(data[category]):
            found_lines[(category, name)] = lines.find(f'"{json_key(name)}": {{')
    for category in categories:
        for name, entry in _table(data[category]).items():
            entry = _table(entry)
            version = entry.get("version")
            version = version.lstrip("=") if isinstance(version, str) else None
            own = ref(Ecosystem.PYPI, name, version)
            if own in seen:
                continue
            seen.add(own)
            is_direct = None if declared is None else normalise(name) in declared
            components.append(
                Component(
                    name,
                    version,
                    Ecosystem.PYPI,
                    source.path,
                    direct=is_direct,
                    declared=manifest if is_direct else None,
                    local="path" in entry or ("file" in entry and "git" not in entry),
                    line=found_lines.get((category, name)),
                    scope=Scope.PROD if category == "default" else Scope.DEV,
                    hashes=tuple(h for h in entry.get("hashes", ()) if isinstance(h, str)),
                )
            )
    return components


# pylock.toml ---------------------------------------------------------------------------


def read_pylock(source: LockSource) -> list[Component]:
    """PEP 751's pylock.toml (pylock.<name>.toml): its packages with the hashes of their
    archives; edges when its packages list `dependencies`; direct and scope from the
    pyproject.toml beside it."""
    data = parse_text(source.text, "TOML")
    entries = _packages(data, "packages", source.text)
    by_name = _ByName()
    refs: list[tuple[str | None, str]] = []
    for package, _ in entries:
        version = package.get("version")
        remote = "vcs" in package or "url" in _table(package.get("archive"))
        version = version if isinstance(version, str) and not remote else None
        refs.append((version, by_name.add(str(package.get("name", "")), version)))
    has_edges = any("dependencies" in p for p, _ in entries)
    declared = _declared(source, "pyproject.toml")
    manifest = _manifest_path(source, "pyproject.toml")
    components = []
    for (package, line), (version, _) in zip(entries, refs, strict=True):
        name = str(package.get("name", ""))
        edges: list[str] = []
        for dep in _tables(package.get("dependencies")):
            if isinstance(dep.get("name"), str):
                edges += by_name.find(dep["name"], dep.get("version"))
        scope = declared.get(normalise(name)) if declared is not None else None
        marker = package.get("marker")
        if isinstance(marker, str) and "dependency_groups" in marker and scope is None:
            scope = Scope.DEV
        is_direct = None if declared is None else normalise(name) in declared
        local = "directory" in package or "path" in _table(package.get("archive"))
        components.append(
            Component(
                name,
                version,
                Ecosystem.PYPI,
                source.path,
                direct=is_direct,
                declared=manifest if is_direct else None,
                local=local,
                line=line,
                scope=scope,
                hashes=_pylock_hashes(package),
                dependencies=unique(edges) if has_edges else None,
            )
        )
    return components


def _pylock_hashes(package: Mapping[str, Any]) -> tuple[str, ...]:
    files: list[Mapping[str, Any]] = [_table(package.get("sdist")), _table(package.get("archive"))]
    files += _tables(package.get("wheels"))
    return tuple(_hash_pairs(_table(f.get("hashes")) for f in files))


def _hash_pairs(tables: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        f"{alg}:{digest}" for t in tables for alg, digest in t.items() if isinstance(digest, str)
    ]
