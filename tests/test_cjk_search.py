"""Chinese and Japanese are found by any word of a run (`ingest.cjk`), on both backends, and
archives indexed before revision 0009 are indexed again by the upgrade."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.cjk import index_text, query_words
from ingest.config import FeedSettings
from ingest.entryparts import entry_key
from ingest.querytext import fts5_query
from ingest.records import ExtractedArticle, FeedEntry, Page
from ingest.search import SNIPPET_CLOSE, SNIPPET_OPEN, Filters, SearchHit
from ingest.store import Store
from tests.conftest import postgres_schema

FEED = FeedSettings(url="https://news.example.jp/rss", name="Shinbun")
JAPANESE = ("桜の便り", "今日は東京都心で桜が満開になり、多くの人が花見を楽しんだ。")
CHINESE = ("图书馆新闻", "北京大学图书馆今天重新开放，学生们排队入馆。")
LATIN = ("Harbour news", "The Tokyo ferry leaves at noon; a sauna opens downtown.")
MIXED = ("銭湯の新しい客", "若い利用客はサウナ(sauna)目当てに来る。")


def entry(title: str, text: str, language: str) -> FeedEntry:
    return FeedEntry(
        key=entry_key(None, None, title, None),
        guid=None,
        link=None,
        title=title,
        summary=None,
        content=text,
        authors=(),
        published=None,
        language=language,
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    archive = Store.open(database_url)
    (feed,) = archive.sync_feeds([FEED])
    archive.record_entries(
        feed,
        [entry(*JAPANESE, "ja"), entry(*CHINESE, "zh"), entry(*LATIN, "en"), entry(*MIXED, "ja")],
    )
    yield archive
    archive.close()


def titles(hits: list[SearchHit]) -> list[str]:
    return sorted(h.article.title or "" for h in hits)


def test_runs_are_indexed_as_bigrams_and_their_last_character() -> None:
    assert index_text("東京都心") == " 東京 京都 都心 心 "
    assert index_text("iPhone発売、") == "iPhone 発売 売 、"
    assert index_text("no CJK here") == "no CJK here"
    assert index_text(None) is None


@pytest.mark.parametrize(
    ("term", "words"),
    [
        ("東京都", ("東京 京都", False)),  # may go on in the article: bigrams only
        ("京", ("京", True)),  # a lone character: a prefix
        ("新iPhone", ("新 iPhone", False)),  # the run ends in the term: its last character too
        ("iPhone新", ("iPhone 新", True)),
        ("COVID-19", ("COVID-19", False)),
    ],
)
def test_query_terms_are_searched_as_indexed(term: str, words: tuple[str, bool]) -> None:
    assert query_words(term) == words


def test_latin_queries_are_unchanged() -> None:
    assert fts5_query('keeper* OR "climate summit" -war') == (
        '("keeper"* OR "climate summit") NOT ("war")'
    )
    assert fts5_query("東京都 心") == '"東京 京都" "心"*'


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("東京", [JAPANESE[0]]),  # two characters inside a run
        ("京都心", [JAPANESE[0]]),  # three
        ("満", [JAPANESE[0]]),  # one
        ("大学", [CHINESE[0]]),
        ("图书馆", [CHINESE[0], CHINESE[0]]),  # title and text: one hit
        ("馆", [CHINESE[0]]),
        ("京", sorted([JAPANESE[0], CHINESE[0]])),
        ("京東", []),  # the characters, not in this order
        ("東京 花見", [JAPANESE[0]]),
        ("東京 -桜", []),
        ("title:桜", [JAPANESE[0]]),
        ("tokyo", [LATIN[0]]),
        ("sauna", sorted([LATIN[0], MIXED[0]])),
    ],
)
def test_cjk_is_found_inside_a_run(store: Store, query: str, found: list[str]) -> None:
    assert titles(store.search(query, Filters())) == sorted(set(found))


def test_a_cjk_hit_has_a_snippet_of_its_own_text_with_the_match_marked(store: Store) -> None:
    (hit,) = store.search("京都心", Filters())
    marked = f"{SNIPPET_OPEN}京都心{SNIPPET_CLOSE}"
    assert hit.snippet == f"今日は東{marked}で桜が満開になり、多くの人が花見を楽しんだ。"
    (hit,) = store.search("馆", Filters())
    marked = f"{SNIPPET_OPEN}馆{SNIPPET_CLOSE}"
    assert hit.snippet == f"北京大学图书{marked}今天重新开放，学生们排队入{marked}。"
    hits = {h.article.title: h.snippet for h in store.search("sauna", Filters())}
    assert f"サウナ({SNIPPET_OPEN}sauna{SNIPPET_CLOSE})目当て" in hits[MIXED[0]]
    assert f"a {SNIPPET_OPEN}sauna{SNIPPET_CLOSE} opens" in hits[LATIN[0]]


def test_a_long_cjk_text_is_cut_around_the_match(store: Store) -> None:
    (feed,) = store.sync_feeds([FEED])
    store.record_entries(
        feed, [entry("長い記事", "前置き。" * 60 + "港区の祭り。" + "後書き。" * 60, "ja")]
    )
    (hit,) = store.search("祭", Filters())
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert f"港区の{SNIPPET_OPEN}祭{SNIPPET_CLOSE}り" in hit.snippet
    assert len(hit.snippet) < 110


def test_cjk_index_follows_text_updates(store: Store) -> None:
    (feed,) = store.sync_feeds([FEED])
    (job,) = store.record_entries(
        feed,
        [
            FeedEntry(
                key="k",
                guid=None,
                link="https://news.example.jp/a",
                title="大阪",
                summary=None,
                content="大阪城公園の紅葉",
                authors=(),
                published=None,
                language="ja",
            )
        ],
    ).jobs
    assert titles(store.search("城公園", Filters())) == ["大阪"]
    store.save_article(job, ExtractedArticle(text="道頓堀で新しい橋が完成した。"), page(job.url))
    assert store.search("城公園", Filters()) == []
    assert store.search("紅", Filters()) == []
    assert titles(store.search("頓堀", Filters())) == ["大阪"]


def page(url: str) -> Page:
    return Page(
        url=url,
        final_url=url,
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        body=b"<html>page</html>",
        fetched_at=datetime(2025, 3, 4, tzinfo=UTC),
    )


# --- the upgrade ---------------------------------------------------------------------------------


def migrate(url: str, revision: str) -> None:
    store = Store.open(url, migrate=False)
    store.upgrade(revision)
    store.close()


def upgraded_archive_finds_cjk(url: str) -> None:
    migrate(url, "0008")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO feeds (url, error_count, active) VALUES ('f', 0, true)"))
        for n, (title, text) in enumerate([JAPANESE, CHINESE, LATIN]):
            conn.execute(
                sa.text(
                    "INSERT INTO articles (feed_id, title, text, authors, content_source, "
                    "status, attempts, language) VALUES (1, :title, :text, '[]', 'feed', 'ok', "
                    "0, :language)"
                ),
                {"title": title, "text": text, "language": ["ja", "zh", "en"][n]},
            )

    # A run was one word: asked of the index itself (the code's model holds columns added
    # since, which an archive at 0008 lacks).
    def found(word: str) -> int:
        sql = (
            f"SELECT count(*) FROM articles WHERE search @@ "
            f"plainto_tsquery(ingest_ts_config(language), '{word}')"
            if engine.dialect.name == "postgresql"
            else f"SELECT count(*) FROM articles_fts WHERE articles_fts MATCH '\"{word}\"'"
        )
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())

    assert (found("東京"), found("ferry")) == (0, 1)
    migrate(url, "head")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM articles")).scalar() == 3
    engine.dispose()
    store = Store.open(url)
    assert titles(store.search("東京", Filters())) == [JAPANESE[0]]
    assert titles(store.search("图书馆", Filters())) == [CHINESE[0]]
    assert titles(store.search("ferry", Filters())) == [LATIN[0]]
    assert titles(store.search("花", Filters())) == [JAPANESE[0]]
    store.close()


def test_upgrade_indexes_existing_sqlite_archives_again(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgraded_archive_finds_cjk(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:  # the triggers keep the index in step from now on
        db.create_function("ingest_cjk", 1, index_text)
        db.execute("DELETE FROM articles WHERE title = ?", (JAPANESE[0],))
    store = Store.open(f"sqlite:///{path}")
    assert store.search("東京", Filters()) == []
    store.close()


def test_upgrade_indexes_existing_postgres_archives_again() -> None:
    with postgres_schema() as url:
        upgraded_archive_finds_cjk(url)
