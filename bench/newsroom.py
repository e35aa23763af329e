"""A loopback newsroom for the performance benchmarks: real corpus pages behind RSS and Atom feeds.

    python -m bench.newsroom [--corpus PATH]   # serve it until Ctrl-C, print the feed URLs
    python -m bench.newsroom --page-delay 0.2  # each article page answers after 200 ms

    with Newsroom(load_corpus(DEFAULT_CORPUS)) as room:     # 108 pages, 6 feeds, 4 hosts
        room.feed_urls                                       # what a config lists
        room.pages                                           # (url, page) of every article

`LoopbackSite` is the server underneath: one stdlib ``ThreadingHTTPServer`` per loopback address
(127.0.0.2, 127.0.0.3, ...; each on its own port), serving a table of precomputed `Resource`s
by (host, path), HTTP/1.1 keep-alive, with ``ETag`` / ``Last-Modified`` and 304 answers to a
matching ``If-None-Match`` / ``If-Modified-Since``, gzip when the client accepts it (compressed
once, up front, so serving costs the server little CPU), and 404 for anything else
(robots.txt included: no rules). Other benchmarks build their own sites on it (`bench.repoll`).
A site can hold back the responses of a kind of path (`latency`: a distant server's round
trips, which loopback lacks) and log every request with its start and end (`requests`).

The corpus pages are read from the shared corpus at run time and never copied into the repo.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from html import escape, unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared/corpus/extraction"
HTML_TYPE = "text/html; charset=utf-8"
RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"
# One fixed date for every resource: conditional requests behave the same on every run.
EPOCH = 1_735_732_800.0  # 2025-01-01 12:00:00 UTC
TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Resource:
    """One URL's response: the body, and its gzip form when that is smaller."""

    body: bytes
    content_type: str
    etag: str
    last_modified: str
    gzipped: bytes | None = None

    @classmethod
    def make(
        cls, body: bytes, content_type: str, *, modified: float = EPOCH, compress: bool = True
    ) -> Resource:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        packed = gzip.compress(body, 6, mtime=0) if compress and len(body) > 512 else None
        if packed is not None and len(packed) >= len(body):
            packed = None
        return cls(body, content_type, etag, formatdate(modified, usegmt=True), packed)


@dataclass(frozen=True)
class Request:
    """One request a site answered: server-side times (``time.monotonic()``), from the
    request's arrival to its response's last byte written."""

    host: int
    path: str
    status: int
    started: float
    ended: float


@dataclass(frozen=True)
class CorpusPage:
    page_id: str
    original_url: str  # where the page was captured (its canonical URL, usually)
    html: bytes  # UTF-8, as in the corpus
    path: Path  # the gzipped file it was read from

    @property
    def title(self) -> str:
        match = TITLE.search(self.html[:200_000])
        raw = match[1].decode("utf-8", "replace") if match else ""
        return " ".join(unescape(raw).split()) or self.page_id[:12]


def load_corpus(corpus: Path) -> list[CorpusPage]:
    """Every page of the extraction corpus (ground-truth.json + html/<id>.html.gz), id order."""
    truth_file = corpus / "ground-truth.json"
    if not truth_file.is_file():
        raise SystemExit(f"no corpus at {corpus} (expected {truth_file}); use --corpus PATH")
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        path = (corpus / "html" / f"{page_id}.html.gz").resolve()
        pages.append(
            CorpusPage(page_id, truth[page_id]["url"], gzip.decompress(path.read_bytes()), path)
        )
    return pages


# --- the server ------------------------------------------------------------------------------


