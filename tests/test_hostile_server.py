"""Quick checks that the hostile loopback server behaves as its docstring says.

These test the server, not the archiver: plain sockets and http.client, short timeouts,
and never a connection to anything but loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser
from xml.parsers import expat

import pytest

from tests.hostile import (
    HOSTILE_FEED_ITEMS,
    METADATA_TARGET,
    OK_ARTICLES,
    PRIVATE_TARGET,
    WRONG_CHARSET_TEXT,
    WRONG_META_TEXT,
    HostileWeb,
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWeb]:
    canary = tmp_path_factory.mktemp("hostile") / "canary.txt"
    with HostileWeb(canary=canary) as server:
        yield server


def fetch(
    web: HostileWeb, path: str, method: str = "GET", limit: int = 10 << 20
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; status, lower-cased headers, body (capped)."""
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(limit)
    finally:
        conn.close()


def open_raw(web: HostileWeb, path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: probe\r\n\r\n".encode())
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes (or resets) the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def unexpanded(xml: bytes) -> str:
    """Check ``xml`` is well-formed without expanding any entity; return its raw text.

    With a plain DefaultHandler expat passes entity references through untouched, and
    with parameter-entity parsing off it never loads anything external.
    """
    parser = expat.ParserCreate()
    seen: list[str] = []
    parser.DefaultHandler = seen.append
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.Parse(xml, True)
    return "".join(seen)


def rss_items(body: bytes) -> list[tuple[str, str]]:
    root = ET.fromstring(body)
    return [(i.findtext("title") or "", i.findtext("link") or "") for i in root.iter("item")]


# -- ordinary pages ------------------------------------------------------------------
def test_ok_feed_and_pages(web: HostileWeb) -> None:
    status, headers, body = fetch(web, "/feeds/ok.rss")
    assert (status, headers["content-type"]) == (200, "application/rss+xml")
    assert rss_items(body) == [
        (OK_ARTICLES[1].title, web.url("/ok/1.html")),
        (OK_ARTICLES[2].title, web.url("/ok/2.html")),
    ]
    for n in (1, 2, 3):
        status, headers, body = fetch(web, f"/ok/{n}.html")
        assert status == 200
        assert int(headers["content-length"]) == len(body)
        assert f"<h1>{OK_ARTICLES[n].title}</h1>" in body.decode("utf-8")


def test_hostile_feed_links_every_route_on_the_real_base(web: HostileWeb) -> None:
    _, _, body = fetch(web, "/feeds/hostile.rss")
    links = [link for _, link in rss_items(body)]
    assert links == [web.url(path) for path in HOSTILE_FEED_ITEMS]
    assert web.url("/ok/3.html") in links

    with HostileWeb(private_redirect_in_feed=False) as safe:
        _, _, body = fetch(safe, "/feeds/hostile.rss")
        links = [link for _, link in rss_items(body)]
        assert safe.url("/redirect-private") not in links
        assert len(links) == len(HOSTILE_FEED_ITEMS) - 1


def test_unknown_path_head_and_request_log(web: HostileWeb) -> None:
    web.clear_log()
    assert fetch(web, "/nowhere?x=1")[0] == 404
    status, headers, body = fetch(web, "/ok/1.html", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 1000

    [nowhere] = web.requests_for("/nowhere")
    assert (nowhere.method, nowhere.path, nowhere.bare_path) == ("GET", "/nowhere?x=1", "/nowhere")
    assert nowhere.headers["HOST"] == f"127.0.0.1:{web.port}"
    assert web.requests_for("/nowhere?x=1") == [nowhere]
    assert web.requests_for("/nowhere?x=2") == []
    assert [r.method for r in web.requests] == ["GET", "HEAD"]


# -- time ----------------------------------------------------------------------------
def test_drip_sends_one_byte_a_second(web: HostileWeb) -> None:
    with open_raw(web, "/drip") as sock:
        head, body = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"Content-Length: 100000" in head
        start = time.monotonic()
        while len(body) < 2:
            body += sock.recv(1)
        assert 0.8 < time.monotonic() - start < 2.5
        assert body == b"<!"


def test_drip_headers_trickle(web: HostileWeb) -> None:
    with open_raw(web, "/drip-headers") as sock:
        sock.settimeout(0.3)
        data = b""
        end = time.monotonic() + 2.2
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):  # nothing yet: the next byte is due
                data += sock.recv(100)
        assert b"HTTP/1.1 200 OK".startswith(data)
        assert 2 <= len(data) <= 4


def test_reset_cuts_the_body_with_rst(web: HostileWeb) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
    try:
        conn.request("GET", "/reset")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == "50000"
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            resp.read()
    finally:
        conn.close()
    with open_raw(web, "/reset") as sock:
        _, body = read_head(sock)
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(65536):
                body += chunk
        assert len(body) <= 1000


# -- redirects -----------------------------------------------------------------------
def test_redirect_loop_alternates(web: HostileWeb) -> None:
    path = "/redirect-loop"
    seen = []
    for _ in range(4):
        status, headers, _ = fetch(web, path)
        assert status == 302
        seen.append(headers["location"])
        path = urlsplit(headers["location"]).path
    loop = [web.url("/redirect-loop-b"), web.url("/redirect-loop")]
    assert seen == loop * 2


def test_redirect_chain_counts_down(web: HostileWeb) -> None:
    for n in (3, 2, 1):
        status, headers, _ = fetch(web, f"/redirect-chain/{n}")
        assert (status, headers["location"]) == (301, web.url(f"/redirect-chain/{n - 1}"))
    status, _, body = fetch(web, "/redirect-chain/0")
    assert status == 200
    assert b"<article>" in body
    assert fetch(web, "/redirect-chain/101")[0] == 404
    assert fetch(web, "/redirect-chain/x")[0] == 404


def test_redirect_robots_points_at_a_forbidden_page(web: HostileWeb) -> None:
    status, headers, _ = fetch(web, "/redirect-robots")
    assert (status, headers["location"]) == (302, web.url("/no-ingest/article.html"))
    robots = RobotFileParser()
    robots.parse(fetch(web, "/robots.txt")[2].decode().splitlines())
    assert not robots.can_fetch("ingest", headers["location"])


def test_private_redirects_point_away_and_are_never_followed(web: HostileWeb) -> None:
    # Only the Location is checked: nothing here may connect beyond loopback.
    assert fetch(web, "/redirect-private")[1]["location"] == PRIVATE_TARGET
    assert fetch(web, "/redirect-metadata")[1]["location"] == METADATA_TARGET
    location = fetch(web, "/redirect-mapped")[1]["location"]
    assert location == f"http://[::ffff:127.0.0.1]:{web.port}/feeds/ok.rss"

    # The IPv4-mapped form really is this server (it is loopback, so this is safe).
    target = urlsplit(location)
    assert target.hostname == "::ffff:127.0.0.1"
    try:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
        conn.request("GET", target.path)
    except OSError as exc:  # pragma: no cover - only without IPv6 support
        pytest.skip(f"no IPv4-mapped IPv6 here: {exc}")
    try:
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# -- size ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "content_type", "start"),
    [
        ("/gzip-bomb", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
        ("/gzip-bomb.rss", "application/rss+xml", b"<?xml"),
    ],
)
def test_gzip_bomb(web: HostileWeb, path: str, content_type: str, start: bytes) -> None:
    status, headers, wire = fetch(web, path)
    assert (status, headers["content-type"]) == (200, content_type)
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(wire) < 2_000_000
    # The gzip trailer declares the inflated size: over 1 GiB.
    assert int.from_bytes(wire[-4:], "little") > 1 << 30
    inflater = zlib.decompressobj(31)  # wbits 31: a gzip member, header and all
    first = inflater.decompress(wire, 10 << 20)
    assert len(first) == 10 << 20
    assert first.startswith(start)
    assert set(first[200:]) <= set(b" <p>")


def test_huge_streams_without_a_length(web: HostileWeb) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=5)
    try:
        conn.request("GET", "/huge")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") is None
        assert resp.getheader("Transfer-Encoding") == "chunked"
        got = 0
        while got < 5_000_000:
            got += len(resp.read(1 << 20))
    finally:
        conn.close()

    with open_raw(web, "/huge-close") as sock:
        head, body = read_head(sock)
        assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
        while len(body) < 1_000_000:
            body += sock.recv(65536)
        assert body.startswith(b"<!DOCTYPE html>")


