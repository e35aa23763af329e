"""The connection layer under httpx: a pool per host, sockets on asyncio, the address guard.

`HostPools` is the transport `ingest.net.HttpClient` hands httpx: a connection pool per host
(httpcore's pool examines every connection it holds each time a request starts or ends: one
pool for all hosts made that most of a request's CPU), at most ``concurrency`` requests in
flight in all, and connections made by `StreamBackend`, on asyncio's own streams. Those pause
reading when a response's unread data passes `READ_LIMIT`, so a body we are not reading yet
(waiting for its turn to grow past `ingest.net.SMALL_BODY`) stays in the server's socket,
not in our memory; they also cost a tenth less CPU a request than httpcore's default (anyio).

The private-address guard sits here too: the host name is resolved once, every address it
resolves to is checked, and the socket is opened to a checked address. So a name that resolves
to 127.0.0.1, or a redirect to 10.0.0.1 or to an IPv4-mapped loopback, is refused before
anything is sent, and DNS rebinding between check and connect cannot happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpcore
import httpx

from ingest.errors import BlockedError

MAX_POOLS = 256  # hosts whose connections are kept between requests
READ_LIMIT = 64 << 10  # a connection buffers up to twice this (and one read) before pausing
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EXTRA = {"client_addr": "sockname", "server_addr": "peername", "ssl_object": "ssl_object"}


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


class GuardedBackend(httpcore.AsyncNetworkBackend):
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


class _Stream(httpcore.AsyncNetworkStream):
    """A connection as asyncio streams; httpcore's errors out, as its own backends raise."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("timed out reading") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("timed out writing") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection the server closed (or wrote on)
            return self._reader.at_eof() or self._reader.exception() is not None
        name = _EXTRA.get(info, info)
        return self._writer.get_extra_info(name)


class StreamBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio streams, whose reading pauses past `READ_LIMIT`
    (httpcore's default, anyio, buffers whatever a server sends)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    limit=READ_LIMIT,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


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


class HostPools(httpx.AsyncBaseTransport):
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
        # httpx has no public hook for the network layer; httpcore's pool does.
        backend: httpcore.AsyncNetworkBackend = StreamBackend()
        if self._guard is not None:
            backend = GuardedBackend(backend, self._guard)
        pool._pool._network_backend = backend
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
