"""Versions: what an article said each time its page was seen to change.

Adds to ``articles`` what re-checking a page needs: ``checked_at`` (its last re-check),
``next_check_at`` (the next, NULL: none), ``changed_at`` (when its text or title last changed:
the schedule slows as that ages), ``etag`` and ``last_modified`` (the page's validators, for
conditional requests) and ``removed_at`` (the page answered 404 or 410). Articles fetched in the
last 30 days are due for a first re-check now; older ones are not re-checked.

Adds ``versions``: once an article has changed, each of its states in order (the first too),
with its text, title, authors, fetch time, the capture it came from, and the characters added
and removed against the one before. An article that never changed has no rows: its one state
is the article itself. Nothing is dropped.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

RECHECKED_FOR = timedelta(days=30)  # as the default `[versions]` schedule's last step


def upgrade() -> None:
    for name, kind in (
        ("checked_at", sa.DateTime),
        ("next_check_at", sa.DateTime),
        ("changed_at", sa.DateTime),
        ("etag", sa.String),
        ("last_modified", sa.String),
        ("removed_at", sa.DateTime),
    ):
        op.add_column("articles", sa.Column(name, kind))
    # The re-check queue: small (recent articles only), however many are archived.
    op.create_index(
        "ix_articles_recheck",
        "articles",
        ["next_check_at"],
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
        sqlite_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "article_id",
            sa.Integer,
            sa.ForeignKey("articles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.String),
        sa.Column("text", sa.String),
        sa.Column("authors", sa.JSON, nullable=False, server_default="[]"),
        sa.Column("content_hash", sa.String),
        sa.Column("fetched_at", sa.DateTime),
        sa.Column("capture_id", sa.Integer),  # no foreign key: a capture may be pruned
        sa.Column("chars_added", sa.Integer, nullable=False, server_default="0"),
        sa.Column("chars_removed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime),
        sa.UniqueConstraint("article_id", "number", name="uq_versions_article_number"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as every time here
    due = sa.text(
        "UPDATE articles SET next_check_at = :now, changed_at = fetched_at "
        "WHERE status = 'ok' AND url IS NOT NULL AND fetched_at >= :since"
    ).bindparams(sa.bindparam("now", type_=sa.DateTime), sa.bindparam("since", type_=sa.DateTime))
    op.get_bind().execute(due, {"now": now, "since": now - RECHECKED_FOR})
