"""The files each job produced (the run's artifacts), and the pipeline file a run used.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("pipeline_file", sa.Text))
    op.create_table(
        "outputs",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("job", sa.String(512), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("artifact", sa.String(32)),
    )
    op.create_index("ix_outputs_sha256", "outputs", ["sha256"])


def downgrade() -> None:
    op.drop_table("outputs")
    op.drop_column("runs", "pipeline_file")
