"""Archived articles made again from their kept raw capture, with no network.

A fix to decoding or extraction reaches the articles already stored: ``ingest reextract``
runs each selected article's captured page (the bytes as they came, `Capture`) through the
extraction workers again and stores what changed. ``garbled`` selects the articles whose text
or title shows a decoding error: U+FFFD where bytes could not be read, or UTF-8 read as
windows-1252 ("CafÃ©", "itâ€™s"); otherwise every article an older extractor made (or one
unknown: `Article.extractor`), so that a run stopped at any point, even by ``kill -9``, is
carried on by the next one from where its last batch was committed.

Captures are read a batch at a time, at most a few pages per worker are in flight, and they
go to the workers as stored (a zlib stream: a fifth of the bytes to pickle), so memory does not
grow with the archive. Outcomes are committed `WRITE_BATCH` at a time, in a thread, while the
workers go on: a kill loses at most a batch, which the next run extracts again.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.archiving import KEPT_WHEN_MISSING, extraction_values
from ingest.claims import page_job
from ingest.errors import FetchError, StoreError, StoreUnavailableError
from ingest.records import ExtractedArticle, Hints, Page
from ingest.workers import ExtractorPool

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.models import Article, Capture
    from ingest.search import Filters
    from ingest.store import Store

# U+FFFD, or the windows-1252 reading of a UTF-8 sequence: "Ã" + a continuation byte's
# letter, or "â€" (the start of every UTF-8 quote, dash and ellipsis).
_GARBLED = re.compile("\ufffd|â€|Ã[\u00a0-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]")
# Pages handed to the pool per worker: one extracting, one pickled and waiting, so a worker
# never waits for the parent; more would only hold memory.
IN_FLIGHT_PER_WORKER = 2
READ_BATCH = 100  # articles (with their captures, ~35 KB each) read in one query
# Outcomes committed together: one commit and one flush of the search index for all of them.
# What a kill loses (done again by the next run) is at most this many, or WRITE_SECONDS' worth.
WRITE_BATCH = 100
WRITE_SECONDS = 2.0
FAILURES_KEPT = 100  # failures named in the summary; the others are counted


def is_garbled(text: str | None) -> bool:
    return bool(text) and _GARBLED.search(text or "") is not None


@dataclass
class Reextracted:
    """What a re-extraction did."""

    extractor: str  # the one that ran (`ingest.extract.EXTRACTOR`)
    checked: int = 0  # articles selected
    changed: int = 0  # articles whose stored text or metadata changed
    unchanged: int = 0
    current: int = 0  # not selected: the current extractor made them already (--all)
    no_capture: int = 0  # no raw page kept (`extract.keep_raw` off when they were fetched)
    failed: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # id -> why, the first ones


def _page(article: Article, capture: Capture, body: bytes) -> Page:
    """The captured response as the workers take a fetched page (``body``: the page as it was
    received, `Store.capture_body`)."""
    return Page(
        url=article.url or capture.url,
        final_url=capture.url,
        status=capture.status,
        headers=dict(capture.headers),
        body=body,
        fetched_at=capture.fetched_at or article.fetched_at,  # type: ignore[arg-type]
    )


def _hints(article: Article) -> Hints:
    """What the feed said, as the article row keeps it, less any garbled field."""
    hints = page_job(article).hints
    return Hints(
        title=None if is_garbled(hints.title) else hints.title,
        authors=tuple(a for a in hints.authors if not is_garbled(a)),
        published=hints.published,
        updated=hints.updated,
        language=hints.language,
        summary=None if is_garbled(hints.summary) else hints.summary,
        content=hints.content,
    )


def differs(article: Article, new: ExtractedArticle) -> bool:
    """Whether storing ``new`` would change what ``article`` holds (its text, where it came
    from, or metadata the new extraction has)."""
    for key, value in extraction_values(new).items():
        name = key.removeprefix("new_")
        if name in {"extractor", "content_hash"} or (value is None and name in KEPT_WHEN_MISSING):
            continue
        if value != getattr(article, name):
            return True
    return False


class _Writes:
    """Outcomes waiting to be committed together, one commit at a time, in a thread: the
    event loop goes on handing pages to the workers meanwhile."""

    def __init__(self, store: Store, extractor: str) -> None:
        self.store = store
        self.extractor = extractor
        self.replaced: list[tuple[int, ExtractedArticle]] = []
        self.unchanged: list[int] = []
        self.since = time.monotonic()
        self._writing: asyncio.Task[None] | None = None

    async def add(self, article_id: int, new: ExtractedArticle | None) -> None:
        """``new`` replaces the article's extraction; None: it stays, made by the current
        extractor all the same."""
        if new is None:
            self.unchanged.append(article_id)
        else:
            self.replaced.append((article_id, new))
        waiting = len(self.replaced) + len(self.unchanged)
        if waiting >= WRITE_BATCH or time.monotonic() - self.since >= WRITE_SECONDS:
            await self.flush(wait=False)

    async def flush(self, *, wait: bool = True) -> None:
        """Commit what waits (after the commit before it); with ``wait``, until it is in."""
        if self._writing is not None:
            await self._writing  # its database error, if any, ends the run
            self._writing = None
        replaced, self.replaced = self.replaced, []
        unchanged, self.unchanged = self.unchanged, []
        self.since = time.monotonic()
        if replaced or unchanged:
            self._writing = asyncio.create_task(
                asyncio.to_thread(
                    self.store.replace_extraction,
                    replaced,
                    extractor=self.extractor,
                    unchanged=unchanged,
                )
            )
        if wait and self._writing is not None:
            await self._writing
            self._writing = None


async def reextract(
    store: Store,
    settings: Settings,
    filters: Filters,
    *,
    garbled: bool,
    workers: int | None = None,
) -> Reextracted:
    """Re-extract the archived articles matching ``filters`` from their captures, on
    ``workers`` processes (default ``extract.workers``: 0 is one per core), and store each one
    that changed. With ``garbled``: only those whose text or title is garbled; otherwise those
    the current extractor did not make."""
    from ingest.extract import EXTRACTOR  # the extractor the workers run (and its imports)

    done = Reextracted(EXTRACTOR)
    if not garbled:
        done.current = store.count_made_by(filters, EXTRACTOR)
    writes = _Writes(store, EXTRACTOR)
    pool = ExtractorPool(
        settings.extract.workers if workers is None else workers, timeout=settings.extract.timeout
    )
    slots = asyncio.Semaphore(pool.workers * IN_FLIGHT_PER_WORKER)

    async def one(article: Article, capture: Capture) -> None:
        assert article.id is not None
        try:
            body = store.capture_body(capture)
        except StoreError as error:  # a damaged body: named, the others go on
            slots.release()
            if isinstance(error, StoreUnavailableError):
                raise
            done.failed += 1
            if len(done.failures) < FAILURES_KEPT:
                done.failures[article.id] = str(error)
            return
        try:
            new, _ = await pool.extract(
                _page(article, capture, body),
                _hints(article),
                max_bytes=settings.fetch.max_page_bytes,
                fragment=page_job(article).fragment,
            )
        except FetchError as error:
            done.failed += 1
            if len(done.failures) < FAILURES_KEPT:
                done.failures[article.id] = str(error)
            return
        finally:
            slots.release()
        if differs(article, new):
            done.changed += 1
            await writes.add(article.id, new)
        else:
            done.unchanged += 1
            await writes.add(article.id, None)

    async with pool:
        pool.warm()
        running: set[asyncio.Task[None]] = set()
        try:
            selected = store.iter_captured(
                filters, not_by=None if garbled else EXTRACTOR, batch=READ_BATCH
            )
            for article, capture in selected:
                if garbled and not (is_garbled(article.text) or is_garbled(article.title)):
                    continue
                done.checked += 1
                if capture is None:
                    done.no_capture += 1
                    continue
                await slots.acquire()  # read no further ahead than the workers go
                task = asyncio.create_task(one(article, capture))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
            await writes.flush()
        finally:
            for task in running:
                task.cancel()
    return done
