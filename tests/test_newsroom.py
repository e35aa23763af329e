"""Quick checks of the loopback newsroom and of the fixture site it serves."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.newsroom import EXPECTED_DIR, LAST_MODIFIED, SITE_DIR, Newsroom

EXPECTED_FILES = sorted(EXPECTED_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def room() -> Iterator[Newsroom]:
    with Newsroom() as newsroom:
        yield newsroom


@pytest.fixture(autouse=True)
def _fresh_room(room: Newsroom) -> None:
    room.reset()


def fetch(
    room: Newsroom, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; returns status, lower-cased headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", room.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# -- server behaviour --------------------------------------------------------------
def test_feed_is_served_with_base_substituted(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/feeds/world.rss")
    assert status == 200
    assert headers["content-type"] == "application/rss+xml"
    text = body.decode("utf-8")
    assert "{{BASE}}" not in text
    assert f"<link>{room.base_url}/news/nbc-style.html</link>" in text
    assert int(headers["content-length"]) == len(body)


def test_conditional_get_answers_304(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/news/nbc-style.html")
    assert status == 200
    etag, last_modified = headers["etag"], headers["last-modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert last_modified == format_datetime(LAST_MODIFIED, usegmt=True)

    status, headers, body = fetch(room, "/news/nbc-style.html", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag
    ims = {"If-Modified-Since": last_modified}
    status, _, body = fetch(room, "/news/nbc-style.html", headers=ims)
    assert (status, body) == (304, b"")

    # A stale validator gets the full page; If-None-Match wins over If-Modified-Since.
    stale = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert fetch(room, "/news/nbc-style.html", headers=stale)[0] == 200
    older = format_datetime(datetime(2024, 1, 1, tzinfo=UTC), usegmt=True)
    assert fetch(room, "/news/nbc-style.html", headers={"If-Modified-Since": older})[0] == 200


def test_requests_are_recorded(room: Newsroom) -> None:
    fetch(room, "/feeds/tech.atom?x=1", headers={"User-Agent": "ingest-test/1.0"})
    fetch(room, "/status/404")
    first, second = room.requests
    assert (first.method, first.path, first.status) == ("GET", "/feeds/tech.atom?x=1", 200)
    assert first.headers["user-agent"] == first.headers["User-Agent"] == "ingest-test/1.0"
    assert "USER-AGENT" in first.headers
    assert second.status == 404
    assert room.requests_for("/feeds/tech.atom") == [first]
    assert room.requests_for("/feeds/tech.atom?x=2") == []
    room.clear_log()
    assert room.requests == []


def test_query_string_is_ignored_for_files(room: Newsroom) -> None:
    _, _, clean = fetch(room, "/world/danube-grain.html")
    tracked_path = "/world/danube-grain.html?utm_source=rss&utm_medium=feed&fbclid=x"
    status, _, tracked = fetch(room, tracked_path)
    assert status == 200
    assert tracked == clean


def test_shift_jis_page_keeps_its_bytes_and_charset(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/news/tokyo-sjis.html")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=Shift_JIS"
    raw = (SITE_DIR / "news/tokyo-sjis.html").read_bytes()
    assert body == raw.replace(b"{{BASE}}", room.base_url.encode())
    assert "銭湯" in body.decode("shift_jis")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


def test_windows_1252_page_has_cp1252_bytes(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/news/legacy-1252.html")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=windows-1252"
    for byte in (b"\x93", b"\x94", b"\x92", b"\x97", b"\xe9", b"\xa3", b"\x80"):
        assert byte in body
    assert "Café Rosé" in body.decode("cp1252")


def test_status_routes_and_missing_files(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/status/404")
    assert status == 404 and b"404" in body and headers["content-type"].startswith("text/html")
    assert fetch(room, "/status/500")[0] == 500
    assert fetch(room, "/status/503/anything")[0] == 503
    assert fetch(room, "/no/such/page.html")[0] == 404
    assert fetch(room, "/../newsroom.py")[0] == 404
    status, headers, body = fetch(room, "/empty.html")
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_binary_files_keep_their_types(room: Newsroom) -> None:
    status, headers, body = fetch(room, "/files/report.pdf")
    assert (status, headers["content-type"]) == (200, "application/pdf")
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    status, headers, body = fetch(room, "/media/photo.png")
    assert (status, headers["content-type"]) == (200, "image/png")
    assert body.startswith(b"\x89PNG\r\n\x1a\n")


def test_head_answers_headers_only(room: Newsroom) -> None:
    _, get_headers, get_body = fetch(room, "/feeds/wire.rdf")
    status, headers, body = fetch(room, "/feeds/wire.rdf", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(get_body))
    assert headers["etag"] == get_headers["etag"]
    assert headers["content-type"] == "application/rdf+xml"


def test_set_break_and_fix_a_page(room: Newsroom) -> None:
    _, headers, good = fetch(room, "/news/nbc-style.html")
    room.set("/news/nbc-style.html", status=500)
    assert fetch(room, "/news/nbc-style.html")[0] == 500
    room.unset("/news/nbc-style.html")
    assert fetch(room, "/news/nbc-style.html")[2] == good

    room.set(
        "/feeds/extra.rss",
        "<rss><channel><link>{{BASE}}/x</link></channel></rss>",
        headers={"Cache-Control": "max-age=60", "ETag": None},
    )
    status, headers, body = fetch(room, "/feeds/extra.rss")
    assert status == 200 and headers["content-type"] == "application/rss+xml"
    assert room.base_url.encode() in body
    assert "etag" not in headers and headers["cache-control"] == "max-age=60"

    # A changed body gets a new ETag and a later Last-Modified.
    room.set("/feeds/extra.rss", "<rss/>")
    _, first, _ = fetch(room, "/feeds/extra.rss")
    room.set("/feeds/extra.rss", "<rss version='2.0'/>")
    status, second, _ = fetch(room, "/feeds/extra.rss", headers={"If-None-Match": first["etag"]})
    assert status == 200 and second["etag"] != first["etag"]
    ims = {"If-Modified-Since": first["last-modified"]}
    assert fetch(room, "/feeds/extra.rss", headers=ims)[0] == 200


def test_redirect(room: Newsroom) -> None:
    room.redirect("/old/world.xml", "/feeds/world.rss")
    room.redirect("/moved-for-good", "{{BASE}}/news/nbc-style.html", status=308)
    status, headers, _ = fetch(room, "/old/world.xml")
    assert (status, headers["location"]) == (301, room.url("/feeds/world.rss"))
    status, headers, _ = fetch(room, "/moved-for-good")
    assert (status, headers["location"]) == (308, room.url("/news/nbc-style.html"))


# -- the fixture feeds ---------------------------------------------------------------
def parse_feed(room: Newsroom, path: str) -> Any:
    feedparser = pytest.importorskip("feedparser")
    status, headers, body = fetch(room, path)
    assert status == 200
    return feedparser.parse(body, response_headers={"content-location": room.url(path), **headers})


@pytest.mark.parametrize(
    ("path", "count"),
    [
        ("/feeds/world.rss", 6),
        ("/feeds/tech.atom", 3),
        ("/feeds/wire.rdf", 4),
        ("/feeds/nolink.rss", 2),
    ],
)
def test_good_feeds_parse_cleanly(room: Newsroom, path: str, count: int) -> None:
    parsed = parse_feed(room, path)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == count
    for entry in parsed.entries:
        assert entry.title and entry.id
        if "link" in entry:
            assert entry.link.startswith(room.base_url)


def test_atom_relative_links_resolve(room: Newsroom) -> None:
    links = [e.link for e in parse_feed(room, "/feeds/tech.atom").entries]
    paths = ("/tech/sodium-batteries.html", "/media/photo.png", "/status/500")
    assert links == [room.url(p) for p in paths]


def test_tracked_link_duplicates_a_clean_one(room: Newsroom) -> None:
    world = [e.link for e in parse_feed(room, "/feeds/world.rss").entries]
    wire = [e.link for e in parse_feed(room, "/feeds/wire.rdf").entries]
    tracked = [link for link in world if "utm_source" in link]
    assert tracked == [room.url("/world/danube-grain.html?utm_source=rss&utm_medium=feed&fbclid=x")]
    assert tracked[0].split("?")[0] in wire


def test_nolink_feed_carries_full_content(room: Newsroom) -> None:
    for entry in parse_feed(room, "/feeds/nolink.rss").entries:
        assert "link" not in entry
        assert entry.guidislink is False
        assert entry.content[0].value.count("<p>") >= 3


def test_broken_feeds_are_flagged(room: Newsroom) -> None:
    malformed = parse_feed(room, "/feeds/malformed.rss")
    assert malformed.bozo
    # The first item survives whole; of the truncated one only a bare title is left.
    links = [e.get("link") for e in malformed.entries]
    assert links == [room.url("/news/great-lakes-shipping.html"), None]
    homepage = parse_feed(room, "/feeds/not-a-feed.html")
    assert homepage.bozo and not homepage.entries


# -- the expected records --------------------------------------------------------------
SKIPPED = ("script", "style", "title")  # never rendered as page text


class _Blocks(HTMLParser):
    """Collect the text of every <p>/<h1..h6> (document order) and all visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.stream: list[str] = []
        self._current: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self._skip += 1
        elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self._skip -= 1
        elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") and self._current is not None:
            self.blocks.append(" ".join("".join(self._current).split()))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.stream.append(data)
        if self._current is not None:
            self._current.append(data)


