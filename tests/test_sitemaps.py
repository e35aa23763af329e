"""`ingest.sitemaps`: Google News and plain sitemaps, indexes with gzipped children read through
the real HTTP client from the loopback newsroom (fixtures under ``tests/fixtures/site/sitemaps``),
what a poll selects, and hostile sitemaps."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.config import FetchSettings, SitemapSettings
from ingest.errors import FeedError, TooLargeError
from ingest.net import HttpClient
from ingest.records import Page
from ingest.sitemaps import (
    Crawl,
    SitemapUrl,
    crawl,
    is_sitemap,
    parse_sitemap,
    read_document,
    select,
    unpacked,
)
from tests.newsroom import SITE_DIR, Newsroom

BASE = "https://gazette.example.org"
MAX_BYTES = 1_000_000
LIMITS = SitemapSettings()


def fixture(name: str, base: str = BASE) -> bytes:
    return (SITE_DIR / "sitemaps" / name).read_bytes().replace(b"{{BASE}}", base.encode())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- one document ----------------------------------------------------------------------------


def test_google_news_sitemap_gives_title_date_language_and_publication() -> None:
    document = parse_sitemap(fixture("news-1.xml"), url=f"{BASE}/s.xml", max_urls=100)

    assert not document.index
    danube, lakes, old = document.urls
    assert danube == SitemapUrl(
        loc=f"{BASE}/world/danube-grain.html",
        lastmod=at("2025-03-14T18:30:00"),
        published=at("2025-03-14T09:00:00"),
        title="Grain barges return to the Danube",
        language="en",
        publication="The Harbour Gazette",
    )
    assert lakes.published == at("2025-03-13T00:00:00")  # a date alone: its midnight, UTC
    assert lakes.loc.endswith("?utm_source=sitemap")  # kept as listed; its key drops it
    assert old.date == at("2024-12-01T08:00:00")


def test_plain_sitemap_with_lastmod_resolves_and_dedupes_its_urls() -> None:
    document = parse_sitemap(fixture("plain.xml"), url=f"{BASE}/sitemap.xml", max_urls=100)

    assert [(u.loc.removeprefix(BASE), u.lastmod) for u in document.urls] == [
        ("/world/danube-grain.html", at("2025-03-14T00:00:00")),
        ("/tech/sodium-batteries.html", at("2025-03-01T00:00:00")),  # W3C "2025-03"
        ("/news/legacy-1252.html", at("2023-05-02T15:00:00")),
        ("/science/observatory-reopens.html", None),
        ("/news/tokyo-sjis.html", None),
    ]  # a javascript: URL dropped, a URL listed twice once


def test_a_url_past_the_protocols_2048_bytes_is_left_out() -> None:
    long = f"{BASE}/search?q={'x' * 3000}"
    body = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{long}</loc></url><url><loc>{BASE}/a.html</loc></url></urlset>"
    ).encode()
    document = parse_sitemap(body, url=f"{BASE}/sitemap.xml", max_urls=100)

    assert [u.loc for u in document.urls] == [f"{BASE}/a.html"]


def test_index_lists_its_children_with_their_lastmod() -> None:
    document = parse_sitemap(fixture("news-index.xml"), url=f"{BASE}/i.xml", max_urls=100)

    assert document.index
    assert document.children == (
        (f"{BASE}/sitemaps/news-1.xml.gz", at("2025-03-14T18:00:00")),
        (f"{BASE}/sitemaps/news-2.xml.gz", at("2025-03-13T06:00:00")),
        (f"{BASE}/sitemaps/archive-2019.xml.gz", at("2019-12-31T00:00:00")),
    )


def test_a_sitemap_is_told_by_its_root_element() -> None:
    assert is_sitemap(fixture("news-1.xml"))
    assert is_sitemap(fixture("plain.xml"))  # after a comment
    assert is_sitemap(b'\xef\xbb\xbf<sm:sitemapindex xmlns:sm="x"></sm:sitemapindex>')
    assert not is_sitemap(b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>')
    assert not is_sitemap(b"<!DOCTYPE html><html><body>urlset</body></html>")
    assert not is_sitemap(b'{"items": []}')


def test_gzipped_sitemaps_are_inflated_under_the_cap() -> None:
    body = fixture("news-1.xml")

    assert unpacked(gzip.compress(body), url=BASE, max_bytes=MAX_BYTES) == body
    assert unpacked(body, url=BASE, max_bytes=MAX_BYTES) == body
    bomb = gzip.compress(b"<urlset>" + b" " * 50_000_000)  # 50 MB in about 50 KB
    with pytest.raises(TooLargeError):
        unpacked(bomb, url=BASE, max_bytes=MAX_BYTES)


# --- hostile documents -----------------------------------------------------------------------


def test_a_dtd_is_refused_and_no_entity_is_expanded() -> None:
    with pytest.raises(FeedError, match="declares a DTD"):
        parse_sitemap(fixture("entities.xml"), url=BASE, max_urls=100)


def test_more_urls_than_the_limit_is_refused() -> None:
    urls = b"".join(b"<url><loc>%s/a/%d</loc></url>" % (BASE.encode(), n) for n in range(101))
    body = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + urls + b"</urlset>"

    with pytest.raises(FeedError, match="more than 100 URLs"):
        parse_sitemap(body, url=BASE, max_urls=100)
    assert len(parse_sitemap(body, url=BASE, max_urls=101).urls) == 101


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<urlset><url><loc>https://a.example/</loc></url>", "malformed sitemap"),
        (b'<?xml version="1.0"?><rss version="2.0"/>', "not a sitemap: the document is <rss>"),
        (b"", "malformed sitemap"),
        (b"<urlset>" + b"<x>" * 100_000 + b"</x>" * 100_000 + b"</urlset>", "malformed sitemap"),
    ],
)
def test_what_is_not_a_sitemap_is_a_feed_error(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_sitemap(body, url=BASE, max_urls=100)


# --- a poll's crawl, through the real client -------------------------------------------------


def serve_gzipped(room: Newsroom, *names: str) -> None:
    for name in names:
        body = gzip.compress(fixture(name, room.base_url))
        room.set(f"/sitemaps/{name}.gz", body, headers={"Content-Type": "application/x-gzip"})


def run_crawl(room: Newsroom, path: str, bound: datetime | None, **limits: Any) -> Crawl:
    async def go() -> Crawl:
        settings = FetchSettings(allow_private_networks=True, host_delay=0)
        async with HttpClient(settings) as http:

            async def fetch(url: str) -> Page:
                return await http.get(url, max_bytes=MAX_BYTES)

            first = await fetch(room.url(path))
            return await crawl(
                first.final_url,
                first.body,
                fetch=fetch,
                limits=LIMITS.model_copy(update=limits),
                bound=bound,
                max_bytes=MAX_BYTES,
            )

    return asyncio.run(go())


def test_an_index_reads_its_gzipped_children_newest_first_and_skips_old_ones(
    newsroom: Newsroom,
) -> None:
    serve_gzipped(newsroom, "news-1.xml", "news-2.xml", "archive-2019.xml")

    found = run_crawl(newsroom, "/sitemaps/news-index.xml", at("2025-03-01T00:00:00"))

    paths = [u.loc.removeprefix(newsroom.base_url) for u in found.urls]
    assert paths[:3] == [
        "/world/danube-grain.html",
        "/news/great-lakes-shipping.html?utm_source=sitemap",
        "/news/nbc-style.html",
    ]
    assert paths[3:] == [
        "/science/observatory-reopens.html",
        "/tech/sodium-batteries.html",
        "/world/danube-grain.html",
    ]
    assert found.documents == 2 and found.problems == []
    assert not newsroom.requests_for("/sitemaps/archive-2019.xml.gz")  # modified before


def test_children_past_max_sitemaps_wait_and_a_gone_child_is_skipped(newsroom: Newsroom) -> None:
    serve_gzipped(newsroom, "news-2.xml")  # news-1.xml.gz is not there: 404

    found = run_crawl(newsroom, "/sitemaps/news-index.xml", None, max_sitemaps=2)

    assert found.documents == 2
    assert found.problems == [
        f"child sitemap skipped: HTTP 404 ({newsroom.url('/sitemaps/news-1.xml.gz')})"
    ]
    assert len(found.urls) == 3
    assert not newsroom.requests_for("/sitemaps/archive-2019.xml.gz")  # the third, oldest


def test_an_index_that_lists_itself_is_refused(newsroom: Newsroom) -> None:
    with pytest.raises(FeedError, match="lists itself or its parent"):
        run_crawl(newsroom, "/sitemaps/self-index.xml", None)


def test_indexes_nested_past_max_depth_are_refused(newsroom: Newsroom) -> None:
    nested = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>{{BASE}}/sitemaps/news-index.xml</loc></sitemap></sitemapindex>"
    )
    newsroom.set("/sitemaps/top.xml", nested, headers={"Content-Type": "application/xml"})
    serve_gzipped(newsroom, "news-1.xml", "news-2.xml")

    with pytest.raises(FeedError, match="nested deeper than 1"):
        run_crawl(newsroom, "/sitemaps/top.xml", None, max_depth=1)
    assert len(run_crawl(newsroom, "/sitemaps/top.xml", None, max_depth=2).urls) == 6


def test_a_child_past_the_size_cap_fails_the_crawl(newsroom: Newsroom) -> None:
    bomb = gzip.compress(b'<urlset xmlns="x">' + b" " * 30_000_000 + b"</urlset>")
    newsroom.set("/sitemaps/news-1.xml.gz", bomb, headers={"Content-Type": "application/x-gzip"})

    with pytest.raises(TooLargeError):
        run_crawl(newsroom, "/sitemaps/news-index.xml", None)


# --- what a poll selects ---------------------------------------------------------------------


def found_in(name: str) -> Crawl:
    return Crawl(urls=list(parse_sitemap(fixture(name), url=BASE, max_urls=100).urls))


def test_dated_urls_before_the_bound_are_left_out() -> None:
    chosen = select(
        found_in("news-1.xml"),
        bound=at("2025-03-01T00:00:00"),
        known=(),
        first=True,
        first_undated=0,
    )

    titles = [e.title for e in chosen.parsed.entries]
    assert titles == ["Grain barges return to the Danube", "Ice-free lakes, early freighters"]
    first = chosen.parsed.entries[0]
    assert (first.published, first.updated) == (
        at("2025-03-14T09:00:00"),
        at("2025-03-14T18:30:00"),
    )
    assert first.language == "en"
    assert chosen.parsed.title == "The Harbour Gazette"
    assert chosen.skipped == ()


def test_undated_urls_first_poll_takes_a_few_and_remembers_the_rest() -> None:
    found = found_in("plain.xml")
    bound = at("2025-03-01T00:00:00")

    first = select(found, bound=bound, known=(), first=True, first_undated=1)
    later = select(found, bound=bound, known=first.skipped, first=False, first_undated=1)

    links = [e.link.removeprefix(BASE) for e in first.parsed.entries if e.link]
    assert links == [
        "/world/danube-grain.html",
        "/tech/sodium-batteries.html",
        "/science/observatory-reopens.html",  # the first undated URL listed
    ]
    assert first.skipped == (found.urls[4].key,)  # tokyo-sjis: seen, not fetched
    # Later: what it skipped is known, and entries already recorded are the store's to drop.
    assert [e.link for e in later.parsed.entries if e.published is None and e.updated is None] == [
        f"{BASE}/science/observatory-reopens.html"
    ]


def test_a_skipped_child_makes_the_poll_partial() -> None:
    found = found_in("news-2.xml")
    found.problems.append("child sitemap skipped: HTTP 404 (x)")

    chosen = select(found, bound=None, known=(), first=True, first_undated=10)

    assert (
        chosen.parsed.problem
        == "sitemap read in part, 3 entries: child sitemap skipped: HTTP 404 (x)"
    )


def test_a_big_feed_is_parsed_off_the_event_loop() -> None:
    # feedparser took 23 s over 50,000 entries on the event loop: every other request of the
    # run (robots.txt, pages of other hosts) ran into its timeout meanwhile.
    items = "".join(
        f"<item><title>Item {i}</title><link>https://news.test/{i}</link></item>"
        for i in range(1500)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}'
    body += "</channel></rss>"
    page = Page(
        url="https://news.test/feed",
        final_url="https://news.test/feed",
        status=200,
        headers={"content-type": "application/rss+xml"},
        body=body.encode(),
        fetched_at=datetime.now(UTC),
    )

    async def fetch(url: str) -> Page:
        raise AssertionError(url)

    async def run() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        selection = await read_document(
            page,
            sitemap=False,
            bound=None,
            fetch=fetch,
            listed_before=lambda keys: (False, set()),
            limits=SitemapSettings(),
            max_bytes=10_000_000,
        )
        ticker.cancel()
        assert selection.parsed is not None
        return len(selection.parsed.entries), ticks

    entries, ticks = asyncio.run(run())
    assert entries == 1500
    assert ticks >= 5  # the loop went on while the feed was parsed (0 when it did not)
