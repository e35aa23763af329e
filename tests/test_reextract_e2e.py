"""`ingest reextract --all` brings an archive made by the real `ingest fetch` up to the current
extractor from the kept captures alone: what an older extractor made is done again, what the
current one made is skipped (a second run does nothing, a run killed with SIGKILL is carried
on by the next one, every article done once), the filters select, and a filter that names
nothing is an error that leaves the archive as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ingest import cjk
from ingest.extract import EXTRACTOR
from ingest.store import Store
from tests.conftest import Ingest, write_config
from tests.newsroom import Newsroom

OLD_EXTRACTOR = "ingest-0+trafilatura-1.0"
STALE = "Stale text from an older extractor."
STALE_ROWS = "status = 'ok' AND content_source = 'page'"


def execute(url: str, statement: str, **params: Any) -> None:
    """``statement`` run on the archive through ingest's own engine (SQLite's search index
    triggers need its functions)."""
    store = Store.open(url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(statement, params or None)
    finally:
        store.close()


def make_stale(url: str, where: str = STALE_ROWS) -> None:
    """The articles as an older extractor left them: another text, another extractor."""
    execute(
        url, f"UPDATE articles SET text = '{STALE}', extractor = '{OLD_EXTRACTOR}' WHERE {where}"
    )


def records(cli: Ingest) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in cli.jsonl("export", "--format", "jsonl")}


def extracted(before: dict[int, dict[str, Any]]) -> set[int]:
    return {i for i, r in before.items() if r["status"] == "ok" and r["content_source"] == "page"}


@pytest.fixture
def fetched(tmp_path: Path, newsroom: Newsroom, database_url: str) -> tuple[Ingest, str]:
    """The CLI over an archive `ingest fetch` made of every fixture feed."""
    config = write_config(tmp_path / "ingest.toml", newsroom, database=database_url)
    cli = Ingest(tmp_path, config)
    cli("fetch")
    return cli, database_url


def test_reextract_all_restores_what_an_older_extractor_made_and_then_does_nothing(
    fetched: tuple[Ingest, str], newsroom: Newsroom
) -> None:
    cli, url = fetched
    before = records(cli)
    pages = extracted(before)
    make_stale(url)
    newsroom.clear_log()

    done = cli.json("reextract", "--all", "--format", "json")
    after = records(cli)
    shown = cli("show", str(min(pages))).stdout
    again = cli("reextract", "--all")
    again_json = cli.json("reextract", "--all", "--format", "json")

    assert pages and before[min(pages)]["extractor"] == EXTRACTOR  # `ingest fetch` records it
    assert (done["checked"], done["changed"], done["failed"]) == (len(pages), len(pages), 0)
    assert done["extractor"] == EXTRACTOR
    for article_id, record in after.items():
        if article_id in pages:
            assert record["text"] == before[article_id]["text"]
            assert record["extractor"] == EXTRACTOR
        else:  # the feed's own text: no page to extract, nothing changed
            assert record == before[article_id]
    assert f"Extractor: {EXTRACTOR}" in shown
    assert cli.json("search", '"stale text"', "--format", "json") == []  # the index follows
    assert newsroom.requests == []  # no network
    assert (again_json["checked"], again_json["changed"]) == (0, 0)
    assert again_json["current"] == len(pages)
    assert "Re-extracted 0 articles" in again.stdout
    # The text an older extractor left is kept as a version, the new one after it.
    history = cli.json("history", str(min(pages)), "--format", "json")["versions"]
    assert [v["reason"] for v in history] == ["first", "reextracted"]
    kept = cli.json("diff", str(min(pages)), "--format", "json")
    removed = " ".join(p["text"] for p in kept["pieces"] if p["op"] == "delete")
    assert {"Stale", "older", "extractor."} <= set(removed.split())
    assert f"{len(pages)} articles made by {EXTRACTOR} already: skipped." in again.stdout
    assert records(cli) == after


def copy_articles(archive: Path, copies: int) -> int:
    """Each page article of the archive copied (row and capture) under URLs of its own, as an
    older extractor left them, until there are ``copies`` more; returns the articles to do."""
    with sqlite3.connect(archive) as db:
        cjk.register(db)  # the search index's triggers call it
        columns = [
            row[1]
            for row in db.execute("PRAGMA table_info(articles)")
            if row[1] not in {"id", "change_seq"}
        ]
        own = {
            "url_key": "url_key || '?copy=' || :n",
            "url": "url || '?copy=' || :n",
            "text": f"'{STALE}'",
            "extractor": "NULL",
        }
        selected = ", ".join(own.get(c, c) for c in columns)
        sources = [i for (i,) in db.execute(f"SELECT id FROM articles WHERE {STALE_ROWS}")]
        for n in range(copies):
            source = sources[n % len(sources)]
            db.execute(
                f"INSERT INTO articles ({', '.join(columns)}) "
                f"SELECT {selected} FROM articles WHERE id = :source",
                {"n": n, "source": source},
            )
            db.execute(
                "INSERT INTO captures (article_id, url, status, headers, body, body_id, "
                "fetched_at) SELECT last_insert_rowid(), url, status, headers, body, body_id, "
                "fetched_at FROM captures WHERE article_id = ?",
                (source,),
            )
        db.execute(f"UPDATE articles SET extractor = NULL, text = '{STALE}' WHERE {STALE_ROWS}")
        return db.execute(f"SELECT count(*) FROM articles WHERE {STALE_ROWS}").fetchone()[0]


def made_by_current(archive: Path) -> int:
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        query = "SELECT count(*) FROM articles WHERE extractor = ?"
        return db.execute(query, (EXTRACTOR,)).fetchone()[0]


def test_a_run_killed_midway_is_carried_on_and_every_article_done_once(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    cli = Ingest(tmp_path, write_config(tmp_path / "ingest.toml", newsroom, database=archive))
    cli("fetch")
    with sqlite3.connect(archive) as db:
        texts = {i: t for i, t in db.execute(f"SELECT id, text FROM articles WHERE {STALE_ROWS}")}
    todo = copy_articles(archive, 350)
    with sqlite3.connect(archive) as db:
        rows_before = db.execute("SELECT count(*), (SELECT count(*) FROM captures) FROM articles")
        articles_before, captures_before = rows_before.fetchone()

    # One worker, so that the run lasts a while; its own session, so that SIGKILL takes the
    # whole tree (the forkserver and workers too), as `kill -9` of a process group does.
    command = [sys.executable, "-m", "ingest", "--config", str(tmp_path / "ingest.toml")]
    command += ["reextract", "--all", "--workers", "1"]
    run = subprocess.Popen(command, cwd=tmp_path, env=cli.env, start_new_session=True)
    deadline = time.monotonic() + 120
    while made_by_current(archive) == 0 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    committed = made_by_current(archive)
    rerun = cli.json("reextract", "--all", "--format", "json")

    assert 0 < committed < todo, "the run was to be killed between two commits"
    assert run.returncode == -signal.SIGKILL
    # The rerun did exactly what the killed one had not committed, each once.
    assert (rerun["current"], rerun["checked"]) == (committed, todo - committed)
    assert (rerun["changed"], rerun["failed"]) == (todo - committed, 0)
    with sqlite3.connect(archive) as db:
        assert db.execute(
            "SELECT count(*), (SELECT count(*) FROM captures) FROM articles"
        ).fetchone() == (articles_before, captures_before)
        rows = db.execute(
            f"SELECT url_key, text, extractor FROM articles WHERE {STALE_ROWS}"
        ).fetchall()
        by_key = {k: t for k, t, _ in rows}
        sources = {i: k for i, k in db.execute("SELECT id, url_key FROM articles")}
    assert len(rows) == todo and {e for _, _, e in rows} == {EXTRACTOR}
    originals = {sources[i]: text for i, text in texts.items()}
    for key, text in by_key.items():
        assert text == originals[key.split("?copy=")[0]]


def test_feed_and_since_select_and_an_unknown_feed_changes_nothing(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    cli = Ingest(tmp_path, write_config(tmp_path / "ingest.toml", newsroom, database=archive))
    cli("fetch")
    before = records(cli)
    pages = extracted(before)
    tech = {i for i in pages if newsroom.url("/feeds/tech.atom") in before[i]["feed_urls"]}
    since = sorted(before[i]["published"] for i in pages)[len(pages) // 2][:10]  # a date
    recent = {i for i in pages if before[i]["published"] >= since}
    url = f"sqlite:///{archive}"
    make_stale(url)
    stale = records(cli)

    unknown = cli("reextract", "--all", "--feed", "Nope", check=False)
    untouched = records(cli)
    by_feed = cli.json("reextract", "--all", "--feed", "Tech", "--format", "json")
    after_feed = records(cli)
    by_date = cli.json("reextract", "--all", "--since", since, "--format", "json")
    after_date = records(cli)

    assert unknown.returncode == 2
    assert "ingest: error: no feed 'Nope' in the archive" in unknown.stderr
    assert untouched == stale
    assert tech and recent - tech and pages - recent - tech  # each step selects some, not all
    assert by_feed["changed"] == len(tech)
    assert {i for i in pages if after_feed[i]["text"] != STALE} == tech
    assert by_date["changed"] == len(recent - tech)
    assert {i for i in pages if after_date[i]["extractor"] == EXTRACTOR} == tech | recent
    for i in pages - tech - recent:
        assert after_date[i]["text"] == STALE
