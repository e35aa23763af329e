"""The archive database: its schema, writes that are idempotent, claims, reads (the search
queries themselves are in `ingest.search`).

Identity lives in the schema: ``articles.url_key`` (the normalised link) and
``entries (feed_id, entry_key)`` are unique, and every insert is insert-if-new, so running the
same fetch twice, or reaching one article from two feeds, stores it once.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel import Session, col, select

from ingest.config import FeedSettings
from ingest.entries import Lease, Recorded, Statements, content_hash, lock_keys, record
from ingest.errors import (
    FetchError,
    NotFoundError,
    QueryError,
    StoreError,
    StoreUnavailableError,
)
from ingest.feeds import url_key
from ingest.models import (
    CLAIMABLE,
    Article,
    ArticleStatus,
    Capture,
    ContentSource,
    Entry,
    Feed,
    Host,
    UTCDateTime,
)
from ingest.records import ExtractedArticle, FeedEntry, Hints, Page, PageJob, ParsedFeed, utcnow
from ingest.search import (
    RANK_WINDOW,
    Filters,
    SearchHit,
    filtered,
    postgres_search,
    sqlite_search,
)

# The migration this code was written for (the head of ingest/migrations/versions).
SCHEMA_REVISION = "0007"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x696E6765  # PostgreSQL advisory lock key held while the schema is created
CONNECT_TIMEOUT = 10  # seconds, PostgreSQL; SQLite waits as long for a lock (busy_timeout)

# What `Store.save_articles` stores of one page: the job, its article, the page, its raw body.
Save = tuple[PageJob, ExtractedArticle, Page, bytes | None]


def _page_keys(
    job: PageJob, article: ExtractedArticle, page: Page, _raw: bytes | None
) -> tuple[set[str], str]:
    """The URL keys a saved page is known by (where it was fetched from, its canonical URL),
    and the URL it is archived under: a post keeps its fragment in both."""
    post = job.fragment is not None
    final_url = f"{urldefrag(page.final_url).url}#{job.fragment}" if post else page.final_url
    keys = {url_key(final_url, fragment=post)}
    if article.canonical_url:
        keys.add(url_key(article.canonical_url, fragment=post))
    return keys, final_url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never wait for the writer; NORMAL is durable across application crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class _Saving:
    """The statements `Store.save_article` runs, built once with bound parameters."""

    def __init__(self) -> None:
        articles = Article.__table__  # type: ignore[attr-defined]
        entries = Entry.__table__  # type: ignore[attr-defined]
        c = articles.c

        def param(name: str) -> Any:  # named apart from the columns, as UPDATE requires
            return sa.bindparam(f"new_{name}", type_=c[name].type)

        self.duplicate = (
            sa.select(c.id)
            .where(
                c.id != sa.bindparam("id"),
                c.url_key.in_(sa.bindparam("keys", expanding=True))
                | (
                    (c.canonical_url == sa.bindparam("canonical", type_=sa.String))
                    & (c.content_source == ContentSource.PAGE.value)
                ),
            )
            .limit(1)
        )
        self.move_entries = (
            sa.update(entries)
            .where(entries.c.article_id == sa.bindparam("from_id"))
            .values(article_id=sa.bindparam("to_id"))
        )
        self.drop = sa.delete(articles).where(c.id == sa.bindparam("id"))
        fields = ("authors", "published", "updated", "language", "summary", "text")
        fields += ("canonical_url", "final_url", "content_hash", "attempts", "fetched_at")
        fields += ("content_source",)
        self.store = (
            sa.update(articles)
            .where(c.id == sa.bindparam("article"), c.status != ArticleStatus.OK.value)
            .values(
                {name: param(name) for name in fields}
                | {
                    "title": sa.func.coalesce(param("title"), c.title),
                    "site_name": sa.func.coalesce(param("site_name"), c.site_name),
                    "status": ArticleStatus.OK.value,
                    "next_attempt_at": None,
                    "error": None,
                    "error_message": None,
                    "lease_owner": None,
                    "lease_until": None,
                }
            )
        )
        self.capture = sa.insert(Capture.__table__)  # type: ignore[attr-defined]


_SAVING = _Saving()


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


def _dead(owner: str) -> bool:
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


_OWNERS: set[str] = set()  # the lease owners of this process's stores


def worker_name() -> str:
    """A name for the leases a store holds: host, pid and a random suffix (a restarted
    container's process has the same pid as its predecessor)."""
    name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    _OWNERS.add(name)
    return name


class Store:
    """The archive database. Open with `Store.open`; every method runs its own transaction.

    Several processes may share one archive: work (a feed's poll, an article's page) is
    claimed with a lease held by `owner` for `lease`; a crashed worker's leases run out and its
    work returns to the others.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.owner = worker_name()
        self.lease = timedelta(minutes=5)
        # Set (by the daemon) while the database is known to be unavailable: every call fails
        # at once with this message instead of waiting on the database (a locked SQLite file
        # holds each call for its busy timeout, an unreachable server for the connect timeout).
        self.unavailable: str | None = None
        self._statements = Statements(self._insert)

    @classmethod
    def open(cls, url: str, *, create: bool = True, migrate: bool = True) -> Store:
        """Open the archive at ``url``: with ``create``, a missing one is created; with
        ``migrate``, one whose schema is out of date is refused (see `upgrade`)."""
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
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"database: cannot create {Path(path).parent}: {exc}") from exc
        if backend == "sqlite":
            engine = sa.create_engine(database)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            # Connections dropped by a restarted server are replaced, not handed out; a server
            # that does not answer at all fails a connection after CONNECT_TIMEOUT, as a
            # locked SQLite file fails after its busy timeout (libpq's default is to wait on).
            given = "connect_timeout" in database.query
            timeout = {} if given else {"connect_timeout": CONNECT_TIMEOUT}
            engine = sa.create_engine(
                database,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=5,
                connect_args=timeout,
            )
        store = cls(engine)
        try:
            if migrate:
                store._migrate(create=create)
        except StoreError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            error = StoreUnavailableError if _unavailable(exc) else StoreError
            raise error(f"database: cannot open {url}: {_message(exc)}") from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _insert(self, model: Any) -> Any:
        """INSERT with ON CONFLICT, in this database's dialect (both speak it)."""
        return (postgresql if self.postgres else sqlite).insert(model)

    def revision(self) -> str | None:
        """The archive's schema revision; None for an empty database."""
        with self.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if "alembic_version" in tables:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        if tables:
            raise StoreError("database: not an ingest archive (unknown tables, no revision)")
        return None

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration; returns (revision before, revision after)."""
        from alembic import command
        from alembic.config import Config

        before = self.revision()
        with self.engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
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

    @contextmanager
    def _session(self, *, query: str | None = None) -> Iterator[Session]:
        """A session whose database errors surface as `StoreError`: `StoreUnavailableError`
        when the database itself failed (connection, lock, disk), `QueryError` when running
        the user's search ``query`` (FTS5 reports bad syntax as an OperationalError)."""
        if self.unavailable is not None:
            raise StoreUnavailableError(self.unavailable)
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SQLAlchemyError as exc:
            cause = _message(exc)
            if query is not None and isinstance(exc, OperationalError):
                raise QueryError(f"bad search query {query!r}: {cause}") from exc
            if _unavailable(exc):
                raise StoreUnavailableError(f"database: {cause}") from exc
            raise StoreError(f"database: {cause}") from exc

    # --- feeds ---------------------------------------------------------------------------------

    def sync_feeds(
        self, configured: Sequence[FeedSettings], *, exclusive: bool = False
    ) -> list[Feed]:
        """Make sure every configured feed has an active row, with its name and interval;
        with ``exclusive``, feeds no longer configured are deactivated (kept, not polled)."""
        now = utcnow()
        insert = self._insert(Feed)
        # One statement for all feeds (executemany): a config of a thousand feeds is read at
        # every start of `ingest fetch`.
        upsert = insert.on_conflict_do_update(
            index_elements=["url"],
            set_={
                "name": insert.excluded.name,
                "fixed_interval": insert.excluded.fixed_interval,
                "active": True,
            },
        )
        wanted = [c.url for c in configured]
        with self._session() as session:
            known = {f.url: f for f in session.exec(select(Feed).where(col(Feed.url).in_(wanted)))}
            # Only new or changed feeds are written: `ingest fetch` reads a config of a
            # thousand feeds at every start, and they rarely change.
            rows = [
                {
                    "url": item.url,
                    "name": item.name,
                    "fixed_interval": item.interval,
                    "active": True,
                    "created_at": now,
                    "error_count": 0,
                }
                for item in configured
                if (feed := known.get(item.url)) is None
                or (feed.name, feed.fixed_interval, feed.active) != (item.name, item.interval, True)
            ]
            if rows:
                session.execute(upsert, rows)  # one statement (executemany)
            if exclusive:
                session.execute(
                    sa.update(Feed)
                    .where(col(Feed.url).not_in(wanted), col(Feed.active))
                    .values(active=False)
                )
            session.commit()
            if rows:
                session.expire_all()  # the rows read above are stale now
                fresh = session.exec(select(Feed).where(col(Feed.url).in_(wanted)))
                known = {f.url: f for f in fresh}
            return [known[c.url] for c in configured]

    def _claim(self, model: Any, pick: Any, now: datetime) -> list[Any]:
        """Lease to this worker the rows of ``model`` that ``pick`` (a SELECT of their ids)
        finds and no live lease holds, in one statement; returns them."""
        free = col(model.lease_until).is_(None) | (col(model.lease_until) < now)
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        # SQLite: the UPDATE holds the database's write lock, which serialises claims anyway.
        pick = pick.where(free).with_for_update(skip_locked=True)
        claim = (
            sa.update(model)
            .where(col(model.id).in_(pick.scalar_subquery()))
            .values(lease_owner=self.owner, lease_until=now + self.lease)
            .returning(model)
            .execution_options(synchronize_session=False)
        )
        with self._session() as session:
            rows = list(session.execute(claim).scalars())
            session.commit()
        return rows

    def claim_feeds(
        self, now: datetime, *, limit: int = 100, only: Sequence[int] | None = None
    ) -> list[Feed]:
        """Lease to this worker the active feeds whose time has come (never polled ones first,
        then soonest first), or with ``only`` those feeds whether due or not. A feed another
        worker holds is skipped: no feed is polled by two workers at once."""
        pick = select(Feed.id).where(col(Feed.active))
        if only is None:
            pick = pick.where(
                col(Feed.next_poll_at).is_(None) | (col(Feed.next_poll_at) <= now)
            ).order_by(col(Feed.next_poll_at).is_not(None), col(Feed.next_poll_at))
        else:
            pick = pick.where(col(Feed.id).in_(list(only)))
        feeds: list[Feed] = self._claim(Feed, pick.limit(limit), now)
        if only is not None:
            order = {feed_id: n for n, feed_id in enumerate(only)}
            return sorted(feeds, key=lambda f: order[f.id or 0])
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(feeds, key=lambda f: (f.next_poll_at is not None, f.next_poll_at or far))

    def renew(self, now: datetime, *, feeds: Iterable[int], articles: Iterable[int]) -> int:
        """Extend this worker's leases on the work in hand (``feeds`` and ``articles``) and
        give back every other lease it holds: work it dropped (a task that died, an outcome
        the database would not take) returns to the archive at once rather than staying
        leased to a worker that has forgotten it. Returns how many leases were given back."""
        freed = 0
        with self._session() as session:
            for model, held in ((Feed, feeds), (Article, articles)):
                mine = col(model.lease_owner) == self.owner
                in_hand = self._among(col(model.id), held)
                session.execute(
                    sa.update(model).where(mine, in_hand).values(lease_until=now + self.lease)
                )
                dropped = session.execute(
                    sa.update(model)
                    .where(mine, ~in_hand)
                    .values(lease_owner=None, lease_until=None)
                )
                freed += dropped.rowcount
            session.commit()
        return freed

    def release(self, *, articles: Iterable[int] | None = None) -> None:
        """Give back this worker's leases (``articles``: only those pages) so that other
        workers may take the work now rather than when the lease runs out."""
        with self._session() as session:
            for model in (Feed, Article) if articles is None else (Article,):
                chosen = sa.true() if articles is None else self._among(col(model.id), articles)
                session.execute(
                    sa.update(model)
                    .where(col(model.lease_owner) == self.owner, chosen)
                    .values(lease_owner=None, lease_until=None)
                )
            session.commit()

    def _among(self, column: Any, ids: Iterable[int]) -> Any:
        """``column IN ids`` with one bound parameter however many ids (a hand of pages may
        pass SQLite's limit on parameters): an array on PostgreSQL, a JSON array on SQLite."""
        values = sorted(set(ids))
        if self.postgres:
            array = sa.bindparam("ids", values, type_=postgresql.ARRAY(sa.Integer), unique=True)
            return column == sa.any_(array)
        listed = sa.func.json_each(sa.bindparam("ids", json.dumps(values), unique=True))
        return column.in_(sa.select(listed.table_valued("value").c.value))

    def feed_polled(
        self,
        feed_id: int,
        *,
        status: str,
        next_poll_at: datetime | None = None,
        interval: float | None = None,
        parsed: ParsedFeed | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        error: str | None = None,
        problem: str | None = None,
        count_error: bool = True,
    ) -> None:
        """Record the outcome of one poll of a feed and when to poll it next. An ``error``
        counts towards its error count (unless ``count_error`` is false: we did not even ask);
        a ``problem`` (a malformed feed that still gave entries) is only noted."""
        # One UPDATE, no read first: a daemon records thousands of 304s an hour.
        values: dict[str, Any] = {
            "last_polled_at": utcnow(),
            "last_status": status,
            "next_poll_at": next_poll_at,
            "lease_owner": None,
            "lease_until": None,
        }
        if interval is not None:
            values["interval"] = interval
        if error is None:
            values |= {"error_count": 0, "last_error": problem}
        else:
            values["last_error"] = error
            if count_error:
                values["error_count"] = col(Feed.error_count) + 1
        if parsed is not None:
            values |= {
                "title": sa.func.coalesce(parsed.title, col(Feed.title)),
                "site_url": sa.func.coalesce(parsed.site_url, col(Feed.site_url)),
                "language": sa.func.coalesce(parsed.language, col(Feed.language)),
                # A 200 without validators must not keep the old ones: they would never match.
                "etag": etag,
                "last_modified": last_modified,
            }
        with self._session() as session:
            session.execute(sa.update(Feed).where(col(Feed.id) == feed_id).values(**values))
            session.commit()

    def feeds_not_modified(self, polls: Sequence[tuple[int, datetime, float]]) -> None:
        """Record many 304 polls at once: (feed id, next poll time, interval chosen)."""
        update = (
            sa.update(Feed)
            .where(col(Feed.id) == sa.bindparam("feed_id"))
            .values(
                last_polled_at=sa.bindparam("polled_at", type_=UTCDateTime()),
                last_status="not_modified",
                next_poll_at=sa.bindparam("next_at", type_=UTCDateTime()),
                interval=sa.bindparam("seconds"),
                error_count=0,
                last_error=None,
                lease_owner=None,
                lease_until=None,
            )
        )
        now = utcnow()
        rows = [
            {"feed_id": feed_id, "polled_at": now, "next_at": next_at, "seconds": seconds}
            for feed_id, next_at, seconds in polls
        ]
        with self._session() as session:
            session.connection().execute(update, rows)
            session.commit()

    def block_host(self, host: str, until: datetime, reason: str) -> None:
        """Remember that ``host`` asked us to wait until ``until`` (kept across restarts)."""
        values = {"blocked_until": until, "reason": reason, "updated_at": utcnow()}
        with self._session() as session:
            session.execute(
                self._insert(Host)
                .values(host=host, **values)
                .on_conflict_do_update(
                    index_elements=["host"],
                    set_=values,
                    where=col(Host.blocked_until).is_(None) | (col(Host.blocked_until) < until),
                )
            )
            session.commit()

    def take_turn(self, host: str, hold: float, now: float) -> tuple[float | None, datetime | None]:
        """Take ``host``'s request turn at ``now`` (epoch seconds) unless another worker's
        turn holds it: one atomic compare-and-set, just before the request is sent. A turn
        holds the host for ``hold`` seconds, or until `end_turn` when its answer begins to
        arrive, so that a host's delay holds across every worker, as the server sees it.

        Returns (None when the turn is ours, else the epoch seconds before which no request
        may start; the time the host asked every worker to wait until, if it did).
        """
        hosts = Host.__table__  # type: ignore[attr-defined]
        due = hosts.c.next_request_at.is_(None) | (hosts.c.next_request_at <= now)
        take = (
            self._insert(Host)
            .values(host=host, next_request_at=now + hold, updated_at=utcnow())
            .on_conflict_do_update(
                index_elements=["host"], set_={"next_request_at": now + hold}, where=due
            )
            .returning(hosts.c.blocked_until)
        )
        with self._session() as session:
            taken = session.execute(take).first()
            if taken is not None:
                session.commit()
                return None, taken[0]
            held = session.execute(
                sa.select(hosts.c.next_request_at, hosts.c.blocked_until).where(
                    hosts.c.host == host
                )
            ).one()
            session.commit()
            return held[0], held[1]

    def end_turn(self, host: str, held: float, until: float) -> None:
        """End the turn that holds ``host`` with ``held`` (what `take_turn` set): the next
        request may start at ``until`` (epoch seconds; the answer's arrival plus the delay)."""
        hosts = Host.__table__  # type: ignore[attr-defined]
        with self._session() as session:
            session.execute(
                sa.update(hosts)
                .where(hosts.c.host == host, hosts.c.next_request_at == held)
                .values(next_request_at=until)
            )
            session.commit()

    def blocked_hosts(self, now: datetime) -> dict[str, datetime]:
        with self._session() as session:
            rows = session.exec(select(Host).where(col(Host.blocked_until) > now))
            return {h.host: h.blocked_until for h in rows if h.blocked_until}

    def feeds(self) -> list[Feed]:
        with self._session() as session:
            return list(session.exec(select(Feed).order_by(col(Feed.id))))

    # --- entries and articles ------------------------------------------------------------------

    def record_entries(
        self, feed: Feed, entries: Sequence[FeedEntry], *, hold: bool = True
    ) -> Recorded:
        """Store the entries a feed lists, each once, and say which pages are to be fetched.

        An entry whose link is already archived (from another feed, or the same URL with
        tracking parameters) is linked to that article rather than stored again; entries
        sharing one link are told apart (`ingest.entries`). With ``hold`` the new pages are
        leased to this worker; without, any worker may claim them.
        """
        assert feed.id is not None
        now = utcnow()
        lease = Lease(self.owner, now + self.lease) if hold else Lease()
        with self._session() as session:
            recorded = record(
                session,
                self._statements,
                feed,
                entries,
                now=now,
                lease=lease,
                postgres=self.postgres,
            )
            session.commit()
        return recorded

    def claim_pages(
        self,
        now: datetime,
        *,
        limit: int | None = None,
        per_host: int | None = None,
        own_hosts: bool = False,
    ) -> list[PageJob]:
        """Lease to this worker pages to fetch (pending, or failed with their retry time come),
        a host at a time in turn: each host's oldest page, then each host's second, and so on
        (up to ``per_host`` of each), so that ``limit`` pages spread over every host with work.
        Skipped: hosts that asked every worker to wait (Retry-After), and with ``own_hosts``
        hosts another worker holds pages of: under a delay a host is best served by one worker
        at a time, which keeps its pace (and reads its robots.txt once) without waiting on
        another worker's turns there."""
        free = col(Article.lease_until).is_(None) | (col(Article.lease_until) < now)
        blocked = select(Host.host).where(col(Host.blocked_until) > now)
        ours = col(Article.host).not_in(blocked)
        if own_hosts:
            elsewhere = select(Article.host).where(
                col(Article.lease_owner).is_not(None),  # the partial index of leases
                col(Article.lease_owner) != self.owner,
                col(Article.lease_until) >= now,
                col(Article.host).is_not(None),
            )
            ours &= col(Article.host).not_in(elsewhere)
        turn = sa.func.row_number().over(partition_by=col(Article.host), order_by=col(Article.id))
        queue = (
            select(
                col(Article.id).label("id"),
                turn.label("turn"),
                # Within a turn, hosts whose next request slot comes soonest (idle ones first).
                sa.func.coalesce(col(Host.next_request_at), 0.0).label("slot"),
            )
            .select_from(Article)
            .outerjoin(Host, col(Host.host) == col(Article.host))
            .where(
                sa.text(f"({CLAIMABLE})"),  # as the partial index says it: the index is used
                col(Article.url).is_not(None),
                (col(Article.status) == ArticleStatus.PENDING)
                | (col(Article.next_attempt_at) <= now),
                free,
                col(Article.host).is_(None) | ours,
            )
            .subquery()
        )
        # The window is computed apart from the locking SELECT (PostgreSQL refuses FOR UPDATE
        # beside a window function); `_claim` locks what it picks, skipping rows being claimed.
        turns = select(queue.c.id).order_by(queue.c.turn, queue.c.slot, queue.c.id).limit(limit)
        if per_host is not None:
            turns = turns.where(queue.c.turn <= per_host)
        pick = select(Article.id).where(col(Article.id).in_(turns.scalar_subquery()))
        rows = sorted(self._claim(Article, pick, now), key=lambda a: a.id or 0)
        return [_job(a) for a in rows]

    def release_orphans(self) -> int:
        """Free the leases of dead workers of this machine (same host name, a process that
        is gone, or this very pid under an earlier token: a restart), so that a restarted
        worker resumes its predecessor's work at once rather than when the leases run out.
        Returns how many owners were found dead."""
        host = socket.gethostname()
        with self._session() as session:
            owners: set[str] = set()
            for model in (Feed, Article):
                owners.update(
                    session.exec(
                        select(model.lease_owner)
                        .where(
                            col(model.lease_owner).is_not(None),  # the partial index
                            col(model.lease_owner).startswith(f"{host}:", autoescape=True),
                        )
                        .distinct()
                    )
                )
            dead = [o for o in owners if o and o != self.owner and _dead(o)]
            for model in (Feed, Article):
                if dead:
                    session.execute(
                        sa.update(model)
                        .where(col(model.lease_owner).in_(dead))
                        .values(lease_owner=None, lease_until=None)
                    )
            session.commit()
        return len(dead)

    def pending_pages(self) -> int:
        """Article pages recorded but not fetched yet."""
        with self._session() as session:
            query = select(sa.func.count()).where(col(Article.status) == ArticleStatus.PENDING)
            return session.exec(query).one()

    def save_article(
        self, job: PageJob, article: ExtractedArticle, page: Page, *, raw: bytes | None = None
    ) -> int | None:
        """Store a page's clean article; returns its id, or the id of the article it duplicates
        (None when it was stored meanwhile).

        A page whose final or canonical URL is already archived under another article (a
        redirecting feed link, say) is merged into that article instead of stored twice. A post
        on a page of several (``job.fragment``) is that URL with its fragment: the page's other
        posts, and the page itself, are other articles.
        """
        return self.save_articles([(job, article, page, raw)])[0]

    def save_articles(self, saves: Sequence[Save]) -> list[int | None]:
        """`save_article` for several pages in one transaction: one commit and one flush of
        the search index for all of them."""
        keyed = [(_page_keys(*save), save) for save in saves]
        with self._session() as session:
            if self.postgres:
                # Two workers saving pages that share a URL: the second waits for the first
                # and merges into it (keys locked in one order: no deadlock).
                lock_keys(session, (k for (keys, _), _ in keyed for k in keys if k))
            # Core statements built once (`_saving`): this runs for every page archived.
            conn = session.connection()
            stored = [self._save(conn, keys, final_url, *save) for (keys, final_url), save in keyed]
            session.commit()
        return stored

    @staticmethod
    def _save(
        conn: sa.Connection,
        keys: set[str],
        final_url: str,
        job: PageJob,
        article: ExtractedArticle,
        page: Page,
        raw: bytes | None,
    ) -> int | None:
        duplicate = conn.execute(
            _SAVING.duplicate,
            {"id": job.article_id, "keys": sorted(keys), "canonical": article.canonical_url},
        ).scalar()
        if duplicate is not None:
            conn.execute(_SAVING.move_entries, {"from_id": job.article_id, "to_id": duplicate})
            conn.execute(_SAVING.drop, {"id": job.article_id})
            return duplicate
        # Not yet stored is part of the UPDATE itself: a worker whose lease ran out while it
        # worked may store the same page too, and only the first one counts.
        stored = conn.execute(
            _SAVING.store,
            {
                "article": job.article_id,
                "new_title": article.title,
                "new_authors": list(article.authors),
                "new_published": article.published,
                "new_updated": article.updated,
                "new_language": article.language,
                "new_site_name": article.site_name,
                "new_summary": article.summary,
                "new_text": article.text or None,
                "new_canonical_url": article.canonical_url,
                "new_final_url": final_url,
                "new_content_source": (
                    ContentSource.PAGE if article.from_page else ContentSource.FEED
                ).value,
                "new_content_hash": content_hash(article.text),
                "new_attempts": job.attempts + 1,
                "new_fetched_at": page.fetched_at,
            },
        )
        if stored.rowcount == 0:  # stored meanwhile, or merged into another article
            return None
        if raw is not None:  # the page's body, as a zlib stream
            conn.execute(
                _SAVING.capture,
                {
                    "article_id": job.article_id,
                    "url": page.final_url,
                    "status": page.status,
                    "headers": page.headers,
                    "body": raw,
                    "fetched_at": page.fetched_at,
                },
            )
        return job.article_id

    def save_failure(
        self, job: PageJob, error: FetchError, *, attempts: int, next_attempt_at: datetime | None
    ) -> None:
        """Record why a page failed and when to try it again (None: never)."""
        with self._session() as session:
            session.execute(
                sa.update(Article)
                .where(col(Article.id) == job.article_id, col(Article.status) != ArticleStatus.OK)
                .values(
                    status=ArticleStatus.FAILED,
                    attempts=attempts,
                    error=error.reason,
                    error_message=str(error),
                    next_attempt_at=next_attempt_at,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            session.commit()

    # --- read side -----------------------------------------------------------------------------

    def search(
        self,
        text: str,
        filters: Filters,
        *,
        limit: int = 20,
        rank_window: int | None = RANK_WINDOW,
    ) -> list[SearchHit]:
        """Full-text search over title and text, best first, title matches weighing more.

        SQLite: FTS5 syntax, BM25 (a title occurrence counts as four in the text). A query
        matching more than ``rank_window`` articles (after filters) is ranked among its
        newest ``rank_window`` matches only; None ranks every match. PostgreSQL: web-search
        syntax (words, "phrases", OR, -not) in every language the archive indexes,
        ``ts_rank_cd``, ``ts_headline`` snippets, every match ranked.
        """
        with self._session(query=text) as session:
            if self.postgres:
                return postgres_search(session, text, filters, limit)
            return sqlite_search(session, text, filters, limit, rank_window)

    def article(self, ref: str) -> tuple[Article, str]:
        """One article by id or URL (as fetched, final or canonical), with its feed's URL; a
        post's URL (``page#post``) finds the post before its page."""
        query = select(Article, col(Feed.url)).join(Feed, col(Feed.id) == col(Article.feed_id))
        if ref.isdigit():
            query = query.where(col(Article.id) == int(ref))
        else:
            post = url_key(ref, fragment=True)
            query = query.where(
                col(Article.url_key).in_([url_key(ref), post])
                | (col(Article.url) == ref)
                | (col(Article.final_url) == ref)
                | (col(Article.canonical_url) == ref)
            ).order_by(sa.case((col(Article.url_key) == post, 0), else_=1), col(Article.id))
        with self._session() as session:
            row = session.exec(query.limit(1)).first()
        if row is None:
            raise NotFoundError(f"no article {ref!r} in the archive")
        return row[0], row[1]

    def iter_articles(self, filters: Filters, *, batch: int = 500) -> Iterator[tuple[Article, str]]:
        """Every article matching ``filters`` in id order, streamed in batches."""
        last = 0
        while True:
            query = (
                select(Article, col(Feed.url))
                .join(Feed, col(Feed.id) == col(Article.feed_id))
                .where(col(Article.id) > last)
            )
            query = filtered(query, filters, postgres=self.postgres)
            query = query.order_by(col(Article.id)).limit(batch)
            with self._session() as session:
                rows = session.exec(query).all()
            if not rows:
                return
            yield from ((article, feed_url) for article, feed_url in rows)
            last = rows[-1][0].id or last

    def stats(self, now: datetime) -> dict[str, Any]:
        """Archive counts and recent activity, for `ingest stats`."""
        day, week = now - timedelta(days=1), now - timedelta(days=7)
        created = col(Article.created_at)
        with self._session() as session:
            by_status = dict(
                session.exec(
                    select(Article.status, sa.func.count()).group_by(col(Article.status))
                ).all()
            )
            reasons = dict(
                session.exec(
                    select(Article.error, sa.func.count())
                    .where(col(Article.status) == ArticleStatus.FAILED)
                    .group_by(col(Article.error))
                ).all()
            )
            feeds = session.exec(
                select(
                    sa.func.count(),
                    sa.func.sum(sa.case((col(Feed.active), 1), else_=0)),
                    sa.func.sum(sa.case((col(Feed.error_count) > 0, 1), else_=0)),
                    sa.func.max(col(Feed.last_polled_at)),
                )
            ).one()
            recent = session.exec(
                select(
                    sa.func.sum(sa.case((created >= day, 1), else_=0)),
                    sa.func.sum(sa.case((created >= week, 1), else_=0)),
                    sa.func.sum(sa.case((col(Article.fetched_at) >= day, 1), else_=0)),
                )
            ).one()
        last_poll = feeds[3]
        if isinstance(last_poll, str):  # aggregates lose the column type on SQLite
            last_poll = datetime.fromisoformat(last_poll).replace(tzinfo=UTC)
        return {
            "feeds": {"total": feeds[0], "active": feeds[1] or 0, "failing": feeds[2] or 0},
            "articles": {
                "total": sum(by_status.values()),
                **{status: by_status.get(status, 0) for status in ArticleStatus},
            },
            "failures_by_reason": {str(k): v for k, v in sorted(reasons.items(), key=str)},
            "recent": {
                "articles_last_24h": recent[0] or 0,
                "articles_last_7d": recent[1] or 0,
                "pages_fetched_last_24h": recent[2] or 0,
                "last_poll": last_poll.isoformat() if last_poll else None,
            },
        }


def _job(article: Article) -> PageJob:
    """The page job of an article left to fetch; a post's (its key ``page#post``) carries its
    fragment and the entry's own text, the post's text should the page not hold it."""
    _, mark, fragment = (article.url_key or "").partition("#")
    return PageJob(
        article.id or 0,
        article.url or "",
        article.attempts,
        Hints(
            title=article.title,
            authors=tuple(article.authors),
            published=article.published,
            updated=article.updated,
            language=article.language,
            summary=article.summary,
            content=article.text if mark else None,
        ),
        fragment=fragment if mark else None,
    )
