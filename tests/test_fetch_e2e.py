"""`ingest fetch` end to end: the real CLI, a real newsroom on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.entryparts import url_key
from tests.conftest import FEEDS, Ingest, write_config
from tests.newsroom import EXPECTED_DIR, Newsroom

PAGES = sorted(p.stem for p in EXPECTED_DIR.glob("*.json"))
FAILING_PAGES = {
    "/files/report.pdf": "not_html",
    "/status/404": "http_404",
    "/media/photo.png": "not_html",
    "/status/500": "http_500",
    "/empty.html": "empty_page",
}


@pytest.fixture
def archive(database_url: str) -> str:
    """This module's archive: SQLite or PostgreSQL (every test runs on both)."""
    return database_url


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(statement)]
    finally:
        engine.dispose()


def by_path(records: list[dict[str, Any]], room: Newsroom) -> dict[str, dict[str, Any]]:
    return {r["url"].removeprefix(room.base_url).split("?")[0]: r for r in records if r["url"]}


def test_first_fetch_archives_every_kind_of_feed(ingest: Ingest, newsroom: Newsroom) -> None:
    summary = ingest.json("fetch", "--format", "json")

    assert summary["feeds"] == 6
    assert summary["feeds_failed"] == 1  # the HTML homepage; the others are RSS 2.0/1.0 and Atom
    assert summary["feeds_not_modified"] == 0
    assert summary["entries_seen"] == summary["entries_new"] == 17
    # 7 pages extracted, 2 link-less notices and 1 title-only entry of the broken feed.
    assert summary["articles_new"] == 10
    assert summary["articles_failed"] == len(FAILING_PAGES)
    assert 0 < summary["extract_cpu_seconds"] < summary["seconds"] * 64  # what workers took
    failures = {(f["kind"], f["reason"]) for f in summary["failures"]}
    assert ("feed", "not_feed") in failures
    assert {("page", reason) for reason in FAILING_PAGES.values()} <= failures

    records = ingest.jsonl("export")
    assert len(records) == 15
    assert len({r["id"] for r in records}) == 15
    pages = by_path(records, newsroom)
    for path, reason in FAILING_PAGES.items():
        assert pages[path]["status"] == "failed"
        assert pages[path]["error"] == reason
        assert pages[path]["content_source"] == "feed"


def test_each_page_is_stored_as_its_clean_record(ingest: Ingest, newsroom: Newsroom) -> None:
    # One run archives them all; each page's record is then checked against its own.
    ingest("fetch")
    records = ingest.jsonl("export")

    wrong: dict[str, list[str]] = {}
    for name in PAGES:
        expected = newsroom.expected(name)
        key = url_key(expected["url"])
        (record,) = [
            r
            for r in records
            if key in {url_key(u) for u in (r["url"], r["final_url"], r["canonical_url"]) if u}
        ]
        keys = ("title", "authors", "site_name", "language", "published", "updated", "text")
        bad = [k for k in (*keys, "canonical_url") if record[k] != expected[k]]
        bad += [k for k, v in (("status", "ok"), ("content_source", "page")) if record[k] != v]
        bad += [] if record["fetched_at"] else ["fetched_at"]
        if bad:
            wrong[name] = bad
    assert wrong == {}


def test_nbc_style_page_loses_its_chrome_and_keeps_its_subheads(
    ingest: Ingest, newsroom: Newsroom
) -> None:
    ingest("fetch", "--feed", "World")
    expected = newsroom.expected("nbc-style")

    record = ingest.json("show", expected["url"], "--format", "json")

    text = record["text"]
    assert "IE 11" not in text
    assert "Source:" not in text
    assert record["authors"] == ["The Associated Press"]
    assert record["site_name"] == "NBC News"
    lead = expected["text"].split("\n\n")[0]
    assert text.count(lead) == 1
    assert "\n\nA pattern of damage\n\n" in text
    assert "\n\nQuestions over enforcement\n\n" in text