class LoopbackSite:
    """``hosts`` HTTP servers on 127.0.0.{first}, 127.0.0.{first+1}, ...; use as ``with``.

    Resources are added after the servers start (their ports are only known then) with `add`;
    `origin` gives a host's ``http://address:port``. `served` counts responses by
    ``"<kind> <status>"`` (kind: the path's first segment). ``latency[kind]`` holds back each
    response of that kind for so many seconds; with ``requests`` set to a list, every request
    is appended to it. The servers run as threads of the caller's process: a benchmark's own
    CPU time includes what serving cost.
    """

    def __init__(self, hosts: int, *, first: int = 2) -> None:
        if not 1 <= hosts <= 250 or not 1 <= first <= 254 - hosts:
            raise ValueError("hosts must fit within 127.0.0.1 .. 127.0.0.254")
        self.hosts = hosts
        self.first = first
        self.routes: dict[tuple[int, str], Resource] = {}
        self.served: Counter[str] = Counter()
        self.bytes_served = 0
        self.latency: dict[str, float] = {}
        self.requests: list[Request] | None = None
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LoopbackSite:
        try:
            for n in range(self.hosts):
                server = _Server((self.address(n), 0), _Handler)
                server.site = self
                server.host_index = n
                self._servers.append(server)
                thread = threading.Thread(
                    target=server.serve_forever, name=f"site-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def address(self, host: int) -> str:
        return f"127.0.0.{self.first + host}"

    def origin(self, host: int) -> str:
        host %= self.hosts
        port = int(self._servers[host].server_address[1])
        return f"http://{self.address(host)}:{port}"

    def add(self, host: int, path: str, resource: Resource) -> str:
        """Serve ``resource`` at ``path`` on ``host``; returns its URL."""
        self.routes[host % self.hosts, path] = resource
        return self.origin(host) + path

    def reset_counts(self) -> None:
        with self._lock:
            self.served.clear()
            self.bytes_served = 0

    def respond(self, host: int, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of ``path`` on ``host``."""
        resource = self.routes.get((host, path.split("?", 1)[0]))
        if resource is None:
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        validators = {"ETag": resource.etag, "Last-Modified": resource.last_modified}
        if not_modified(headers, resource.etag, resource.last_modified):
            return 304, validators, b""
        out = {**validators, "Content-Type": resource.content_type}
        body = resource.body
        if resource.gzipped is not None:
            out["Vary"] = "Accept-Encoding"
            if accepts_gzip(headers.get("Accept-Encoding")):
                out["Content-Encoding"] = "gzip"
                body = resource.gzipped
        return 200, out, body

    def count(self, path: str, status: int, size: int) -> None:
        with self._lock:
            self.served[f"{path_kind(path)} {status}"] += 1
            self.bytes_served += size

    def record(self, request: Request) -> None:
        log = self.requests
        if log is not None:
            log.append(request)  # list.append is atomic: no lock for the server threads


def path_kind(path: str) -> str:
    """A path's first segment ("news", "feeds"), "root" for "/"."""
    return path.lstrip("/").split("/", 1)[0] or "root"


def accepts_gzip(value: str | None) -> bool:
    for item in (value or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in {"gzip", "x-gzip", "*"}:
            return params.replace(" ", "") not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def not_modified(headers: Any, etag: str, modified: str) -> bool:
    # RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only without it.
    match = headers.get("If-None-Match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return etag in tags or match.strip() == "*"
    since = headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return parsedate_to_datetime(since) >= parsedate_to_datetime(modified)
    except (TypeError, ValueError):
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a thousand feeds polled 32 at a time must not be refused
    site: LoopbackSite
    host_index: int

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client hanging up is routine
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real news sites serve
    server_version = "LoopbackNews/1.0"
    timeout = 30  # idle keep-alive connections are dropped, so threads do not linger
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site
        started = time.monotonic()
        # Sleeping holds only this connection's thread: other requests are served meanwhile,
        # as by a distant server with many connections.
        delay = site.latency.get(path_kind(self.path))
        if delay:
            time.sleep(delay)
        status, headers, body = site.respond(self.server.host_index, self.path, self.headers)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)
        site.count(self.path, status, len(body))
        site.record(Request(self.server.host_index, self.path, status, started, time.monotonic()))


# --- the newsroom ----------------------------------------------------------------------------


def rss(title: str, link: str, items: list[dict[str, str]], modified: float) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['url'])}</link>"
        f'<guid isPermaLink="true">{escape(i["url"])}</guid>'
        f"<pubDate>{formatdate(float(i['published']), usegmt=True)}</pubDate>"
        f"<description>{escape(i['summary'])}</description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{escape(title)}</description><language>en</language>"
        f"<lastBuildDate>{formatdate(modified, usegmt=True)}</lastBuildDate>"
        f"{entries}</channel></rss>\n"
    ).encode()


