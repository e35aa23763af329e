"""Sitemaps: the URLs a sitemap listed without a date that its first poll left unfetched.

Adds the table ``skipped_urls`` (feed, entry key, when seen; unique per feed and key), so that a
sitemap's later polls take only the undated URLs that appeared since (`ingest.sitemaps`). A new
table only: nothing already stored changes.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skipped_urls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("entry_key", sa.String, nullable=False),
        sa.Column("seen_at", sa.DateTime),
        sa.UniqueConstraint("feed_id", "entry_key"),
    )
