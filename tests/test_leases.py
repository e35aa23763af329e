"""Several workers on one archive: leases on feeds and pages, shared host spacing.

Each test opens the same real database (SQLite file or a PostgreSQL schema) through two or
more `Store` objects, one per worker, as separate daemons would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from ingest.captures import pack
from ingest.config import FeedSettings
from ingest.entryparts import entry_key
from ingest.models import Feed
from ingest.polite import Hosts
from ingest.records import ExtractedArticle, FeedEntry, Page, PageJob, utcnow
from ingest.store import Store
from tests.conftest import Ingest, write_config
from tests.newsroom import Newsroom
from tests.virtual_clock import VirtualClock

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
FEEDS = [FeedSettings(url=f"https://news{n}.example.org/rss", name=f"f{n}") for n in range(6)]


@pytest.fixture
def workers(database_url: str) -> Iterator[list[Store]]:
    stores = [Store.open(database_url) for _ in range(3)]
    yield stores
    for store in stores:
        store.close()


def entry(n: int) -> FeedEntry:
    link = f"https://news.example.org/story-{n}"
    return FeedEntry(
        key=entry_key(None, link, None, None),
        guid=None,
        link=link,
        title=f"Story {n}",
        summary=None,
        content=None,
    )


def page(job: PageJob) -> Page:
    return Page(job.url, job.url, 200, {"content-type": "text/html"}, b"<p>x</p>", NOW)


def count(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar() or 0)


def ids(feeds: list[Feed]) -> set[int]:
    return {f.id or 0 for f in feeds}


# --- feeds ----------------------------------------------------------------------------------------


def test_workers_claim_disjoint_due_feeds(workers: list[Store]) -> None:
    a, b, _ = workers
    rows = a.sync_feeds(FEEDS)

    first = a.claim_feeds(NOW, limit=4)
    second = b.claim_feeds(NOW, limit=4)

    assert len(first) == 4 and len(second) == 2
    assert ids(first) | ids(second) == ids(rows)
    assert not ids(first) & ids(second)
    assert b.claim_feeds(NOW, limit=10) == []  # all held


def test_a_polled_feed_is_released_and_not_due_again_until_its_time(
    workers: list[Store],
) -> None:
    a, b, _ = workers
    a.sync_feeds(FEEDS[:1])
    (feed,) = a.claim_feeds(NOW)

    a.feed_polled(feed.id or 0, status="ok", next_poll_at=NOW + timedelta(hours=1))

    assert b.claim_feeds(NOW + timedelta(minutes=59)) == []
    assert ids(b.claim_feeds(NOW + timedelta(hours=1))) == {feed.id}


def test_a_crashed_workers_feeds_return_when_its_lease_runs_out(workers: list[Store]) -> None:
    a, b, _ = workers
    a.sync_feeds(FEEDS)
    held = a.claim_feeds(NOW, limit=10)  # and then a dies without polling them

    assert b.claim_feeds(NOW + a.lease - timedelta(seconds=1), limit=10) == []
    assert ids(b.claim_feeds(NOW + a.lease + timedelta(seconds=1), limit=10)) == ids(held)


def test_claiming_named_feeds_skips_those_another_worker_polls(workers: list[Store]) -> None:
    a, b, _ = workers
    rows = a.sync_feeds(FEEDS[:3])
    a.claim_feeds(NOW, only=[rows[1].id or 0])

    got = b.claim_feeds(NOW, only=[r.id or 0 for r in rows], limit=3)

    assert [f.id for f in got] == [rows[0].id, rows[2].id]


def test_release_gives_back_a_stopping_workers_feeds_and_pages(workers: list[Store]) -> None:
    a, b, _ = workers
    rows = a.sync_feeds(FEEDS[:2])
    a.claim_feeds(NOW, limit=2)
    jobs = a.record_entries(rows[0], [entry(1), entry(2)]).jobs

    a.release()

    assert ids(b.claim_feeds(NOW, limit=2)) == ids(rows)
    assert [j.article_id for j in b.claim_pages(utcnow())] == [j.article_id for j in jobs]


# --- pages ----------------------------------------------------------------------------------------


def test_new_pages_belong_to_the_worker_that_found_them(workers: list[Store]) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    jobs = a.record_entries(feed, [entry(n) for n in range(3)]).jobs

    assert len(jobs) == 3
    assert b.claim_pages(utcnow()) == []
    late = b.claim_pages(utcnow() + a.lease + timedelta(seconds=1))
    assert [j.article_id for j in late] == [j.article_id for j in jobs]


def test_renewed_leases_are_kept(workers: list[Store]) -> None:
    a, b, c = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    jobs = a.record_entries(feed, [entry(1)]).jobs
    more = c.record_entries(feed, [entry(2)]).jobs  # another worker's, not renewed by a
    start = utcnow()

    a.renew(start + timedelta(minutes=4), feeds=[], articles=[jobs[0].article_id])

    after = b.claim_pages(start + timedelta(minutes=6))
    assert [j.article_id for j in after] == [more[0].article_id]  # only a's is still held
    assert [j.article_id for j in b.claim_pages(start + timedelta(minutes=10))] == [
        jobs[0].article_id
    ]


def test_renewal_keeps_the_work_in_hand_and_gives_back_the_rest(workers: list[Store]) -> None:
    a, b, _ = workers
    rows = a.sync_feeds(FEEDS[:2])
    polling = a.claim_feeds(NOW, limit=2)
    jobs = a.record_entries(rows[0], [entry(n) for n in range(4)]).jobs
    # a still polls one feed and fetches two pages; the rest it dropped (a task that died,
    # an outcome the database would not take)
    kept_feed, kept_pages = polling[0].id or 0, [j.article_id for j in jobs[:2]]
    later = utcnow() + timedelta(minutes=4)

    freed = a.renew(later, feeds=[kept_feed], articles=kept_pages)

    assert freed == 1 + 2
    assert ids(b.claim_feeds(NOW, limit=2)) == {polling[1].id}
    assert [j.article_id for j in b.claim_pages(later)] == [j.article_id for j in jobs[2:]]
    # what a holds stays a's past the first lease: renewed from ``later``
    assert b.claim_pages(later + a.lease - timedelta(seconds=1)) == []


def test_renewal_takes_a_hand_larger_than_sqlites_parameter_limit(workers: list[Store]) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    jobs = a.record_entries(feed, [entry(n) for n in range(3)]).jobs
    hand = [*range(100_000, 140_000), jobs[0].article_id]  # 40,001 ids, one bound parameter

    assert a.renew(utcnow(), feeds=range(50_000), articles=hand) == 2

    assert [j.article_id for j in b.claim_pages(utcnow())] == [j.article_id for j in jobs[1:]]
    a.release(articles=hand)
    assert [j.article_id for j in b.claim_pages(utcnow())] == [jobs[0].article_id]


def test_many_workers_claiming_at_once_get_each_page_once(workers: list[Store]) -> None:
    a = workers[0]
    (feed,) = a.sync_feeds(FEEDS[:1])
    a.record_entries(feed, [entry(n) for n in range(120)])
    a.release()
    claimed: list[list[int]] = [[] for _ in workers]
    start = threading.Barrier(len(workers))

    def claim(n: int) -> None:
        start.wait()
        while batch := workers[n].claim_pages(utcnow(), limit=7):
            claimed[n].extend(job.article_id for job in batch)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [article_id for got in claimed for article_id in got]
    assert len(every) == 120
    assert len(set(every)) == 120


def on(host: str, n: int) -> FeedEntry:
    link = f"https://{host}/story-{n}"
    return FeedEntry(entry_key(None, link, None, None), None, link, f"Story {n}", None, None)


def hosts_of(jobs: list[PageJob]) -> list[str]:
    return [job.url.split("/")[2] for job in jobs]


def test_pages_are_claimed_a_host_at_a_time_in_turn(workers: list[Store]) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    # One feed's many pages are found first, as a poll finds them; then two other hosts'.
    a.record_entries(feed, [on("busy.example", n) for n in range(6)], hold=False)
    a.record_entries(
        feed, [on(h, n) for h in ("b.example", "c.example") for n in range(2)], hold=False
    )

    first = b.claim_pages(utcnow(), limit=3)
    second = b.claim_pages(utcnow(), limit=4, per_host=1)

    assert sorted(hosts_of(first)) == ["b.example", "busy.example", "c.example"]
    assert sorted(hosts_of(second)) == ["b.example", "busy.example", "c.example"]
    assert sorted(hosts_of(b.claim_pages(utcnow()))) == ["busy.example"] * 4  # the rest


def test_idle_hosts_come_first_and_hosts_that_asked_to_wait_not_at_all(
    workers: list[Store],
) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    hosts = ("busy.example", "idle.example", "waiting.example")
    a.record_entries(feed, [on(h, n) for h in hosts for n in range(2)], hold=False)
    a.take_turn("busy.example", 60.0, utcnow().timestamp())  # it is being asked something
    a.block_host("waiting.example", utcnow() + timedelta(minutes=2), "http_429")

    first = b.claim_pages(utcnow(), limit=1)
    rest = b.claim_pages(utcnow())

    assert hosts_of(first) == ["idle.example"]
    assert sorted(hosts_of(rest)) == ["busy.example", "busy.example", "idle.example"]
    later = b.claim_pages(utcnow() + timedelta(minutes=3))  # its time is up, leases hold
    assert hosts_of(later) == ["waiting.example"] * 2


def test_under_a_delay_a_host_is_served_by_one_worker_at_a_time(workers: list[Store]) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    pages = [on(h, n) for h in ("one.example", "two.example") for n in range(3)]
    a.record_entries(feed, pages, hold=False)

    mine = a.claim_pages(utcnow(), limit=1, own_hosts=True)
    theirs = b.claim_pages(utcnow(), own_hosts=True)
    more = a.claim_pages(utcnow(), own_hosts=True)

    (host,) = set(hosts_of(mine))
    assert set(hosts_of(theirs)) == {"one.example", "two.example"} - {host}
    assert hosts_of(more) == [host, host]  # the rest of its own host
    a.release()
    assert hosts_of(b.claim_pages(utcnow(), own_hosts=True)) == [host] * 3  # a let it go


def test_a_page_stored_by_two_workers_is_stored_once(workers: list[Store]) -> None:
    a, b, _ = workers
    (feed,) = a.sync_feeds(FEEDS[:1])
    (job,) = a.record_entries(feed, [entry(1)]).jobs
    # a is slow: its lease runs out and b takes the page too
    (again,) = b.claim_pages(utcnow() + a.lease + timedelta(seconds=1))

    raw = pack(b"<html>Body.</html>")
    first = b.save_article(again, ExtractedArticle(text="Body."), page(again), raw=raw)
    second = a.save_article(job, ExtractedArticle(text="Body."), page(job), raw=raw)

    assert (first, second) == (job.article_id, None)
    assert count(a, "SELECT count(*) FROM articles") == 1
    assert count(a, "SELECT count(*) FROM captures") == 1
    assert count(a, "SELECT count(*) FROM capture_bodies") == 1


def test_a_dead_local_workers_leases_are_freed_at_once(workers: list[Store]) -> None:
    a, b, c = workers
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    a.owner = f"{socket.gethostname()}:{int(gone.stdout)}:dead01"  # a worker that crashed
    (feed,) = a.sync_feeds(FEEDS[:1])
    jobs = a.record_entries(feed, [entry(1), entry(2)]).jobs
    c.record_entries(feed, [entry(3)])  # c is alive (a store of this very process)

    assert b.release_orphans() == 1

    assert [j.article_id for j in b.claim_pages(utcnow())] == [j.article_id for j in jobs]


# --- host spacing ----------------------------------------------------------------------------


def test_host_turns_are_held_until_answered_across_workers(workers: list[Store]) -> None:
    a, b, _ = workers
    host = "news.example.org"

    assert a.take_turn(host, 60.0, 1000.0) == (None, None)  # a sends now, holds the host
    assert b.take_turn(host, 60.0, 1000.5) == (1060.0, None)  # until answered, or 60 s
    a.end_turn(host, 1060.0, 1003.0)  # a's answer arrived at 1001, the delay is 2 s
    assert b.take_turn(host, 60.0, 1002.0) == (1003.0, None)
    assert b.take_turn(host, 60.0, 1003.0) == (None, None)
    a.end_turn(host, 1060.0, 1001.0)  # a late end of an earlier turn changes nothing
    assert a.take_turn(host, 60.0, 1010.0) == (1063.0, None)
    assert b.take_turn("other.example.net", 60.0, 1003.0) == (None, None)  # hosts apart


def test_a_back_off_told_to_one_worker_reaches_the_others(workers: list[Store]) -> None:
    a, b, _ = workers
    until = utcnow() + timedelta(minutes=10)
    a.block_host("news.example.org", until, "rate_limited")

    _, blocked = b.take_turn("news.example.org", 1.0, 1000.0)

    assert blocked is not None and abs((blocked - until).total_seconds()) < 1e-3


def test_two_workers_hosts_wait_their_shared_turn(workers: list[Store]) -> None:
    a, b, _ = workers
    clock = VirtualClock()
    starts: list[float] = []
    hosts = []
    for store in (a, b, a):
        polite = Hosts(
            per_host=2, delay=1.5, clock=clock, sleep=clock.sleep, wall=lambda: clock() + 1e9
        )
        polite.shared = store
        hosts.append(polite)

    async def three_requests() -> None:
        for polite in hosts:
            async with polite.slot("https://news.example.org/story"):
                starts.append(clock())

    asyncio.run(three_requests())

    # Each worker finds the host's turn taken by the last request and waits for it to pass.
    assert [b - a for a, b in pairwise(starts)] == [1.5, 1.5]


# --- the one-shot CLI among workers ---------------------------------------------------------------


def test_fetch_skips_a_feed_another_worker_is_polling(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    cli = Ingest(
        tmp_path,
        write_config(tmp_path / "ingest.toml", newsroom, ["World", "Tech"], database=database_url),
    )
    other = Store.open(database_url)
    try:
        (world,) = other.sync_feeds(
            [FeedSettings(url=newsroom.url("/feeds/world.rss"), name="World")]
        )
        other.claim_feeds(utcnow(), only=[world.id or 0])  # another daemon is polling World

        result = cli("--log-format", "json", "fetch", "--format", "json")
    finally:
        other.close()

    summary = json.loads(result.stdout)
    assert summary["feeds"] == 1
    assert newsroom.requests_for("/feeds/world.rss") == []
    assert newsroom.requests_for("/feeds/tech.atom")
    assert "another worker is polling them" in result.stderr
