"""An index of runs by pipeline and start: every window the dashboard and `conveyor
stats` ask for is a pipeline's runs since a time. With only the index on the start,
SQLite chose to scan every job row for some of them (the durations of `stats`, the
flaky jobs): 0.16 s at 100,000 job rows, against 0.013 s with this index.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_pipeline_started_at", "runs", ["pipeline", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_pipeline_started_at", table_name="runs")
