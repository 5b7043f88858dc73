"""npm: package.json's dependencies, and what package-lock.json (or npm-shrinkwrap.json)
records: the ranges each workspace member asks for, where each package is installed, its
exact version, integrity, license, dev flag, and which installed copy each dependency
resolves to (Node's node_modules lookup). Yarn's and pnpm's lockfiles are read by
conveyor.deps.ecosystems.yarn and .pnpm."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Requirement, Scope
from conveyor.deps.ecosystems.shared import (
    LineFinder,
    json_key,
    ref,
    sibling_document,
    sri_hashes,
    unique,
)
from conveyor.deps.syntax import ParseError, parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

SECTIONS = ("dependencies", "devDependencies", "optionalDependencies")
"""The sections of package.json that npm installs and records in its lockfile."""


@dataclass(frozen=True)
class NpmLock:
    """A parsed package-lock.json."""

    lockfile: str
    members: Mapping[str, Mapping[str, Mapping[str, str]]] | None
    """lockfileVersion 2 and 3: each package outside node_modules (the root '', a
    workspace member its directory) -> section -> name -> the range it asks for. None for
    lockfileVersion 1, which records what was installed, not the ranges asked for."""
    paths: frozenset[str]
    """lockfileVersion 2 and 3: every key of `packages`, i.e. where each package is
    installed ('node_modules/a', 'packages/b/node_modules/c') and each member's directory."""
    installed: frozenset[str]
    """lockfileVersion 1: the names of the top-level dependencies."""
    components: tuple[Component, ...]
    """One per package and version, in the file's order."""

    def where_found(self, member: str, name: str) -> str | None:
        """The install path Node resolves `name` to from the member's directory: its own
        node_modules, then each parent's (a workspace's dependencies are hoisted to the
        root). None when the lockfile installs it nowhere on that path."""
        folder = member
        while True:
            path = f"{folder}/node_modules/{name}" if folder else f"node_modules/{name}"
            if path in self.paths:
                return path
            if not folder:
                return None
            folder = posixpath.dirname(folder)


def manifest_requirements(data: Mapping[str, Any], manifest: str) -> list[Requirement]:
    """The dependencies of a parsed package.json, section by section in SECTIONS order."""
    return [
        Requirement(str(name), str(spec), section, manifest, Ecosystem.NPM)
        for section in SECTIONS
        if isinstance(data.get(section), dict)
        for name, spec in data[section].items()
    ]


def parse_lock(
    data: Mapping[str, Any],
    lockfile: str,
    *,
    text: str | None = None,
    read_sibling: Callable[[str], str | None] | None = None,
) -> NpmLock:
    """A parsed package-lock.json (any lockfileVersion) as an NpmLock. With the file's
    `text` each component gets its line; with `read_sibling`, lockfileVersion 1 learns
    which packages are direct from the package.json beside it."""
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return _parse_v1(data, lockfile, text, read_sibling)
    members: dict[str, dict[str, dict[str, str]]] = {}
    for key, entry in packages.items():
        if "node_modules/" in key or not isinstance(entry, dict):
            continue
        members[key] = {
            section: {str(name): str(spec) for name, spec in entry[section].items()}
            for section in SECTIONS
            if isinstance(entry.get(section), dict)
        }
    paths = frozenset(packages)
    lock = NpmLock(lockfile, members, paths, frozenset(), ())
    # A package is direct when a member asks for it and Node resolves it to this path.
    folder = posixpath.dirname(lockfile)
    direct: dict[str, str] = {}
    for member, sections in members.items():
        manifest = posixpath.normpath(posixpath.join(folder, member, "package.json"))
        for names in sections.values():
            for name in names:
                path = lock.where_found(member, name)
                if path is not None:
                    direct.setdefault(path, manifest)
    # Each installed package: (name, version, ref, the entry its metadata is in, the
    # folder its own dependencies are resolved from). A link's are its target's.
    nodes: dict[str, tuple[str, str | None, str, Mapping[str, Any], str]] = {}
    for key, entry in packages.items():
        if "node_modules/" not in key or not isinstance(entry, dict):
            continue
        # An alias ("b": "npm:a@1") is installed under its alias, named by its package.
        alias = entry.get("name")
        name = alias if isinstance(alias, str) else key.rsplit("node_modules/", 1)[1]
        source, home = entry, key
        if entry.get("link") is True:
            resolved = entry.get("resolved")
            target = packages.get(resolved) if isinstance(resolved, str) else None
            source = target if isinstance(target, dict) else {}
            home = resolved if isinstance(resolved, str) else key
        version = source.get("version")
        resolved = entry.get("resolved")
        if not isinstance(version, str) or (
            isinstance(resolved, str) and resolved.startswith(_VCS_PREFIXES)
        ):
            version = None
        nodes[key] = (name, version, ref(Ecosystem.NPM, name, version), source, home)
    lines = LineFinder(text) if text is not None else None
    components = []
    for key, (name, version, _, held, home) in nodes.items():
        entry = packages[key]
        depends = []
        for section in _EDGE_SECTIONS:
            listed = held.get(section)
            if isinstance(listed, dict):
                for dep in listed:
                    path = _node_lookup(paths, home, dep)
                    if path is not None and path in nodes:
                        depends.append(nodes[path][2])
        dev = held.get("dev") is True or held.get("devOptional") is True
        components.append(
            Component(
                name,
                version,
                Ecosystem.NPM,
                lockfile,
                direct=key in direct,
                declared=direct.get(key),
                local=entry.get("link") is True,
                line=lines.find(f'"{json_key(key)}": {{') if lines is not None else None,
                scope=Scope.DEV if dev else Scope.PROD,
                hashes=sri_hashes(held.get("integrity")),
                license=_license(held.get("license")),
                dependencies=unique(depends),
            )
        )
    return NpmLock(lockfile, members, paths, frozenset(), _one_per_ref(components))


