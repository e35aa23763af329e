"""Stories: the copies of one story published by several outlets (a wire story on many sites),
linked as articles are stored (`ingest.stories`, `ingest.storyindex`).

Adds ``articles.story_id`` (the id of the story's first article; NULL until the article is
fingerprinted, and for texts too short to tell) with an index, ``story_fingerprints`` (an
article's MinHash signature and shingle count, to verify a candidate) and ``story_bands`` (its
LSH band keys: a new article finds its candidates by index lookups). The change-sequence
trigger counts ``story_id`` among the record's columns, so that a mirror hears of an article
linked later (`ingest db stories`), and ``removed_at`` (revision 0014), of a page taken
down. Articles already archived are fingerprinted by ``ingest db stories``, in batches,
resumable; no row changes here.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# As migration 0008 wrote them, and story_id, and removed_at (0014: a page gone from the web
# is news to a mirror): a migration must not change when the models do.
RECORD_COLUMNS = (
    "url final_url canonical_url feed_id guid title authors published updated language "
    "site_name summary text content_source fetched_at status error story_id removed_at"
).split()
_SQLITE_NEXT = """(SELECT max(coalesce((SELECT max(change_seq) FROM articles), 0),
        coalesce((SELECT max(change_seq) FROM removed_articles), 0)) + 1)"""


def upgrade() -> None:
    op.add_column("articles", sa.Column("story_id", sa.Integer))
    op.create_index("ix_articles_story", "articles", ["story_id"])
    op.create_table(
        "story_fingerprints",
        sa.Column("article_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("shingles", sa.Integer, nullable=False),
    )
    op.create_table(
        "story_bands",
        sa.Column("band", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("article_id", sa.Integer, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,  # the key is the row: one B-tree, not a table and an index
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        changed = " OR ".join(
            f"OLD.{c}{'::text' if c == 'authors' else ''} IS DISTINCT FROM "
            f"NEW.{c}{'::text' if c == 'authors' else ''}"
            for c in RECORD_COLUMNS
        )
        op.execute("DROP TRIGGER articles_change_update ON articles")
        op.execute(
            f"CREATE TRIGGER articles_change_update BEFORE UPDATE ON articles FOR EACH ROW "
            f"WHEN ({changed}) EXECUTE FUNCTION ingest_article_changed()"
        )
        return
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in RECORD_COLUMNS)
    update = f"UPDATE articles SET change_seq = {_SQLITE_NEXT} WHERE id = NEW.id;"
    op.execute("DROP TRIGGER articles_change_update")
    op.execute(
        f"CREATE TRIGGER articles_change_update AFTER UPDATE OF {', '.join(RECORD_COLUMNS)} "
        f"ON articles WHEN {changed} BEGIN {update} END"
    )
