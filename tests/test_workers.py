"""Three `ingest daemon` processes sharing one PostgreSQL archive, one of them killed mid-run.

The loopback newsroom serves many feeds (some articles listed by two feeds) with slow feed and
page answers, so work is in flight everywhere. Each worker sends its own User-Agent, so the
server's log tells who fetched what. At the end: every article stored exactly once, no feed
polled by two workers at once, and the killed worker's pages finished by the others.
"""

from __future__ import annotations

import re
import signal
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import Ingest
from tests.daemon_process import Daemon, free_port, wait_for
from tests.newsroom import Newsroom

FEEDS = 12
PER_FEED = 8
SHARED_EVERY = 4  # every 4th article of a feed is also listed by the next feed
WORKERS = 3
WORDS = (
    "harbour council ferry bridge valley river grain market school hospital station budget "
    "election festival library museum rail airport forest weather summit court energy water"
).split()


def article_html(n: int) -> str:
    words = [WORDS[(n * 7 + k) % len(WORDS)] for k in range(6)]
    title = f"Story {n}: the {words[0]} and the {words[1]} of {words[2]}"
    paragraphs = "".join(
        f"<p>Paragraph {p} of story {n}. The {words[p % 6]} committee met on Tuesday to "
        f"discuss the {words[(p + 1) % 6]} plan, which residents say will change how the "
        f"{words[(p + 2) % 6]} works for years. Officials expect a decision next month, after "
        f"a public hearing and a review of the costs by the {words[(p + 3) % 6]} office.</p>"
        for p in range(5)
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | '
        f'Valley Post</title><meta property="og:site_name" content="Valley Post">'
        f'<meta property="article:published_time" content="2025-03-{1 + n % 28:02d}T08:00:00Z">'
        f'</head><body><nav><a href="/">Home</a> <a href="/news/">News</a></nav><article>'
        f"<h1>{title}</h1>{paragraphs}</article><footer>© 2025 Valley Post</footer></body></html>"
    )


def listed(feed: int) -> list[int]:
    """The articles feed ``feed`` lists: its own, and some of the previous feed's."""
    own = [feed * PER_FEED + k for k in range(PER_FEED)]
    borrowed = [(feed - 1) % FEEDS * PER_FEED + k for k in range(0, PER_FEED, SHARED_EVERY)]
    return own + borrowed


def rss(room: Newsroom, feed: int, *, empty: bool = False) -> str:
    date = format_datetime(datetime(2025, 3, 14, 16, tzinfo=UTC), usegmt=True)
    items = "".join(
        f"<item><title>Story {n}</title><link>{room.url(f'/gen/story-{n}.html')}</link>"
        f"<guid>story-{n}</guid><pubDate>{date}</pubDate></item>"
        for n in ([] if empty else listed(feed))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>{room.url('/')}</link>{items}</channel></rss>"
    )


@pytest.fixture
def room() -> Iterator[Newsroom]:
    with Newsroom() as newsroom:
        publish(newsroom)
        for feed in range(FEEDS):
            newsroom.delay(f"/gen/feed-{feed}.rss", 0.3)  # overlapping polls would show
        for n in range(FEEDS * PER_FEED):
            path = f"/gen/story-{n}.html"
            newsroom.set(path, article_html(n), headers={"Content-Type": "text/html"})
            newsroom.delay(path, 0.15)
        yield newsroom


def publish(room: Newsroom, *, empty: bool = False) -> None:
    for feed in range(FEEDS):
        room.set(
            f"/gen/feed-{feed}.rss",
            rss(room, feed, empty=empty),
            headers={"Content-Type": "application/rss+xml"},
        )


def worker_config(
    tmp_path: Path,
    room: Newsroom,
    database: str,
    n: int,
    port: int,
    *,
    feeds: range = range(FEEDS),
) -> Ingest:
    lines = [
        "[database]",
        f'url = "{database}"',
        'lease = "3s"',  # a killed worker's work returns to the others after 3 s
        "[fetch]",
        "allow_private_networks = true",
        "host_delay = 0",
        "concurrency = 4",  # a worker holds at most 8 pages: the others get their share
        f'user_agent = "ingest-test/worker-{n}"',
        "[extract]",
        "workers = 1",
        "[schedule]",
        'interval = "1s"',
        'min_interval = "1s"',
        'max_interval = "2s"',
        "[daemon]",
        f'listen = "127.0.0.1:{port}"',
        'tick = "0.2s"',
        'retry_every = "0.3s"',
        'reload_every = "30s"',
    ]
    for feed in feeds:
        lines += ["[[feeds]]", f'url = "{room.url(f"/gen/feed-{feed}.rss")}"']
    path = tmp_path / f"worker-{n}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Ingest(tmp_path, path)


def worker_of(user_agent: str) -> int:
    found = re.search(r"worker-(\d+)", user_agent)
    assert found, user_agent
    return int(found.group(1))


