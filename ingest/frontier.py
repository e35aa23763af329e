"""The frontier: pages waiting to be fetched, one queue per host, handed out as hosts' turns come.

A poll finds pages on one host (a feed lists its own site), so pages taken in the order they
were found would fill every request slot with two or three hosts' pages, each waiting for its
host's turn under `fetch.host_delay`, while every other host sat idle. The frontier keeps a
queue per host and hands out the page of the host whose turn comes first (its delay, its
robots.txt Crawl-delay or its Retry-After, as `ingest.polite.Hosts` knows them): every host
with work is served at its own pace, and a page waiting for its host's turn holds no slot.

Two bounds: at most ``concurrency`` pages handed out and not yet done (a fetched page waits in
memory for its extraction and store), and at most `Hosts.concurrency` pages of one host whose
request is not over (one, with a delay). `Hosts.slot` still enforces each host's spacing; the
frontier only chooses the order, so that a request rarely has to wait there.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from ingest.polite import Hosts, host_of
from ingest.records import PageJob

# Seconds of a host's Retry-After that its queued pages wait out; a longer one fails them at
# once (unsent, not counted as an attempt), to be claimed again when the time is up.
WAIT_FOR_BLOCK = 30.0


class Frontier:
    """Per-host queues of `PageJob`; `next` waits for the next page that may start.

    ``clock`` is monotonic seconds (the clock of ``hosts``) and ``sleep`` waits on it: tests
    inject both.
    """

    def __init__(
        self,
        hosts: Hosts,
        *,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._hosts = hosts
        self._concurrency = max(concurrency, 1)
        self._clock = clock
        self._sleep = sleep
        self._queues: dict[str, deque[PageJob]] = {}
        # Hosts with queued pages and a free request slot, by when their turn comes (an
        # estimate, checked again when it reaches the top: turns only move later).
        self._due: list[tuple[float, int, str]] = []
        self._listed: set[str] = set()  # hosts in `_due`
        self._order = itertools.count()  # ties: first come, first served
        self._fetching: dict[int, str] = {}  # pages handed out whose request is not over
        self._active: dict[str, int] = {}  # per host: pages in `_fetching`
        self._given: dict[str, float] = {}  # per host: the turn after our last hand-out
        self._held: dict[int, PageJob] = {}  # every page queued or handed out, not done
        self._running = 0  # pages handed out, not done
        self._changed = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        """Pages held: queued or handed out and not done."""
        return len(self._held)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._held

    @property
    def queued(self) -> int:
        return len(self._held) - self._running

    @property
    def hosts(self) -> int:
        """Hosts with pages queued."""
        return len(self._queues)

    def held(self) -> list[int]:
        """The article ids of every page held."""
        return list(self._held)

    def add(self, jobs: Iterable[PageJob]) -> None:
        """Queue pages (a page already held is not queued twice); a host's new pages before
        its re-checks."""
        for job in jobs:
            if job.article_id in self._held:
                continue
            self._held[job.article_id] = job
            host = host_of(job.url)
            queue = self._queues.setdefault(host, deque())
            if job.recheck is None and queue and queue[-1].recheck is not None:
                # New pages go before a host's re-checks: looking again never starves them.
                at = next(i for i, queued in enumerate(queue) if queued.recheck is not None)
                queue.insert(at, job)
            else:
                queue.append(job)
            self._list(host)
        self._changed.set()

    def close(self) -> None:
        """No more pages will be added: `next` returns None once the queues are empty."""
        self._closed = True
        self._changed.set()

    def open(self) -> None:
        """Pages will be added again (another run of the same worker)."""
        self._closed = False

    def take_queued(self) -> list[PageJob]:
        """Remove and return every page not handed out yet (a worker stopping gives them up)."""
        jobs = [job for queue in self._queues.values() for job in queue]
        self._queues.clear()
        self._due.clear()
        self._listed.clear()
        for job in jobs:
            del self._held[job.article_id]
        return jobs

    async def next(self) -> PageJob | None:
        """The next page that may start now, marked handed out; None once closed and empty."""
        while True:
            wait: float | None = None
            if self._running < self._concurrency and self._due:
                now = self._clock()
                host, turn = self._top()
                if turn <= now:
                    return self._hand_out(host, now)
                wait = turn - now
            if self._closed and not self._queues:
                return None
            await self._wait(wait)

    def fetched(self, job: PageJob) -> None:
        """The page's request is over (answered or failed): its host may take another turn."""
        host = self._fetching.pop(job.article_id, None)
        if host is None:
            return
        self._active[host] -= 1
        if not self._active[host]:
            del self._active[host]
        self._list(host)
        self._changed.set()

    def done(self, job: PageJob) -> None:
        """The page is stored or failed: it leaves the frontier."""
        self.fetched(job)
        if self._held.pop(job.article_id, None) is not None:
            self._running -= 1
        host = host_of(job.url)
        if host not in self._queues and host not in self._active:
            self._given.pop(host, None)  # `Hosts` keeps the host's turn while it matters
        self._changed.set()

    # --- inside ----------------------------------------------------------------------------

    def _turn(self, host: str) -> float:
        turn = max(self._hosts.turn_at(host), self._given.get(host, 0.0))
        blocked = self._hosts.blocked_for(host)
        if blocked > WAIT_FOR_BLOCK:
            return 0.0  # its pages fail at once, unsent, and are retried when the time is up
        return max(turn, self._clock() + blocked) if blocked else turn

    def _list(self, host: str) -> None:
        """Put ``host`` among the due hosts, if it has pages queued and a free slot."""
        if host in self._listed or host not in self._queues:
            return
        if self._active.get(host, 0) >= self._hosts.concurrency(host):
            return
        self._listed.add(host)
        heapq.heappush(self._due, (self._turn(host), next(self._order), host))

    def _top(self) -> tuple[str, float]:
        """The host whose turn comes first, with that turn."""
        while True:
            estimate, order, host = self._due[0]
            turn = self._turn(host)
            if turn <= estimate:
                return host, turn
            heapq.heapreplace(self._due, (turn, order, host))

    def _hand_out(self, host: str, now: float) -> PageJob:
        heapq.heappop(self._due)
        self._listed.discard(host)
        queue = self._queues[host]
        job = queue.popleft()
        if not queue:
            del self._queues[host]
        self._running += 1
        self._fetching[job.article_id] = host
        self._active[host] = self._active.get(host, 0) + 1
        if self._hosts.blocked_for(host) <= WAIT_FOR_BLOCK:
            # Until its request books the host's next turn in `Hosts`, ours stands in for it.
            self._given[host] = now + self._hosts.spacing(host)
        self._list(host)
        return job

    async def _wait(self, seconds: float | None) -> None:
        """Until something changes (a page added, fetched or done), or ``seconds`` pass."""
        self._changed.clear()
        if seconds is None:
            await self._changed.wait()
            return
        changed = asyncio.ensure_future(self._changed.wait())
        slept = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((changed, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            slept.cancel()
