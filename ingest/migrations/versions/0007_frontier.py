"""The frontier: each article records the host of its page, and the page queue is indexed by
host, so that pages are claimed a host at a time in turn rather than oldest first.

Adds ``articles.host`` and fills it for the pages still to be fetched (pending, or failed with
a retry to come); pages already archived keep NULL, as the frontier never claims them. The
queue's partial index is rebuilt over (host, id). Nothing is dropped but that index.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Written out here: a migration must not change when the models do.
CLAIMABLE = "status = 'pending' OR (status = 'failed' AND next_attempt_at IS NOT NULL)"
BATCH = 1000


def upgrade() -> None:
    op.add_column("articles", sa.Column("host", sa.String))
    bind = op.get_bind()
    articles = sa.table(
        "articles", sa.column("id", sa.Integer), sa.column("url"), sa.column("host")
    )
    rows = bind.execute(
        sa.select(articles.c.id, articles.c.url).where(
            sa.text(f"({CLAIMABLE})"), articles.c.url.is_not(None)
        )
    ).all()
    update = (
        sa.update(articles)
        .where(articles.c.id == sa.bindparam("article"))
        .values(host=sa.bindparam("name"))
    )
    for start in range(0, len(rows), BATCH):
        bind.execute(
            update,
            [
                {"article": article, "name": (urlsplit(url).hostname or "").lower()}
                for article, url in rows[start : start + BATCH]
            ],
        )
    op.drop_index("ix_articles_claim", "articles")
    op.create_index(
        "ix_articles_claim",
        "articles",
        ["host", "id"],
        postgresql_where=sa.text(CLAIMABLE),
        sqlite_where=sa.text(CLAIMABLE),
    )
