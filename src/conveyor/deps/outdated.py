"""Outdated packages: each PyPI and npm component's pinned version against the newest
its registry offers, and how far behind it is (major, minor or patch).

The newest PyPI version is the greatest PEP 440 version with a file not yanked,
pre-releases left out unless the pinned version is one; npm's is the registry's
`latest` tag. Distance compares PEP 440 release numbers (PyPI) or semver's
major.minor.patch (npm). Each package is asked once, concurrently (a bounded pool), and
a package the registry cannot answer for gets its one-line reason, not a failed run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from conveyor.deps.components import Component, Ecosystem
from conveyor.deps.registries import (
    DEFAULT_TIMEOUT,
    Registry,
    RegistryError,
    Transport,
    npm_latest,
    pypi_releases,
    urllib_transport,
)

WORKERS = 8
"""Requests in flight at once, at most."""

CHECKED = (Ecosystem.PYPI, Ecosystem.NPM)
"""The ecosystems whose registries `deps outdated` can ask."""


class Distance(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"

    @property
    def rank(self) -> int:
        return {"major": 3, "minor": 2, "patch": 1}[self.value]


@dataclass(frozen=True)
class Outdated:
    """One package: the version pinned, the newest offered, how far apart; `error` why
    the registry could not say."""

    name: str
    ecosystem: Ecosystem
    current: str
    newest: str | None
    distance: Distance | None
    """None: up to date (or newer than the registry's newest)."""
    locations: tuple[str, ...]
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ecosystem": str(self.ecosystem),
            "current": self.current,
            "newest": self.newest,
            "distance": None if self.distance is None else str(self.distance),
            "locations": list(self.locations),
            "error": self.error,
        }


def newest_pypi(releases: Iterable[tuple[str, bool]], current: str) -> str | None:
    """The newest of (version, yanked) pairs: yanked ones left out, pre-releases too
    unless `current` is one."""
    from packaging.version import InvalidVersion, Version

    try:
        pre = Version(current).is_prerelease
    except InvalidVersion:
        pre = False
    best: Version | None = None
    for text, yanked in releases:
        if yanked:
            continue
        try:
            v = Version(text)
        except InvalidVersion:
            continue
        if v.is_prerelease and not pre:
            continue
        if best is None or v > best:
            best = v
    return None if best is None else str(best)


def distance(ecosystem: Ecosystem, current: str, newest: str) -> Distance | None:
    """How far `current` is behind `newest`: the first of major, minor and patch that
    differs (a pre-release behind its release counts as patch); None when it is not
    behind, or either cannot be read as a version."""
    if ecosystem is Ecosystem.NPM:
        return _semver_distance(current, newest)
    from packaging.version import InvalidVersion, Version

    try:
        cur, new = Version(current), Version(newest)
    except InvalidVersion:
        return None
    if not new > cur:
        return None
    return _first_apart((*cur.release, 0, 0)[:3], (*new.release, 0, 0)[:3])


def _semver_distance(current: str, newest: str) -> Distance | None:
    from univers.versions import InvalidVersion, SemverVersion

    try:
        cur = SemverVersion(current.removeprefix("v"))
        new = SemverVersion(newest.removeprefix("v"))
    except (InvalidVersion, ValueError, TypeError):
        return None
    if not new > cur:
        return None
    return _first_apart(
        (int(cur.major), int(cur.minor), int(cur.patch)),
        (int(new.major), int(new.minor), int(new.patch)),
    )


def _first_apart(cur: tuple[int, ...], new: tuple[int, ...]) -> Distance:
    for i, kind in enumerate((Distance.MAJOR, Distance.MINOR, Distance.PATCH)):
        if cur[i] != new[i]:
            return kind
    return Distance.PATCH


@dataclass(frozen=True)
class OutdatedReport:
    """Every package asked about, in the inventory's order, and the components not
    asked (other ecosystems, the workspace's own, no version pinned)."""

    packages: tuple[Outdated, ...]
    not_checked: int

    @property
    def outdated(self) -> list[Outdated]:
        return [p for p in self.packages if p.distance is not None]

    @property
    def errors(self) -> list[Outdated]:
        return [p for p in self.packages if p.error is not None]


def check(
    components: Sequence[Component],
    *,
    pypi: Registry | None,
    npm: Registry | None,
    transport: Transport = urllib_transport,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = WORKERS,
) -> OutdatedReport:
    """Ask the registries about each PyPI component (`pypi`) and npm one (`npm`); an
    ecosystem whose registry is None is not asked."""
    wanted: dict[tuple[Ecosystem, str, str], list[Component]] = {}
    skipped = 0
    for c in components:
        registry = {Ecosystem.PYPI: pypi, Ecosystem.NPM: npm}.get(c.ecosystem)
        if registry is None or c.local or c.version is None:
            skipped += 1
            continue
        wanted.setdefault((c.ecosystem, _key(c), c.version), []).append(c)

    def ask(key: tuple[Ecosystem, str, str]) -> Outdated:
        ecosystem, _name, version = key
        same = wanted[key]
        name = same[0].name
        locations = tuple(dict.fromkeys(c.location for c in same))
        try:
            if ecosystem is Ecosystem.PYPI:
                assert pypi is not None
                releases = pypi_releases(pypi, name, transport, timeout)
                newest = newest_pypi(((r.version, r.yanked) for r in releases), version)
                if newest is None:
                    raise RegistryError(f"the index {pypi.url} offers no release of it")
            else:
                assert npm is not None
                newest = npm_latest(npm, name, transport, timeout)
        except RegistryError as exc:
            return Outdated(name, ecosystem, version, None, None, locations, str(exc))
        return Outdated(
            name, ecosystem, version, newest, distance(ecosystem, version, newest), locations
        )

    keys = list(wanted)
    if not keys:
        return OutdatedReport((), skipped)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys)))) as pool:
        found = tuple(pool.map(ask, keys))
    return OutdatedReport(found, skipped)


def _key(c: Component) -> str:
    if c.ecosystem is Ecosystem.PYPI:
        from conveyor.deps.ecosystems.pypi import normalise

        return normalise(c.name)
    return c.name
