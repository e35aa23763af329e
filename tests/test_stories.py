"""Wire copies: one story published by several outlets is one story in the archive.

The fixture pages (``tests/fixtures/wire``) are one wire story on three sites, each with its
own page around it, a tweaked headline and a different ending; a story of the same storm by
one of those sites (it quotes the wire story's hydrologist word for word); and a brief too short
to tell. Each outlet has a feed of its own; the real `ingest fetch` archives them, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.store import Store
from ingest.stories import BANDS, MIN_WORDS, fingerprint, similarity, words
from tests.conftest import Ingest, postgres_schema, write_config
from tests.newsroom import FIXTURES_DIR, Newsroom

WIRE = FIXTURES_DIR / "wire"
# Each outlet's feed and the pages it lists, in the order they are fetched.
OUTLETS = {
    "ledger": ["ledger-storm", "ledger-crews"],
    "tribune": ["tribune-brief", "tribune-storm"],
    "kxyz": ["kxyz-storm"],
}
COPIES = ("ledger-storm", "tribune-storm", "kxyz-storm")


def page_text(name: str) -> str:
    from ingest.extract import extract_article

    return extract_article((WIRE / f"{name}.html").read_text(encoding="utf-8"), "http://x/").text


# The fingerprint


def test_a_text_too_short_to_tell_has_no_fingerprint() -> None:
    assert fingerprint(None) is None
    assert fingerprint("") is None
    assert fingerprint("   \n\n ") is None
    assert fingerprint(page_text("tribune-brief")) is None  # 21 words
    assert fingerprint(" ".join(["word"] * (MIN_WORDS - 1))) is None
    assert fingerprint(" ".join(f"w{i}" for i in range(MIN_WORDS))) is not None


def test_copies_are_similar_and_another_story_is_not() -> None:
    ledger, tribune, kxyz, crews = (
        fingerprint(page_text(name)) for name in (*COPIES, "ledger-crews")
    )
    assert ledger and tribune and kxyz and crews

    assert similarity(ledger, ledger) == 1.0
    for a, b in ((ledger, tribune), (ledger, kxyz), (tribune, kxyz)):
        assert similarity(a, b) > 0.6
    for copy in (ledger, tribune, kxyz):
        assert similarity(copy, crews) < 0.15  # one quote shared, nothing else


def test_the_fingerprint_is_stable_and_round_trips_the_archive() -> None:
    text = page_text("ledger-storm")
    made = fingerprint(text)
    assert made is not None
    assert made == fingerprint(text.upper())  # case does not count
    restored = type(made).from_bytes(made.to_bytes(), made.shingles)
    assert restored == made
    keys = made.bands
    assert len(keys) == len(set(keys)) == BANDS
    assert all(0 <= key < 2**63 for key in keys)  # a signed 64-bit column takes each


def test_chinese_and_japanese_are_fingerprinted_a_character_a_word() -> None:
    japanese = (
        "東京都墨田区で十一日午後、大雨の影響により隅田川の水位が上昇し、周辺の住民およそ二千人に"
        "避難指示が出された。気象庁によると、関東地方では今夜にかけて激しい雨が降る見込みで、"
        "土砂災害や河川の氾濫に警戒するよう呼びかけている。"
    )
    other = (
        "大阪市の中央公会堂で十二日、新しい図書館の設計案が公開され、市民らが模型を見学した。"
        "完成は三年後の予定で、蔵書はおよそ四十万冊になるという。市の担当者は幅広い世代に使って"
        "ほしいと話している。"
    )
    assert words("東京都 Tokyo") == ["東", "京", "都", "tokyo"]
    first, copy, different = (
        fingerprint(t) for t in (japanese, "【速報】" + japanese[:-10], other)
    )
    assert first and copy and different
    assert similarity(first, copy) > 0.6
    assert similarity(first, different) < 0.1


def test_accents_and_other_scripts_are_words() -> None:
    greek = "Η καταιγίδα άφησε χωρίς ρεύμα διακόσιες χιλιάδες νοικοκυριά στις ακτές. " * 6
    made = fingerprint(greek)
    assert words("Ça déménage à Zürich") == ["ça", "déménage", "à", "zürich"]
    assert made is not None and made.shingles > 0


# Through the real CLI


def rss(newsroom: Newsroom, outlet: str, pages: list[str]) -> str:
    items = "".join(
        f"<item><title>{name}</title><link>{newsroom.url(f'/{outlet}/{name}')}</link>"
        f"<guid>{outlet}-{name}</guid></item>"
        for name in pages
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{outlet}</title>'
        f"<link>{newsroom.url('/' + outlet)}</link>{items}</channel></rss>"
    )


def serve_outlets(newsroom: Newsroom) -> list[str]:
    """Each outlet's pages and feed; the feeds' URLs."""
    feeds = []
    for outlet, pages in OUTLETS.items():
        for name in pages:
            body = (WIRE / f"{name}.html").read_text(encoding="utf-8")
            newsroom.set(f"/{outlet}/{name}", body, headers={"Content-Type": "text/html"})
        newsroom.set(
            f"/{outlet}/feed.rss",
            rss(newsroom, outlet, pages),
            headers={"Content-Type": "application/rss+xml"},
        )
        feeds.append(newsroom.url(f"/{outlet}/feed.rss"))
    return feeds


@dataclass
class Wire:
    """One archive of the outlets' pages for the module's read-only tests (a backend each)."""

    cli: Ingest
    newsroom: Newsroom
    pages: dict[str, dict]  # each page's record as `ingest show --format json` gives it


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def wire(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Wire]:
    directory = tmp_path_factory.mktemp(f"wire-{request.param}")
    with contextlib.ExitStack() as stack:
        newsroom = stack.enter_context(Newsroom())
        if request.param == "sqlite":
            database = f"sqlite:///{directory / 'archive.sqlite3'}"
        else:
            database = stack.enter_context(postgres_schema())
        config = write_config(directory / "ingest.toml", newsroom, (), database=database)
        cli = Ingest(directory, config)
        for feed in serve_outlets(newsroom):  # one outlet after the other: arrival order known
            cli("fetch", "--feed", feed)
        pages = {
            name: cli.json("show", newsroom.url(f"/{outlet}/{name}"), "--format", "json")
            for outlet, names in OUTLETS.items()
            for name in names
        }
        yield Wire(cli, newsroom, pages)


def test_copies_on_three_sites_are_one_story_and_nothing_else_joins_it(wire: Wire) -> None:
    wire_cli, newsroom, pages = wire.cli, wire.newsroom, wire.pages
    first = pages["ledger-storm"]

    assert {pages[name]["story_id"] for name in COPIES} == {first["id"]}  # the first stored
    assert pages["ledger-crews"]["story_id"] == pages["ledger-crews"]["id"]  # a story alone
    assert pages["tribune-brief"]["story_id"] is None  # too short to tell
    copies = {c["id"]: c for c in pages["tribune-storm"]["copies"]}
    assert set(copies) == {first["id"], pages["kxyz-storm"]["id"]}
    assert copies[first["id"]] == {
        "id": first["id"],
        "site_name": "The Harbor Ledger",
        "feed_url": newsroom.url("/ledger/feed.rss"),
        "title": "Gulf Coast storm leaves 200,000 without power as floodwaters rise",
        "url": newsroom.url("/ledger/2025/03/11/gulf-coast-storm-power"),  # canonical
        "published": "2025-03-11T14:05:00Z",
    }
    assert pages["ledger-crews"]["copies"] == []
    assert pages["tribune-brief"]["copies"] == []
    exported = {r["id"]: r["story_id"] for r in wire_cli.jsonl("export")}
    assert exported == {p["id"]: p["story_id"] for p in pages.values()}


def test_show_lists_an_articles_copies(wire: Wire) -> None:
    wire_cli, newsroom, pages = wire.cli, wire.newsroom, wire.pages
    shown = wire_cli("show", str(pages["kxyz-storm"]["id"])).stdout
    header = shown.split("\n\n")[1]  # after the title, before the text

    assert "Copies:    2, the same story elsewhere:" in header
    for name, site in (("ledger-storm", "The Harbor Ledger"), ("tribune-storm", "Metro Tribune")):
        page = pages[name]
        assert f"{page['id']:>6}  {site}  {page['title']}" in header
    assert newsroom.url("/tribune/tribune-storm") in header
    alone = wire_cli("show", str(pages["ledger-crews"]["id"])).stdout
    assert "Copies:" not in alone


def test_search_collapse_shows_one_article_a_story(wire: Wire) -> None:
    wire_cli, newsroom, pages = wire.cli, wire.newsroom, wire.pages
    query = ("search", "Okafor hydrologist", "--format", "json")
    every = wire_cli.json(*query)
    collapsed = wire_cli.json(*query, "--collapse")
    table = wire_cli("search", "Okafor hydrologist", "--collapse").stdout

    assert {h["id"] for h in every} == {pages[n]["id"] for n in (*COPIES, "ledger-crews")}
    assert "copies" not in every[0]
    assert {h["id"]: h["copies"] for h in collapsed} == {
        pages["ledger-storm"]["id"]: 2,  # the earliest published of the three
        pages["ledger-crews"]["id"]: 0,
    }
    assert "(+2" in table  # after the title, which the table folds
    one_feed = wire_cli.json(*query, "--collapse", "--feed", newsroom.url("/kxyz/feed.rss"))
    assert [(h["id"], h["copies"]) for h in one_feed] == [(pages["kxyz-storm"]["id"], 0)]


def test_a_bad_search_is_refused_collapsed_too(wire: Wire) -> None:
    refused = wire.cli("search", "--collapse", "--", "-storm", check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("ingest: error:")


# Articles archived before stories


def test_articles_archived_before_are_linked_by_db_stories(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    store = Store.open(f"sqlite:///{path}", migrate=False)
    store.upgrade("0013")
    store.close()
    texts = [page_text(name) for name in (*COPIES, "ledger-crews", "tribune-brief")]
    with sqlite3.connect(path) as db:
        from ingest.cjk import register

        register(db)  # the search index's triggers call it
        db.execute("INSERT INTO feeds (url, error_count, active) VALUES ('https://e.org/f', 0, 1)")
        db.executemany(
            "INSERT INTO articles (feed_id, url_key, text, authors, content_source, status, "
            "attempts) VALUES (1, ?, ?, '[]', 'page', 'ok', 0)",
            [(f"https://e.org/{i}", text) for i, text in enumerate(texts)],
        )
        db.execute(
            "INSERT INTO articles (feed_id, url_key, authors, content_source, status, attempts) "
            "VALUES (1, 'https://e.org/pending', '[]', 'feed', 'pending', 0)"
        )
    cli = Ingest(tmp_path)
    database = ("--database", f"sqlite:///{path}")

    refused = cli(*database, "db", "stories", check=False)
    assert refused.returncode == 1 and "ingest db upgrade" in refused.stderr
    cli(*database, "db", "upgrade")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM articles WHERE story_id IS NULL").fetchone() == (6,)
        before = db.execute("SELECT max(change_seq) FROM articles").fetchone()[0]
    linked = cli(*database, "db", "stories", "--batch-size", "2").stdout
    again = cli(*database, "db", "stories").stdout

    assert "Linked 5 articles: 2 copies of a story seen before, 1 too short to tell." in linked
    assert "Linked 1 article: 0 copies" in again  # the brief is read again, and stays alone
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, story_id, change_seq FROM articles ORDER BY id").fetchall()
        assert db.execute("SELECT count(*) FROM story_fingerprints").fetchone() == (4,)
        assert db.execute("SELECT count(*) FROM story_bands").fetchone() == (4 * BANDS,)
    assert [story for _, story, _ in rows] == [1, 1, 1, 4, None, None]
    # A mirror hears of each article given a story.
    assert all(seq > before for _, story, seq in rows if story is not None)


def test_a_reextracted_article_keeps_its_story_and_gets_new_keys(database_url: str) -> None:
    from ingest.records import ExtractedArticle

    store = Store.open(database_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('https://e.org/f', 0, true)"
        )
        for i, name in enumerate(COPIES):
            conn.exec_driver_sql(
                "INSERT INTO articles (feed_id, url_key, text, authors, content_source, status, "
                f"attempts) VALUES (1, 'https://e.org/{i}', %s, '[]', 'page', 'ok', 0)"
                if store.postgres
                else "INSERT INTO articles (feed_id, url_key, text, authors, content_source, "
                f"status, attempts) VALUES (1, 'https://e.org/{i}', ?, '[]', 'page', 'ok', 0)",
                (page_text(name),),
            )
    list(store.link_stories())
    new_text = ExtractedArticle(text=page_text("ledger-crews"))
    store.replace_extraction([(2, new_text)], extractor="ingest-test")
    with store.engine.connect() as conn:
        stories = conn.exec_driver_sql("SELECT id, story_id FROM articles ORDER BY id").all()
        bands = conn.exec_driver_sql("SELECT count(*) FROM story_bands").scalar()
        mine = conn.exec_driver_sql("SELECT band FROM story_bands WHERE article_id = 2").scalars()
        keys = set(mine)
    new = fingerprint(page_text("ledger-crews"))
    kept = [v.reason for v in store.versions(2)]
    store.close()

    assert [tuple(row) for row in stories] == [(1, 1), (2, 1), (3, 1)]
    assert new is not None and keys == set(new.bands)
    assert bands == 3 * BANDS
    # The text it had is kept as its first version, the new one as the second.
    assert kept == ["first", "reextracted"]
