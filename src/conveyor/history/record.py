"""A recorded run, as typed rows (no database imports).

One row type per history table, its fields in the table's column order, so that the
JSON `conveyor history` and `conveyor show` print keeps the columns' order whichever
side (a run directory or the database) the row came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from conveyor.model import JobResult


def _columns(row: DataclassInstance) -> dict[str, object]:
    """The row's fields by name, in declaration (column) order."""
    return {f.name: getattr(row, f.name) for f in fields(row)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """A row of `runs`: one run, start to end. Columns the database may lack (runs
    recorded before a migration added them, or facts not known) default to None."""

    id: str
    pipeline: str
    workspace: str
    commit: str | None = None
    branch: str | None = None
    tag: str | None = None
    event: str | None = None
    trigger: str
    host: str
    conveyor_version: str
    started_at: float
    finished_at: float | None = None
    status: str
    """success, failed, interrupted, or running (recorded while it went on)."""
    wall_time: float | None = None
    critical_path: tuple[str, ...] = ()
    """Job names, first first (kept as a JSON list in the database)."""
    critical_path_time: float | None = None
    jobs_total: int
    jobs_cached: int
    run_dir: str | None = None
    pipeline_file: str | None = None
    cpus: int | None = None
    memory_bytes: int | None = None
    platform: str | None = None
    parallelism: int | None = None
    checks_time: float | None = None
    """Seconds the checks before the build took (before any job was queued)."""

    @classmethod
    def from_db(cls, row: Mapping[Any, Any]) -> RunRow:
        """From a database row (the critical path parsed from its JSON text)."""
        text = row["critical_path"]
        return cls(**{**row, "critical_path": tuple(json.loads(text)) if text else ()})

    def to_db(self) -> dict[str, object]:
        """The column values to insert."""
        return {**_columns(self), "critical_path": json.dumps(list(self.critical_path))}

    def to_json(self) -> dict[str, object]:
        """As `conveyor history --json` prints it (the critical path as a list)."""
        return {**_columns(self), "critical_path": list(self.critical_path)}


PHASES = (
    ("queued", "queue_time"),
    ("check", "check_time"),
    ("restore", "restore_time"),
    ("run", "run_time"),
    ("store", "store_time"),
)
"""A job's time by where it went: each phase's name (as `show`, `stats` and the metrics'
`phase` label say it) and its column. Queued is waiting; the others are its own time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRow:
    """A row of `jobs`: one job of a run (its run's id is the record's)."""

    name: str
    status: str
    reason: str
    cached: bool
    action_digest: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    queue_time: float | None = None
    """Seconds between ready and finished spent waiting (a slot, its group), not working."""
    duration: float | None = None
    """Its own time: the phases below added up."""
    attempts: int
    exit_code: int | None = None
    cpu_time: float | None = None
    peak_rss: int | None = None
    saved: float | None = None
    """For a cache hit: the original duration, the time the cache saved."""
    log_path: str | None = None
    check_time: float | None = None
    restore_time: float | None = None
    run_time: float | None = None
    store_time: float | None = None
    allowed_failure: bool = False
    """It failed, and its `allow_failure` let the run go on (and succeed)."""
    cache_tier: str | None = None
    """A hit's cache: "local" or "remote" (None: not a hit, or recorded before)."""
    worker: str | None = None
    """The remote worker that ran it (None: this machine)."""

    @classmethod
    def from_result(cls, result: JobResult) -> JobRow:
        """A job's result as the history records it (the run's own sinks need rows
        before the run directory is read back)."""
        return cls(
            name=result.name,
            status=result.status.value,
            reason=result.reason,
            cached=result.cached,
            action_digest=result.action_digest,
            queued_at=result.queued_at,
            started_at=result.started_at,
            finished_at=result.finished_at,
            queue_time=result.queue_time,
            duration=result.duration,
            attempts=result.attempts,
            exit_code=result.exit_code,
            cpu_time=result.cpu_time,
            peak_rss=result.peak_rss,
            saved=result.saved,
            log_path=result.log_path,
            check_time=result.check_time,
            restore_time=result.restore_time,
            run_time=result.run_time,
            store_time=result.store_time,
            allowed_failure=result.allowed_failure,
            cache_tier=result.cache_tier,
            worker=result.worker,
        )

    def phase_times(self) -> list[tuple[str, float | None]]:
        """(phase, seconds) for each of PHASES, None where it had none."""
        return [(name, getattr(self, column)) for name, column in PHASES]

    def phases(self) -> list[tuple[str, float, float]]:
        """Its timeline as (phase, start, end): checking from its start; restoring,
        running and storing back to back up to its end (a miss waits for a slot between
        its check and the rest). None for a job that never started or a row from before
        phases were recorded."""
        if self.started_at is None or self.finished_at is None:
            return []
        out: list[tuple[str, float, float]] = []
        if self.check_time is not None:
            out.append(("check", self.started_at, self.started_at + self.check_time))
        tail: list[tuple[str, float, float]] = []
        end = self.finished_at
        for phase, seconds in (
            ("store", self.store_time),
            ("run", self.run_time),
            ("restore", self.restore_time),
        ):
            if seconds is not None:
                tail.append((phase, end - seconds, end))
                end -= seconds
        return out + tail[::-1]

    @property
    def status_text(self) -> str:
        """Its status as the run's table shows it: 'cached', 'failed (allowed)'..."""
        if self.cached:
            return "cached (remote)" if self.cache_tier == "remote" else "cached"
        return f"{self.status} (allowed)" if self.allowed_failure else self.status

    @classmethod
    def from_db(cls, row: Mapping[Any, Any]) -> JobRow:
        return cls(**{k: v for k, v in row.items() if k != "run_id"})

    def to_db(self) -> dict[str, object]:
        return _columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseRow:
    """A row of `tests`: one test case from a job's JUnit report."""

    job: str
    suite: str
    name: str
    status: str
    """passed, failed, error or skipped."""
    duration: float | None = None
    message: str

    def to_db(self) -> dict[str, object]:
        return _columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRow:
    """A row of `outputs`: a file a job produced or restored."""

    job: str
    path: str
    sha256: str
    size: int
    artifact: str | None = None
    """Its type, when the job declares it among its `artifacts:`."""

    def to_db(self) -> dict[str, object]:
        return _columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueRow:
    """A row of `job_values`: a value a job wrote to $CONVEYOR_OUTPUT."""

    job: str
    name: str
    value: str

    def to_db(self) -> dict[str, object]:
        return _columns(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRow:
    """A row of `gates`: one gate of the run as evaluated."""

    scope: str
    """A job's name, or 'pipeline'."""
    gate: str
    level: str
    """error or warn."""
    passed: bool
    measured: str
    threshold: str
    detail: str

    def to_db(self) -> dict[str, object]:
        return _columns(self)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as recorded: its row, and the rows of its jobs, test cases, gates, output
    files and values."""

    run: RunRow
    jobs: tuple[JobRow, ...] = ()
    tests: tuple[CaseRow, ...] = ()
    gates: tuple[GateRow, ...] = ()
    outputs: tuple[OutputRow, ...] = ()
    values: tuple[ValueRow, ...] = ()

    def to_json(self) -> dict[str, object]:
        """As `conveyor show --json` prints it: the run's columns, then its rows (each
        job with its run's id first, as the jobs table holds it)."""
        run_id = self.run.id
        return {
            **self.run.to_json(),
            "jobs": [{"run_id": run_id, **_columns(j)} for j in self.jobs],
            "tests": [_columns(t) for t in self.tests],
            "gates": [_columns(g) for g in self.gates],
            "outputs": [_columns(o) for o in self.outputs],
            "values": [_columns(v) for v in self.values],
        }
