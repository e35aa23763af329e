"""A loopback "hostile web": a stdlib server whose pages attack or stall a news fetcher.

Where ``tests/newsroom.py`` plays a well-behaved site, this server plays the worst of the
open web, so end-to-end tests can check that the archiver stays bounded in time, memory
and reach, and that nothing else is disturbed::

    with HostileWeb(canary=tmp_path / "canary.txt") as web:
        run_fetch(web.url("/feeds/hostile.rss"))
        assert not web.requests_for("/private/article.html")
        assert web.canary_marker not in archive_text()

It is a hand-written HTTP/1.1 responder on ``socketserver`` (raw sockets are needed to
drip bytes and to reset connections). Every response is ``Connection: close``, and every
connection is bounded: 10 s to send a request head (64 KiB at most), 10 s for any one send
to a stalled reader, 130 s in all, and :meth:`HostileWeb.close` ends every handler at once.

Routes (defaults; sizes and delays are constructor arguments)::

  Path                      Behaviour                               A robust client concludes
  ------------------------  --------------------------------------  ----------------------------
  /drip                     200 text/html, Content-Length 100000,   a total-time limit cuts it
                            then 1 body byte per second for 120 s   off; nothing is stored
  /drip-headers             status line and headers at 1 B/s; the   a connect/read or total
                            head is longer than 120 bytes, so it    timeout fires before any
                            never completes at the default pace     response exists
  /reset                    200, Content-Length 50000, 1000 bytes   a network error for that
                            of HTML, then RST (SO_LINGER 0)         page; no partial article
  /redirect-loop            302 -> /redirect-loop-b -> 302 back     too many redirects; give up
  /redirect-chain/<n>       301 -> /redirect-chain/<n-1>; n=0 is a  short chains are followed,
                            normal article; n <= 100, else 404      long ones hit the hop limit
  /redirect-robots          302 -> /no-ingest/article.html, which   robots.txt is checked for
                            robots.txt forbids                      the target too: never fetched
  /redirect-private         302 -> http://10.0.0.1/secret           refuse BEFORE connecting
  /redirect-metadata        302 -> http://169.254.169.254/latest/   refuse before connecting
                            meta-data/ (cloud metadata endpoint)    (link-local)
  /redirect-mapped          302 -> http://[::ffff:127.0.0.1]:<port> loopback in IPv4-mapped
                            /feeds/ok.rss (really this server)      form: same rule as 127.0.0.1
  /gzip-bomb                200 text/html, gzip, ~1.06 MB on the    stop decompressing at a size
                            wire -> 1 GiB of spaces and <p>         cap; never hold 1 GiB
  /gzip-bomb.rss            the same as application/rss+xml (an     the same, in the feed path
                            RSS document padded with spaces)
  /huge                     200 text/html, chunked, no length;      stop reading at a size cap
                            200 MB of paragraphs, sent fast
  /huge-close               the same, close-delimited (no length,   stop reading at a size cap
                            no chunking)
  /huge-declared            Content-Length 5000000000, ~1 KB of     refuse on the declared size
                            HTML, then close                        (or see a truncated body)
  /huge-understated         Content-Length 2000, then the 200 MB    read what was declared and
                            of /huge, close-delimited               no more
  /billion-laughs.rss       RSS whose DTD nests lol1..lol9 (10^9    never expand entities; fail
                            "lol"s) and uses &lol9; in titles       or drop them, quickly
  /external-entity.rss      item title/description use &xxe; =      no file content in output
                            SYSTEM "file:///etc/passwd"             (look for "root:")
  /external-entity-canary   the same with the canary file (below)   canary_marker never stored
  .rss
  /external-entity-param    parameter entity %remote; loads /evil-  /evil-param.dtd never
  .rss                      param.dtd, which declares &leak; as the requested; marker never
                            canary file; &leak; used in items       stored
  /external-dtd.rss         <!DOCTYPE rss SYSTEM ".../evil.dtd">;   parse the (otherwise clean)
                            the body uses no entities               feed; /evil.dtd never fetched
  /evil.dtd                 a DTD declaring &leak; (canary) and     (only fetched by an unsafe
  /evil-param.dtd           &evil; -- requests are logged           XML parser)
  /invalid-utf8.rss         UTF-8 feed whose item titles hold       items kept, bad bytes -> U+FFFD
                            invalid byte sequences                  (or item skipped); no crash
  /invalid-utf8.html        article (UTF-8 header and meta) with    article kept with U+FFFD;
                            invalid bytes inside paragraphs         no crash
  /wrong-charset.html       header charset=utf-8, meta windows-     best: decode as windows-1252
                            1252, bytes windows-1252 (“”, é, £)     ("café", "£"); at least U+FFFD
  /wrong-charset-meta.html  no HTTP charset, meta iso-8859-1, bytes a UTF-8 sniff gives "crème";
                            really UTF-8                            obeying meta gives "crÃ¨me"
  /429                      429, Retry-After: 120                   back off that host >= 120 s
  /429-date                 429, Retry-After: <HTTP-date now + 1 h> back off until that date
  /503                      503, Retry-After: 30                    back off >= 30 s
  /503-plain                503, no Retry-After                     transient failure; retry later
  /robots.txt               * : Disallow /private/, Crawl-delay 2;   never fetch /private/ or
                            ingest: Disallow /private/ and          /no-ingest/; wait 2 s
                            /no-ingest/, Crawl-delay 2 (crawl_delay) between requests
  /private/article.html     ordinary article                        must NEVER be requested
  /no-ingest/article.html   ordinary article                        must NEVER be requested
  /slow-extract.html        ~1.5 MB valid HTML: the article, then   bound extraction time (ingest
                            20000 short paragraphs in 100 stacks    takes ~60-80 s unbounded);
                            of 200 nested divs, then 5000-deep      keep going with other pages
                            divs (see slow_extract_html)
  /feeds/ok.rss             RSS 2.0, 2 items -> /ok/1.html, /ok/2   both articles archived
  /ok/1.html .. /ok/3.html  ordinary articles                       archived normally
  /feeds/hostile.rss        RSS 2.0, one item per hostile page      /ok/3.html archived; every
                            above plus /ok/3.html                   other item fails or is skipped
  anything else             404

Notes for client-side tests:

* Nothing listens on 10.0.0.1 or 169.254.169.254 (and tests must never connect to
  non-loopback addresses): do NOT point a client whose private-address guard is off at
  ``/redirect-private``, ``/redirect-metadata`` or ``/feeds/hostile.rss`` (which links
  ``/redirect-private``). Loopback is the server itself; a client that must allow
  loopback but still block other private ranges is the only safe one, or build the
  server with ``private_redirect_in_feed=False`` to drop that item from the feed.
* The ``ingest`` robots group repeats ``Disallow: /private/`` and the crawl delay,
  because RFC 9309 (and ``urllib.robotparser``) apply ONLY the most specific matching
  group: a client named ``ingest`` would otherwise ignore the ``*`` rules.
* ``canary`` (a path the test chooses, or a temp file removed on :meth:`close`) holds
  ``canary_marker``, a unique string; any stored text containing it is a leak.
* The gzip bombs are built on first request (~0.3 s) and cached for the process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.newsroom import Headers

# Bounds every connection obeys, whatever its route: no test can hang on this server.
REQUEST_TIMEOUT = 10.0  # to receive a whole request head
MAX_REQUEST_HEAD = 64 * 1024
SEND_TIMEOUT = 10.0  # a reader that stalls this long on one send is dropped
CONNECTION_DEADLINE = 130.0  # no connection lives longer than this
CLOSE_BUDGET = 1.5  # close() waits at most this long for handlers to notice

DRIP_LENGTH = 100_000
RESET_LENGTH, RESET_SENT = 50_000, 1000
HUGE_DECLARED = 5_000_000_000
UNDERSTATED_LENGTH = 2000
MAX_REDIRECT_CHAIN = 100
BOMB_BLOCK = 1 << 20

PRIVATE_TARGET = "http://10.0.0.1/secret"
METADATA_TARGET = "http://169.254.169.254/latest/meta-data/"
PASSWD_URI = "file:///etc/passwd"

HTML = "text/html; charset=utf-8"
RSS = "application/rss+xml"
NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class HostileRequest:
    """One request as the server saw it (recorded before any reply byte is sent)."""

    method: str
    path: str  # as requested, query string included
    headers: Headers
    at: float  # time.monotonic() on arrival, for crawl-delay checks

    @property
    def bare_path(self) -> str:
        return urlsplit(self.path).path


# -- page text (all original) -----------------------------------------------------
@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[str, ...]
    author: str = "Staff reporter"
    published: str = "2025-03-10T08:00:00Z"


OK_ARTICLES: dict[int, Article] = {
    1: Article(
        "Harbour ferry returns to an hourly timetable",
        (
            "The small car ferry that links the two halves of Marrow Sound went back to an "
            "hourly timetable on Monday, three weeks after a cracked propeller shaft cut the "
            "service to four crossings a day.",
            "Crews at the slipway worked through two weekends to fit the replacement shaft, "
            "which was machined at a yard up the coast and brought down on a flatbed lorry "
            "that struggled with the hairpin bend above the village.",
            "Commuters who had taken to the forty-minute drive round the head of the sound "
            "said the early crossing mattered most. One nurse said she had been leaving home "
            "before six to reach the morning handover on time.",
            "The operator said it would keep a spare shaft in store from now on, and that "
            "season tickets bought during the disruption would be extended by a month.",
        ),
        author="Ines Calloway",
    ),
    2: Article(
        "Town library reopens its map room after roof repairs",
        (
            "The map room on the top floor of Eastwick library opened to readers again this "
            "week, eighteen months after a winter storm lifted a section of lead flashing and "
            "let rain into the plan chests.",
            "Conservators dried more than four hundred sheets by hand, laying them between "
            "blotting paper in the reading room while the roofers worked overhead. Only a "
            "dozen tithe maps were judged too fragile to return to open access.",
            "Volunteers have used the closure to index the collection for the first time, "
            "so readers can now search by parish, surveyor and year instead of leafing "
            "through the card drawers that have served since the nineteen-fifties.",
            "The room is open on Tuesday and Saturday mornings; the library asks visitors "
            "to book a table in advance while the new index is being checked.",
        ),
        author="Tobias Wren",
        published="2025-03-11T09:30:00Z",
    ),
    3: Article(
        "Valley orchards trial frost fans ahead of blossom",
        (
            "Three fruit farms on the floor of the Aller valley have put up tall wind "
            "machines this spring, betting that stirring the air on still nights will keep "
            "a late frost off the apple blossom.",
            "Cold air pools on the valley floor on clear nights while a warmer layer sits a "
            "few metres higher; the fans pull that warmer air down among the trees. Growers "
            "say two degrees can be the difference between a crop and none.",
            "Neighbours have asked about noise. The farms have agreed to run the fans only "
            "when sensors in the rows read below one degree, and to publish a log of every "
            "night the machines are switched on.",
            "A local growers' group will compare yields from fanned and unfanned rows in "
            "the autumn before anyone else decides whether the cost is worth it.",
        ),
        author="Marta Oyelaran",
        published="2025-03-12T07:15:00Z",
    ),
}

PRIVATE_ARTICLE = Article(
    "Staff notice: rear car park resurfacing",
    (
        "The rear car park will be closed from Thursday while contractors lay a new surface "
        "and repaint the bays. Staff who usually park there should use the overflow field.",
        "This page sits under a path that robots.txt disallows, so a polite crawler never "
        "asks for it; if it appears in an archive, robots.txt was ignored.",
    ),
)
NO_INGEST_ARTICLE = Article(
    "Members' draft: committee minutes for March",
    (
        "Draft minutes of the March committee meeting, circulated to members for comment "
        "before they are approved. Items covered the hall boiler and the spring fair.",
        "robots.txt disallows this path for the ingest user agent by name, so the archiver "
        "must never request it even though other crawlers may.",
    ),
)
CHAIN_END_ARTICLE = Article(
    "Footbridge closure extended to the end of the month",
    (
        "The footbridge over the mill leat will stay shut until the end of the month after "
        "inspectors found more corroded bolts than expected under the deck boards.",
        "Walkers are being sent along the lane past the old tannery, which adds about ten "
        "minutes to the route between the station and the market square.",
        "The council said the contractor had ordered replacement fixings and would work "
        "through the weekend once they arrive, weather permitting.",
    ),
)
INVALID_UTF8_ARTICLE = Article(
    "Allotment society counts a record number of show entries",
    (
        "The Northgate allotment society says its late-summer show drew more entries than "
        "in any year since it began keeping records, with the onion classes alone filling "
        "two trestle tables.{BAD1}",
        "Judges took most of the afternoon over the heaviest marrow, which had to be "
        "weighed twice after the first scale{BAD2} was found to be resting on a tent peg.",
        "The society's secretary said younger members had been behind the surge, many of "
        "them sharing plots with neighbours{BAD3} to keep the waiting list moving.",
        "Proceeds from the produce stall will go towards a new water trough for the lower "
        "terraces, where plot holders still carry cans from the standpipe by the gate.",
    ),
)
# Byte sequences no UTF-8 decoder may accept: a lone 0xFF, a lead byte followed by ASCII,
# a stray continuation byte, an encoded surrogate and an overlong "/".
BAD_UTF8: dict[str, bytes] = {
    "{BAD1}": b"\xff\xfe",
    "{BAD2}": b"\xc3\x28",
    "{BAD3}": b"\x80\xed\xa0\x80\xc0\xaf",
}
WRONG_CHARSET_ARTICLE = Article(
    "Café on the quay raises £4,200 for the lifeboat",
    (
        "The café at the end of the quay handed over a cheque for £4,200 to the lifeboat "
        "station on Sunday, the proceeds of a winter of “pay what you like” soup lunches.",
        "The owner, a former crew member, said the idea began as a way to use up "
        "vegetables from the market and turned into a fixture of the harbour’s week.",
        "The station’s coxswain said the money would pay for new drysuits and a "
        "first-aid course for the three volunteers who joined this year.",
    ),
)
WRONG_META_ARTICLE = Article(
    "Crème brûlée contest draws a crowd to the town hall",
    (
        "Forty cooks entered the crème brûlée contest at the town hall on Saturday, and "
        "the judges needed two rounds of tasting before they agreed on a winner.",
        "The winning entry, flavoured with a little bay leaf, came from a retired "
        "schoolteacher who said she had been practising on her neighbours since January.",
        "Organisers plan a savoury pâté round next year after several visitors asked "
        "for something to eat that was not custard.",
    ),
)
SLOW_ARTICLE = Article(
    "Parish registers go online after a decade of scanning",
    (
        "Every surviving register from the parishes of the upper valley can now be read "
        "online, after volunteers finished scanning the last box of burial books.",
        "The catalogue below lists every box. It is long, and so is the archive's layout: "
        "the page is built to test how long an extractor takes over a very large document.",
    ),
)
# Filler for the streaming routes: a paragraph of text repeated many times.
FILLER_PARAGRAPH = (
    "<p>This paragraph belongs to a page that keeps going long after any reader would "
    "have stopped: the same sentence about tide tables, gull counts and the price of "
    "bait, said again and again so that the page grows without end.</p>\n"
)

# Expected text for client tests, in the decoding a careful client should find.
WRONG_CHARSET_TEXT = "Café on the quay raises £4,200"
WRONG_META_TEXT = "Crème brûlée contest"


def article_html(article: Article, meta_charset: str = "utf-8", extra: str = "") -> str:
    paragraphs = "\n".join(f"<p>{p}</p>" for p in article.paragraphs)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="{meta_charset}">\n'
        f"<title>{article.title}</title>\n"
        f'<meta name="author" content="{article.author}">\n'
        f'<meta property="article:published_time" content="{article.published}">\n'
        "</head><body>\n"
        '<header><nav><a href="/">Home</a> | <a href="/news/">News</a></nav></header>\n'
        f"<article><h1>{article.title}</h1>\n"
        f'<p class="byline">By {article.author}</p>\n'
        f'<time datetime="{article.published}">{article.published[:10]}</time>\n'
        f"{paragraphs}\n</article>\n{extra}"
        "<footer><p>The Loopback Gazette, a paper that does not exist.</p></footer>\n"
        "</body></html>\n"
    )


def rss(title: str, link: str, items: list[tuple[str, str, str]], doctype: str = "") -> str:
    """An RSS 2.0 document; ``items`` are (title, link, description), already escaped."""
    entries = "".join(
        f"<item><title>{t}</title><link>{u}</link><guid>{u}</guid>"
        f"<description>{d}</description>"
        f"<pubDate>Mon, 10 Mar 2025 {8 + i % 10:02d}:00:00 GMT</pubDate></item>\n"
        for i, (t, u, d) in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}'
        f'<rss version="2.0"><channel>\n<title>{title}</title><link>{link}</link>\n'
        f"<description>{title}, served by the hostile loopback server.</description>\n"
        f"{entries}</channel></rss>\n"
    )


def _laughs_doctype() -> str:
    """The classic: each level is ten of the previous one, so &lol9; is 10^9 "lol"s."""
    lines = ['  <!ENTITY lol "lol">']
    for n in range(1, 10):
        inner = f"&lol{n - 1};" if n > 1 else "&lol;"
        lines.append(f'  <!ENTITY lol{n} "{inner * 10}">')
    return "<!DOCTYPE rss [\n" + "\n".join(lines) + "\n]>\n"


LAUGHS_DOCTYPE = _laughs_doctype()


ROBOTS_TXT = (
    "# The hostile loopback server's rules.\n"
    "User-agent: *\n"
    "Disallow: /private/\n"
    "Crawl-delay: {delay}\n"
    "\n"
    "# A crawler that matches this group ignores the * group (RFC 9309), so repeat its rules.\n"
    "User-agent: ingest\n"
    "Disallow: /private/\n"
    "Disallow: /no-ingest/\n"
    "Crawl-delay: {delay}\n"
)

# Item paths of /feeds/hostile.rss, with the item's title.
HOSTILE_FEED_ITEMS: dict[str, str] = {
    "/drip": "A page that arrives one byte a second",
    "/reset": "A page cut off by a connection reset",
    "/redirect-loop": "A redirect that points back at itself",
    "/redirect-private": "A redirect into a private network",
    "/redirect-robots": "A redirect to a page robots.txt forbids",
    "/gzip-bomb": "A small download that inflates to a gigabyte",
    "/huge": "A page two hundred megabytes long",
    "/huge-declared": "A page that claims to be five gigabytes",
    "/invalid-utf8.html": "A page with broken UTF-8",
    "/wrong-charset.html": "A page whose header lies about its charset",
    "/429": "A page that says: too many requests",
    "/503": "A page that says: service unavailable",
    "/private/article.html": "A page robots.txt forbids",
    "/slow-extract.html": "A page built to be slow to extract",
    "/ok/3.html": OK_ARTICLES[3].title,
}


# -- the gzip bomb -----------------------------------------------------------------
_BOMB_LOCK = threading.Lock()
_BOMBS: dict[tuple[bytes, bytes, int], bytes] = {}
# Fixed gzip header (RFC 1952): deflate, no name, mtime 0, max compression, unknown OS.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def gzip_bomb(prefix: bytes, suffix: bytes, filler_mib: int, first: bytes = b"<p>") -> bytes:
    """A gzip member that inflates to ``prefix``, ``filler_mib`` MiB of filler, ``suffix``.

    Deflate tops out near 1030:1, so 1 GiB of spaces is ~1.06 MB compressed (ratio
    ~1010:1). Compressing a real gigabyte takes ~3 s; instead one 1 MiB block (``first``
    then spaces) is compressed after a full flush, which empties the window, so its bytes
    stand alone and can simply be repeated. Only the CRC has to see every byte (~0.3 s).
    """
    key = (prefix + first, suffix, filler_mib)
    with _BOMB_LOCK:
        if key in _BOMBS:
            return _BOMBS[key]
        block = first + b" " * (BOMB_BLOCK - len(first))
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; we frame it
        head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
        packed = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
        tail = packer.compress(suffix) + packer.flush()
        crc = zlib.crc32(prefix)
        for _ in range(filler_mib):
            crc = zlib.crc32(block, crc)
        crc = zlib.crc32(suffix, crc)
        size = len(prefix) + filler_mib * BOMB_BLOCK + len(suffix)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
        _BOMBS[key] = bomb = b"".join([GZIP_HEADER, head, packed * filler_mib, tail, trailer])
        return bomb


def slow_extract_html(towers: int = 100) -> str:
    """Valid HTML that keeps an extractor busy: ~1.5 MB and ~60-80 s of trafilatura at 100.

    A "deep nesting" page of thousands of levels is no use against lxml: libxml2 stops
    building the tree at depth 256, so everything after is dropped in microseconds. What
    is slow is many short paragraphs in a row, nested: justext (trafilatura's fallback)
    scans neighbours for each one, so time grows with the square of ``towers`` (each a
    200-deep stack of divs, one short paragraph per level): 25 -> ~4 s, 50 -> ~14 s,
    100 -> ~60-80 s here. A big table after them made it minutes, too slow to bound.
    The 5000-deep tail comes last: harmless to lxml, fatal to recursive tree walkers.
    """
    depth = 200
    tower = (
        "".join(
            f'<div class="layer"><p>Layer {i}: a box of registers, catalogued.</p>'
            for i in range(depth)
        )
        + "</div>" * depth
    )
    tail = "<div>" * 5000 + "The bottom of the archive." + "</div>" * 5000
    extra = f"<section>{tower * towers}</section>\n<section>{tail}</section>\n"
    return article_html(SLOW_ARTICLE, extra=extra)


# -- the server --------------------------------------------------------------------
@dataclass
class _Page:
    status: int
    headers: dict[str, str]
    body: bytes


def _head(status: int, headers: dict[str, str]) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _base_headers(content_type: str | None = HTML) -> dict[str, str]:
    headers = {
        "Date": format_datetime(datetime.now(UTC), usegmt=True),
        "Server": "HostileWeb/1.0",
        "Connection": "close",
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True  # close() does its own, bounded, joining
    request_queue_size = 64
    web: HostileWeb

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up or timing out is the point of this server; real bugs still show.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def setup(self) -> None:
        self.web = self.server.web
        self.deadline = time.monotonic() + CONNECTION_DEADLINE
        self.request.settimeout(SEND_TIMEOUT)
        self.web._track(self.request)

    def finish(self) -> None:
        self.web._untrack(self.request)

    def handle(self) -> None:
        parsed = self._read_request()
        if parsed is None:
            return
        method, target, headers = parsed
        self.web._record(HostileRequest(method, target, headers, time.monotonic()))
        self.send_body = method != "HEAD"
        path = unquote(urlsplit(target).path)
        dynamic = self.web._dynamic.get(path)
        if dynamic is not None:
            dynamic(self)
        elif path.startswith("/redirect-chain/"):
            self._redirect_chain(path.removeprefix("/redirect-chain/"))
        else:
            self.reply(self.web._pages.get(path) or self.web._not_found)

    # -- plumbing --------------------------------------------------------------------
    def live(self) -> bool:
        return not self.web._stop.is_set() and time.monotonic() < self.deadline

    def send(self, data: bytes) -> bool:
        """Send it all, or report that the client, the deadline or close() intervened."""
        if not self.live():
            return False
        try:
            self.request.sendall(data)
        except OSError:
            return False
        return True

    def drip(self, data: bytes, seconds: float) -> bool:
        """One byte per drip interval, for at most ``seconds``; True if all was sent."""
        end = time.monotonic() + seconds
        for i in range(len(data)):
            if not self.send(data[i : i + 1]):
                return False
            if i + 1 < len(data) and (
                time.monotonic() + self.web.drip_interval > end
                or self.web._stop.wait(self.web.drip_interval)
            ):
                return False
        return True

    def reply(self, page: _Page) -> None:
        headers = dict(page.headers)
        headers["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
        body = page.body if page.status not in NO_BODY_STATUSES else b""
        if page.status not in NO_BODY_STATUSES:
            headers.setdefault("Content-Length", str(len(body)))
        self.send(_head(page.status, headers) + (body if self.send_body else b""))

    def _read_request(self) -> tuple[str, str, Headers] | None:
        data = b""
        end = time.monotonic() + REQUEST_TIMEOUT
        while b"\r\n\r\n" not in data:
            remaining = end - time.monotonic()
            if remaining <= 0 or len(data) > MAX_REQUEST_HEAD or not self.live():
                return None
            self.request.settimeout(min(remaining, SEND_TIMEOUT))
            try:
                chunk = self.request.recv(8192)
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        self.request.settimeout(SEND_TIMEOUT)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            return None
        pairs = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        headers = Headers((name, value) for name, value in pairs)
        self._drain(body, headers)
        return parts[0].upper(), parts[1], headers

    def _drain(self, received: bytes, headers: Headers) -> None:
        # Read a (small) request body so closing does not RST a client still sending it.
        try:
            want = min(int(headers.get("Content-Length") or 0), 1 << 20) - len(received)
        except ValueError:
            return
        while want > 0 and self.live():
            try:
                chunk = self.request.recv(min(want, 65536))
            except OSError:
                return
            if not chunk:
                return
            want -= len(chunk)

    # -- dynamic routes --------------------------------------------------------------
    def drip_body(self) -> None:
        headers = _base_headers() | {"Content-Length": str(DRIP_LENGTH)}
        if self.send(_head(200, headers)) and self.send_body:
            body = (article_html(CHAIN_END_ARTICLE) + FILLER_PARAGRAPH * 400).encode()
            self.drip(body[:DRIP_LENGTH], self.web.drip_seconds)

    def drip_headers(self) -> None:
        body = article_html(CHAIN_END_ARTICLE).encode()
        headers = _base_headers() | {
            "Content-Length": str(len(body)),
            # Padding makes the head outlast the default 120 s drip.
            "X-Drip": "this header block is sent one byte at a time " * 3,
        }
        if self.drip(_head(200, headers), self.web.drip_seconds) and self.send_body:
            self.send(body)

    def reset(self) -> None:
        headers = _base_headers() | {"Content-Length": str(RESET_LENGTH)}
        body = (article_html(CHAIN_END_ARTICLE) + FILLER_PARAGRAPH * 10).encode()
        if not self.send(_head(200, headers) + body[:RESET_SENT]):
            return
        # Give the bytes time to leave: SO_LINGER 0 discards anything still unsent.
        self.web._stop.wait(0.2)
        self.web._untrack(self.request)
        try:
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()  # with a zero linger, close() sends RST instead of FIN
        except OSError:
            pass

    def huge(self, chunked: bool = True, declared: int | None = None) -> None:
        headers = _base_headers()
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        if declared is not None:
            headers["Content-Length"] = str(declared)
        if not self.send(_head(200, headers)) or not self.send_body:
            return
        frame: Callable[[bytes], bytes] = (
            (lambda b: f"{len(b):x}\r\n".encode() + b + b"\r\n") if chunked else (lambda b: b)
        )
        prefix = b"<!DOCTYPE html><html><head><title>Endless</title></head><body>\n"
        suffix = b"</body></html>\n"
        block = FILLER_PARAGRAPH.encode() * (65536 // len(FILLER_PARAGRAPH))
        blocks = max(0, self.web.huge_bytes - len(prefix) - len(suffix)) // len(block)
        if not self.send(frame(prefix)):
            return
        framed = frame(block)
        for _ in range(blocks):
            if not self.send(framed):
                return
        self.send(frame(suffix) + (b"0\r\n\r\n" if chunked else b""))

    def huge_close(self) -> None:
        self.huge(chunked=False)

    def huge_understated(self) -> None:
        self.huge(chunked=False, declared=UNDERSTATED_LENGTH)

    def huge_declared(self) -> None:
        headers = _base_headers() | {"Content-Length": str(HUGE_DECLARED)}
        body = (article_html(CHAIN_END_ARTICLE)[:1024]).encode()
        self.send(_head(200, headers) + (body if self.send_body else b""))

    def bomb(self, content_type: str, prefix: str, suffix: str, first: bytes) -> None:
        body = gzip_bomb(prefix.encode(), suffix.encode(), self.web.bomb_mib, first)
        headers = _base_headers(content_type) | {
            "Content-Encoding": "gzip",
            "Content-Length": str(len(body)),
        }
        self.send(_head(200, headers) + (body if self.send_body else b""))

    def bomb_html(self) -> None:
        self.bomb(
            HTML,
            "<!DOCTYPE html><html><head><title>Inflating</title></head><body>\n",
            "</body></html>\n",
            b"<p>",
        )

    def bomb_rss(self) -> None:
        self.bomb(
            RSS,
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            "<title>Inflating feed</title><description>",
            "</description></channel></rss>\n",
            b" ",
        )

    def too_many_dated(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        later = now + timedelta(seconds=self.web.retry_after_date)
        headers = _base_headers() | {
            "Date": format_datetime(now, usegmt=True),
            "Retry-After": format_datetime(later, usegmt=True),
        }
        page = _status_page(429, headers)
        self.send(_head(429, page.headers) + (page.body if self.send_body else b""))

    def _redirect_chain(self, rest: str) -> None:
        if not rest.isdigit() or int(rest) > MAX_REDIRECT_CHAIN:
            self.reply(self.web._not_found)
        elif int(rest) == 0:
            self.reply(_ok_page(article_html(CHAIN_END_ARTICLE)))
        else:
            self.reply(_redirect(self.web.url(f"/redirect-chain/{int(rest) - 1}"), 301))


def _ok_page(body: str | bytes, content_type: str = HTML) -> _Page:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return _Page(200, _base_headers(content_type), raw)


def _status_page(status: int, headers: dict[str, str] | None = None) -> _Page:
    phrase = HTTPStatus(status).phrase
    body = (
        f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{status} {phrase}</h1>"
        f"<p>The hostile server answered {status} on purpose.</p></body></html>"
    ).encode()
    all_headers = (headers or _base_headers()) | {"Content-Length": str(len(body))}
    return _Page(status, all_headers, body)


def _redirect(location: str, status: int = 302) -> _Page:
    page = _status_page(status)
    page.headers["Location"] = location
    return page


class HostileWeb:
    """Serve the hostile routes on 127.0.0.1 from a daemon thread until :meth:`close`."""

    def __init__(
        self,
        *,
        canary: Path | None = None,
        retry_after_429: int = 120,
        retry_after_503: int = 30,
        retry_after_date: float = 3600.0,
        drip_interval: float = 1.0,
        drip_seconds: float = 120.0,
        huge_bytes: int = 200_000_000,
        bomb_mib: int = 1024,
        slow_towers: int = 100,
        private_redirect_in_feed: bool = True,
        address: str = "127.0.0.1",
        crawl_delay: float = 2,
    ) -> None:
        self.crawl_delay = crawl_delay
        self.retry_after_429 = retry_after_429
        self.retry_after_503 = retry_after_503
        self.retry_after_date = retry_after_date
        self.drip_interval = drip_interval
        self.drip_seconds = drip_seconds
        self.huge_bytes = huge_bytes
        self.bomb_mib = bomb_mib  # decompressed filler of the gzip bombs, in MiB
        self.canary_marker = f"INGEST-CANARY-{secrets.token_hex(8)}"
        self._own_canary = canary is None
        if canary is None:
            fd, name = tempfile.mkstemp(prefix="hostile-canary-", suffix=".txt")
            os.close(fd)
            canary = Path(name)
        canary.write_text(self.canary_marker + "\n", encoding="utf-8")
        self.canary: Path = canary.resolve()

        self._lock = threading.Lock()
        self._requests: list[HostileRequest] = []
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stop = threading.Event()
        self._closed = False
        self._server = _Server((address, 0), _Handler)
        self._server.web = self
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://{address}:{self.port}"
        self.slow_towers = slow_towers
        self._pages = self._build_pages(private_redirect_in_feed)
        self._not_found = _status_page(404)
        self._dynamic: dict[str, Callable[[_Handler], None]] = {
            "/drip": _Handler.drip_body,
            "/drip-headers": _Handler.drip_headers,
            "/reset": _Handler.reset,
            "/huge": _Handler.huge,
            "/huge-close": _Handler.huge_close,
            "/huge-declared": _Handler.huge_declared,
            "/huge-understated": _Handler.huge_understated,
            "/gzip-bomb": _Handler.bomb_html,
            "/gzip-bomb.rss": _Handler.bomb_rss,
            "/429-date": _Handler.too_many_dated,
        }
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="hostile-web", daemon=True
        )
        self._thread.start()

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> HostileWeb:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, end every handler (dripping ones included) and clean up."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            # Wakes handlers blocked in recv/send; they see the stop event and return.
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        end = time.monotonic() + CLOSE_BUDGET
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))
        self._thread.join(timeout=max(0.0, end - time.monotonic()))
        if self._own_canary:
            self.canary.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<HostileWeb {self.base_url}>"

    # -- helpers for tests ---------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL on this server for ``path`` ("/drip")."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[HostileRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[HostileRequest]:
        """Requests for ``path``; without a "?" the query string is ignored."""
        exact = "?" in path
        return [r for r in self.requests if (r.path if exact else r.bare_path) == path]

    @property
    def dtd_requests(self) -> list[HostileRequest]:
        """Requests for the evil DTDs: any at all means an XML parser fetched one."""
        return [r for r in self.requests if r.bare_path.endswith(".dtd")]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- internals (called from handler threads) ----------------------------------
    def _record(self, request: HostileRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self._threads.add(threading.current_thread())
        if self._stop.is_set():  # accepted just as close() ran
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self._threads.discard(threading.current_thread())

    def _build_pages(self, private_in_feed: bool) -> dict[str, _Page]:
        url = self.url
        canary_uri = self.canary.as_uri()
        pages: dict[str, _Page] = {}
        for n, article in OK_ARTICLES.items():
            pages[f"/ok/{n}.html"] = _ok_page(article_html(article))
        pages["/private/article.html"] = _ok_page(article_html(PRIVATE_ARTICLE))
        pages["/no-ingest/article.html"] = _ok_page(article_html(NO_INGEST_ARTICLE))
        pages["/slow-extract.html"] = _ok_page(slow_extract_html(self.slow_towers))
        pages["/robots.txt"] = _ok_page(
            ROBOTS_TXT.format(delay=self.crawl_delay), "text/plain; charset=utf-8"
        )

        # Redirects.
        pages["/redirect-loop"] = _redirect(url("/redirect-loop-b"))
        pages["/redirect-loop-b"] = _redirect(url("/redirect-loop"))
        pages["/redirect-private"] = _redirect(PRIVATE_TARGET)
        pages["/redirect-robots"] = _redirect(url("/no-ingest/article.html"))
        pages["/redirect-metadata"] = _redirect(METADATA_TARGET)
        pages["/redirect-mapped"] = _redirect(f"http://[::ffff:127.0.0.1]:{self.port}/feeds/ok.rss")

        # Status pages.
        pages["/429"] = _status_page(
            429, _base_headers() | {"Retry-After": str(self.retry_after_429)}
        )
        pages["/503"] = _status_page(
            503, _base_headers() | {"Retry-After": str(self.retry_after_503)}
        )
        pages["/503-plain"] = _status_page(503)

        # Feeds.
        ok_items = [
            (OK_ARTICLES[n].title, url(f"/ok/{n}.html"), OK_ARTICLES[n].paragraphs[0])
            for n in (1, 2)
        ]
        pages["/feeds/ok.rss"] = _ok_page(rss("Quiet harbour news", url("/"), ok_items), RSS)
        hostile_items = [
            (title, url(path), f"Hostile route {path}; a robust client survives it.")
            for path, title in HOSTILE_FEED_ITEMS.items()
            if private_in_feed or path != "/redirect-private"
        ]
        pages["/feeds/hostile.rss"] = _ok_page(rss("Hostile web", url("/"), hostile_items), RSS)

        # XML entity attacks.
        laughs = [("&lol9;", url("/ok/1.html"), "Entity expansion: &lol9;")]
        pages["/billion-laughs.rss"] = _ok_page(
            rss("Laughing feed", url("/"), laughs, LAUGHS_DOCTYPE), RSS
        )
        xxe_doctype = f'<!DOCTYPE rss [\n  <!ENTITY xxe SYSTEM "{PASSWD_URI}">\n]>\n'
        xxe = [("Leaked: &xxe;", url("/ok/1.html"), "Password file: &xxe;")]
        pages["/external-entity.rss"] = _ok_page(rss("XXE feed", url("/"), xxe, xxe_doctype), RSS)
        canary_doctype = f'<!DOCTYPE rss [\n  <!ENTITY leak SYSTEM "{canary_uri}">\n]>\n'
        leak = [("Leaked: &leak;", url("/ok/1.html"), "Canary file: &leak;")]
        pages["/external-entity-canary.rss"] = _ok_page(
            rss("Canary feed", url("/"), leak, canary_doctype), RSS
        )
        param_doctype = (
            "<!DOCTYPE rss [\n"
            f'  <!ENTITY % remote SYSTEM "{url("/evil-param.dtd")}">\n'
            "  %remote;\n"
            "]>\n"
        )
        pages["/external-entity-param.rss"] = _ok_page(
            rss("Parameter entity feed", url("/"), leak, param_doctype), RSS
        )
        dtd_doctype = f'<!DOCTYPE rss SYSTEM "{url("/evil.dtd")}">\n'
        clean = [(OK_ARTICLES[2].title, url("/ok/2.html"), OK_ARTICLES[2].paragraphs[0])]
        pages["/external-dtd.rss"] = _ok_page(rss("DTD feed", url("/"), clean, dtd_doctype), RSS)
        evil_dtd = (
            f'<!ENTITY leak SYSTEM "{canary_uri}">\n<!ENTITY evil "expanded from the evil DTD">\n'
        )
        pages["/evil.dtd"] = _ok_page(evil_dtd, "application/xml-dtd")
        pages["/evil-param.dtd"] = _ok_page(evil_dtd, "application/xml-dtd")

        # Encoding trouble.
        bad_items = [
            ("Tide tables{BAD1} for the week", url("/ok/1.html"), "Broken bytes{BAD2} here."),
            ("Gull count{BAD3} up again", url("/invalid-utf8.html"), "More{BAD1} broken bytes."),
        ]
        pages["/invalid-utf8.rss"] = _ok_page(
            _with_bad_bytes(rss("Broken bytes feed", url("/"), bad_items)), RSS
        )
        pages["/invalid-utf8.html"] = _ok_page(_with_bad_bytes(article_html(INVALID_UTF8_ARTICLE)))
        pages["/wrong-charset.html"] = _ok_page(
            article_html(WRONG_CHARSET_ARTICLE, "windows-1252").encode("cp1252")
        )
        pages["/wrong-charset-meta.html"] = _ok_page(
            article_html(WRONG_META_ARTICLE, "iso-8859-1").encode("utf-8"), "text/html"
        )
        return pages


def _with_bad_bytes(text: str) -> bytes:
    data = text.encode("utf-8")
    for placeholder, raw in BAD_UTF8.items():
        data = data.replace(placeholder.encode(), raw)
    return data