def test_legacy_charsets_are_stored_as_unicode(ingest: Ingest, newsroom: Newsroom) -> None:
    ingest("fetch", "--feed", "Wire")

    latin = ingest.json("show", newsroom.url("/news/legacy-1252.html"), "--format", "json")
    japanese = ingest.json("show", newsroom.url("/news/tokyo-sjis.html"), "--format", "json")

    assert "£3" in latin["title"]
    assert all(ch in latin["text"] for ch in "“”’—é")
    assert japanese["language"] == "ja"
    assert japanese["text"] == newsroom.expected("tokyo-sjis")["text"]
    assert "\ufffd" not in latin["text"] + japanese["text"]


def test_second_run_adds_nothing_and_asks_conditionally(ingest: Ingest, newsroom: Newsroom) -> None:
    ingest("fetch")
    before = ingest.jsonl("export")
    newsroom.clear_log()

    summary = ingest.json("fetch", "--format", "json")

    assert summary["entries_new"] == 0
    assert summary["articles_new"] == 0
    assert summary["feeds_not_modified"] == 5  # every feed but the HTML homepage
    for name, path in FEEDS.items():
        if name == "Homepage":
            continue
        (request,) = newsroom.requests_for(path)
        assert request.headers.get("If-None-Match")
        assert request.status == 304
    # No page was fetched again: the failed ones are not due for a retry yet.
    assert not [r for r in newsroom.requests if not r.bare_path.startswith("/feeds/")]
    assert ingest.jsonl("export") == before


def test_same_article_from_two_feeds_and_tracking_urls_is_stored_once(
    ingest: Ingest, newsroom: Newsroom
) -> None:
    ingest("fetch", "--feed", "World", "--feed", "Wire")

    records = ingest.jsonl("export")

    danube = [r for r in records if r["url"] and "/world/danube-grain.html" in r["url"]]
    assert len(danube) == 1
    assert danube[0]["status"] == "ok"
    # Listed by both feeds: a search filtered by either feed finds it.
    for feed in ("World", "Wire"):
        hits = ingest.json("search", "Danube", "--feed", feed, "--format", "json")
        assert [h["id"] for h in hits] == [danube[0]["id"]]
    assert len(newsroom.requests_for("/world/danube-grain.html")) == 1


def test_entries_without_a_link_keep_the_feeds_content(ingest: Ingest) -> None:
    ingest("fetch", "--feed", "Notices")

    records = ingest.jsonl("export")

    assert len(records) == 2
    for record in records:
        assert record["status"] == "ok"
        assert record["content_source"] == "feed"
        assert record["url"] is None
        assert record["guid"].startswith("courier-")
    road = next(r for r in records if r["title"].startswith("Road closure"))
    assert road["text"].count("\n\n") == 2  # three paragraphs, markup gone
    assert "<p>" not in road["text"]
    assert road["published"] == "2025-03-11T09:00:00Z"


