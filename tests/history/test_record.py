"""The typed rows of a recorded run: one per table, in step with the schema, and a run
read back from the database equal to the run written."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from sqlalchemy import Table

from conveyor.history import schema
from conveyor.history.record import (
    CaseRow,
    GateRow,
    JobRow,
    OutputRow,
    RunRecord,
    RunRow,
)
from conveyor.history.store import HistoryStore


@pytest.mark.parametrize(
    ("row", "table", "not_a_field"),
    [
        (RunRow, schema.runs, set()),
        (JobRow, schema.jobs, {"run_id"}),
        (CaseRow, schema.tests, {"id", "run_id"}),
        (OutputRow, schema.outputs, {"run_id"}),
        (GateRow, schema.gates, {"run_id"}),
    ],
)
def test_each_row_has_its_tables_columns_in_order(
    row: type, table: Table, not_a_field: set[str]
) -> None:
    # The JSON of `conveyor history` and `conveyor show` is these fields in this order:
    # a column a migration adds without its field fails here, not in front of a user.
    columns = [c.name for c in table.columns if c.name not in not_a_field]
    assert [f.name for f in fields(row)] == columns


def test_a_run_reads_back_as_it_was_written(tmp_path: Path) -> None:
    record = RunRecord(
        RunRow(
            id="r-1",
            pipeline="p",
            workspace="/w",
            commit="abc",
            branch="main",
            trigger="local",
            host="h",
            conveyor_version="0.1.0",
            started_at=100.0,
            finished_at=103.0,
            status="failed",
            wall_time=3.0,
            critical_path=("build", "test"),
            critical_path_time=2.5,
            jobs_total=2,
            jobs_cached=1,
            cpus=4,
            memory_bytes=8 << 30,
        ),
        (
            JobRow(
                name="build",
                status="success",
                reason="cache hit",
                cached=True,
                started_at=100.5,
                finished_at=100.5,
                duration=0.0,
                attempts=0,
                saved=1.0,
            ),
            JobRow(
                name="test",
                status="failed",
                reason="exit code 1",
                cached=False,
                action_digest="d" * 64,
                queued_at=100.5,
                started_at=100.6,
                finished_at=103.0,
                queue_time=0.1,
                duration=2.4,
                attempts=1,
                exit_code=1,
                peak_rss=1 << 20,
                log_path="/w/test.log",
            ),
        ),
        (
            CaseRow(job="test", suite="s", name="t.ok", status="passed", message=""),
            CaseRow(
                job="test", suite="s", name="t.bad", status="failed", duration=0.2, message="x"
            ),
        ),
        gates=(
            GateRow(
                scope="test",
                gate="tests",
                level="error",
                passed=False,
                measured="1 failed",
                threshold="0 failed",
                detail="t.bad",
            ),
        ),
        outputs=(OutputRow(job="build", path="dist/app", sha256="e" * 64, size=12),),
    )
    with HistoryStore(f"sqlite:///{tmp_path / 'h.db'}") as store:
        store.record(record)
        assert store.run("r-") == record, "by a unique prefix"
        assert store.recent(5) == [record.run]
    shown = record.to_json()
    assert shown["critical_path"] == ["build", "test"]
    jobs = shown["jobs"]
    assert isinstance(jobs, list)
    assert [list(j)[:2] for j in jobs] == [["run_id", "name"]] * 2, "as the jobs table has them"