def page_blocks(room: Newsroom, path: str) -> _Blocks:
    status, headers, body = fetch(room, path)
    assert status == 200
    charset = re.search(r"charset=([\w-]+)", headers["content-type"])
    parser = _Blocks()
    parser.feed(body.decode(charset.group(1) if charset else "utf-8"))
    parser.close()
    return parser


@pytest.mark.parametrize("expected_file", EXPECTED_FILES, ids=lambda p: p.stem)
def test_expected_text_is_the_page_body(room: Newsroom, expected_file: Path) -> None:
    record = json.loads(expected_file.read_text(encoding="utf-8"))
    assert set(record) == {
        "path",
        "title",
        "authors",
        "site_name",
        "language",
        "published",
        "updated",
        "canonical_url",
        "text",
    }
    paragraphs = record["text"].split("\n\n")
    assert all(p and p == p.strip() and "\n" not in p for p in paragraphs)
    page = page_blocks(room, record["path"])

    # Every paragraph occurs in the visible text, in order ...
    visible, at = "".join(page.stream), 0
    for para in paragraphs:
        found = visible.find(para, at)
        assert found >= 0, para[:60]
        at = found + len(para)
    # ... and together they are exactly one unbroken run of the page's <p>/<h2> blocks.
    n = len(paragraphs)
    runs = [i for i in range(len(page.blocks) - n + 1) if page.blocks[i : i + n] == paragraphs]
    assert len(runs) == 1

    assert record["canonical_url"] == "{{BASE}}" + record["path"]
    for stamp in filter(None, (record["published"], record["updated"])):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    html = fetch(room, record["path"])[2]
    assert b'property="og:type" content="article"' in html
    assert room.expected(expected_file.stem)["canonical_url"] == room.url(record["path"])


def test_nbc_page_is_the_hard_case(room: Newsroom) -> None:
    record = room.expected("nbc-style")
    page = page_blocks(room, record["path"])
    visible = " ".join("".join(page.stream).split())
    lead = record["text"].split("\n\n")[0]
    assert visible.startswith(
        "IE 11 is not supported. For an optimal experience visit our site on another browser."
    )
    assert visible.count(lead) == 2  # the dek repeats the lead word for word
    assert "/ Source: The Associated Press" in visible
    html = fetch(room, record["path"])[2].decode("utf-8")
    assert '"author"' not in html and 'name="author"' not in html
    assert record["authors"] == ["The Associated Press"]
