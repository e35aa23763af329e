"""The use case: refresh feeds -> entries -> pages -> clean articles in the archive.

`refresh` is the one code path for ingesting, whether `ingest fetch` or the daemon triggers it.
Every entry is stored before its page is fetched; a failure is recorded against its feed or
article and never stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ingest.config import FeedSettings, Settings
from ingest.errors import FetchError, StoreError
from ingest.feeds import parse_feed
from ingest.models import Feed, PageJob, utcnow
from ingest.net import HttpClient
from ingest.store import Store
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.pipeline")

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    reason: str
    message: str
    kind: str  # "feed" or "page"


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


class Refresh:
    """One run over a set of feeds, sharing one HTTP client and one extraction pool."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: HttpClient,
        pool: ExtractorPool,
        *,
        clock: Callable[[], datetime] = utcnow,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http
        self.pool = pool
        self.clock = clock
        self.progress = progress or _NoProgress()
        self.summary = RunSummary(started_at=clock())
        # Bounds the pages held in memory between fetch and store.
        self._pages = asyncio.Semaphore(settings.fetch.concurrency)

    async def run(self, feeds: Sequence[Feed]) -> RunSummary:
        retries = self.store.due_pages(self.clock())
        self.summary.feeds = len(feeds)
        self.summary.pages_retried = sum(1 for job in retries if job.attempts > 0)
        self.progress.add(len(feeds) + len(retries))
        async with asyncio.TaskGroup() as group:
            for job in retries:
                group.create_task(self._page(job))
            for feed in feeds:
                group.create_task(self._feed(feed, group))
        self.summary.seconds = (self.clock() - self.summary.started_at).total_seconds()
        return self.summary

    def _fail(self, kind: str, error: FetchError) -> None:
        self.summary.failures.append(Failure(error.url, error.reason, str(error), kind))
        log.info(
            "%s failed: %s",
            kind,
            error,
            extra={"url": error.url, "error": error.reason, "kind": kind},
        )

    async def _feed(self, feed: Feed, group: asyncio.TaskGroup) -> None:
        assert feed.id is not None
        try:
            page = await self.http.get(
                feed.url,
                max_bytes=self.settings.fetch.max_feed_bytes,
                accept=FEED_ACCEPT,
                etag=feed.etag,
                last_modified=feed.last_modified,
            )
            if page.status == 304:
                self.summary.feeds_not_modified += 1
                self.store.feed_polled(feed.id, status="not_modified")
                return
            parsed = parse_feed(
                page.body, url=page.final_url, content_type=page.headers.get("content-type")
            )
        except FetchError as error:
            self.summary.feeds_failed += 1
            self._fail("feed", error)
            self.store.feed_polled(feed.id, status=error.reason, error=str(error))
            return
        except Exception as exc:  # a bug must not stop the other feeds
            log.exception("feed crashed", extra={"feed_url": feed.url})
            self.summary.feeds_failed += 1
            self._fail("feed", FetchError(f"internal error: {exc!r}", url=feed.url, reason="bug"))
            self.store.feed_polled(feed.id, status="bug", error=repr(exc))
            return
        finally:
            self.progress.done()
        if parsed.problem:
            # Recovered entries are kept, but the feed's fault is on record.
            self._fail("feed", FetchError(parsed.problem, url=feed.url, reason="malformed"))
        self.store.feed_polled(
            feed.id,
            status="malformed" if parsed.problem else "ok",
            problem=parsed.problem,
            parsed=parsed,
            etag=page.headers.get("etag"),
            last_modified=page.headers.get("last-modified"),
        )
        recorded = self.store.record_entries(feed, parsed.entries)
        self.summary.entries_seen += len(parsed.entries)
        self.summary.entries_new += recorded.new_entries
        # Entries without a link are complete with the feed's own content.
        self.summary.articles_new += recorded.feed_only
        log.info(
            "feed polled",
            extra={
                "feed_url": feed.url,
                "entries": len(parsed.entries),
                "new": recorded.new_entries,
            },
        )
        self.progress.add(len(recorded.jobs))
        for job in recorded.jobs:
            group.create_task(self._page(job))

    async def _page(self, job: PageJob) -> None:
        async with self._pages:
            try:
                page = await self.http.get(
                    job.url, max_bytes=self.settings.fetch.max_page_bytes, accept=PAGE_ACCEPT
                )
                article = await self.pool.extract(page, job.hints)
            except FetchError as error:
                self._record_failure(job, error)
                return
            except Exception as exc:  # a bug must not stop the other pages
                log.exception("page crashed", extra={"url": job.url})
                self._record_failure(
                    job, FetchError(f"internal error: {exc!r}", url=job.url, reason="bug")
                )
                return
            finally:
                self.progress.done()
            stored = self.store.save_article(
                job, article, page, keep_raw=self.settings.extract.keep_raw
            )
            if stored == job.article_id:
                self.summary.articles_new += 1
            else:
                self.summary.articles_duplicate += 1
            log.info("article stored", extra={"url": job.url, "article_id": stored})

    def _record_failure(self, job: PageJob, error: FetchError) -> None:
        self.summary.articles_failed += 1
        self._fail("page", error)
        self.store.save_failure(
            job,
            error,
            now=self.clock(),
            first_retry=self.settings.fetch.retry_after,
            max_attempts=self.settings.fetch.max_attempts,
        )


def select_feeds(settings: Settings, wanted: Sequence[str] = ()) -> list[FeedSettings]:
    """The configured feeds, or those named (by name or URL) in ``wanted``."""
    if not wanted:
        return list(settings.feeds)
    chosen = [f for f in settings.feeds if f.url in wanted or (f.name and f.name in wanted)]
    known = {f.url for f in chosen} | {f.name for f in chosen if f.name}
    extra = [w for w in wanted if w not in known]
    # A URL not in the config is polled as an ad-hoc feed; an unknown name is an error upstream.
    return chosen + [FeedSettings(url=w) for w in extra if w.startswith(("http://", "https://"))]


async def refresh(
    settings: Settings,
    store: Store,
    feeds: Sequence[FeedSettings],
    *,
    clock: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
    http: HttpClient | None = None,
    pool: ExtractorPool | None = None,
) -> RunSummary:
    """Poll ``feeds`` once, fetch and archive every new article, retry failed pages that are due."""
    rows = store.sync_feeds(feeds)
    try:
        async with (
            http or HttpClient(settings.fetch) as client,
            pool or ExtractorPool(settings.extract.workers) as workers,
        ):
            run = Refresh(settings, store, client, workers, clock=clock, progress=progress)
            return await run.run(rows)
    except ExceptionGroup as group:
        # Only the database failing escapes a task (everything else is recorded): say so plainly.
        first = _first_leaf(group)
        if isinstance(first, StoreError):
            raise first from group
        raise


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
