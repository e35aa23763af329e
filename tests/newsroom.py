"""A loopback "newsroom": a stdlib HTTP server that plays the web for end-to-end tests.

It serves ``tests/fixtures/site`` by URL path, rewriting ``{{BASE}}`` in text files to
its own address (ports are dynamic), answers conditional GETs, records every request,
and lets a test override routes at runtime::

    with Newsroom() as room:
        room.set("/news/nbc-style.html", status=500)   # break a page ...
        room.unset("/news/nbc-style.html")             # ... and fix it again
        room.redirect("/old.html", "/news/nbc-style.html")
        fetch(room.url("/feeds/world.rss"))
        assert room.requests_for("/feeds/world.rss")[0].status == 200
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
SITE_DIR = FIXTURES_DIR / "site"
EXPECTED_DIR = FIXTURES_DIR / "expected"
BASE_PLACEHOLDER = "{{BASE}}"

# One fixed date for every fixture file, later than any article in them, so that
# conditional requests behave the same on every run.
LAST_MODIFIED = datetime(2025, 3, 15, 12, 0, 0, tzinfo=UTC)

EXTENSION_TYPES: dict[str, str] = {
    ".rss": "application/rss+xml",
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
    ".png": "image/png",
}
# Pages whose bytes are not UTF-8 must say so in the header, like a real server would.
ROUTE_TYPES: dict[str, str] = {
    "/news/legacy-1252.html": "text/html; charset=windows-1252",
    "/news/tokyo-sjis.html": "text/html; charset=Shift_JIS",
}
TEXT_SUFFIXES = frozenset({".rss", ".xml", ".atom", ".rdf", ".html", ".htm", ".json", ".txt"})
NO_BODY_STATUSES = frozenset({204, 304})
# What a 304 repeats from the 200 it stands for (RFC 9110 15.4.5).
VALIDATOR_HEADERS = frozenset({"ETag", "Last-Modified", "Cache-Control"})


class Headers(dict[str, str]):
    """Request headers keyed by lower-case name; lookups ignore case as HTTP does."""

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        super().__init__()
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            key = name.lower()
            # Repeated headers fold into one comma-separated value (RFC 9110 5.3).
            merged = f"{super().__getitem__(key)}, {value}" if super().__contains__(key) else value
            super().__setitem__(key, merged)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request as the newsroom saw it, the status it answered, and when (monotonic
    seconds: from its arrival to the end of the answer, None while it is being answered)."""

    method: str
    path: str  # as requested, query string included
    headers: Headers
    status: int
    started: float = 0.0
    finished: float | None = None

    @property
    def bare_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> str:
        return urlsplit(self.path).query


@dataclass
class _Route:
    body: bytes | None  # None: serve the fixture file at this path (or a status page)
    status: int
    headers: dict[str, str | None]  # a None value drops a header the server would add
    last_modified: datetime


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    newsroom: Newsroom

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (timeouts, HEAD-then-close) are routine in tests.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the servers real clients meet
    server_version = "Newsroom/1.0"
    timeout = 30  # drop idle keep-alive connections so threads do not linger
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        self._answer(send_body=True)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _answer(self, send_body: bool) -> None:
        # Drain any request body so the connection stays usable.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        room = self.server.newsroom
        started = time.monotonic()
        headers = Headers(self.headers.items())
        resp = room._respond(self.command, self.path, headers)
        # Record before replying: a test that reads the log right after its request
        # returns must already see it.
        record = RecordedRequest(self.command, self.path, headers, resp.status, started)
        room._record(record)
        pause = room._delays.get(urlsplit(self.path).path, 0.0)
        if pause:
            room._stop.wait(pause)  # a slow page; cut short when the server closes
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.status not in NO_BODY_STATUSES:
            self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if send_body and resp.status not in NO_BODY_STATUSES:
            self.wfile.write(resp.body)
        self.wfile.flush()
        record.finished = time.monotonic()


