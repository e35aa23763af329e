"""Sitemaps -> entries: Google News sitemaps, plain sitemaps with ``lastmod``, sitemap indexes.

A `[[feeds]]` entry may be a sitemap (``type = "sitemap"``, or told by its content: a
``<urlset>`` or ``<sitemapindex>``). Its poll reads the document, and the child sitemaps an
index lists through the same client as everything else (politeness, size caps, the
private-address guard: the fetching is injected, ``fetch``), and gives a `ParsedFeed` whose
entries are its URLs, with the news title, publication date and language as the entries'
title, date and language (the page's own metadata still comes first).

Bounds, so that a site's twenty-year archive is not fetched by accident:

- A URL dated (news ``publication_date``, else ``lastmod``) before the poll's ``bound`` (the
  feed's ``since``, else its first poll minus ``sitemaps.backfill``) is not an entry; an index's
  child sitemap modified before it is not fetched.
- At most ``max_sitemaps`` child sitemaps a poll, the most recently modified first.
- URLs without any date cannot be judged by the bound: the first poll of a sitemap takes the
  first ``first_undated`` listed and the others are remembered as seen (`Selection.skipped`),
  so that later polls take only the URLs that appeared since.

A hostile sitemap fails the whole poll with a `FeedError` before anything is recorded: a DTD
(entities are never expanded, and sitemaps have none), more than ``max_urls`` URLs or children
in one document, an index that lists itself or an ancestor, nesting deeper than ``max_depth``,
a document past ``fetch.max_feed_bytes`` (gzipped ones too, inflated under the same cap). A
child sitemap that is gone (4xx) is skipped and the feed recorded ``malformed``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest import xmlsafe
from ingest.config import SitemapSettings
from ingest.entryparts import (
    absolute,
    bounded_link,
    entry_key,
    language_tag,
    line_text,
    url_key,
)
from ingest.errors import FeedError, HTTPStatusError
from ingest.feeds import parse_feed
from ingest.inflate import GZIP_MAGIC, decode_body
from ingest.records import FeedEntry, Page, ParsedFeed

_PROLOG = re.compile(rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*", re.S)
_ROOT = re.compile(rb"<([\w.-]+:)?(urlset|sitemapindex)[\s>/]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)
SNIFF_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SitemapUrl:
    """One ``<url>`` of a sitemap."""

    loc: str
    lastmod: datetime | None = None
    published: datetime | None = None  # news:publication_date
    title: str | None = None  # news:title
    language: str | None = None  # news:language
    publication: str | None = None  # news:publication/news:name

    @property
    def date(self) -> datetime | None:
        return self.published or self.lastmod

    @property
    def key(self) -> str:
        return entry_key(None, self.loc, None, None)


@dataclass(frozen=True, slots=True)
class Document:
    """One sitemap document: its URLs (a urlset) or its child sitemaps (an index)."""

    index: bool
    urls: tuple[SitemapUrl, ...] = ()
    children: tuple[tuple[str, datetime | None], ...] = ()


@dataclass
class Crawl:
    """What one poll read: every URL of every document, in order, and what went wrong."""

    urls: list[SitemapUrl] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    documents: int = 0


@dataclass(frozen=True, slots=True)
class Selection:
    parsed: ParsedFeed
    skipped: tuple[str, ...]  # entry keys of undated URLs left unfetched, to remember


def unpacked(body: bytes, *, url: str, max_bytes: int) -> bytes:
    """``body``, inflated if it is gzip (a ``.xml.gz`` sitemap, served without a
    Content-Encoding), under the same cap as any body: a bomb costs at most ``max_bytes``."""
    if body.startswith(GZIP_MAGIC):
        return decode_body(body, "gzip", max_bytes=max_bytes, url=url)
    return body


def is_sitemap(body: bytes) -> bool:
    """Whether the document's root element is a ``<urlset>`` or a ``<sitemapindex>``."""
    head = body[:SNIFF_BYTES]
    prolog = _PROLOG.match(head)
    rest = head[prolog.end() if prolog else 0 :]
    if rest.startswith(b"<!DOCTYPE"):
        rest = rest[rest.find(b">") + 1 :].lstrip()
    return bool(_ROOT.match(rest))


