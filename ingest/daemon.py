"""`ingest daemon`: the same ingesting as `ingest fetch`, on a clock, for months.

APScheduler (3.x) drives three jobs: ``tick`` claims the feeds whose poll time has come (state
lives in the database, so a restart resumes the schedule where it was), ``retry`` resumes pages
left pending and retries failed pages that are due, ``reload`` re-reads the config file when it
changes (or on SIGHUP). SIGTERM and SIGINT stop claiming work, give what is in flight until the
shutdown timeout, cancel the rest (it stays pending in the database) and return. /healthz and
/metrics are served on ``[daemon] listen``.

Leases are kept on the work in hand only (``_feeds`` and the pages of the ingestor's frontier,
queued or in flight): a page whose task ended without its outcome stored is given back at the
next tick. When the database is unavailable (`StoreUnavailableError`) the daemon claims
nothing, leaves the pages not started pending, keeps the outcomes of pages already fetched
until they can be stored, tries the database again after a doubling wait (`DatabaseState`),
one log line per try, and resumes by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest import metrics
from ingest.config import Settings, load_settings
from ingest.dbstate import DatabaseState
from ingest.errors import ConfigError, StoreError, StoreUnavailableError
from ingest.models import Feed
from ingest.net import HttpClient
from ingest.pipeline import Ingestor
from ingest.records import PageJob, utcnow
from ingest.store import Store
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.daemon")

CLAIM_HORIZON = 4.0  # seconds of each host's turns that one claim of pages covers


class Daemon:
    """Runs until `stop` (or a signal); `run` returns when everything is shut down."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        config_path: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        metrics.enable()
        self.settings = settings
        self.store = store
        self.clock = clock
        self._config_path = config_path
        self._config_stamp = self._stamp()
        self._feeds: dict[int, asyncio.Task[None]] = {}
        # Pages held are in the ingestor's frontier; these are the ones being worked on.
        self._running: dict[int, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._started = time.monotonic()
        self._last_tick: float | None = None
        self._backlog = False  # the last tick claimed all it could: more feeds may be due
        self._page_backlog = False  # the last claim found pages: there may be more
        self._claimed_hosts = 0  # hosts with pages queued after the last claim
        self.database = DatabaseState()
        self._database_up = asyncio.Event()  # cleared while the database is unavailable
        self._database_up.set()
        self._database_try: asyncio.TimerHandle | None = None
        metrics.DATABASE_UP.set(1)
        self.ingestor: Ingestor | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: no new work is claimed")
            self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._chore(self.reload(force=True)))
        self.store.release_orphans()
        self.store.sync_feeds(self.settings.feeds, exclusive=True)
        server = await self._serve() if self.settings.daemon.listen else None
        rules = self.settings.daemon
        try:
            async with (
                HttpClient(self.settings.fetch) as http,
                ExtractorPool(
                    self.settings.extract.workers, timeout=self.settings.extract.timeout
                ) as pool,
            ):
                self.ingestor = Ingestor(self.settings, self.store, http, pool, clock=self.clock)
                self.ingestor.hold_new_pages = False
                self.ingestor.wait_for_database = self._wait_for_database
                dispatch = loop.create_task(self.ingestor.dispatch(self._start_page))
                scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
                now = datetime.now(UTC)
                for job, every, first in (
                    (self.tick, rules.tick, now),
                    (self.retry, rules.retry_every, now),
                    (self.reload, rules.reload_every, None),
                ):
                    scheduler.add_job(
                        job,
                        "interval",
                        seconds=every,
                        next_run_time=first or now + timedelta(seconds=every),
                        max_instances=1,
                        coalesce=True,
                        misfire_grace_time=None,
                    )
                scheduler.start()
                log.info(
                    "daemon started",
                    extra={"feeds": len(self.settings.feeds), "listen": rules.listen or None},
                )
                await self._stopping.wait()
                scheduler.shutdown(wait=False)
                dispatch.cancel()
                self.ingestor.paused = True  # queued pages stay pending; running ones finish
                self.ingestor.frontier.take_queued()  # released below, for any worker
                # Leave time for the worker pool and the HTTP client to close within the bound.
                await self._drain(max(rules.shutdown_timeout - 4.0, rules.shutdown_timeout / 2))
                try:
                    self.ingestor.flush()
                    self.store.release()  # what is left undone is the other workers' now
                except StoreError as exc:
                    log.warning(
                        "leases not given back (they run out after database.lease): %s",
                        exc,
                        extra={"error": "store"},
                    )
        finally:
            if self._database_try is not None:
                self._database_try.cancel()
            for task in self._chores:
                task.cancel()
            if server is not None:
                server.close()
                await server.wait_closed()
        log.info("daemon stopped")

    async def _drain(self, grace: float) -> None:
        """Let work in flight finish for ``grace`` seconds, then cancel it: a cancelled page is
        still pending in the database and is resumed at the next start."""
        tasks = [*self._feeds.values(), *self._running.values()]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.info("abandoned work in flight", extra={"tasks": len(late)})
            await asyncio.wait(late, timeout=1.0)

    def _chore(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # --- jobs ----------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Claim the feeds whose time has come and poll them (nothing while the database is
        unavailable: `_try_database` is scheduled for that)."""
        if self._stopping.is_set() or self.ingestor is None:
            return
        if not self.database.up:
            self._last_tick = time.monotonic()  # the clock ticks; /healthz says why it idles
            return
        self._claim_feeds()

    def _claim_feeds(self, *, attempt: bool = False) -> None:
        assert self.ingestor is not None
        room = self.settings.fetch.concurrency - len(self._feeds)
        now = self.clock()
        try:
            self.ingestor.flush()  # 304s written first, or their feeds would look due
            # Keep the leases on work in hand, give back the rest; learn of hosts that told
            # other workers to wait.
            self.ingestor.renew(self._feeds)
            self.ingestor.refresh_blocks()
            due = self.store.claim_feeds(now, limit=max(room, 0))
        except StoreUnavailableError as exc:
            self._database_failed(exc, attempt=attempt)
            return
        except StoreError as exc:
            self._database_answered()  # with an error about a statement, but it answered
            log.error("cannot read the schedule: %s", exc, extra={"error": "store"})
            return
        self._database_answered()
        for feed in due:
            self._spawn_feed(feed)
        # A full claim means more may be due: claim again as soon as a poll finishes,
        # rather than one batch per tick (a thousand new feeds would take minutes).
        self._backlog = room > 0 and len(due) == room
        self._last_tick = time.monotonic()
        metrics.QUEUE.labels(kind="feed").set(len(self._feeds))
        metrics.QUEUE.labels(kind="page").set(len(self.ingestor.frontier))

    async def retry(self) -> None:
        """Resume pending pages and retry failed pages whose time has come."""
        if self._stopping.is_set() or self.ingestor is None or not self.database.up:
            return
        frontier = self.ingestor.frontier
        room = self.settings.daemon.page_queue - len(frontier)
        if room <= 0:
            self._page_backlog = True  # taken up as pages in hand are done
            return
        try:
            jobs = self.store.claim_pages(
                self.clock(),
                limit=room,
                per_host=self._per_host(),
                own_hosts=self.settings.fetch.host_delay > 0,
            )
            metrics.PENDING.set(self.store.pending_pages())
            self._spawn_pages(jobs)
        except StoreUnavailableError as exc:
            self._database_failed(exc)
            return
        except StoreError as exc:
            log.error("cannot read pending pages: %s", exc, extra={"error": "store"})
            return
        self._page_backlog = bool(jobs)
        self._claimed_hosts = frontier.hosts

    async def reload(self, *, force: bool = False) -> None:
        """Pick up feeds added to or removed from the config file."""
        if self._config_path is None or self._stopping.is_set() or not self.database.up:
            return  # while the database is down the change waits: it is written there
        stamp = self._stamp()
        if not force and stamp == self._config_stamp:
            return
        try:
            fresh = load_settings(self._config_path)
            self.store.sync_feeds(fresh.feeds, exclusive=True)
        except StoreUnavailableError as exc:
            self._database_failed(exc)  # the stamp is left as it was: reloaded when back up
            return
        except (ConfigError, StoreError) as exc:
            self._config_stamp = stamp
            log.error("config not reloaded: %s", exc, extra={"error": "config"})
            return
        self._config_stamp = stamp
        sections = ("database", "fetch", "extract", "daemon")
        changed = [s for s in sections if getattr(fresh, s) != getattr(self.settings, s)]
        if changed:
            log.warning("restart to apply changes to [%s]", "], [".join(changed))
        self.settings = self.settings.model_copy(
            update={"feeds": fresh.feeds, "schedule": fresh.schedule}
        )
        if self.ingestor is not None:
            self.ingestor.settings = self.settings
        log.info("config reloaded", extra={"feeds": len(self.settings.feeds)})
        await self.tick()

    def _stamp(self) -> tuple[float, int] | None:
        try:
            info = self._config_path.stat() if self._config_path else None
        except OSError:
            return None
        return (info.st_mtime, info.st_size) if info else None

    def _spawn_feed(self, feed: Feed) -> None:
        assert feed.id is not None
        task = asyncio.get_running_loop().create_task(self._poll(feed))
        self._feeds[feed.id] = task
        task.add_done_callback(lambda _: self._polled(feed.id or 0))

    def _polled(self, feed_id: int) -> None:
        self._feeds.pop(feed_id, None)
        if self._backlog and not self._stopping.is_set():
            self._backlog = False
            self._chore(self.tick())

    def _spawn_pages(self, jobs: list[PageJob]) -> None:
        assert self.ingestor is not None
        frontier = self.ingestor.frontier
        # At most page_queue pages wait in memory, so memory does not grow with a backlog
        # (a host holding us back while its feeds publish): the rest stay pending in the
        # database, their leases given back for any worker to take.
        room = max(self.settings.daemon.page_queue - len(frontier), 0)
        fresh = [job for job in jobs if job.article_id not in frontier]
        frontier.add(fresh[:room])
        if left := [job.article_id for job in fresh[room:]]:
            self._page_backlog = True  # `retry` takes them up as room frees
            self.store.release(articles=left)

    def _start_page(self, job: PageJob) -> None:
        """Work on a page the frontier handed out."""
        task = asyncio.get_running_loop().create_task(self._archive(job))
        self._running[job.article_id] = task
        task.add_done_callback(lambda _, article_id=job.article_id: self._archived(article_id))

    def _per_host(self) -> int | None:
        """Pages of one host taken in one claim: what its delay lets it serve within
        `CLAIM_HORIZON`, so that one claim covers every host with work and no host's pages
        crowd the others out of the hand (`daemon.page_queue`)."""
        delay = self.settings.fetch.host_delay
        return max(1, math.ceil(CLAIM_HORIZON / delay)) if delay > 0 else None

    def _archived(self, article_id: int) -> None:
        self._running.pop(article_id, None)
        assert self.ingestor is not None
        frontier = self.ingestor.frontier
        # Claimed again when half the hand is done, or when a host has run out of pages while
        # more may wait in the database: never a claim per page done.
        low = len(frontier) <= self.settings.daemon.page_queue // 2
        dry = frontier.hosts < self._claimed_hosts
        if self._page_backlog and (low or dry) and not self._stopping.is_set():
            self._page_backlog = False
            self._chore(self.retry())

    # A feed or page whose task ends without its outcome stored is still due or pending in
    # the database; out of ``_feeds`` / the frontier, its lease is given back at the next tick.

    async def _poll(self, feed: Feed) -> None:
        assert self.ingestor is not None
        try:
            found = await self.ingestor.poll(feed)
            if found:
                await self.retry()  # take this worker's share of the new pages, oldest first
        except StoreUnavailableError as exc:
            self._database_failed(exc)
        except StoreError as exc:
            log.error("feed not recorded: %s", exc, extra={"feed_url": feed.url, "error": "store"})
        except Exception:
            log.exception("feed dropped", extra={"feed_url": feed.url, "error": "bug"})

    async def _archive(self, job: PageJob) -> None:
        assert self.ingestor is not None
        try:
            await self.ingestor.archive(job)
        except StoreUnavailableError as exc:
            self._database_failed(exc)
        except StoreError as exc:
            log.error("page not recorded: %s", exc, extra={"url": job.url, "error": "store"})
        except Exception:
            log.exception("page dropped", extra={"url": job.url, "error": "bug"})

    # --- the database's state ------------------------------------------------------------------

    def _database_failed(self, exc: StoreUnavailableError, *, attempt: bool = False) -> None:
        """Count the error; if the database just went down (or a try failed), say so once
        and schedule the next try."""
        metrics.DATABASE_ERRORS.inc()
        wait = self.database.failed(exc, attempt=attempt)
        if wait is None:
            return  # work that was in flight: known already
        metrics.DATABASE_UP.set(0)
        self._database_up.clear()
        self.store.unavailable = str(exc)  # work in flight fails at once, without waiting
        if self.ingestor is not None:
            self.ingestor.paused = True
        log.warning(
            "database unavailable, claiming nothing; next try in %g s: %s",
            wait,
            exc,
            extra={"error": "database_unavailable", "retry_in": wait},
        )
        if self._database_try is not None:
            self._database_try.cancel()
        loop = asyncio.get_running_loop()
        self._database_try = loop.call_later(wait, self._try_database)

    async def _wait_for_database(self, exc: StoreUnavailableError) -> None:
        self._database_failed(exc)
        await self._database_up.wait()

    def _try_database(self) -> None:
        self._database_try = None
        if not self._stopping.is_set() and self.ingestor is not None:
            self.store.unavailable = None
            self._claim_feeds(attempt=True)  # the tick's own work is the try

    def _database_answered(self) -> None:
        down_for = self.database.succeeded()
        if down_for is None:
            return
        metrics.DATABASE_UP.set(1)
        self._database_up.set()
        if self.ingestor is not None:
            self.ingestor.paused = False
        log.info(
            "database available again after %.1f s",
            down_for,
            extra={"down_seconds": round(down_for, 1)},
        )
        self._chore(self.retry())  # the pages given back, and the rest pending, at once

    # --- /healthz and /metrics -----------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the clock ticks (the scheduler has run ``tick`` lately) and the
        database answers."""
        now = time.monotonic()
        since = now - (self._last_tick or self._started)
        ticking = since < max(3 * self.settings.daemon.tick, 30.0)
        if self._stopping.is_set():
            status = "stopping"
        elif not ticking:
            status = "stalled"
        elif not self.database.up:
            status = "database_unavailable"
        else:
            status = "ok"
        data: dict[str, Any] = {
            "status": status,
            "uptime_seconds": round(now - self._started, 1),
            "seconds_since_tick": round(since, 1),
            "feeds_in_flight": len(self._feeds),
            "pages_in_flight": len(self._running),
            "pages_queued": self.ingestor.frontier.queued if self.ingestor else 0,
        }
        if not self.database.up:
            data["database_error"] = self.database.error
            data["database_down_seconds"] = round(self.database.down_for(), 1)
        return status == "ok", data

    async def _serve(self) -> asyncio.Server:
        host, _, port = self.settings.daemon.listen.rpartition(":")
        server = await asyncio.start_server(self._answer, host.strip("[]"), int(port))
        log.info("serving /healthz and /metrics", extra={"listen": self.settings.daemon.listen})
        return server

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method not in {"GET", "HEAD"}:
                status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path.split("?")[0] == "/healthz":
                healthy, data = self.health()
                status = "200 OK" if healthy else "503 Service Unavailable"
                kind, body = "application/json", json.dumps(data).encode() + b"\n"
            elif path.split("?")[0] == "/metrics":
                status, kind, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            else:
                status, kind, body = "404 Not Found", "text/plain", b"/healthz or /metrics\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a client that does not speak HTTP gets nothing
        finally:
            writer.close()
