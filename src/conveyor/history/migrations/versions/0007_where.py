"""Where each job's result came from: a hit's cache ("local" or the team's "remote"),
and the remote worker that ran a job (remote execution).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("cache_tier", sa.String(16)))
        batch.add_column(sa.Column("worker", sa.String(512)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("worker")
        batch.drop_column("cache_tier")
