"""The `vulnerabilities` gate: known vulnerabilities of the packages the lockfiles pin
(`conveyor deps audit`), at most so many per severity, and with a `baseline`, only those
not already known.

A job's gate audits the lockfiles under its `dir` (the whole workspace for a job at the
root); the pipeline's audits the whole workspace, after the run (a job may have written
a lockfile). What each audit found is kept in the run directory (`vulnerabilities.json`),
so that `conveyor gates` judges a past run on what it found, with the thresholds, the
baseline and the `deps.ignore` exceptions as they are now.

A vulnerability is known to a baseline when the baseline lists the same package (any
version: an upgrade that does not fix it leaves it known) in the same lockfile under
any of its ids or aliases (an alias learnt later leaves it known too).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from conveyor.fsutil import atomic_write
from conveyor.model import GateResult, Pipeline, VulnerabilitiesGate
from conveyor.units import first_few

RATINGS = ("critical", "high", "medium", "low", "none", "unknown")
STORED = "vulnerabilities.json"
"""Where a run keeps what its audits found (in its run directory)."""
BASELINE_VERSION = 1
_IMPORT = "import an advisory database first: conveyor deps db import PATH"


@dataclass(frozen=True)
class Found:
    """One vulnerability of one component, as the gate and its baseline need it."""

    package: str
    """The package URL without its version ('pkg:pypi/jinja2')."""
    name: str
    version: str
    lockfile: str
    line: int | None
    id: str
    ids: tuple[str, ...]
    """Its id and every alias."""
    rating: str
    fingerprint: str

    @property
    def where(self) -> str:
        return f"{self.lockfile}:{self.line}" if self.line else self.lockfile


@dataclass(frozen=True)
class Audited:
    """What one audit found (every vulnerability, set aside or not), and what it could
    not look at."""

    found: tuple[Found, ...] = ()
    not_audited: tuple[str, ...] = ()
    """Ecosystems with components but no advisory database."""
    problem: str = ""
    """Why there is no audit at all (no database), when there is none."""


Audits = Callable[[str], Audited]
"""The audit of a scope (a job's name, or 'pipeline')."""


def evaluate(
    gate: VulnerabilitiesGate,
    scope: str,
    audits: Audits | None,
    root: str,
    ignore: Sequence[tuple[str, str, str | None]],
    *,
    today: dt.date | None = None,
) -> list[GateResult]:
    """One GateResult per severity `gate.max` limits."""
    if not gate.max:
        return []
    audited = audits(scope) if audits is not None else Audited(problem="not audited")
    if audited.problem:
        return [
            GateResult(
                gate="vulnerabilities",
                scope=scope,
                level=gate.level,
                passed=False,
                measured="not audited",
                threshold="an advisory database",
                detail=f"{audited.problem}; {_IMPORT}",
            )
        ]
    today = today or dt.date.today()
    counted, notes = _counted(audited.found, ignore, today)
    if gate.baseline:
        try:
            known = load_baseline(root, gate.baseline)
        except ValueError as exc:
            return [
                GateResult(
                    gate="vulnerabilities",
                    scope=scope,
                    level=gate.level,
                    passed=False,
                    measured="unreadable baseline",
                    threshold="a vulnerabilities baseline",
                    detail=str(exc),
                )
            ]
        if known is None:
            notes.append(f"no baseline at {gate.baseline} yet: every vulnerability counts")
        else:
            counted = [f for f in counted if not known.knows(f)]
    if audited.not_audited:
        notes.append(f"not audited: {', '.join(audited.not_audited)} (no advisory database)")
    limits = dict(gate.max)
    loose = [f for f in counted if f.rating not in limits]
    if loose:
        ratings = sorted({f.rating for f in loose}, key=RATINGS.index)
        notes.append(f"{len(loose)} more of severity {', '.join(ratings)} not limited by this gate")
    new = " new" if gate.baseline and known_exists(root, gate.baseline) else ""
    out = []
    for rating in RATINGS:
        if rating not in limits:
            continue
        hits = [f for f in counted if f.rating == rating]
        detail = first_few([f"{f.name} {f.version} {f.id} ({f.where})" for f in hits])
        extra = "; ".join(notes)
        out.append(
            GateResult(
                gate=f"vulnerabilities.{rating}",
                scope=scope,
                level=gate.level,
                passed=len(hits) <= limits[rating],
                measured=f"{len(hits)}{new}",
                threshold=f"<= {limits[rating]}",
                detail="; ".join(p for p in (detail, extra) if p),
            )
        )
    return out


def _counted(
    found: Sequence[Found], ignore: Sequence[tuple[str, str, str | None]], today: dt.date
) -> tuple[list[Found], list[str]]:
    """The vulnerabilities that count (not set aside by an exception in force), and a
    note for each exception that has expired but would have set one aside."""
    active = {
        i.upper() for i, _r, until in ignore if not until or dt.date.fromisoformat(until) >= today
    }
    lapsed = {
        i.upper(): until
        for i, _r, until in ignore
        if until and dt.date.fromisoformat(until) < today
    }
    counted, notes = [], []
    for f in found:
        ids = {i.upper() for i in f.ids}
        if ids & active:
            continue
        counted.append(f)
        for ident in sorted(ids & set(lapsed)):
            notes.append(f"the exception for {ident} expired on {lapsed[ident]}: it counts again")
    return counted, sorted(set(notes))


# -- the audits ---------------------------------------------------------------------------


class LiveAudits:
    """Audits of the workspace as it is now, one per directory, kept in `run_dir` when
    given (a run's), else only in memory (`conveyor gates` on a run that kept none)."""

    def __init__(
        self,
        pipeline: Pipeline,
        environ: Mapping[str, str],
        run_dir: str | None = None,
        files: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.environ = environ
        self.run_dir = run_dir
        self._files = files
        self._lock = threading.Lock()
        self._by_dir: dict[str, Audited] = {}
        self._by_scope: dict[str, Audited] = {}

    def __call__(self, scope: str) -> Audited:
        under = self._dir(scope)
        with self._lock:
            audited = self._by_dir.get(under)
            if audited is None or scope == "pipeline":
                # The pipeline's audit is of the workspace after the run: not a job's
                # earlier one of the same directory.
                audited = self._by_dir[under] = self._audit(under)
            self._by_scope[scope] = audited
            if self.run_dir is not None:
                save(self.run_dir, self._by_scope)
        return audited

    def _dir(self, scope: str) -> str:
        job = next((j for j in self.pipeline.jobs if j.name == scope), None)
        return "" if job is None or job.dir in ("", ".") else job.dir

    def _audit(self, under: str) -> Audited:
        from conveyor.deps.advisories import Database, DatabaseError, database_dir
        from conveyor.deps.audit import DatabaseSource, NoDatabase, audit_workspace

        try:
            database = Database(database_dir(self.environ))
        except DatabaseError as exc:
            return Audited(problem=str(exc))
        try:
            files = (
                self._files() if self._files is not None else _workspace_files(self.pipeline.root)
            )
            done = audit_workspace(self.pipeline.root, files, DatabaseSource(database), under=under)
        except NoDatabase:
            return Audited(problem="no advisory database has been imported")
        except DatabaseError as exc:
            return Audited(problem=str(exc))
        finally:
            database.close()
        return audited_of(done.result)


def _workspace_files(root: str) -> list[str]:
    from conveyor.workspace.listing import workspace_files

    return sorted(workspace_files(root))


def audited_of(result: object) -> Audited:
    """An audit's result (`conveyor.deps.audit.AuditResult`) as the gate keeps it."""
    from conveyor.deps.audit import AuditResult, fingerprint

    assert isinstance(result, AuditResult)
    found = []
    for f in result.findings:
        c = f.component
        package = c.purl.split("@", 1)[0] if c.version else c.purl
        for v in f.vulnerabilities:
            found.append(
                Found(
                    package=package,
                    name=c.name,
                    version=c.version or "",
                    lockfile=c.lockfile,
                    line=c.line,
                    id=v.id,
                    ids=v.ids,
                    rating=v.severity.rating,
                    fingerprint=fingerprint(c, v),
                )
            )
    return Audited(found=tuple(found), not_audited=tuple(sorted(result.no_database)))


def save(run_dir: str, by_scope: Mapping[str, Audited]) -> None:
    """Keep a run's audits (`vulnerabilities.json` in its run directory)."""
    data = {
        "version": 1,
        "scopes": {
            scope: {
                "found": [asdict(f) for f in a.found],
                "not_audited": list(a.not_audited),
                "problem": a.problem,
            }
            for scope, a in sorted(by_scope.items())
        },
    }
    atomic_write(os.path.join(run_dir, STORED), json.dumps(data, indent=1) + "\n")


def stored(run_dir: str) -> dict[str, Audited] | None:
    """A past run's audits, or None when it kept none."""
    try:
        with open(os.path.join(run_dir, STORED), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != 1:
        return None
    out = {}
    for scope, entry in (data.get("scopes") or {}).items():
        found = tuple(Found(**{**f, "ids": tuple(f["ids"])}) for f in entry.get("found", []))
        out[scope] = Audited(
            found=found,
            not_audited=tuple(entry.get("not_audited", [])),
            problem=entry.get("problem", ""),
        )
    return out


class PastAudits:
    """A past run's audits; a scope it did not audit (its gate came later) is audited
    now."""

    def __init__(self, kept: Mapping[str, Audited], live: LiveAudits) -> None:
        self.kept = kept
        self.live = live

    def __call__(self, scope: str) -> Audited:
        found = self.kept.get(scope)
        return found if found is not None else self.live(scope)


# -- the baseline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The vulnerabilities a baseline lists: fingerprints, and (package, lockfile) ->
    the ids known for it."""

    fingerprints: frozenset[str]
    ids: Mapping[tuple[str, str], frozenset[str]]

    def knows(self, f: Found) -> bool:
        if f.fingerprint in self.fingerprints:
            return True
        known = self.ids.get((f.package, f.lockfile))
        return known is not None and bool(known & {i.upper() for i in f.ids})


def known_exists(root: str, path: str) -> bool:
    return os.path.isfile(os.path.join(root, path))


def load_baseline(root: str, path: str) -> Baseline | None:
    """The vulnerabilities baseline at `path` (workspace-relative), None when it does
    not exist; ValueError when it is not one."""
    try:
        with open(os.path.join(root, path), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a vulnerabilities baseline ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise ValueError(
            f'{path}: not a vulnerabilities baseline (expected {{"vulnerabilities": [...]}})'
        )
    if data.get("version") != BASELINE_VERSION:
        raise ValueError(
            f"{path}: a vulnerabilities baseline of version {data.get('version')!r}; this "
            f"Conveyor reads version {BASELINE_VERSION}"
        )
    prints: set[str] = set()
    ids: dict[tuple[str, str], set[str]] = {}
    for entry in data["vulnerabilities"]:
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: an entry is not an object: {entry!r:.80}")
        if isinstance(entry.get("fingerprint"), str):
            prints.add(entry["fingerprint"])
        package, lockfile, listed = entry.get("package"), entry.get("lockfile"), entry.get("ids")
        if isinstance(package, str) and isinstance(lockfile, str) and isinstance(listed, list):
            ids.setdefault((package, lockfile), set()).update(
                i.upper() for i in listed if isinstance(i, str)
            )
    return Baseline(frozenset(prints), {k: frozenset(v) for k, v in ids.items()})


def write_baseline(root: str, path: str, found: Sequence[Found]) -> int:
    """Record `found` as known (`conveyor gates --write-baseline`); how many entries.
    One vulnerability a line, sorted by lockfile, package and id, for a diff a line."""
    entries = {
        f.fingerprint: {
            "fingerprint": f.fingerprint,
            "package": f.package,
            "lockfile": f.lockfile,
            "id": f.id,
            "ids": sorted(set(f.ids)),
        }
        for f in found
    }
    ordered = sorted(entries.values(), key=lambda e: (e["lockfile"], e["package"], e["id"]))
    lines = ",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in ordered)
    body = f"[\n{lines}\n  ]" if ordered else "[]"
    data = f'{{\n  "version": {BASELINE_VERSION},\n  "vulnerabilities": {body}\n}}\n'
    atomic_write(os.path.join(root, path), data, makedirs=True)
    return len(ordered)
