"""Which components of the inventory known advisories affect, and what to upgrade to.

For each pinned third-party component, the advisories of its package (from the offline
database, or the OSV API with `--online`) are matched with the ecosystem's own version
order (`conveyor.deps.osv`). Advisories that are one vulnerability under several names
(a PYSEC record and the GHSA record it aliases, both naming the CVE) become one finding:
records are grouped by the union of their ids and aliases. A finding's severity is the
worst of its records'.

The fix of a component is the lowest version, above the pinned one, that none of its
findings affects: the candidates are the versions the advisories say fix them, tried in
the ecosystem's order. When none fixes all, there is no fix (an advisory open at the top,
or one only a `last_affected` bounds with nothing above it in the data).

An advisory set aside (`deps.ignore`, or `--ignore ID --reason TEXT`) by any of its ids
is reported as ignored and does not count; one whose `until` date has passed counts
again, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from conveyor.deps.components import Component
from conveyor.deps.osv import RATINGS, Advisory, Affected, Severity, affected_entry
from conveyor.deps.versions import package_key, version_key

Matches = dict[str, list[tuple[Advisory, Mapping[str, Any]]]]
"""Package key -> the advisories naming that package, each with its `affected[]` entry."""


class Source(Protocol):
    """Where advisories come from: the offline database, or the OSV API."""

    @property
    def ecosystems(self) -> frozenset[str] | None:
        """The ecosystems it has advisories of (None: every ecosystem)."""

    def find(self, ecosystem: str, components: Sequence[Component]) -> Matches:
        """The advisories naming the packages of `components` (all of `ecosystem`)."""


@dataclass(frozen=True)
class Exemption:
    """An advisory set aside: by which of its ids, why, until when (None: for good)."""

    id: str
    reason: str
    until: dt.date | None = None

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and self.until < today


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerability of one component: every advisory that names it, merged."""

    id: str
    """The id shown: a GHSA id when there is one, else the first record's id."""
    aliases: tuple[str, ...]
    """Every other id and alias, sorted."""
    severity: Severity
    summary: str
    url: str
    records: tuple[Advisory, ...]
    """The records merged into it."""
    fixed_in: str | None
    """The lowest version above the pinned one that it does not affect (None: no fix)."""
    ignored: Exemption | None = None
    """The exception that sets it aside (then it does not count)."""
    expired: Exemption | None = None
    """An exception for it whose date has passed (it counts again)."""

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    @property
    def counts(self) -> bool:
        """Whether it counts (not set aside)."""
        return self.ignored is None


@dataclass(frozen=True)
class ComponentFindings:
    """A component with the vulnerabilities that affect it, and the upgrade."""

    component: Component
    vulnerabilities: tuple[Vulnerability, ...]
    fix: str | None
    """The lowest version that fixes every one of them; None when none does."""

    @property
    def counted(self) -> list[Vulnerability]:
        return [v for v in self.vulnerabilities if v.counts]


@dataclass(frozen=True)
class AuditResult:
    """What an audit found, and what it could not look at."""

    findings: tuple[ComponentFindings, ...]
    """Affected components, in inventory order."""
    audited: int
    """Components matched against a database."""
    unpinned: tuple[Component, ...] = ()
    """Components without an exact version: they cannot be audited."""
    unreadable: tuple[Component, ...] = ()
    """Components whose version the ecosystem's order cannot read (matched by the
    advisories' exact version lists only)."""
    no_database: Mapping[str, int] = field(default_factory=dict)
    """Ecosystem -> components of it, for ecosystems with no advisory database."""
    expired: tuple[Exemption, ...] = ()
    """Exceptions whose date has passed."""

    @property
    def vulnerabilities(self) -> list[tuple[Component, Vulnerability]]:
        """Every (component, vulnerability) that counts, at every severity."""
        return [(f.component, v) for f in self.findings for v in f.counted]

    def at_least(self, rating: str) -> list[tuple[Component, Vulnerability]]:
        """The vulnerabilities that count rated `rating` or worse, and those of unknown
        severity (which could be anything)."""
        limit = RATINGS.index(rating)
        return [
            (c, v)
            for c, v in self.vulnerabilities
            if v.severity.rank <= limit or v.severity.rating == "unknown"
        ]


