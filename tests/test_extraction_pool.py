"""`ingest.workers.ExtractorPool`: pages reach the workers as they came from the network.

A page still compressed is inflated by its worker under the page cap; what is not HTML, or
inflates past the cap, is refused there with the page's URL; the raw page comes back packed for
the archive (its address, and the page as it came re-framed as a zlib stream, or else a zstd
frame of the decoded page). Real worker processes, real
pages (`tests.hostile.article_html`).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import signal
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard

from ingest.captures import PackedBody, unpack
from ingest.errors import ExtractionError, FetchError, TooLargeError
from ingest.extract import extract_article
from ingest.records import ExtractedArticle, Hints, Page, utcnow
from ingest.stories import fingerprint
from ingest.workers import ExtractorPool, check_page
from tests.hostile import OK_ARTICLES, article_html, slow_extract_html

HTML = article_html(OK_ARTICLES[1]).encode()
URL = "http://news.example/harbour.html"


def page(body: bytes, encoding: str = "", content_type: str = "text/html") -> Page:
    headers = {"content-type": content_type}
    return Page(URL, URL, 200, headers, body, utcnow(), encoding=encoding)


def extract_all(
    pages: list[Page], max_bytes: int
) -> list[tuple[ExtractedArticle, PackedBody | None]]:
    async def run() -> list[tuple[ExtractedArticle, PackedBody | None]]:
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
    alone = extract_article(HTML, URL, content_type="text/html", hints=Hints())
    # The worker adds the text's fingerprint (`ingest.stories`), so that the saving does not.
    assert article == replace(alone, fingerprint=fingerprint(alone.text))
    assert article.fingerprint is not None
    assert raw is not None
    assert (raw.sha256, raw.size) == (hashlib.sha256(HTML).hexdigest(), len(HTML))
    assert unpack(raw.data, what="page") == HTML
    if encoding:  # kept as it came: the server's deflate data, not compressed again
        assert raw.data.startswith(b"\x78\x9c") and raw.data[2:-4] in body
    else:
        assert zstandard.ZstdDecompressor().decompress(raw.data) == HTML


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


# --- workers that hang, die, or are no longer wanted ---------------------------------------------

SLOW = page(slow_extract_html(100).encode())


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in {"Z", "X"}


async def replaced(pool: ExtractorPool, old: list[int]) -> list[int]:
    """The pool's workers once one replaces each of ``old`` (which must have exited)."""
    for _ in range(200):
        if len(pool.pids) == len(old) and not set(pool.pids) & set(old):
            break
        await asyncio.sleep(0.05)
    assert all(gone(pid) for pid in old)
    return pool.pids


def test_a_page_past_its_time_limit_has_its_worker_replaced() -> None:
    async def run() -> tuple[ExtractionError, list[int], list[int], ExtractedArticle]:
        async with ExtractorPool(1, timeout=1) as pool:
            await pool.extract(page(HTML), Hints(), max_bytes=10_000_000)
            before = pool.pids
            with pytest.raises(ExtractionError) as caught:
                await pool.extract(SLOW, Hints(), max_bytes=10_000_000)
            after = await replaced(pool, before)
            article, _ = await pool.extract(page(HTML), Hints(), max_bytes=10_000_000)
            return caught.value, before, after, article

    error, before, after, article = asyncio.run(run())
    assert (error.reason, error.url) == ("extract_timeout", URL)
    assert len(before) == len(after) == 1 and before != after
    assert OK_ARTICLES[1].paragraphs[0] in article.text