class Newsroom:
    """Serve the fixture site on 127.0.0.1 from a daemon thread until :meth:`close`."""

    def __init__(self, site_dir: Path = SITE_DIR) -> None:
        self.site_dir = site_dir.resolve()
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._overrides = 0
        self._delays: dict[str, float] = {}
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.newsroom = self
        self._closed = False
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="newsroom", daemon=True
        )
        self._thread.start()

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> Newsroom:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __repr__(self) -> str:
        return f"<Newsroom {self.base_url}>"

    # -- helpers for tests ---------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL on this server for ``path`` ("/feeds/world.rss")."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def rebase(self, text: str) -> str:
        """Replace ``{{BASE}}`` with this server's address (for expected records)."""
        return text.replace(BASE_PLACEHOLDER, self.base_url)

    def expected(self, name: str) -> dict[str, Any]:
        """The expected clean record ``fixtures/expected/<name>.json``, rebased."""
        text = (EXPECTED_DIR / f"{name}.json").read_text(encoding="utf-8")
        record: dict[str, Any] = json.loads(text)
        record["canonical_url"] = self.rebase(record["canonical_url"])
        record["url"] = self.url(record["path"])
        return record

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Requests for ``path``; without a "?" the query string is ignored."""
        exact = "?" in path
        return [r for r in self.requests if (r.path if exact else r.bare_path) == path]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def set(
        self,
        path: str,
        body: bytes | str | None = None,
        status: int = 200,
        headers: Mapping[str, str | None] | None = None,
    ) -> None:
        """Add or replace the route for ``path`` (an exact "path?query" wins over "path").

        With ``body=None`` a 200 serves the fixture file (empty if there is none) and
        any other status serves a short status page. ``headers`` are added to or
        replace the defaults; a ``None`` value removes one (e.g. ``{"ETag": None}``).
        Text bodies get ``{{BASE}}`` substituted like fixture files.
        """
        raw = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            # Each override gets a later Last-Modified than the last, so clients that only
            # send If-Modified-Since still see changed content.
            self._overrides += 1
            stamp = LAST_MODIFIED + timedelta(minutes=self._overrides)
            self._routes[path] = _Route(raw, status, dict(headers or {}), stamp)

    def unset(self, path: str) -> None:
        """Drop an override so ``path`` serves its fixture file again."""
        with self._lock:
            self._routes.pop(path, None)

    def delay(self, path: str, seconds: float) -> None:
        """Answer ``path`` (any query) only after ``seconds``: a slow page."""
        with self._lock:
            self._delays[path] = seconds

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """Answer ``path`` with a redirect; a ``to`` starting with "/" is made absolute."""
        location = self.url(to) if to.startswith("/") else self.rebase(to)
        body = (
            "<!DOCTYPE html><html><head><title>Moved</title></head>"
            f'<body><a href="{location}">Moved here</a></body></html>'
        )
        self.set(path, body, status=status, headers={"Location": location})

    def reset(self) -> None:
        """Forget all overrides and the request log (for reusing one server across tests)."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()
            self._delays.clear()

    # -- request handling (called from server threads) ----------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _respond(self, method: str, target: str, req_headers: Headers) -> _Response:
        path = unquote(urlsplit(target).path)
        with self._lock:
            route = self._routes.get(target) or self._routes.get(path)
        if route is not None:
            resp = self._from_route(path, route)
        elif method not in ("GET", "HEAD"):
            resp = _status_page(HTTPStatus.METHOD_NOT_ALLOWED)
            resp.headers["Allow"] = "GET, HEAD"
        elif path.startswith("/status/"):
            resp = _status_route(path)
        elif path == "/empty.html":
            empty = _Response(200, {"Content-Type": "text/html; charset=utf-8"})
            resp = self._validated(empty, LAST_MODIFIED)
        else:
            resp = self._from_file(path)
        if resp.status == 200 and _not_modified(req_headers, resp.headers):
            kept = {k: v for k, v in resp.headers.items() if k in VALIDATOR_HEADERS}
            return _Response(304, kept)
        return resp

    def _file_for(self, path: str) -> Path | None:
        candidate = (self.site_dir / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.site_dir):
            return None  # "/../" tricks stay inside the fixture site
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None

    def _load(self, file: Path) -> bytes:
        data = file.read_bytes()
        if file.suffix.lower() in TEXT_SUFFIXES:
            # Replace bytes, not text, so cp1252 and Shift_JIS pages stay byte-exact; the
            # ASCII placeholder always follows an ASCII quote, so it cannot be a trail byte.
            data = data.replace(BASE_PLACEHOLDER.encode(), self.base_url.encode())
        return data

    def _from_file(self, path: str) -> _Response:
        file = self._file_for(path)
        if file is None:
            return _status_page(HTTPStatus.NOT_FOUND)
        headers = {"Content-Type": _content_type(path, file)}
        return self._validated(_Response(200, headers, self._load(file)), LAST_MODIFIED)

    def _from_route(self, path: str, route: _Route) -> _Response:
        if route.body is not None:
            body = route.body.replace(BASE_PLACEHOLDER.encode(), self.base_url.encode())
            resp = _Response(route.status, {"Content-Type": _content_type(path, None)}, body)
        elif route.status == 200:
            file = self._file_for(path)
            body = self._load(file) if file is not None else b""
            resp = _Response(200, {"Content-Type": _content_type(path, file)}, body)
        else:
            resp = _status_page(route.status)
        if resp.status == 200:
            resp = self._validated(resp, route.last_modified)
        for name, value in route.headers.items():
            # Match case-insensitively so {"content-type": ...} replaces Content-Type.
            for existing in [k for k in resp.headers if k.lower() == name.lower()]:
                del resp.headers[existing]
            if value is not None:
                resp.headers[name] = self.rebase(value)
        return resp

    @staticmethod
    def _validated(resp: _Response, last_modified: datetime) -> _Response:
        resp.headers["ETag"] = '"' + hashlib.sha256(resp.body).hexdigest()[:32] + '"'
        resp.headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
        return resp


