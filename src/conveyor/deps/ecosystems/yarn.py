"""Yarn: what yarn.lock pins, in Yarn 1's own format and in Berry's (Yarn 2 and later:
YAML with `__metadata`, `resolution`, `checksum`, `linkType`).

Each entry is keyed by every range that resolved to it ('ms@2.1.3, ms@^2.1.3'); an
entry's dependencies name ranges, so an edge is the entry that range keys. Neither
format says which packages the project asks for, nor which only its development
needs: those come from package.json beside the lockfile (its devDependencies are the
development roots; a package reachable only from them is dev) and, for Yarn 1, from the
workspace members it names, by path or by glob ('packages/*', '!packages/legacy'
leaving one out), each with a package.json. Berry records every workspace, with what it
depends on, as a `linkType: soft` entry (local).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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

_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies")
_PEERS = "peerDependencies"
_EDGE_SECTIONS = ("dependencies", "optionalDependencies", _PEERS)
# A range that is not a registry version: a URL, a repository, a local path.
_NOT_REGISTRY = ("http:", "https:", "git:", "git+", "github:", "gitlab:", "bitbucket:", "file:")
_LOCAL = ("file:", "link:", "portal:", "workspace:")


@dataclass
class ClassicEntry:
    """One entry of a Yarn 1 lockfile: the ranges its key line lists, that line, and its
    fields (`version`, `resolved`, `integrity`; `dependencies` and
    `optionalDependencies` as name -> range)."""

    specs: list[str]
    line: int
    fields: dict[str, Any] = field(default_factory=dict)


def read_yarn_lock(source: LockSource) -> list[Component]:
    """yarn.lock's packages, Yarn 1 or Berry (told apart by Berry's `__metadata`)."""
    text = source.text
    if "\n__metadata:" in text or text.startswith("__metadata:"):
        return _read_berry(source)
    return _read_classic(source)


# Yarn 1 --------------------------------------------------------------------------------


def parse_classic(text: str) -> list[ClassicEntry]:
    """Yarn 1's own format: an entry's key line at the left margin ('a@^1, a@^1.2:'),
    its fields indented by two spaces ('version "1.2.0"'), the names and ranges of a
    field that is a table by four. `ParseError` at the first line that is none of these."""
    entries: list[ClassicEntry] = []
    entry: ClassicEntry | None = None
    table: dict[str, str] | None = None
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip(" \t\r")
        content = line.lstrip(" ")
        if not content or content[0] == "#":
            continue
        indent = len(line) - len(content)
        if content[0] == "\t":
            raise ParseError("indentation with a tab", number, indent + 1)
        if indent == 0:
            if not content.endswith(":"):
                raise ParseError("expected an entry: 'name@range:'", number, len(content) + 1)
            entry = ClassicEntry(_classic_specs(content[:-1], number), number)
            entries.append(entry)
            table = None
        elif entry is None:
            raise ParseError("a field before the first entry", number, indent + 1)
        elif indent == 2 and content.endswith(":"):
            table = {}
            entry.fields[_classic_token(content[:-1], number, indent)[0]] = table
        elif indent == 2:
            key, value = _classic_pair(content, number, indent)
            entry.fields[key] = value
            table = None
        elif indent == 4 and table is not None:
            key, value = _classic_pair(content, number, indent)
            table[key] = value
        else:
            raise ParseError("unexpected indentation", number, indent + 1)
    return entries


def _classic_specs(keys: str, number: int) -> list[str]:
    """The ranges of a key line, each quoted or bare, separated by ', '."""
    specs = []
    i = 0
    while True:
        if keys.startswith('"', i):
            spec, rest = _classic_token(keys[i:], number, i)
            end = len(keys) - len(rest)
        else:
            end = keys.find(", ", i)
            end = len(keys) if end < 0 else end
            spec = keys[i:end]
        if not spec:
            raise ParseError("an empty range in an entry's key", number, i + 1)
        specs.append(spec)
        if end >= len(keys):
            return specs
        if not keys.startswith(", ", end):
            raise ParseError("expected ', ' between the ranges of an entry", number, end + 1)
        i = end + 2


def _classic_token(text: str, number: int, offset: int) -> tuple[str, str]:
    """The first token of `text` (a JSON-escaped quoted string, or a bare word) and the
    rest after the spaces that follow it; `offset` is where `text` starts in its line."""
    if not text.startswith('"'):
        word, _, rest = text.partition(" ")
        return word, rest.lstrip(" ")
    end = 1
    while True:
        end = text.find('"', end)
        if end < 0:
            raise ParseError("unterminated string", number, offset + 1)
        backslashes = len(text[:end]) - len(text[:end].rstrip("\\"))
        if backslashes % 2 == 0:
            break
        end += 1
    try:
        token = json.loads(text[: end + 1])
    except ValueError:
        raise ParseError("invalid string", number, offset + 1) from None
    return str(token), text[end + 1 :].lstrip(" ")


def _classic_pair(content: str, number: int, indent: int) -> tuple[str, str]:
    key, rest = _classic_token(content, number, indent)
    if not rest:
        raise ParseError("a field without a value", number, indent + len(content) + 1)
    start = indent + len(content) - len(rest)
    value, extra = _classic_token(rest, number, start)
    if extra:
        raise ParseError("more than one value", number, indent + len(content) - len(extra) + 1)
    return key, value


def _read_classic(source: LockSource) -> list[Component]:
    entries = parse_classic(source.text)
    # Each entry's (name, version, ref); several entries may be one package (an alias
    # and a plain range), which is one component.
    identities: list[tuple[str, str | None, str]] = []
    by_spec: dict[str, str] = {}
    for entry in entries:
        name, ranges = _split_spec(entry.specs[0])
        name = _alias_target(ranges) or name
        version = entry.fields.get("version")
        if not isinstance(version, str) or all(
            _split_spec(s)[1].startswith(_NOT_REGISTRY) for s in entry.specs
        ):
            version = None
        own = ref(Ecosystem.NPM, name, version)
        identities.append((name, version, own))
        for spec in entry.specs:
            by_spec[spec] = own
    overridden = _Overridden(source, identities, by_spec)

    def resolve_classic(name: str, spec: str, peer: bool = False) -> str | None:
        found = by_spec.get(f"{name}@{spec}")
        return found if found is not None or peer else overridden.target(name)

    edges: dict[str, list[str]] = {}
    for entry, (_, _, own) in zip(entries, identities, strict=True):
        found = edges.setdefault(own, [])
        for section in _EDGE_SECTIONS:
            table = entry.fields.get(section)
            for dep, spec in table.items() if isinstance(table, dict) else ():
                target = resolve_classic(str(dep), str(spec), section == _PEERS)
                if target is not None:
                    found.append(target)
    roots = _classic_roots(source, resolve_classic)
    scopes = reachable_scopes(roots.prod, roots.dev, edges)
    components: dict[str, Component] = {}
    for entry, (name, version, own) in zip(entries, identities, strict=True):
        if own in components:
            continue
        components[own] = roots.component(
            source,
            name,
            version,
            own,
            local=all(_split_spec(s)[1].startswith(_LOCAL) for s in entry.specs),
            line=entry.line,
            scope=scopes.get(own),
            hashes=sri_hashes(entry.fields.get("integrity")),
            edges=edges[own],
        )
    return list(components.values())


def _split_spec(spec: str) -> tuple[str, str]:
    """'@scope/name@^1.0.0' -> ('@scope/name', '^1.0.0'); the range may hold '@' itself
    ('npm:other@^1', a URL), the name does not past its first character."""
    cut = spec.find("@", 1)
    return (spec, "") if cut < 0 else (spec[:cut], spec[cut + 1 :])


def _alias_target(ranges: str) -> str | None:
    """The package an alias range installs ('npm:string-width@^4' -> 'string-width')."""
    if not ranges.startswith("npm:"):
        return None
    target = ranges[4:]
    cut = target.find("@", 1)
    return target[:cut] if cut > 0 else None


# Roots from package.json ---------------------------------------------------------------


@dataclass
class _Roots:
    """What the manifests beside the lockfile ask for, resolved to refs: production and
    development roots, and where each direct one is declared."""

    prod: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    declared: dict[str, str] = field(default_factory=dict)
    unknown: bool = False
    """The root's package.json could not be read: direct and scope are not known."""

    def add(self, manifest: str, found: str, dev: bool) -> None:
        self.declared.setdefault(found, manifest)
        (self.dev if dev else self.prod).append(found)

    def component(
        self,
        source: LockSource,
        name: str,
        version: str | None,
        own: str,
        *,
        local: bool,
        line: int | None,
        scope: Scope | None,
        hashes: tuple[str, ...],
        edges: list[str],
    ) -> Component:
        """The component of one package, direct as these roots say."""
        return Component(
            name,
            version,
            Ecosystem.NPM,
            source.path,
            direct=None if self.unknown else own in self.declared,
            declared=self.declared.get(own),
            local=local,
            line=line,
            scope=scope,
            hashes=hashes,
            dependencies=unique(edges),
        )


