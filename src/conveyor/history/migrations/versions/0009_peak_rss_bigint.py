"""A job's peak memory as a 64-bit integer: PostgreSQL's INTEGER stops at 2 GiB, so a
job that used more could not be recorded there (found by the metrics' tests, which put
values up to 64 GiB in). SQLite's INTEGER is 64-bit already, and rewriting its jobs
table (a million rows in a long history) for nothing is skipped.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("jobs", "peak_rss", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("jobs", "peak_rss", type_=sa.Integer(), existing_type=sa.BigInteger())
