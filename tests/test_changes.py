"""The change sequence (migration 0008) and the read-only store, on SQLite and PostgreSQL:
a stored or changed article moves to the end of `Store.changes`, work on it that is not part
of its record (leases, attempts) does not, an archive upgraded from 0007 keeps every row in
the sequence, and a store opened read-only refuses every write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ingest.config import FeedSettings
from ingest.errors import StoreError
from ingest.search import Filters
from ingest.store import SCHEMA_REVISION, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    with opened.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('http://f/', 0, true)"
        )
    yield opened
    opened.close()


def add(store: Store, title: str) -> int:
    with store.engine.begin() as conn:
        return int(
            conn.exec_driver_sql(
                "INSERT INTO articles (feed_id, title, authors, content_source, status, attempts) "
                f"VALUES (1, '{title}', '[]', 'feed', 'pending', 0) RETURNING id"
            ).scalar_one()
        )


def run(store: Store, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(sql)


def order(store: Store) -> list[int]:
    return [article.id for article, _, _ in store.changes(Filters(), after=None, limit=100)]


def test_a_changed_record_moves_to_the_end_and_other_work_does_not(store: Store) -> None:
    first, second, third = add(store, "one"), add(store, "two"), add(store, "three")
    assert order(store) == [first, second, third]

    run(store, f"UPDATE articles SET status = 'ok', text = 'body' WHERE id = {first}")
    assert order(store) == [second, third, first]
    run(store, f"UPDATE articles SET lease_owner = 'w', attempts = 3 WHERE id = {second}")
    run(store, f"UPDATE articles SET title = 'three' WHERE id = {third}")  # the same value
    assert order(store) == [second, third, first]

    (_, _, key), *_ = store.changes(Filters(), after=None, limit=1)
    rest = store.changes(Filters(), after=key, limit=100)
    assert [a.id for a, _, _ in rest] == [third, first]
    assert store.changes(Filters(), after=rest[-1][2], limit=100) == []


def test_an_archive_upgraded_from_0007_keeps_every_article_in_the_sequence(
    database_url: str,
) -> None:
    old = Store.open(database_url, migrate=False)
    old.upgrade("0007")
    with old.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('http://f/', 0, true)"
        )
        for title in ("old one", "old two"):
            conn.exec_driver_sql(
                "INSERT INTO articles (feed_id, title, authors, content_source, status, attempts) "
                f"VALUES (1, '{title}', '[]', 'feed', 'ok', 0)"
            )
    assert old.upgrade() == ("0007", SCHEMA_REVISION)
    old.close()
    store = Store.open(database_url)
    new = add(store, "new")
    assert [a.title for a, _, _ in store.changes(Filters(), after=None, limit=10)] == [
        "old one",
        "old two",
        "new",
    ]
    assert order(store)[-1] == new
    store.close()


def test_a_read_only_store_reads_and_refuses_every_write(store: Store, database_url: str) -> None:
    add(store, "kept")
    reader = Store.open(database_url, create=False, read_only=True)
    try:
        assert [a.title for a, _ in reader.iter_articles(Filters())] == ["kept"]
        with pytest.raises(StoreError), reader._session() as session:
            session.execute(sa.text("UPDATE articles SET title = 'changed'"))
            session.commit()
        with pytest.raises(StoreError):
            reader.sync_feeds([FeedSettings(url="http://new.example/feed")])
    finally:
        reader.close()
    assert [a.title for a, _ in store.iter_articles(Filters())] == ["kept"]
