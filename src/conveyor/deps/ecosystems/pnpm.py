"""pnpm: what pnpm-lock.yaml pins, lockfile versions 5.x (pnpm 7: keys '/name/1.0.0' and
'/name/1.0.0_peer@2.0.0'), 6.0 (pnpm 8: '/name@1.0.0(peer@2.0.0)') and 9.0 (pnpm 9 and
10: 'name@1.0.0' under `packages`, the peer-resolved copies and their edges under
`snapshots`).

One component per package and version, however many peer-resolved copies pnpm keeps of
it (their edges merged); the workspace's members other than the root (`importers`) are
components too, marked local. Direct: what an importer asks for. Scope: a 5.x/6.0 entry's
`dev:` flag (true: only development needs it; false or absent: production does), and
for 9.0, which records none, reachability from the importers' dependencies (production)
and devDependencies (development).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.ecosystems import lockyaml
from conveyor.deps.ecosystems.shared import (
    reachable_scopes,
    ref,
    sibling_document,
    sri_hashes,
    unique,
)
from conveyor.deps.syntax import ParseError

if TYPE_CHECKING:
    from conveyor.deps.inventory import LockSource

_PROD_SECTIONS = ("dependencies", "optionalDependencies")
_ALL_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies")


class _Package:
    """One package and version, gathered from every key that names it."""

    __slots__ = ("dev", "edges", "hashes", "line", "local", "name", "ref", "version")

    def __init__(self, name: str, version: str | None, local: bool, line: int | None) -> None:
        self.name = name
        self.version = version
        self.ref = ref(Ecosystem.NPM, name, version)
        self.local = local
        self.line = line
        self.hashes: tuple[str, ...] = ()
        self.edges: list[str] = []
        self.dev: bool | None = None  # 5.x/6.0's flag, all copies together


def read_pnpm_lock(source: LockSource) -> list[Component]:
    """pnpm-lock.yaml's packages, lockfile versions 5.x, 6.0 and 9.0."""
    documents, lines = lockyaml.read(source.text)
    data = next(
        (d for d in reversed(documents) if isinstance(d, dict) and "lockfileVersion" in d),
        None,
    )
    if data is None:
        raise ParseError("not a pnpm lockfile: no lockfileVersion", 1, 1)
    major = _major(data.get("lockfileVersion"))
    if major is None or major < 5:
        where = lines.get(("lockfileVersion",), 1)
        raise ParseError("unsupported pnpm lockfileVersion (5.x, 6.0 and 9.0 are read)", where, 1)
    importers = data.get("importers")
    if not isinstance(importers, dict):  # a single project: the root's sections at the top
        importers = {".": {k: data.get(k) for k in _ALL_SECTIONS}}
    packages = _mapping(data.get("packages"))
    snapshots = _mapping(data.get("snapshots")) if major >= 9 else {}

    # Every key of `packages` and `snapshots` -> its package.
    by_key: dict[str, _Package] = {}
    by_id: dict[tuple[str, str | None], _Package] = {}
    for key, entry in packages.items():
        key = str(key)
        entry = entry if isinstance(entry, dict) else {}
        name, version, local = _identity(key, entry, major)
        if name is None:
            continue
        package = by_id.get((name, version))
        if package is None:
            package = _Package(name, version, local, lines.get(("packages", key)))
            package.hashes = sri_hashes(_mapping(entry.get("resolution")).get("integrity"))
            by_id[(name, version)] = package
        by_key[key] = package
        if major < 9:
            dev = entry.get("dev")
            if isinstance(dev, bool):
                package.dev = dev if package.dev is None else package.dev and dev
    for key in snapshots:
        if key not in by_key:
            package = by_key.get(_strip_peers(str(key)))
            if package is not None:
                by_key[key] = package

    # Workspace members other than the root are components of their own.
    folder = posixpath.dirname(source.path)
    members: dict[str, _Package] = {}
    for importer in importers:
        if str(importer) != ".":
            members[str(importer)] = _member(str(importer), source, lines)

    def target(name: str, value: object, home: str) -> str | None:
        if isinstance(value, dict):  # 6.0 and 9.0 importers: {specifier, version}
            value = value.get("version")
        if not isinstance(value, str):
            return None
        if value.startswith("link:"):
            member = members.get(posixpath.normpath(posixpath.join(home, value[5:])))
            return member.ref if member is not None else None
        for key in _candidate_keys(name, value, major):
            found = by_key.get(key)
            if found is not None:
                return found.ref
        return None

    # The key a plain version names ('ms': '2.1.3' -> 'ms@2.1.3'), tried before the rest.
    plain = "{}@{}" if major >= 9 else "/{}@{}" if major >= 6 else "/{}/{}"
    edge_sources = snapshots if major >= 9 else packages
    for key, entry in edge_sources.items():
        package = by_key.get(key)
        if package is None or not isinstance(entry, dict):
            continue
        for section in _PROD_SECTIONS:
            listed = entry.get(section)
            if not isinstance(listed, dict):
                continue
            for name, value in listed.items():
                hit = by_key.get(plain.format(name, value))
                found = hit.ref if hit is not None else target(str(name), value, ".")
                if found is not None:
                    package.edges.append(found)

    # Every importer's dependencies are roots: its devDependencies development ones; the
    # others production ones, through the member itself when it is not the root.
    direct: dict[str, str] = {}
    prod_roots: list[str] = []
    dev_roots: list[str] = []
    for importer, sections in importers.items():
        manifest = posixpath.normpath(posixpath.join(folder, str(importer), "package.json"))
        member = members.get(str(importer))
        if member is not None:
            prod_roots.append(member.ref)
        for section in _ALL_SECTIONS:
            for name, value in _mapping(_mapping(sections).get(section)).items():
                found = target(str(name), value, str(importer))
                if found is None:
                    continue
                direct.setdefault(found, manifest)
                if section == "devDependencies":
                    dev_roots.append(found)
                elif member is not None:
                    member.edges.append(found)
                else:
                    prod_roots.append(found)
    everything = [*members.values(), *by_id.values()]
    edges = {p.ref: p.edges for p in everything}
    scopes = reachable_scopes(prod_roots, dev_roots, edges)
    return [
        Component(
            p.name,
            p.version,
            Ecosystem.NPM,
            source.path,
            direct=p.ref in direct,
            declared=direct.get(p.ref),
            local=p.local,
            line=p.line,
            scope=scopes.get(p.ref) if p.dev is None else (Scope.DEV if p.dev else Scope.PROD),
            hashes=p.hashes,
            dependencies=unique(p.edges),
        )
        for p in everything
    ]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _major(version: object) -> int | None:
    try:
        return int(float(str(version).split(".")[0]))
    except ValueError:
        return None


