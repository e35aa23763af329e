"""The read side the web layer adds: the newest articles a page at a time, what changed since
a point (for mirrors), feeds with their health, articles stored per day, raw captures.

Like `ingest.reads`, each call opens its own session; filters are `ingest.search`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from ingest.dbsession import Database
from ingest.errors import NotFoundError
from ingest.models import Article, ArticleStatus, Capture, Entry, Feed, RemovedArticle
from ingest.search import Filters, checked, filtered

# A point in the change sequence: (change_seq, article id) of the last article a mirror has.
ChangeKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Removal:
    """An article the archive no longer has (merged into ``merged_into``, when it was)."""

    article_id: int
    merged_into: int | None
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedHealth:
    feed: Feed
    articles: int  # listed by this feed, whatever their status
    ok: int
    pending: int
    failed: int
    last_article_at: datetime | None  # when the newest of them was stored


class Browse(Database):
    """`Store`'s reads for the web: `latest`, `changes`, `feed_health`, `daily_counts`,
    `capture`."""

    def latest(
        self, filters: Filters, *, limit: int, after: tuple[datetime, int] | None = None
    ) -> list[tuple[Article, str]]:
        """Articles matching ``filters``, newest first by their date (published, else
        stored); a next page starts ``after`` the last one's (date, id)."""
        when = sa.func.coalesce(col(Article.published), col(Article.created_at))
        query = select(Article, col(Feed.url)).join(Feed, col(Feed.id) == col(Article.feed_id))
        with self._session() as session:
            filters = checked(session, filters)
        query = filtered(query, filters, postgres=self.postgres)
        if after is not None:
            query = query.where(
                (when < after[0]) | ((when == after[0]) & (col(Article.id) < after[1]))
            )
        query = query.order_by(when.desc(), col(Article.id).desc()).limit(limit)
        with self._session() as session:
            return [(article, feed_url) for article, feed_url in session.exec(query).all()]

    def changes(
        self, filters: Filters, *, after: ChangeKey | None, limit: int
    ) -> list[tuple[Article | Removal, str | None, ChangeKey]]:
        """Articles stored, changed or removed after ``after`` (None: from the start), in the
        order of their changes, each with its own key: pass the last one to read on. An
        article removed comes as a `Removal` (without a feed), whatever ``filters`` say: a
        mirror of part of the archive may hold it.

        Nothing is missed while workers write. SQLite has one writer at a time, so change
        numbers are taken in commit order. On PostgreSQL the key is the writing transaction's
        id, and transactions commit in any order: only rows written by transactions older
        than the oldest one still running are returned, since no later commit can add one
        before them.
        """
        seq = col(Article.change_seq)
        query = select(Article, col(Feed.url), seq).join(Feed, col(Feed.id) == col(Article.feed_id))
        with self._session() as session:
            filters = checked(session, filters)
        query = filtered(query, filters, postgres=self.postgres).where(seq.is_not(None))
        gone = select(RemovedArticle)
        removed_seq, removed_id = col(RemovedArticle.change_seq), col(RemovedArticle.article_id)
        if after is not None:
            query = query.where(
                (seq > after[0]) | ((seq == after[0]) & (col(Article.id) > after[1]))
            )
            gone = gone.where(
                (removed_seq > after[0]) | ((removed_seq == after[0]) & (removed_id > after[1]))
            )
        with self._session() as session:
            if self.postgres:
                # A statement of its own, before the rows are read: whatever is older than
                # this horizon has committed, so the next statement's snapshot holds it.
                horizon = session.execute(
                    sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                ).scalar_one()
                query = query.where(seq < horizon)
                gone = gone.where(removed_seq < horizon)
            rows = session.exec(query.order_by(seq, col(Article.id)).limit(limit)).all()
            removals = session.exec(gone.order_by(removed_seq, removed_id).limit(limit)).all()
        changed: list[tuple[Article | Removal, str | None, ChangeKey]] = [
            (article, feed_url, (int(change), article.id or 0))
            for article, feed_url, change in rows
        ]
        changed += [
            (Removal(r.article_id, r.merged_into, r.removed_at), None, (r.change_seq, r.article_id))
            for r in removals
        ]
        return sorted(changed, key=lambda row: row[2])[:limit]

    def feed_health(self, feed_id: int | None = None) -> list[FeedHealth]:
        """Every feed (or one) with its article counts, failing feeds first, then by name."""
        status = col(Article.status)
        counts = (
            sa.select(
                col(Entry.feed_id).label("feed_id"),
                sa.func.count().label("articles"),
                *(
                    sa.func.sum(sa.case((status == s, 1), else_=0)).label(s.value)
                    for s in ArticleStatus
                ),
                sa.func.max(col(Article.created_at)).label("last_article_at"),
            )
            .join(Article, col(Article.id) == col(Entry.article_id))
            .group_by(col(Entry.feed_id))
            .subquery()
        )
        query = sa.select(Feed, counts).outerjoin(counts, counts.c.feed_id == col(Feed.id))
        if feed_id is not None:
            query = query.where(col(Feed.id) == feed_id)
        query = query.order_by(
            (col(Feed.error_count) > 0).desc(),
            col(Feed.active).desc(),
            col(Feed.name),
            col(Feed.id),
        )
        with self._session() as session:
            rows = session.execute(query).all()
        return [
            FeedHealth(
                feed=row[0],
                articles=row.articles or 0,
                ok=row.ok or 0,
                pending=row.pending or 0,
                failed=row.failed or 0,
                last_article_at=_aware(row.last_article_at),
            )
            for row in rows
        ]

    def daily_counts(self, since: datetime) -> list[tuple[date, int, int]]:
        """(day, feed id, articles stored that day) from ``since`` on, by the feed that first
        listed each article; days are UTC."""
        day = sa.func.date(col(Article.created_at))
        query = (
            select(day, col(Article.feed_id), sa.func.count())
            .where(col(Article.created_at) >= since)
            .group_by(day, col(Article.feed_id))
            .order_by(day)
        )
        with self._session() as session:
            rows = session.execute(query).all()
        return [(_day(d), feed_id, count) for d, feed_id, count in rows]

    def capture(self, article_id: int) -> Capture:
        """The latest raw response kept for an article."""
        query = (
            select(Capture)
            .where(col(Capture.article_id) == article_id)
            .order_by(col(Capture.id).desc())
            .limit(1)
        )
        with self._session() as session:
            capture = session.exec(query).first()
        if capture is None:
            raise NotFoundError(f"no raw page kept for article {article_id}")
        return capture


def _aware(value: Any) -> datetime | None:
    """Aggregates lose the column type on SQLite: a text timestamp, read as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
