"""`ingest.frontier`: pages wait in per-host queues and go out as their host's turn comes.

Time is a virtual clock (`tests.virtual_clock`) shared by the frontier and `Hosts`; each
"page" is a task that takes its host's slot, as `Ingestor.archive` does, so the turns the
frontier sees are the ones real requests book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from ingest.frontier import WAIT_FOR_BLOCK, Frontier
from ingest.polite import Hosts, host_of
from ingest.records import PageJob
from tests.virtual_clock import VirtualClock

EPOCH = 1_700_000_000.0  # the wall clock is the virtual clock, this far on


def jobs(host: str, count: int, first_id: int) -> list[PageJob]:
    return [PageJob(first_id + n, f"https://{host}/story/{n}", 0) for n in range(count)]


def make(
    clock: VirtualClock, *, delay: float = 1.0, concurrency: int = 32, per_host: int = 2
) -> tuple[Hosts, Frontier]:
    hosts = Hosts(
        per_host=per_host, delay=delay, clock=clock, sleep=clock.sleep, wall=lambda: EPOCH + clock()
    )
    frontier = Frontier(hosts, concurrency=concurrency, clock=clock, sleep=clock.sleep)
    return hosts, frontier


async def crawl(
    hosts: Hosts,
    frontier: Frontier,
    clock: VirtualClock,
    *,
    work: float = 0.0,
) -> list[tuple[float, str]]:
    """Hand out every page, each fetched through its host's slot and then ``work`` seconds of
    extraction; (time the request started, host) of each, in order."""
    started: list[tuple[float, str]] = []

    async def page(job: PageJob) -> None:
        try:
            async with hosts.slot(job.url):
                started.append((clock(), host_of(job.url)))
            frontier.fetched(job)
            if work:
                await clock.sleep(work)
        finally:
            frontier.done(job)

    frontier.close()
    async with asyncio.TaskGroup() as group:
        while (job := await frontier.next()) is not None:
            group.create_task(page(job))
    return started


def first_turns(started: Sequence[tuple[float, str]], count: int) -> set[str]:
    return {host for _, host in started[:count]}


def test_every_host_with_work_is_served_before_a_busy_host_takes_a_second_turn() -> None:
    clock = VirtualClock()
    hosts, frontier = make(clock)
    frontier.add(jobs("busy.example", 20, 0))  # found first, as one feed's pages are
    for n, host in enumerate(("a.example", "b.example", "c.example", "d.example")):
        frontier.add(jobs(host, 2, 100 + 10 * n))

    started = asyncio.run(crawl(hosts, frontier, clock))

    assert first_turns(started, 5) == {
        "busy.example",
        "a.example",
        "b.example",
        "c.example",
        "d.example",
    }
    # The run takes the busy host's 20 turns, one a second, and not a second more.
    assert started[-1][0] - started[0][0] == 19.0
    assert [t for t, host in started if host == "a.example"] == [1000.0, 1001.0]


def test_no_two_requests_to_one_host_closer_than_its_delay() -> None:
    clock = VirtualClock()
    hosts, frontier = make(clock, delay=2.0, per_host=3)
    for n, host in enumerate(("a.example", "b.example", "c.example")):
        frontier.add(jobs(host, 5, 10 * n))

    started = asyncio.run(crawl(hosts, frontier, clock, work=0.5))

    for host in ("a.example", "b.example", "c.example"):
        times = [t for t, h in started if h == host]
        assert [b - a for a, b in pairwise(times)] == [2.0] * 4


def test_a_long_crawl_delay_holds_back_its_host_only() -> None:
    clock = VirtualClock()
    hosts, frontier = make(clock, delay=1.0)
    hosts.set_crawl_delay("slow.example", 30.0)
    frontier.add(jobs("slow.example", 3, 0))
    frontier.add(jobs("fast.example", 10, 100))

    started = asyncio.run(crawl(hosts, frontier, clock))

    fast = [t for t, h in started if h == "fast.example"]
    assert fast == [1000.0 + n for n in range(10)]  # never waits behind the slow host
    assert [t for t, h in started if h == "slow.example"] == [1000.0, 1030.0, 1060.0]


def test_pages_waiting_for_their_turn_hold_no_slot() -> None:
    # Two slots in all; one host with many pages must not take both while the others wait.
    clock = VirtualClock()
    hosts, frontier = make(clock, delay=5.0, concurrency=2)
    frontier.add(jobs("busy.example", 4, 0))
    frontier.add(jobs("other.example", 4, 100))

    started = asyncio.run(crawl(hosts, frontier, clock, work=0.1))

    assert [h for _, h in started[:2]] == ["busy.example", "other.example"]
    assert started[-1][0] - started[0][0] == 15.0  # 4 turns each, 5 s apart, side by side


def test_at_most_concurrency_pages_are_handed_out_and_not_done() -> None:
    clock = VirtualClock()
    _, frontier = make(clock, delay=0.0, concurrency=3)
    for n in range(10):
        frontier.add(jobs(f"h{n}.example", 1, n))
    peak = 0

    async def scenario() -> None:
        nonlocal peak
        frontier.close()
        running: set[asyncio.Task[None]] = set()

        async def page(job: PageJob) -> None:
            nonlocal peak
            peak = max(peak, len(frontier) - frontier.queued)
            await clock.sleep(1.0)
            frontier.done(job)

        while (job := await frontier.next()) is not None:
            task = asyncio.create_task(page(job))
            running.add(task)
        await asyncio.gather(*running)

    asyncio.run(scenario())
    assert peak == 3
    assert clock() == 1000.0 + 4.0  # ten pages, three at a time, a second each


def test_a_host_takes_its_next_turn_only_once_a_request_of_it_is_over() -> None:
    clock = VirtualClock()
    _, frontier = make(clock, delay=0.0, per_host=1)
    frontier.add(jobs("one.example", 3, 0))
    handed: list[float] = []

    async def scenario() -> None:
        frontier.close()
        tasks = []

        async def page(job: PageJob) -> None:
            await clock.sleep(2.0)  # a slow answer
            frontier.fetched(job)
            await clock.sleep(10.0)  # a slow extraction no longer holds the host
            frontier.done(job)

        while (job := await frontier.next()) is not None:
            handed.append(clock())
            tasks.append(asyncio.create_task(page(job)))
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert handed == [1000.0, 1002.0, 1004.0]


def test_a_short_retry_after_is_waited_out_a_long_one_fails_the_pages_at_once() -> None:
    clock = VirtualClock()
    hosts, frontier = make(clock, delay=0.0)
    now = datetime.fromtimestamp(EPOCH + clock(), UTC)
    hosts.block("short.example", now + timedelta(seconds=3))
    hosts.block("long.example", now + timedelta(seconds=WAIT_FOR_BLOCK + 60))
    frontier.add(jobs("short.example", 1, 0))
    frontier.add(jobs("long.example", 2, 10))

    handed: list[tuple[float, str]] = []

    async def scenario() -> None:
        frontier.close()
        while (job := await frontier.next()) is not None:
            handed.append((clock(), host_of(job.url)))
            frontier.done(job)

    asyncio.run(scenario())
    # The long-blocked host's pages go at once (they fail unsent and are retried later);
    # the short block is waited out, without a real sleep.
    assert handed[:2] == [(1000.0, "long.example"), (1000.0, "long.example")]
    assert handed[2] == (1003.0, "short.example")


def test_pages_are_held_once_and_given_up_when_a_worker_stops() -> None:
    clock = VirtualClock()
    _, frontier = make(clock)
    page = jobs("a.example", 1, 7)
    frontier.add(page + page + jobs("b.example", 2, 8))
    assert len(frontier) == 3 and 7 in frontier and frontier.hosts == 2

    given_up = frontier.take_queued()

    assert sorted(j.article_id for j in given_up) == [7, 8, 9]
    assert len(frontier) == 0 and frontier.hosts == 0
    frontier.close()
    assert asyncio.run(frontier.next()) is None


def test_a_hosts_new_pages_go_before_its_rechecks_and_rechecks_keep_its_delay() -> None:
    from ingest.records import Recheck

    clock = VirtualClock()
    hosts, frontier = make(clock, delay=1.0)
    rechecks = [
        PageJob(500 + n, f"https://news.example/old/{n}", 0, recheck=Recheck(etag=f'"{n}"'))
        for n in range(5)
    ]
    frontier.add(rechecks)  # claimed first (a daemon's room was free)
    frontier.add(jobs("news.example", 3, 0))  # then a poll finds new pages on that host
    frontier.add(jobs("other.example", 2, 100))

    started: list[tuple[float, int]] = []

    async def scenario() -> None:
        frontier.close()
        async with asyncio.TaskGroup() as group:
            while (job := await frontier.next()) is not None:

                async def page(job: PageJob = job) -> None:
                    try:
                        async with hosts.slot(job.url):
                            started.append((clock(), job.article_id))
                        frontier.fetched(job)
                    finally:
                        frontier.done(job)

                group.create_task(page())

    asyncio.run(scenario())
    on_news = [(t, a) for t, a in started if a < 100 or a >= 500]
    # Queued behind re-checks, the new pages still go first; then the re-checks, a second
    # apart throughout, as the host's delay says.
    assert [a for _, a in on_news] == [0, 1, 2, 500, 501, 502, 503, 504]
    assert [b - a for (a, _), (b, _) in pairwise(on_news)] == [1.0] * 7
