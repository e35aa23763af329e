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
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
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
from ingest.inflate import Inflater, encoded_cap
from ingest.polite import Hosts, Turn, host_of
from ingest.records import Page, utcnow
from ingest.schedule import retry_after

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BACKOFF_STATUSES = frozenset({429, 503})
# Bodies past SMALL_BODY bytes are read on to their cap BIG_BODIES at a time: a run's worth of
# huge answers (or a hostile web's) cannot all sit in memory at once.
SMALL_BODY = 1 << 20
BIG_BODIES = 1
MAX_POOLS = 256  # hosts whose connections are kept between requests
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


class _Counted(httpx.AsyncByteStream):
    """A response's body that calls ``done`` once, when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self._inner = inner
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._done is not None:
                done, self._done = self._done, None
                done()


class _HostPools(httpx.AsyncBaseTransport):
    """httpx's transport, a connection pool per host, and at most ``concurrency`` requests in
    flight in all.

    httpcore's pool looks at every connection it holds (and polls each idle one's socket) each
    time a request starts or ends: with one pool for all hosts, that was most of the CPU a
    request took on 48 hosts. A pool per host keeps it to the host's own connection or two.
    Pools of hosts not asked lately are closed (`MAX_POOLS` kept).
    """

    def __init__(self, *, concurrency: int, per_host: int, guard: list[Network] | None) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._per_host = max(per_host, 1)
        self._guard = guard
        self._ssl = httpx.create_ssl_context()  # one for every pool: each costs 30 ms to load
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = (
            OrderedDict()
        )
        self._busy: Counter[tuple[bytes, bytes, int | None]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        await self._slots.acquire()
        self._busy[key] += 1
        try:
            response = await (await self._pool(key)).handle_async_request(request)
        except BaseException:
            self._release(key)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Counted(response.stream, lambda: self._release(key))
        return response

    async def _pool(self, key: tuple[bytes, bytes, int | None]) -> httpx.AsyncHTTPTransport:
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        limits = httpx.Limits(max_connections=self._per_host, max_keepalive_connections=1)
        pool = self._pools[key] = httpx.AsyncHTTPTransport(verify=self._ssl, limits=limits)
        if self._guard is not None:
            # httpx has no public hook for the network layer; httpcore's pool does.
            inner = pool._pool
            inner._network_backend = _GuardedBackend(inner._network_backend, self._guard)
        idle = [k for k in self._pools if not self._busy[k] and k != key]
        for old in idle[: max(len(self._pools) - MAX_POOLS, 0)]:
            del self._busy[old]
            await self._pools.pop(old).aclose()
        return pool

    def _release(self, key: tuple[bytes, bytes, int | None]) -> None:
        self._busy[key] -= 1
        self._slots.release()

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


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
            transport = _HostPools(
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
    ) -> Page:
        """GET ``url``: a `Page` for 2xx and 304, `FetchError` for everything else. A body
        over ``max_bytes`` is an error, or with ``truncate`` is cut to its first max_bytes.
        Without ``decode`` the body is kept in its Content-Encoding (`Page.encoding`: pages
        travel compressed to the extraction workers, which inflate them under the same cap),
        and only what could not inflate to within ``max_bytes`` is refused here.

        A 429 or 503 with Retry-After blocks the whole host until then (`HostBackoffError`
        for every later request to it, here or in the daemon's next runs).
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._follow(url, headers, max_bytes, truncate=truncate, decode=decode)

    def _check_backoff(self, url: str, current: str) -> None:
        until = self.hosts.blocked_until(host_of(current), utcnow())
        if until is not None:
            raise HostBackoffError(
                f"host asked us to wait until {until.isoformat()}", url=url, retry_at=until
            )

    async def _follow(
        self, url: str, headers: dict[str, str], max_bytes: int, *, truncate: bool, decode: bool
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
                        page = await self._request(
                            url, current, headers, max_bytes, turn, truncate=truncate, decode=decode
                        )
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
        turn: Turn,
        *,
        truncate: bool,
        decode: bool,
    ) -> Page:
        try:
            async with self._client.stream("GET", current, headers=headers) as response:
                turn.answered()
                status = response.status_code
                if status >= 400:
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
                )
        except BlockedError as exc:
            raise BlockedError(f"refused: {exc.args[0]}", url=url) from None
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
                inflater.inflate_into(body, raw, cap)
                if len(body) > cap:
                    if truncate:
                        del body[cap:]
                        break
                    raise TooLargeError(f"body over {max_bytes} bytes", url=url)
                if not big and len(body) > SMALL_BODY:
                    await self._big_bodies.acquire()
                    big = True
            return bytes(body)
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
