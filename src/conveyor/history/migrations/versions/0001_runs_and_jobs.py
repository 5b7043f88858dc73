"""Runs and their jobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("commit", sa.String(64)),
        sa.Column("branch", sa.String(255)),
        sa.Column("tag", sa.String(255)),
        sa.Column("event", sa.String(32)),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("conveyor_version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("wall_time", sa.Float),
        sa.Column("critical_path", sa.Text, nullable=False),
        sa.Column("critical_path_time", sa.Float),
        sa.Column("jobs_total", sa.Integer, nullable=False),
        sa.Column("jobs_cached", sa.Integer, nullable=False),
        sa.Column("run_dir", sa.Text),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "jobs",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("action_digest", sa.String(64)),
        sa.Column("queued_at", sa.Float),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("queue_time", sa.Float),
        sa.Column("duration", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("cpu_time", sa.Float),
        sa.Column("peak_rss", sa.Integer),
        sa.Column("saved", sa.Float),
        sa.Column("log_path", sa.Text),
    )
    op.create_index("ix_jobs_name", "jobs", ["name"])
    op.create_index("ix_jobs_action_digest", "jobs", ["action_digest"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("runs")