def _moment(text: str | None) -> datetime | None:
    """A W3C datetime (``2025``, ``2025-03``, ``2025-03-14``, ``2025-03-14T09:30+01:00``) as
    UTC; a time without a zone is UTC, anything else no date."""
    if not text:
        return None
    text = text.strip()
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        text = (text + "-01-01")[:10] if len(text) == 4 else text + "-01"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child_text(element: object, *path: str) -> str | None:
    """The text of the descendant at ``path`` (local names, any namespace)."""
    node = element
    for name in path:
        node = next((c for c in node if _local(c.tag) == name), None)  # type: ignore[attr-defined]
        if node is None:
            return None
    text = node.text  # type: ignore[attr-defined]
    return text.strip() or None if isinstance(text, str) else None


def parse_sitemap(body: bytes, *, url: str, max_urls: int) -> Document:
    """A sitemap document's URLs or children (absolute http(s) URLs only, each once).
    `FeedError` for a document that is not a sitemap, declares a DTD, or lists more than
    ``max_urls``."""
    from lxml import etree  # here: a re-poll of unchanged feeds needs no lxml

    if _DOCTYPE.search(body[:SNIFF_BYTES]):
        raise FeedError("sitemap refused: it declares a DTD (a sitemap has none)", url=url)
    try:
        root = xmlsafe.parse(body)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"malformed sitemap: {exc}", url=url) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise FeedError("sitemap refused: it declares a DTD (a sitemap has none)", url=url)
    kind = _local(root.tag)
    if kind not in {"urlset", "sitemapindex"}:
        raise FeedError(f"not a sitemap: the document is <{kind}>", url=url, reason="not_feed")
    index = kind == "sitemapindex"
    wanted = "sitemap" if index else "url"
    seen: set[str] = set()
    urls: list[SitemapUrl] = []
    children: list[tuple[str, datetime | None]] = []
    for count, element in enumerate((e for e in root if _local(e.tag) == wanted), 1):
        if count > max_urls:
            listed = "child sitemaps" if index else "URLs"
            raise FeedError(
                f"sitemap refused: it lists more than {max_urls} {listed} (sitemaps.max_urls)",
                url=url,
            )
        # Past the protocol's 2,048 bytes a URL is no page (and could not be indexed).
        loc = bounded_link(absolute(_child_text(element, "loc"), url))
        if loc is None or loc in seen:
            continue
        seen.add(loc)
        lastmod = _moment(_child_text(element, "lastmod"))
        if index:
            children.append((loc, lastmod))
            continue
        urls.append(
            SitemapUrl(
                loc=loc,
                lastmod=lastmod,
                published=_moment(_child_text(element, "news", "publication_date")),
                title=line_text(_child_text(element, "news", "title"), html=False),
                language=language_tag(_child_text(element, "news", "publication", "language")),
                publication=line_text(
                    _child_text(element, "news", "publication", "name"), html=False
                ),
            )
        )
    return Document(index=index, urls=tuple(urls), children=tuple(children))


@dataclass
class _Reading:
    """One poll's reading of a sitemap and its children."""

    fetch: Callable[[str], Awaitable[Page]]
    limits: SitemapSettings
    bound: datetime | None
    max_bytes: int
    found: Crawl = field(default_factory=Crawl)


async def crawl(
    url: str,
    body: bytes,
    *,
    fetch: Callable[[str], Awaitable[Page]],
    limits: SitemapSettings,
    bound: datetime | None,
    max_bytes: int,
) -> Crawl:
    """Read the sitemap ``body`` fetched from ``url`` and, if it is an index, the child
    sitemaps it lists that are due (modified since ``bound``, newest first, at most
    ``limits.max_sitemaps``), depth first, through ``fetch`` (which returns a page of at most
    ``max_bytes``, or raises a `FetchError`; a gzipped one is inflated under the same cap)."""
    reading = _Reading(fetch, limits, bound, max_bytes)
    body = unpacked(body, url=url, max_bytes=max_bytes)
    await _read(reading, url, body, 0, (url_key(url),))
    return reading.found


