"""The daemon's little HTTP server: ``/healthz`` (its health as JSON) and ``/metrics``
(Prometheus), on ``[daemon] listen``; GET and HEAD, one request per connection.

Several daemons on one machine each need an address of their own: one that is taken is a
config error at start, saying how to choose another.
"""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.errors import ConfigError

Health = Callable[[], tuple[bool, dict[str, Any]]]  # (healthy, what /healthz says)


async def serve(listen: str, health: Health) -> asyncio.Server:
    """Serve on ``listen`` (``host:port``, ``[v6]:port``); `ConfigError` if it cannot."""
    host, _, port = listen.rpartition(":")
    try:
        return await asyncio.start_server(partial(_answer, health), host.strip("[]"), int(port))
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why += " (another ingest daemon on this machine?)"
        other = f"{host}:{int(port) + 1 if int(port) < 65535 else 9464}"
        raise ConfigError(
            f"daemon.listen: cannot serve /healthz and /metrics on {listen}: {why}; give "
            f'each daemon its own address ([daemon] listen = "{other}" in the config, or '
            f'INGEST_DAEMON_LISTEN={other}), or listen = "" to serve neither'
        ) from exc


async def _answer(
    health: Health, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if method not in {"GET", "HEAD"}:
            status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
        elif path.split("?")[0] == "/healthz":
            healthy, data = health()
            status = "200 OK" if healthy else "503 Service Unavailable"
            kind, body = "application/json", json.dumps(data).encode() + b"\n"
        elif path.split("?")[0] == "/metrics":
            status, kind, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        else:
            status, kind, body = "404 Not Found", "text/plain", b"/healthz or /metrics\n"
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + (body if method != "HEAD" else b""))
        await writer.drain()
    except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
        pass  # a client that does not speak HTTP gets nothing
    finally:
        writer.close()
