"""Running `ingest serve`: the listen address and token checked, the archive opened
read-only, the application served by uvicorn until SIGTERM or Ctrl-C."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.store import Store
from ingest.web.app import create_app
from ingest.web.auth import is_loopback


@dataclass(frozen=True, slots=True)
class Served:
    app: FastAPI
    store: Store
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def prepare(settings: Settings) -> Served:
    """The application for ``settings``, its archive open read-only. An address other
    than loopback without a token is refused: the archive would be open to the network."""
    host, _, port = settings.serve.listen.rpartition(":")
    if not is_loopback(host) and not settings.serve.token:
        raise ConfigError(
            f"{settings.source}: serve.listen {settings.serve.listen} is reachable from the "
            "network: set serve.token (or INGEST_SERVE_TOKEN) to serve it there"
        )
    store = Store.open(settings.database.url, create=False, read_only=True)
    app = create_app(store, token=settings.serve.token)
    return Served(app, store, host.strip("[]"), int(port))


def run(served: Served) -> None:
    import uvicorn

    try:
        uvicorn.run(
            served.app,
            host=served.host,
            port=served.port,
            log_level="warning",
            server_header=False,
            access_log=False,
        )
    finally:
        served.store.close()
