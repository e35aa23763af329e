"""The archive database goes away and comes back: nothing is lost, nothing stored twice.

A private PostgreSQL server (`tests/pgserver.py`) is stopped and started under a real
`ingest daemon` and a real `ingest fetch`; an SQLite archive is locked by another writer past
the busy timeout, then refused every write by the kernel (the daemon's file-size limit set to
zero: SQLite reports a disk I/O error, as for a failing disk). The daemon must stop claiming,
say so once per try, answer /healthz 503, and carry on by itself when the database is back,
every article stored exactly once and each page requested once.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.config import FeedSettings
from ingest.entryparts import entry_key
from ingest.errors import StoreError, StoreUnavailableError
from ingest.records import FeedEntry, utcnow
from ingest.store import Store
from tests.conftest import Ingest
from tests.daemon_process import Daemon, free_port, wait_for
from tests.newsroom import Newsroom
from tests.pgserver import PostgresServer

PAGES = 36
FEED = "/outage/feed.rss"
GONE = "/outage/gone.html"  # listed among the stories, answers 404: a failure to record


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own, which its tests stop and start. Without
    PostgreSQL's programs the tests are skipped, as the shared server's are (conftest), unless
    INGEST_REQUIRE_POSTGRES is set (as CI sets it): then they fail."""
    try:
        cluster = PostgresServer()
    except RuntimeError as exc:
        if os.environ.get("INGEST_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no private PostgreSQL server: {exc}")
    yield cluster
    cluster.close()


@pytest.fixture
def private_postgres(server: PostgresServer) -> Iterator[str]:
    """An empty archive on the private server (a database of its own), the server up."""
    server.start()
    name = f"outage_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    server.start()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def page_path(n: int) -> str:
    return f"/outage/story-{n}.html"


