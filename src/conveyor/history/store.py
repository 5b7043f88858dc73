"""The history database: open (and migrate), record a run whole, read runs back.

Every run is written in one transaction (its row and all its jobs, replacing an earlier
record of the same run), so a reader never sees half a run, whatever kills the writer.
SQLite runs in WAL mode with a busy timeout, so concurrent runs and readers wait for
each other instead of failing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from conveyor.errors import EnvironmentProblem
from conveyor.history.location import DB_ENV
from conveyor.history.record import (
    CaseRow,
    GateRow,
    JobRow,
    OutputRow,
    RunRecord,
    RunRow,
    ValueRow,
)
from conveyor.history.schema import HEAD, gates, job_values, jobs, outputs, runs, tests


class HistoryStore:
    """The history database at `url` (SQLite or PostgreSQL), migrated to this version's
    schema when opened; the one place Conveyor talks to it. Usable with `with`."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = _engine(url)
            with self.engine.connect() as conn:
                current = _revision(conn)
            if current != HEAD:
                _refuse_newer(url, current)
                self._migrate()
        except SQLAlchemyError as exc:
            raise EnvironmentProblem(
                f"cannot use the history database {_safe(url)}: {_reason(exc)}",
                hint=f"check {DB_ENV} (or history.url in conveyor.yml), or run with --no-history",
            ) from None
        except ModuleNotFoundError as exc:
            raise EnvironmentProblem(
                f"cannot use the history database {_safe(url)}: no driver ({exc.name})",
                hint="for PostgreSQL use postgresql+psycopg://... (psycopg comes with Conveyor)",
            ) from None

    def _migrate(self) -> None:
        """Bring the schema to HEAD, one process at a time: runs that start together on a
        new database must not both create it."""
        if self.engine.dialect.name == "sqlite":
            path = self.engine.url.database
            if path and path != ":memory:":
                with open(f"{path}.migrate.lock", "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    with self.engine.begin() as conn:
                        if (current := _revision(conn)) != HEAD:
                            _refuse_newer(self.url, current)
                            _upgrade(conn)
                return
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(74657173)"))
            if (current := _revision(conn)) != HEAD:
                _refuse_newer(self.url, current)
                _upgrade(conn)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------
    def record(self, record: RunRecord) -> None:
        """Write one run and its jobs atomically (replacing an earlier record of it)."""
        run_id = record.run.id
        with self.engine.begin() as conn:
            conn.execute(delete(tests).where(tests.c.run_id == run_id))
            conn.execute(delete(outputs).where(outputs.c.run_id == run_id))
            conn.execute(delete(job_values).where(job_values.c.run_id == run_id))
            conn.execute(delete(gates).where(gates.c.run_id == run_id))
            conn.execute(delete(jobs).where(jobs.c.run_id == run_id))
            conn.execute(delete(runs).where(runs.c.id == run_id))
            conn.execute(insert(runs), [record.run.to_db()])
            for table, rows in (
                (jobs, record.jobs),
                (tests, record.tests),
                (outputs, record.outputs),
                (gates, record.gates),
                (job_values, record.values),
            ):
                if rows:
                    conn.execute(insert(table), [{**r.to_db(), "run_id": run_id} for r in rows])

    # -- reading -----------------------------------------------------------------------
    def statuses(self) -> dict[str, str]:
        """Run id -> status, for every recorded run."""
        with self.engine.connect() as conn:
            return {r.id: r.status for r in conn.execute(select(runs.c.id, runs.c.status))}

    def statuses_of(self, run_ids: list[str]) -> dict[str, str]:
        """Run id -> status, for those of these runs that are recorded."""
        query = select(runs.c.id, runs.c.status).where(runs.c.id.in_(run_ids))
        with self.engine.connect() as conn:
            return {r.id: r.status for r in conn.execute(query)}

    def recent(self, limit: int, pipeline: str | None = None) -> list[RunRow]:
        """The newest `limit` runs (of one pipeline, or all), newest first."""
        query = select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [RunRow.from_db(r._mapping) for r in conn.execute(query)]

    def run(self, run_id: str) -> RunRecord | None:
        """A run by id, or by a unique prefix of it (`conveyor show 20261125-1807`)."""
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(runs).where(runs.c.id.startswith(run_id, autoescape=True)).limit(2)
                )
            )
            exact = [r for r in rows if r.id == run_id]
            if exact:
                rows = exact
            if len(rows) != 1:
                return None
            run = RunRow.from_db(rows[0]._mapping)
            job_rows = conn.execute(
                select(jobs)
                .where(jobs.c.run_id == run.id)
                .order_by(jobs.c.started_at.is_(None), jobs.c.started_at, jobs.c.name)
            )
            test_rows = conn.execute(
                select(tests.c.job, tests.c.suite, tests.c.name, tests.c.status)
                .add_columns(tests.c.duration, tests.c.message)
                .where(tests.c.run_id == run.id)
                .order_by(tests.c.id)
            )
            output_rows = conn.execute(
                select(outputs.c.job, outputs.c.path, outputs.c.sha256, outputs.c.size)
                .add_columns(outputs.c.artifact)
                .where(outputs.c.run_id == run.id)
                .order_by(outputs.c.job, outputs.c.path)
            )
            gate_rows = conn.execute(
                select(gates.c.scope, gates.c.gate, gates.c.level, gates.c.passed)
                .add_columns(gates.c.measured, gates.c.threshold, gates.c.detail)
                .where(gates.c.run_id == run.id)
                .order_by(gates.c.scope == "pipeline", gates.c.scope, gates.c.gate)
            )
            value_rows = conn.execute(
                select(job_values.c.job, job_values.c.name, job_values.c.value)
                .where(job_values.c.run_id == run.id)
                .order_by(job_values.c.job, job_values.c.name)
            )
            return RunRecord(
                run,
                tuple(JobRow.from_db(j._mapping) for j in job_rows),
                tuple(CaseRow(**t._mapping) for t in test_rows),
                gates=tuple(GateRow(**g._mapping) for g in gate_rows),
                outputs=tuple(OutputRow(**o._mapping) for o in output_rows),
                values=tuple(ValueRow(**v._mapping) for v in value_rows),
            )

    def build_number(self, pipeline: str, started_at: float) -> int:
        """The run's place among the pipeline's recorded runs, counted from 1 (what CI
        systems call the build number; grows as long as the history is kept)."""
        query = (
            select(func.count())
            .select_from(runs)
            .where(runs.c.pipeline == pipeline, runs.c.started_at <= started_at)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def runs_with_prefix(self, prefix: str, limit: int = 5) -> list[str]:
        """The ids of up to `limit` runs starting with `prefix` (to name a run by one)."""
        with self.engine.connect() as conn:
            query = (
                select(runs.c.id)
                .where(runs.c.id.startswith(prefix, autoescape=True))
                .order_by(runs.c.id)
                .limit(limit)
            )
            return [r.id for r in conn.execute(query)]


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL (readers never block the writer) is a property of the file, set once;
            # switching to it does not wait on the busy timeout, so retry while another
            # process holds the file.
            for attempt in range(100):
                try:
                    if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        cur.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 99:
                        raise
                    time.sleep(0.05)
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _revision(conn: Any) -> str | None:
    """The database's migration revision, read without Alembic (which costs 0.3 s to
    import): only a database that needs a migration pays for it."""
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except SQLAlchemyError:
        return None
    return None if row is None else str(row[0])


def _refuse_newer(url: str, current: str | None) -> None:
    """A database a newer Conveyor migrated (a team's shared history, one person's
    Conveyor behind): an error saying so, not alembic's 'cannot locate revision'."""
    if current is not None and current.isdigit() and HEAD.isdigit() and current > HEAD:
        raise EnvironmentProblem(
            f"the history database {_safe(url)} was written by a newer Conveyor (its schema "
            f"is {current}; this Conveyor knows up to {HEAD})",
            hint="upgrade Conveyor to read it, or use another database "
            f"({DB_ENV}, history.url, or --no-history)",
        )


def _upgrade(conn: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "conveyor.history:migrations")
    config.attributes["connection"] = conn
    command.upgrade(config, HEAD)


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(an unparsable URL)"


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__