def test_huge_is_bounded() -> None:
    with HostileWeb(huge_bytes=300_000) as small:
        _, _, body = fetch(small, "/huge")
        assert 200_000 < len(body) <= 300_000
        assert body.endswith(b"</body></html>\n")
        with open_raw(small, "/huge-close") as sock:
            assert read_to_end(sock).endswith(b"</body></html>\n")


def test_huge_declared_sends_little(web: HostileWeb) -> None:
    with open_raw(web, "/huge-declared") as sock:
        head, body = read_head(sock)
        assert b"Content-Length: 5000000000" in head
        body += read_to_end(sock)
        assert 0 < len(body) <= 1024


def test_huge_understated_sends_more_than_it_declares() -> None:
    with HostileWeb(huge_bytes=300_000) as small, open_raw(small, "/huge-understated") as sock:
        head, body = read_head(sock)
        assert b"Content-Length: 2000" in head
        assert len(body + read_to_end(sock)) > 200_000


def test_a_web_on_another_loopback_address() -> None:
    with HostileWeb(address="127.0.0.3") as other:
        assert other.base_url == f"http://127.0.0.3:{other.port}"
        conn = http.client.HTTPConnection("127.0.0.3", other.port, timeout=5)
        try:
            conn.request("GET", "/ok/1.html")
            assert conn.getresponse().status == 200
        finally:
            conn.close()


