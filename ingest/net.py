"""The HTTP client: redirects, timeouts, size caps, conditional GET, turns on each host.

Every request goes through `HttpClient.get`, which returns a `Page` or raises a `FetchError`
with the URL attached; httpx's exceptions never leave this module. The connections underneath,
and the private-address guard, are `ingest.transport`'s.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from types import TracebackType
from urllib.parse import urljoin

import httpx

from ingest.config import FetchSettings
from ingest.errors import (
    BlockedError,
    FetchError,
    HostBackoffError,
    HTTPStatusError,
    NetworkError,
    TooLargeError,
)
from ingest.inflate import Inflater, encoded_cap
from ingest.polite import Hosts, Turn, check_url, host_of
from ingest.records import Page, utcnow
from ingest.schedule import retry_after
from ingest.transport import HostPools

# What each kind of document is asked for as.
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.9, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/x-gzip;q=0.8, */*;q=0.1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BACKOFF_STATUSES = frozenset({429, 503})
# Bodies past SMALL_BODY bytes are read on to their cap BIG_BODIES at a time: a run's worth of
# huge answers (or a hostile web's) cannot all sit in memory at once.
SMALL_BODY = 256 << 10
BIG_BODIES = 1


class HttpClient:
    """An async HTTP client with the limits of `FetchSettings`; use as ``async with``."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        hosts: Hosts | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        # A request's turn holds its host from the other workers at most as long as the
        # request may last (then a crashed worker's hold runs out).
        self.hosts = hosts or Hosts(
            per_host=settings.per_host,
            delay=settings.host_delay,
            hold=settings.timeout + settings.connect_timeout,
        )
        if transport is None:
            guard = None
            if not settings.allow_private_networks:
                guard = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
            transport = HostPools(
                concurrency=settings.concurrency, per_host=settings.per_host, guard=guard
            )
        self._big_bodies = asyncio.Semaphore(BIG_BODIES)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                settings.timeout, connect=settings.connect_timeout, read=settings.read_timeout
            ),
            follow_redirects=False,  # followed by hand: each hop is counted and re-checked
            transport=transport,
        )

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        accept: str = "*/*",
        etag: str | None = None,
        last_modified: str | None = None,
        truncate: bool = False,
        decode: bool = True,
        allowed: Callable[[str], Awaitable[None]] | None = None,
    ) -> Page:
        """GET ``url``: a `Page` for 2xx and 304, `FetchError` for everything else. A body
        over ``max_bytes`` is an error, or with ``truncate`` is cut to its first max_bytes.
        Without ``decode`` the body is kept in its Content-Encoding (`Page.encoding`: pages
        travel compressed to the extraction workers, which inflate them under the same cap),
        and only what could not inflate to within ``max_bytes`` is refused here.

        A 429 or 503 with Retry-After blocks the whole host until then (`HostBackoffError`
        for every later request to it, here or in the daemon's next runs).

        ``allowed`` (robots.txt's check, for pages) is awaited for every URL a redirect leads
        to, before it is requested, and raises to refuse it.
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._follow(
            url, headers, max_bytes, truncate=truncate, decode=decode, allowed=allowed
        )

    def _check_backoff(self, url: str, current: str) -> None:
        until = self.hosts.blocked_until(host_of(current), utcnow())
        if until is not None:
            raise HostBackoffError(
                f"host asked us to wait until {until.isoformat()}", url=url, retry_at=until
            )

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        max_bytes: int,
        *,
        truncate: bool,
        decode: bool,
        allowed: Callable[[str], Awaitable[None]] | None,
    ) -> Page:
        current = url
        for hop in range(self.settings.max_redirects + 1):
            check_url(url, current)
            if hop and allowed is not None:  # a redirect into a disallowed path is not taken
                try:
                    await allowed(current)
                except FetchError as exc:
                    # The page's failure, as every error here: its URL, and where it led.
                    exc.args = (f"{exc.args[0]}: redirected to {current}",)
                    exc.url = url
                    raise
            self._check_backoff(url, current)
            # The time limit starts once the host's turn has come, not while we wait for it.
            async with self.hosts.slot(current) as turn:
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        page = await self._request(
                            url, current, headers, max_bytes, turn, truncate=truncate, decode=decode
                        )
                except TimeoutError as exc:
                    raise NetworkError("timed out", url=url, reason="timeout") from exc
            location = page.headers.get("location", "").strip()
            if page.status not in REDIRECT_STATUSES or not location:
                return page
            current = urljoin(current, location)
        raise NetworkError(
            f"more than {self.settings.max_redirects} redirects", url=url, reason="redirects"
        )

    async def _request(
        self,
        url: str,
        current: str,
        headers: dict[str, str],
        max_bytes: int,
        turn: Turn,
        *,
        truncate: bool,
        decode: bool,
    ) -> Page:
        try:
            async with self._client.stream("GET", current, headers=headers) as response:
                turn.answered()
                status = response.status_code
                if not _is_answer(status, response.headers, conditional=_conditional(headers)):
                    raise self._status_error(url, current, response)
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                encoded = encoding not in {"", "identity"}
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and not truncate:
                    # A compressed body may be larger than its content by a few bytes at most.
                    limit = encoded_cap(max_bytes) if encoded else max_bytes
                    if int(declared) > limit:
                        raise TooLargeError(f"declared {declared} bytes > {max_bytes}", url=url)
                keep = encoded and not decode  # inflated by the extraction worker
                inflater = Inflater("identity" if keep else encoding, url)
                cap = encoded_cap(max_bytes) if keep else max_bytes
                body = await self._read(response, url, inflater, cap, max_bytes, truncate)
                headers = {k.lower(): v for k, v in response.headers.items()}
                for name in ("content-encoding", "content-length"):  # said by `encoding`
                    headers.pop(name, None)
                return Page(
                    url=url,
                    final_url=str(response.url),
                    status=status,
                    headers=headers,
                    body=body,
                    fetched_at=utcnow(),
                    encoding=encoding if keep else "",
                    request_headers=_as_sent(response.request.headers),
                )
        except BlockedError as exc:
            raise BlockedError(f"refused: {exc.args[0]}", url=url) from None
        except httpx.InvalidURL as exc:
            # httpx builds the next request of every redirect, even unfollowed: a Location
            # it cannot parse (data:, javascript:) raises here, outside its HTTPError.
            raise FetchError(
                f"redirect to an unusable URL: {exc}", url=url, reason="bad_url"
            ) from None
        except httpx.TimeoutException as exc:
            raise NetworkError("timed out", url=url, reason="timeout") from exc
        except httpx.DecodingError as exc:
            raise NetworkError(f"bad content encoding: {exc}", url=url, reason="decoding") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", url=url) from exc

    async def _read(
        self,
        response: httpx.Response,
        url: str,
        inflater: Inflater,
        cap: int,
        max_bytes: int,
        truncate: bool,
    ) -> bytes:
        body = bytearray()
        big = False
        try:
            async for raw in response.aiter_raw():
                # A body may grow to SMALL_BODY bytes at once; past that (a gzip bomb too,
                # whose one chunk inflates to the cap) it waits for one of the few big turns.
                small = cap > SMALL_BODY and not big
                inflater.inflate_into(body, raw, SMALL_BODY if small else cap)
                if small and len(body) > SMALL_BODY:
                    await self._big_bodies.acquire()
                    big = True
                    inflater.inflate_into(body, b"", cap)
                if len(body) > cap:
                    if truncate:
                        del body[cap:]
                        break
                    raise TooLargeError(f"body over {max_bytes} bytes", url=url)
            return bytes(body)
        except BaseException:
            # The error's traceback holds this frame: it must not hold up to a cap's bytes
            # for as long as the error is kept (a failure is logged, recorded, retried).
            body.clear()
            raise
        finally:
            if big:
                self._big_bodies.release()

    def _status_error(self, url: str, current: str, response: httpx.Response) -> HTTPStatusError:
        status = response.status_code
        error = HTTPStatusError(f"HTTP {status}", url=url, status=status)
        if status in BACKOFF_STATUSES:
            until = retry_after(
                response.headers.get("retry-after"),
                utcnow(),
                cap=self.settings.max_retry_after,
            )
            if until is not None:
                self.hosts.block(host_of(current), until)
                error.retry_at = until
        return error


def _conditional(headers: dict[str, str]) -> bool:
    return "If-None-Match" in headers or "If-Modified-Since" in headers


def _is_answer(status: int, headers: httpx.Headers, *, conditional: bool) -> bool:
    """Whether a response is a page (or a redirect to follow): a 2xx but 206 (we never ask
    for a range: its body is a piece), a 304 to a conditional request, a redirect with a
    Location. A 300, 305 or 399 with a body, a 304 to a plain request, were stored as if
    they were the page."""
    if status in REDIRECT_STATUSES:
        return bool(headers.get("location", "").strip())
    return (200 <= status < 300 and status != 206) or (status == 304 and conditional)


def _as_sent(headers: httpx.Headers) -> dict[str, str]:
    """Request headers with their names as they went on the wire (httpx's mapping lowers
    them); a name sent twice keeps its values joined, as HTTP allows."""
    sent: dict[str, str] = {}
    for raw_name, raw_value in headers.raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        sent[name] = f"{sent[name]}, {value}" if name in sent else value
    return sent
