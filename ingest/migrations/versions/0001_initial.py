"""The first archive schema: feeds, articles, entries, captures, full-text index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE articles_fts USING fts5(
        title, text, content='articles', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO articles_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.String, nullable=False, unique=True),
        sa.Column("name", sa.String),
        sa.Column("title", sa.String),
        sa.Column("site_url", sa.String),
        sa.Column("language", sa.String),
        sa.Column("etag", sa.String),
        sa.Column("last_modified", sa.String),
        sa.Column("last_polled_at", sa.DateTime),
        sa.Column("last_status", sa.String),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String),
        sa.Column("next_poll_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime),
    )
    op.create_index("ix_feeds_next_poll_at", "feeds", ["next_poll_at"])
    op.create_table(
        "articles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url_key", sa.String, unique=True),
        sa.Column("url", sa.String),
        sa.Column("final_url", sa.String),
        sa.Column("canonical_url", sa.String),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("guid", sa.String),
        sa.Column("title", sa.String),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("published", sa.DateTime),
        sa.Column("updated", sa.DateTime),
        sa.Column("language", sa.String),
        sa.Column("site_name", sa.String),
        sa.Column("summary", sa.String),
        sa.Column("text", sa.String),
        sa.Column("content_source", sa.String, nullable=False),
        sa.Column("content_hash", sa.String),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime),
        sa.Column("error", sa.String),
        sa.Column("error_message", sa.String),
        sa.Column("fetched_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime),
    )
    for column in (
        "next_attempt_at",
        "language",
        "created_at",
        "canonical_url",
        "status",
        "feed_id",
        "published",
    ):
        op.create_index(f"ix_articles_{column}", "articles", [column])
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("url", sa.String, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("fetched_at", sa.DateTime),
    )
    op.create_index("ix_captures_article_id", "captures", ["article_id"])
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("entry_key", sa.String, nullable=False),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("articles.id"), nullable=False),
        sa.Column("seen_at", sa.DateTime),
        sa.UniqueConstraint("feed_id", "entry_key"),
    )
    op.create_index("ix_entries_article_id", "entries", ["article_id"])
    if op.get_bind().dialect.name == "sqlite":
        for ddl in _SQLITE_FTS:
            op.execute(ddl)
