"""Entries that share a link: an article may be an entry's own, identified by the shared link's
key (``articles.shared_key``) and its guid, one per pair (a partial unique index, small: only
such articles are in it).

Existing rows are kept as they are. Archives made before this revision merged the entries of a
feed that share a link into one article; the next poll of such a feed gives each its own
article (`ingest.entries`), so the feeds with merged entries lose their validators here: their
next poll reads them whole instead of being answered 304.

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
    op.add_column("articles", sa.Column("shared_key", sa.String))
    op.create_index(
        "ix_articles_shared",
        "articles",
        ["shared_key", "guid"],
        unique=True,
        postgresql_where=sa.text("shared_key IS NOT NULL"),
        sqlite_where=sa.text("shared_key IS NOT NULL"),
    )
    op.execute(
        "UPDATE feeds SET etag = NULL, last_modified = NULL WHERE id IN ("
        "SELECT feed_id FROM entries GROUP BY feed_id, article_id HAVING count(*) > 1)"
    )
