"""JSON Feed end to end: the real `ingest fetch` polls JSON Feeds 1.0 and 1.1 served by the
loopback newsroom (``tests/fixtures/site/jsonfeed``), read back with `ingest export` and
`ingest show`, on SQLite and PostgreSQL; conditional re-polls; broken and hostile documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Ingest
from tests.newsroom import SITE_DIR, Newsroom

FEEDS = {
    "Tidewater": "/jsonfeed/podcast.json",  # 1.1: a podcast, episodes on the show's page
    "Notes": "/jsonfeed/microblog.json",  # 1.0: posts without titles, relative URLs
    "Margin": "/jsonfeed/linkblog.json",  # 1.1: a link blog, url and external_url
}
POST = "/jsonfeed/links/ice-charts.html"


@pytest.fixture
def archive(database_url: str) -> str:
    return database_url


def cli(tmp_path: Path, room: Newsroom, archive: str) -> Ingest:
    lines = [
        "[database]",
        f'url = "{archive}"',
        "[fetch]",
        "allow_private_networks = true",
        "host_delay = 0",
    ]
    for name, path in FEEDS.items():
        lines += ["[[feeds]]", f'url = "{room.url(path)}"', f'name = "{name}"']
    config = tmp_path / "jsonfeed.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Ingest(tmp_path, config)


def of_feed(records: list[dict[str, Any]], room: Newsroom, name: str) -> list[dict[str, Any]]:
    """The records a feed lists, whichever feed listed them first (polls run at once)."""
    return [r for r in records if room.url(FEEDS[name]) in r["feed_urls"]]


def test_json_feeds_of_both_versions_are_archived_like_rss(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    # JSON Feed's own content type on one of them; the others are served as application/json.
    newsroom.set(FEEDS["Margin"], headers={"Content-Type": "application/feed+json"})
    ingest = cli(tmp_path, newsroom, archive)

    summary = ingest.json("fetch", "--format", "json")
    records = ingest.jsonl("export")

    assert summary["feeds_failed"] == 0, summary["failures"]
    assert summary["entries_new"] == 3 + 3 + 2
    episodes = of_feed(records, newsroom, "Tidewater")
    assert sorted(r["title"] for r in episodes) == [
        "A coastguard radio operator's longest shift",
        "Ice in the harbour: winter special",
        "Listener questions, part two",
    ]
    # Every episode links to the show's page: each is its own article, with its enclosures.
    latest = next(r for r in episodes if r["guid"] == "tidewater-hour-episode-012")
    assert latest["content_source"] == "feed"
    assert latest["status"] == "ok"
    assert latest["language"] == "en"
    assert latest["enclosures"] == [
        {
            "url": "https://media.example.org/tidewater/012.mp3",
            "type": "audio/mpeg",
            "length": 31012000,
            "title": "Listener questions, part two (MP3)",
            "duration": 3120.0,
        },
        {
            "url": "https://media.example.org/tidewater/012.m4a",
            "type": "audio/x-m4a",
            "length": 24000000,
            "title": None,
            "duration": 3120.0,
        },
    ]
    # Posts without titles on fragments of a day page: the page is read for each post.
    notes = {r["url"]: r for r in of_feed(records, newsroom, "Notes")}
    day = newsroom.url("/shared/notes/2025/03/14.html")
    assert set(notes) == {f"{day}#a1505", f"{day}#a1130", f"{day}#a0912"}
    assert all(r["status"] == "ok" and r["authors"] for r in notes.values())
    assert "mooring fees" in notes[f"{day}#a1505"]["text"]
    # The link blog: the post is fetched and archived, not the page it links to.
    margin = {r["url"]: r for r in of_feed(records, newsroom, "Margin")}
    post = margin[newsroom.url(POST)]
    assert post["content_source"] == "page"
    assert "Lake Champlain" in post["text"]
    assert post["enclosures"] == []
    assert newsroom.url("/world/danube-grain.html") in margin  # only an external_url
    assert not newsroom.requests_for("/news/great-lakes-shipping.html")

    shown = ingest("show", str(latest["id"])).stdout
    assert (
        "Media:     https://media.example.org/tidewater/012.mp3 (audio/mpeg, 31.0 MB, 52:00,"
        in (shown)
    )
    assert "           https://media.example.org/tidewater/012.m4a (audio/x-m4a" in shown
    csv_export = ingest("export", "--format", "csv").stdout
    assert '""duration"": 3120.0' in csv_export


def test_a_repoll_is_conditional_and_adds_nothing(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive)
    ingest("fetch")
    before = ingest.jsonl("export")
    newsroom.clear_log()

    again = ingest.json("fetch", "--format", "json")

    assert again["feeds_not_modified"] == 3
    assert (again["entries_new"], again["articles_new"]) == (0, 0)
    for path in FEEDS.values():
        (request,) = newsroom.requests_for(path)
        assert request.headers.get("If-None-Match")
        assert request.status == 304
    assert ingest.jsonl("export") == before


def test_broken_and_hostile_json_feeds_fail_cleanly_and_lose_nothing(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive)
    ingest("fetch")
    before = ingest.jsonl("export")
    truncated = (SITE_DIR / "jsonfeed" / "truncated.json").read_bytes()
    newsroom.set(FEEDS["Margin"], truncated)
    newsroom.set(FEEDS["Notes"], b"[" * 100_000 + b"]" * 100_000)
    newsroom.set(
        FEEDS["Tidewater"], b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}'
    )

    run = ingest("fetch", "--format", "json", check=False)
    summary = json.loads(run.stdout)

    assert run.returncode == 1  # no feed could be polled
    assert summary["feeds_failed"] == 3
    assert {f["reason"] for f in summary["failures"]} == {"bad_feed"}
    messages = " ".join(f["message"] for f in summary["failures"])
    assert "malformed feed: not valid JSON" in messages
    assert "malformed feed: JSON nested too deeply" in messages
    assert "malformed feed: items is an object, not a list" in messages
    assert ingest.jsonl("export") == before
    feeds = {f["name"]: f for f in ingest.json("feeds", "--format", "json")}
    assert feeds["Margin"]["last_status"] == "bad_feed"
    assert feeds["Margin"]["error_count"] == 1


def test_a_feed_with_one_bad_item_keeps_the_others_and_is_malformed(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive)
    newsroom.set(FEEDS["Margin"], (SITE_DIR / "jsonfeed" / "broken.json").read_bytes())

    summary = ingest.json("fetch", "--format", "json", "--feed", "Margin")

    failure = next(f for f in summary["failures"] if f["kind"] == "feed")
    assert failure["reason"] == "malformed"
    assert "3 entries recovered" in failure["message"]
    guids = {r["guid"] for r in ingest.jsonl("export")}
    assert guids == {"good-1", "bad-2", "good-3"}
    (margin,) = [f for f in ingest.json("feeds", "--format", "json") if f["name"] == "Margin"]
    assert margin["last_status"] == "malformed"