# -- XML -----------------------------------------------------------------------------
def test_billion_laughs_is_well_formed_and_nested(web: HostileWeb) -> None:
    _, _, body = fetch(web, "/billion-laughs.rss")
    text = unexpanded(body)
    assert '<!ENTITY lol "lol">' in text
    assert '<!ENTITY lol9 "' + "&lol8;" * 10 + '">' in text
    assert "<title>&lol9;</title>" in text


def test_external_entities(web: HostileWeb) -> None:
    assert web.canary.read_text(encoding="utf-8").strip() == web.canary_marker
    _, _, body = fetch(web, "/external-entity.rss")
    text = unexpanded(body)
    assert '<!ENTITY xxe SYSTEM "file:///etc/passwd">' in text
    assert "<title>Leaked: &xxe;</title>" in text

    _, _, body = fetch(web, "/external-entity-canary.rss")
    text = unexpanded(body)
    assert f'<!ENTITY leak SYSTEM "{web.canary.as_uri()}">' in text
    assert "&leak;" in text and web.canary_marker not in text

    web.clear_log()
    _, _, body = fetch(web, "/external-entity-param.rss")
    assert f'<!ENTITY % remote SYSTEM "{web.url("/evil-param.dtd")}">' in body.decode()
    assert "&leak;" in unexpanded(body)
    assert web.dtd_requests == []
    _, _, dtd = fetch(web, "/evil-param.dtd")
    assert web.canary.as_uri().encode() in dtd
    assert [r.path for r in web.dtd_requests] == ["/evil-param.dtd"]


def test_external_dtd_fetch_is_logged(web: HostileWeb) -> None:
    web.clear_log()
    _, _, body = fetch(web, "/external-dtd.rss")
    assert f'<!DOCTYPE rss SYSTEM "{web.url("/evil.dtd")}">'.encode() in body
    # The feed itself parses without the DTD, and fetching it did not fetch the DTD.
    assert rss_items(body) == [(OK_ARTICLES[2].title, web.url("/ok/2.html"))]
    assert web.requests_for("/evil.dtd") == []
    status, headers, _ = fetch(web, "/evil.dtd")
    assert (status, headers["content-type"]) == (200, "application/xml-dtd")
    assert len(web.requests_for("/evil.dtd")) == 1


# -- encodings -----------------------------------------------------------------------
def test_invalid_utf8(web: HostileWeb) -> None:
    for path in ("/invalid-utf8.rss", "/invalid-utf8.html"):
        _, headers, body = fetch(web, path)
        assert "charset=utf-8" in headers["content-type"] or body.startswith(b"<?xml")
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")
        assert "\ufffd" in body.decode("utf-8", "replace")
    _, _, feed = fetch(web, "/invalid-utf8.rss")
    assert b"<title>Tide tables\xff\xfe for the week</title>" in feed
    _, _, page = fetch(web, "/invalid-utf8.html")
    assert page.decode("utf-8", "replace").count("<p>") >= 4


