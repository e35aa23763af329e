"""The extraction worker pool: decides what reaches the extractor and runs it on every core.

Extraction is CPU-bound, so it runs in worker processes. The pool (and trafilatura's import)
starts on the first page that needs it, so a run where every feed answers 304 never pays for it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from ingest.errors import ExtractionError
from ingest.models import ExtractedArticle, Hints, Page

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", ""})


def check_page(page: Page) -> None:
    """Refuse what is not an HTML page before it is shipped to a worker."""
    if not page.body.strip():
        raise ExtractionError("empty page", url=page.url, reason="empty_page")
    head = page.body[:1024].lstrip().lower()
    if head.startswith((b"%pdf", b"\x89png", b"gif8", b"\xff\xd8\xff", b"pk\x03\x04")):
        raise ExtractionError("not an HTML page (binary content)", url=page.url, reason="not_html")
    if page.content_type not in HTML_TYPES and not head.startswith((b"<!doctype html", b"<html")):
        raise ExtractionError(
            f"not an HTML page ({page.content_type})", url=page.url, reason="not_html"
        )


def _extract(body: bytes, url: str, content_type: str | None, hints: Hints) -> ExtractedArticle:
    from ingest.extract import extract_article  # imported in the worker, not the parent

    return extract_article(body, url, content_type=content_type, hints=hints)


class ExtractorPool:
    """A lazily started process pool running `ingest.extract.extract_article`."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # forkserver: workers fork from a clean process that has trafilatura preloaded,
            # not from our threaded, event-looped parent.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["ingest.extract"])
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._executor

    async def extract(self, page: Page, hints: Hints) -> ExtractedArticle:
        check_page(page)
        loop = asyncio.get_running_loop()
        content_type = page.headers.get("content-type")
        try:
            return await loop.run_in_executor(
                self._pool(), _extract, page.body, page.final_url, content_type, hints
            )
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory): start afresh for the next page.
            self.close()
            raise ExtractionError(
                "extraction worker died", url=page.url, reason="worker_died"
            ) from exc

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> ExtractorPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
