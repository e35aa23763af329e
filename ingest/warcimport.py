"""``ingest import --warc FILE``: archive articles made again from a WARC file's responses.

The whole file is read first (`ingest.warc.check_warc`): one that is not a WARC, is cut short
or fails a digest is refused before anything is stored. Then each HTTP response (2xx) becomes
an article: its URL, its fetch time (``WARC-Date``), the capture kept (with its request's
headers when the file has them), and the text made again by the extraction workers
(`ExtractorPool`, one per core), from the page as it came. Our metadata record, where the file
has one (`ingest export --format warc`), restores what the page does not say alone: the feeds
that listed the article, its title, authors, dates, guid, summary and enclosures; a response
without one (a WARC made by another tool: warcio, wget, ArchiveBox) is an article of a feed
named after the file. Articles are recorded through the same writes as a fetch (entries
recorded once, pages saved or merged), so importing a file twice adds nothing; another capture
of an article already archived is kept beside its others.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.captures import PackedBody, pack
from ingest.claims import page_job
from ingest.config import FeedSettings, Settings
from ingest.entryparts import entry_key
from ingest.errors import FetchError, NotFoundError
from ingest.models import ArticleStatus, Feed
from ingest.query import parse_moment
from ingest.records import Enclosure, ExtractedArticle, FeedEntry, Hints, Page
from ingest.store import Store
from ingest.warc import WarcCapture, WarcSummary, check_warc, read_captures
from ingest.workers import ExtractorPool, check_page

PER_WORKER = 2  # pages handed to each extraction worker at once: one working, one waiting


@dataclass
class WarcImport:
    """What an import did, response by response."""

    responses: int = 0  # HTTP responses in the file
    articles: int = 0  # new articles stored
    captures: int = 0  # captures added to articles already archived (another time)
    already: int = 0  # responses the archive already had: nothing added
    skipped: Counter[str] = field(default_factory=Counter)  # why, how many

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "skipped": dict(self.skipped)}


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) and value else None


def _moment(record: dict[str, Any], key: str) -> datetime | None:
    value = _text(record, key)
    try:
        return parse_moment(value) if value else None
    except ValueError:
        return None


def _names(record: dict[str, Any], key: str) -> tuple[str, ...]:
    values = record.get(key)
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v)


def _enclosures(record: dict[str, Any]) -> tuple[Enclosure, ...]:
    found = []
    for item in record.get("enclosures") or ():
        if isinstance(item, dict) and _text(item, "url"):
            length, duration = item.get("length"), item.get("duration")
            found.append(
                Enclosure(
                    url=item["url"],
                    type=_text(item, "type"),
                    length=length if isinstance(length, int) else None,
                    title=_text(item, "title"),
                    duration=float(duration) if isinstance(duration, int | float) else None,
                )
            )
    return tuple(found)


def _entry(capture: WarcCapture) -> FeedEntry:
    """The feed entry an imported response stands for: as our metadata record says it was
    (guid, title, authors, dates...), else the response's URL alone."""
    record = capture.record or {}
    link = _text(record, "url") or capture.url
    guid = _text(record, "guid")
    title = _text(record, "title")
    published = _moment(record, "published")
    return FeedEntry(
        key=entry_key(guid, link, title, published.isoformat() if published else None),
        guid=guid,
        link=link,
        title=title,
        summary=_text(record, "summary"),
        content=None,
        authors=_names(record, "authors"),
        published=published,
        updated=_moment(record, "updated"),
        language=_text(record, "language"),
        enclosures=_enclosures(record),
    )


def _restored(article: ExtractedArticle, record: dict[str, Any]) -> ExtractedArticle:
    """The extraction with what the article's record says put back (the record is the article
    as it was archived: its metadata came from the page and the feed of the time)."""
    if not record:
        return article
    return replace(
        article,
        title=_text(record, "title") or article.title,
        authors=_names(record, "authors") or article.authors,
        published=_moment(record, "published") or article.published,
        updated=_moment(record, "updated") or article.updated,
        language=_text(record, "language") or article.language,
        site_name=_text(record, "site_name") or article.site_name,
        summary=_text(record, "summary") or article.summary,
        canonical_url=_text(record, "canonical_url") or article.canonical_url,
    )


