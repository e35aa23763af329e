"""The archive's connection, as one worker sees it: the engine, sessions whose database errors
surface as ours, the dialect's INSERT, and the name this worker's leases carry.

`Database` is the base every part of `ingest.store.Store` builds on: the parts
(`ingest.feedstate`, `ingest.claims`, `ingest.hostturns`, `ingest.archiving`, `ingest.reads`)
each run their own statements through `Database._session`, so that a database that cannot be
used now (`StoreUnavailableError`) is told apart from one statement's bad data everywhere alike.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from ingest import cjk
from ingest.errors import QueryError, StoreError, StoreUnavailableError
from ingest.querytext import HOW

CONNECT_TIMEOUT = 10  # seconds, PostgreSQL; SQLite waits as long for a lock (busy_timeout)


def open_engine(url: str, *, create: bool, read_only: bool = False) -> Engine:
    """An engine for the archive at ``url`` (SQLite or PostgreSQL); with ``create``, the
    directory of a new SQLite file is made, without, a missing file is refused. With
    ``read_only`` nothing is ever written, not even SQLite's journal mode (every connection
    refuses writes: SQLite ``query_only``, PostgreSQL read-only transactions): an archive in a
    read-only directory or mount can be read, and a file that is no archive stays as it was."""
    try:
        database = sa.make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database: bad URL {url!r}") from exc
    backend = database.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise StoreError(f"database: backend {backend!r} not supported")
    path = database.database
    if backend == "sqlite" and path and path != ":memory:":
        if not create and not Path(path).exists():
            raise StoreError(f"database: no archive at {path}; run `ingest fetch` first")
        if read_only:
            return _sqlite_read_only(Path(path))
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"database: cannot create {Path(path).parent}: {exc}") from exc
    if backend == "sqlite":
        engine = sa.create_engine(database)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "connect", _sqlite_functions)
        if read_only:
            sa.event.listen(engine, "connect", _read_only)
        return engine
    # Connections dropped by a restarted server are replaced, not handed out; a server that
    # does not answer at all fails a connection after CONNECT_TIMEOUT, as a locked SQLite file
    # fails after its busy timeout (libpq's default is to wait on).
    given = "connect_timeout" in database.query
    timeout = {} if given else {"connect_timeout": CONNECT_TIMEOUT}
    engine = sa.create_engine(
        database,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args=timeout,
    )
    if read_only:
        sa.event.listen(engine, "connect", _read_only)
    return engine


def _sqlite_read_only(path: Path) -> Engine:
    """A read-only SQLite engine. A WAL archive is read through its -shm file, which a reader
    creates if it is missing; where it cannot (a read-only directory or mount, the archive
    closed cleanly, so no -shm beside it), the file is opened as immutable: nothing can be
    writing it there."""
    shm = path.with_name(path.name + "-shm")
    immutable = not shm.exists() and not os.access(path.parent, os.W_OK)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")

    def connect() -> Any:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    # A pool of whole connections, each used by one thread at a time: for a "sqlite://" URL
    # SQLAlchemy would pick its per-thread pool, which closes connections other threads hold
    # (a server's thread pool crashed the process that way).
    engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.QueuePool)
    sa.event.listen(engine, "connect", _read_only)
    sa.event.listen(engine, "connect", _sqlite_busy_timeout)
    sa.event.listen(engine, "connect", _sqlite_functions)
    return engine


def _sqlite_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=10000")


def _sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    # The FTS5 triggers call ingest_cjk (migration 0009): a connection without it cannot write
    # articles. Read-only connections get it too, for SQL that calls it.
    cjk.register(dbapi_connection)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer; NORMAL is durable across application crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA query_only=ON")
        return
    # Outside a transaction: the pool's rollback would undo a SET made inside one.
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET default_transaction_read_only = on")
    dbapi_connection.autocommit = False


def store_error(exc: SQLAlchemyError, context: str) -> StoreError:
    """``exc`` as ours, its message after ``context``: `StoreUnavailableError` when the
    database itself failed (connection, lock, disk), `StoreError` otherwise."""
    error = StoreUnavailableError if _unavailable(exc) else StoreError
    return error(f"{context}: {_message(exc)}")


def _message(exc: SQLAlchemyError) -> str:
    """The driver's message, not the statement, on one line (libpq adds a line of hints)."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def _unavailable(exc: SQLAlchemyError) -> bool:
    """Whether ``exc`` says the database cannot be used now, whatever the statement.

    DBAPI's OperationalError is the database's own trouble: a refused or dropped connection,
    SQLite's "database is locked", "disk I/O error", "database or disk is full" (and, on
    PostgreSQL, a deadlock or a cancelled statement, which a later try also resolves).
    InterfaceError and an invalidated connection are the connection's. The rest (DataError,
    IntegrityError, ...) is about one statement's data."""
    return isinstance(exc, OperationalError | InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )


