"""Entries that share a link, end to end: the real `ingest fetch` against the loopback
newsroom, read back through `ingest export`, on SQLite and PostgreSQL.

The fixture feeds (``tests/fixtures/site/shared``) are the three shapes of the issue: a podcast
whose episodes all link to the show's page, a microblog whose posts link to fragments of day
pages, and a link blog with two posts on one article; ``World`` lists that article too.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.dbsession import open_engine
from ingest.entryparts import entry_key, url_key
from ingest.store import SCHEMA_REVISION, Store
from tests.conftest import Ingest
from tests.newsroom import Newsroom
from tests.test_fetch_e2e import sql

FEEDS = {
    "World": "/feeds/world.rss",
    "Tidewater": "/shared/podcast.rss",
    "Notes": "/shared/microblog.rss",
    "Margin": "/shared/linkblog.atom",
}
SHOW = "/shared/tidewater/"
DAY_14, DAY_13 = "/shared/notes/2025/03/14.html", "/shared/notes/2025/03/13.html"
LAKES = "/news/great-lakes-shipping.html"


@pytest.fixture
def archive(database_url: str) -> str:
    return database_url


def cli(tmp_path: Path, room: Newsroom, archive: str, *names: str) -> Ingest:
    """The CLI with a config for the ``names`` of `FEEDS`."""
    lines = [
        "[database]",
        f'url = "{archive}"',
        "[fetch]",
        "allow_private_networks = true",
        "host_delay = 0",
    ]
    for name in names:
        lines += ["[[feeds]]", f'url = "{room.url(FEEDS[name])}"', f'name = "{name}"']
    config = tmp_path / "shared.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Ingest(tmp_path, config)


def of_feed(records: list[dict[str, Any]], room: Newsroom, name: str) -> list[dict[str, Any]]:
    """The records a feed lists (`feed_urls`: an article two feeds list is each's; which of
    them listed it first depends on which poll was recorded first, and polls run at once)."""
    return [r for r in records if room.url(FEEDS[name]) in r["feed_urls"]]


def entry_rows(archive: str) -> list[tuple[Any, ...]]:
    return sql(archive, "SELECT feed_id, entry_key, article_id FROM entries ORDER BY id")


def reread(room: Newsroom, *names: str) -> None:
    """Serve the feeds without validators: the next poll reads them whole (200, not 304)."""
    for name in names:
        room.set(FEEDS[name], headers={"ETag": None, "Last-Modified": None})


def test_entries_sharing_a_link_are_each_their_own_article(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive, *FEEDS)

    ingest("fetch")
    records = ingest.jsonl("export")

    # The podcast: twelve episodes, one show page; each episode its own article.
    episodes = of_feed(records, newsroom, "Tidewater")
    assert len(episodes) == 12
    assert len({e["guid"] for e in episodes}) == 12
    for episode in episodes:
        assert episode["url"].startswith(newsroom.url(SHOW))
        assert (episode["status"], episode["content_source"]) == ("ok", "feed")
        assert episode["final_url"] is None and episode["fetched_at"] is None
    by_guid = {e["guid"]: e for e in episodes}
    eleven = by_guid["tidewater-hour-episode-011"]
    assert eleven["title"] == "A coastguard radio operator's longest shift"
    assert eleven["published"] == "2025-03-13T06:00:00Z"
    assert eleven["text"].split("\n\n") == [
        "Episode 11: A coastguard radio operator's longest shift.",
        "We talk about the work, the weather and what changed this year. Show notes and a "
        "transcript are on our site.",
        "Music by the Quayside Band",
        "Produced by R. Lind",
    ]
    assert by_guid["tidewater-hour-episode-006"]["text"] is None  # no description at all
    assert "part two" in by_guid["tidewater-hour-episode-012"]["text"]
    assert newsroom.requests_for(SHOW) == []  # the show's page says nothing of an episode

    # The microblog: each post its own article, its text read from the day page.
    notes = {
        r["url"].removeprefix(newsroom.base_url): r for r in of_feed(records, newsroom, "Notes")
    }
    fog = notes[f"{DAY_14}#a0912"]
    assert (fog["title"], fog["status"], fog["content_source"]) == ("Fog on the quay", "ok", "page")
    assert fog["text"].endswith("the first trawler was in.")
    assert fog["published"] == "2025-03-14T09:12:00Z"
    assert fog["final_url"] == newsroom.url(f"{DAY_14}#a0912")
    overheard = notes[f"{DAY_14}#a1130"]
    assert overheard["title"] is None  # untitled in the feed; the day page's title is not its
    assert overheard["text"].endswith("They just make them out of something else now.")
    fees = notes[f"{DAY_14}#a1505"]
    assert fees["text"].count("\n\n") == 1 and "slipway" in fees["text"]
    ferry = notes[f"{DAY_13}#a2130"]
    assert ferry["text"].startswith("Evening ferry. The last ferry left twenty minutes late")
    assert ferry["text"].endswith("which I have never heard before.")
    assert notes[f"{DAY_13}#a0800"]["text"].startswith("Low tide at eight this morning")
    late = notes[f"{DAY_14}#a1744"]  # not on the day page yet: the entry's own text
    assert (late["status"], late["content_source"]) == ("ok", "feed")
    assert late["text"].startswith("Written on the boat home;")
    assert len(newsroom.requests_for(DAY_14)) == 1  # four posts, one request
    assert len(newsroom.requests_for(DAY_13)) == 1
    # A fragment that tells no posts apart is dropped: the article the World feed lists too.
    (observatory,) = [r for r in records if "/science/observatory-reopens.html" in r["url"]]
    assert set(observatory["feed_urls"]) == {newsroom.url(FEEDS[n]) for n in ("World", "Notes")}

    # The link blog: two posts on one article are two articles; the article is one more.
    margin = {
        r["title"]: r
        for r in of_feed(records, newsroom, "Margin")
        if r["content_source"] == "feed"  # its posts (the Danube story, listed too, is a page)
    }
    assert set(margin) == {"Ice-free lakes, early freighters", "More on the early shipping season"}
    first, second = (
        margin["Ice-free lakes, early freighters"],
        margin["More on the early shipping season"],
    )
    assert first["text"].startswith("Record low ice cover means")
    assert second["text"].endswith("for the ice charts.")
    assert {first["content_source"], second["content_source"]} == {"feed"}
    (lakes,) = [r for r in of_feed(records, newsroom, "World") if r["url"] == newsroom.url(LAKES)]
    assert lakes["content_source"] == "page"
    assert len(newsroom.requests_for(LAKES)) == 1
    # Through tracking parameters and two feeds, the Danube story is one row.
    assert len([r for r in records if "/world/danube-grain.html" in r["url"]]) == 1

    # One entry row per (feed, entry); distinct entries, distinct articles.
    per_feed = sql(
        archive,
        "SELECT f.name, count(*), count(DISTINCT e.article_id) FROM entries e "
        "JOIN feeds f ON f.id = e.feed_id GROUP BY f.name ORDER BY f.name",
    )
    assert per_feed == [("Margin", 3, 3), ("Notes", 7, 7), ("Tidewater", 12, 12), ("World", 6, 6)]

    # A re-poll that reads every feed again adds nothing and moves no entry.
    entries = entry_rows(archive)
    reread(newsroom, *FEEDS)
    newsroom.clear_log()
    again = ingest.json("fetch", "--format", "json")
    assert (again["feeds_not_modified"], again["entries_new"], again["articles_new"]) == (0, 0, 0)
    assert ingest.jsonl("export") == records
    assert entry_rows(archive) == entries
    assert not [r for r in newsroom.requests if not r.bare_path.endswith((".rss", ".atom"))]


LAKES_POST = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Margin Links</title>
<id>tag:margin.example,2025:feed</id><updated>2025-03-11T09:00:00Z</updated>
<entry><title>Ice-free lakes, early freighters</title>
<link href="{{BASE}}/news/great-lakes-shipping.html"/>
<id>tag:margin.example,2025:1</id><updated>2025-03-11T09:00:00Z</updated>
<content type="html">&lt;p&gt;Record low ice cover means the shipping season on the Great Lakes
opened two weeks early. What does that do to the ports downstream?&lt;/p&gt;</content></entry>
</feed>
"""