def fingerprint(component: Component, vulnerability: Vulnerability) -> str:
    """What stays the same for this vulnerability of this package in this lockfile
    across upgrades that do not fix it and aliases learnt later: the package (not its
    version), the lockfile and the lowest of its records' ids."""
    import hashlib

    first = min(r.id for r in vulnerability.records)
    key = "\0".join((str(component.ecosystem), component.name.lower(), component.lockfile, first))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def exceptions(
    configured: Iterable[tuple[str, str, str | None]], extra: Iterable[tuple[str, str]] = ()
) -> list[Exemption]:
    """The exceptions of `deps.ignore` ((id, reason, until as ISO date)) and of the
    command line ((id, reason), for good)."""
    out = [Exemption(i, r, dt.date.fromisoformat(u) if u else None) for i, r, u in configured]
    out += [Exemption(i, r) for i, r in extra]
    return out


def audit(
    components: Sequence[Component],
    source: Source,
    ignore: Sequence[Exemption] = (),
    *,
    today: dt.date | None = None,
) -> AuditResult:
    """Match `components` against `source`'s advisories."""
    today = today or dt.date.today()
    available = source.ecosystems
    unpinned: list[Component] = []
    unreadable: list[Component] = []
    no_database: dict[str, int] = {}
    by_ecosystem: dict[str, list[Component]] = {}
    seen: set[tuple[str, str, str | None, str]] = set()
    for c in components:
        if c.local:
            continue  # the workspace's own packages are not third-party code
        if c.version is None:
            unpinned.append(c)
            continue
        ident = (str(c.ecosystem), c.name, c.version, c.lockfile)
        if ident in seen:
            continue
        seen.add(ident)
        eco = str(c.ecosystem)
        if available is not None and eco not in available:
            no_database[eco] = no_database.get(eco, 0) + 1
            continue
        by_ecosystem.setdefault(eco, []).append(c)
    active = [e for e in ignore if not e.expired(today)]
    expired = [e for e in ignore if e.expired(today)]
    found: dict[int, ComponentFindings] = {}
    order = {id(c): i for i, c in enumerate(components)}
    audited = 0
    for eco, comps in by_ecosystem.items():
        matches = source.find(eco, comps)
        entries: dict[tuple[str, int], Affected] = {}
        for c in comps:
            audited += 1
            assert c.version is not None
            if version_key(eco, c.version) is None:
                unreadable.append(c)
            named = matches.get(package_key(eco, c.name), [])
            if not named:
                continue
            result = _component(c, eco, named, entries, active, expired)
            if result is not None:
                found[order[id(c)]] = result
    return AuditResult(
        findings=tuple(found[i] for i in sorted(found)),
        audited=audited,
        unpinned=tuple(unpinned),
        unreadable=tuple(unreadable),
        no_database=no_database,
        expired=tuple(expired),
    )


def _component(
    c: Component,
    eco: str,
    named: list[tuple[Advisory, Mapping[str, Any]]],
    entries: dict[tuple[str, int], Affected],
    active: Sequence[Exemption],
    expired: Sequence[Exemption],
) -> ComponentFindings | None:
    assert c.version is not None
    hits: dict[str, tuple[Advisory, list[Affected]]] = {}
    for advisory, entry in named:
        # Keyed by the entry object, not the advisory: a source hands the same object
        # for the same entry text in several records (their matchers are the same).
        name = entry.get("name") if isinstance(entry.get("name"), str) else c.name
        cached = entries.get((str(name), id(entry)))
        if cached is None:
            cached = entries[(str(name), id(entry))] = affected_entry(eco, str(name), entry)
        record = hits.setdefault(advisory.id, (advisory, []))
        record[1].append(cached)
    affecting = {
        ident: (advisory, affected)
        for ident, (advisory, affected) in hits.items()
        if any(a.affects(c.version) for a in affected)
    }
    if not affecting:
        return None
    groups = _merge([advisory for advisory, _ in affecting.values()])
    current = version_key(eco, c.version)
    candidates = _candidates(eco, [a for _, affected in affecting.values() for a in affected])
    above = [v for v in candidates if current is None or version_key(eco, v) > current]
    vulnerabilities = []
    for group in groups:
        group_affected = [a for advisory in group for a in affecting[advisory.id][1]]
        fixed_in = next((v for v in above if not any(a.affects(v) for a in group_affected)), None)
        vulnerabilities.append(_vulnerability(group, fixed_in, active, expired))
    # Below the highest of the vulnerabilities' own fixes, one of them is still there.
    fix = None
    if all(v.fixed_in is not None for v in vulnerabilities):
        start = max(above.index(v.fixed_in) for v in vulnerabilities if v.fixed_in)
        every = [a for _, affected in affecting.values() for a in affected]
        fix = next((v for v in above[start:] if not any(a.affects(v) for a in every)), None)
    vulnerabilities.sort(key=lambda v: (v.severity.rank, -(v.severity.score or 0), v.id))
    return ComponentFindings(c, tuple(vulnerabilities), _spelled(eco, c.version, fix))


