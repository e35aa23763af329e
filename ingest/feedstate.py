"""The feeds table: feeds kept in step with the config, each poll's outcome and next poll time.

A feed's schedule lives in its row (next poll, interval, error count, validators), so that a
restarted daemon, or another worker, carries on where the last poll left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from ingest import schedule
from ingest.config import FeedSettings, ScheduleSettings
from ingest.dbsession import Database
from ingest.models import Feed, UTCDateTime
from ingest.records import ParsedFeed, utcnow


class FeedState(Database):
    """`Store`'s feeds: `sync_feeds`, `feed_polled`, `feeds_not_modified`, `feeds`."""

    def sync_feeds(
        self,
        configured: Sequence[FeedSettings],
        *,
        exclusive: bool = False,
        once: Sequence[FeedSettings] = (),
        rules: ScheduleSettings | None = None,
        before: ScheduleSettings | None = None,
    ) -> list[Feed]:
        """Make sure every configured feed has an active row, with its name, interval and tags;
        with ``exclusive``, feeds no longer configured are deactivated (kept, not polled).

        ``once``: feeds polled this once and not followed (`ingest fetch --feed URL` of a URL
        not in the config): a new one gets an inactive row, which no daemon polls; a known one
        is left as it is. Returns the rows of ``configured``, then of ``once``.

        With ``rules`` (the config's schedule), a feed whose interval the config changed takes the
        new one at once, and one it shortened has its next poll pulled in to its last poll plus
        the new interval (`ingest.schedule.reinterval`): a shorter interval does not wait out
        the longer one. ``before`` is the schedule the feeds were polled under (default: the
        same; then only their own ``interval`` keys can have changed, as the rows say).
        """
        now = utcnow()
        insert = self._insert(Feed)
        # One statement for all feeds (executemany): a config of a thousand feeds is read at
        # every start of `ingest fetch`.
        upsert = insert.on_conflict_do_update(
            index_elements=["url"],
            set_={
                "name": insert.excluded.name,
                "fixed_interval": insert.excluded.fixed_interval,
                "tags": insert.excluded.tags,
                "active": True,
            },
        )
        wanted = [c.url for c in configured]
        everything = [*wanted, *(f.url for f in once)]
        with self._session() as session:
            known = {
                f.url: f for f in session.exec(select(Feed).where(col(Feed.url).in_(everything)))
            }
            # Only new or changed feeds are written: `ingest fetch` reads a config of a
            # thousand feeds at every start, and they rarely change.
            rows = [
                _new_row(item, now, active=True)
                for item in configured
                if (feed := known.get(item.url)) is None
                or (feed.name, feed.fixed_interval, feed.tags, feed.active)
                != (item.name, item.interval, item.tags, True)
            ]
            if rows:
                session.execute(upsert, rows)  # one statement (executemany)
            new_once = [_new_row(f, now, active=False) for f in once if f.url not in known]
            if new_once:
                session.execute(insert.on_conflict_do_nothing(index_elements=["url"]), new_once)
            changed = _reintervals(configured, known, rules, before or rules) if rules else []
            if changed:
                session.connection().execute(
                    sa.update(Feed)
                    .where(col(Feed.id) == sa.bindparam("feed_id"))
                    .values(
                        interval=sa.bindparam("seconds"),
                        next_poll_at=sa.bindparam("next_at", type_=UTCDateTime()),
                    ),
                    changed,
                )
            if exclusive:
                session.execute(
                    sa.update(Feed)
                    .where(col(Feed.url).not_in(wanted), col(Feed.active))
                    .values(active=False)
                )
            session.commit()
            if rows or new_once or changed:
                session.expire_all()  # the rows read above are stale now
                fresh = session.exec(select(Feed).where(col(Feed.url).in_(everything)))
                known = {f.url: f for f in fresh}
            return [known[url] for url in everything]

    def feed_polled(
        self,
        feed_id: int,
        *,
        status: str,
        next_poll_at: datetime | None = None,
        interval: float | None = None,
        parsed: ParsedFeed | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        error: str | None = None,
        problem: str | None = None,
        count_error: bool = True,
    ) -> None:
        """Record the outcome of one poll of a feed and when to poll it next. An ``error``
        counts towards its error count (unless ``count_error`` is false: we did not even ask);
        a ``problem`` (a malformed feed that still gave entries) is only noted."""
        # One UPDATE, no read first: a daemon records thousands of 304s an hour.
        values: dict[str, Any] = {
            "last_polled_at": utcnow(),
            "last_status": status,
            "next_poll_at": next_poll_at,
            "lease_owner": None,
            "lease_until": None,
        }
        if interval is not None:
            values["interval"] = interval
        if error is None:
            values |= {"error_count": 0, "last_error": problem}
        else:
            values["last_error"] = error
            if count_error:
                values["error_count"] = col(Feed.error_count) + 1
        if parsed is not None:
            values |= {
                "title": sa.func.coalesce(parsed.title, col(Feed.title)),
                "site_url": sa.func.coalesce(parsed.site_url, col(Feed.site_url)),
                "language": sa.func.coalesce(parsed.language, col(Feed.language)),
                # A 200 without validators must not keep the old ones: they would never match.
                "etag": etag,
                "last_modified": last_modified,
            }
        with self._session() as session:
            session.execute(sa.update(Feed).where(col(Feed.id) == feed_id).values(**values))
            session.commit()

    def feeds_not_modified(self, polls: Sequence[tuple[int, datetime, float]]) -> None:
        """Record many 304 polls at once: (feed id, next poll time, interval chosen)."""
        update = (
            sa.update(Feed)
            .where(col(Feed.id) == sa.bindparam("feed_id"))
            .values(
                last_polled_at=sa.bindparam("polled_at", type_=UTCDateTime()),
                last_status="not_modified",
                next_poll_at=sa.bindparam("next_at", type_=UTCDateTime()),
                interval=sa.bindparam("seconds"),
                error_count=0,
                last_error=None,
                lease_owner=None,
                lease_until=None,
            )
        )
        now = utcnow()
        rows = [
            {"feed_id": feed_id, "polled_at": now, "next_at": next_at, "seconds": seconds}
            for feed_id, next_at, seconds in polls
        ]
        with self._session() as session:
            session.connection().execute(update, rows)
            session.commit()

    def feeds(self) -> list[Feed]:
        with self._session() as session:
            return list(session.exec(select(Feed).order_by(col(Feed.id))))