def test_failed_page_keeps_the_feed_summary_and_is_retried_on_a_later_run(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    # A first retry due at once, so the second run (not a sleep) is what retries it.
    config = write_config(
        tmp_path / "retry.toml", newsroom, ["World"], database=archive, extra="retry_after = 0.001"
    )
    ingest = Ingest(tmp_path, config)
    newsroom.set("/news/great-lakes-shipping.html", status=503)

    first = ingest.json("fetch", "--format", "json")
    failed = ingest.json(
        "show", newsroom.url("/news/great-lakes-shipping.html"), "--format", "json"
    )
    newsroom.unset("/news/great-lakes-shipping.html")
    second = ingest.json("fetch", "--format", "json")
    fixed = ingest.json("show", newsroom.url("/news/great-lakes-shipping.html"), "--format", "json")

    assert ("page", "http_503") in {(f["kind"], f["reason"]) for f in first["failures"]}
    assert failed["status"] == "failed"
    assert failed["content_source"] == "feed"
    assert failed["text"]  # the feed's description stands in meanwhile
    assert second["pages_retried"] >= 1
    assert fixed["status"] == "ok"
    assert fixed["text"] == newsroom.expected("great-lakes-shipping")["text"]
    assert fixed["id"] == failed["id"]


def test_exit_status_1_when_no_feed_can_be_polled(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    config = write_config(tmp_path / "bad.toml", newsroom, ["Homepage"], database=archive)

    result = Ingest(tmp_path, config)("fetch", "--format", "json", check=False)

    assert result.returncode == 1
    assert '"feeds_failed": 1' in result.stdout


def test_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    config = write_config(tmp_path / "c.toml", newsroom, ["World"], database=archive, private=False)

    result = Ingest(tmp_path, config)("fetch", "--format", "json", check=False)

    assert result.returncode == 1
    assert '"reason": "blocked_address"' in result.stdout
    assert newsroom.requests == []


def test_unusable_database_is_exit_status_1(tmp_path: Path, newsroom: Newsroom) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    config = write_config(tmp_path / "c.toml", newsroom, ["World"], database=blocker / "a.db")

    result = Ingest(tmp_path, config)("fetch", check=False)

    assert result.returncode == 1
    assert result.stderr.startswith("ingest: error: database:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_feed_name_is_a_usage_error(ingest: Ingest) -> None:
    result = ingest("fetch", "--feed", "Nope", check=False)

    assert result.returncode == 2
    assert "no feed named Nope" in result.stderr


def test_fetch_shows_a_progress_bar_on_a_terminal(ingest: Ingest) -> None:
    controller, terminal = pty.openpty()
    command = [sys.executable, "-m", "ingest", "--config", str(ingest.config), "fetch"]
    process = subprocess.Popen(
        command, cwd=ingest.cwd, env=ingest.env, stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        drawn += chunk
    stdout, _ = process.communicate(timeout=180)
    os.close(controller)

    assert process.returncode == 0
    assert b"fetching" in drawn
    assert b"Stored 10 new articles" in stdout


def test_search_show_and_export_read_the_archive(
    ingest: Ingest, newsroom: Newsroom, archive: str
) -> None:
    ingest("fetch")

    hits = ingest.json("search", "undersea cable", "--format", "json")
    assert hits[0]["title"].startswith("Nordic and Baltic nations")
    assert "**cable**" in hits[0]["snippet"]
    assert ingest.json("search", "cable", "--lang", "ja", "--format", "json") == []
    by_author = ingest.json("search", "shipping", "--author", "Maren Ostby", "--format", "json")
    assert [h["title"] for h in by_author] == [newsroom.expected("great-lakes-shipping")["title"]]
    assert ingest.json("search", "cable", "--until", "2000-01-01", "--format", "json") == []
    table = ingest("search", "telescope").stdout
    assert "telescope" in table.lower()

    # Typed loosely: searched as meant, on either backend.
    assert (
        ingest.json("search", '"undersea cable', "--format", "json")[0]["title"] == hits[0]["title"]
    )
    bad = ingest("search", "--", "-cable", check=False)  # nothing to find: says how to write one
    assert bad.returncode == 2
    assert bad.stderr.startswith("ingest: error: '-cable' only excludes words")
    assert len(bad.stderr.splitlines()) == 1

    missing = ingest("show", "999999", check=False)
    assert missing.returncode == 1
    assert "no article" in missing.stderr

    text = ingest("show", "1").stdout
    assert text.splitlines()[0]

    out = ingest.cwd / "archive.csv"
    ingest("export", "--format", "csv", "--out", str(out))
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    for column in ("id", "url", "final_url", "canonical_url", "feed_url", "guid", "title"):
        assert column in header
    records = ingest.jsonl("export", "--since", "2025-03-14")
    assert 0 < len(records) < 15
    # Undated entries count from when they were archived (now).
    assert all(r["published"] is None or r["published"] >= "2025-03-14" for r in records)
    for field in (
        "id", "url", "final_url", "canonical_url", "feed_url", "guid", "title", "authors",
        "published", "updated", "language", "summary", "text", "fetched_at", "status",
    ):  # fmt: skip
        assert field in records[0]

    # The documented schema answers plain SQL.
    elements = "json_each" if archive.startswith("sqlite") else "json_array_elements_text"
    rows = sql(
        archive,
        f"SELECT a.title FROM articles a, {elements}(a.authors) j "
        "WHERE j.value = 'The Associated Press'",
    )
    assert rows == [(newsroom.expected("nbc-style")["title"],)]


def test_feed_faults_are_recorded_with_their_reason(ingest: Ingest, newsroom: Newsroom) -> None:
    newsroom.set(
        "/feeds/world.rss",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Cut</title><item><title>Half',
        headers={"Content-Type": "application/rss+xml"},
    )

    summary = ingest.json("fetch", "--format", "json")
    feeds = {f["name"]: f for f in ingest.json("feeds", "--format", "json")}

    assert summary["feeds_failed"] == 2
    assert feeds["World"]["last_status"] == "bad_feed"
    assert feeds["World"]["error_count"] == 1
    assert feeds["Homepage"]["last_status"] == "not_feed"
    assert "HTML page" in feeds["Homepage"]["last_error"]
    # A malformed feed whose entries could be recovered keeps them, with its fault on record.
    assert feeds["Broken"]["last_status"] == "malformed"
    assert "malformed feed, 2 entries recovered" in feeds["Broken"]["last_error"]
    assert ("feed", "malformed") in {(f["kind"], f["reason"]) for f in summary["failures"]}
    assert feeds["Tech"]["last_status"] == "ok"
    assert feeds["Tech"]["last_error"] is None


def test_redirected_link_to_an_archived_article_is_merged(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    item = "<item><title>{t}</title><link>{{{{BASE}}}}{path}</link><guid>{g}</guid></item>"
    newsroom.set(
        "/feeds/world.rss",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Short links</title>'
        + item.format(t="Sea patrols", path="/news/nbc-style.html", g="a")
        + item.format(t="Sea patrols (short link)", path="/go/patrols", g="b")
        + "</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    newsroom.redirect("/go/patrols", "/news/nbc-style.html", status=302)
    config = write_config(tmp_path / "c.toml", newsroom, ["World"], database=archive)
    ingest = Ingest(tmp_path, config)

    summary = ingest.json("fetch", "--format", "json")
    records = ingest.jsonl("export")

    assert summary["entries_new"] == 2
    assert summary["articles_new"] + summary["articles_duplicate"] == 2
    assert summary["articles_duplicate"] == 1
    assert len(records) == 1
    assert records[0]["final_url"] == newsroom.url("/news/nbc-style.html")
    assert records[0]["text"] == newsroom.expected("nbc-style")["text"]
    assert sql(archive, "SELECT count(*), count(DISTINCT article_id) FROM entries") == [(2, 1)]


def test_search_finds_japanese_inside_a_run(ingest: Ingest, newsroom: Newsroom) -> None:
    ingest("fetch", "--feed", "Wire")
    title = newsroom.expected("tokyo-sjis")["title"]

    # 東京都墨田区で…: two, three and one characters from inside the run.
    for query in ("東京", "墨田区", "銭湯 サウナ", "煙"):
        hits = ingest.json("search", query, "--format", "json")
        assert [h["title"] for h in hits] == [title], query
    (hit,) = ingest.json("search", "墨田区", "--format", "json")
    assert "東京都**墨田区**で七十年近く" in hit["snippet"]
    assert title[:5] in ingest("search", "墨田区").stdout  # the table, as a person reads it
    assert ingest.json("search", "京東", "--format", "json") == []
