"""News sitemaps end to end: the real `ingest fetch` against a Google News sitemap index with
gzipped children served by the loopback newsroom, read back with `ingest export` and
`ingest show`, on SQLite and PostgreSQL; re-polls, the ``since`` bound, undated URLs, and
hostile sitemaps that fail cleanly and change nothing stored."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Ingest
from tests.newsroom import SITE_DIR, Newsroom
from tests.test_fetch_e2e import sql

INDEX = "/sitemaps/news-index.xml"
PLAIN = "/sitemaps/plain.xml"
GZIPPED = ("news-1.xml", "news-2.xml", "archive-2019.xml")
PAGES = {
    "/world/danube-grain.html",
    "/news/great-lakes-shipping.html?utm_source=sitemap",
    "/science/observatory-reopens.html",
    "/tech/sodium-batteries.html",
}


@pytest.fixture
def archive(database_url: str) -> str:
    return database_url


@pytest.fixture
def site(newsroom: Newsroom) -> Newsroom:
    """The newsroom with the index's children served gzipped (``.xml.gz``, no
    Content-Encoding: the bytes are gzip, as such files are served)."""
    for name in GZIPPED:
        serve_gzipped(newsroom, name)
    return newsroom


def serve_gzipped(room: Newsroom, name: str) -> None:
    text = (SITE_DIR / "sitemaps" / name).read_text(encoding="utf-8")
    body = gzip.compress(room.rebase(text).encode())
    room.set(f"/sitemaps/{name}.gz", body, headers={"Content-Type": "application/x-gzip"})


def cli(tmp_path: Path, room: Newsroom, archive: str, feeds: str, extra: str = "") -> Ingest:
    config = tmp_path / "sitemaps.toml"
    config.write_text(
        f'[database]\nurl = "{archive}"\n[fetch]\nallow_private_networks = true\n'
        f"host_delay = 0\n{extra}\n{room.rebase(feeds)}\n",
        encoding="utf-8",
    )
    return Ingest(tmp_path, config)


NEWS = """
[[feeds]]
url = "{{BASE}}/sitemaps/news-index.xml"
name = "Gazette"
type = "sitemap"
since = "2025-03-01"
"""


def paths(records: list[dict[str, Any]], room: Newsroom) -> set[str]:
    return {r["url"].removeprefix(room.base_url) for r in records}


def test_a_news_sitemap_index_with_gzipped_children_is_archived(
    tmp_path: Path, site: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, site, archive, NEWS)

    summary = ingest.json("fetch", "--format", "json")
    records = ingest.jsonl("export")

    assert summary["feeds_failed"] == 0, summary["failures"]
    # news-1: two since March (the December story is before `since`); news-2: two more, and
    # the Danube story again (one entry).
    assert summary["entries_new"] == 4
    assert summary["articles_new"] == 4
    assert paths(records, site) == PAGES
    assert all(r["status"] == "ok" and r["content_source"] == "page" for r in records)
    assert not site.requests_for("/sitemaps/archive-2019.xml.gz")  # modified before `since`
    assert not site.requests_for("/news/nbc-style.html")
    lakes = ingest.json("show", site.url("/news/great-lakes-shipping.html"), "--format", "json")
    assert lakes["feed_url"] == site.url(INDEX)
    assert lakes["language"] == "en"
    assert lakes["text"] == site.expected("great-lakes-shipping")["text"]
    (feed,) = ingest.json("feeds", "--format", "json")
    assert (feed["last_status"], feed["title"]) == ("ok", "The Harbour Gazette")


def test_a_repoll_asks_conditionally_and_adds_nothing(
    tmp_path: Path, site: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, site, archive, NEWS)
    ingest("fetch")
    before = ingest.jsonl("export")
    site.clear_log()

    again = ingest.json("fetch", "--format", "json")

    assert again["feeds_not_modified"] == 1
    (request,) = site.requests_for(INDEX)
    assert request.status == 304
    assert not site.requests_for("/sitemaps/news-1.xml.gz")
    # The index changed but its children did not: read again, nothing new.
    site.set(INDEX, headers={"ETag": None, "Last-Modified": None})
    third = ingest.json("fetch", "--format", "json")
    assert (third["entries_new"], third["articles_new"]) == (0, 0)
    assert ingest.jsonl("export") == before


def test_fetch_since_bounds_a_sitemap_not_in_the_config(
    tmp_path: Path, site: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, site, archive, "")

    # No type: a sitemap is told by its content.
    ingest("fetch", "--feed", site.url(INDEX), "--since", "2025-03-13")

    assert paths(ingest.jsonl("export"), site) == {
        "/world/danube-grain.html",
        "/news/great-lakes-shipping.html?utm_source=sitemap",
    }
    bad = ingest("fetch", "--feed", site.url(INDEX), "--since", "last week", check=False)
    assert bad.returncode == 2
    assert "--since" in bad.stderr


def test_undated_urls_a_first_poll_takes_a_few_and_later_polls_only_new_ones(
    tmp_path: Path, newsroom: Newsroom, archive: str
) -> None:
    feeds = f'[[feeds]]\nurl = "{newsroom.url(PLAIN)}"\ntype = "sitemap"\nsince = 2025-03-01\n'
    ingest = cli(tmp_path, newsroom, archive, feeds, extra="[sitemaps]\nfirst_undated = 1")

    ingest("fetch")
    first = paths(ingest.jsonl("export"), newsroom)
    text = (SITE_DIR / "sitemaps" / "plain.xml").read_text(encoding="utf-8")
    grown = text.replace(
        "</urlset>", "  <url><loc>{{BASE}}/news/nbc-style.html</loc></url>\n</urlset>"
    )
    newsroom.set(PLAIN, grown, headers={"Content-Type": "application/xml"})
    second = ingest.json("fetch", "--format", "json")

    assert first == {
        "/world/danube-grain.html",
        "/tech/sodium-batteries.html",
        "/science/observatory-reopens.html",  # the one undated URL the first poll takes
    }
    assert second["entries_new"] == 1  # the URL that appeared; not the one skipped before
    assert paths(ingest.jsonl("export"), newsroom) == first | {"/news/nbc-style.html"}
    assert not newsroom.requests_for("/news/tokyo-sjis.html")
    assert not newsroom.requests_for("/news/legacy-1252.html")  # 2023: before since
    assert len(sql(archive, "SELECT entry_key FROM skipped_urls")) == 1


def many_children(room: Newsroom, count: int) -> bytes:
    entry = f"<sitemap><loc>{room.base_url}/sitemaps/c/%d.xml</loc></sitemap>"
    body = "".join(entry % n for n in range(count))
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>'.encode()


HOSTILE = {  # what the index turns into: the poll's failure reason, and its message
    "self": ("bad_feed", "sitemap refused: the index lists itself or its parent"),
    "entities": ("bad_feed", "sitemap refused: it declares a DTD"),
    "children": ("bad_feed", "sitemap refused: it lists more than 50000 child sitemaps"),
    "huge": ("too_large", "declared"),
    "bomb": ("too_large", "body over 20000000 bytes"),
}


def turn_hostile(site: Newsroom, hostile: str) -> None:
    xml = {"Content-Type": "application/xml"}
    if hostile == "self":
        text = (SITE_DIR / "sitemaps" / "self-index.xml").read_text(encoding="utf-8")
        site.set(INDEX, text.replace("self-index.xml", "news-index.xml"), headers=xml)
    elif hostile == "entities":
        site.set(INDEX, (SITE_DIR / "sitemaps" / "entities.xml").read_bytes(), headers=xml)
    elif hostile == "children":
        site.set(INDEX, many_children(site, 100_000), headers=xml)
    elif hostile == "huge":  # 50 MB, over fetch.max_feed_bytes
        site.set(INDEX, b"<urlset>" + b" " * 50_000_000 + b"</urlset>", headers=xml)
    else:  # a gzipped child that inflates to 50 MB
        bomb = gzip.compress(b"<urlset>" + b" " * 50_000_000 + b"</urlset>")
        site.set(INDEX, headers={"ETag": None, "Last-Modified": None})
        site.set("/sitemaps/news-1.xml.gz", bomb, headers={"Content-Type": "application/x-gzip"})


def test_a_hostile_sitemap_fails_cleanly_and_changes_nothing(
    tmp_path: Path, site: Newsroom, archive: str
) -> None:
    ingest = cli(tmp_path, site, archive, NEWS)
    ingest("fetch")
    before = ingest.jsonl("export")
    told = {}
    for hostile in HOSTILE:  # each in turn on one archive, which none of them may change
        turn_hostile(site, hostile)
        run = ingest("fetch", "--format", "json", check=False)
        summary = json.loads(run.stdout)
        (failure,) = summary["failures"]
        told[hostile] = (run.returncode, failure["kind"], failure["reason"], failure["message"])
        assert ingest.jsonl("export") == before, hostile
        site.unset(INDEX)  # the fixture's index again, and its first child
        serve_gzipped(site, "news-1.xml")

    for hostile, (reason, message) in HOSTILE.items():
        status, kind, said, text = told[hostile]
        assert (hostile, status, kind, said) == (hostile, 1, "feed", reason)
        assert message in text, (hostile, text)
    assert sql(archive, "SELECT count(*) FROM skipped_urls") == [(0,)]
