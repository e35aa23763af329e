"""The daemon against the hostile web: it keeps running, records why, and nothing else suffers.

The private-address guard is ON here: only loopback is allowed (``allowed_networks``), so the
redirects to 10.0.0.1 and 169.254.169.254 must be refused before any connection is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import Ingest
from tests.daemon_process import FAST, Daemon, free_port, wait_for
from tests.hostile import OK_ARTICLES, WRONG_CHARSET_TEXT, HostileWeb

# Final outcome of each article page of /feeds/hostile.rss: "ok" or the failure's reason.
PAGE_OUTCOMES = {
    "/drip": "timeout",
    "/reset": "network",
    "/redirect-loop": "redirects",
    "/redirect-private": "blocked_address",
    "/redirect-robots": "robots_disallowed",  # robots.txt is asked for the target too
    "/gzip-bomb": "too_large",
    "/huge": "too_large",
    "/huge-declared": "too_large",
    "/invalid-utf8.html": "ok",
    "/wrong-charset.html": "ok",
    "/429": "http_429",
    "/503": "http_503",
    "/private/article.html": "robots_disallowed",
    "/slow-extract.html": "extract_timeout",
    "/ok/3.html": "ok",
}
# Feeds that are attacks themselves: the reason their poll failed, or "ok"/"malformed".
FEED_OUTCOMES = {
    "/feeds/ok.rss": {"ok"},
    "/billion-laughs.rss": {"ok", "malformed"},
    "/external-entity.rss": {"ok", "malformed"},
    "/external-entity-canary.rss": {"ok", "malformed"},
    "/external-entity-param.rss": {"ok", "malformed"},
    "/external-dtd.rss": {"ok", "malformed"},
    "/invalid-utf8.rss": {"ok", "malformed"},
    "/gzip-bomb.rss": {"too_large"},
    "/drip-headers": {"timeout"},
    "/redirect-metadata": {"blocked_address"},
    "/redirect-mapped": {"ok"},  # IPv4-mapped 127.0.0.1 is judged as 127.0.0.1: allowed here
}


@pytest.fixture
def archive(database_url: str) -> str:
    """SQLite or PostgreSQL: the hostile web is met the same way on both."""
    return database_url


@pytest.fixture
def web(tmp_path: Path) -> Iterator[HostileWeb]:
    # Short Retry-After values: the host is held back, then the test can see every outcome.
    with HostileWeb(
        canary=tmp_path / "canary.txt",
        retry_after_429=1,
        retry_after_503=1,
        retry_after_date=2,
        drip_seconds=30,
        huge_bytes=50_000_000,
        crawl_delay=1,
    ) as server:
        yield server


def hostile_config(tmp_path: Path, web: HostileWeb, archive: str, port: int) -> Ingest:
    # Feeds go through "localhost", pages through 127.0.0.1: two hosts, so the page host's
    # robots.txt Crawl-delay (1 s) does not also space out the feed polls.
    feeds = [f"http://localhost:{web.port}/feeds/hostile.rss"]
    feeds += [f"http://localhost:{web.port}{path}" for path in FEED_OUTCOMES]
    lines = [
        "[database]",
        f'url = "{archive}"',
        "[fetch]",
        "allow_private_networks = false",
        'allowed_networks = ["127.0.0.0/8", "::1/128"]',
        "host_delay = 0",
        "timeout = 3",
        "read_timeout = 2",
        "max_page_bytes = 5_000_000",
        "max_feed_bytes = 5_000_000",
        "max_attempts = 1",
        "[extract]",
        'timeout = "2s"',
        "workers = 2",
        FAST.format(port=port),
    ]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = tmp_path / "hostile.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Ingest(tmp_path, path)


def outcomes(daemon: Daemon, web: HostileWeb) -> dict[str, str]:
    rows = daemon.query("SELECT url, status, error FROM articles WHERE url IS NOT NULL")
    return {
        url.removeprefix(web.base_url): (status if status != "failed" else error)
        for url, status, error in rows
        if status != "pending"
    }


def test_the_daemon_survives_the_hostile_web(tmp_path: Path, web: HostileWeb, archive: str) -> None:
    port = free_port()
    cli = hostile_config(tmp_path, web, archive, port)
    daemon = Daemon(cli, archive, port)
    try:

        def settled() -> dict[str, str] | None:
            now = outcomes(daemon, web)
            return now if set(PAGE_OUTCOMES) <= set(now) else None

        got = wait_for("every hostile page to be settled", settled, timeout=150)
        healthy = daemon.healthy()
        feeds = {
            f["url"].split(str(web.port), 1)[1]: f for f in cli.json("feeds", "--format", "json")
        }
        _, metrics = daemon.get("/metrics")
        code, seconds = daemon.stop()
    finally:
        daemon.kill()

    assert {path: got[path] for path in PAGE_OUTCOMES} == PAGE_OUTCOMES
    assert healthy  # it kept running through all of it
    assert (code, seconds < 10) == (0, True)
    for path, allowed in FEED_OUTCOMES.items():
        assert feeds[path]["last_status"] in allowed, (path, feeds[path])

    # The good articles came through untouched; the ones with bad bytes came through readable.
    texts = dict(daemon.query("SELECT url, text FROM articles WHERE status = 'ok'"))
    for number in (1, 2, 3):
        assert OK_ARTICLES[number].title in cli("show", web.url(f"/ok/{number}.html")).stdout
    assert WRONG_CHARSET_TEXT in texts[web.url("/wrong-charset.html")] or WRONG_CHARSET_TEXT in (
        cli("show", web.url("/wrong-charset.html")).stdout
    )
    # Never fetched: what robots.txt forbids, and what the guard refused.
    assert web.requests_for("/private/article.html") == []
    assert web.requests_for("/no-ingest/article.html") == []
    # Entity tricks read nothing: no local file, no DTD from the network.
    everything = json.dumps(daemon.query("SELECT title, summary, text FROM articles"))
    everything += json.dumps(daemon.query("SELECT title FROM feeds"))
    assert web.canary_marker not in everything
    assert "root:" not in everything
    assert "lollollol" not in everything
    assert web.dtd_requests == []
    # The bomb and the huge pages were cut off, not held: the daemon stayed small.
    rss = re.search(rb"^process_resident_memory_bytes (\S+)$", metrics, re.M)
    assert rss is not None
    assert float(rss.group(1)) < 400e6
    # Robots.txt's Crawl-delay spaced the page requests to 127.0.0.1.
    pages = [r for r in web.requests if r.headers.get("Host", "").startswith("127.0.0.1")]
    gaps = [b.at - a.at for a, b in pairwise(r for r in pages if r.at)]
    assert gaps
    assert min(gaps[1:] or gaps) >= 0.95, [(r.at, r.path) for r in pages]
