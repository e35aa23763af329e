"""A site's feeds, found from any of its pages (`ingest feeds add URL`).

The URL is fetched once, as a feed would be; if it is a feed, that is the answer. If it is an
HTML page, its ``<link rel="alternate">`` of RSS, Atom and JSON Feed types are the candidates
(relative to its ``<base href>``); without one that works, the site's well-known feed paths
are tried in turn until one is a feed. Every candidate is fetched and parsed before it is
offered, with its title. Requests go through `HttpClient` (size caps, timeouts, turns on the
host, Retry-After, the private-address guard). robots.txt governs what we fetch of our own
accord: the guessed paths, as every article page; the URL named and the feeds a page links
to are fetched as feeds are polled, which robots.txt does not govern here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from protego import Protego

from ingest.config import FetchSettings
from ingest.entryparts import url_key
from ingest.errors import FeedError, FetchError
from ingest.feeds import is_json, parse_feed
from ingest.net import FEED_ACCEPT, PAGE_ACCEPT, SITEMAP_ACCEPT, HttpClient
from ingest.polite import ROBOTS_MAX_BYTES, Robots
from ingest.records import Page, utcnow
from ingest.sitemaps import SNIFF_BYTES, is_sitemap, unpacked

if TYPE_CHECKING:
    from ingest.hostturns import HostTurns

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/rdf+xml": "RSS",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON Feed",
}
# Tried in this order when a page links to no feed that works: the first that is a feed wins.
WELL_KNOWN = ("/feed", "/rss.xml", "/atom.xml", "/index.xml", "/feed.xml", "/rss", "/feed.json")
# Tried when robots.txt names no sitemap: where sites most often put theirs.
SITEMAP_PATHS = ("/sitemap.xml", "/sitemap_index.xml", "/news-sitemap.xml", "/sitemap-news.xml")
NEWS_SITEMAP = b"google.com/schemas/sitemap-news/"
MAX_LINKED = 12  # feeds a page may link to that are checked; a page listing more is odd
ACCEPT = f"{FEED_ACCEPT.removesuffix(', */*;q=0.1')}, application/feed+json, {PAGE_ACCEPT}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A feed found: its URL, title, format and how it was found ("url": the URL named is
    the feed, "link": the page links to it, "robots": robots.txt names it (a sitemap),
    "guess": a well-known path)."""

    url: str
    title: str | None
    kind: str
    found: str


@dataclass(slots=True)
class Discovery:
    url: str
    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (URL, why)


async def discover(
    url: str,
    settings: FetchSettings,
    *,
    archive: HostTurns | None = None,
    sitemaps: bool = False,
) -> Discovery:
    """The feeds ``url`` is or leads to. A `FetchError` when ``url`` itself cannot be
    fetched, or is neither a feed nor an HTML page. With ``sitemaps``, the sitemaps of its
    site instead: those its robots.txt names (``Sitemap:`` lines), else the usual paths.

    With the ``archive``, its hosts' turns and Retry-After waits hold here too, as for a
    one-shot `ingest fetch`: a daemon polling the same site is not doubled up on.
    """
    async with HttpClient(settings) as http:
        if archive is not None:
            http.hosts.shared = archive
            for host, until in archive.blocked_hosts(utcnow()).items():
                http.hosts.block(host, until)
        finder = _Discoverer(http, settings)
        return await (finder.sitemaps(url) if sitemaps else finder.run(url))