class _Importer:
    """One file's import: the feeds its articles go to, and each response stored."""

    def __init__(self, store: Store, path: Path) -> None:
        self.store = store
        self.path = path
        self.feeds: dict[str, Feed] = {}
        self.done = WarcImport()

    def feeds_of(self, capture: WarcCapture) -> list[Feed]:
        """The feeds an article is restored to: those its record names (a row each, inactive
        unless the config has it), else a feed named after the file."""
        record = capture.record or {}
        first = _text(record, "feed_url")
        urls = list(_names(record, "feed_urls")) or ([first] if first else [])
        wanted: list[FeedSettings] = []
        for url in urls:
            try:
                wanted.append(FeedSettings(url=url))
            except ValueError:
                continue  # not an http(s) feed: the file's feed stands in
        if not wanted:
            wanted = [
                # The file itself is the feed: not an http(s) URL, so never polled.
                FeedSettings.model_construct(url=self.path.resolve().as_uri(), name=self.path.name)
            ]
        missing = [f for f in wanted if f.url not in self.feeds]
        if missing:
            for row in self.store.sync_feeds([], once=missing):
                self.feeds[row.url] = row
        return [self.feeds[f.url] for f in wanted]

    def store_page(
        self, capture: WarcCapture, page: Page, article: ExtractedArticle, raw: PackedBody
    ) -> None:
        """Store one response's article (``raw``: its body as the archive keeps it): new, or
        another capture of one already archived."""
        entry = _entry(capture)
        jobs = []
        for feed in self.feeds_of(capture):  # the first one listed it first, as it was
            jobs += self.store.record_entries(feed, [entry]).jobs
        if jobs:
            self.store.save_articles([(jobs[0], article, page, raw)])
            self.done.articles += 1
            return
        try:
            known, _ = self.store.article(entry.link or capture.url)
        except NotFoundError:
            self.done.skipped["not stored (an entry's own article)"] += 1
            return
        assert known.id is not None
        if known.status != ArticleStatus.OK:  # pending or failed here: the page is had now
            self.store.save_articles([(page_job(known), article, page, raw)])
            self.done.articles += 1
        elif self.store.add_capture(known.id, page, raw, article):
            self.done.captures += 1
        else:
            self.done.already += 1


async def import_warc(
    store: Store, settings: Settings, path: Path, *, checked: WarcSummary | None = None
) -> WarcImport:
    """Import the responses of the WARC file at ``path`` into ``store`` (see the module);
    ``checked``: `check_warc` already read it whole."""
    summary = checked or check_warc(path)
    importer = _Importer(store, path)
    done = importer.done
    done.responses = summary.responses
    max_bytes = settings.fetch.max_page_bytes

    async def one(pool: ExtractorPool, capture: WarcCapture) -> None:
        record = capture.record or {}
        page = Page(
            url=_text(record, "url") or capture.url,
            final_url=capture.url,
            status=capture.status,
            headers=capture.headers,
            body=capture.body,
            fetched_at=capture.fetched_at,
            request_headers=capture.request_headers,
        )
        entry = _entry(capture)
        hints = Hints(
            title=entry.title,
            authors=entry.authors,
            published=entry.published,
            updated=entry.updated,
            language=entry.language,
            summary=entry.summary,
        )
        try:
            check_page(page.body, page.content_type, page.url)
            article, raw = await pool.extract(page, hints, max_bytes=max_bytes, keep_raw=True)
        except FetchError as error:
            text = _text(record, "text")
            if text is None:
                done.skipped[error.reason] += 1
                return
            # Our own file: the text as it was archived stands in for what extraction lost.
            article = ExtractedArticle(text=text, from_page=record.get("content_source") == "page")
            raw = pack(page.body)
        assert raw is not None
        importer.store_page(capture, page, _restored(article, record), raw)

    async with ExtractorPool(settings.extract.workers, timeout=settings.extract.timeout) as pool:
        slots = asyncio.Semaphore(pool.workers * PER_WORKER)
        running: set[asyncio.Task[None]] = set()

        async def guarded(capture: WarcCapture) -> None:
            try:
                await one(pool, capture)
            finally:
                slots.release()

        try:
            for capture in read_captures(path, max_bytes=max_bytes):
                if capture.skip is not None:
                    done.skipped[capture.skip] += 1
                    continue
                if not 200 <= capture.status < 300:
                    done.skipped[f"HTTP {capture.status}"] += 1
                    continue
                await slots.acquire()  # read no further ahead than the workers go
                task = asyncio.create_task(guarded(capture))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
    return done