@pytest.fixture
def slow_site(newsroom: Newsroom) -> Newsroom:
    """A feed of `PAGES` distinct articles whose pages each take a while to answer, and in
    their midst a page that is gone."""
    newsroom.set(GONE, status=404)
    newsroom.delay(GONE, 0.3)
    items = []
    for n in range(PAGES):
        paragraphs = "".join(
            f"<p>Paragraph {k} of story {n}: the harbour board met for the {n}th time this "
            f"year and heard {k + 2} residents on the ferry timetable and the budget.</p>"
            for k in range(5)
        )
        newsroom.set(
            page_path(n),
            f"<html><head><title>Story {n}</title></head><body><article>"
            f"<h1>Harbour story number {n}</h1>{paragraphs}</article></body></html>",
        )
        newsroom.delay(page_path(n), 0.3)
        items.append(
            f"<item><title>Story {n}</title><link>{{{{BASE}}}}{page_path(n)}</link>"
            f"<guid>story-{n}</guid></item>"
        )
        if n == PAGES // 3:
            items.append(f"<item><title>Gone</title><link>{{{{BASE}}}}{GONE}</link></item>")
    newsroom.set(
        FEED,
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Harbour</title>"
        f"<link>{{{{BASE}}}}/</link>{''.join(items)}</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    return newsroom


def hurry(room: Newsroom) -> None:
    """The pages answer at once from now on (the outage is over: the rest is routine)."""
    for n in range(PAGES):
        room.delay(page_path(n), 0)


def daemon_config(tmp_path: Path, room: Newsroom, database: str, port: int) -> Ingest:
    """A daemon on fast clocks with a few pages in hand, one request at a time to the
    newsroom's host, each booked in the database: an outage finds pages fetched, waiting for
    their host slot, and queued."""
    path = tmp_path / "outage.toml"
    path.write_text(
        f"""
[database]
url = "{database}"
lease = "2s"
[fetch]
allow_private_networks = true
host_delay = 0.01
concurrency = 3
per_host = 1
# A request's turn holds its host until the answer begins, at most this long: a run that
# loses its database mid-request cannot end the turn, and the next run waits it out.
timeout = 4
[schedule]
interval = "1h"
[daemon]
listen = "127.0.0.1:{port}"
tick = "0.2s"
retry_every = "0.5s"
[[feeds]]
url = "{room.url(FEED)}"
name = "Harbour"
""",
        encoding="utf-8",
    )
    return Ingest(tmp_path, path)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def start_daemon(tmp_path: Path, room: Newsroom, database: str, daemons: list[Daemon]) -> Daemon:
    """A daemon on a PostgreSQL archive (`daemon_config`), stopped after the test."""
    port = free_port()
    daemon = Daemon(daemon_config(tmp_path, room, database, port), database, port)
    daemons.append(daemon)
    return daemon


def stored(daemon: Daemon) -> int:
    rows = daemon.query("SELECT count(*) FROM articles WHERE status = 'ok'")
    return int(rows[0][0]) if rows else -1


def settled(daemon: Daemon) -> bool:
    """Every article stored, and nothing pending (the gone page's failure recorded)."""
    rows = daemon.query("SELECT count(*) FROM articles WHERE status = 'pending'")
    return stored(daemon) == PAGES and rows == [(0,)]


def health(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    status, body = daemon.get("/healthz")
    return status, json.loads(body) if body else {}


def metric(daemon: Daemon, name: str) -> float | None:
    for line in daemon.get("/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def database_lines(daemon: Daemon, since: int, until: int | None = None) -> list[str]:
    """What the daemon said of the database between two points of its log."""
    lines = daemon.logs()[since:until]
    return [line["message"] for line in lines if line["message"].startswith("database ")]


def check_told_once_per_try(messages: list[str]) -> None:
    """One line when the database went, one per failed try, one when it was back."""
    *unavailable, back = messages
    assert 1 <= len(unavailable) <= 6
    assert all(m.startswith("database unavailable, claiming nothing") for m in unavailable)
    assert back.startswith("database available again after")


def check_every_article_stored_once(daemon: Daemon, room: Newsroom) -> None:
    """Every page archived, once, with one capture, and asked for once; the gone page's
    failure recorded after one request."""
    statuses = daemon.query("SELECT status, count(*) FROM articles GROUP BY status")
    assert sorted(statuses) == [("failed", 1), ("ok", PAGES)]
    keys = [r[0] for r in daemon.query("SELECT url_key FROM articles WHERE status = 'ok'")]
    assert sorted(keys) == sorted(room.url(page_path(n)) for n in range(PAGES))
    captures = daemon.query("SELECT article_id, count(*) FROM captures GROUP BY article_id")
    assert len(captures) == PAGES and {n for _, n in captures} == {1}
    # A page whose request ran out of time while a locked SQLite file held the daemon's loop
    # is left pending and asked for again (its first answer was never read): said in the log.
    again = {
        line["url"] for line in daemon.logs() if line["message"].startswith("page left pending")
    }
    expected = [2 if room.url(page_path(n)) in again else 1 for n in range(PAGES)]
    assert [len(room.requests_for(page_path(n))) for n in range(PAGES)] == expected
    assert len(room.requests_for(GONE)) == 1
    assert daemon.query("SELECT count(*) FROM articles WHERE lease_owner IS NOT NULL") == [(0,)]


def check_quiet(daemon: Daemon) -> None:
    """No traceback, no error line: an outage is told in warnings, once per try."""
    text = daemon.log.read_text(encoding="utf-8")
    assert "Traceback" not in text
    assert all(not line.startswith("{") or '"exception"' not in line for line in text.split("\n"))
    assert [line["message"] for line in daemon.logs() if line["level"] == "error"] == []


# --- the store tells an unavailable database from a bad statement ---------------------------------


def test_a_stopped_server_is_unavailable_and_the_store_reconnects_when_it_is_back(
    server: PostgresServer, private_postgres: str
) -> None:
    store = Store.open(private_postgres)
    try:
        assert store.pending_pages() == 0
        server.stop()

        with pytest.raises(StoreUnavailableError) as stopped:
            store.pending_pages()
        with pytest.raises(StoreUnavailableError) as opening:
            Store.open(private_postgres)
        server.start()

        assert store.pending_pages() == 0  # the dropped connections were replaced
    finally:
        store.close()
    for error in (stopped.value, opening.value):
        assert str(error).startswith("database: ")
        assert "\n" not in str(error)  # libpq's hint line joined: one log line


def test_a_row_the_database_refuses_is_a_store_error_not_an_outage(postgres_url: str) -> None:
    store = Store.open(postgres_url)
    try:
        (feed,) = store.sync_feeds([FeedSettings(url="https://news.example.org/rss")])
        link = "https://news.example.org/a"
        bad = FeedEntry(entry_key(None, link, None, None), None, link, "A\x00B", None, None)

        with pytest.raises(StoreError) as refused:
            store.record_entries(feed, [bad])
    finally:
        store.close()

    assert not isinstance(refused.value, StoreUnavailableError)
    assert "NUL" in str(refused.value)
    assert "INSERT" not in str(refused.value)  # the driver's message, not the statement


def test_a_locked_sqlite_archive_is_unavailable_until_the_lock_goes(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    store = Store.open(f"sqlite:///{path}")

    def short_wait(dbapi: Any, _: Any) -> None:  # the busy timeout, shortened for this test
        dbapi.execute("PRAGMA busy_timeout=200")

    sa.event.listen(store.engine, "connect", short_wait)
    store.engine.dispose()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock

        with pytest.raises(StoreUnavailableError, match="database is locked"):
            store.renew(utcnow(), feeds=[], articles=[])
        assert store.pending_pages() == 0  # reading still works (WAL)
        other.execute("ROLLBACK")

        assert store.renew(utcnow(), feeds=[], articles=[]) == 0
    finally:
        other.close()
        store.close()


def test_a_store_told_the_database_is_unavailable_fails_at_once_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    try:
        store.unavailable = "database: connection refused"

        with pytest.raises(StoreUnavailableError, match="connection refused"):
            store.sync_feeds([FeedSettings(url="https://news.example.org/rss")])
        store.unavailable = None

        assert store.feeds() == []
        assert len(store.sync_feeds([FeedSettings(url="https://news.example.org/rss")])) == 1
    finally:
        store.close()


# --- the daemon weathers an outage ----------------------------------------------------------------


def test_the_daemon_weathers_a_postgres_outage_and_stores_every_article_once(
    tmp_path: Path,
    slow_site: Newsroom,
    server: PostgresServer,
    private_postgres: str,
    daemons: list[Daemon],
) -> None:
    daemon = start_daemon(tmp_path, slow_site, private_postgres, daemons)
    wait_for("a few articles", lambda: stored(daemon) >= 6, timeout=60)
    before = len(daemon.logs())

    server.stop()  # immediate: connections dropped mid-statement, as in a crash

    down = wait_for("/healthz to say so", lambda: (h := health(daemon))[0] == 503 and h[1])
    assert down["status"] == "database_unavailable"
    assert down["database_error"].startswith("database: ")
    assert metric(daemon, "ingest_database_up") == 0.0
    assert (metric(daemon, "ingest_database_errors_total") or 0) >= 1
    # Two lines (down, then the try after 1 s failed): 3 s, longer than the lease, which
    # the pages in hand must not lose; the try after 2 more succeeds.
    wait_for("a failed try", lambda: len(database_lines(daemon, before)) >= 2, timeout=20)
    server.start()
    hurry(slow_site)

    wait_for("every article", lambda: settled(daemon), timeout=60)
    wait_for("/healthz back to ok", lambda: health(daemon)[0] == 200)
    assert metric(daemon, "ingest_database_up") == 1.0
    assert daemon.stop()[0] == 0

    check_every_article_stored_once(daemon, slow_site)
    check_quiet(daemon)
    check_told_once_per_try(database_lines(daemon, before))
    waits = [line["retry_in"] for line in daemon.logs()[before:] if "retry_in" in line]
    assert waits[:2] == [1, 2]


def test_the_daemon_weathers_a_locked_then_failing_sqlite_archive(
    tmp_path: Path, slow_site: Newsroom, daemons: list[Daemon]
) -> None:
    archive = tmp_path / "archive.sqlite3"
    port = free_port()
    cli = daemon_config(tmp_path, slow_site, f"sqlite:///{archive}", port)
    daemon = Daemon(cli, archive, port, log_through_pipe=True)
    daemons.append(daemon)
    wait_for("a few articles", lambda: stored(daemon) >= 4, timeout=60)
    before = len(daemon.logs())

    # Another writer holds the lock past the daemon's busy timeout (10 s).
    other = sqlite3.connect(archive, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        wait_for("the lock noticed", lambda: database_lines(daemon, before), timeout=40)
        locked = wait_for("a 503", lambda: (h := health(daemon))[0] == 503 and h[1], timeout=40)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert "database is locked" in locked["database_error"]
    wait_for("/healthz back to ok", lambda: health(daemon)[0] == 200, timeout=40)
    wait_for("more articles", lambda: stored(daemon) >= 12, timeout=60)
    middle = len(daemon.logs())

    # Then the kernel refuses every write the daemon makes to a file (its size limit at 0).
    pid = daemon.process.pid
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    try:
        wait_for("the failure noticed", lambda: database_lines(daemon, middle), timeout=20)
        failing = wait_for("a 503", lambda: (h := health(daemon))[0] == 503 and h[1])
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    assert "disk" in failing["database_error"]  # "disk I/O error" (or "... disk is full")

    hurry(slow_site)
    wait_for("every article", lambda: settled(daemon), timeout=120)  # a daemon on a loaded machine
    assert health(daemon)[0] == 200
    assert daemon.stop()[0] == 0
    check_every_article_stored_once(daemon, slow_site)
    check_quiet(daemon)
    check_told_once_per_try(database_lines(daemon, before, middle))
    check_told_once_per_try(database_lines(daemon, middle))


def test_a_daemon_started_before_its_database_waits_for_it_then_archives_everything(
    tmp_path: Path,
    slow_site: Newsroom,
    server: PostgresServer,
    private_postgres: str,
    daemons: list[Daemon],
) -> None:
    server.stop()  # as a compose file may bring the daemon up first
    hurry(slow_site)
    daemon = start_daemon(tmp_path, slow_site, private_postgres, daemons)
    wait_for("two tries told", lambda: len(database_lines(daemon, 0)) >= 2, timeout=30)
    waiting = database_lines(daemon, 0)
    assert daemon.process.poll() is None  # still there, waiting
    assert all(m.startswith("database unavailable at start; next try in") for m in waiting)
    server.start()

    wait_for("every article", lambda: settled(daemon), timeout=60)
    wait_for("/healthz ok", lambda: health(daemon)[0] == 200)
    assert daemon.stop()[0] == 0
    check_every_article_stored_once(daemon, slow_site)
    check_quiet(daemon)
    waits = [line["retry_in"] for line in daemon.logs() if "retry_in" in line]
    assert waits[:2] == [1, 2]


def test_a_daemon_waiting_for_its_database_stops_cleanly_on_sigterm(
    tmp_path: Path,
    slow_site: Newsroom,
    server: PostgresServer,
    private_postgres: str,
    daemons: list[Daemon],
) -> None:
    server.stop()
    daemon = start_daemon(tmp_path, slow_site, private_postgres, daemons)
    wait_for("the first try told", lambda: database_lines(daemon, 0), timeout=30)
    status, seconds = daemon.stop()
    assert status == 0
    assert seconds < 5
    assert "stopped before the database answered" in daemon.log.read_text(encoding="utf-8")
    check_quiet(daemon)
    assert slow_site.requests_for(FEED) == []  # nothing was polled


# --- ingest fetch -------------------------------------------------------------------------------


def test_fetch_stops_with_one_line_when_the_database_goes_and_a_later_run_finishes(
    tmp_path: Path, slow_site: Newsroom, server: PostgresServer, private_postgres: str
) -> None:
    cli = daemon_config(tmp_path, slow_site, private_postgres, free_port())

    unreachable = Ingest(tmp_path, cli.config)
    unreachable.env["INGEST_DATABASE_URL"] = (
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    )
    refused = unreachable("fetch", check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert refused.stderr.startswith("ingest: error: database: cannot open")

    assert cli.config is not None
    running = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--config", str(cli.config), "fetch"],
        cwd=tmp_path,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for("pages in flight", lambda: len(slow_site.requests) >= 8, timeout=60)
    server.stop()
    _, stderr = running.communicate(timeout=60)

    assert running.returncode == 1
    assert stderr.splitlines() == [stderr.strip()]
    assert stderr.startswith("ingest: error: database: ")
    server.start()
    hurry(slow_site)
    assert cli.json("fetch", "--format", "json")["feeds"] == 1
    store = Store.open(private_postgres)
    try:
        assert store.pending_pages() == 0
        assert store.stats(utcnow() + timedelta(seconds=1))["articles"]["ok"] == PAGES
    finally:
        store.close()
