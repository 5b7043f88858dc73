"""The history tables (SQLAlchemy Core). Changed only through a migration in
`migrations/versions/`; HEAD names the newest one."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

HEAD = "0009"
"""The newest migration: a database at this revision needs no Alembic at all."""

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline", String(255), nullable=False),
    Column("workspace", Text, nullable=False),
    Column("commit", String(64)),
    Column("branch", String(255)),
    Column("tag", String(255)),
    Column("event", String(32)),
    Column("trigger", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("conveyor_version", String(32), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String(16), nullable=False),
    Column("wall_time", Float),
    Column("critical_path", Text, nullable=False),
    Column("critical_path_time", Float),
    Column("jobs_total", Integer, nullable=False),
    Column("jobs_cached", Integer, nullable=False),
    Column("run_dir", Text),
    Column("pipeline_file", Text),
    Column("cpus", Integer),
    Column("memory_bytes", BigInteger),
    Column("platform", String(64)),
    Column("parallelism", Integer),
    Column("checks_time", Float),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_pipeline_started_at", "pipeline", "started_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("action_digest", String(64)),
    Column("queued_at", Float),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("queue_time", Float),
    Column("duration", Float),
    Column("attempts", Integer, nullable=False),
    Column("exit_code", Integer),
    Column("cpu_time", Float),
    Column("peak_rss", BigInteger),
    Column("saved", Float),
    Column("log_path", Text),
    Column("check_time", Float),
    Column("restore_time", Float),
    Column("run_time", Float),
    Column("store_time", Float),
    Column("allowed_failure", Boolean, nullable=False, server_default=false()),
    Column("cache_tier", String(16)),
    Column("worker", String(512)),
    Index("ix_jobs_name", "name"),
    Index("ix_jobs_action_digest", "action_digest"),
)

tests = Table(
    "tests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("job", String(512), nullable=False),
    Column("suite", String(512), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("status", String(16), nullable=False),
    Column("duration", Float),
    Column("message", Text, nullable=False),
    Index("ix_tests_run_job", "run_id", "job"),
    Index("ix_tests_name", "name"),
)

outputs = Table(
    "outputs",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("job", String(512), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    # The artifact type, when the job declares the file among its `artifacts:`.
    Column("artifact", String(32)),
    Index("ix_outputs_sha256", "sha256"),
)

gates = Table(
    "gates",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("scope", String(512), primary_key=True),
    Column("gate", String(512), primary_key=True),
    Column("level", String(8), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("measured", Text, nullable=False),
    Column("threshold", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_gates_gate", "gate"),
)

job_values = Table(
    "job_values",
    metadata,
    Column("run_id", String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("job", String(512), primary_key=True),
    # What the job wrote to $CONVEYOR_OUTPUT (a value holding a secret never is here).
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)
