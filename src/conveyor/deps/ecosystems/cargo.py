"""Rust: the dependencies Cargo.toml declares (renames resolved to the crate's name) and
the packages Cargo.lock pins, with their checksums and the edges between them.

Cargo.lock does not say which packages are only dev- or build-dependencies (one
resolution serves every kind), so its components have no scope."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Requirement
from conveyor.deps.syntax import ParseError, parse_text

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_KINDS = ("dependencies", "dev-dependencies", "build-dependencies")


def crate_key(name: str) -> str:
    """Cargo treats '-' and '_' in a crate's name as one; case is not significant."""
    return name.replace("_", "-").lower()


def manifest_requirements(data: Mapping[str, Any], manifest: str) -> list[Requirement]:
    """The dependencies of a parsed Cargo.toml: [dependencies], [dev-dependencies],
    [build-dependencies] and their [target.'cfg(...)'] forms. A renamed dependency
    (`foo = { package = "bar" }`, or `foo = { workspace = true }` whose
    [workspace.dependencies] entry renames it) is named by its crate."""
    tables: list[tuple[str, Any]] = [(kind, data.get(kind)) for kind in _KINDS]
    targets = data.get("target")
    if isinstance(targets, dict):
        for target, table in targets.items():
            if isinstance(table, dict):
                tables += [(f"target.{target}.{kind}", table.get(kind)) for kind in _KINDS]
    workspace = data.get("workspace")
    inherited = workspace.get("dependencies") if isinstance(workspace, dict) else None
    inherited = inherited if isinstance(inherited, dict) else {}
    found = []
    for section, table in tables:
        if not isinstance(table, dict):
            continue
        for key, spec in table.items():
            name, version = key, spec
            if isinstance(spec, dict):
                source = inherited.get(key) if spec.get("workspace") is True else spec
                if isinstance(source, dict) and isinstance(source.get("package"), str):
                    name = source["package"]
                if isinstance(spec.get("package"), str):
                    name = spec["package"]
                version = source.get("version") if isinstance(source, dict) else source
            found.append(
                Requirement(
                    name,
                    version if isinstance(version, str) else "",
                    section,
                    manifest,
                    Ecosystem.CARGO,
                )
            )
    return found


_PACKAGE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*package[ \t]*\]\][ \t]*(?:#.*)?$", re.MULTILINE)
_DEPENDENCY = re.compile(r"(?P<name>\S+)(?: (?P<version>[^\s(]+))?(?: \((?P<source>[^)]+)\))?")


def lock_components(
    data: Mapping[str, Any], lockfile: str, text: str | None = None
) -> list[Component]:
    """The [[package]] entries of a parsed Cargo.lock. A package without a `source` is one
    of the workspace's own crates (or a path dependency): local; the crates they list in
    `dependencies` are the direct ones. With the file's `text`, each component has the
    line of its [[package]] header."""
    raw = data.get("package")
    raw = raw if isinstance(raw, list) else []
    headers = _header_lines(text) if text is not None else []
    entries = [
        (p, headers[i] if len(headers) == len(raw) else None)
        for i, p in enumerate(raw)
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    ]
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    components = [_component(p, lockfile, line, metadata) for p, line in entries]
    resolve = _Resolver([(p, c.ref) for (p, _), c in zip(entries, components, strict=True)])
    edges = [resolve.all(p.get("dependencies")) for p, _ in entries]
    direct = {
        ref
        for (p, _), refs in zip(entries, edges, strict=True)
        if "source" not in p
        for ref in refs
    }
    return [
        replace(c, direct=c.ref in direct, dependencies=tuple(refs))
        for c, refs in zip(components, edges, strict=True)
    ]


def _header_lines(text: str) -> list[int]:
    return [text.count("\n", 0, m.start()) + 1 for m in _PACKAGE_HEADER.finditer(text)]


def _component(
    package: Mapping[str, Any], lockfile: str, line: int | None, metadata: Mapping[str, Any]
) -> Component:
    name, version, source = package["name"], package.get("version"), package.get("source")
    version = version if isinstance(version, str) else None
    checksum = package.get("checksum")
    if checksum is None and isinstance(source, str):
        # Lockfiles written before Cargo 1.41 keep the checksums in [metadata].
        checksum = metadata.get(f"checksum {name} {version} ({source})")
    return Component(
        name,
        version,
        Ecosystem.CARGO,
        lockfile,
        local="source" not in package,
        line=line,
        # Cargo's checksum is the SHA-256 of the .crate file the registry serves.
        hashes=(f"sha256:{checksum}",) if isinstance(checksum, str) and checksum else (),
    )


class _Resolver:
    """A `dependencies` entry to the package it names: 'name' when one version of the
    crate is locked, 'name version' when several are, 'name version (source)' when one
    version comes from two sources (a path crate, which has no source, is then written
    'name version')."""

    def __init__(self, packages: list[tuple[Mapping[str, Any], str]]) -> None:
        self._by_name: dict[str, list[tuple[Mapping[str, Any], str]]] = {}
        for package, ref in packages:
            self._by_name.setdefault(package["name"], []).append((package, ref))

    def all(self, entries: object) -> list[str]:
        if not isinstance(entries, list):
            return []
        found = []
        for entry in entries:
            ref = self.one(entry) if isinstance(entry, str) else None
            if ref is not None and ref not in found:
                found.append(ref)
        return found

    def one(self, entry: str) -> str | None:
        match = _DEPENDENCY.fullmatch(entry.strip())
        if match is None:
            return None
        candidates = self._by_name.get(match["name"], [])
        if match["version"]:
            candidates = [(p, r) for p, r in candidates if p.get("version") == match["version"]]
        wanted = match["source"]
        if wanted:
            # The package's source has the commit of a git checkout ('#<sha>'); the
            # dependency's names the repository alone.
            candidates = [
                (p, r)
                for p, r in candidates
                if isinstance(p.get("source"), str) and p["source"].partition("#")[0] == wanted
            ]
        elif len(candidates) > 1:
            # Path crates have no source to write: an entry without one, where one version
            # comes from two sources, is the path crate.
            candidates = [(p, r) for p, r in candidates if "source" not in p] or candidates
        return candidates[0][1] if candidates else None


def read_cargo_lock(source: LockSource) -> list[Component]:
    """Cargo.lock's packages: the workspace's own crates marked local, checksums as
    sha256, each package's dependencies at their locked versions."""
    data = parse_text(source.text, "TOML")
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise ParseError("'package' must be an array of [[package]] tables", 1, 1)
    headers = _header_lines(source.text)
    for i, package in enumerate(packages):
        line = headers[i] if len(headers) == len(packages) else None
        if not isinstance(package, dict):
            raise ParseError("a [[package]] entry that is not a table", line, 1 if line else None)
        for key in ("name", "version"):
            if not isinstance(package.get(key), str):
                raise ParseError(f"[[package]] has no {key} (a string)", line, 1 if line else None)
    return lock_components(data, source.path, source.text)