def test_three_workers_store_every_article_once_and_finish_a_killed_workers_work(
    tmp_path: Path, room: Newsroom, postgres_url: str
) -> None:
    # All three start at once on an empty database: one creates the schema, two wait. The
    # feeds list nothing until every worker is up, so a slow starter (a loaded machine) still
    # finds work to share, and to be killed holding.
    publish(room, empty=True)
    daemons: list[Daemon] = []
    try:
        for n in range(WORKERS):
            port = free_port()
            daemons.append(
                Daemon(worker_config(tmp_path, room, postgres_url, n, port), postgres_url, port)
            )
        for daemon in daemons:
            wait_for("every worker to be up", daemon.healthy)
        publish(room)
        probe = daemons[0]
        articles = FEEDS * PER_FEED

        def stored() -> int:
            rows = probe.query("SELECT count(*) FROM articles WHERE status = 'ok'")
            return int(rows[0][0]) if rows else 0

        victim = daemons[-1]
        pid = victim.process.pid

        def victim_holds_pages() -> list[int]:
            if stored() < articles // 5:
                return []
            rows = probe.query(
                f"SELECT id FROM articles WHERE lease_owner LIKE '%:{pid}:%' AND status <> 'ok'"
            )
            return [r[0] for r in rows]

        wait_for("the last worker to hold pages in flight", victim_holds_pages)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        held = victim_holds_pages()  # what it held and had not stored when it died
        wait_for("every article stored", lambda: stored() == articles, timeout=120)
        statuses = [d.stop()[0] for d in daemons[:-1]]
    finally:
        for daemon in daemons:
            daemon.kill()

    assert statuses == [0, 0]
    # Exactly once: one row and one capture per article, one entry per (feed, article) listed.
    rows = probe.query("SELECT url, status FROM articles ORDER BY url")
    assert len(rows) == articles and {status for _, status in rows} == {"ok"}
    assert {url for url, _ in rows} == {room.url(f"/gen/story-{n}.html") for n in range(articles)}
    assert probe.query("SELECT count(*), count(DISTINCT article_id) FROM captures") == [
        (articles, articles)
    ]
    entries = probe.query("SELECT count(*) FROM entries")[0][0]
    assert entries == sum(len(listed(feed)) for feed in range(FEEDS))
    # Every worker worked; the dead one's leased pages were fetched again by the others.
    pages = [r for r in room.requests if r.bare_path.startswith("/gen/story-")]
    assert {worker_of(r.headers["User-Agent"]) for r in pages} == set(range(WORKERS))
    assert held
    taken_over = probe.query(
        f"SELECT url FROM articles WHERE id IN ({','.join(str(i) for i in held)})"
    )
    for (url,) in taken_over:
        path = url.removeprefix(room.base_url)
        fetchers = {worker_of(r.headers["User-Agent"]) for r in room.requests_for(path)}
        assert fetchers - {WORKERS - 1}, f"{path} was only ever fetched by the killed worker"
    assert probe.query("SELECT count(*) FROM articles WHERE lease_owner IS NOT NULL") == [(0,)]
    # No feed was polled by two workers at once (requests to one feed never overlap).
    polls: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for request in room.requests:
        if request.bare_path.startswith("/gen/feed-"):
            assert request.finished is not None
            polls[request.bare_path].append((request.started, request.finished))
    assert len(polls) == FEEDS
    for path, spans in polls.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert start >= end, f"{path} was polled by two workers at once"


def test_a_hosts_delay_holds_across_workers(
    tmp_path: Path, room: Newsroom, postgres_url: str
) -> None:
    delay = 0.3
    publish(room, empty=True)  # nothing to do until both workers are up
    daemons: list[Daemon] = []
    try:
        for n in range(2):
            port = free_port()
            cli = worker_config(tmp_path, room, postgres_url, n, port, feeds=range(2))
            text = cli.config.read_text().replace("host_delay = 0", f"host_delay = {delay}")
            cli.config.write_text(text)
            daemons.append(Daemon(cli, postgres_url, port))
        for daemon in daemons:
            wait_for("both workers to be up", daemon.healthy)
        publish(room)
        articles = len({n for feed in range(2) for n in listed(feed)})

        def stored() -> bool:
            rows = daemons[0].query("SELECT count(*) FROM articles WHERE status = 'ok'")
            return bool(rows) and rows[0][0] == articles

        wait_for("every article stored", stored, timeout=90)
        # One worker may have taken every page (the frontier lets one worker keep a host
        # whose delay it paces); the feeds are polled again every second or two by whichever
        # worker ticks first, so the other's requests come: the delay must hold across both.
        wait_for(
            "requests from both workers",
            lambda: {worker_of(r.headers["User-Agent"]) for r in room.requests} == {0, 1},
        )
        for daemon in daemons:
            daemon.stop()
    finally:
        for daemon in daemons:
            daemon.kill()

    requests = sorted(room.requests, key=lambda r: r.started)
    assert {worker_of(r.headers["User-Agent"]) for r in requests} == {0, 1}
    # One host, two workers: still one request per `host_delay`. Arrival times jitter (a
    # request can reach the server late behind a busy event loop), so count over windows:
    # unshared, two workers would send five requests in about a second.
    starts = [r.started for r in requests]
    assert starts[-1] - starts[0] >= 0.9 * (len(starts) - 1) * delay
    window = 4
    spans = [later - first for first, later in zip(starts, starts[window:], strict=False)]
    assert min(spans) >= window * delay - 0.35, sorted(spans)[:3]
