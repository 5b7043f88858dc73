"""The files each job produced (the run's artifacts); the pipeline file a run used and
the machine it ran on (CPUs, memory, platform, parallelism: for capacity planning).

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
    op.add_column("runs", sa.Column("cpus", sa.Integer))
    op.add_column("runs", sa.Column("memory_bytes", sa.BigInteger))
    op.add_column("runs", sa.Column("platform", sa.String(64)))
    op.add_column("runs", sa.Column("parallelism", sa.Integer))
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
    for column in ("parallelism", "platform", "memory_bytes", "cpus", "pipeline_file"):
        op.drop_column("runs", column)