def _new_row(item: FeedSettings, now: datetime, *, active: bool) -> dict[str, Any]:
    return {
        "url": item.url,
        "name": item.name,
        "fixed_interval": item.interval,
        "tags": item.tags,
        "active": active,
        "created_at": now,
        "error_count": 0,
    }


def _reintervals(
    configured: Sequence[FeedSettings],
    known: dict[str, Feed],
    rules: ScheduleSettings,
    before: ScheduleSettings,
) -> list[dict[str, Any]]:
    """The feeds whose interval the config changed: their new interval, and their next poll,
    pulled in when the interval is shorter (a failing feed keeps its back-off)."""
    changed = []
    for item in configured:
        feed = known.get(item.url)
        if feed is None or feed.interval is None:
            continue  # never polled: due already, its interval chosen at its first poll
        seconds = schedule.reinterval(
            feed.interval,
            fixed_before=feed.fixed_interval,
            fixed=item.interval,
            before=before,
            rules=rules,
        )
        if seconds is None:
            continue
        next_at = feed.next_poll_at
        if next_at is not None and feed.last_polled_at is not None and not feed.error_count:
            next_at = min(next_at, schedule.spread(feed.last_polled_at, seconds, feed.url))
        changed.append({"feed_id": feed.id, "seconds": seconds, "next_at": next_at})
    return changed
