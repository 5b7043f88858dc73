"""What both SBOM formats say, drawn once from the inventory: the project at the root,
one `Package` per package URL, and who depends on whom.

- One package per purl. A package that several lockfiles pin (a monorepo's services
  sharing a library), or that one lockfile installs at several places (npm's nested
  node_modules), is one package: its hashes and lockfile locations are the union, its
  edges the union of those the lockfiles keep, its scope prod when any lockfile ships
  it, dev only when every one says dev (unknown otherwise), its license the first one
  stated.
- The workspace's own packages (`Component.local`: uv's project, a Cargo workspace
  member, an npm workspace link) are not third-party code. The one that is the project
  itself (same ecosystem and name as the root's manifest) is folded into the root: its
  edges are the root's. The others are the root's `members`, which the formats nest
  under the project (CycloneDX subcomponents, SPDX CONTAINS), with their own edges.
- The root depends on the direct packages, and on every package that would otherwise
  hang from nothing: all of them when the lockfile keeps no edges (requirements.txt,
  go.mod), those nothing depends on when it keeps edges but not which are direct
  (poetry.lock), and any left unreachable by a cycle. Every package is so reachable from
  the root; an edge to a package that is not in the SBOM (left out as dev, or absent
  from the inventory) is dropped.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from conveyor.deps.components import Component, Ecosystem, Scope
from conveyor.deps.inventory import Inventory
from conveyor.errors import EnvironmentProblem


@dataclass(frozen=True)
class Project:
    """The project an SBOM describes: its name, its version when known, and the
    ecosystem whose manifest named it (None when named after its directory)."""

    name: str
    version: str | None = None
    ecosystem: Ecosystem | None = None

    @property
    def purl(self) -> str | None:
        """The project's package URL, when a manifest named it."""
        if self.ecosystem is None:
            return None
        return Component(self.name, self.version, self.ecosystem, "").purl

    @property
    def identity(self) -> tuple[Ecosystem, str] | None:
        """(ecosystem, purl without version): how a lockfile's local package is known to
        be the project itself."""
        if self.ecosystem is None:
            return None
        return _identity(Component(self.name, None, self.ecosystem, ""))


def project_of(root: str) -> Project:
    """The project at `root`, named by the first of pyproject.toml ([project], else
    [tool.poetry]), package.json and Cargo.toml ([package]) that names it, with the
    version it states (None when it is dynamic or not given); else by the directory's
    name. A manifest that does not parse is passed over."""
    for read in (_pyproject, _package_json, _cargo_toml):
        try:
            found = read(root)
        except (OSError, UnicodeDecodeError, ValueError):
            found = None
        if found is not None:
            return found
    return Project(os.path.basename(os.path.abspath(root)) or "project")


def _pyproject(root: str) -> Project | None:
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        data = tomllib.load(f)
    for table in (data.get("project"), data.get("tool", {}).get("poetry")):
        if isinstance(table, dict) and isinstance(table.get("name"), str) and table["name"]:
            version = table.get("version")
            return Project(table["name"], _str(version), Ecosystem.PYPI)
    return None