def test_a_second_post_on_a_link_in_a_later_poll_gives_both_their_own_articles(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive, "Margin")
    newsroom.set(FEEDS["Margin"], LAKES_POST, headers={"Content-Type": "application/atom+xml"})
    ingest("fetch")
    (alone,) = ingest.jsonl("export")
    newsroom.unset(FEEDS["Margin"])

    summary = ingest.json("fetch", "--format", "json")
    records = {r["id"]: r for r in ingest.jsonl("export")}

    # Alone on its link, the first post was the article's page; nothing of that is lost.
    assert (alone["content_source"], alone["url"]) == ("page", newsroom.url(LAKES))
    assert records[alone["id"]] == alone
    assert summary["entries_new"] == 2
    posts = {r["title"]: r for r in records.values() if r["content_source"] == "feed"}
    assert set(posts) == {"Ice-free lakes, early freighters", "More on the early shipping season"}
    first = posts["Ice-free lakes, early freighters"]
    assert first["guid"] == "tag:margin.example,2025:1"
    assert first["text"].startswith("Record low ice cover means")
    # The first post's entry now names its own article; every entry row names a distinct one.
    rows = sql(archive, "SELECT entry_key, article_id FROM entries")
    assert len(rows) == 3 and len({a for _, a in rows}) == 3
    assert dict(rows)[entry_key("tag:margin.example,2025:1", None, None, None)] == first["id"]
    assert alone["id"] not in {a for _, a in rows}
    assert len(newsroom.requests_for(LAKES)) == 1


