"""Polling a feed: its document fetched (conditionally) and read (RSS, Atom, JSON Feed, or a
sitemap with its children), its new entries recorded before anything else, its next poll
scheduled from what the answer said; a failure recorded against the feed, never raised.

`FeedPolls` is the feed half of `ingest.pipeline.Ingestor`, which sets up what it shares
with the page half (settings, archive, client, clock, tally) and adds the pages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ingest import metrics, schedule, sitemaps
from ingest.config import FeedSettings, Settings
from ingest.errors import FetchError, HostBackoffError, StoreError, StoreUnavailableError
from ingest.models import Feed
from ingest.net import FEED_ACCEPT, SITEMAP_ACCEPT, HttpClient
from ingest.polite import host_of
from ingest.records import Page, PageJob, ParsedFeed
from ingest.store import Store
from ingest.summary import Failure, Progress, Tally
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.pipeline")

UNCHANGED_BATCH = 100  # 304 polls written in one transaction
NOT_STORED = "not_stored"  # failure reason: the database refused what a feed or page gave


class FeedPolls:
    """`poll` and what it needs; the attributes are set by `Ingestor`."""

    settings: Settings
    store: Store
    http: HttpClient
    pool: ExtractorPool
    clock: Callable[[], datetime]
    tally: Tally
    progress: Progress
    hold_new_pages: bool
    # This run's own settings of some feeds (`refresh`: `ingest fetch --since`, a feed not
    # in the config); the others are the config's, as it stands after a reload.
    options: dict[str, FeedSettings]
    _unchanged: list[tuple[int, datetime, float]]  # 304s to write

    def _fail(self, kind: str, error: FetchError) -> None:
        self.tally.failed(Failure(error.url, error.reason, str(error), kind))
        metrics.FAILURES.labels(kind=kind, reason=error.reason).inc()
        log.info(
            "%s failed (%s): %s",
            kind,
            error.reason,
            error,
            extra={"url": error.url, "error": error.reason},
        )
        if error.retry_at is not None and not isinstance(error, HostBackoffError):
            self.store.block_host(host_of(error.url), error.retry_at, error.reason)

    async def poll(self, feed: Feed) -> list[PageJob]:
        """Poll one feed, record its new entries, schedule its next poll; return the pages to
        fetch. Failures are recorded, never raised (but a database failure is)."""
        assert feed.id is not None
        started = time.monotonic()
        try:
            page = await self.http.get(
                feed.url,
                max_bytes=self.settings.fetch.max_feed_bytes,
                accept=FEED_ACCEPT,
                etag=feed.etag,
                last_modified=feed.last_modified,
            )
            chosen = None
            if page.status != 304:
                chosen = await self._read(feed, page)
        except FetchError as error:
            self._feed_failed(feed, error)
            return []
        except StoreError:
            raise  # the database (booking the host's next request slot), not the feed
        except Exception as exc:  # a bug must not stop the other feeds
            log.exception("feed crashed", extra={"feed_url": feed.url})
            self._feed_failed(
                feed, FetchError(f"internal error: {exc!r}", url=feed.url, reason="bug")
            )
            return []
        finally:
            metrics.FETCH_SECONDS.labels(kind="feed").observe(time.monotonic() - started)
            self.progress.done()
        if chosen is None:
            return self._not_modified(feed, page)
        try:
            return self._parsed(feed, page, chosen.parsed, skipped=chosen.skipped)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # what it lists will not go in (PostgreSQL refuses NUL bytes)
            self._feed_failed(
                feed, FetchError(f"not stored: {exc}", url=feed.url, reason=NOT_STORED)
            )
            return []

    def feed_options(self, url: str) -> FeedSettings:
        """The settings of the feed at ``url``: this run's, else the config's, else defaults."""
        found = self.options.get(url) or next(
            (f for f in self.settings.feeds if f.url == url), None
        )
        return found or FeedSettings(url=url)

    async def _read(self, feed: Feed, page: Page) -> sitemaps.Selection:
        """The feed's document (a 200): RSS, Atom, JSON Feed, or a sitemap with its children,
        fetched through the same client; a sitemap's URLs dated before the feed's ``since``
        (else its first poll minus ``sitemaps.backfill``) are left out."""
        assert feed.id is not None
        options = self.feed_options(feed.url)
        limits = self.settings.sitemaps
        started = feed.created_at or self.clock()
        max_bytes = self.settings.fetch.max_feed_bytes

        def fetch(url: str) -> Awaitable[Page]:
            return self.http.get(url, max_bytes=max_bytes, accept=SITEMAP_ACCEPT)

        return await sitemaps.read_document(
            page,
            sitemap=options.type == "sitemap",
            bound=options.since or started - timedelta(seconds=limits.backfill),
            fetch=fetch,
            listed_before=partial(self.store.listed_before, feed.id),
            limits=limits,
            max_bytes=max_bytes,
        )

    def _next_poll(
        self, feed: Feed, page: Page, parsed: ParsedFeed | None
    ) -> tuple[datetime, float]:
        now = self.clock()
        hints: dict[str, Any] = schedule.cache_hints(page.headers, now)
        if parsed is not None:
            hints |= schedule.feed_hints(parsed.ttl, parsed.update_period, parsed.update_frequency)
            hints["published"] = tuple(e.published for e in parsed.entries if e.published)
        seconds = schedule.interval(
            feed.fixed_interval,
            schedule.Timing(**hints),
            now,
            self.settings.schedule,
            previous=feed.interval,
        )
        return schedule.spread(now, seconds, feed.url), seconds

    def _not_modified(self, feed: Feed, page: Page) -> list[PageJob]:
        assert feed.id is not None
        next_poll_at, seconds = self._next_poll(feed, page, None)
        self.tally.add("feeds_not_modified")
        metrics.POLLS.labels(status="not_modified").inc()
        # Most polls of a healthy archive are 304s: they are written in batches.
        self._unchanged.append((feed.id, next_poll_at, seconds))
        if len(self._unchanged) >= UNCHANGED_BATCH:
            self.flush()
        return []

    def flush(self) -> None:
        """Write the 304s not written yet (until then a feed still looks due: call this
        before claiming due feeds; lost in a crash, they only mean an early re-poll)."""
        if self._unchanged:
            batch, self._unchanged = self._unchanged, []
            self.store.feeds_not_modified(batch)

    def _parsed(
        self, feed: Feed, page: Page, parsed: ParsedFeed, *, skipped: Sequence[str] = ()
    ) -> list[PageJob]:
        assert feed.id is not None
        if parsed.problem:
            # Recovered entries are kept, but the feed's fault is on record.
            self._fail("feed", FetchError(parsed.problem, url=feed.url, reason="malformed"))
        # Entries first: from here on nothing this feed listed can be lost.
        recorded = self.store.record_entries(
            feed, parsed.entries, hold=self.hold_new_pages, skipped=skipped
        )
        next_poll_at, seconds = self._next_poll(feed, page, parsed)
        self.store.feed_polled(
            feed.id,
            status="malformed" if parsed.problem else "ok",
            next_poll_at=next_poll_at,
            interval=seconds,
            problem=parsed.problem,
            parsed=parsed,
            etag=page.headers.get("etag"),
            last_modified=page.headers.get("last-modified"),
        )
        self.tally.add("entries_seen", len(parsed.entries))
        self.tally.add("entries_new", recorded.new_entries)
        # Entries without a link are complete with the feed's own content.
        self.tally.add("articles_new", recorded.feed_only)
        metrics.POLLS.labels(status="ok").inc()
        metrics.ENTRIES_NEW.inc(recorded.new_entries)
        metrics.ARTICLES.inc(recorded.feed_only)
        log.debug(
            "feed polled",
            extra={
                "feed_url": feed.url,
                "entries": len(parsed.entries),
                "new": recorded.new_entries,
                "separated": recorded.separated,
                "next_poll_at": next_poll_at.isoformat(),
            },
        )
        self.progress.add(len(recorded.jobs))
        if recorded.jobs:
            self.pool.warm()
        return recorded.jobs

    def _feed_failed(self, feed: Feed, error: FetchError) -> None:
        assert feed.id is not None
        now = self.clock()
        deferred = isinstance(error, HostBackoffError)  # we did not even ask
        count = feed.error_count + (0 if deferred else 1)
        delay = schedule.error_delay(count, self.settings.schedule) if count else 0.0
        next_poll_at = schedule.spread(now, delay, feed.url)
        if error.retry_at is not None:
            next_poll_at = max(next_poll_at, error.retry_at)
        if not deferred:
            self.tally.add("feeds_failed")
        metrics.POLLS.labels(status="error").inc()
        self._fail("feed", error)
        self.store.feed_polled(
            feed.id,
            status=error.reason,
            error=str(error),
            next_poll_at=next_poll_at,
            count_error=not deferred,
        )