def _classic_roots(source: LockSource, resolve: Callable[[str, str], str | None]) -> _Roots:
    """Yarn 1: the root package.json and the workspace members it names by path."""
    roots = _Roots()
    root = sibling_document(source.read_sibling, "package.json")
    if root is None:
        roots.unknown = True
        return roots
    folder = posixpath.dirname(source.path)
    members = [("", root)]
    for member in _workspace_members(root, source.glob_siblings):
        data = sibling_document(source.read_sibling, posixpath.join(member, "package.json"))
        if data is not None:
            members.append((member, data))
    for member, data in members:
        manifest = posixpath.normpath(posixpath.join(folder, member, "package.json"))
        for section, name, spec in _requirements(data):
            found = resolve(name, spec)
            if found is not None:
                roots.add(manifest, found, dev=section == "devDependencies")
    return roots


def _requirements(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    for section in _SECTIONS:
        table = data.get(section)
        if isinstance(table, dict):
            for name, spec in table.items():
                if isinstance(spec, str):
                    yield section, str(name), spec


def _workspace_members(
    manifest: Mapping[str, Any], glob_siblings: Callable[[str], list[str]]
) -> list[str]:
    """The directories `workspaces` names, in order: a path as it is, a glob expanded
    (as Yarn 1 expands it), a '!' pattern taking its matches out again."""
    workspaces = manifest.get("workspaces")
    if isinstance(workspaces, dict):
        workspaces = workspaces.get("packages")
    if not isinstance(workspaces, list):
        return []
    members: list[str] = []
    for w in workspaces:
        if not isinstance(w, str) or not w.strip():
            continue
        negated = w.startswith("!")
        pattern = w[1:] if negated else w
        if any(c in pattern for c in "*?[{"):
            matched = glob_siblings(pattern.rstrip("/"))
        else:
            matched = [posixpath.normpath(pattern)]
        if negated:
            members = [m for m in members if m not in set(matched)]
        else:
            members += [m for m in matched if m not in members and m != "."]
    return members


# Berry ---------------------------------------------------------------------------------


class _Overridden:
    """Where a dependency's own range names no entry: package.json's `resolutions`
    replaced it before Yarn locked (a package asks for ^4.7.0, the project forces
    ~4.7.0-alpha.2, and only the forced range is a key). Then the package is the one
    `resolutions` names, or the only version of it that is locked."""

    def __init__(
        self,
        source: LockSource,
        identities: Sequence[tuple[str, str | None, str]],
        by_spec: Mapping[str, str],
    ) -> None:
        self._versions: dict[str, set[str]] = {}
        for name, _version, own in identities:
            self._versions.setdefault(name, set()).add(own)
        self._by_spec = by_spec
        manifest = sibling_document(source.read_sibling, "package.json") or {}
        forced = manifest.get("resolutions")
        # Only a plain package name is a rule for every path to it ('a/b' and 'a@1'
        # keys are narrower and are not applied here).
        self._forced = {
            str(k): str(v)
            for k, v in (forced.items() if isinstance(forced, dict) else ())
            if _plain_name(str(k))
        }

    def target(self, name: str) -> str | None:
        forced = self._forced.get(name)
        if forced is not None:
            found = self._by_spec.get(f"{name}@{forced}") or self._by_spec.get(
                f"{name}@npm:{forced}"
            )
            if found is not None:
                return found
        versions = self._versions.get(name)
        return next(iter(versions)) if versions is not None and len(versions) == 1 else None


def _plain_name(key: str) -> bool:
    """'lodash' or '@scope/name', not 'parent/lodash' nor 'lodash@1'."""
    return key.count("/") == (1 if key.startswith("@") else 0) and "@" not in key[1:]


def _read_berry(source: LockSource) -> list[Component]:
    documents, lines = lockyaml.read(source.text)
    data = documents[-1] if documents else None
    if not isinstance(data, dict):
        raise ParseError("expected a mapping of entries at the top level", 1, 1)
    # Each entry: (its key, the entry, name, version, ref); a peer-resolved (virtual)
    # copy of a package is another entry of the same ref.
    entries: list[tuple[str, Mapping[str, Any], str, str | None, str]] = []
    by_spec: dict[str, str] = {}
    for key, entry in data.items():
        if key == "__metadata" or not isinstance(entry, dict):
            continue
        key = str(key)
        resolution = str(entry.get("resolution", ""))
        name, ranges = _split_spec(resolution)
        if not ranges:
            name, ranges = _split_spec(key.split(", ", 1)[0])
        written = entry.get("version")
        version = None if written is None else str(written)
        protocol = ranges.split(":", 1)[0]
        if protocol == "workspace":
            version = _workspace_version(source, ranges[len("workspace:") :], version)
        elif protocol not in ("npm", "virtual", "patch") and entry.get("linkType") != "soft":
            version = None  # a URL or a repository
        own = ref(Ecosystem.NPM, name, version)
        for spec in (*key.split(", "), resolution):
            by_spec[spec] = own
        entries.append((key, entry, name, version, own))

    overridden = _Overridden(source, [(n, v, own) for _, _, n, v, own in entries], by_spec)

    def resolve(name: str, spec: str, peer: bool = False) -> str | None:
        found = by_spec.get(f"{name}@{spec}")
        if found is None and ":" not in spec:
            found = by_spec.get(f"{name}@npm:{spec}")  # npm: is the default protocol
        # A peer is the parent's to provide (Berry resolves it in virtual copies).
        return found if found is not None or peer else overridden.target(name)

    edges: dict[str, list[str]] = {}
    workspaces: list[tuple[str, str, Mapping[str, Any]]] = []
    for _, entry, _, _, own in entries:
        depends = edges.setdefault(own, [])
        for section in _EDGE_SECTIONS:
            table = entry.get(section)
            for dep, spec in table.items() if isinstance(table, dict) else ():
                found = resolve(str(dep), str(spec), section == _PEERS)
                if found is not None:
                    depends.append(found)
        resolution = str(entry.get("resolution", ""))
        if "@workspace:" in resolution:
            workspaces.append((resolution.split("@workspace:", 1)[1], own, entry))
    roots = _Roots()
    workspaces.sort(key=lambda w: w[0] != ".")  # the root's manifest declares first
    for path, own, entry in workspaces:
        _berry_workspace_roots(source, roots, own, path, entry, resolve)
    projects = {own for path, own, _ in workspaces if path == "."}
    if not projects and sibling_document(source.read_sibling, "package.json") is None:
        roots.unknown = True
    scopes = reachable_scopes(roots.prod, roots.dev, edges)
    components: dict[str, Component] = {}
    for key, entry, name, version, own in entries:
        if own in components or own in projects:
            continue  # a virtual copy of a package already listed; the project itself
        components[own] = roots.component(
            source,
            name,
            version,
            own,
            local=entry.get("linkType") == "soft",
            line=lines.get((key,)),
            scope=scopes.get(own),
            hashes=_berry_checksum(entry.get("checksum")),
            edges=edges[own],
        )
    return list(components.values())


def _berry_workspace_roots(
    source: LockSource,
    roots: _Roots,
    own: str,
    path: str,
    entry: Mapping[str, Any],
    resolve: Callable[[str, str], str | None],
) -> None:
    """A workspace's dependencies as roots: its devDependencies (which only its
    package.json tells apart) development ones, the others production ones; a member
    other than the root is a production root itself."""
    manifest = posixpath.normpath(
        posixpath.join(posixpath.dirname(source.path), path, "package.json")
    )
    declared = sibling_document(source.read_sibling, posixpath.join(path, "package.json"))
    dev = declared.get("devDependencies") if declared is not None else None
    dev_names = set(dev) if isinstance(dev, dict) else set()
    if path != ".":
        roots.prod.append(own)
    for section in ("dependencies", "optionalDependencies"):
        table = entry.get(section)
        for dep, spec in table.items() if isinstance(table, dict) else ():
            found = resolve(str(dep), str(spec))
            if found is not None:
                roots.add(manifest, found, dev=dep in dev_names)


def _berry_checksum(checksum: object) -> tuple[str, ...]:
    """Berry's checksum: the SHA-512 (hex) of the package's archive in Yarn's cache,
    after the cache key ('10c0/<hex>') from lockfile version 8 on."""
    if not isinstance(checksum, str) or not checksum:
        return ()
    digest = checksum.rsplit("/", 1)[-1]
    return (f"sha512:{digest}",) if len(digest) == 128 else ()


def _workspace_version(source: LockSource, path: str, written: str | None) -> str | None:
    """A workspace's version, as its package.json says ('0.0.0-use.local' in the lock)."""
    data = sibling_document(source.read_sibling, posixpath.join(path, "package.json"))
    version = data.get("version") if data is not None else None
    if isinstance(version, str):
        return version
    return None if written == "0.0.0-use.local" else written
