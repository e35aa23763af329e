"""`ingest db copy` end to end: the real CLI copies a fetched archive between SQLite files and
PostgreSQL schemas, resumes an interrupted copy, and refuses what it must."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest import cjk
from ingest.config import FeedSettings
from ingest.dbcopy import TABLES
from ingest.entryparts import entry_key
from ingest.records import FeedEntry
from ingest.search import Filters
from ingest.store import Store
from ingest.stories import BANDS
from tests.conftest import Ingest, write_config
from tests.newsroom import Newsroom

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
COUNTS = {
    "feeds": 6,
    "hosts": 1,
    "articles": 15,
    "removed_articles": 0,
    "skipped_urls": 1,
    "capture_bodies": 7,
    "captures": 7,
    "entries": 17,
    "versions": 2,
    "story_fingerprints": 7,  # the articles long enough to tell (story_bands: made from them)
}


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One archive for the whole module: every fixture feed fetched once, and a host that
    asked to be left alone, so that every table holds rows."""
    folder = tmp_path_factory.mktemp("fetched")
    path = folder / "archive.sqlite3"
    with Newsroom() as room:
        config = write_config(folder / "ingest.toml", room, database=path)
        Ingest(folder, config)("fetch", "--workers", "1")
    store = Store.open(f"sqlite:///{path}")
    store.block_host("slow.example.org", datetime(2030, 1, 1, tzinfo=UTC), "http_429")
    store.record_entries(store.feeds()[0], [], skipped=["0" * 64])  # a sitemap's undated URL
    first = store.article("1")[0]  # its page changed: two versions
    assert store.keep_version(1, first.title, f"{first.text}\n\nCorrection: a date was wrong.")
    store.close()
    assert counts(f"sqlite:///{path}") == COUNTS
    return path


@pytest.fixture
def source(fetched: Path, tmp_path: Path) -> str:
    """A fresh copy of the fetched archive, for this test to copy from."""
    path = tmp_path / "source.sqlite3"
    original, clone = sqlite3.connect(fetched), sqlite3.connect(path)
    original.backup(clone)
    original.close()
    clone.close()
    return f"sqlite:///{path}"


@pytest.fixture
def cli(tmp_path: Path) -> Ingest:
    return Ingest(tmp_path)


def copy(cli: Ingest, source: str, to: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("--database", source, "db", "copy", "--to", to, *args, check=False)


def copy_json(cli: Ingest, source: str, to: str, *args: str) -> dict[str, dict[str, Any]]:
    """Copy, expecting success; each table's counts."""
    result = copy(cli, source, to, "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts_match"], report
    return {t["table"]: t for t in report["tables"]}


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def scalar(url: str, statement: str) -> Any:
    db = engine(url)
    try:
        with db.connect() as conn:
            return conn.exec_driver_sql(statement).scalar()
    finally:
        db.dispose()


def counts(url: str) -> dict[str, int]:
    db = engine(url)
    try:
        with db.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in TABLES
            }
    finally:
        db.dispose()


# Numbered by each database's own triggers as rows arrive (migration 0008): a copy starts a
# change history of its own, so these are not compared.
PER_DATABASE = {"change_seq"}


def copied_columns(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if c.name not in PER_DATABASE]


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row of every table, read through the models' types."""
    db = engine(url)
    try:
        with db.connect() as conn:
            return {
                t.name: [
                    tuple(r)
                    for r in conn.execute(
                        sa.select(*copied_columns(t)).order_by(*t.primary_key.columns)
                    )
                ]
                for t in TABLES
            }
    finally:
        db.dispose()


def bands(url: str) -> list[tuple[Any, ...]]:
    """The story band keys, which the copy makes from the fingerprints it copies."""
    db = engine(url)
    try:
        with db.connect() as conn:
            query = "SELECT band, article_id FROM story_bands ORDER BY band, article_id"
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        db.dispose()


