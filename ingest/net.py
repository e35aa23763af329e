"""The HTTP client: redirects, timeouts, size caps, the private-address guard, conditional GET.

Every request goes through `HttpClient.get`, which returns a `Page` or raises a `FetchError`
with the URL attached; aiohttp's exceptions never leave this module. (aiohttp, not httpx: a
page costs about a third of the CPU, measured in bench.throughput.)

The private-address guard sits in the connection layer: the host name is resolved once, every
address it resolves to is checked, and the socket is opened to a checked address (an IP
literal in a URL is judged there too). So a name that resolves to 127.0.0.1, or a redirect to
10.0.0.1 or to an IPv4-mapped loopback, is refused before anything is sent, and DNS rebinding
between check and connect cannot happen.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import AddrInfoType

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
from ingest.polite import Hosts, host_of
from ingest.records import Page, utcnow
from ingest.schedule import retry_after

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Memory: any body may grow to SMALL_BODY bytes; past that, a body waits for one of BIG_BODIES
# turns (its server held back meanwhile by TCP) before it reads on to its cap. With the
# defaults, reads hold at most 32 x 1 MiB + 20 MB (a feed at its cap) at once, not 32 x 20 MB.
# (bench.hostile_memory: the daemon's peak went from 169 to 152 MB with two turns, to 128-131
# with one.)
SMALL_BODY = 1 << 20
BIG_BODIES = 1
BACKOFF_STATUSES = frozenset({429, 503})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _spelled(address: str) -> str:
    """An address as people write it: an IPv4-mapped one with its IPv4 dotted."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def _allowed(address: str, networks: Iterable[Network]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return is_public_address(str(ip)) or any(ip in net for net in networks)


class _GuardedResolver(AbstractResolver):
    """Resolves a host name, and refuses it if any address it resolves to is not allowed."""

    def __init__(self, networks: list[Network]) -> None:
        self._networks = networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(exc.errno, f"cannot resolve {host}: {exc.strerror}") from exc
        results: list[ResolveResult] = []
        for found, _, proto, _, address in infos:
            if not _allowed(str(address[0]), self._networks):
                raise BlockedError(f"{host} is the non-public address {address[0]}", url=host)
            results.append(
                {
                    "hostname": host,
                    "host": str(address[0]),
                    "port": int(address[1]),
                    "family": found,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        pass


def _guarded_socket(networks: list[Network]) -> Callable[[AddrInfoType], socket.socket]:
    """Opens the socket of one connection attempt, to an allowed address only: IP literals in
    URLs are not resolved, so this is where they are judged."""

    def open_socket(info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, address = info
        if not _allowed(str(address[0]), networks):
            spelled = _spelled(str(address[0]))
            raise BlockedError(f"{spelled} is a non-public address", url=spelled)
        return socket.socket(family, kind, proto)

    return open_socket


class HttpClient:
    """An async HTTP client with the limits of `FetchSettings`; use as ``async with``."""

    def __init__(self, settings: FetchSettings, *, hosts: Hosts | None = None) -> None:
        self.settings = settings
        self.hosts = hosts or Hosts(per_host=settings.per_host, delay=settings.host_delay)
        self._session: aiohttp.ClientSession | None = None
        self._big_bodies = asyncio.Semaphore(BIG_BODIES)

    async def __aenter__(self) -> HttpClient:
        settings = self.settings
        guard: dict[str, Any] = {}
        if not settings.allow_private_networks:
            networks = [ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks]
            guard = {
                "resolver": _GuardedResolver(networks),
                "socket_factory": _guarded_socket(networks),
            }
        # Made here: aiohttp binds its connector to the running event loop.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.concurrency, **guard),
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            # Bodies are inflated here or in the extraction workers, a bounded slice at a time.
            auto_decompress=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        Without ``decode`` the body is kept in its Content-Encoding (`Page.encoding`), and
        only what it could not inflate to within ``max_bytes`` is refused here.

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
            async with self.hosts.slot(current):
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        page = await self._request(
                            url, current, headers, max_bytes, truncate, decode
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
        truncate: bool,
        decode: bool,
    ) -> Page:
        if self._session is None:
            raise RuntimeError("HttpClient is used as `async with HttpClient(...) as client`")
        try:
            async with self._session.get(
                current, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
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
                if not keep:
                    encoding = ""
                headers = {
                    k.lower(): ", ".join(response.headers.getall(k)) for k in response.headers
                }
                for name in ("content-encoding", "content-length"):  # said by `encoding`
                    headers.pop(name, None)
                return Page(
                    url=url,
                    final_url=current,  # as we asked for it (aiohttp re-spells some URLs)
                    status=status,
                    headers=headers,
                    body=body,
                    fetched_at=utcnow(),
                    encoding=encoding,
                )
        except BlockedError as exc:
            raise BlockedError(f"refused: {exc.args[0]}", url=url) from None
        except TimeoutError as exc:  # aiohttp's connect and read timeouts
            raise NetworkError("timed out", url=url, reason="timeout") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", url=url) from exc
        except ValueError as exc:  # a URL aiohttp cannot send
            raise NetworkError(f"bad URL: {exc}", url=url) from exc

    async def _read(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        inflater: Inflater,
        cap: int,
        max_bytes: int,
        truncate: bool,
    ) -> bytes:
        body = bytearray()
        big = False
        try:
            async for raw in response.content.iter_any():
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

    def _status_error(
        self, url: str, current: str, response: aiohttp.ClientResponse
    ) -> HTTPStatusError:
        status = response.status
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
