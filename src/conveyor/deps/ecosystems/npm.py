"""npm: package.json's dependencies, and what package-lock.json (or npm-shrinkwrap.json)
records: the ranges each workspace member asks for, where each package is installed, and
its exact version."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Requirement
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


def parse_lock(data: Mapping[str, Any], lockfile: str) -> NpmLock:
    """A parsed package-lock.json (any lockfileVersion) as an NpmLock."""
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return _parse_v1(data, lockfile)
    members: dict[str, dict[str, dict[str, str]]] = {}
    for key, entry in packages.items():
        if "node_modules/" in key or not isinstance(entry, dict):
            continue
        members[key] = {
            section: {str(name): str(spec) for name, spec in entry[section].items()}
            for section in SECTIONS
            if isinstance(entry.get(section), dict)
        }
    lock = NpmLock(lockfile, members, frozenset(packages), frozenset(), ())
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
    components = []
    for key, entry in packages.items():
        if "node_modules/" not in key or not isinstance(entry, dict):
            continue
        # An alias ("b": "npm:a@1") is installed under its alias, named by its package.
        alias = entry.get("name")
        name = alias if isinstance(alias, str) else key.rsplit("node_modules/", 1)[1]
        target = packages.get(entry.get("resolved")) if entry.get("link") is True else entry
        version = target.get("version") if isinstance(target, dict) else None
        components.append(
            Component(
                name,
                version if isinstance(version, str) else None,
                Ecosystem.NPM,
                lockfile,
                direct=key in direct,
                declared=direct.get(key),
                local=entry.get("link") is True,
            )
        )
    return NpmLock(lockfile, members, frozenset(packages), frozenset(), tuple(components))


def _parse_v1(data: Mapping[str, Any], lockfile: str) -> NpmLock:
    top = data.get("dependencies")
    top = top if isinstance(top, dict) else {}
    components: list[Component] = []
    pending = [top]
    while pending:
        for name, entry in pending.pop().items():
            if not isinstance(entry, dict):
                continue
            version = entry.get("version")
            components.append(
                Component(
                    str(name),
                    version if isinstance(version, str) else None,
                    Ecosystem.NPM,
                    lockfile,
                )
            )
            if isinstance(entry.get("dependencies"), dict):
                pending.append(entry["dependencies"])
    return NpmLock(lockfile, None, frozenset(), frozenset(top), tuple(components))


def read_package_lock(source: LockSource) -> list[Component]:
    """package-lock.json's (or npm-shrinkwrap.json's) packages."""
    data = parse_text(source.text, "JSON")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object at the top level", 1, 1)
    return list(parse_lock(data, source.path).components)