async def _read(
    reading: _Reading, url: str, body: bytes, depth: int, ancestors: tuple[str, ...]
) -> None:
    limits, found = reading.limits, reading.found
    document = parse_sitemap(body, url=url, max_urls=limits.max_urls)
    found.urls.extend(document.urls)
    if not document.index:
        return
    if depth >= limits.max_depth:
        raise FeedError(
            f"sitemap refused: indexes nested deeper than {limits.max_depth} (sitemaps.max_depth)",
            url=url,
        )
    bound = reading.bound
    due = [c for c in document.children if bound is None or c[1] is None or c[1] >= bound]
    oldest = datetime.min.replace(tzinfo=UTC)
    due.sort(key=lambda c: c[1] or oldest, reverse=True)  # stable: undated in listed order
    for child, _ in due:
        key = url_key(child)
        if key in ancestors:
            raise FeedError(
                f"sitemap refused: the index lists itself or its parent: {child}", url=url
            )
        if found.documents >= limits.max_sitemaps:
            break
        found.documents += 1
        try:
            page = await reading.fetch(child)
        except HTTPStatusError as error:
            if not 400 <= error.status < 500 or error.status == 429:
                raise
            found.problems.append(f"child sitemap skipped: {error}")
            continue
        inner = unpacked(page.body, url=child, max_bytes=reading.max_bytes)
        await _read(reading, child, inner, depth + 1, (*ancestors, key))


def select(
    found: Crawl,
    *,
    bound: datetime | None,
    known: Iterable[str],
    first: bool,
    first_undated: int,
) -> Selection:
    """The entries of a poll: every URL dated on or after ``bound``, and the undated URLs not
    ``known`` (entry keys already recorded or remembered), at most ``first_undated`` of them
    on the ``first`` poll (the rest to remember as seen: `Selection.skipped`)."""
    known = set(known)
    entries: list[FeedEntry] = []
    skipped: list[str] = []
    taken_undated = 0
    for item in found.urls:
        date = item.date
        if date is not None and bound is not None and date < bound:
            continue
        if date is None and bound is not None:
            if item.key in known:
                continue
            if first and taken_undated >= first_undated:
                skipped.append(item.key)
                continue
            taken_undated += 1
        entries.append(
            FeedEntry(
                key=item.key,
                guid=None,
                link=item.loc,
                title=item.title,
                summary=None,
                content=None,
                published=item.published,
                updated=item.lastmod if item.lastmod != item.published else None,
                language=item.language,
            )
        )
    problem = None
    if found.problems:
        more = len(found.problems) - 1
        problem = f"sitemap read in part, {len(entries)} entries: {found.problems[0]}" + (
            f" (and {more} more)" if more else ""
        )
    publication = next((u for u in found.urls if u.publication), None)
    parsed = ParsedFeed(
        title=publication.publication if publication else None,
        site_url=None,
        language=publication.language if publication else None,
        entries=tuple(entries),
        problem=problem,
    )
    return Selection(parsed, tuple(skipped))


async def read_document(
    page: Page,
    *,
    sitemap: bool,
    bound: datetime | None,
    fetch: Callable[[str], Awaitable[Page]],
    listed_before: Callable[[Sequence[str]], tuple[bool, set[str]]],
    limits: SitemapSettings,
    max_bytes: int,
) -> Selection:
    """A feed's document of a 200: a sitemap (``sitemap``, or told by its content) read with
    its children and its URLs selected (`crawl`, `select`; ``listed_before`` says what the
    feed has recorded, `Store.listed_before`), else RSS, Atom or JSON Feed (`parse_feed`)."""
    body = unpacked(page.body, url=page.url, max_bytes=max_bytes)
    if not (sitemap or is_sitemap(body)):
        content_type = page.headers.get("content-type")
        # In a thread: a big feed takes feedparser seconds (50,000 entries, 23 s), which on
        # the event loop would stall every other request of the run into its timeout.
        parsed = await asyncio.to_thread(
            parse_feed, body, url=page.final_url, content_type=content_type
        )
        return Selection(parsed, ())
    found = await crawl(
        page.final_url, body, fetch=fetch, limits=limits, bound=bound, max_bytes=max_bytes
    )
    recorded, known = listed_before([u.key for u in found.urls if u.date is None])
    return select(
        found, bound=bound, known=known, first=not recorded, first_undated=limits.first_undated
    )
