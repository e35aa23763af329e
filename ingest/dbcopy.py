"""`ingest db copy`: move a whole archive into another database, SQLite <-> PostgreSQL.

Tables go in foreign-key order, each in primary-key order, a batch per transaction, every row
keeping its id so references stay valid; the destination's own triggers build its search index
as rows arrive. Memory stays bounded by the batch, whatever the archive's size.

Resuming: batches commit in key order, so an interrupted copy leaves each table of the
destination holding a prefix of the source's. A second run checks that every row already
there is the source's (same key, same identity: feed URL, article url_key, ...), then carries
on after the destination's largest key. Inserts are insert-if-new, so overlap never duplicates.

The source is read in one read-only snapshot transaction: nothing in it is written, and every
table is read as of one moment. Rows copied by an earlier run are not revisited, so the source
should not be written to between an interrupted run and its resumption.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import SQLModel

import ingest.models  # noqa: F401  (registers the tables in SQLModel.metadata)
from ingest.errors import StoreError, UsageError
from ingest.models import StoryBand, StoryFingerprint
from ingest.store import SCHEMA_REVISION, Store
from ingest.stories import Fingerprint

# Every table of the archive, parents before children (alembic_version is the migrations'),
# but story_bands: its rows are a function of story_fingerprints' (each signature's band
# keys), made again as those are copied, in the same transaction.
TABLES: tuple[sa.Table, ...] = tuple(
    t for t in SQLModel.metadata.sorted_tables if t.name != StoryBand.__tablename__
)
DEFAULT_BATCH = 1000
CHECK_BATCH = 500  # keys per IN (...) when comparing a destination with the source
BLOB_SHARE = 20  # tables with raw bodies (captures, ~35 KB a row) take 1/20 of the batch


class Progress(Protocol):
    def __call__(self, table: str, rows: int, total: int, finished: bool) -> None:
        """``rows`` of ``total`` source rows of ``table`` are in the destination."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    table: str
    source: int  # rows in the source
    destination: int  # rows in the destination after the copy
    copied: int  # rows this run wrote (the others were there from an earlier run)


@dataclass(frozen=True, slots=True)
class CopyResult:
    source: str  # URLs, passwords hidden
    destination: str
    tables: tuple[TableCopy, ...]
    seconds: float

    @property
    def mismatched(self) -> list[TableCopy]:
        return [t for t in self.tables if t.source != t.destination]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "tables": [asdict(t) for t in self.tables],
            "rows_copied": sum(t.copied for t in self.tables),
            "counts_match": not self.mismatched,
            "seconds": round(self.seconds, 3),
        }