def atom(title: str, link: str, items: list[dict[str, str]], modified: float) -> bytes:
    entries = "".join(
        f"<entry><title>{escape(i['title'])}</title>"
        f'<link rel="alternate" href="{escape(i["url"])}"/><id>{escape(i["url"])}</id>'
        f"<published>{_iso(float(i['published']))}</published>"
        f"<updated>{_iso(float(i['published']))}</updated>"
        f"<summary>{escape(i['summary'])}</summary></entry>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>{escape(title)}</title><link rel="alternate" href="{escape(link)}"/>'
        f"<id>{escape(link)}</id><updated>{_iso(modified)}</updated>{entries}</feed>\n"
    ).encode()


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


class Newsroom(LoopbackSite):
    """The corpus pages behind ``feeds`` feeds (RSS 2.0 and Atom alternately) on ``hosts``
    loopback addresses. Feed ``j`` lists an equal slice of the pages; page ``i`` is served by
    host ``i % hosts``, so every feed links to pages on every host. ``page_delay`` holds back
    each article page's response for so many seconds."""

    def __init__(
        self, pages: list[CorpusPage], *, feeds: int = 6, hosts: int = 4, page_delay: float = 0.0
    ) -> None:
        super().__init__(hosts)
        if page_delay:
            self.latency["news"] = page_delay
        if not 1 <= feeds <= len(pages):
            raise ValueError(f"feeds must be within 1..{len(pages)}")
        self.corpus = pages
        self.feed_count = feeds
        self.feed_urls: list[str] = []
        self.pages: list[tuple[str, CorpusPage]] = []  # (URL served, page)

    def __enter__(self) -> Newsroom:
        super().__enter__()
        items: list[dict[str, str]] = []
        for i, page in enumerate(self.corpus):
            url = self.add(
                i, f"/news/{page.page_id[:16]}.html", Resource.make(page.html, HTML_TYPE)
            )
            self.pages.append((url, page))
            summary = " ".join(_first_paragraph(page.html).split()[:40])
            items.append(
                {
                    "url": url,
                    "title": page.title,
                    "summary": summary,
                    "published": str(EPOCH - 3600 * (len(self.corpus) - i)),
                }
            )
        per_feed = -(-len(items) // self.feed_count)
        for j in range(self.feed_count):
            chunk = items[j * per_feed : (j + 1) * per_feed]
            title = f"Loopback News {j}"
            link = self.origin(j) + f"/section/{j}/"
            if j % 2 == 0:
                body, kind, path = rss(title, link, chunk, EPOCH), RSS_TYPE, f"/feeds/{j}.rss"
            else:
                body, kind, path = atom(title, link, chunk, EPOCH), ATOM_TYPE, f"/feeds/{j}.atom"
            self.feed_urls.append(self.add(j, path, Resource.make(body, kind)))
        return self


PARAGRAPH = re.compile(rb"<p[^>]*>(.*?)</p>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]+>")


def _first_paragraph(html: bytes) -> str:
    """The first paragraph with some words in it, as plain text (a feed entry's summary)."""
    for match in PARAGRAPH.finditer(html[:400_000]):
        text = " ".join(unescape(TAG.sub(" ", match[1].decode("utf-8", "replace"))).split())
        if len(text.split()) >= 12:
            return text
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.newsroom",
        description="Serve the corpus newsroom on loopback until interrupted.",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--feeds", type=int, default=6)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument(
        "--page-delay", type=float, default=0.0, help="seconds each article page waits (0)"
    )
    args = parser.parse_args(argv)
    room = Newsroom(
        load_corpus(args.corpus), feeds=args.feeds, hosts=args.hosts, page_delay=args.page_delay
    )
    with room:
        print("\n".join(room.feed_urls), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
