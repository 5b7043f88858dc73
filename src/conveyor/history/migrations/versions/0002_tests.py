"""Test cases read from the JUnit reports jobs declare.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("job", sa.String(512), nullable=False),
        sa.Column("suite", sa.String(512), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_tests_run_job", "tests", ["run_id", "job"])
    op.create_index("ix_tests_name", "tests", ["name"])


def downgrade() -> None:
    op.drop_table("tests")