def destination_url(value: str) -> str:
    """``--to`` as given: a database URL, or the path of an SQLite file."""
    if "://" not in value:
        if not value.strip():
            raise UsageError("--to: empty; give a database URL or an SQLite file path")
        return f"sqlite:///{Path(value).expanduser().absolute()}"
    try:
        url = sa.make_url(value)
    except (ArgumentError, ValueError) as exc:
        raise UsageError(f"--to: bad database URL {value!r}") from exc
    if url.drivername == "postgresql":  # psycopg 3 is the PostgreSQL driver ingest ships with
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}:
        raise UsageError(
            f"--to: {url.drivername!r} is not supported; give a sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB URL, or an SQLite file path"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise UsageError(
            "--to: an in-memory SQLite database vanishes with the process; give a file"
        )
    return url.render_as_string(hide_password=False)


def copy_archive(
    source_url: str,
    destination: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy every row of the archive at ``source_url`` into ``destination`` (created or
    brought up to date through the migrations), resuming a copy an earlier run left partial.

    Raises `UsageError` for a bad destination URL, a destination that is the source, or one
    holding another archive; `StoreError` for a source that is missing, out of date or
    unreadable, and for database failures."""
    if batch_size < 1:
        raise UsageError("--batch-size: must be at least 1")
    target = destination_url(destination)
    if _same_database(source_url, target):
        raise UsageError("--to: that is the source archive itself; give another database")
    started = time.monotonic()
    # The source first: an out-of-date or missing one is refused before the destination is
    # touched (Store.open names `ingest db upgrade`).
    source = Store.open(source_url, create=False)
    try:
        dest = Store.open(target, create=True, migrate=False)
        try:
            with _snapshot(source) as reader:
                _prepare(reader, dest)
                tables = tuple(
                    _copy_table(reader, dest, table, batch_size, progress) for table in TABLES
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"copy: {_first_line(exc)}") from exc
        finally:
            dest.close()
    finally:
        source.close()
    return CopyResult(_shown(source_url), _shown(target), tables, time.monotonic() - started)


# --- source ------------------------------------------------------------------------------------


@contextmanager
def _snapshot(store: Store) -> Iterator[Connection]:
    """One read-only transaction on the source for the whole run: nothing can be written
    through it, and every table is read as of the same moment."""
    with store.engine.connect() as conn:
        if store.postgres:
            snapshot = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with snapshot.begin():
                yield snapshot
            return
        # pysqlite opens transactions only for writes; an explicit BEGIN pins a WAL snapshot.
        conn.exec_driver_sql("PRAGMA query_only = ON")
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA query_only = OFF")


# --- destination -------------------------------------------------------------------------------


def _prepare(source: Connection, dest: Store) -> None:
    """Create or upgrade the destination's schema, or refuse it if it holds something else."""
    try:
        revision = dest.revision()
    except StoreError as exc:  # tables that are not an archive's
        raise UsageError(f"--to: {exc}; copy into an empty database") from exc
    except SQLAlchemyError as exc:
        url = dest.engine.url.render_as_string(hide_password=True)
        raise StoreError(f"--to: cannot open {url}: {_first_line(exc)}") from exc
    if revision == SCHEMA_REVISION:
        _check_same_archive(source, dest)
    elif revision is None or (revision < SCHEMA_REVISION and not _holds_rows(dest)):
        dest.upgrade()  # the migrations `ingest fetch` and `ingest db upgrade` run
    else:
        raise UsageError(
            f"--to: the destination holds an archive at schema revision {revision} "
            f"(this ingest writes {SCHEMA_REVISION}); copy into an empty database"
        )


def _holds_rows(dest: Store) -> bool:
    with dest.engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        for table in TABLES:
            if table.name in present:
                query = sa.select(sa.literal(1)).select_from(sa.table(table.name)).limit(1)
                if conn.execute(query).first() is not None:
                    return True
    return False


def _check_same_archive(source: Connection, dest: Store) -> None:
    """Every row the destination holds must be the source's row with the same key: an empty
    destination, or one an earlier run of this copy left partial, passes."""
    for table in TABLES:
        key, columns = _key(table), _identity(table)
        last: Any = None
        with dest.engine.connect() as conn:
            while True:
                query = sa.select(*columns).order_by(key).limit(CHECK_BATCH)
                if last is not None:
                    query = query.where(key > last)
                theirs = conn.execute(query).all()
                if not theirs:
                    break
                keys = [row[0] for row in theirs]
                ours = {
                    row[0]: tuple(row)
                    for row in source.execute(sa.select(*columns).where(key.in_(keys)))
                }
                for row in theirs:
                    if ours.get(row[0]) != tuple(row):
                        raise UsageError(
                            f"--to: the destination holds another archive ({table.name} "
                            f"{key.name} {row[0]!r} differs from the source's, or the source "
                            "changed since an earlier copy); copy into an empty database"
                        )
                last = keys[-1]


def _copy_table(
    source: Connection, dest: Store, table: sa.Table, batch_size: int, progress: Progress | None
) -> TableCopy:
    key = _key(table)
    count = sa.select(sa.func.count()).select_from(table)
    total = source.execute(count).scalar_one()
    with dest.engine.connect() as conn:
        before = conn.execute(count).scalar_one()
        # Integer keys resume after the destination's largest. Others (hosts: a few rows) are
        # passed over again, insert-if-new: string order may differ between the two databases.
        last = conn.execute(sa.select(sa.func.max(key))).scalar() if _integer(key) else None
    done = 0 if last is None else source.execute(count.where(key <= last)).scalar_one()
    if progress:
        progress(table.name, done, total, False)
    insert = (postgresql if dest.postgres else sqlite).insert(table).on_conflict_do_nothing()
    blobs = any(isinstance(c.type, sa.LargeBinary) for c in table.columns)
    size = max(1, batch_size // BLOB_SHARE) if blobs else batch_size
    while True:
        query = sa.select(table).order_by(key).limit(size)
        if last is not None:
            query = query.where(key > last)
        rows = [dict(row._mapping) for row in source.execute(query)]
        if not rows:
            break
        try:
            with dest.engine.begin() as conn:
                conn.execute(insert, rows)
                if table.name == StoryFingerprint.__tablename__:
                    _add_bands(conn, dest, rows)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"copy: writing {table.name} {key.name} {rows[0][key.name]!r} to "
                f"{rows[-1][key.name]!r} into the destination failed: {_first_line(exc)}"
            ) from exc
        last = rows[-1][key.name]
        done += len(rows)
        if progress:
            progress(table.name, done, total, False)
    if dest.postgres and _integer(key):
        _reset_sequence(dest, table, key)
    with dest.engine.connect() as conn:
        after = conn.execute(count).scalar_one()
    if progress:
        progress(table.name, done, total, True)
    return TableCopy(table.name, total, after, after - before)


def _add_bands(conn: Connection, dest: Store, rows: list[dict[str, Any]]) -> None:
    """The band keys of the fingerprints ``rows`` (`ingest.stories`)."""
    bands = StoryBand.__table__  # type: ignore[attr-defined]
    insert = (postgresql if dest.postgres else sqlite).insert(bands).on_conflict_do_nothing()
    keys = [
        {"band": key, "article_id": row["article_id"]}
        for row in rows
        for key in Fingerprint.from_bytes(bytes(row["signature"]), row["shingles"]).bands
    ]
    conn.execute(insert, keys)


def _reset_sequence(dest: Store, table: sa.Table, key: sa.Column[Any]) -> None:
    """Rows came with their ids, which leaves the id sequence where it was: move it past the
    largest id so the destination's next insert gets a new one (NULL: no sequence, no-op)."""
    largest = sa.select(sa.func.max(key)).scalar_subquery()
    statement = sa.select(
        sa.func.setval(
            sa.func.pg_get_serial_sequence(table.name, key.name),
            sa.func.coalesce(largest, 1),
            largest.is_not(None),  # empty table: the next id is 1
        )
    )
    with dest.engine.begin() as conn:
        conn.execute(statement)


# --- helpers -----------------------------------------------------------------------------------


def _key(table: sa.Table) -> sa.Column[Any]:
    (key,) = table.primary_key.columns  # every archive table has a one-column key
    return key


def _integer(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.Integer)


def _identity(table: sa.Table) -> list[sa.Column[Any]]:
    """The key, then what says which row it is: the unique columns (feeds.url,
    articles.url_key, entries' feed and entry key), else every plain column (captures)."""
    key = _key(table)
    unique = [c for c in table.columns if c.unique]
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            unique += list(constraint.columns)
    if not unique:
        unique = [c for c in table.columns if not isinstance(c.type, sa.JSON | sa.LargeBinary)]
    return [key, *dict.fromkeys(c for c in unique if c is not key)]


def _same_database(first: str, second: str) -> bool:
    try:
        a, b = sa.make_url(first), sa.make_url(second)
    except (ArgumentError, ValueError):
        return False
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return (a.host, a.port or 5432, a.database, dict(a.query)) == (
        b.host,
        b.port or 5432,
        b.database,
        dict(b.query),
    )


def _shown(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return (str(orig or exc).strip().splitlines() or ["unknown error"])[0]