_OWNERS: set[str] = set()  # the lease owners of this process's stores


def worker_name() -> str:
    """A name for the leases a store holds: host, pid and a random suffix (a restarted
    container's process has the same pid as its predecessor)."""
    name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    _OWNERS.add(name)
    return name


def owner_is_dead(owner: str) -> bool:
    """Whether the worker process behind a lease ``owner`` of this machine is gone."""
    try:
        pid = int(owner.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return False
    if owner in _OWNERS:
        return False  # another store of this very process
    if pid == os.getpid():
        return True  # this pid under another token: this process's predecessor (a restart)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


class Database:
    """One worker's connection to the archive: every method of a store runs its own
    transaction in `_session`, and leases it takes are held by `owner` for `lease`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = repr(engine.url)  # for messages: the password hidden
        self.owner = worker_name()
        self.lease = timedelta(minutes=5)
        # Set (by the daemon) while the database is known to be unavailable: every call fails
        # at once with this message instead of waiting on the database (a locked SQLite file
        # holds each call for its busy timeout, an unreachable server for the connect timeout).
        self.unavailable: str | None = None
        # Seconds spent in database calls so far. They are synchronous: a locked SQLite file
        # holds the event loop for its busy timeout, and a request in flight meanwhile may
        # run out of time through no fault of its server (`ingest.pipeline` tells them apart).
        self.busy_seconds = 0.0

    def close(self) -> None:
        self.engine.dispose()

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _insert(self, model: Any) -> Any:
        """INSERT with ON CONFLICT, in this database's dialect (both speak it)."""
        return (postgresql if self.postgres else sqlite).insert(model)

    @contextmanager
    def _session(self, *, query: str | None = None) -> Iterator[Session]:
        """A session whose database errors surface as `StoreError`: `StoreUnavailableError`
        when the database itself failed (connection, lock, disk), `QueryError` when running
        the user's search ``query`` (FTS5 reports bad syntax as an OperationalError)."""
        if self.unavailable is not None:
            raise StoreUnavailableError(self.unavailable)
        started = time.monotonic()
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SQLAlchemyError as exc:
            if query is not None and isinstance(exc, OperationalError):
                raise QueryError(f"bad search query {query!r}: {_message(exc)} ({HOW})") from exc
            raise store_error(exc, "database") from exc
        finally:
            self.busy_seconds += time.monotonic() - started

    def _among(self, column: Any, ids: Iterable[int]) -> Any:
        """``column IN ids`` with one bound parameter however many ids (a hand of pages may
        pass SQLite's limit on parameters): an array on PostgreSQL, a JSON array on SQLite."""
        values = sorted(set(ids))
        if self.postgres:
            array = sa.bindparam("ids", values, type_=postgresql.ARRAY(sa.Integer), unique=True)
            return column == sa.any_(array)
        listed = sa.func.json_each(sa.bindparam("ids", json.dumps(values), unique=True))
        return column.in_(sa.select(listed.table_valued("value").c.value))
