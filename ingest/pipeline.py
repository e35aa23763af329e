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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urldefrag

from ingest import metrics, schedule
from ingest.config import FeedSettings, Settings
from ingest.entryparts import url_key
from ingest.errors import FetchError, StoreError, StoreUnavailableError
from ingest.frontier import Frontier
from ingest.models import Feed
from ingest.net import PAGE_ACCEPT, HttpClient
from ingest.polite import ROBOTS_MAX_BYTES, Robots
from ingest.polling import NOT_STORED, FeedPolls
from ingest.rechecking import PageRechecks
from ingest.records import Page, PageJob, utcnow
from ingest.saving import Saves
from ingest.store import Store
from ingest.summary import NoProgress, NoTally, Progress, RunSummary, Tally
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.pipeline")

# A page of several posts is read once for the posts a poll found on it, and kept no longer
# than this (the next poll is minutes away and may find it grown), nor more than a few at once.
POST_PAGE_FRESH = timedelta(seconds=60)
POST_PAGES = 8
RECHECKS_PER_RUN = 5000  # archived pages a one-shot run looks at again; the rest, next run

T = TypeVar("T")


class PostPages:
    """The pages posts (``page#post`` links) are read from: each fetched once for the posts
    of a poll, and afresh by a later one (a day page gains posts), few at a time."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._pages: OrderedDict[str, tuple[datetime, asyncio.Task[Page]]] = OrderedDict()

    def get(self, key: str, fetch: Callable[[], Coroutine[Any, Any, Page]]) -> asyncio.Task[Page]:
        """The fetch of the page ``key`` (its `url_key`) under way or done lately, else a new
        one (``fetch()``)."""
        now = self._clock()
        kept = self._pages.pop(key, None)
        if kept is None or now - kept[0] > POST_PAGE_FRESH or kept[1].cancelled():
            kept = (now, asyncio.get_running_loop().create_task(fetch()))
        self._pages[key] = kept
        while len(self._pages) > POST_PAGES:
            self._pages.popitem(last=False)
        return kept[1]


# The share of a request's time limit spent in database calls past which its timeout is not
# the page's: a store call holds the event loop (SQLite waits out a lock for up to 10 s). A
# busy run's ordinary calls add up to far less; a page excused again and again would need the
# database to stall that long during each of its tries.
STALLED = 0.25


class Ingestor(FeedPolls, PageRechecks):
    """Polls feeds (`FeedPolls`) and archives their pages with one HTTP client and one
    extraction pool, and looks again at archived pages due for a re-check (`PageRechecks`)."""

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
        self.progress = progress or NoProgress()
        self.robots = Robots(self._get_robots, http.hosts, user_agent=settings.fetch.user_agent)
        # Pages to fetch, a queue per host; it also bounds the pages held between fetch and
        # store to `fetch.concurrency`.
        self.frontier = Frontier(
            http.hosts,
            concurrency=settings.fetch.concurrency,
        )
        # Set while shutting down or while the database is unavailable: pages not started yet
        # are dropped (still pending in the database), those in flight finish.
        self.paused = False
        # Set by the daemon: a page's outcome the database was unavailable to take waits for
        # it (this returns once it answers again) and is stored then. Unset, the error rises.
        self.wait_for_database: Callable[[StoreUnavailableError], Awaitable[None]] | None = None
        # A one-shot run fetches every page it finds; a daemon leaves them to be claimed by
        # whichever worker of the archive has room (`Daemon.retry`).
        self.hold_new_pages = True
        self.options = {}
        self._unchanged = []
        self._post_pages = PostPages(clock)
        self._saves = Saves(store)  # articles written a batch at a time
        store.lease = timedelta(seconds=settings.database.lease)
        http.hosts.shared = store  # host delays hold across every worker of the archive
        # Articles saved are due for re-checks on this schedule (none while they are off).
        store.recheck_steps = settings.versions.schedule if settings.versions.recheck else ()
        # A run also looks again at the archived pages due for a re-check (`run_once`).
        self.rechecks = False
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

    # --- pages ---------------------------------------------------------------------------------

    async def dispatch(self, start: Callable[[PageJob], object]) -> None:
        """Hand each page of the frontier to ``start`` (which runs `archive` on it) as its
        host's turn comes, until the frontier is closed and empty."""
        while (job := await self.frontier.next()) is not None:
            start(job)

    async def archive(self, job: PageJob) -> None:
        """Fetch, extract and store one article page the frontier handed out; a failure is
        recorded with its retry."""
        try:
            await self._archive(job)
        finally:
            self.frontier.done(job)

    async def _archive(self, job: PageJob) -> None:
        if self.paused:
            return  # the page stays pending, for this worker or another to take up later
        if job.recheck is not None:
            await self._recheck(job)
            return
        busy = self.store.busy_seconds
        try:
            started = time.monotonic()
            try:
                if job.fragment is None:
                    page = await self._fetch_page(job.url)
                else:  # a post: its page may hold more posts of this poll, fetched once
                    url = urldefrag(job.url).url
                    fetch = self._post_pages.get(url_key(url), lambda: self._fetch_page(url))
                    page = await fetch
            finally:
                self.frontier.fetched(job)  # the host may take its next turn
            metrics.FETCH_SECONDS.labels(kind="page").observe(time.monotonic() - started)
            started = time.monotonic()
            article, raw = await self.pool.extract(
                page,
                job.hints,
                max_bytes=self.settings.fetch.max_page_bytes,
                keep_raw=self.settings.extract.keep_raw,
                fragment=job.fragment,
            )
            metrics.EXTRACT_SECONDS.observe(time.monotonic() - started)
        except FetchError as error:
            stalled = self.store.busy_seconds - busy
            if error.reason == "timeout" and stalled >= STALLED * self.settings.fetch.timeout:
                # The loop was held by the database (a locked SQLite file waits out its busy
                # timeout): the time ran out here, not at the server. Left pending, the page
                # is given back and fetched again, as when the database goes away.
                log.info(
                    "page left pending: the database held the loop %.1f s of its request",
                    stalled,
                    extra={"url": job.url},
                )
                return
            await self._page_failed(job, error)
            return
        except StoreError:
            raise  # the database (taking the host's turn in the archive), not the page
        except Exception as exc:  # a bug must not stop the other pages
            log.exception("page crashed", extra={"url": job.url})
            error = FetchError(f"internal error: {exc!r}", url=job.url, reason="bug")
            await self._page_failed(job, error)
            return
        finally:
            self.progress.done()
        # Not stored (`raw` is): the body is not held while the batch gathers. Its time is
        # the run's clock, which schedules its re-checks.
        save = (job, article, replace(page, body=b"", fetched_at=self.clock()), raw)
        try:
            stored = await self._stored(lambda: self._saves.add(save))
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # this article's data will not go in: retried, then kept
            await self._page_failed(
                job, FetchError(f"not stored: {exc}", url=job.url, reason=NOT_STORED)
            )
            return
        if stored == job.article_id:
            self.tally.add("articles_new")
            metrics.ARTICLES.inc()
        else:
            self.tally.add("articles_duplicate")
        log.debug("article stored", extra={"url": job.url, "article_id": stored})

    async def _fetch_page(self, url: str) -> Page:
        if self.settings.fetch.robots:
            await self.robots.check(url)
        # Still compressed: the extraction worker inflates it, under the same cap.
        return await self.http.get(
            url,
            max_bytes=self.settings.fetch.max_page_bytes,
            accept=PAGE_ACCEPT,
            decode=False,
            allowed=self.robots.check if self.settings.fetch.robots else None,
        )

    async def _page_failed(self, job: PageJob, error: FetchError) -> None:
        self.tally.add("articles_failed")
        self._fail("page", error)
        attempts, next_attempt_at = schedule.page_retry(
            job.attempts,
            error,
            self.clock(),
            first_retry=self.settings.fetch.retry_after,
            max_attempts=self.settings.fetch.max_attempts,
        )

        async def write() -> None:
            self.store.save_failure(job, error, attempts=attempts, next_attempt_at=next_attempt_at)

        await self._stored(write)

    async def _stored(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run ``write``, a page's outcome. While the database is unavailable and the daemon
        waits for it (`wait_for_database`), wait and write again: the page was fetched, and
        is not fetched again for want of a database."""
        while True:
            try:
                return await write()
            except StoreUnavailableError as exc:
                if self.wait_for_database is None:
                    raise
                await self.wait_for_database(exc)

    # --- one run -------------------------------------------------------------------------------

    async def run_once(self, feeds: Sequence[Feed]) -> None:
        """Poll ``feeds`` and archive their new pages, with the pages due for a retry."""
        retries = self.store.claim_pages(self.clock())
        rechecks = (
            self.store.claim_rechecks(self.clock(), limit=RECHECKS_PER_RUN) if self.rechecks else []
        )
        self.tally.add("feeds", len(feeds))
        self.tally.add("pages_retried", sum(1 for job in retries if job.attempts > 0))
        self.progress.add(len(feeds) + len(retries))
        self.frontier.open()
        self.frontier.add(retries)
        self.frontier.add(rechecks)  # behind new pages, host by host (`Frontier.add`)
        # Feeds in hand until polled (pages in hand are the frontier's): their leases are kept.
        polling = {feed.id or 0 for feed in feeds}
        keeping = asyncio.get_running_loop().create_task(self._keep_leases(polling))
        try:
            async with asyncio.TaskGroup() as group:
                polls = [
                    group.create_task(self._poll_into_frontier(feed, polling)) for feed in feeds
                ]
                group.create_task(self._close_frontier_after(polls))
                group.create_task(self.dispatch(lambda job: group.create_task(self.archive(job))))
        finally:
            keeping.cancel()
            self.flush()

    def renew(self, feeds: Iterable[int]) -> None:
        """Keep the leases on the work in hand: ``feeds`` being polled, the 304s not written
        yet, the pages of the frontier (queued or in flight). Give back the others: work
        dropped on the way returns to the archive."""
        unwritten = [feed_id for feed_id, _, _ in self._unchanged]
        self.store.renew(self.clock(), feeds=[*feeds, *unwritten], articles=self.frontier.held())

    async def _keep_leases(self, feeds: set[int]) -> None:
        """A long run keeps its claims: other workers must not take pages it still has."""
        while True:
            await asyncio.sleep(self.settings.database.lease / 3)
            try:
                self.renew(feeds)
            except StoreUnavailableError:
                pass  # the run's next write fails too, and ends it with the one error line
            except StoreError as exc:
                log.error("leases not renewed: %s", exc, extra={"error": "store"})

    async def _poll_into_frontier(self, feed: Feed, polling: set[int]) -> None:
        try:
            jobs = await self.poll(feed)
        finally:
            polling.discard(feed.id or 0)
        self.frontier.add(jobs)  # at once: no renewal between the poll's claim and this

    async def _close_frontier_after(self, polls: Sequence[asyncio.Task[None]]) -> None:
        """Once every feed is polled no page is added: the run ends when the frontier is
        empty."""
        if polls:
            await asyncio.wait(polls)
        self.frontier.close()


def select_feeds(settings: Settings, wanted: Sequence[str] = ()) -> list[FeedSettings]:
    """The configured feeds, or those named (by name or URL) in ``wanted``."""
    if not wanted:
        return list(settings.feeds)
    chosen = [f for f in settings.feeds if f.url in wanted or (f.name and f.name in wanted)]
    known = {f.url for f in chosen} | {f.name for f in chosen if f.name}
    extra = [w for w in wanted if w not in known]
    # A URL not in the config is polled once, not followed (`refresh`); an unknown name is an
    # error upstream.
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
    summary: RunSummary | None = None,
    rechecks: bool = False,
) -> RunSummary:
    """Poll ``feeds`` once, archive every new article, retry failed pages that are due; count
    in ``summary`` (a new one by default), which is also returned.

    With ``rechecks``, archived pages due for a re-check are looked at again (`[versions]`).
    Feeds another worker of the archive is polling right now are left to it. A feed of
    ``feeds`` not in the config is polled this once and not followed (`select_feeds`).
    """
    store.lease = timedelta(seconds=settings.database.lease)
    store.release_orphans()
    configured = {f.url for f in settings.feeds}
    rows = store.sync_feeds(
        [f for f in feeds if f.url in configured],
        once=[f for f in feeds if f.url not in configured],
        rules=settings.schedule,
    )
    claimed = store.claim_feeds(clock(), only=[r.id or 0 for r in rows], limit=max(len(rows), 1))
    if len(claimed) < len(rows):
        log.warning("%d feed(s) skipped: another worker is polling them", len(rows) - len(claimed))
    if summary is None:
        summary = RunSummary()
    summary.started_at = clock()
    try:
        async with (
            HttpClient(settings.fetch) as http,
            ExtractorPool(settings.extract.workers, timeout=settings.extract.timeout) as pool,
        ):
            ingestor = Ingestor(
                settings, store, http, pool, clock=clock, tally=summary, progress=progress
            )
            ingestor.options = {f.url: f for f in feeds}
            ingestor.rechecks = rechecks and settings.versions.recheck
            await ingestor.run_once(claimed)
            summary.extract_cpu_seconds = pool.extract_cpu_seconds
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
