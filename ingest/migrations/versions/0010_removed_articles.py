"""Removed articles in the change sequence, so that a mirror removes what the archive did.

A pending article whose page turns out to be one already archived (a redirect, a canonical
URL) is merged into it: its entries move there and its row is deleted. A trigger now writes
each deleted row's id to ``removed_articles`` with the next change number, so `changes`
returns it among the articles (``merged_into`` is set by the code that merges). SQLite's
next number is taken over both tables, so that the two never share one. Nothing is dropped.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As migration 0008 wrote them: a migration must not change when the models do.
RECORD_COLUMNS = (
    "url final_url canonical_url feed_id guid title authors published updated language "
    "site_name summary text content_source fetched_at status error"
).split()
_SQLITE_NEXT = """(SELECT max(coalesce((SELECT max(change_seq) FROM articles), 0),
        coalesce((SELECT max(change_seq) FROM removed_articles), 0)) + 1)"""


def upgrade() -> None:
    op.create_table(
        "removed_articles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("article_id", sa.Integer, nullable=False),
        sa.Column("merged_into", sa.Integer),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("removed_at", sa.DateTime),  # naive UTC, as every time here
    )
    op.create_index("ix_removed_articles_changes", "removed_articles", ["change_seq", "article_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """CREATE FUNCTION ingest_article_removed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO removed_articles (article_id, change_seq, removed_at)
                VALUES (OLD.id, pg_current_xact_id()::text::bigint, now() AT TIME ZONE 'UTC');
                RETURN OLD;
            END $$"""
        )
        op.execute(
            "CREATE TRIGGER articles_removed AFTER DELETE ON articles "
            "FOR EACH ROW EXECUTE FUNCTION ingest_article_removed()"
        )
        return
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in RECORD_COLUMNS)
    update = f"UPDATE articles SET change_seq = {_SQLITE_NEXT} WHERE id = NEW.id;"
    op.execute("DROP TRIGGER articles_change_insert")
    op.execute("DROP TRIGGER articles_change_update")
    op.execute(f"CREATE TRIGGER articles_change_insert AFTER INSERT ON articles BEGIN {update} END")
    op.execute(
        f"CREATE TRIGGER articles_change_update AFTER UPDATE OF {', '.join(RECORD_COLUMNS)} "
        f"ON articles WHEN {changed} BEGIN {update} END"
    )
    op.execute(
        "CREATE TRIGGER articles_removed AFTER DELETE ON articles BEGIN "
        "INSERT INTO removed_articles (article_id, change_seq, removed_at) "
        # The row's own number may have been the greatest: the removal's must come after.
        f"VALUES (OLD.id, max({_SQLITE_NEXT}, coalesce(OLD.change_seq, 0) + 1), "
        "datetime('now')); END"
    )