def raw_sqlite(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value as SQLite holds it (text of times and JSON, bytes of bodies)."""
    db = sqlite3.connect(sa.make_url(url).database or "")
    try:
        return {
            t.name: db.execute(
                f"SELECT {', '.join(c.name for c in copied_columns(t))} FROM {t.name} ORDER BY 1"
            ).fetchall()
            for t in TABLES
        }
    finally:
        db.close()


def store_search(url: str, query: str) -> list[int]:
    store = Store.open(url, create=False)
    try:
        return sorted(hit.article.id or 0 for hit in store.search(query, Filters()))
    finally:
        store.close()


def search_ids(cli: Ingest, url: str, query: str) -> list[int]:
    hits = cli.json("--database", url, "search", query, "--format", "json")
    return sorted(h["id"] for h in hits)


@POSTGRES_ONLY
def test_sqlite_to_postgres_and_back_keeps_every_row(
    cli: Ingest, source: str, database_url: str, tmp_path: Path
) -> None:
    before = raw_sqlite(source)
    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"

    there = copy_json(cli, source, database_url)
    returned = copy_json(cli, database_url, str(tmp_path / "back.sqlite3"))
    again = copy_json(cli, source, database_url)

    assert {t: c["copied"] for t, c in there.items()} == COUNTS
    assert {t: c["copied"] for t, c in returned.items()} == COUNTS
    assert {t: c["copied"] for t, c in again.items()} == dict.fromkeys(COUNTS, 0)
    assert rows(database_url) == rows(source)
    assert bands(database_url) == bands(source) == bands(back)  # made again, the same
    assert len(bands(source)) == 7 * BANDS
    assert raw_sqlite(back) == before  # byte for byte: times, JSON text, compressed bodies
    assert raw_sqlite(source) == before  # the source is only read
    with engine(database_url).connect() as conn:  # every article indexed by the trigger
        assert conn.exec_driver_sql("SELECT count(search) FROM articles").scalar() == 15


def test_search_works_on_the_destination(cli: Ingest, source: str, database_url: str) -> None:
    queries = ("telescope", "Danube ports", "Volunteers")
    expected = [store_search(source, query) for query in queries]
    copy_json(cli, source, database_url)

    assert all(expected)
    assert [store_search(database_url, query) for query in queries] == expected
    assert search_ids(cli, database_url, "telescope") == expected[0]  # and through the CLI


def test_destination_takes_new_rows_after_the_copy(
    cli: Ingest, source: str, database_url: str
) -> None:
    copy_json(cli, source, database_url)

    # PostgreSQL: the id sequences were moved past the copied ids, or these inserts collide.
    store = Store.open(database_url, create=False)
    try:
        (feed,) = store.sync_feeds([FeedSettings(url="https://new.example.org/rss", name="New")])
        link = "https://new.example.org/story"
        item = FeedEntry(entry_key(None, link, "New", None), None, link, "New", None, "Fresh.")
        recorded = store.record_entries(feed, [item])
    finally:
        store.close()

    assert feed.id == COUNTS["feeds"] + 1
    assert [job.article_id for job in recorded.jobs] == [COUNTS["articles"] + 1]
    assert counts(database_url)["entries"] == COUNTS["entries"] + 1


@POSTGRES_ONLY
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_a_copy_stopped_mid_table_resumes_where_it_stopped(
    cli: Ingest, source: str, database_url: str, stop: signal.Signals
) -> None:
    Store.open(database_url).close()  # an empty archive, so the blocker below has tables
    db = engine(database_url)
    blocker = db.connect()
    # An uncommitted article 9 in another transaction: the copy's insert of row 9 waits for
    # it, so the copy is caught exactly mid-table, articles 1-8 committed (batches of two).
    blocker.exec_driver_sql(
        "INSERT INTO feeds (id, url, error_count, active) VALUES (999, 'https://x.invalid', 0, 't')"
    )
    blocker.exec_driver_sql(
        "INSERT INTO articles (id, feed_id, authors, content_source, status, attempts) "
        "VALUES (9, 999, '[]', 'feed', 'ok', 0)"
    )
    me = blocker.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    arguments = ["--database", source, "db", "copy", "--to", database_url, "--batch-size", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", *arguments],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE %d = ANY(pg_blocking_pids(pid))"
        # Asked outside the blocker's transaction, which sees one snapshot of the statistics.
        while not scalar(database_url, waiting % me):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the copy never reached article 9"
            time.sleep(0.05)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        blocker.rollback()
        blocker.close()
        db.dispose()

    partial = counts(database_url)
    resumed = copy_json(cli, source, database_url, "--batch-size", "2")

    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "run the same command again to resume" in stderr
        assert "Traceback" not in stderr
    assert partial == {
        "feeds": 6,
        "hosts": 1,
        "articles": 8,
        "removed_articles": 0,
        "skipped_urls": 0,
        "capture_bodies": 7,  # no reference of its own: copied before articles
        "captures": 0,
        "entries": 0,
        "versions": 0,
        "story_fingerprints": 7,  # no reference to another table: copied before articles
    }
    assert resumed["feeds"]["copied"] == resumed["hosts"]["copied"] == 0
    assert resumed["articles"]["copied"] == COUNTS["articles"] - 8
    assert resumed["entries"]["copied"] == COUNTS["entries"]
    assert rows(database_url) == rows(source)


def test_a_partial_sqlite_destination_is_completed_without_duplicates(
    cli: Ingest, source: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'partial.sqlite3'}"
    copy_json(cli, source, target)
    # What an interruption during articles leaves: every feed and host, the first articles.
    with sqlite3.connect(sa.make_url(target).database or "") as db:
        cjk.register(db)  # the search index's triggers call it
        db.execute("DELETE FROM entries")
        db.execute("DELETE FROM captures")
        db.execute("DELETE FROM skipped_urls")
        db.execute("DELETE FROM articles WHERE id > 5")
        db.execute("DELETE FROM removed_articles")  # as if the copy never wrote those rows
    db.close()

    resumed = copy_json(cli, source, target, "--batch-size", "3")

    assert {t: c["copied"] for t, c in resumed.items()} == {
        "feeds": 0,
        "hosts": 0,  # passed over again, insert-if-new
        "articles": 10,
        "removed_articles": 0,
        "skipped_urls": 1,
        "capture_bodies": 0,  # the interruption came after them
        "captures": 7,
        "entries": 17,
        "versions": 0,  # of an article the interruption left (insert-if-new)
        "story_fingerprints": 0,  # not deleted above
    }
    assert raw_sqlite(target) == raw_sqlite(source)
    assert search_ids(cli, target, "telescope") == search_ids(cli, source, "telescope")


def test_a_destination_holding_another_archive_is_refused(
    cli: Ingest, source: str, database_url: str
) -> None:
    other = Store.open(database_url)
    other.sync_feeds([FeedSettings(url="https://elsewhere.example.net/feed", name="Other")])
    other.close()

    result = copy(cli, source, database_url)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ingest: error: --to: the destination holds another archive (feeds id 1" in (
        result.stderr
    )
    assert counts(database_url) == {**dict.fromkeys(COUNTS, 0), "feeds": 1}


def test_a_database_with_other_tables_is_refused(cli: Ingest, source: str, tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    db.close()

    result = copy(cli, source, str(path))

    assert result.returncode == 2
    assert "not an ingest archive" in result.stderr


def test_an_out_of_date_source_is_refused_and_nothing_is_created(
    cli: Ingest, tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite3"
    store = Store.open(f"sqlite:///{path}", migrate=False)
    store.upgrade("0002")
    store.close()
    target = tmp_path / "new.sqlite3"

    result = copy(cli, f"sqlite:///{path}", str(target))

    assert result.returncode == 1
    assert "run `ingest db upgrade`" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not target.exists()


def test_an_empty_or_missing_source_is_refused(
    cli: Ingest, database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'missing.sqlite3'}"

    result = copy(cli, database_url, str(tmp_path / "new.sqlite3"))

    assert result.returncode == 1
    assert "run `ingest fetch` first" in result.stderr


def test_differing_counts_fail_the_copy(cli: Ingest, source: str, tmp_path: Path) -> None:
    target = tmp_path / "lossy.sqlite3"
    Store.open(f"sqlite:///{target}").close()
    with sqlite3.connect(target) as db:  # a destination that silently drops one entry
        db.execute(
            "CREATE TRIGGER lose BEFORE INSERT ON entries WHEN new.id = 3 "
            "BEGIN SELECT RAISE(IGNORE); END"
        )
    db.close()

    result = copy(cli, source, str(target))

    assert result.returncode == 1
    assert "entries" in result.stdout
    assert result.stderr.splitlines()[-1] == (
        "ingest: error: row counts differ after the copy: entries (source 17, destination 16)"
    )


@pytest.mark.parametrize(
    "to",
    [
        "mysql://user@db.example.org/ingest",
        "postgresql+psycopg://db.example.org:notaport/ingest",
        "postgresql+psycopg2://user@db.example.org/ingest",
        "sqlite://",
        "sqlite:///:memory:",
        "",
    ],
)
def test_a_bad_destination_url_is_one_line_and_status_2(cli: Ingest, source: str, to: str) -> None:
    result = copy(cli, source, to)

    assert result.returncode == 2
    assert result.stderr.startswith("ingest: error: --to: ")
    assert result.stderr.count("\n") == 1


def test_copying_an_archive_onto_itself_is_refused(cli: Ingest, source: str) -> None:
    path = sa.make_url(source).database or ""

    result = copy(cli, source, str(Path(path).relative_to(cli.cwd)))

    assert result.returncode == 2
    assert "the source archive itself" in result.stderr


def test_text_output_lists_counts_and_progress(cli: Ingest, source: str, tmp_path: Path) -> None:
    result = copy(cli, source, str(tmp_path / "copy.sqlite3"))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["table", "source", "destination", "copied"]
    shown = [line.split() for line in lines[1 : 1 + len(COUNTS)]]
    assert {table: counts for table, *counts in shown} == {
        table: [str(n)] * 3 for table, n in COUNTS.items()
    }
    assert "copying articles: 15/15 rows" in result.stderr
