"""Enclosures: the media files an entry carries (podcast episodes, videos), kept with its
article as the feed describes them, never downloaded.

Adds ``articles.enclosures``, a JSON array of objects (url, type, length, title, duration),
``[]`` for every article already archived (their feeds' enclosures were not read before). Only
set when an article is made from its entry, so the change-sequence triggers of 0008 (on insert,
and on updates of the record's other columns) need no change. Nothing is dropped.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("enclosures", sa.JSON, nullable=False, server_default="[]"))
