"""`ingest serve` as users meet it: a real archive made by the real `ingest fetch` from the
loopback newsroom (plus one hostile article, planted as an older version or a copy could
have left it), and the real server started as a subprocess on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from ingest import cjk
from ingest.models import Article
from tests.conftest import REPO, Ingest, write_config
from tests.newsroom import Newsroom

HOSTILE_TITLE = (
    "<script>window.pwned = 'title'</script> Hostile <img src=x onerror=\"window.pwned='img'\">"
)
HOSTILE_AUTHOR = "<script>window.pwned='author'</script> Mallory"
HOSTILE_TEXT = (
    "A hostile paragraph <script>window.pwned = 'text'</script> with "
    "<img src=x onerror=\"window.pwned='onerror'\"> and <a href=\"javascript:window.pwned='a'\">"
    "a link</a>.\n\nA second paragraph about the hostile harbour."
)
HOSTILE_URL = "javascript:window.pwned='url'"
TOKEN = "correct-horse-battery-staple-42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_archive(directory: Path, room: Newsroom, database: str) -> Path:
    """An archive of every newsroom feed made by `ingest fetch`, and the hostile article;
    returns the config file that names it."""
    config = write_config(directory / "ingest.toml", room, database=database)
    tagged = 'name = "World"\ntags = ["news", "world"]\n'  # tags to filter by, on the pages
    config.write_text(config.read_text(encoding="utf-8").replace('name = "World"\n', tagged))
    Ingest(directory, config)("fetch")
    plant_hostile(database)
    return config


def plant_hostile(database: str) -> int:
    engine = sa.create_engine(database, poolclass=sa.pool.NullPool)
    if engine.dialect.name == "sqlite":  # the search index's triggers call ingest_cjk
        sa.event.listen(engine, "connect", lambda connection, _: cjk.register(connection))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        article_id = conn.execute(
            sa.insert(Article)
            .values(
                feed_id=1,
                url=HOSTILE_URL,
                canonical_url=HOSTILE_URL,
                title=HOSTILE_TITLE,
                authors=[HOSTILE_AUTHOR],
                text=HOSTILE_TEXT,
                summary=HOSTILE_TEXT,
                language="en",
                content_source="feed",
                status="ok",
                attempts=0,
                published=now,
                created_at=now,
            )
            .returning(Article.id)
        ).scalar_one()
    engine.dispose()
    return int(article_id)


class Server:
    """A running `ingest serve`, its base URL and an HTTP client for it."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.http.get(path, **kwargs)  # type: ignore[arg-type]


@contextmanager
def serve(config: Path, *, listen_host: str = "127.0.0.1", token: str = "") -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = str(REPO)
    if token:
        env["INGEST_SERVE_TOKEN"] = token
    log = config.with_name(f"serve-{port}.log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest",
                "--config",
                str(config),
                "serve",
                "--listen",
                f"{listen_host}:{port}",
            ],
            cwd=config.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                server.http.get("/static/style.css")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield server
    finally:
        server.http.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()