def _one_per_ref(components: list[Component]) -> tuple[Component, ...]:
    """One component per package and version: npm installs the same one at several
    paths when hoisting cannot share it. The first copy's line is kept; it is direct,
    and production, when any copy is; its edges are all the copies' edges."""
    first: dict[str, int] = {}
    merged: list[Component] = []
    for component in components:
        at = first.get(component.ref)
        if at is None:
            first[component.ref] = len(merged)
            merged.append(component)
            continue
        kept = merged[at]
        merged[at] = replace(
            kept,
            direct=kept.direct or component.direct,
            declared=kept.declared or component.declared,
            scope=Scope.PROD if Scope.PROD in (kept.scope, component.scope) else kept.scope,
            dependencies=unique((*(kept.dependencies or ()), *(component.dependencies or ()))),
        )
    return tuple(merged)


# What a package's own dependencies are resolved through: peers too, since npm 7
# installs them (an optional peer that is not installed resolves to nothing).
_EDGE_SECTIONS = ("dependencies", "optionalDependencies", "peerDependencies")
_VCS_PREFIXES = ("git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:")


def _license(value: object) -> str | None:
    if isinstance(value, dict):  # the old {"type": "MIT", "url": ...} form
        value = value.get("type")
    return value if isinstance(value, str) and value else None


def _node_lookup(paths: frozenset[str], folder: str, name: str) -> str | None:
    """The install path Node resolves `name` to from the package installed at (or the
    workspace member in) `folder`: its own node_modules, then each enclosing one."""
    while True:
        path = f"{folder}/node_modules/{name}" if folder else f"node_modules/{name}"
        if path in paths:
            return path
        if not folder:
            return None
        cut = folder.rfind("/node_modules/")
        if cut >= 0:
            folder = folder[:cut]
        elif folder.startswith("node_modules/"):
            folder = ""
        else:
            folder = posixpath.dirname(folder)


def _parse_v1(
    data: Mapping[str, Any],
    lockfile: str,
    text: str | None,
    read_sibling: Callable[[str], str | None] | None,
) -> NpmLock:
    """lockfileVersion 1: a tree of `dependencies` (each entry's nested ones installed
    under it), each entry's `requires` resolved as Node does, nearest copy first."""
    top = data.get("dependencies")
    top = top if isinstance(top, dict) else {}
    # Every entry in document order (pre-order): name, entry, enclosing node's index.
    nodes: list[tuple[str, Mapping[str, Any], int]] = []
    children: dict[int, dict[str, int]] = {}

    def walk(table: Mapping[str, Any], parent: int) -> None:
        for name, entry in table.items():
            if not isinstance(entry, dict):
                continue
            index = len(nodes)
            nodes.append((str(name), entry, parent))
            children.setdefault(parent, {})[str(name)] = index
            nested = entry.get("dependencies")
            if isinstance(nested, dict):
                walk(nested, index)

    walk(top, -1)
    refs = [ref(Ecosystem.NPM, name, _v1_version(entry.get("version"))) for name, entry, _ in nodes]
    asked = _manifest_names(read_sibling)
    manifest = posixpath.join(posixpath.dirname(lockfile), "package.json")
    lines = LineFinder(text) if text is not None else None
    components = []
    for index, (name, entry, parent) in enumerate(nodes):
        depends = []
        requires = entry.get("requires")
        for dep in requires if isinstance(requires, dict) else ():
            at: int | None = index
            while at is not None:
                found = children.get(at, {}).get(dep)
                if found is not None:
                    depends.append(refs[found])
                    break
                at = None if at == -1 else nodes[at][2]
        version = entry.get("version")
        is_direct = None if asked is None else parent == -1 and name in asked
        components.append(
            Component(
                name,
                _v1_version(version),
                Ecosystem.NPM,
                lockfile,
                direct=is_direct,
                declared=manifest if is_direct else None,
                local=isinstance(version, str) and version.startswith(("file:", "link:")),
                line=lines.find(f'"{json_key(name)}": {{') if lines is not None else None,
                scope=Scope.DEV if entry.get("dev") is True else Scope.PROD,
                hashes=sri_hashes(entry.get("integrity")),
                dependencies=unique(depends),
            )
        )
    return NpmLock(lockfile, None, frozenset(), frozenset(top), _one_per_ref(components))


# lockfileVersion 1 writes a link, a local directory, a tarball URL or a git repository
# where a registry package has its version.
_V1_NOT_VERSIONS = ("file:", "link:", "http:", "https:", *_VCS_PREFIXES)


def _v1_version(version: object) -> str | None:
    if not isinstance(version, str) or version.startswith(_V1_NOT_VERSIONS):
        return None
    return version


def _manifest_names(read_sibling: Callable[[str], str | None] | None) -> set[str] | None:
    """The names package.json (beside the lockfile) asks for, None when unreadable."""
    data = sibling_document(read_sibling, "package.json") if read_sibling is not None else None
    if data is None:
        return None
    return {r.name for r in manifest_requirements(data, "package.json")}


def read_package_lock(source: LockSource) -> list[Component]:
    """package-lock.json's (or npm-shrinkwrap.json's) packages, lockfileVersion 1 to 3."""
    data = parse_text(source.text, "JSON")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object at the top level", 1, 1)
    lock = parse_lock(data, source.path, text=source.text, read_sibling=source.read_sibling)
    return list(lock.components)