def one_item(guid: str, title: str) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour desk</title>'
        f"<item><title>{title}</title><link>{{{{BASE}}}}/news/nbc-style.html?utm_source=desk</link>"
        f'<guid isPermaLink="false">{guid}</guid><description>{title}.</description></item>'
        "</channel></rss>"
    )


def test_an_edit_under_a_new_guid_stays_one_article(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, newsroom, archive, "Margin")  # the feed's URL, another document
    rss = {"Content-Type": "application/rss+xml"}
    newsroom.set(FEEDS["Margin"], one_item("desk-101", "Sea patrols agreed"), headers=rss)
    ingest("fetch")
    newsroom.set(
        FEEDS["Margin"], one_item("desk-101-v2", "Sea patrols agreed, update"), headers=rss
    )

    summary = ingest.json("fetch", "--format", "json")
    records = ingest.jsonl("export")

    assert (summary["entries_new"], summary["articles_new"]) == (1, 0)
    assert len(records) == 1
    assert records[0]["content_source"] == "page"
    assert sql(archive, "SELECT count(*), count(DISTINCT article_id) FROM entries") == [(2, 1)]


def build_old_archive(url: str, room: Newsroom) -> dict[str, Any]:
    """An archive at revision 0005 as ingest then left the podcast: every episode's entry on
    one article, the show's page; and the feed's validators, so that it would answer 304."""
    store = Store.open(url, migrate=False)
    store.upgrade("0005")
    feed_url = room.url(FEEDS["Tidewater"])
    with urllib.request.urlopen(feed_url) as response:
        etag = response.headers["ETag"]
    with store.engine.begin() as conn:
        run = conn.exec_driver_sql
        feed = run(
            "INSERT INTO feeds (url, name, etag, error_count, active) "
            f"VALUES ('{feed_url}', 'Tidewater', '{etag}', 0, true) RETURNING id"
        ).scalar()
        show = run(
            "INSERT INTO articles (url_key, url, feed_id, title, authors, text, content_source, "
            f"status, attempts) VALUES ('{url_key(room.url(SHOW))}', '{room.url(SHOW)}', {feed}, "
            "'The Tidewater Hour', '[]', 'A weekly conversation.', 'page', 'ok', 0) RETURNING id"
        ).scalar()
        run(
            "INSERT INTO articles (feed_id, title, authors, text, content_source, status, "
            f"attempts) VALUES ({feed}, 'Studio closed', '[]', 'Closed for repairs.', 'feed', "
            "'ok', 0)"
        )
        for n in range(1, 13):
            key = entry_key(f"tidewater-hour-episode-{n:03d}", None, None, None)
            run(
                "INSERT INTO entries (feed_id, entry_key, article_id) "
                f"VALUES ({feed}, '{key}', {show})"
            )
    store.close()
    return {"articles": 2, "entries": 12, "show": show}


def test_an_archive_that_merged_shared_links_is_migrated_and_then_told_apart(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    before = build_old_archive(archive, newsroom)
    old_rows = sql(archive, "SELECT id, url_key, title, text, status FROM articles ORDER BY id")
    ingest = cli(tmp_path, newsroom, archive, "Tidewater")

    upgraded = ingest("db", "upgrade")
    kept = sql(archive, "SELECT id, url_key, title, text, status FROM articles ORDER BY id")
    ingest("fetch")
    records = ingest.jsonl("export")

    assert f"to {SCHEMA_REVISION}" in upgraded.stdout
    assert kept == old_rows  # every row as it was
    assert sql(archive, "SELECT count(*) FROM entries") == [(before["entries"],)]
    # The validators went with the upgrade: the feed was read whole, its episodes told apart.
    assert newsroom.requests_for(FEEDS["Tidewater"])[0].status == 200
    assert len(records) == before["articles"] + 12
    assert [r["title"] for r in records[:2]] == ["The Tidewater Hour", "Studio closed"]
    episodes = [r for r in records if r["guid"]]
    assert len({r["title"] for r in episodes}) == 12
    assert sql(archive, "SELECT count(*), count(DISTINCT article_id) FROM entries") == [(12, 12)]
    assert sql(archive, f"SELECT count(*) FROM entries WHERE article_id = {before['show']}") == [
        (0,)
    ]
    assert newsroom.requests_for(SHOW) == []


def test_the_shared_key_index_keeps_one_article_per_link_and_guid(archive: str) -> None:
    Store.open(archive).close()
    insert = (
        "INSERT INTO articles (feed_id, shared_key, guid, authors, content_source, status, "
        "attempts) VALUES (1, 'https://show.example/', 'ep-1', '[]', 'feed', 'ok', 0)"
    )
    engine = open_engine(archive, create=False)  # SQLite: with the function the triggers call
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO feeds (id, url, error_count, active) VALUES (1, 'https://f/', 0, true)"
            )
            conn.exec_driver_sql(insert)
            conn.exec_driver_sql(insert.replace("ep-1", "ep-2"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(insert)
    finally:
        engine.dispose()
