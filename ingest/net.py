"""The HTTP client: redirects, timeouts, size caps, the private-address guard, conditional GET.

Every request goes through `HttpClient.get`, which returns a `Page` or raises a `FetchError`
with the URL attached; httpx's exceptions never leave this module.

The private-address guard sits in the connection layer: the host name is resolved once, every
address it resolves to is checked, and the socket is opened to a checked address. So a name
that resolves to 127.0.0.1, or a redirect to 10.0.0.1 or to an IPv4-mapped loopback, is
refused before anything is sent, and DNS rebinding between check and connect cannot happen.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
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
from ingest.polite import Hosts, Turn, host_of
from ingest.records import Page, utcnow
from ingest.schedule import retry_after

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BACKOFF_STATUSES = frozenset({429, 503})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _allowed(address: str, networks: Iterable[Network]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return is_public_address(str(ip)) or any(ip in net for net in networks)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address only."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, networks: list[Network]) -> None:
        self._inner = inner
        self._networks = networks

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            if not _allowed(address, self._networks):
                raise BlockedError(f"{host} is the non-public address {address}", url=host)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedError("unix sockets are not fetched", url=str(args[0] if args else ""))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Inflater:
    """Undoes a Content-Encoding a bounded slice at a time, so that a small compressed body
    cannot expand past the size cap in memory (a gzip bomb costs at most the cap)."""

    def __init__(self, encoding: str, url: str) -> None:
        self._url = url
        self._may_be_raw = False  # "deflate" is sometimes sent without its zlib header
        name = encoding.strip().lower()
        if name in {"", "identity"}:
            self._z = None
        elif name in {"gzip", "x-gzip"}:
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._z = zlib.decompressobj()
            self._may_be_raw = True
        else:
            raise NetworkError(
                f"unsupported Content-Encoding {encoding!r}", url=url, reason="decoding"
            )

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` decoded bytes of ``data``; more than room-1 means over the cap."""
        if self._z is None:
            return data
        try:
            return self._z.decompress(data, room)
        except zlib.error as exc:
            if self._may_be_raw:
                self._may_be_raw = False
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.feed(data, room)
            raise NetworkError(
                f"bad content encoding: {exc}", url=self._url, reason="decoding"
            ) from exc


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
        limits = httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        )
        if transport is None:
            default = httpx.AsyncHTTPTransport(limits=limits)
            if not settings.allow_private_networks:
                networks = [
                    ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks
                ]
                # httpx has no public hook for the network layer; httpcore's pool does.
                pool = default._pool
                pool._network_backend = _GuardedBackend(pool._network_backend, networks)
            transport = default
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                settings.timeout, connect=settings.connect_timeout, read=settings.read_timeout
            ),
            limits=limits,
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
    ) -> Page:
        """GET ``url``: a `Page` for 2xx and 304, `FetchError` for everything else. A body
        over ``max_bytes`` is an error, or with ``truncate`` is cut to its first max_bytes.

        A 429 or 503 with Retry-After blocks the whole host until then (`HostBackoffError`
        for every later request to it, here or in the daemon's next runs).
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._follow(url, headers, max_bytes, truncate)

    def _check_backoff(self, url: str, current: str) -> None:
        until = self.hosts.blocked_until(host_of(current), utcnow())
        if until is not None:
            raise HostBackoffError(
                f"host asked us to wait until {until.isoformat()}", url=url, retry_at=until
            )

    async def _follow(
        self, url: str, headers: dict[str, str], max_bytes: int, truncate: bool
    ) -> Page:
        current = url
        for _ in range(self.settings.max_redirects + 1):
            if urlsplit(current).scheme not in {"http", "https"}:
                raise FetchError(f"unsupported URL scheme in {current}", url=url, reason="scheme")
            self._check_backoff(url, current)
            # The time limit starts once the host's turn has come, not while we wait for it.
            async with self.hosts.slot(current) as turn:
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        page = await self._request(url, current, headers, max_bytes, truncate, turn)
                except TimeoutError as exc:
                    raise NetworkError("timed out", url=url, reason="timeout") from exc
            location = page.headers.get("location")
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
        truncate: bool,
        turn: Turn,
    ) -> Page:
        try:
            async with self._client.stream("GET", current, headers=headers) as response:
                turn.answered()
                status = response.status_code
                if status >= 400:
                    raise self._status_error(url, current, response)
                declared = response.headers.get("content-length", "")
                encoded = response.headers.get("content-encoding", "identity") != "identity"
                if (
                    declared.isdigit()
                    and int(declared) > max_bytes
                    and not truncate
                    and not encoded
                ):
                    raise TooLargeError(f"declared {declared} bytes > {max_bytes}", url=url)
                inflater = _Inflater(response.headers.get("content-encoding", ""), url)
                body = bytearray()
                async for raw in response.aiter_raw():
                    body += inflater.feed(raw, max_bytes - len(body) + 1)
                    if len(body) > max_bytes:
                        if truncate:
                            del body[max_bytes:]
                            break
                        raise TooLargeError(f"body over {max_bytes} bytes", url=url)
                headers = {k.lower(): v for k, v in response.headers.items()}
                for name in ("content-encoding", "content-length"):  # the body is decoded
                    headers.pop(name, None)
                return Page(
                    url=url,
                    final_url=str(response.url),
                    status=status,
                    headers=headers,
                    body=bytes(body),
                    fetched_at=utcnow(),
                )
        except BlockedError as exc:
            raise BlockedError(f"refused: {exc.args[0]}", url=url) from None
        except httpx.TimeoutException as exc:
            raise NetworkError("timed out", url=url, reason="timeout") from exc
        except httpx.DecodingError as exc:
            raise NetworkError(f"bad content encoding: {exc}", url=url, reason="decoding") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", url=url) from exc

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
