"""A first run over many hosts under politeness: every host is served from the start, each at
its own pace, with the real CLI and the real daemon against loopback hosts 127.0.0.2 ...

One host has many pages and its feed answers first, as a big site's feed often does; the
others have a few each and feeds that answer a little later. With only 6 requests in flight
allowed, pages taken in the order they were found would all be the big host's, each waiting
for its turn, while the other hosts sat idle (`fetch.host_delay` apart, the big host alone
takes most of the run). The frontier serves every host with work as its turn comes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import pytest

from bench.newsroom import EPOCH, HTML_TYPE, RSS_TYPE, LoopbackSite, Request, Resource, rss
from tests.conftest import Ingest
from tests.daemon_process import FAST, Daemon, free_port, wait_for

DELAY = 0.4
PAGES = [8, 2, 2, 2, 2, 2]  # per host; host 0 is the big one


def page(host: int, n: int) -> bytes:
    words = " ".join(f"host{host} story{n} paragraph{p} of plain reporting." for p in range(30))
    return (
        f"<html><head><title>Story {n} of host {host}</title></head><body><article>"
        f"<h1>Story {n} of host {host}</h1><p>{words}</p><p>{words}</p></article></body></html>"
    ).encode()


@pytest.fixture
def web() -> Iterator[LoopbackSite]:
    with LoopbackSite(len(PAGES)) as site:
        site.latency["late"] = 0.3  # every feed but the big host's answers after 0.3 s
        for host, count in enumerate(PAGES):
            items = [
                {
                    "title": f"Story {n} of host {host}",
                    "url": site.add(
                        host, f"/news/{n}.html", Resource.make(page(host, n), HTML_TYPE)
                    ),
                    "summary": "A story.",
                    "published": str(EPOCH - 60 * n),
                }
                for n in range(count)
            ]
            body = rss(f"Host {host}", site.origin(host) + "/", items, EPOCH)
            site.add(
                host, "/feed.rss" if host == 0 else "/late/feed.rss", Resource.make(body, RSS_TYPE)
            )
        site.requests = []
        yield site


def config(tmp_path: Path, site: LoopbackSite, database: str, extra: str = "") -> Ingest:
    lines = [
        "[database]",
        f'url = "{database}"',
        "[fetch]",
        "allow_private_networks = true",
        f"host_delay = {DELAY}",
        "concurrency = 6",
        extra,
    ]
    for host in range(len(PAGES)):
        path = "/feed.rss" if host == 0 else "/late/feed.rss"
        lines += ["[[feeds]]", f'url = "{site.origin(host)}{path}"']
    path = tmp_path / "ingest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Ingest(tmp_path, path)


def page_requests(requests: Sequence[Request]) -> list[Request]:
    return sorted((r for r in requests if r.path.startswith("/news/")), key=lambda r: r.started)


def check_served_in_turn(requests: Sequence[Request]) -> None:
    pages = page_requests(requests)
    assert len(pages) == sum(PAGES)
    # Every small host's first page went out before the big host's fourth: none sat idle
    # behind it (in found order, the small hosts would have waited for the big host's 6 slots
    # to free up: after its sixth page).
    big = [r.started for r in pages if r.host == 0]
    firsts = {r.host: r.started for r in reversed(pages)}
    assert all(firsts[host] < big[3] for host in range(1, len(PAGES)))
    # And no host was asked twice within the delay (robots.txt and feeds included).
    times: dict[int, list[float]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.started):
        times[request.host].append(request.started)
    gaps = [b - a for started in times.values() for a, b in pairwise(started)]
    assert min(gaps) >= DELAY * 0.95


def test_a_first_fetch_serves_every_host_at_its_own_pace(
    tmp_path: Path, web: LoopbackSite, database_url: str
) -> None:
    cli = config(tmp_path, web, database_url)

    summary = cli.json("fetch", "--format", "json")

    assert summary["articles_new"] == sum(PAGES)
    assert summary["articles_failed"] == 0
    check_served_in_turn(web.requests or [])
    rows = cli.jsonl("export", "--format", "jsonl")
    assert sorted(r["title"] for r in rows) == sorted(
        f"Story {n} of host {host}" for host, count in enumerate(PAGES) for n in range(count)
    )


def test_the_daemon_serves_every_host_at_its_own_pace(tmp_path: Path, web: LoopbackSite) -> None:
    archive = tmp_path / "archive.sqlite3"
    port = free_port()
    cli = config(tmp_path, web, f"sqlite:///{archive}", FAST.format(port=port))
    daemon = Daemon(cli, archive, port)
    try:
        stored = "SELECT count(*) FROM articles WHERE status = 'ok'"
        wait_for("every page stored", lambda: daemon.query(stored) == [(sum(PAGES),)])
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    check_served_in_turn(web.requests or [])
