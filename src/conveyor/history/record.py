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
    duration: float | None = None
    attempts: int
    exit_code: int | None = None
    cpu_time: float | None = None
    peak_rss: int | None = None
    saved: float | None = None
    """For a cache hit: the original duration, the time the cache saved."""
    log_path: str | None = None
    allowed_failure: bool = False
    """A failure (or timeout) the job allows: the run goes on as if it had succeeded."""

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
