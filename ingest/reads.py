"""The read side: search, one article, every article streamed, archive counts.

Each opens its session here; the search SQL and the filters are in `ingest.search`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from ingest.dbsession import Database
from ingest.entryparts import url_key
from ingest.errors import NotFoundError
from ingest.models import Article, ArticleStatus, Capture, ContentSource, Entry, Feed
from ingest.search import (
    RANK_WINDOW,
    Filters,
    Keyset,
    SearchHit,
    checked,
    filtered,
    postgres_search,
    sqlite_search,
)


class Reads(Database):
    """`Store`'s reads: `search`, `article`, `iter_articles`, `iter_captured`, `stats`."""

    def checked(self, filters: Filters) -> Filters:
        """``filters`` as the archive keeps what they name (`ingest.search.checked`)."""
        with self._session() as session:
            return checked(session, filters)

    def search(
        self,
        text: str,
        filters: Filters,
        *,
        limit: int = 20,
        rank_window: int | None = RANK_WINDOW,
        newest: bool = False,
        after: Keyset | None = None,
    ) -> list[SearchHit]:
        """Full-text search over title and text, best first, title matches weighing more.

        One query syntax on both backends (`ingest.querytext`). SQLite: FTS5, BM25 (a title
        occurrence counts as four in the text); a query matching more than ``rank_window``
        articles (after filters) is ranked among its newest ``rank_window`` matches only;
        None ranks every match. PostgreSQL: every language the archive indexes,
        ``ts_rank_cd``, ``ts_headline`` snippets, every match ranked.

        ``newest`` orders by date instead (published, else stored), newest first. A next page
        starts ``after`` the last hit's (rank, article id).
        """
        filters = self.checked(filters)
        with self._session(query=text) as session:
            if self.postgres:
                return postgres_search(session, text, filters, limit, newest=newest, after=after)
            return sqlite_search(
                session, text, filters, limit, rank_window, newest=newest, after=after
            )

    def article(self, ref: str) -> tuple[Article, str]:
        """One article by id or URL (as fetched, final or canonical), with its feed's URL; a
        post's URL (``page#post``) finds the post before its page."""
        query = select(Article, col(Feed.url)).join(Feed, col(Feed.id) == col(Article.feed_id))
        if ref.isdigit():
            query = query.where(col(Article.id) == int(ref))
        else:
            post = url_key(ref, fragment=True)
            query = query.where(
                col(Article.url_key).in_([url_key(ref), post])
                | (col(Article.url) == ref)
                | (col(Article.final_url) == ref)
                | (col(Article.canonical_url) == ref)
            ).order_by(sa.case((col(Article.url_key) == post, 0), else_=1), col(Article.id))
        with self._session() as session:
            row = session.exec(query.limit(1)).first()
        if row is None:
            raise NotFoundError(f"no article {ref!r} in the archive")
        return row[0], row[1]

    def listed_by(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """The URLs of the feeds whose entries listed each article of ``ids``, in the order
        they did (the one that listed it first is also ``articles.feed_id``'s)."""
        listed = (
            select(col(Entry.article_id), col(Feed.url))
            .join(Feed, col(Feed.id) == col(Entry.feed_id))
            .where(col(Entry.article_id).in_(ids))
            .order_by(col(Entry.id))
        )
        found: dict[int, list[str]] = {}
        with self._session() as session:
            for article_id, url in session.exec(listed):
                found.setdefault(article_id, []).append(url)
        return found

    def iter_articles(self, filters: Filters, *, batch: int = 500) -> Iterator[tuple[Article, str]]:
        """Every article matching ``filters`` in id order, streamed in batches."""
        query = select(Article, col(Feed.url)).join(Feed, col(Feed.id) == col(Article.feed_id))
        yield from self._stream(query, filters, batch)

    def iter_captured(
        self, filters: Filters, *, not_by: str | None = None, batch: int = 100
    ) -> Iterator[tuple[Article, Capture | None]]:
        """Every archived article matching ``filters`` that extraction made (its text from its
        page, or a capture kept), in id order, with its latest raw capture (None: the page was
        not kept), streamed in batches; with ``not_by``, only those another extractor made
        (or one unknown)."""
        query = self._captured(Article, Capture)
        if not_by is not None:
            made_by = col(Article.extractor)
            query = query.where(made_by.is_(None) | (made_by != not_by))
        yield from self._stream(query, filters, batch)

    def count_made_by(self, filters: Filters, extractor: str) -> int:
        """How many of the articles `iter_captured` would give ``extractor`` made already."""
        query = self._captured(sa.func.count()).where(col(Article.extractor) == extractor)
        query = filtered(query, self.checked(filters), postgres=self.postgres)
        with self._session() as session:
            return int(session.exec(query).one())

    @staticmethod
    def _captured(*columns: Any) -> Any:
        """``columns`` of the archived articles extraction made, each with its latest capture."""
        other = aliased(Capture)
        latest = (
            select(sa.func.max(other.id))
            .where(other.article_id == col(Article.id))
            .correlate(Article)
            .scalar_subquery()
        )
        return (
            select(*columns)
            .select_from(Article)
            .join(Feed, col(Feed.id) == col(Article.feed_id))
            .outerjoin(Capture, col(Capture.id) == latest)
            .where(
                col(Article.status) == ArticleStatus.OK,
                (col(Article.content_source) == ContentSource.PAGE) | col(Capture.id).is_not(None),
            )
        )

    def _stream(self, query: Any, filters: Filters, batch: int) -> Iterator[Any]:
        """The rows of ``query`` (an article first in each) for the articles matching
        ``filters``, in id order, read ``batch`` at a time: no session stays open between."""
        filters = self.checked(filters)
        query = filtered(query, filters, postgres=self.postgres).order_by(col(Article.id))
        last = 0
        while True:
            with self._session() as session:
                rows = session.exec(query.where(col(Article.id) > last).limit(batch)).all()
            if not rows:
                return
            yield from (tuple(row) for row in rows)
            last = rows[-1][0].id or last

    def stats(self, now: datetime) -> dict[str, Any]:
        """Archive counts and recent activity, for `ingest stats`."""
        day, week = now - timedelta(days=1), now - timedelta(days=7)
        created = col(Article.created_at)
        with self._session() as session:
            by_status = dict(
                session.exec(
                    select(Article.status, sa.func.count()).group_by(col(Article.status))
                ).all()
            )
            reasons = dict(
                session.exec(
                    select(Article.error, sa.func.count())
                    .where(col(Article.status) == ArticleStatus.FAILED)
                    .group_by(col(Article.error))
                ).all()
            )
            feeds = session.exec(
                select(
                    sa.func.count(),
                    sa.func.sum(sa.case((col(Feed.active), 1), else_=0)),
                    sa.func.sum(
                        sa.case((col(Feed.active) & (col(Feed.error_count) > 0), 1), else_=0)
                    ),
                    sa.func.max(col(Feed.last_polled_at)),
                )
            ).one()
            recent = session.exec(
                select(
                    sa.func.sum(sa.case((created >= day, 1), else_=0)),
                    sa.func.sum(sa.case((created >= week, 1), else_=0)),
                    sa.func.sum(sa.case((col(Article.fetched_at) >= day, 1), else_=0)),
                )
            ).one()
        last_poll = feeds[3]
        if isinstance(last_poll, str):  # aggregates lose the column type on SQLite
            last_poll = datetime.fromisoformat(last_poll).replace(tzinfo=UTC)
        return {
            "feeds": {"total": feeds[0], "active": feeds[1] or 0, "failing": feeds[2] or 0},
            "articles": {
                "total": sum(by_status.values()),
                **{status: by_status.get(status, 0) for status in ArticleStatus},
            },
            "failures_by_reason": {str(k): v for k, v in sorted(reasons.items(), key=str)},
            "recent": {
                "articles_last_24h": recent[0] or 0,
                "articles_last_7d": recent[1] or 0,
                "pages_fetched_last_24h": recent[2] or 0,
                "last_poll": last_poll.isoformat() if last_poll else None,
            },
        }