def _candidates(eco: str, affected: Sequence[Affected]) -> list[str]:
    """The fixed versions of `affected`, lowest first (each once)."""
    unique: dict[Any, str] = {}
    for a in affected:
        for v in a.fixed:
            key = version_key(eco, v)
            if key is not None:
                unique.setdefault(key, v)
    try:
        ordered = sorted(unique)
    except TypeError:  # keys a library cannot compare as tuples: one pair at a time
        ordered = sorted(unique, key=functools.cmp_to_key(_compare))
    return [unique[k] for k in ordered]


def _compare(a: Any, b: Any) -> int:
    return -1 if a < b else 1 if b < a else 0


def _spelled(eco: str, pinned: str, fix: str | None) -> str | None:
    """A Go fix with the 'v' Go writes (OSV leaves it out)."""
    if fix is not None and eco == "Go" and pinned.startswith("v") and not fix.startswith("v"):
        return "v" + fix
    return fix


def _merge(records: Sequence[Advisory]) -> list[list[Advisory]]:
    """Records grouped by shared ids or aliases (union-find over every id)."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for record in records:
        first = root(record.id.upper())
        for alias in record.aliases:
            other = root(alias.upper())
            if other != first:
                parent[other] = first
    groups: dict[str, list[Advisory]] = {}
    for record in records:
        groups.setdefault(root(record.id.upper()), []).append(record)
    return list(groups.values())


def _vulnerability(
    group: Sequence[Advisory],
    fixed_in: str | None,
    active: Sequence[Exemption],
    expired: Sequence[Exemption],
) -> Vulnerability:
    ids = {i for record in group for i in record.ids}
    main = min(group, key=lambda r: (not r.id.startswith("GHSA-"), r.id))
    shown = main.id
    worst = (
        group[0]
        if len(group) == 1
        else min(group, key=lambda r: (r.severity.rank, -(r.severity.score or 0)))
    )
    ignored = lapsed = None
    if active or expired:
        upper = {i.upper() for i in ids}
        ignored = next((e for e in active if e.id.upper() in upper), None)
        lapsed = next((e for e in expired if e.id.upper() in upper), None)
    return Vulnerability(
        id=shown,
        aliases=tuple(sorted(ids - {shown}, key=_alias_order)),
        severity=worst.severity,
        summary=main.summary or next((r.summary for r in group if r.summary), ""),
        url=main.url,
        records=tuple(sorted(group, key=lambda r: r.id)),
        fixed_in=fixed_in,
        ignored=ignored,
        expired=lapsed if ignored is None else None,
    )


def _alias_order(ident: str) -> tuple[int, str]:
    """CVE ids first, then the other databases' ids."""
    return (0 if ident.startswith("CVE-") else 1, ident)


class DatabaseSource:
    """The offline database as an audit's source."""

    def __init__(self, database: Any) -> None:
        self.database = database

    @property
    def ecosystems(self) -> frozenset[str] | None:
        found: frozenset[str] = self.database.ecosystems
        return found

    def find(self, ecosystem: str, components: Sequence[Component]) -> Matches:
        keys = {package_key(ecosystem, c.name) for c in components}
        found: Matches = self.database.lookup(ecosystem, keys)
        return found


@dataclass(frozen=True)
class WorkspaceAudit:
    """An audit of a workspace's lockfiles."""

    result: AuditResult
    lockfiles: tuple[str, ...]
    """The lockfiles read (workspace-relative)."""
    errors: tuple[str, ...]
    """'path:line:col: message' for each lockfile that could not be read."""


class NoDatabase(Exception):
    """No advisory database has been imported (and the audit is not online)."""


def audit_workspace(
    root: str,
    files: Sequence[str],
    source: Source,
    ignore: Sequence[Exemption] = (),
    *,
    under: str = "",
    today: dt.date | None = None,
) -> WorkspaceAudit:
    """Audit the lockfiles among `files` (workspace-relative; those below `under` when
    it is given), their components located at their lockfile lines. Raises NoDatabase
    when `source` has no ecosystem at all."""
    from conveyor.deps.inventory import read_inventory

    if source.ecosystems is not None and not source.ecosystems:
        raise NoDatabase("no advisory database has been imported")
    prefix = under.strip("/") + "/" if under.strip("/.") else ""
    chosen = [f for f in files if f.startswith(prefix)] if prefix else list(files)
    inventory = read_inventory(root, chosen)
    result = audit(inventory.components, source, ignore, today=today)
    return WorkspaceAudit(
        result=result,
        lockfiles=tuple(lock.path for lock in inventory.lockfiles),
        errors=tuple(f"{e.location}: {e.message}" for e in inventory.errors),
    )
