"""Re-checks: an archived page looked at again for changes (`[versions]`), the re-check half
of `ingest.pipeline.Ingestor`, beside `ingest.polling`'s feeds.

A re-check asks with the validators the page last gave; a 304 or the same story is noted and
the next re-check scheduled, a meaningful change becomes a new version (`Store.save_version`),
a 404 or 410 marks the article removed. Anything else is looked at again later: an archived
page is never marked failed by a re-check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TypeVar
from urllib.parse import urldefrag

from ingest import metrics
from ingest.config import Settings
from ingest.errors import FetchError, HTTPStatusError
from ingest.frontier import Frontier
from ingest.net import PAGE_ACCEPT, HttpClient
from ingest.polite import Robots
from ingest.records import PageJob
from ingest.store import Store
from ingest.summary import Tally
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.pipeline")

GONE_STATUSES = frozenset({404, 410})  # a re-checked page that answers so was taken down

T = TypeVar("T")


class PageRechecks:
    """`_recheck` and what it needs; the attributes are set by `Ingestor`."""

    settings: Settings
    store: Store
    http: HttpClient
    pool: ExtractorPool
    robots: Robots
    frontier: Frontier
    clock: Callable[[], datetime]
    tally: Tally
    _stored: Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

    async def _recheck(self, job: PageJob) -> None:
        """Look at an archived page again: a meaningful change becomes a new version, a 404
        or 410 marks the article removed; anything else waits for the next re-check."""
        assert job.recheck is not None
        steps = self.settings.versions.schedule
        self.tally.add("pages_rechecked")
        try:
            try:
                if self.settings.fetch.robots:
                    await self.robots.check(job.url)
                page = await self.http.get(
                    urldefrag(job.url).url,
                    max_bytes=self.settings.fetch.max_page_bytes,
                    accept=PAGE_ACCEPT,
                    decode=False,
                    etag=job.recheck.etag,
                    last_modified=job.recheck.last_modified,
                    allowed=self.robots.check if self.settings.fetch.robots else None,
                )
            finally:
                self.frontier.fetched(job)
            article = raw = None
            if page.status != 304:
                article, raw = await self.pool.extract(
                    page,
                    job.hints,
                    max_bytes=self.settings.fetch.max_page_bytes,
                    keep_raw=self.settings.extract.keep_raw,
                    fragment=job.fragment,
                )
        except HTTPStatusError as error:
            gone = error.status in GONE_STATUSES
            log.info(
                "page gone (%s), article kept" if gone else "re-check failed (%s)",
                error.reason,
                extra={"url": job.url, "article_id": job.article_id, "error": error.reason},
            )
            if gone:
                self.tally.add("articles_removed")
            metrics.RECHECKS.labels(outcome="gone" if gone else "failed").inc()
            await self._stored(self._write(lambda: self._recheck_failed(job, gone=gone)))
            return
        except FetchError as error:  # looked at again later: an archived page is not failed
            log.info(
                "re-check failed (%s)",
                error.reason,
                extra={"url": job.url, "article_id": job.article_id, "error": error.reason},
            )
            metrics.RECHECKS.labels(outcome="failed").inc()
            await self._stored(self._write(lambda: self._recheck_failed(job, gone=False)))
            return
        if article is None:  # 304: not modified
            write = lambda: self.store.recheck_unchanged(  # noqa: E731
                job.article_id, self.clock(), steps, page
            )
            await self._stored(self._write(write))
            metrics.RECHECKS.labels(outcome="unchanged").inc()
            return
        seen = replace(page, body=b"", fetched_at=self.clock())
        number = await self._stored(
            self._write(lambda: self.store.save_version(job.article_id, article, seen, raw, steps))
        )
        metrics.RECHECKS.labels(outcome="unchanged" if number is None else "changed").inc()
        if number is not None:
            self.tally.add("versions_new")
            log.info(
                "new version",
                extra={"url": job.url, "article_id": job.article_id, "version": number},
            )

    def _recheck_failed(self, job: PageJob, *, gone: bool) -> None:
        if gone:
            self.store.recheck_gone(job.article_id, self.clock())
        else:
            steps = self.settings.versions.schedule
            self.store.recheck_unchanged(job.article_id, self.clock(), steps, None)

    @staticmethod
    def _write(write: Callable[[], T]) -> Callable[[], Awaitable[T]]:
        """A store call as `_stored` takes it."""

        async def written() -> T:
            return write()

        return written