def _strip_peers(key: str) -> str:
    """'name@1.0.0(react@18.2.0)' -> 'name@1.0.0'; 5.x's '/name/1.0.0_react@18.2.0' ->
    '/name/1.0.0'."""
    cut = key.find("(")
    if cut > 0:
        return key[:cut]
    if key.startswith("/"):
        cut = key.find("_", key.rfind("/"))
        if cut > 0:
            return key[:cut]
    return key


def _identity(
    key: str, entry: Mapping[str, Any], major: int
) -> tuple[str | None, str | None, bool]:
    """(name, version, local) of the package a `packages` key names."""
    if major >= 6 and "name" not in entry:  # the registry's: '/name@1.0.0', 'name@1.0.0'
        plain = key[1:] if key[0] == "/" else key
        at = plain.find("@", 1)
        tail = plain[at + 1 :]
        if at > 0 and "(" not in tail and ":" not in tail and "/" not in tail:
            return plain[:at], tail, False
    resolution = _mapping(entry.get("resolution"))
    bare = _strip_peers(key)
    name: str | None
    version: str | None
    if major < 6 and bare.startswith("/"):
        rest = bare[1:]
        parts = rest.split("/", 2 if rest.startswith("@") else 1)
        name = "/".join(parts[:-1]) if len(parts) > 1 else None
        version = parts[-1] if len(parts) > 1 else None
    else:
        rest = bare[1:] if bare.startswith("/") else bare
        cut = rest.find("@", 1)
        name = rest[:cut] if cut > 0 else None
        version = rest[cut + 1 :] if cut > 0 else None
    if isinstance(entry.get("name"), str):  # a tarball, git or directory package
        name = entry["name"]
    local = "directory" in resolution or str(resolution.get("tarball", "")).startswith("file:")
    if version is not None and (":" in version or "/" in version):
        # Not a registry version: a local directory or tarball keeps the version its
        # package.json says; a git repository or a URL has none to look up.
        written = entry.get("version")
        version = written if local and isinstance(written, str) else None
    return name, version, local


def _candidate_keys(name: str, value: str, major: int) -> list[str]:
    """The `packages`/`snapshots` keys a dependency's version string may name."""
    if major >= 9:
        at = value.find("@", 1)
        if at < 0:
            return [f"{name}@{value}"]
        head = value.split("(", 1)[0]
        at = head.find("@", 1)
        if at > 0 and ":" not in head[:at]:  # an alias: 'string-width@4.2.3'
            return [value, f"{name}@{value}"]
        return [f"{name}@{value}", value]
    if value.startswith("/"):
        return [value]
    if major >= 6:
        return [f"/{name}@{value}", value]
    return [f"/{name}/{value}", value]


def _member(importer: str, source: LockSource, lines: Mapping[tuple[str, ...], int]) -> _Package:
    """A workspace member, named as its package.json names it (its directory when that
    cannot be read)."""
    name: str = posixpath.basename(importer)
    version: str | None = None
    manifest = sibling_document(source.read_sibling, posixpath.join(importer, "package.json"))
    if manifest is not None:
        if isinstance(manifest.get("name"), str):
            name = manifest["name"]
        if isinstance(manifest.get("version"), str):
            version = manifest["version"]
    return _Package(name, version, True, lines.get(("importers", importer)))
