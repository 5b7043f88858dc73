"""The offline advisory database: OSV records imported from a zip or a directory (the
per-ecosystem `all.zip` exports the OSV project publishes, or any tree of `*.json`
records), indexed for lookups by ecosystem and package name.

    <cache>/osv/<ecosystem>.sqlite     one SQLite file per ecosystem

Each file holds every record that names a package of its ecosystem (trimmed to what an
audit shows: ids, summary, severity, dates, the advisory's URL) and one row per
`affected[]` entry of the ecosystem, keyed by the package name as the ecosystem compares
names (`conveyor.deps.versions.package_key`). An import builds each ecosystem's file
under a temporary name and renames it into place: a re-import replaces an ecosystem's
records in one step, readers see the old file or the new one, and an import killed
half-way leaves the old file as it was (its temporary is removed by the next import).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor.deps.osv import (
    SCORED,
    Advisory,
    RecordError,
    indexed_record,
    packages,
    parse_record,
)

SCHEMA = 2
"""The layout of an ecosystem's file; a file of another is refused (import it again)."""

_MAX_RECORD = 8 * 1024 * 1024
"""A record larger than this is not an advisory (a zip bomb's member): skipped."""


class DatabaseError(Exception):
    """The database cannot be read or written: what, and what to do."""


def database_dir(environ: Mapping[str, str] | None = None) -> str:
    """Where the advisory database lives: `osv/` under the cache directory
    ($CONVEYOR_CACHE_DIR, else $XDG_CACHE_HOME/conveyor, else ~/.cache/conveyor)."""
    from conveyor.cache.local import default_root

    return os.path.join(default_root(dict(environ) if environ is not None else None), "osv")


@dataclass(frozen=True)
class EcosystemStatus:
    """What the database holds for one ecosystem (`conveyor deps db status`)."""

    ecosystem: str
    records: int
    withdrawn: int
    packages: int
    imported: str
    """When it was imported (UTC, ISO 8601)."""
    newest: str
    """The newest `modified` among its records: how current the data is."""
    source: str
    """The path it was imported from."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did: per ecosystem, the records it now holds; the files skipped."""

    ecosystems: tuple[EcosystemStatus, ...]
    skipped: tuple[str, ...]
    """'path: why' for each file that was not an OSV record."""
    seconds: float


def import_records(path: str, directory: str, *, now: float | None = None) -> ImportReport:
    """Import every OSV record of `path` (a zip, a directory searched for `*.json`, or
    one JSON file) into `directory`, replacing the records of each ecosystem it has.
    Raises DatabaseError when `path` cannot be read or holds no record."""
    started = time.perf_counter()
    if not os.path.exists(path):
        raise DatabaseError(f"{path}: no such file or directory")
    by_ecosystem: dict[str, _Building] = {}
    skipped: list[str] = []
    os.makedirs(directory, exist_ok=True)
    _remove_stale(directory)
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    imported = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        for name, data in _read_all(path, skipped):
            try:
                record = parse_record(data, affected=False)
            except RecordError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            stored = _stored(data, record)
            named = packages(data)
            if not named:
                skipped.append(f"{name}: {record.id} names no package")
                continue
            for ecosystem in sorted({e.split(":", 1)[0] for e, *_ in named}):
                building = by_ecosystem.get(ecosystem)
                if building is None:
                    building = by_ecosystem[ecosystem] = _Building(directory, ecosystem)
                building.add(record, stored, [n for n in named if n[0].split(":")[0] == ecosystem])
        if not by_ecosystem:
            why = f" ({skipped[0]})" if skipped else ""
            raise DatabaseError(f"{path}: no OSV record found{why}")
        statuses = [b.finish(imported, os.path.abspath(path)) for b in by_ecosystem.values()]
    finally:
        for building in by_ecosystem.values():
            building.abandon()
    return ImportReport(
        ecosystems=tuple(sorted(statuses, key=lambda s: s.ecosystem)),
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
    )


def status(directory: str) -> list[EcosystemStatus]:
    """What the database in `directory` holds, one entry per ecosystem imported."""
    out = []
    for ecosystem, path in _files(directory).items():
        with _connect(path, ecosystem) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        out.append(
            EcosystemStatus(
                ecosystem=ecosystem,
                records=int(meta.get("records", 0)),
                withdrawn=int(meta.get("withdrawn", 0)),
                packages=int(meta.get("packages", 0)),
                imported=meta.get("imported", ""),
                newest=meta.get("newest", ""),
                source=meta.get("source", ""),
            )
        )
    return sorted(out, key=lambda s: s.ecosystem)


