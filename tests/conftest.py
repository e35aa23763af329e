"""Shared fixtures: the loopback newsroom, a config file for it, and the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.newsroom import Newsroom

REPO = Path(__file__).resolve().parents[1]

# A shell that starts the suite in the background (`pytest &`, a CI runner) ignores SIGINT, and
# an ignored signal stays ignored in every process started from here: the Ctrl-C tests would
# send it to commands that never see it. A handler of our own is reset to the default on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Every feed of the fixture newsroom, by the name the tests give it.
FEEDS = {
    "World": "/feeds/world.rss",
    "Tech": "/feeds/tech.atom",
    "Wire": "/feeds/wire.rdf",
    "Notices": "/feeds/nolink.rss",
    "Broken": "/feeds/malformed.rss",
    "Homepage": "/feeds/not-a-feed.html",
}


@pytest.fixture
def newsroom() -> Iterator[Newsroom]:
    with Newsroom() as room:
        yield room


def write_config(
    path: Path,
    room: Newsroom,
    feeds: Sequence[str] = tuple(FEEDS),
    *,
    database: Path | str,
    private: bool = True,
    extra: str = "",
) -> Path:
    """A config file in the documented form for ``feeds`` (names of `FEEDS`); ``database``
    is an SQLite file or a database URL."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    lines = [
        "[database]",
        f'url = "{url}"',
        "[fetch]",
        f"allow_private_networks = {'true' if private else 'false'}",
        "host_delay = 0  # one loopback host serves every page",
        extra,
    ]
    for name in feeds:
        lines += ["[[feeds]]", f'url = "{room.url(FEEDS[name])}"', f'name = "{name}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Ingest:
    """Runs the real `ingest` CLI in a subprocess, as a user would."""

    def __init__(self, cwd: Path, config: Path | None = None) -> None:
        self.cwd = cwd
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        self.env["PYTHONPATH"] = str(REPO)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ingest"]
        if self.config is not None:
            command += ["--config", str(self.config)]
        result = subprocess.run(
            [*command, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ingest {' '.join(args)} exited {result.returncode}\n{result.stderr}"
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def jsonl(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self(*args).stdout.splitlines() if line]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return tmp_path / "archive.sqlite3"


POSTGRES = os.environ.get(
    "INGEST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL for a PostgreSQL schema of its own, dropped afterwards. Without a reachable
    server the test is skipped, unless INGEST_REQUIRE_POSTGRES is set (as CI sets it): then
    it fails."""
    import uuid

    import sqlalchemy as sa

    schema = f"ingest_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("INGEST_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL server at {POSTGRES}: {exc.orig}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty archive database: an SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.sqlite3'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL archive (a schema of its own), for what only PostgreSQL does."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def ingest(tmp_path: Path, newsroom: Newsroom, archive: Path) -> Ingest:
    """The CLI with a config covering every fixture feed."""
    config = write_config(tmp_path / "ingest.toml", newsroom, database=archive)
    return Ingest(tmp_path, config)