def test_wrong_charsets(web: HostileWeb) -> None:
    _, headers, body = fetch(web, "/wrong-charset.html")
    assert headers["content-type"] == "text/html; charset=utf-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("cp1252")
    assert '<meta charset="windows-1252">' in text
    assert WRONG_CHARSET_TEXT in text and "“pay what you like”" in text

    _, headers, body = fetch(web, "/wrong-charset-meta.html")
    assert headers["content-type"] == "text/html"
    text = body.decode("utf-8")
    assert '<meta charset="iso-8859-1">' in text
    assert WRONG_META_TEXT in text
    assert "Crème" in body.decode("iso-8859-1").replace("Ã¨", "è")


# -- politeness ----------------------------------------------------------------------
def test_retry_after(web: HostileWeb) -> None:
    status, headers, _ = fetch(web, "/429")
    assert (status, headers["retry-after"]) == (429, "120")
    status, headers, _ = fetch(web, "/503")
    assert (status, headers["retry-after"]) == (503, "30")
    status, headers, _ = fetch(web, "/503-plain")
    assert status == 503 and "retry-after" not in headers
    status, headers, _ = fetch(web, "/429-date")
    when = parsedate_to_datetime(headers["retry-after"]) - parsedate_to_datetime(headers["date"])
    assert (status, when) == (429, timedelta(hours=1))

    with HostileWeb(retry_after_429=5, retry_after_503=7, retry_after_date=60) as quick:
        assert fetch(quick, "/429")[1]["retry-after"] == "5"
        assert fetch(quick, "/503")[1]["retry-after"] == "7"
        headers = fetch(quick, "/429-date")[1]
        when = parsedate_to_datetime(headers["retry-after"]) - parsedate_to_datetime(
            headers["date"]
        )
        assert when == timedelta(seconds=60)


def test_robots_txt(web: HostileWeb) -> None:
    status, headers, body = fetch(web, "/robots.txt")
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    robots = RobotFileParser()
    robots.parse(body.decode().splitlines())
    for agent in ("ingest", "ingest/0.1 (+https://example.invalid)", "OtherBot"):
        assert not robots.can_fetch(agent, web.url("/private/article.html"))
        assert robots.can_fetch(agent, web.url("/ok/1.html"))
        assert robots.crawl_delay(agent) == 2
    assert not robots.can_fetch("ingest", web.url("/no-ingest/article.html"))
    assert robots.can_fetch("OtherBot", web.url("/no-ingest/article.html"))
    assert fetch(web, "/private/article.html")[0] == 200
    assert fetch(web, "/no-ingest/article.html")[0] == 200


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = self.deepest = self.paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)
        self.paragraphs += tag == "p"

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag == "div"


def test_slow_extract_page(web: HostileWeb) -> None:
    _, _, body = fetch(web, "/slow-extract.html")
    assert 1_000_000 < len(body) < 5_000_000
    counter = _Depth()
    counter.feed(body.decode("utf-8"))
    counter.close()
    assert counter.depth == 0  # balanced: the page is valid, just expensive
    assert counter.deepest == 5000
    assert counter.paragraphs > 20_000


# -- lifecycle -----------------------------------------------------------------------
def test_close_is_prompt_while_handlers_stream() -> None:
    server = HostileWeb(canary=None)
    canary = server.canary
    assert canary.read_text(encoding="utf-8").strip() == server.canary_marker
    socks = [open_raw(server, path) for path in ("/drip", "/drip-headers", "/huge")]
    try:
        read_head(socks[0])  # the drip is under way
        socks[1].recv(1)  # so is the header drip; /huge blocks on a full socket buffer
        time.sleep(0.2)
        start = time.monotonic()
        server.close()
        assert time.monotonic() - start < 2.0
        for sock in socks:
            sock.settimeout(2.0)
            read_to_end(sock)  # returns: the server hung up
        assert not server._threads
    finally:
        for sock in socks:
            sock.close()
        server.close()
    assert not canary.exists()  # the server's own canary goes with it
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_concurrent_requests_are_all_logged(web: HostileWeb) -> None:
    web.clear_log()
    threads = [threading.Thread(target=fetch, args=(web, f"/ok/1.html?n={n}")) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(web.requests_for("/ok/1.html")) == 20