class Database:
    """The advisory database as an audit reads it: lookups by ecosystem and name."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._paths = _files(directory)
        self._open: dict[str, sqlite3.Connection] = {}

    @property
    def ecosystems(self) -> frozenset[str]:
        """The ecosystems imported."""
        return frozenset(self._paths)

    def lookup(
        self, ecosystem: str, keys: Iterable[str]
    ) -> dict[str, list[tuple[Advisory, Mapping[str, Any]]]]:
        """For each package key (`package_key`) of `ecosystem` that has advisories: the
        advisories (withdrawn ones left out) and their `affected[]` entry for it."""
        db = self._connection(ecosystem)
        if db is None:
            return {}
        wanted = sorted(set(keys))
        found: dict[str, list[tuple[Advisory, Mapping[str, Any]]]] = {}
        advisories: dict[str, Advisory | None] = {}
        # A GHSA record and its PYSEC twin often give a package the same ranges: the
        # same text is decoded once and its one object shared, which the audit's cache
        # of matchers is keyed by (a third of the PyPI database's entries are repeats).
        entries: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                "SELECT a.name, a.entry, r.id, r.record FROM affected a "
                f"JOIN advisories r ON r.id = a.id WHERE a.name IN ({marks}) "
                "AND r.withdrawn IS NULL ORDER BY a.name, r.id, a.rowid",
                chunk,
            ).fetchall()
            for name, entry, ident, record in rows:
                advisory = advisories.get(ident)
                if ident not in advisories:
                    advisory = advisories[ident] = indexed_record(json.loads(record))
                assert advisory is not None
                decoded = entries.get(entry)
                if decoded is None:
                    decoded = entries[entry] = json.loads(entry)
                found.setdefault(name, []).append((advisory, decoded))
        return found

    def close(self) -> None:
        for db in self._open.values():
            db.close()
        self._open.clear()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self, ecosystem: str) -> sqlite3.Connection | None:
        db = self._open.get(ecosystem)
        if db is None:
            path = self._paths.get(ecosystem)
            if path is None:
                return None
            db = self._open[ecosystem] = _open(path, ecosystem)
        return db


# -- building ---------------------------------------------------------------------------


class _Building:
    """One ecosystem's file being written under a temporary name."""

    def __init__(self, directory: str, ecosystem: str) -> None:
        self.ecosystem = ecosystem
        self.final = os.path.join(directory, _file_name(ecosystem))
        self.temp = os.path.join(directory, f".{_file_name(ecosystem)}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)
        self.db: sqlite3.Connection | None = sqlite3.connect(self.temp, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE advisories (
                id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn TEXT,
                record TEXT NOT NULL);
            CREATE TABLE affected (name TEXT NOT NULL, id TEXT NOT NULL, entry TEXT NOT NULL);
            """
        )
        self.db.execute("BEGIN")
        self.records = 0
        self.withdrawn = 0
        self.newest = ""
        self.names: set[str] = set()
        self.ids: set[str] = set()
        self.withdrawn_ids: set[str] = set()

    def add(
        self,
        record: Advisory,
        stored: str,
        named: Sequence[tuple[str, str, str, Mapping[str, Any]]],
    ) -> None:
        assert self.db is not None
        if record.id in self.ids:
            # The same record twice (a directory holding two copies): the later one wins.
            self.db.execute("DELETE FROM advisories WHERE id = ?", (record.id,))
            self.db.execute("DELETE FROM affected WHERE id = ?", (record.id,))
            self.records -= 1
            self.withdrawn -= record.id in self.withdrawn_ids
        self.ids.add(record.id)
        if record.withdrawn is not None:
            self.withdrawn_ids.add(record.id)
        self.db.execute(
            "INSERT INTO advisories (id, modified, withdrawn, record) VALUES (?, ?, ?, ?)",
            (record.id, record.modified, record.withdrawn, stored),
        )
        self.db.executemany(
            "INSERT INTO affected (name, id, entry) VALUES (?, ?, ?)",
            [(key, record.id, _entry(name, entry)) for _eco, name, key, entry in named],
        )
        self.names.update(key for _eco, _name, key, _entry in named)
        self.records += 1
        self.withdrawn += record.withdrawn is not None
        self.newest = max(self.newest, record.modified)

    def finish(self, imported: str, source: str) -> EcosystemStatus:
        assert self.db is not None
        records, withdrawn = self.records, self.withdrawn
        meta = {
            "schema": str(SCHEMA),
            "ecosystem": self.ecosystem,
            "records": str(records),
            "withdrawn": str(withdrawn),
            "packages": str(len(self.names)),
            "imported": imported,
            "newest": self.newest,
            "source": source,
        }
        self.db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        self.db.execute("CREATE INDEX affected_name ON affected (name)")
        self.db.execute("COMMIT")
        self.db.close()
        self.db = None
        # The data reaches the disk before the name does: after a power cut the old file
        # or the whole new one is there, never a new name on missing pages.
        fd = os.open(self.temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temp, self.final)
        return EcosystemStatus(
            ecosystem=self.ecosystem,
            records=records,
            withdrawn=withdrawn,
            packages=len(self.names),
            imported=imported,
            newest=self.newest,
            source=source,
        )

    def abandon(self) -> None:
        """After a failure: the temporary removed, the old file untouched."""
        if self.db is not None:
            self.db.close()
            self.db = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


def _entry(name: str, entry: Mapping[str, Any]) -> str:
    """An `affected[]` entry as the index keeps it: the package's name as written, its
    ECOSYSTEM and SEMVER ranges and its versions."""
    ranges = [
        r
        for r in entry.get("ranges", [])
        if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
    ]
    kept: dict[str, Any] = {"name": name, "ranges": ranges}
    versions = entry.get("versions")
    if isinstance(versions, list) and versions:
        kept["versions"] = versions
    return json.dumps(kept, separators=(",", ":"))


def _stored(data: Mapping[str, Any], record: Advisory) -> str:
    """A record as the index keeps it: what a report shows, without its long `details`
    and `references` (the advisory's URL is kept) and without `affected` (each entry is
    a row of its own)."""
    kept: dict[str, Any] = {
        "id": record.id,
        "modified": record.modified,
        "aliases": list(record.aliases),
        "summary": record.summary,
        "severity": data.get("severity", []),
        "references": [{"type": "ADVISORY", "url": record.url}],
    }
    for key in ("published", "withdrawn"):
        if isinstance(data.get(key), str):
            kept[key] = data[key]
    specific = data.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        kept["database_specific"] = {"severity": specific["severity"]}
    # The severity as scored at import: an audit then reads it instead of scoring each
    # record's CVSS vectors again (and importing the CVSS library at all).
    severity = record.severity
    kept[SCORED] = [severity.rating, severity.score, severity.vector]
    return json.dumps(kept, separators=(",", ":"))


def _read_all(path: str, skipped: list[str]) -> Iterator[tuple[str, Any]]:
    """(name, decoded JSON) of every record file of `path`."""
    if os.path.isdir(path):
        for base, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(".json"):
                    full = os.path.join(base, name)
                    yield from _decode(os.path.relpath(full, path), _read_file(full), skipped)
        return
    import zipfile  # only an import reads zips: an audit does not load the module

    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.is_dir() or not info.filename.endswith(".json"):
                        continue
                    if info.file_size > _MAX_RECORD:
                        skipped.append(f"{info.filename}: larger than {_MAX_RECORD} bytes")
                        continue
                    yield from _decode(info.filename, archive.read(info), skipped)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatabaseError(f"{path}: not a readable zip ({exc})") from None
        return
    yield from _decode(os.path.basename(path), _read_file(path), skipped)


def _read_file(path: str) -> bytes | str:
    try:
        if os.path.getsize(path) > _MAX_RECORD:
            return f"larger than {_MAX_RECORD} bytes"
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"


def _decode(name: str, raw: bytes | str, skipped: list[str]) -> Iterator[tuple[str, Any]]:
    if isinstance(raw, str):
        skipped.append(f"{name}: {raw}")
        return
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        skipped.append(f"{name}: not JSON ({exc})")
        return
    yield name, data


# -- files --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _file_name(ecosystem: str) -> str:
    return _UNSAFE.sub("_", ecosystem) + ".sqlite"


def _files(directory: str) -> dict[str, str]:
    """ecosystem -> its file, for every ecosystem imported into `directory`."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise DatabaseError(f"{directory}: cannot be read ({exc.strerror})") from None
    out = {}
    for name in names:
        if name.startswith(".") or not name.endswith(".sqlite"):
            continue
        path = os.path.join(directory, name)
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'ecosystem'").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            continue  # not one of ours
        if row:
            out[row[0]] = path
    return out


def _open(path: str, ecosystem: str) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.Error as exc:
        raise DatabaseError(
            f"the advisory database of {ecosystem} ({path}) cannot be read ({exc}): "
            "import it again (conveyor deps db import PATH)"
        ) from None
    if version is None or version[0] != str(SCHEMA):
        db.close()
        raise DatabaseError(
            f"the advisory database of {ecosystem} ({path}) was written by another "
            "Conveyor: import it again (conveyor deps db import PATH)"
        )
    return db


@contextlib.contextmanager
def _connect(path: str, ecosystem: str) -> Iterator[sqlite3.Connection]:
    db = _open(path, ecosystem)
    try:
        yield db
    finally:
        db.close()


def _remove_stale(directory: str) -> None:
    """Temporaries of imports that were killed (their process is gone)."""
    for name in os.listdir(directory):
        match = re.fullmatch(r"\..+\.sqlite\.(\d+)\.tmp", name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
