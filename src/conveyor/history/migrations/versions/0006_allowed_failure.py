"""Whether a job's failure was one it allows (`allow_failure`), so that reports tell it
from a failure that failed the run (issue 13).

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


def upgrade() -> None:
    # Runs recorded before this revision did not keep it: they read as not allowed.
    op.add_column(
        "jobs",
        sa.Column("allowed_failure", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("allowed_failure")
