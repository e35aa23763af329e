"""The read side: search, one article, every article streamed, archive counts.

Each opens its session here; the search SQL and the filters are in `ingest.search`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from ingest.dbsession import Database
from ingest.entryparts import url_key
from ingest.errors import NotFoundError
from ingest.models import (
    Article,
    ArticleStatus,
    Capture,
    ContentSource,
    Entry,
    Feed,
    Version,
)
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

# `search_stories` reads hits this many at a time, at most this many times, to fill a page of
# stories: copies rank together, so a page of stories seldom needs a second read.
STORY_PAGE, STORY_PAGES = 100, 10


class Reads(Database):
    """`Store`'s reads: `search`, `search_stories`, `article`, `copies`, `iter_articles`,
    `iter_captured`, `iter_capture_batches`, `stats`."""

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

    def search_stories(self, text: str, filters: Filters, *, limit: int = 20) -> list[SearchHit]:
        """`search` with one hit a story (the copies of one story on several sites): the
        story's earliest article among those ``filters`` admit (published, else stored),
        ranked where its best copy ranks, with its snippet, and ``copies`` the number of its
        other articles ``filters`` admit. An article without a story is a story alone."""
        best: dict[int, SearchHit] = {}  # by story (an article alone: minus its id)
        after = None
        for _ in range(STORY_PAGES):
            hits = self.search(text, filters, limit=STORY_PAGE, after=after)
            for hit in hits:
                if len(best) < limit:
                    best.setdefault(hit.article.story_id or -(hit.article.id or 0), hit)
            if len(best) >= limit or len(hits) < STORY_PAGE:
                break
            after = (hits[-1].rank, hits[-1].article.id or 0)
        members = self._story_members([key for key in best if key > 0], filters)
        collapsed = []
        for key, hit in best.items():
            found = members.get(key, [(hit.article, hit.feed_url)])
            earliest, feed_url = found[0]
            collapsed.append(
                replace(hit, article=earliest, feed_url=feed_url, copies=len(found) - 1)
            )
        return collapsed

    def _story_members(
        self, stories: Sequence[int], filters: Filters
    ) -> dict[int, list[tuple[Article, str]]]:
        """The articles of each of ``stories`` that ``filters`` admit, earliest first."""
        if not stories:
            return {}
        filters = self.checked(filters)
        when = sa.func.coalesce(col(Article.published), col(Article.created_at))
        query = (
            select(Article, col(Feed.url))
            .join(Feed, col(Feed.id) == col(Article.feed_id))
            .where(col(Article.story_id).in_(stories))
            .order_by(when, col(Article.id))
        )
        found: dict[int, list[tuple[Article, str]]] = {}
        with self._session() as session:
            for article, feed_url in session.exec(filtered(query, filters, postgres=self.postgres)):
                found.setdefault(article.story_id, []).append((article, feed_url))
        return found

    def copies(self, article: Article) -> list[tuple[Article, str]]:
        """The other articles of ``article``'s story (the same story on other sites, or
        listed again), earliest first, each with the feed that listed it first."""
        if article.story_id is None:
            return []
        members = self._story_members([article.story_id], Filters())
        return [row for row in members.get(article.story_id, []) if row[0].id != article.id]

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

    def iter_capture_batches(
        self, filters: Filters, *, batch: int = 50
    ) -> Iterator[list[tuple[Article, str, list[Capture]]]]:
        """Every article matching ``filters`` in id order, with its feed's URL and every raw
        capture kept of it, oldest fetch first (none: the page was not kept), ``batch`` articles at
        a time: what a WARC export holds is one batch, whatever the archive's size."""
        query = select(Article, col(Feed.url)).join(Feed, col(Feed.id) == col(Article.feed_id))
        rows: list[tuple[Article, str]] = []
        for row in self._stream(query, filters, batch):
            rows.append(row)
            if len(rows) == batch:
                yield self._with_captures(rows)
                rows = []
        if rows:
            yield self._with_captures(rows)

    def _with_captures(
        self, rows: list[tuple[Article, str]]
    ) -> list[tuple[Article, str, list[Capture]]]:
        kept: dict[int, list[Capture]] = {}
        query = (
            select(Capture)
            .where(col(Capture.article_id).in_([article.id for article, _ in rows]))
            # In the order they were fetched: an import may store an article's later capture
            # first.
            .order_by(col(Capture.article_id), col(Capture.fetched_at), col(Capture.id))
        )
        with self._session() as session:
            for capture in session.exec(query):
                kept.setdefault(capture.article_id, []).append(capture)
        return [(article, feed, kept.get(article.id or 0, [])) for article, feed in rows]

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
                    sa.func.sum(sa.case((col(Article.removed_at).is_not(None), 1), else_=0)),
                )
            ).one()
            kept = session.exec(
                select(sa.func.count(), sa.func.count(sa.distinct(col(Version.article_id))))
            ).one()
            due = session.exec(
                select(sa.func.count()).where(
                    col(Article.next_check_at).is_not(None),  # the partial index of re-checks
                    col(Article.next_check_at) <= now,
                )
            ).one()
            watched = session.exec(
                select(sa.func.count()).where(col(Article.next_check_at).is_not(None))
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
            "versions": {
                "articles_changed": kept[1],
                "versions": kept[0],
                "articles_removed": recent[3] or 0,
                "articles_watched": watched,  # with a re-check to come
                "rechecks_due": due,
            },
        }
