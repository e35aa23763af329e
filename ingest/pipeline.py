"""The use case: poll feeds -> record entries -> fetch pages -> clean articles in the archive.

`Ingestor` is the one code path for ingesting: `ingest fetch` runs it once over the configured
feeds (`refresh`), the daemon runs the same `poll` and `archive` on its clock. Every entry is
stored before its page is fetched; a failure is recorded against its feed or article, with when
to try again, and never stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ingest import metrics, schedule
from ingest.config import FeedSettings, Settings
from ingest.errors import FetchError, HostBackoffError, StoreError
from ingest.feeds import parse_feed
from ingest.models import Feed
from ingest.net import HttpClient
from ingest.polite import Robots, host_of
from ingest.records import Page, PageJob, ParsedFeed, utcnow
from ingest.store import Save, Store
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.pipeline")

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
ROBOTS_MAX_BYTES = 500_000
UNCHANGED_BATCH = 100  # 304 polls written in one transaction
# Articles are written together: those extracted within SAVE_WINDOW seconds of the first, up to
# SAVE_BATCH, in one transaction (a commit and a search-index flush cost more than a page's rows).
SAVE_BATCH = 32
SAVE_WINDOW = 0.25


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    reason: str
    message: str
    kind: str  # "feed" or "page"


class Tally(Protocol):
    """Where an `Ingestor` counts what it does (a run's summary, or nothing)."""

    def add(self, counter: str, n: int = 1) -> None: ...

    def failed(self, failure: Failure) -> None: ...


class NoTally:
    """For the daemon: its counts live in the metrics, and nothing may pile up in memory."""

    def add(self, counter: str, n: int = 1) -> None:
        pass

    def failed(self, failure: Failure) -> None:
        pass


@dataclass
class RunSummary:
    """What one refresh did; `to_dict` is the ``--format json`` output."""

    feeds: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_seen: int = 0
    entries_new: int = 0
    articles_new: int = 0
    articles_failed: int = 0
    articles_duplicate: int = 0
    pages_retried: int = 0
    failures: list[Failure] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    seconds: float = 0.0

    @property
    def completed(self) -> bool:
        """False when there were feeds to poll and not one of them could be."""
        return self.feeds == 0 or self.feeds_failed < self.feeds

    def add(self, counter: str, n: int = 1) -> None:
        setattr(self, counter, getattr(self, counter) + n)

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["seconds"] = round(self.seconds, 3)
        return data


class Progress(Protocol):
    """What the pipeline reports as it goes (the CLI draws a progress bar from it)."""

    def add(self, pages: int) -> None: ...

    def done(self, pages: int = 1) -> None: ...


class _NoProgress:
    def add(self, pages: int) -> None:
        pass

    def done(self, pages: int = 1) -> None:
        pass


class _Saves:
    """Articles waiting to be written together (`SAVE_BATCH`, `SAVE_WINDOW`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[Save, asyncio.Future[int | None]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, save: Save) -> asyncio.Future[int | None]:
        """The id `Store.save_article` gives ``save``, once its batch is written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self._waiting.append((save, future))
        if len(self._waiting) >= SAVE_BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(SAVE_WINDOW, self.flush)
        return future

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        try:
            stored = self.store.save_articles([save for save, _ in batch])
        except Exception as exc:  # a database failure: each page's task raises it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), article_id in zip(batch, stored, strict=True):
            if not future.done():
                future.set_result(article_id)


class Ingestor:
    """Polls feeds and archives their pages with one HTTP client and one extraction pool."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: HttpClient,
        pool: ExtractorPool,
        *,
        clock: Callable[[], datetime] = utcnow,
        tally: Tally | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.pool = pool
        self.clock = clock
        self.tally: Tally = tally or NoTally()
        self.progress = progress or _NoProgress()
        self.robots = Robots(self._get_robots, http.hosts, user_agent=settings.fetch.user_agent)
        # Bounds the pages held in memory between fetch and store.
        self._pages = asyncio.Semaphore(settings.fetch.concurrency)
        self.closing = False
        # A one-shot run fetches every page it finds; a daemon leaves them to be claimed by
        # whichever worker of the archive has room (`Daemon.retry`).
        self.hold_new_pages = True
        self._unchanged: list[tuple[int, datetime, float]] = []  # 304s to write
        self._saves = _Saves(store)
        store.lease = timedelta(seconds=settings.database.lease)
        http.hosts.shared = store  # host delays hold across every worker of the archive
        self.refresh_blocks()

    def refresh_blocks(self) -> None:
        """Learn the hosts that asked any worker of the archive to back off."""
        for host, until in self.store.blocked_hosts(self.clock()).items():
            self.http.hosts.block(host, until)

    async def _get_robots(self, url: str) -> Page:
        # RFC 9309: read at least 500 KiB and ignore the rest.
        return await self.http.get(
            url, max_bytes=ROBOTS_MAX_BYTES, accept="text/plain", truncate=True
        )

    def _fail(self, kind: str, error: FetchError) -> None:
        self.tally.failed(Failure(error.url, error.reason, str(error), kind))
        metrics.FAILURES.labels(kind=kind, reason=error.reason).inc()
        log.info("%s failed: %s", kind, error, extra={"url": error.url, "error": error.reason})
        if error.retry_at is not None and not isinstance(error, HostBackoffError):
            self.store.block_host(host_of(error.url), error.retry_at, error.reason)

    # --- feeds ---------------------------------------------------------------------------------

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
            parsed = None
            if page.status != 304:
                parsed = parse_feed(
                    page.body, url=page.final_url, content_type=page.headers.get("content-type")
                )
        except FetchError as error:
            self._feed_failed(feed, error)
            return []
        except Exception as exc:  # a bug must not stop the other feeds
            log.exception("feed crashed", extra={"feed_url": feed.url})
            self._feed_failed(
                feed, FetchError(f"internal error: {exc!r}", url=feed.url, reason="bug")
            )
            return []
        finally:
            metrics.FETCH_SECONDS.labels(kind="feed").observe(time.monotonic() - started)
            self.progress.done()
        if parsed is None:
            return self._not_modified(feed, page)
        return self._parsed(feed, page, parsed)

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

    def _parsed(self, feed: Feed, page: Page, parsed: ParsedFeed) -> list[PageJob]:
        assert feed.id is not None
        if parsed.problem:
            # Recovered entries are kept, but the feed's fault is on record.
            self._fail("feed", FetchError(parsed.problem, url=feed.url, reason="malformed"))
        # Entries first: from here on nothing this feed listed can be lost.
        recorded = self.store.record_entries(feed, parsed.entries, hold=self.hold_new_pages)
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
        log.info(
            "feed polled",
            extra={
                "feed_url": feed.url,
                "entries": len(parsed.entries),
                "new": recorded.new_entries,
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

    # --- pages ---------------------------------------------------------------------------------

    async def archive(self, job: PageJob) -> None:
        """Fetch, extract and store one article page; a failure is recorded with its retry."""
        async with self._pages:
            if self.closing:
                return  # shutting down: the page stays pending for the next start
            try:
                started = time.monotonic()
                if self.settings.fetch.robots:
                    await self.robots.check(job.url)
                max_bytes = self.settings.fetch.max_page_bytes
                # Still compressed: the extraction worker inflates it.
                page = await self.http.get(
                    job.url, max_bytes=max_bytes, accept=PAGE_ACCEPT, decode=False
                )
                metrics.FETCH_SECONDS.labels(kind="page").observe(time.monotonic() - started)
                started = time.monotonic()
                article, raw = await self.pool.extract(
                    page, job.hints, max_bytes=max_bytes, keep_raw=self.settings.extract.keep_raw
                )
                metrics.EXTRACT_SECONDS.observe(time.monotonic() - started)
            except FetchError as error:
                self._page_failed(job, error)
                return
            except Exception as exc:  # a bug must not stop the other pages
                log.exception("page crashed", extra={"url": job.url})
                error = FetchError(f"internal error: {exc!r}", url=job.url, reason="bug")
                self._page_failed(job, error)
                return
            finally:
                self.progress.done()
            # The body is not stored (`raw` is): not held while the batch gathers.
            page = replace(page, body=b"")
            stored = await self._saves.add((job, article, page, raw))
            if stored == job.article_id:
                self.tally.add("articles_new")
                metrics.ARTICLES.inc()
            else:
                self.tally.add("articles_duplicate")
            log.info("article stored", extra={"url": job.url, "article_id": stored})

    def _page_failed(self, job: PageJob, error: FetchError) -> None:
        self.tally.add("articles_failed")
        self._fail("page", error)
        attempts, next_attempt_at = schedule.page_retry(
            job.attempts,
            error,
            self.clock(),
            first_retry=self.settings.fetch.retry_after,
            max_attempts=self.settings.fetch.max_attempts,
        )
        self.store.save_failure(job, error, attempts=attempts, next_attempt_at=next_attempt_at)

    # --- one run -------------------------------------------------------------------------------

    async def run_once(self, feeds: Sequence[Feed]) -> None:
        """Poll ``feeds`` and archive their new pages, with the pages due for a retry."""
        retries = self.store.claim_pages(self.clock())
        self.tally.add("feeds", len(feeds))
        self.tally.add("pages_retried", sum(1 for job in retries if job.attempts > 0))
        self.progress.add(len(feeds) + len(retries))
        keeping = asyncio.get_running_loop().create_task(self._keep_leases())
        try:
            async with asyncio.TaskGroup() as group:
                for job in retries:
                    group.create_task(self.archive(job))
                for feed in feeds:
                    group.create_task(self._poll_and_archive(feed, group))
        finally:
            keeping.cancel()
            self.flush()

    async def _keep_leases(self) -> None:
        """A long run keeps its claims: other workers must not take pages it still has."""
        while True:
            await asyncio.sleep(self.settings.database.lease / 3)
            try:
                self.store.renew(self.clock())
            except StoreError as exc:  # the run's own writes will say so too
                log.error("leases not renewed: %s", exc, extra={"error": "store"})

    async def _poll_and_archive(self, feed: Feed, group: asyncio.TaskGroup) -> None:
        for job in await self.poll(feed):
            group.create_task(self.archive(job))


def select_feeds(settings: Settings, wanted: Sequence[str] = ()) -> list[FeedSettings]:
    """The configured feeds, or those named (by name or URL) in ``wanted``."""
    if not wanted:
        return list(settings.feeds)
    chosen = [f for f in settings.feeds if f.url in wanted or (f.name and f.name in wanted)]
    known = {f.url for f in chosen} | {f.name for f in chosen if f.name}
    extra = [w for w in wanted if w not in known]
    # A URL not in the config is polled as an ad-hoc feed; an unknown name is an error upstream.
    return chosen + [FeedSettings(url=w) for w in extra if w.startswith(("http://", "https://"))]


def first_store_error(group: BaseExceptionGroup[BaseException]) -> StoreError | None:
    """The database error that ended a task group, if that is what ended it."""
    first = group.exceptions[0]
    if isinstance(first, BaseExceptionGroup):
        return first_store_error(first)
    return first if isinstance(first, StoreError) else None


async def refresh(
    settings: Settings,
    store: Store,
    feeds: Sequence[FeedSettings],
    *,
    clock: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
) -> RunSummary:
    """Poll ``feeds`` once, archive every new article, retry failed pages that are due.

    Feeds another worker of the archive is polling right now are left to it.
    """
    store.lease = timedelta(seconds=settings.database.lease)
    store.release_orphans()
    rows = store.sync_feeds(feeds)
    claimed = store.claim_feeds(clock(), only=[r.id or 0 for r in rows], limit=max(len(rows), 1))
    if len(claimed) < len(rows):
        log.warning("%d feed(s) skipped: another worker is polling them", len(rows) - len(claimed))
    summary = RunSummary(started_at=clock())
    try:
        async with (
            HttpClient(settings.fetch) as http,
            ExtractorPool(settings.extract.workers, timeout=settings.extract.timeout) as pool,
        ):
            ingestor = Ingestor(
                settings, store, http, pool, clock=clock, tally=summary, progress=progress
            )
            await ingestor.run_once(claimed)
    except ExceptionGroup as group:
        # Only the database failing escapes a task (everything else is recorded): say so plainly.
        error = first_store_error(group)
        if error is not None:
            raise error from group
        raise
    finally:
        # Work left undone (an interrupted run) goes back to the other workers now.
        with contextlib.suppress(StoreError):
            store.release()
    summary.seconds = (clock() - summary.started_at).total_seconds()
    return summary
