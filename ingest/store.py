"""The archive database: `Store`, opened on SQLite or PostgreSQL, its schema kept by the
migrations in ``ingest/migrations``, its operations composed from one module per part.

`Store` is `Database` (`ingest.dbsession`: the engine, sessions, lease owner) with the parts
that run on it: `FeedState` (the feeds table), `Claims` (leases on feeds and pages),
`Versioning` (re-checks and versions, on `Claims`' leases), `HostTurns` (hosts shared by
workers), `Archiving` (entries, articles, failures; on `CaptureStore`: raw captures, each body
once, read back by `capture_body`) and `Reads` (the read side). Every method runs its own
transaction.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ingest.archiving import Archiving, Save
from ingest.browse import Browse
from ingest.dbsession import open_engine, store_error
from ingest.errors import StoreError
from ingest.feedstate import FeedState
from ingest.hostturns import HostTurns
from ingest.reads import Reads
from ingest.versioning import Versioning

__all__ = ["MIGRATIONS", "SCHEMA_REVISION", "Save", "Store"]

# The migration this code was written for (the head of ingest/migrations/versions).
SCHEMA_REVISION = "0018"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x696E6765  # PostgreSQL advisory lock key held while the schema is created


class Store(FeedState, Versioning, HostTurns, Archiving, Reads, Browse):
    """The archive database. Open with `Store.open`; every method runs its own transaction.

    Several processes may share one archive: work (a feed's poll, an article's page) is
    claimed with a lease held by `owner` for `lease`; a crashed worker's leases run out and its
    work returns to the others.
    """

    @classmethod
    def open(
        cls, url: str, *, create: bool = True, migrate: bool = True, read_only: bool = False
    ) -> Store:
        """Open the archive at ``url``: with ``create``, a missing one is created; with
        ``migrate``, one whose schema is out of date is refused (see `upgrade`); with
        ``read_only``, nothing is written (`open_engine`), and a missing or empty archive is
        refused rather than created."""
        engine = open_engine(url, create=create and not read_only, read_only=read_only)
        store = cls(engine)
        # As given (a read-only SQLite engine's own URL names no file), password hidden.
        store.url = repr(sa.make_url(url))
        try:
            if migrate:
                store._migrate(create=create)
        except StoreError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise _cannot_open(exc, store.url) from exc
        return store

    def revision(self) -> str | None:
        """The archive's schema revision; None for an empty database."""
        try:
            with self.engine.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names())
                if "alembic_version" in tables:
                    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except SQLAlchemyError as exc:  # not a database at all, or not one we can read
            raise _cannot_open(exc, self.url) from exc
        if tables:
            raise StoreError("database: not an ingest archive (unknown tables, no revision)")
        return None

    def upgrade(self, to: str = "head") -> tuple[str | None, str]:
        """Apply the pending migrations up to ``to`` (every one: ``head``; an older revision
        builds an archive as older code made it, for tests and benchmarks); returns
        (revision before, revision after)."""
        from alembic import command
        from alembic.config import Config

        before = self.revision()
        try:
            with self.engine.begin() as conn:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, to)
        except SQLAlchemyError as exc:
            raise store_error(exc, f"database: cannot upgrade {self.url}") from exc
        return before, self.revision() or ""

    def merge_search_index(self, *, pages: int = 2000) -> int:
        """SQLite: merge the full-text index's segments into one; returns the steps that
        merged something.

        FTS5 adds a segment per transaction and merges them by levels, so a grown archive
        keeps a few dozen: a common word's matches are then read from each one and merged,
        and BM25 counts them on every search that has the word (most of a common+rare
        search's time on a million articles: 46 ms, 19-30 ms from one segment). Each step
        (about ``pages`` pages of 4 KB) is its own transaction: a running fetch waits for one
        step at most. PostgreSQL: nothing to merge (0).
        """
        if self.postgres:
            return 0
        steps = 0
        with self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            while True:
                before = dbapi.total_changes
                with conn.begin():
                    conn.exec_driver_sql(
                        "INSERT INTO articles_fts(articles_fts, rank) VALUES ('merge', ?)",
                        (-pages,),
                    )
                # FTS5's documented test: fewer than two changes means nothing was left to do.
                if dbapi.total_changes - before < 2:
                    return steps
                steps += 1

    def _migrate(self, *, create: bool) -> None:
        """Create a new archive; refuse one whose schema is not the one this code knows."""
        if not self.postgres:
            self._check_schema(create=create)  # SQLite's write lock serialises creation
            return
        # Workers starting together on an empty database: one creates the schema, the others
        # wait for it and then find it done.
        with self.engine.connect() as lock:
            lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            try:
                self._check_schema(create=create)
            finally:
                lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")

    def _check_schema(self, *, create: bool) -> None:
        current = self.revision()
        if current == SCHEMA_REVISION:
            return
        if current is None:
            if not create:
                raise StoreError("database: empty, no archive in it yet; run `ingest fetch` first")
            self.upgrade()
            return
        if current is not None and current < SCHEMA_REVISION:
            raise StoreError(
                f"database: the archive's schema is at revision {current}, this ingest needs "
                f"{SCHEMA_REVISION}: run `ingest db upgrade` (it keeps every article)"
            )
        raise StoreError(
            f"database: schema revision {current} is unknown to this ingest "
            f"(made by a newer version?): upgrade ingest"
        )


def _cannot_open(exc: SQLAlchemyError, url: str) -> StoreError:
    """A database that cannot be opened (not one, unreadable, unreachable), and what to check."""
    error = store_error(exc, f"database: cannot open {url}")
    return type(error)(
        f"{error} (check the archive's URL: --database, database.url or INGEST_DATABASE_URL)"
    )