def test_a_worker_that_dies_fails_its_page_and_the_next_page_gets_a_new_one() -> None:
    async def run() -> tuple[ExtractionError, ExtractedArticle]:
        async with ExtractorPool(2, timeout=60) as pool:
            await asyncio.gather(
                *(pool.extract(page(HTML), Hints(), max_bytes=10_000_000) for _ in range(2))
            )
            before = pool.pids
            slow = [
                asyncio.create_task(pool.extract(SLOW, Hints(), max_bytes=10_000_000))
                for _ in range(2)
            ]
            await asyncio.sleep(1)  # both workers are on a slow page
            for pid in before:
                os.kill(pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
            errors = await asyncio.gather(*slow, return_exceptions=True)
            await replaced(pool, before)
            article, _ = await pool.extract(page(HTML), Hints(), max_bytes=10_000_000)
            assert all(isinstance(e, ExtractionError) for e in errors), errors
            return errors[0], article  # type: ignore[return-value]

    error, article = asyncio.run(run())
    assert (error.reason, error.url) == ("worker_died", URL)
    assert "exit code -9" in str(error)
    assert OK_ARTICLES[1].paragraphs[0] in article.text


def test_a_cancelled_page_stops_its_worker_and_closing_stops_the_busy_ones() -> None:
    async def run() -> tuple[list[int], list[int], list[int], ExtractedArticle, list[int]]:
        async with ExtractorPool(2, timeout=60) as pool:
            await pool.extract(page(HTML), Hints(), max_bytes=10_000_000)
            before = pool.pids
            slow = asyncio.create_task(pool.extract(SLOW, Hints(), max_bytes=10_000_000))
            await asyncio.sleep(1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            for _ in range(200):  # one worker killed and replaced, the idle one kept
                if len(set(pool.pids) - set(before)) == 1 and len(pool.pids) == 2:
                    break
                await asyncio.sleep(0.05)
            after = pool.pids
            stopped = [pid for pid in before if gone(pid)]
            article, _ = await pool.extract(page(HTML), Hints(), max_bytes=10_000_000)
            # Left busy at the end: closing abandons the page rather than waiting a minute.
            asyncio.get_running_loop().create_task(
                pool.extract(SLOW, Hints(), max_bytes=10_000_000)
            )
            await asyncio.sleep(0.5)
            last = pool.pids
        return before, after, stopped, article, last

    before, after, stopped, article, last = asyncio.run(run())
    assert len(set(after) & set(before)) == 1 and len(after) == 2
    assert len(stopped) == 1 and stopped[0] not in after
    assert OK_ARTICLES[1].paragraphs[0] in article.text
    assert all(gone(pid) for pid in last)


def test_an_error_that_is_not_ours_comes_back_with_the_workers_traceback() -> None:
    async def run() -> BaseException:
        async with ExtractorPool(1, timeout=30) as pool:
            with pytest.raises(Exception) as caught:
                # A hint of the wrong type: the extractor trips over it in the worker.
                await pool.extract(page(HTML), "not hints", max_bytes=10_000_000)  # type: ignore[arg-type]
            return caught.value

    error = asyncio.run(run())
    assert not isinstance(error, ExtractionError)
    assert any("in the extraction worker" in note for note in getattr(error, "__notes__", []))


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)) * 8,  # any binary file said to be text/html
        zlib.compress(b"<p>compressed, not said so</p>" * 200),
    ],
)
def test_binary_content_called_html_is_not_an_article(body: bytes) -> None:
    # It was stored as an "article" of 200,000 characters of junk.
    with pytest.raises(ExtractionError) as caught:
        check_page(body, "text/html", "http://site.test/a")
    assert caught.value.reason == "not_html"


@pytest.mark.parametrize(
    "body",
    [
        "<html><body><p>caf\u00e9 \u4e2d\u6587 text</p></body></html>".encode("utf-16") * 20,
        "<html><body><p>caf\u00e9</p></body></html>".encode("utf-32-le") * 20,
        b"<html><body><p>a stray \x00 NUL and \x01 here</p></body></html>" * 20,
    ],
)
def test_text_with_nuls_or_a_stray_control_byte_is_still_a_page(body: bytes) -> None:
    check_page(body, "text/html", "http://site.test/a")