def _package_json(root: str) -> Project | None:
    with open(os.path.join(root, "package.json"), encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"]:
        return Project(data["name"], _str(data.get("version")), Ecosystem.NPM)
    return None


def _cargo_toml(root: str) -> Project | None:
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        data = tomllib.load(f)
    package = data.get("package")
    if not isinstance(package, dict) or not isinstance(package.get("name"), str):
        return None
    version = package.get("version")
    if isinstance(version, dict):  # version.workspace = true
        shared = data.get("workspace", {}).get("package", {})
        version = shared.get("version") if isinstance(shared, dict) else None
    return Project(package["name"], _str(version), Ecosystem.CARGO)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# Licenses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class License:
    """A package's license: `spdx`, an SPDX license expression (license-list ids,
    LicenseRef-* for others), when it is one; else `name`, the text as stated."""

    spdx: str | None = None
    name: str | None = None


_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")
_NO_LICENSE = frozenset({"", "NOASSERTION", "NONE", "UNKNOWN"})


@functools.cache
def licensing() -> Any:
    """license-expression's SPDX licensing (the one spdx-tools validates with), built
    once: it takes a while."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def license_of(text: str | None) -> License | None:
    """`text` as a License: its normalised SPDX expression ('mit or apache-2.0' ->
    'MIT OR Apache-2.0', 'GPL-2.0+' -> 'GPL-2.0-or-later') when every symbol is an SPDX
    id or a LicenseRef-; else the text as a name ('MIT License', 'SEE LICENSE IN
    LICENSE'); None for no statement (empty, NOASSERTION, NONE, UNKNOWN)."""
    if text is None:
        return None
    text = " ".join(text.split())
    if text.upper() in _NO_LICENSE:
        return None
    spdx = licensing()
    try:
        parsed = spdx.parse(text, validate=False, strict=True)
        unknown = spdx.unknown_license_keys(parsed) if parsed is not None else []
    except Exception:  # license-expression raises many kinds for text that is no expression
        return License(name=text)
    if parsed is None or any(not _LICENSE_REF.fullmatch(key) for key in unknown):
        return License(name=text)
    return License(spdx=str(parsed.render()))


# Hashes -----------------------------------------------------------------------------


HASH_LENGTHS: dict[str, int] = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "sha3-256": 64,
    "sha3-384": 96,
    "sha3-512": 128,
    "blake2b-256": 64,
    "blake2b-384": 96,
    "blake2b-512": 128,
    "blake3": 64,
}
"""The digest algorithms both formats name, by the spelling `Component.hashes` uses,
with the length of their hex digest."""

_ALGORITHMS = {name.replace("-", ""): name for name in HASH_LENGTHS}
_HEX = re.compile(r"[0-9a-f]+")


def hash_of(text: str) -> tuple[str, str] | None:
    """'sha256:9F86…' as ('sha256', '9f86…'); None for an algorithm neither format
    names (Go's h1:) or a digest of the wrong length."""
    algorithm, sep, digest = text.partition(":")
    name = _ALGORITHMS.get(algorithm.lower().replace("-", "").replace("_", ""))
    digest = digest.strip().lower()
    if not sep or name is None or len(digest) != HASH_LENGTHS[name] or not _HEX.fullmatch(digest):
        return None
    return name, digest


# The graph --------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """One package of the SBOM (one purl), merged from every component with that purl."""

    ref: str
    """The purl: the package's identity and its reference within the document."""
    name: str
    """As the (first) lockfile names it: an npm scope, a Maven groupId, a Go module's
    path are part of it."""
    version: str | None
    ecosystem: Ecosystem
    scope: Scope | None
    hashes: tuple[tuple[str, str], ...]
    """(algorithm, hex digest), sorted: every digest a lockfile records for it (for a
    PyPI package, one per sdist and wheel: any of those files is this package)."""
    license: License | None
    locations: tuple[str, ...]
    """'lockfile:line' (or the lockfile) of each entry it was read from, sorted."""
    dependencies: tuple[str, ...]
    """The refs of the packages it depends on that are in the SBOM, sorted."""
    local: bool = False


@dataclass(frozen=True)
class Graph:
    """The SBOM's content: the project, its members, the third-party packages (each
    sorted by ref), and the root's edges."""

    project: Project
    root_ref: str
    root_license: License | None
    dependencies: tuple[str, ...]
    """What the project itself depends on (see the module's docstring), sorted."""
    members: tuple[Package, ...]
    packages: tuple[Package, ...]

    def all_packages(self) -> tuple[Package, ...]:
        return (*self.members, *self.packages)


def _identity(component: Component) -> tuple[Ecosystem, str]:
    return component.ecosystem, Component(component.name, None, component.ecosystem, "").purl


def merged_scope(scopes: Iterable[Scope | None]) -> Scope | None:
    """prod when any is prod; dev when all are dev; else unknown."""
    seen = set(scopes)
    if Scope.PROD in seen:
        return Scope.PROD
    if seen == {Scope.DEV}:
        return Scope.DEV
    return None


def build(
    inventory: Inventory,
    project: Project,
    *,
    licenses: Mapping[str, str] | None = None,
    dev: bool = True,
) -> Graph:
    """The SBOM's graph of the inventory (see the module's docstring). `licenses`:
    purl -> SPDX expression, preferred over the lockfile's statement; `dev`: False
    leaves out the packages whose merged scope is dev."""
    licenses = licenses or {}
    groups: dict[str, list[Component]] = {}
    for component in inventory.components:
        groups.setdefault(component.purl, []).append(component)

    own = project.identity
    root_ref = project.purl or f"conveyor:project/{project.name}"
    selves: set[str] = set()  # purls of the local packages that are the project itself
    root_edges: set[str] = set()
    packages: dict[str, Package] = {}
    direct: set[str] = set()
    for purl, same in groups.items():
        first = same[0]
        local = any(c.local for c in same)
        edges = {d for c in same if c.dependencies is not None for d in c.dependencies}
        if local and own is not None and _identity(first) == own:
            selves.add(purl)
            root_edges |= edges
            continue
        scope = merged_scope(c.scope for c in same)
        if not dev and scope is Scope.DEV and not local:
            continue
        stated = licenses.get(purl)
        if stated is None:
            stated = next((c.license for c in same if c.license), None)
        hashes = {h for c in same for text in c.hashes if (h := hash_of(text)) is not None}
        packages[purl] = Package(
            ref=purl,
            name=first.name,
            version=first.version,
            ecosystem=first.ecosystem,
            scope=scope,
            hashes=tuple(sorted(hashes)),
            license=license_of(stated),
            locations=tuple(sorted({c.location for c in same})),
            dependencies=tuple(sorted(edges)),
            local=local,
        )
        if any(c.direct for c in same):
            direct.add(purl)

    if root_ref in packages:  # a third-party package of the project's own purl
        root_ref = f"conveyor:project/{project.name}"

    def present(refs: Iterable[str], of: str) -> tuple[str, ...]:
        out = {root_ref if r in selves else r for r in refs}
        return tuple(sorted(r for r in out if r != of and (r in packages or r == root_ref)))

    packages = {ref: _replace_edges(p, present(p.dependencies, ref)) for ref, p in packages.items()}
    members = {ref: p for ref, p in packages.items() if p.local}
    third = {ref: p for ref, p in packages.items() if not p.local}

    wanted = set(present(root_edges, root_ref)) | (direct & third.keys())
    depended = {d for p in packages.values() for d in p.dependencies}
    wanted |= {ref for ref in third if ref not in depended}
    wanted.discard(root_ref)
    # What a cycle leaves unreachable hangs from the root too (in ref order).
    reached = _reachable([*wanted, *members], packages)
    for ref in sorted(third):
        if ref not in reached:
            wanted.add(ref)
            reached |= _reachable([ref], packages)

    root_license = licenses.get(project.purl or "")
    return Graph(
        project=project,
        root_ref=root_ref,
        root_license=license_of(root_license),
        dependencies=tuple(sorted(wanted)),
        members=tuple(members[r] for r in sorted(members)),
        packages=tuple(third[r] for r in sorted(third)),
    )


def _replace_edges(package: Package, edges: tuple[str, ...]) -> Package:
    return package if edges == package.dependencies else replace(package, dependencies=edges)


def _reachable(starts: Iterable[str], packages: Mapping[str, Package]) -> set[str]:
    seen: set[str] = set()
    pending = list(starts)
    while pending:
        ref = pending.pop()
        if ref in seen or ref not in packages:
            continue
        seen.add(ref)
        pending.extend(packages[ref].dependencies)
    return seen


# When -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Creation:
    """When the document is made, and whether its identity must come from its content
    (SOURCE_DATE_EPOCH set: a reproducible build) or be random."""

    time: datetime
    reproducible: bool


def creation(environ: Mapping[str, str] | None = None) -> Creation:
    """SOURCE_DATE_EPOCH's instant when it is set (reproducible-builds.org's convention),
    else now; to the second, in UTC. A value that is not a whole number of seconds is
    an error, as the convention asks."""
    env = os.environ if environ is None else environ
    value = env.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return Creation(datetime.now(UTC).replace(microsecond=0), reproducible=False)
    try:
        seconds = int(value.strip())
        if not value.strip().isdigit():
            raise ValueError(value)
        return Creation(datetime.fromtimestamp(seconds, UTC), reproducible=True)
    except (ValueError, OverflowError, OSError):
        raise EnvironmentProblem(
            f"SOURCE_DATE_EPOCH={value!r} is not a time: it must be a whole number of "
            "seconds since 1970-01-01 UTC"
        ) from None
