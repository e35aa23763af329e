"""The extractor an article's text came from: ``articles.extractor``, the version of ingest's
extraction rules and of trafilatura that made it (`ingest.extract.EXTRACTOR`), so that
``ingest reextract --all`` brings every article made by an older one up to date, and a run
that was stopped carries on where it was (what the current extractor made is not redone).

NULL for every article already archived: unknown, so re-extracted by the next ``--all``. The
column is part of the article's record, so the change-sequence trigger (as 0017 left it)
counts it too (a mirror hears of an article re-extracted). Nothing is dropped.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# As migration 0017 wrote them (0008's, story_id, removed_at), plus this one's: a migration
# must not change when the models do.
RECORD_COLUMNS = (
    "url final_url canonical_url feed_id guid title authors published updated language "
    "site_name summary text content_source fetched_at status error story_id removed_at "
    "extractor"
).split()
_SQLITE_NEXT = """(SELECT max(coalesce((SELECT max(change_seq) FROM articles), 0),
        coalesce((SELECT max(change_seq) FROM removed_articles), 0)) + 1)"""


def upgrade() -> None:
    op.add_column("articles", sa.Column("extractor", sa.String))
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(
            f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text"
            if c == "authors"
            else f"OLD.{c} IS DISTINCT FROM NEW.{c}"
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
