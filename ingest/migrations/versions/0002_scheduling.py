"""Scheduling and politeness state: feed intervals and activity, per-host back-off.

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
    # Plain ADD COLUMN (no table rebuild): other tables' foreign keys point at feeds.
    # Feeds dropped from the config stay (with their articles) but are no longer polled.
    op.add_column(
        "feeds", sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true())
    )
    op.add_column("feeds", sa.Column("fixed_interval", sa.Float))
    op.add_column("feeds", sa.Column("interval", sa.Float))
    op.create_table(
        "hosts",
        sa.Column("host", sa.String, primary_key=True),
        sa.Column("blocked_until", sa.DateTime),
        sa.Column("reason", sa.String),
        sa.Column("updated_at", sa.DateTime),
    )
