"""Leases: work (a feed's poll, an article's page) claimed by one worker at a time.

Several processes may share one archive: a worker leases what it takes for `Database.lease`,
renews the leases on the work in hand, and gives back the rest; a crashed worker's leases run
out (or, on its own machine, are freed at once) and its work returns to the others.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from ingest.dbsession import Database, owner_is_dead
from ingest.models import CLAIMABLE, Article, ArticleStatus, Feed, Host
from ingest.records import Hints, PageJob


class Claims(Database):
    """`Store`'s leases: `claim_feeds`, `claim_pages`, `renew`, `release`,
    `release_orphans`, `pending_pages`."""

    def claim_feeds(
        self, now: datetime, *, limit: int = 100, only: Sequence[int] | None = None
    ) -> list[Feed]:
        """Lease to this worker the active feeds whose time has come (never polled ones first,
        then soonest first), or with ``only`` those feeds whether due or not (and whether
        active or not: a feed polled once, not followed, is inactive). A feed another worker
        holds is skipped: no feed is polled by two workers at once."""
        if only is None:
            pick = (
                select(Feed.id)
                .where(col(Feed.active))
                .where(col(Feed.next_poll_at).is_(None) | (col(Feed.next_poll_at) <= now))
                .order_by(col(Feed.next_poll_at).is_not(None), col(Feed.next_poll_at))
            )
        else:
            pick = select(Feed.id).where(col(Feed.id).in_(list(only)))
        feeds: list[Feed] = self._claim(Feed, pick.limit(limit), now)
        if only is not None:
            order = {feed_id: n for n, feed_id in enumerate(only)}
            return sorted(feeds, key=lambda f: order[f.id or 0])
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(feeds, key=lambda f: (f.next_poll_at is not None, f.next_poll_at or far))

    def claim_pages(
        self,
        now: datetime,
        *,
        limit: int | None = None,
        per_host: int | None = None,
        own_hosts: bool = False,
    ) -> list[PageJob]:
        """Lease to this worker pages to fetch (pending, or failed with their retry time come),
        a host at a time in turn: each host's oldest page, then each host's second, and so on
        (up to ``per_host`` of each), so that ``limit`` pages spread over every host with work.
        Skipped: hosts that asked every worker to wait (Retry-After), and with ``own_hosts``
        hosts another worker holds pages of: under a delay a host is best served by one worker
        at a time, which keeps its pace (and reads its robots.txt once) without waiting on
        another worker's turns there."""
        free = col(Article.lease_until).is_(None) | (col(Article.lease_until) < now)
        blocked = select(Host.host).where(col(Host.blocked_until) > now)
        ours = col(Article.host).not_in(blocked)
        if own_hosts:
            elsewhere = select(Article.host).where(
                col(Article.lease_owner).is_not(None),  # the partial index of leases
                col(Article.lease_owner) != self.owner,
                col(Article.lease_until) >= now,
                col(Article.host).is_not(None),
            )
            ours &= col(Article.host).not_in(elsewhere)
        turn = sa.func.row_number().over(partition_by=col(Article.host), order_by=col(Article.id))
        queue = (
            select(
                col(Article.id).label("id"),
                turn.label("turn"),
                # Within a turn, hosts whose next request slot comes soonest (idle ones first).
                sa.func.coalesce(col(Host.next_request_at), 0.0).label("slot"),
            )
            .select_from(Article)
            .outerjoin(Host, col(Host.host) == col(Article.host))
            .where(
                sa.text(f"({CLAIMABLE})"),  # as the partial index says it: the index is used
                col(Article.url).is_not(None),
                (col(Article.status) == ArticleStatus.PENDING)
                | (col(Article.next_attempt_at) <= now),
                free,
                col(Article.host).is_(None) | ours,
            )
            .subquery()
        )
        # The window is computed apart from the locking SELECT (PostgreSQL refuses FOR UPDATE
        # beside a window function); `_claim` locks what it picks, skipping rows being claimed.
        turns = select(queue.c.id).order_by(queue.c.turn, queue.c.slot, queue.c.id).limit(limit)
        if per_host is not None:
            turns = turns.where(queue.c.turn <= per_host)
        pick = select(Article.id).where(col(Article.id).in_(turns.scalar_subquery()))
        rows = sorted(self._claim(Article, pick, now), key=lambda a: a.id or 0)
        return [page_job(a) for a in rows]

    def _claim(self, model: Any, pick: Any, now: datetime) -> list[Any]:
        """Lease to this worker the rows of ``model`` that ``pick`` (a SELECT of their ids)
        finds and no live lease holds, in one statement; returns them."""
        free = col(model.lease_until).is_(None) | (col(model.lease_until) < now)
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        # SQLite: the UPDATE holds the database's write lock, which serialises claims anyway.
        pick = pick.where(free).with_for_update(skip_locked=True)
        claim = (
            sa.update(model)
            .where(col(model.id).in_(pick.scalar_subquery()))
            .values(lease_owner=self.owner, lease_until=now + self.lease)
            .returning(model)
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            rows = list(session.execute(claim).scalars())
            session.commit()
        return rows

    def renew(self, now: datetime, *, feeds: Iterable[int], articles: Iterable[int]) -> int:
        """Extend this worker's leases on the work in hand (``feeds`` and ``articles``) and
        give back every other lease it holds: work it dropped (a task that died, an outcome
        the database would not take) returns to the archive at once rather than staying
        leased to a worker that has forgotten it. Returns how many leases were given back."""
        freed = 0
        with self._session() as session:
            for model, held in ((Feed, feeds), (Article, articles)):
                mine = col(model.lease_owner) == self.owner
                in_hand = self._among(col(model.id), held)
                session.execute(
                    sa.update(model).where(mine, in_hand).values(lease_until=now + self.lease)
                )
                dropped = session.execute(
                    sa.update(model)
                    .where(mine, ~in_hand)
                    .values(lease_owner=None, lease_until=None)
                )
                freed += dropped.rowcount
            session.commit()
        return freed

    def release(self, *, articles: Iterable[int] | None = None) -> None:
        """Give back this worker's leases (``articles``: only those pages) so that other
        workers may take the work now rather than when the lease runs out."""
        with self._session() as session:
            for model in (Feed, Article) if articles is None else (Article,):
                chosen = sa.true() if articles is None else self._among(col(model.id), articles)
                session.execute(
                    sa.update(model)
                    .where(col(model.lease_owner) == self.owner, chosen)
                    .values(lease_owner=None, lease_until=None)
                )
            session.commit()

    def release_orphans(self) -> int:
        """Free the leases of dead workers of this machine (same host name, a process that
        is gone, or this very pid under an earlier token: a restart), so that a restarted
        worker resumes its predecessor's work at once rather than when the leases run out.
        Returns how many owners were found dead."""
        host = socket.gethostname()
        with self._session() as session:
            owners: set[str] = set()
            for model in (Feed, Article):
                owners.update(
                    session.exec(
                        select(model.lease_owner)
                        .where(
                            col(model.lease_owner).is_not(None),  # the partial index
                            col(model.lease_owner).startswith(f"{host}:", autoescape=True),
                        )
                        .distinct()
                    )
                )
            dead = [o for o in owners if o and o != self.owner and owner_is_dead(o)]
            for model in (Feed, Article):
                if dead:
                    session.execute(
                        sa.update(model)
                        .where(col(model.lease_owner).in_(dead))
                        .values(lease_owner=None, lease_until=None)
                    )
            session.commit()
        return len(dead)

    def pending_pages(self) -> int:
        """Article pages recorded but not fetched yet."""
        with self._session() as session:
            query = select(sa.func.count()).where(col(Article.status) == ArticleStatus.PENDING)
            return session.exec(query).one()


def page_job(article: Article) -> PageJob:
    """The page job of an article left to fetch; a post's (its key ``page#post``) carries its
    fragment and the entry's own text, the post's text should the page not hold it."""
    _, mark, fragment = (article.url_key or "").partition("#")
    return PageJob(
        article.id or 0,
        article.url or "",
        article.attempts,
        Hints(
            title=article.title,
            authors=tuple(article.authors),
            published=article.published,
            updated=article.updated,
            language=article.language,
            summary=article.summary,
            content=article.text if mark else None,
        ),
        fragment=fragment if mark else None,
    )
