"""A change sequence on articles, so that a mirror can ask for everything stored or changed
since it last asked and miss nothing, even while workers write.

Adds ``articles.change_seq`` and an index on (change_seq, id); triggers set it whenever an
article is stored or a column of its exported record changes (leases, attempts and retry
times do not count). SQLite has one writer at a time, so ``max + 1`` taken under the write
lock grows in commit order. PostgreSQL commits concurrent transactions in any order, so the
value is the writing transaction's id and readers only return rows older than the oldest
transaction still running (`ingest.browse`). Existing rows get their id (SQLite) or 0
(PostgreSQL): a first sync reads them all. Nothing is dropped.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Written out here: a migration must not change when the models do.
RECORD_COLUMNS = (
    "url final_url canonical_url feed_id guid title authors published updated language "
    "site_name summary text content_source fetched_at status error"
).split()


def _changed(cast: str) -> str:
    return " OR ".join(
        f"OLD.{c}{cast if c == 'authors' else ''} IS DISTINCT FROM "
        f"NEW.{c}{cast if c == 'authors' else ''}"
        if cast
        else f"OLD.{c} IS NOT NEW.{c}"
        for c in RECORD_COLUMNS
    )


_SQLITE_NEXT = """UPDATE articles SET change_seq =
        (SELECT coalesce(max(change_seq), 0) + 1 FROM articles) WHERE id = NEW.id;"""


def upgrade() -> None:
    op.add_column("articles", sa.Column("change_seq", sa.BigInteger))
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(f"UPDATE articles SET change_seq = {'0' if postgres else 'id'}")
    op.create_index("ix_articles_changes", "articles", ["change_seq", "id"])
    if not postgres:
        op.execute(
            f"CREATE TRIGGER articles_change_insert AFTER INSERT ON articles "
            f"BEGIN {_SQLITE_NEXT} END"
        )
        op.execute(
            f"CREATE TRIGGER articles_change_update AFTER UPDATE OF {', '.join(RECORD_COLUMNS)} "
            f"ON articles WHEN {_changed('')} BEGIN {_SQLITE_NEXT} END"
        )
        return
    op.execute(
        """CREATE FUNCTION ingest_article_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.change_seq := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER articles_change_insert BEFORE INSERT ON articles "
        "FOR EACH ROW EXECUTE FUNCTION ingest_article_changed()"
    )
    op.execute(
        f"CREATE TRIGGER articles_change_update BEFORE UPDATE ON articles FOR EACH ROW "
        f"WHEN ({_changed('::text')}) EXECUTE FUNCTION ingest_article_changed()"
    )
