"""The extraction worker pool: runs the extractor on every core.

Extraction is CPU-bound, so it runs in worker processes. The pool (and trafilatura's import)
starts on the first page that needs it, so a run where every feed answers 304 never pays for it.
A page crosses to its worker as it came from the network (compressed, most often: a fifth of
the bytes); the worker inflates it under the page cap, refuses what is not HTML, extracts, and
returns the article with the raw page as a zlib stream (`ingest.inflate.as_zlib`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from types import TracebackType
from typing import TYPE_CHECKING

from ingest.errors import ExtractionError
from ingest.inflate import as_zlib, decode_body
from ingest.records import ExtractedArticle, Hints, Page

if TYPE_CHECKING:  # pebble is imported when the pool starts: a re-poll never needs it
    from pebble import ProcessPool

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", ""})


def check_page(body: bytes, media_type: str, url: str) -> None:
    """Refuse what is not an HTML page (``media_type``: the bare Content-Type)."""
    if not body.strip():
        raise ExtractionError("empty page", url=url, reason="empty_page")
    head = body[:1024].lstrip().lower()
    if head.startswith((b"%pdf", b"\x89png", b"gif8", b"\xff\xd8\xff", b"pk\x03\x04")):
        raise ExtractionError("not an HTML page (binary content)", url=url, reason="not_html")
    if media_type not in HTML_TYPES and not head.startswith((b"<!doctype html", b"<html")):
        raise ExtractionError(f"not an HTML page ({media_type})", url=url, reason="not_html")


def _extract(
    page: Page, hints: Hints, keep_raw: bool, max_bytes: int, fragment: str | None
) -> tuple[ExtractedArticle, bytes | None, float]:
    """In a worker: inflate, check, extract; the raw page as a zlib stream with ``keep_raw``;
    and the CPU seconds the extraction itself took (what is not extraction is overhead)."""
    from ingest.extract import extract_article  # imported in the worker, not the parent

    body = decode_body(page.body, page.encoding, max_bytes=max_bytes, url=page.url)
    check_page(body, page.content_type, page.url)
    content_type = page.headers.get("content-type")
    started = time.process_time()
    article = extract_article(
        body, page.final_url, content_type=content_type, hints=hints, fragment=fragment
    )
    cpu = time.process_time() - started
    return article, as_zlib(page.body, page.encoding, body) if keep_raw else None, cpu


def _ready() -> None:
    """A no-op: scheduling it makes the pool start its workers."""


class ExtractorPool:
    """A lazily started pool of extraction processes; a page that takes longer than
    ``timeout`` seconds is abandoned and its worker process replaced."""

    def __init__(self, workers: int = 0, *, timeout: float = 30.0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self._pool: ProcessPool | None = None
        self._starting: asyncio.Task[ProcessPool] | None = None
        # CPU seconds the workers spent in the extractor itself: the rest of a run's CPU is
        # what fetching, storing and passing pages around cost (`ingest fetch` reports both).
        self.extract_cpu_seconds = 0.0

    def _start(self) -> ProcessPool:
        from pebble import ProcessPool

        # forkserver: workers fork from a clean process that has trafilatura preloaded, not
        # from our threaded, event-looped parent.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ingest.extract"])
        pool = ProcessPool(max_workers=self.workers, context=context)
        pool.schedule(_ready)  # makes pebble start the workers now
        return pool

    async def _get(self) -> ProcessPool:
        if self._pool is None:
            if self._starting is None:
                # Starting the forkserver and its workers blocks on pipes for about half a
                # second: in a thread, so fetching goes on meanwhile.
                self._starting = asyncio.create_task(asyncio.to_thread(self._start))
            self._pool = await self._starting
        return self._pool

    def warm(self) -> None:
        """Start the workers now (they preload the extractor), so the first page need not
        wait for them: called as soon as a feed yields pages to fetch."""
        if self._pool is None and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(asyncio.to_thread(self._start))

    async def extract(
        self,
        page: Page,
        hints: Hints,
        *,
        max_bytes: int,
        keep_raw: bool = False,
        fragment: str | None = None,
    ) -> tuple[ExtractedArticle, bytes | None]:
        """The clean article of ``page`` (with ``fragment``: the post it names there) and, with
        ``keep_raw``, its body as a zlib stream. A page still compressed (`Page.encoding`) may
        inflate to ``max_bytes`` at most."""
        future = (await self._get()).schedule(
            _extract, args=(page, hints, keep_raw, max_bytes, fragment), timeout=self.timeout
        )
        from pebble import ProcessExpired  # loaded by `_start` already

        try:
            article, raw, cpu = await asyncio.wrap_future(future)
        except TimeoutError as exc:
            raise ExtractionError(
                f"extraction took over {self.timeout:g}s: abandoned",
                url=page.url,
                reason="extract_timeout",
            ) from exc
        except ProcessExpired as exc:
            raise ExtractionError(
                f"extraction worker died ({exc})", url=page.url, reason="worker_died"
            ) from exc
        except asyncio.CancelledError:
            future.cancel()  # pebble stops the worker running it
            raise
        self.extract_cpu_seconds += cpu
        return article, raw

    def close(self) -> None:
        """Stop the workers (abandoning any extraction in flight) and wait for them."""
        starting, self._starting = self._starting, None
        started = starting is not None and starting.done() and not starting.cancelled()
        if self._pool is None and started and starting.exception() is None:
            self._pool = starting.result()
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=2)
            self._pool = None

    async def __aenter__(self) -> ExtractorPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._starting is not None and not self._starting.done():
            await asyncio.wait([self._starting])  # a pool half started would be left running
        self.close()
