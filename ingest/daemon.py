"""`ingest daemon`: the same ingesting as `ingest fetch`, on a clock, for months.

APScheduler (3.x) drives three jobs: ``tick`` claims the feeds whose poll time has come (state
lives in the database, so a restart resumes the schedule where it was), ``retry`` resumes pages
left pending and retries failed pages that are due, ``reload`` re-reads the config file when it
changes (or on SIGHUP). SIGTERM and SIGINT stop claiming work, give what is in flight until the
shutdown timeout, cancel the rest (it stays pending in the database) and return. /healthz and
/metrics are served on ``[daemon] listen`` (`ingest.healthz`).

At the default log level the daemon says what it does and no more: that it started (its
feeds, its address, its archive), one "polled ..." line when the work a claim started is done
(feeds polled, new entries, articles stored, pages failed; polls that found nothing new are
said together, once a minute at most), one line per failure with its reason, the database's
outages, config reloads, and that it stopped.

Leases are kept on the work in hand only (``_feeds`` and the pages of the ingestor's frontier,
queued or in flight): a page whose task ended without its outcome stored is given back at the
next tick. When the database is unavailable (`StoreUnavailableError`) the daemon claims
nothing, leaves the pages not started pending, keeps the outcomes of pages already fetched
until they can be stored, tries the database again after a doubling wait (`DatabaseState`),
one log line per try, and resumes by itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest import metrics
from ingest.config import Settings, load_settings
from ingest.dbstate import DatabaseState
from ingest.errors import ConfigError, StoreError, StoreUnavailableError
from ingest.healthz import serve
from ingest.models import Feed
from ingest.net import HttpClient
from ingest.pipeline import Ingestor
from ingest.records import PageJob, utcnow
from ingest.store import Store
from ingest.summary import RoundTally, plural
from ingest.workers import ExtractorPool

log = logging.getLogger("ingest.daemon")

CLAIM_HORIZON = 4.0  # seconds of each host's turns that one claim of pages covers
# A "polled ..." line is written when the work a claim started is done and brought something
# new; polls that found nothing new, and a daemon that is never idle, get one this often.
ROUND_LINE_EVERY = 60.0


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
        self._round = RoundTally()  # what the next "polled ..." line says
        self._round_said = time.monotonic()

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: no new work is claimed")
            self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # The address first: a daemon that cannot serve it stops before touching the archive.
        listen = self.settings.daemon.listen
        server = await serve(listen, self.health) if listen else None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._chore(self.reload(force=True)))
        rules = self.settings.daemon
        try:
            self.store.release_orphans()
            self.store.sync_feeds(self.settings.feeds, exclusive=True, rules=self.settings.schedule)
            async with (
                HttpClient(self.settings.fetch) as http,
                ExtractorPool(
                    self.settings.extract.workers, timeout=self.settings.extract.timeout
                ) as pool,
            ):
                self.ingestor = Ingestor(
                    self.settings, self.store, http, pool, clock=self.clock, tally=self._round
                )
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
                self._say_started(server)
                await self._stopping.wait()
                scheduler.shutdown(wait=False)
                dispatch.cancel()
                self.ingestor.paused = True  # queued pages stay pending; running ones finish
                self.ingestor.frontier.take_queued()  # released below, for any worker
                # Leave time for the worker pool and the HTTP client to close within the bound.
                await self._drain(max(rules.shutdown_timeout - 4.0, rules.shutdown_timeout / 2))
                self._say_round(idle=True, final=True)
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

    def _say_started(self, server: asyncio.Server | None) -> None:
        """The line that says the daemon is up: its feeds, where it answers, its archive."""
        if server is not None:
            host, port = server.sockets[0].getsockname()[:2]
            listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            serving = f"/healthz and /metrics on http://{listen}"
        else:
            listen, serving = "", "no /healthz or /metrics (daemon.listen is empty)"
        archive = sa.make_url(self.settings.database.url).render_as_string(hide_password=True)
        feeds = len(self.settings.feeds)
        log.info(
            "daemon started: %s, %s, archive %s",
            plural(feeds, "feed"),
            serving,
            archive,
            extra={"feeds": feeds, "listen": listen or None, "database": archive},
        )

    def _say_round(self, *, idle: bool, final: bool = False) -> None:
        """One line for what was done since the last: when the work in hand is done (``idle``)
        and brought something new, else every `ROUND_LINE_EVERY` seconds at most (polls
        that found nothing new are said together), and what is left at the ``final`` one."""
        if not self._round.counted:
            return
        due = final or time.monotonic() - self._round_said >= ROUND_LINE_EVERY
        if not due and not (idle and self._round.news):
            return
        message, keys = self._round.line()
        held = len(self.ingestor.frontier) if self.ingestor is not None else 0
        if held:
            message += f"; {plural(held, 'page')} in hand"
        log.info(message, extra={**keys, "pages_in_hand": held})
        self._round = RoundTally()
        if self.ingestor is not None:
            self.ingestor.tally = self._round
        self._round_said = time.monotonic()

    def _idle(self) -> bool:
        return not self._feeds and (self.ingestor is None or not len(self.ingestor.frontier))

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
        self._say_round(idle=self._idle())
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
        """Resume pending pages and retry failed pages whose time has come; with room left,
        look again at archived pages due for a re-check."""
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
            if self.settings.versions.recheck and len(jobs) < room:
                # Re-checks take only the room new pages leave: they never starve them.
                jobs += self.store.claim_rechecks(self.clock(), limit=room - len(jobs))
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
            # A shortened interval takes effect now, not after the longer wait.
            self.store.sync_feeds(
                fresh.feeds, exclusive=True, rules=fresh.schedule, before=self.settings.schedule
            )
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
        feeds = len(self.settings.feeds)
        log.info("config reloaded: %s", plural(feeds, "feed"), extra={"feeds": feeds})
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
        self._round.add("feeds")
        if self._idle():
            self._say_round(idle=True)
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
        if self._idle():
            self._say_round(idle=True)
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
