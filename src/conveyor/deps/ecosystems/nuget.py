""".NET: the packages NuGet's packages.lock.json pins (written when a project sets
RestorePackagesWithLockFile).

The file locks each target framework (and runtime) separately: 'net8.0',
'net8.0/linux-x64', each a map of package id to {type, requested, resolved,
contentHash, dependencies}. A package locked at one version for several targets is one
component. `type` says Direct (the project's own PackageReference), Transitive,
CentralTransitive (pinned by Central Package Management, not asked for directly) or
Project (a ProjectReference: the workspace's own code, so local). `contentHash` is the
SHA-512 of the .nupkg, base64; `dependencies` name other packages by id with the range
each asks for, the version locked for that id in the same target being the one used.
The file does not say which packages serve only tests: no scope.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.positions import json_lines
from conveyor.deps.syntax import ParseError, parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource


@dataclass
class _Package:
    name: str
    version: str | None
    line: int | None
    direct: bool = False
    local: bool = False
    hashes: list[str] = field(default_factory=list)
    requires: list[tuple[str, str]] = field(default_factory=list)
    """(target, package id) of each dependency."""


def read_packages_lock(source: LockSource) -> list[Component]:
    """packages.lock.json's packages, every target's, in the file's order."""
    data = parse_text(source.text, "JSON")
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object at the top level", 1, 1)
    lines = json_lines(source.text, 3)
    targets = data.get("dependencies", {})
    if not isinstance(targets, dict):
        raise ParseError("'dependencies' must be an object", lines.get(("dependencies",)), 1)
    packages: dict[tuple[str, str | None], _Package] = {}
    # target -> package id (lowercase: NuGet ids are case-insensitive) -> locked version
    locked: dict[str, dict[str, str | None]] = {}
    for target, entries in targets.items():
        if not isinstance(entries, dict):
            raise ParseError(
                f"target {target!r} must be an object", lines.get(("dependencies", target)), 1
            )
        for name, entry in entries.items():
            line = lines.get(("dependencies", target, name))
            package = _read_entry(name, entry, line, packages)
            locked.setdefault(target, {})[name.lower()] = package.version
            requires = entry.get("dependencies", {})
            if isinstance(requires, dict):
                package.requires += [(target, str(dep)) for dep in requires]
    refs: dict[tuple[str, str | None], str] = {}
    components = []
    for package in packages.values():
        component = Component(
            package.name,
            package.version,
            Ecosystem.NUGET,
            source.path,
            direct=package.direct,
            local=package.local,
            line=package.line,
            hashes=tuple(package.hashes),
        )
        refs[(package.name.lower(), package.version)] = component.ref
        components.append(component)
    for i, package in enumerate(packages.values()):
        edges: list[str] = []
        for target, dep in package.requires:
            key = dep.lower()
            if key not in locked.get(target, {}):
                continue  # a dependency NuGet did not lock (a framework reference)
            ref = refs.get((key, locked[target][key]))
            if ref is not None and ref not in edges:
                edges.append(ref)
        components[i] = replace(components[i], dependencies=tuple(edges))
    return components


def _read_entry(
    name: str,
    entry: Any,
    line: int | None,
    packages: dict[tuple[str, str | None], _Package],
) -> _Package:
    if not isinstance(entry, dict):
        raise ParseError(f"package {name!r} must be an object", line, 1)
    kind = entry.get("type")
    version = entry.get("resolved")
    if kind != "Project" and not isinstance(version, str):
        raise ParseError(f"package {name!r} has no resolved version", line, 1)
    key = (name.lower(), version if isinstance(version, str) else None)
    package = packages.get(key)
    if package is None:
        package = packages[key] = _Package(name, key[1], line)
    package.direct = package.direct or kind in ("Direct", "Project")
    package.local = package.local or kind == "Project"
    content = entry.get("contentHash")
    if isinstance(content, str) and content:
        try:
            digest = f"sha512:{base64.b64decode(content, validate=True).hex()}"
        except (binascii.Error, ValueError):
            raise ParseError(f"package {name!r}: contentHash is not base64", line, 1) from None
        if digest not in package.hashes:
            package.hashes.append(digest)
    return package
