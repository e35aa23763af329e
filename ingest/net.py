"""The HTTP client: redirects, timeouts, size caps, the private-address guard, conditional GET.

Every request goes through `HttpClient.get`, which returns a `Page` or raises a `FetchError`
with the URL attached; httpx's exceptions never leave this module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

from ingest.config import FetchSettings
from ingest.errors import BlockedError, FetchError, HTTPStatusError, NetworkError, TooLargeError
from ingest.models import Page, utcnow
from ingest.polite import HostLimiter

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _check_address(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private or otherwise non-public address."""
    host = urlsplit(url).hostname
    if not host:
        raise BlockedError("URL has no host", url=url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NetworkError(f"cannot resolve {host}: {exc.strerror}", url=url, reason="dns") from exc
    for info in infos:
        address = str(info[4][0])
        if not is_public_address(address):
            raise BlockedError(f"{host} resolves to non-public address {address}", url=url)


class HttpClient:
    """An async HTTP client with the limits of `FetchSettings`; use as ``async with``."""

    def __init__(
        self, settings: FetchSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._hosts = HostLimiter(settings.per_host)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            follow_redirects=False,  # followed by hand, so each hop passes the address guard
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
    ) -> Page:
        """GET ``url``: a `Page` for 2xx and 304, `FetchError` for everything else."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with self._hosts.slot(url), asyncio.timeout(self.settings.timeout):
                return await self._follow(url, headers, max_bytes)
        except TimeoutError as exc:
            raise NetworkError("timed out", url=url, reason="timeout") from exc

    async def _follow(self, url: str, headers: dict[str, str], max_bytes: int) -> Page:
        current = url
        for _ in range(self.settings.max_redirects + 1):
            if urlsplit(current).scheme not in {"http", "https"}:
                raise FetchError(f"unsupported URL scheme in {current}", url=url, reason="scheme")
            if not self.settings.allow_private_networks:
                await _check_address(current)
            page = await self._request(url, current, headers, max_bytes)
            location = page.headers.get("location")
            if page.status not in REDIRECT_STATUSES or not location:
                return page
            current = urljoin(current, location)
        raise NetworkError(
            f"more than {self.settings.max_redirects} redirects", url=url, reason="redirects"
        )

    async def _request(
        self, url: str, current: str, headers: dict[str, str], max_bytes: int
    ) -> Page:
        try:
            async with self._client.stream("GET", current, headers=headers) as response:
                status = response.status_code
                if status >= 400:
                    raise HTTPStatusError(f"HTTP {status}", url=url, status=status)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise TooLargeError(f"declared {declared} bytes > {max_bytes}", url=url)
                body = bytearray()
                # aiter_bytes yields decoded (decompressed) bytes: a gzip bomb stops here early.
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise TooLargeError(f"body over {max_bytes} bytes", url=url)
                return Page(
                    url=url,
                    final_url=str(response.url),
                    status=status,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=bytes(body),
                    fetched_at=utcnow(),
                )
        except httpx.TimeoutException as exc:
            raise NetworkError("timed out", url=url, reason="timeout") from exc
        except httpx.DecodingError as exc:
            raise NetworkError(f"bad content encoding: {exc}", url=url, reason="decoding") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}", url=url) from exc
