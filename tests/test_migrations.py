"""The archive schema evolves through migrations only, and never loses data on the way."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from ingest.errors import StoreError
from ingest.store import MIGRATIONS, SCHEMA_REVISION, Store
from tests.conftest import Ingest


def migrate_to(path: Path, revision: str) -> None:
    store = Store.open(f"sqlite:///{path}", migrate=False)
    store.upgrade(revision)
    store.close()


def test_code_revision_is_the_migrations_head() -> None:
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    store.close()
    # The FTS5 index is created by hand (SQLAlchemy does not model virtual tables).
    assert [d for d in diff if "articles_fts" not in str(d)] == []


def test_out_of_date_archive_is_refused_then_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    migrate_to(path, "0001")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO feeds (url, error_count) VALUES ('https://example.org/feed', 0)")
        db.execute(
            "INSERT INTO articles (feed_id, title, text, authors, content_source, status, "
            "attempts) VALUES (1, 'Kept', 'kept text', '[]', 'feed', 'ok', 0)"
        )

    with pytest.raises(StoreError, match="ingest db upgrade"):
        Store.open(f"sqlite:///{path}")
    cli = Ingest(tmp_path)
    refused = cli("--database", f"sqlite:///{path}", "search", "kept", check=False)
    upgraded = cli("--database", f"sqlite:///{path}", "db", "upgrade")
    again = cli("--database", f"sqlite:///{path}", "db", "upgrade")

    assert refused.returncode == 1
    assert "run `ingest db upgrade`" in refused.stderr
    assert f"from revision 0001 to {SCHEMA_REVISION}" in upgraded.stdout
    assert "already at revision" in again.stdout
    hits = cli.json("--database", f"sqlite:///{path}", "search", "kept", "--format", "json")
    assert [h["title"] for h in hits] == ["Kept"]


def test_archive_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")

    with pytest.raises(StoreError, match="unknown to this ingest"):
        Store.open(f"sqlite:///{path}")


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")

    with pytest.raises(StoreError, match="not an ingest archive"):
        Store.open(f"sqlite:///{path}")


def test_upgrade_to_enclosures_keeps_every_article_with_none(database_url: str) -> None:
    store = Store.open(database_url, migrate=False)
    store.upgrade("0009")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('https://example.org/f', 0, true)"
        )
        conn.exec_driver_sql(
            "INSERT INTO articles (feed_id, url, title, text, authors, content_source, status, "
            "attempts) VALUES (1, 'https://example.org/a', 'Kept', 'kept text', '[\"A. B.\"]', "
            "'feed', 'ok', 0)"
        )
    before, after = store.upgrade()
    article, feed_url = store.article("https://example.org/a")
    store.close()

    assert (before, after) == ("0009", SCHEMA_REVISION)
    assert (article.title, article.text, article.authors) == ("Kept", "kept text", ["A. B."])
    assert article.enclosures == []
    assert feed_url == "https://example.org/f"


def test_upgrade_to_extractor_keeps_every_article_unknown_and_counts_it_as_a_change(
    database_url: str,
) -> None:
    store = Store.open(database_url, migrate=False)
    store.upgrade("0013")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('https://example.org/f', 0, true)"
        )
        conn.exec_driver_sql(
            "INSERT INTO articles (feed_id, url, title, text, authors, content_source, status, "
            "attempts) VALUES (1, 'https://example.org/a', 'Kept', 'kept text', '[]', 'page', "
            "'ok', 0)"
        )
    before, after = store.upgrade()
    article, _ = store.article("https://example.org/a")
    assert article.id is not None
    store.replace_extraction([], extractor="ingest-9+trafilatura-9", unchanged=[article.id])
    made, _ = store.article("https://example.org/a")
    store.close()

    assert (before, after) == ("0013", SCHEMA_REVISION)
    assert (article.title, article.text, article.extractor) == ("Kept", "kept text", None)
    assert made.extractor == "ingest-9+trafilatura-9" and made.text == "kept text"
    # A mirror hears of it: the extractor is part of the record.
    assert (made.change_seq or 0) != (article.change_seq or 0)
