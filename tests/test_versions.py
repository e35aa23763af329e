"""Versions: an archived page looked at again on the `[versions]` schedule, on an injected clock.

Real parts throughout (the loopback newsroom, the real HTTP client and extraction pool, an SQLite
file and PostgreSQL); only the clock that decides when a page is due is injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from ingest.config import Settings, load_settings
from ingest.models import Article
from ingest.net import HttpClient
from ingest.pipeline import Ingestor, RunSummary
from ingest.store import Store
from ingest.workers import ExtractorPool
from tests import versions_site as site
from tests.conftest import Ingest
from tests.newsroom import Newsroom
from tests.test_pipeline import Clock


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def settings_for(tmp_path: Path, room: Newsroom, database: str, extra: str = "") -> Settings:
    path = tmp_path / "versions.toml"
    path.write_text(site.config_lines(room, database) + "\n" + extra + "\n", encoding="utf-8")
    return load_settings(path, environ={})


def run(settings: Settings, store: Store, clock: Clock, *, rechecks: bool = True) -> RunSummary:
    async def go() -> RunSummary:
        summary = RunSummary()
        async with HttpClient(settings.fetch) as http, ExtractorPool(1) as pool:
            ingestor = Ingestor(settings, store, http, pool, clock=clock, tally=summary)
            ingestor.rechecks = rechecks
            await ingestor.run_once(store.sync_feeds(settings.feeds))
        return summary

    return asyncio.run(go())


def story(store: Store) -> Article:
    with store._session() as session:
        (row,) = session.exec(select(Article).where(col(Article.url).endswith(site.STORY)))
        return row


def story_requests(room: Newsroom) -> int:
    return len(room.requests_for(site.STORY))


def test_a_story_edited_between_polls_keeps_every_meaningful_version(
    tmp_path: Path, newsroom: Newsroom, database_url: str, store: Store
) -> None:
    site.publish(newsroom)
    settings = settings_for(tmp_path, newsroom, database_url)
    clock = Clock()
    run(settings, store, clock)
    first = story(store)
    assert first.title == site.HEADLINE
    assert "last updated at 9:14 GMT" in (first.text or "")  # the stamp is in the text
    assert first.next_check_at == clock.now + timedelta(minutes=15)
    assert len(store.versions(first.id or 0)) == 1  # its one state, not stored as a row
    fetched = story_requests(newsroom)

    # Not due yet: the page is not asked for.
    clock.advance(minutes=10)
    run(settings, store, clock)
    assert story_requests(newsroom) == fetched

    # Due, unchanged: a conditional request, a 304, no version.
    clock.advance(minutes=6)
    summary = run(settings, store, clock)
    asked = newsroom.requests_for(site.STORY)[-1]
    assert asked.headers.get("If-None-Match") or asked.headers.get("If-Modified-Since")
    assert summary.pages_rechecked == 1 and summary.versions_new == 0
    assert story(store).checked_at == clock.now

    # The headline rewritten.
    site.publish(newsroom, site.page(site.NEW_HEADLINE))
    clock.advance(minutes=16)
    summary = run(settings, store, clock)
    assert summary.versions_new == 1
    row = story(store)
    assert row.title == site.NEW_HEADLINE
    versions = store.versions(row.id or 0)
    assert [(v.number, v.reason, v.title) for v in versions] == [
        (1, "first", site.HEADLINE),
        (2, "changed", site.NEW_HEADLINE),
    ]
    assert versions[0].text == first.text
    assert versions[1].fetched_at == clock.now
    assert versions[0].capture_id is not None and versions[1].capture_id is not None
    assert versions[0].capture_id != versions[1].capture_id

    # A paragraph quietly removed.
    shorter = [p for p in site.PARAGRAPHS if "Shop owners" not in p]
    site.publish(newsroom, site.page(site.NEW_HEADLINE, shorter))
    clock.advance(minutes=16)
    assert run(settings, store, clock).versions_new == 1
    third = store.versions(row.id or 0)[-1]
    assert third.number == 3 and "Shop owners" not in (third.text or "")
    assert third.chars_removed > 100 and third.chars_added == 0

    # A correction appended.
    corrected = [*shorter, site.CORRECTION]
    site.publish(newsroom, site.page(site.NEW_HEADLINE, corrected))
    clock.advance(minutes=16)
    assert run(settings, store, clock).versions_new == 1
    fourth = store.versions(row.id or 0)[-1]
    assert fourth.number == 4 and site.CORRECTION in (fourth.text or "")
    assert fourth.chars_added > 50 and fourth.chars_removed == 0

    # Only the timestamp moves (and the page's bytes with it): no version.
    restamped = site.page(site.NEW_HEADLINE, corrected, stamp="Updated 11:52 AM GMT, March 6, 2025")
    site.publish(newsroom, restamped)
    clock.advance(minutes=16)
    before = story_requests(newsroom)
    summary = run(settings, store, clock)
    assert story_requests(newsroom) == before + 1
    assert summary.pages_rechecked == 1 and summary.versions_new == 0
    assert len(store.versions(row.id or 0)) == 4

    # Deleted: the article is marked removed and keeps every version.
    newsroom.set(site.STORY, status=410)
    clock.advance(minutes=16)
    summary = run(settings, store, clock)
    assert summary.articles_removed == 1
    gone = story(store)
    assert gone.removed_at == clock.now
    assert gone.next_check_at is None
    assert gone.text == fourth.text  # the last state stays the article's
    assert len(store.versions(row.id or 0)) == 4
    before = story_requests(newsroom)
    clock.advance(days=1)
    run(settings, store, clock)
    assert story_requests(newsroom) == before  # a removed page is not asked for again


def test_rechecks_slow_as_the_last_change_ages_and_stop_after_the_last_step(
    tmp_path: Path, newsroom: Newsroom, database_url: str, store: Store
) -> None:
    site.publish(newsroom)
    settings = settings_for(
        tmp_path, newsroom, database_url, '[versions]\nschedule = { "1h" = "10m", "1d" = "2h" }'
    )
    clock = Clock()
    run(settings, store, clock)
    assert story(store).next_check_at == clock.now + timedelta(minutes=10)

    clock.advance(minutes=50)  # 50 minutes after its last change: still the first step
    run(settings, store, clock)
    assert story(store).next_check_at == clock.now + timedelta(minutes=10)

    clock.advance(minutes=20)  # past an hour: every two hours
    run(settings, store, clock)
    assert story(store).next_check_at == clock.now + timedelta(hours=2)

    # A change starts the clock again.
    site.publish(newsroom, site.page(site.NEW_HEADLINE))
    clock.advance(hours=2)
    assert run(settings, store, clock).versions_new == 1
    assert story(store).next_check_at == clock.now + timedelta(minutes=10)

    clock.advance(days=1, hours=1)  # past the last step: no more re-checks
    run(settings, store, clock)
    assert story(store).next_check_at is None


def test_rechecks_off_and_a_single_feed_run_leave_archived_pages_alone(
    tmp_path: Path, newsroom: Newsroom, database_url: str, store: Store
) -> None:
    site.publish(newsroom)
    off = settings_for(tmp_path, newsroom, database_url, "[versions]\nrecheck = false")
    clock = Clock()
    run(off, store, clock)
    assert story(store).next_check_at is None  # not scheduled at all

    on = settings_for(tmp_path, newsroom, database_url)
    site.publish(newsroom, site.page(site.NEW_HEADLINE))
    clock.advance(hours=1)
    run(on, store, clock, rechecks=False)  # `ingest fetch --feed X`: polls only
    assert story(store).title == site.HEADLINE


def test_a_failed_recheck_is_tried_later_and_the_article_stays_as_it_was(
    tmp_path: Path, newsroom: Newsroom, database_url: str, store: Store
) -> None:
    site.publish(newsroom)
    settings = settings_for(tmp_path, newsroom, database_url)
    clock = Clock()
    run(settings, store, clock)
    kept = story(store)

    newsroom.set(site.STORY, status=503)
    clock.advance(minutes=16)
    summary = run(settings, store, clock)
    assert summary.articles_failed == 0 and summary.articles_removed == 0
    row = story(store)
    assert row.status == "ok" and row.text == kept.text and row.removed_at is None
    assert row.next_check_at == clock.now + timedelta(minutes=15)

    site.publish(newsroom, site.page(site.NEW_HEADLINE))
    clock.advance(minutes=16)
    assert run(settings, store, clock).versions_new == 1


def edited_archive(tmp_path: Path, room: Newsroom, database: str) -> tuple[Ingest, int, str]:
    """An archive made by `ingest fetch` in which the story changed once (headline rewritten,
    a paragraph removed): two versions. `ingest fetch` re-checks what is due, and a schedule
    of 1 ms makes the story due at the next run: no sleeping. Returns the CLI, the story's id
    and what the second run printed."""
    config = tmp_path / "ingest.toml"
    schedule = '[versions]\nschedule = { "30d" = "1ms" }\n'
    config.write_text(site.config_lines(room, database) + "\n" + schedule, encoding="utf-8")
    cli = Ingest(tmp_path, config)
    site.publish(room)
    cli("fetch")
    (article_id,) = [a["id"] for a in cli.json("search", "bridge", "--format", "json")]
    shorter = [p for p in site.PARAGRAPHS if "Shop owners" not in p]
    site.publish(room, site.page(site.NEW_HEADLINE, shorter))
    return cli, article_id, cli("fetch").stdout


def test_history_and_diff_from_the_command_line(tmp_path: Path, newsroom: Newsroom) -> None:
    """`ingest history` and `ingest diff` read the versions `ingest fetch` kept."""
    cli, article_id, said = edited_archive(
        tmp_path, newsroom, f"sqlite:///{tmp_path / 'a.sqlite3'}"
    )
    assert "Looked again at 1 archived page: 1 new version, 0 gone." in said

    history = cli.json("history", str(article_id), "--format", "json")
    assert [v["number"] for v in history["versions"]] == [1, 2]
    assert [v["title"] for v in history["versions"]] == [site.HEADLINE, site.NEW_HEADLINE]
    assert history["versions"][1]["chars_removed"] > 100
    table = cli("history", str(article_id)).stdout
    assert "2 versions" in table and "changed" in table

    text = cli("diff", str(article_id)).stdout  # not a terminal: plain marks
    assert f"Title: [-{site.HEADLINE}-] {{+{site.NEW_HEADLINE}+}}" in text
    assert "[-Shop owners" in text
    assert "Buses on routes" not in text  # unchanged paragraphs are left out
    assert "Buses on routes" in cli("diff", str(article_id), "1", "2", "--full").stdout
    data = cli.json("diff", str(article_id), "1", "2", "--format", "json")
    assert data["chars_removed"] == history["versions"][1]["chars_removed"]
    removed = "".join(p["text"] for p in data["pieces"] if p["op"] == "delete")
    assert "Shop owners" in removed

    bad = cli("diff", str(article_id), "1", "5", check=False)
    assert bad.returncode == 1
    assert "no version 5 of this article (it has 1 to 2)" in bad.stderr
    assert "Traceback" not in bad.stderr
    one = cli("diff", str(article_id), "1", check=False)
    assert one.returncode == 2 and "give two version numbers" in one.stderr
    unknown = cli("history", "999", check=False)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr

    newsroom.set(site.STORY, status=404)
    assert "0 new versions, 1 gone." in cli("fetch").stdout
    shown = cli.json("show", str(article_id), "--format", "json")
    assert shown["removed_at"] is not None and shown["title"] == site.NEW_HEADLINE
    assert "page gone since" in cli("history", str(article_id)).stdout
    assert len(cli.json("history", str(article_id), "--format", "json")["versions"]) == 2
    assert cli.json("stats", "--format", "json")["versions"] == {
        "articles_changed": 1,
        "versions": 2,
        "articles_removed": 1,
        "articles_watched": 0,  # a page gone is not looked at again
        "rechecks_due": 0,
    }
    assert "Versions: 1 article changed (2 versions), 1 gone from the web" in cli("stats").stdout


def test_exports_carry_every_version_jsonl_and_warc(tmp_path: Path, newsroom: Newsroom) -> None:
    import subprocess
    import sys

    from warcio.archiveiterator import ArchiveIterator

    cli, _, _ = edited_archive(tmp_path, newsroom, f"sqlite:///{tmp_path / 'a.sqlite3'}")
    (plain,) = cli.jsonl("export")
    assert "versions" not in plain
    (full,) = cli.jsonl("export", "--versions")
    assert [v["title"] for v in full["versions"]] == [site.HEADLINE, site.NEW_HEADLINE]
    assert "Shop owners" in full["versions"][0]["text"]
    assert full["versions"][1]["text"] == full["text"]
    bad = cli("export", "--versions", "--format", "csv", check=False)
    assert bad.returncode == 2 and "--versions needs" in bad.stderr

    # The WARC holds each version's capture, converted to that version's text.
    out = tmp_path / "story.warc.gz"
    cli("export", "--format", "warc", "--out", str(out))
    check = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", str(out)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    conversions = []
    with out.open("rb") as fh:
        for record in ArchiveIterator(fh, check_digests=True):
            if record.rec_type == "conversion":
                conversions.append(record.content_stream().read().decode())
    assert len(conversions) == 2  # one capture a version, in order
    assert "Shop owners" in conversions[0] and "Shop owners" not in conversions[1]


def test_versions_and_diffs_over_the_api(tmp_path: Path, newsroom: Newsroom) -> None:
    """(The store's versions on PostgreSQL: the in-process tests above run on both.)"""
    from tests.webserver import serve

    cli, article_id, _ = edited_archive(tmp_path, newsroom, f"sqlite:///{tmp_path / 'a.sqlite3'}")
    assert cli.config is not None
    with serve(cli.config) as server:
        history = server.get(f"/api/v1/articles/{article_id}/versions").json()
        expected = cli.json("history", str(article_id), "--format", "json")
        assert history == expected
        one = server.get(f"/api/v1/articles/{article_id}/versions/1").json()
        assert one["title"] == site.HEADLINE and "Shop owners" in one["text"]
        last = server.get(f"/api/v1/articles/{article_id}/diff").json()
        assert last == cli.json("diff", str(article_id), "--format", "json")
        assert last["from"]["number"] == 1 and last["to"]["number"] == 2
        assert last["title"] == {"from": site.HEADLINE, "to": site.NEW_HEADLINE}
        record = server.get(f"/api/v1/articles/{article_id}").json()
        assert record["checked_at"] is not None and record["removed_at"] is None

        for path, status, says in (
            (f"/api/v1/articles/{article_id}/versions/3", 404, "no version 3"),
            (f"/api/v1/articles/{article_id}/diff?from=1&to=9", 404, "no version 9"),
            (f"/api/v1/articles/{article_id}/diff?from=1", 422, "give both"),
            ("/api/v1/articles/99999/versions", 404, "99999"),
            (f"/api/v1/articles/{article_id}/diff?from=0&to=1", 422, "from"),
        ):
            answer = server.get(path)
            assert answer.status_code == status, (path, answer.text)
            assert says in answer.json()["message"] + " ".join(answer.json()["errors"])
        schema = server.get("/api/openapi.json").json()
        assert "/api/v1/articles/{article_id}/diff" in schema["paths"]
