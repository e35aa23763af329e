"""Archived articles made again from their kept raw capture, with no network.

A fix to decoding or extraction reaches the articles already stored: ``ingest reextract``
runs each selected article's captured page (the bytes as they came, `Capture`) through the
extraction workers again and stores what changed. ``garbled`` selects the articles whose text
or title shows a decoding error: U+FFFD where bytes could not be read, or UTF-8 read as
windows-1252 ("CafÃ©", "itâ€™s").
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.claims import page_job
from ingest.errors import FetchError, StoreError, StoreUnavailableError
from ingest.records import Hints, Page
from ingest.workers import ExtractorPool

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.models import Article, Capture
    from ingest.search import Filters
    from ingest.store import Store

# U+FFFD, or the windows-1252 reading of a UTF-8 sequence: "Ã" + a continuation byte's
# letter, or "â€" (the start of every UTF-8 quote, dash and ellipsis).
_GARBLED = re.compile("\ufffd|â€|Ã[\u00a0-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]")
IN_FLIGHT = 8  # pages handed to the workers at once


def is_garbled(text: str | None) -> bool:
    return bool(text) and _GARBLED.search(text or "") is not None


@dataclass
class Reextracted:
    """What a re-extraction did, article by article."""

    checked: int = 0  # articles selected
    changed: list[int] = field(default_factory=list)  # ids whose stored text or title changed
    unchanged: int = 0
    no_capture: int = 0  # no raw page kept (`extract.keep_raw` off when they were fetched)
    failed: dict[int, str] = field(default_factory=dict)  # id -> why


def _page(article: Article, capture: Capture, body: bytes) -> Page:
    """The captured response as the workers take a fetched page, its ``body`` decoded
    (`Store.capture_body`)."""
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


async def reextract(
    store: Store, settings: Settings, filters: Filters, *, garbled: bool
) -> Reextracted:
    """Re-extract the archived articles matching ``filters`` (with ``garbled``: only those
    whose text or title is garbled) from their captures; store each one that changed."""
    done = Reextracted()
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(pool: ExtractorPool, article: Article, page: Page) -> None:
        assert article.id is not None
        async with slots:
            try:
                new, _ = await pool.extract(
                    page,
                    _hints(article),
                    max_bytes=settings.fetch.max_page_bytes,
                    fragment=page_job(article).fragment,
                )
            except FetchError as error:
                done.failed[article.id] = str(error)
                return
        if (new.text, new.title or article.title) == (article.text, article.title):
            done.unchanged += 1
            return
        store.replace_extraction(article.id, new)
        done.changed.append(article.id)

    workers, timeout = settings.extract.workers, settings.extract.timeout
    async with ExtractorPool(workers, timeout=timeout) as pool:
        running: set[asyncio.Task[None]] = set()
        try:
            for article, capture in store.iter_captured(filters):
                if garbled and not (is_garbled(article.text) or is_garbled(article.title)):
                    continue
                done.checked += 1
                if capture is None:
                    done.no_capture += 1
                    continue
                await slots.acquire()  # read no further ahead than the workers go
                slots.release()
                try:
                    body = store.capture_body(capture)
                except StoreUnavailableError:
                    raise
                except StoreError as error:  # this capture's body only: damaged, or gone
                    done.failed[capture.article_id] = str(error)
                    continue
                task = asyncio.create_task(one(pool, article, _page(article, capture, body)))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
    done.changed.sort()
    return done
