"""The two things a dependency file says: a manifest's `Requirement` (a name and the
range asked for) and a lockfile's `Component` (a name and the exact version pinned)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum


class Ecosystem(StrEnum):
    """A package ecosystem, spelled as OSV spells it (so a component can be looked up in
    the vulnerability database without translation)."""

    NPM = "npm"
    PYPI = "PyPI"
    CARGO = "crates.io"
    GO = "Go"
    MAVEN = "Maven"
    RUBYGEMS = "RubyGems"
    NUGET = "NuGet"
    PACKAGIST = "Packagist"


PURL_TYPES: dict[Ecosystem, str] = {
    Ecosystem.NPM: "npm",
    Ecosystem.PYPI: "pypi",
    Ecosystem.CARGO: "cargo",
    Ecosystem.GO: "golang",
    Ecosystem.MAVEN: "maven",
    Ecosystem.RUBYGEMS: "gem",
    Ecosystem.NUGET: "nuget",
    Ecosystem.PACKAGIST: "composer",
}
"""The package-url type of each ecosystem (purl-spec's PURL-TYPES)."""


class Scope(StrEnum):
    """Whether a component ships with the project or only serves its development."""

    PROD = "prod"
    DEV = "dev"


@dataclass(frozen=True)
class Requirement:
    """One dependency a manifest declares.

    `name` as written in the manifest (a Cargo rename resolved to the crate's name);
    `spec` the range asked for ('^4.17.21', '>=2,<3', 'v1.9.1'), '' when none is given;
    `section` where it is declared, in the manifest's own terms ('devDependencies',
    'project.optional-dependencies.test', 'dev-packages', 'require'); `manifest` the
    workspace-relative path; `line` 1-based, when the format lets it be known."""

    name: str
    spec: str
    section: str
    manifest: str
    ecosystem: Ecosystem
    line: int | None = None

    @property
    def declared(self) -> str:
        """'manifest:line', or the manifest alone when the line is not known."""
        return self.manifest if self.line is None else f"{self.manifest}:{self.line}"


@dataclass(frozen=True)
class Component:
    """One package a lockfile pins.

    `version` the exact version installed, None when the lockfile records none (an npm
    link to a workspace member); `lockfile` the workspace-relative file it was read from;
    `direct` True when the project itself asks for it, False when only another package
    does, None when the file does not say (poetry.lock, Pipfile.lock, npm's lockfile
    version 1); `declared` where a direct dependency is declared ('go.mod:7',
    'package.json'), when the file says; `local` for the workspace's own packages (a Cargo
    workspace member, uv's project, an npm workspace link), which are not third-party
    code.

    `line` the 1-based line of the lockfile where the entry starts (SARIF points there),
    when the format lets it be known; `scope` prod or dev, None when the file does not
    say; `hashes` the digests the lockfile records for the package's files, each
    'algorithm:hex' ('sha256:9f86…', 'sha512:…'; npm's SRI base64 decoded to hex);
    `license` the license as the lockfile's metadata gives it (composer.lock, npm v2+),
    not normalised; `dependencies` the `ref`s of the components this one depends on,
    when the lockfile keeps the edges (None when it does not: then `--tree` cannot be
    drawn)."""

    name: str
    version: str | None
    ecosystem: Ecosystem
    lockfile: str
    direct: bool | None = None
    declared: str | None = None
    local: bool = False
    line: int | None = None
    scope: Scope | None = None
    hashes: tuple[str, ...] = ()
    license: str | None = None
    dependencies: tuple[str, ...] | None = None

    @property
    def purl(self) -> str:
        """The package URL ('pkg:pypi/jinja2@2.10', 'pkg:npm/%40babel/core@7.24.0',
        'pkg:maven/org.slf4j/slf4j-api@2.0.9'), as purl-spec normalises each type."""
        return _purl(self.ecosystem, self.name, self.version)

    @property
    def ref(self) -> str:
        """This component's identity within one lockfile (edges name it): the purl,
        which carries name and version, so two versions of one package are two refs."""
        return self.purl

    @property
    def location(self) -> str:
        """'lockfile:line', or the lockfile alone when the line is not known."""
        return self.lockfile if self.line is None else f"{self.lockfile}:{self.line}"


# Characters percent-encoding leaves as they are (RFC 3986's unreserved set).
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")


@functools.lru_cache(maxsize=1 << 16)
def _purl(ecosystem: Ecosystem, name: str, version: str | None) -> str:
    # Lockfile readers name every edge by its ref: the common npm, PyPI and crate names are
    # spelled here directly (packageurl's own path costs ~35 us a call, a 3,000-package
    # lockfile's budget several times over); tests check both spell them alike.
    if ecosystem is Ecosystem.NPM and version and _UNRESERVED.fullmatch(version):
        scope, _, base = name.rpartition("/")
        if _UNRESERVED.fullmatch(base) and (
            not scope or (scope[0] == "@" and _UNRESERVED.fullmatch(scope[1:]))
        ):
            at = f"%40{scope[1:]}/" if scope else ""
            return f"pkg:npm/{at}{base.lower()}@{version}"
    elif (
        ecosystem is Ecosystem.PYPI
        and version
        and _UNRESERVED.fullmatch(version)
        and _UNRESERVED.fullmatch(name)
    ):
        return f"pkg:pypi/{re.sub(r'[-_.]+', '-', name).lower()}@{version}"
    elif (
        ecosystem is Ecosystem.CARGO
        and version
        and _UNRESERVED.fullmatch(version)
        and _UNRESERVED.fullmatch(name)
    ):
        return f"pkg:cargo/{name}@{version}"  # a crate's name as written: case kept
    return _slow_purl(ecosystem, name, version)


def _slow_purl(ecosystem: Ecosystem, name: str, version: str | None) -> str:
    from packageurl import PackageURL

    kind = PURL_TYPES[ecosystem]
    namespace: str | None = None
    if kind == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif kind in ("npm", "composer", "golang") and "/" in name:
        namespace, name = name.rsplit("/", 1)
    if kind == "pypi":
        from conveyor.deps.ecosystems.pypi import normalise

        name = normalise(name)
    return str(PackageURL(type=kind, namespace=namespace, name=name, version=version).to_string())
