"""`ingest.workers.ExtractorPool`: pages reach the workers as they came from the network.

A page still compressed is inflated by its worker under the page cap; what is not HTML, or
inflates past the cap, is refused there with the page's URL; the raw page comes back as a zlib
stream of the page. Real worker processes, real pages (`tests.hostile.article_html`).
"""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from ingest.errors import ExtractionError, FetchError, TooLargeError
from ingest.extract import extract_article
from ingest.records import ExtractedArticle, Hints, Page, utcnow
from ingest.workers import ExtractorPool
from tests.hostile import OK_ARTICLES, article_html

HTML = article_html(OK_ARTICLES[1]).encode()
URL = "http://news.example/harbour.html"


def page(body: bytes, encoding: str = "", content_type: str = "text/html") -> Page:
    headers = {"content-type": content_type}
    return Page(URL, URL, 200, headers, body, utcnow(), encoding=encoding)


def extract_all(pages: list[Page], max_bytes: int) -> list[tuple[ExtractedArticle, bytes | None]]:
    async def run() -> list[tuple[ExtractedArticle, bytes | None]]:
        async with ExtractorPool(1, timeout=30) as pool:
            return [
                await pool.extract(p, Hints(), max_bytes=max_bytes, keep_raw=True) for p in pages
            ]

    return asyncio.run(run())


def extract_error(pages: list[Page], max_bytes: int) -> tuple[FetchError, ExtractedArticle]:
    """The first page's error, and the article of the second: the worker goes on after it."""

    async def run() -> tuple[FetchError, ExtractedArticle]:
        async with ExtractorPool(1, timeout=30) as pool:
            with pytest.raises(FetchError) as caught:
                await pool.extract(pages[0], Hints(), max_bytes=max_bytes)
            after, _ = await pool.extract(pages[1], Hints(), max_bytes=max_bytes)
            return caught.value, after

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(HTML, ""), (gzip.compress(HTML), "gzip"), (zlib.compress(HTML), "deflate")],
)
def test_a_page_is_extracted_the_same_whatever_encoding_it_came_in(
    body: bytes, encoding: str
) -> None:
    ((article, raw),) = extract_all([page(body, encoding)], max_bytes=len(HTML))
    assert article == extract_article(HTML, URL, content_type="text/html", hints=Hints())
    assert raw is not None
    assert zlib.decompress(raw) == HTML


def test_a_compressed_page_past_the_cap_is_refused_by_its_worker() -> None:
    bomb = gzip.compress(b"<html><body>" + b" " * 20_000_000, 9)
    error, after = extract_error([page(bomb, "gzip"), page(HTML)], max_bytes=1_000_000)
    assert isinstance(error, TooLargeError)
    assert (error.reason, error.url) == ("too_large", URL)
    assert OK_ARTICLES[1].paragraphs[0] in after.text


def test_a_compressed_file_that_is_not_html_is_refused_by_its_worker() -> None:
    pdf = gzip.compress(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    error, _ = extract_error([page(pdf, "gzip", "application/pdf"), page(HTML)], 1_000_000)
    assert isinstance(error, ExtractionError)
    assert (error.reason, error.url) == ("not_html", URL)