def _content_type(path: str, file: Path | None) -> str:
    if path in ROUTE_TYPES:
        return ROUTE_TYPES[path]
    suffix = (file or Path(path)).suffix.lower()
    # Bodies given to set() are most often HTML; unknown files are opaque bytes.
    fallback = "text/html; charset=utf-8" if file is None else "application/octet-stream"
    return EXTENSION_TYPES.get(suffix, fallback)


def _status_page(status: int) -> _Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown Status"
    if status in NO_BODY_STATUSES:
        return _Response(status)
    body = (
        f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{status} {phrase}</h1>"
        f"<p>The newsroom answered {status} on purpose.</p></body></html>"
    )
    return _Response(status, {"Content-Type": "text/html; charset=utf-8"}, body.encode())


def _status_route(path: str) -> _Response:
    """``/status/<code>[/anything]`` answers ``<code>``; 2xx-5xx only (1xx is not final)."""
    code = path.split("/")[2]
    if not code.isdigit() or not 200 <= int(code) <= 599:
        return _status_page(HTTPStatus.BAD_REQUEST)
    return _status_page(int(code))


def _opaque_tag(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _not_modified(req: Headers, resp_headers: Mapping[str, str]) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison) wins over If-Modified-Since."""
    etag = resp_headers.get("ETag")
    if_none_match = req.get("If-None-Match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        if etag is None:
            return False
        return "*" in tags or _opaque_tag(etag) in {_opaque_tag(t) for t in tags}
    since_raw, modified_raw = req.get("If-Modified-Since"), resp_headers.get("Last-Modified")
    if not since_raw or not modified_raw:
        return False
    try:
        since = parsedate_to_datetime(since_raw)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored, as the RFC says
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return parsedate_to_datetime(modified_raw) <= since