class _Discoverer:
    def __init__(self, http: HttpClient, settings: FetchSettings) -> None:
        self.http = http
        self.settings = settings
        self.robots = Robots(self._robots_txt, http.hosts, user_agent=settings.user_agent)

    async def _robots_txt(self, url: str) -> Page:
        return await self.http.get(
            url, max_bytes=ROBOTS_MAX_BYTES, accept="text/plain", truncate=True
        )

    async def _get(self, url: str, accept: str) -> Page:
        return await self.http.get(url, max_bytes=self.settings.max_feed_bytes, accept=accept)

    async def run(self, url: str) -> Discovery:
        found = Discovery(url)
        page = await self._get(url, ACCEPT)
        try:
            title, kind = _as_feed(page)
        except FeedError as exc:
            sitemap = self._as_sitemap(page, "url")
            if isinstance(sitemap, Candidate):  # a sitemap's own URL
                found.candidates.append(sitemap)
                return found
            if not _is_html(page):
                why = f"neither a feed, a sitemap nor an HTML page: {exc.args[0]}"
                raise FeedError(why, url=url) from None
        else:
            found.candidates.append(Candidate(url, title, kind, "url"))
            return found
        linked = _alternates(page.body, page.final_url)[:MAX_LINKED]
        checked = await asyncio.gather(*(self._check(u, kind, "link") for u, kind, _ in linked))
        for (link, kind, title), outcome in zip(linked, checked, strict=True):
            if isinstance(outcome, Candidate):
                found.candidates.append(outcome if outcome.title else replace(outcome, title=title))
            elif kind != "JSON Feed" or outcome.startswith(("HTTP", "timed out")):
                # A page's application/json links that are no feed are most often an API.
                found.rejected.append((link, outcome))
        if not found.candidates:
            await self._guess(page.final_url, found)
        return found

    async def sitemaps(self, url: str) -> Discovery:
        """The sitemaps of ``url``'s site: robots.txt's ``Sitemap:`` lines (any host: a
        site may keep them elsewhere), else `SITEMAP_PATHS` (robots.txt permitting), each
        fetched and checked to be one."""
        found = Discovery(url)
        parts = urlsplit(url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        named: list[str] = []
        try:
            robots = await self._robots_txt(origin + "/robots.txt")
            lines = Protego.parse(robots.body.decode("utf-8", "replace")).sitemaps
            named = [urljoin(origin + "/", line.strip()) for line in lines if line.strip()]
        except FetchError as exc:
            found.rejected.append((origin + "/robots.txt", str(exc.args[0])))
        how = "robots"
        if not named:
            how, named = "guess", [origin + path for path in SITEMAP_PATHS]
        for candidate in list(dict.fromkeys(named))[:MAX_LINKED]:
            if how == "guess" and self.settings.robots:
                try:
                    await self.robots.check(candidate)
                except FetchError as exc:
                    found.rejected.append((candidate, str(exc.args[0])))
                    continue
            outcome = await self._check_sitemap(candidate, how)
            if isinstance(outcome, Candidate):
                found.candidates.append(outcome)
            elif how == "robots":  # a guess that is not there is no news
                found.rejected.append((candidate, outcome))
        return found

    async def _check_sitemap(self, url: str, how: str) -> Candidate | str:
        """The sitemap at ``url``, or why it is none."""
        limit = self.settings.max_feed_bytes
        try:
            page = await self.http.get(url, max_bytes=limit, accept=SITEMAP_ACCEPT)
            return self._as_sitemap(page, how)
        except FetchError as exc:
            return str(exc.args[0])

    def _as_sitemap(self, page: Page, how: str) -> Candidate | str:
        """The sitemap ``page`` is (a `FetchError` if it inflates past the cap), or why not."""
        body = unpacked(page.body, url=page.url, max_bytes=self.settings.max_feed_bytes)
        if not is_sitemap(body):
            return "not a sitemap (no <urlset> or <sitemapindex>)"
        head = body[:SNIFF_BYTES]
        kind = "sitemap index" if b"sitemapindex" in head else "sitemap"
        if NEWS_SITEMAP in head:
            kind = f"news {kind}"
        host = urlsplit(page.final_url).hostname or ""
        return Candidate(page.url, f"{host} {kind}", kind, how)

    async def _check(self, url: str, kind: str | None, how: str) -> Candidate | str:
        """The candidate at ``url`` if it is a feed, else why not."""
        try:
            page = await self._get(url, ACCEPT)
            title, detected = _as_feed(page)
        except FetchError as exc:
            return str(exc.args[0])
        return Candidate(url, title, kind or detected, how)

    async def _guess(self, page_url: str, found: Discovery) -> None:
        parts = urlsplit(page_url)
        for path in WELL_KNOWN:
            url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
            try:
                if self.settings.robots:
                    await self.robots.check(url)
            except FetchError as exc:
                found.rejected.append((url, str(exc.args[0])))
                continue
            outcome = await self._check(url, None, "guess")
            if isinstance(outcome, Candidate):
                found.candidates.append(outcome)
                return


def _as_feed(page: Page) -> tuple[str | None, str]:
    """(title, format) of the feed ``page`` is; `FeedError` when it is none."""
    kind = page.headers.get("content-type")
    parsed = parse_feed(page.body, url=page.final_url, content_type=kind)
    return parsed.title, "JSON Feed" if is_json(page.body, kind) else "RSS/Atom"


def _is_html(page: Page) -> bool:
    kind = page.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in {"text/html", "application/xhtml+xml"}:
        return True
    start = page.body.lstrip()[:512].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<!--"))


def _alternates(body: bytes, url: str) -> list[tuple[str, str, str | None]]:
    """The feeds an HTML page links to: (absolute URL, format, the link's title), each once,
    in the page's order."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    base = url
    for element in root.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = urljoin(url, href)
            break
    found: dict[str, tuple[str, str, str | None]] = {}
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = FEED_TYPES.get((link.get("type") or "").split(";")[0].strip().lower())
        href = (link.get("href") or "").strip()
        if "alternate" not in rels or kind is None or not href:
            continue
        absolute = urljoin(base, href)
        if urlsplit(absolute).scheme not in {"http", "https"}:
            continue
        title = " ".join((link.get("title") or "").split()) or None
        found.setdefault(url_key(absolute), (absolute, kind, title))
    return list(found.values())
