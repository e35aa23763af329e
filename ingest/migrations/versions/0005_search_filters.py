"""SQLite: a covering index of the columns search filters read, so that a filtered search
checks each full-text match in a small index instead of loading the article's row.

`Store.search` joins every FTS5 match to ``articles`` to apply --lang, --since/--until and
--author; a row holds the article's text inline (6 KB on average), so on a million articles
a common word's matches meant reading hundreds of thousands of table pages. The index holds
the filter columns only (about 100 bytes an article). Adds an index: no data is touched.
PostgreSQL searches through its GIN index (0003); on PostgreSQL this revision changes nothing.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index(
        "ix_articles_search_filters",
        "articles",
        ["id", "language", "published", "created_at", "authors"],
    )
