"""Each job's timeline (checking, restoring, running, storing) and the time the checks
before the build took: queue time is then only waiting, never work. And whether a
failure was allowed (`allow_failure`), as the run's own table says it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PHASES = ("check_time", "restore_time", "run_time", "store_time")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in PHASES:
            batch.add_column(sa.Column(column, sa.Float))
        batch.add_column(
            sa.Column("allowed_failure", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("checks_time", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("checks_time")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("allowed_failure")
        for column in reversed(PHASES):
            batch.drop_column(column)
