"""`ingest daemon` as a real subprocess against the loopback newsroom and a real database
(every test runs on an SQLite file and on PostgreSQL)."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import Ingest, write_config
from tests.daemon_process import FAST, Daemon, free_port, wait_for
from tests.newsroom import Newsroom

LATE_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Ferry timetable changes | Ledger</title>
<meta property="og:site_name" content="Lakeshore Ledger">
<meta property="article:published_time" content="2025-03-16T08:00:00Z"></head>
<body><nav><a href="/">Home</a> <a href="/news/">News</a></nav>
<article><h1>Ferry timetable changes from Monday</h1>
<p>The island ferry will run two extra crossings on weekday mornings from Monday, the operator
said, after commuters complained that the first boat was full before it reached the mainland.</p>
<p>The new sailings leave the island at 6:40 and 7:25. The last evening crossing moves fifteen
minutes later, to 21:15, to match the end of the late shift at the harbour hospital.</p>
<p>Fares are unchanged. Season tickets bought before Monday remain valid on every crossing.</p>
</article><footer>© 2025 Lakeshore Ledger</footer></body></html>"""

LATE_ITEM = (
    "<item><title>Ferry timetable changes from Monday</title>"
    "<link>{{BASE}}/news/late-ferry.html</link><guid>late-ferry</guid>"
    "<pubDate>Sun, 16 Mar 2025 08:00:00 GMT</pubDate></item>"
)


def config(
    tmp_path: Path, room: Newsroom, archive: str, port: int, feeds: Sequence[str], **extra: str
) -> Ingest:
    fetch_extra = "\n".join(f"{k} = {v}" for k, v in extra.items())
    path = write_config(
        tmp_path / "daemon.toml",
        room,
        feeds,
        database=archive,
        extra=f'retry_after = "1s"\n{fetch_extra}\n{FAST.format(port=port)}',
    )
    return Ingest(tmp_path, path)


@pytest.fixture
def archive(database_url: str) -> str:
    return database_url


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def ok_urls(daemon: Daemon) -> list[str]:
    """The normalised links (tracking parameters dropped) of the articles stored."""
    rows = daemon.query("SELECT url_key FROM articles WHERE status = 'ok' AND url_key IS NOT NULL")
    return [r[0] for r in rows]


def pending(daemon: Daemon) -> int:
    return daemon.query("SELECT count(*) FROM articles WHERE status = 'pending'")[0][0]


def test_daemon_ingests_on_schedule_serves_health_and_stops_on_sigterm(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World", "Notices"])
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)

    wait_for("first articles", lambda: len(ok_urls(daemon)) >= 4)
    assert wait_for("health", daemon.healthy)
    _, body = daemon.get("/healthz")
    assert json.loads(body)["status"] == "ok"
    wait_for(
        "a conditional re-poll",
        lambda: any(r.status == 304 for r in newsroom.requests_for("/feeds/world.rss")),
    )

    # A story published while the daemon runs is picked up by a later, scheduled poll.
    newsroom.set("/news/late-ferry.html", LATE_PAGE)
    feed = (Path(__file__).parent / "fixtures/site/feeds/world.rss").read_text(encoding="utf-8")
    newsroom.set(
        "/feeds/world.rss",
        feed.replace("</channel>", LATE_ITEM + "</channel>"),
        headers={"Content-Type": "application/rss+xml"},
    )
    wait_for("the late story", lambda: newsroom.url("/news/late-ferry.html") in ok_urls(daemon))

    _, metrics = daemon.get("/metrics")
    text = metrics.decode()
    assert "ingest_articles_stored_total" in text
    assert 'ingest_feed_polls_total{status="not_modified"}' in text
    assert 'ingest_failures_total{kind="page",reason="http_404"}' in text
    assert "process_resident_memory_bytes" in text
    for name in (
        "ingest_queue_depth",
        "ingest_fetch_seconds_bucket",
        "ingest_extract_seconds_count",
    ):
        assert name in text
    stats = cli.json("stats", "--format", "json")
    assert stats["articles"]["ok"] >= 5
    assert stats["failures_by_reason"]["http_404"] == 1
    assert stats["feeds"] == {"total": 2, "active": 2, "failing": 0}
    assert stats["recent"]["articles_last_24h"] == stats["articles"]["total"]

    code, seconds = daemon.stop(signal.SIGTERM)
    assert code == 0
    assert seconds < 10
    stored = [r[0] for r in daemon.query("SELECT url_key FROM articles WHERE url_key IS NOT NULL")]
    assert len(stored) == len(set(stored))
    logs = daemon.logs()
    assert any(line["message"] == "daemon stopped" for line in logs)
    assert all({"time", "level", "message"} <= line.keys() for line in logs)
    polled = [line for line in logs if line["message"] == "feed polled"]
    assert polled
    assert all("feed_url" in line for line in polled)


def test_sigterm_abandons_slow_work_within_the_bound_and_it_resumes_later(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World"])
    newsroom.delay("/news/nbc-style.html", 60)  # far longer than the shutdown bound
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)
    wait_for(
        "the slow page to be asked for",
        lambda: newsroom.requests_for("/news/nbc-style.html") or None,
    )

    code, seconds = daemon.stop(signal.SIGTERM)

    assert code == 0
    assert seconds < 10
    row = daemon.query("SELECT status FROM articles WHERE url LIKE '%nbc-style%'")
    assert row == [("pending",)]
    newsroom.delay("/news/nbc-style.html", 0)
    port = free_port()  # as after a SIGKILL below: the old port may be taken meanwhile
    config(tmp_path, newsroom, archive, port, ["World"])
    again = Daemon(cli, archive, port)
    daemons.append(again)
    wait_for("the resumed page", lambda: newsroom.url("/news/nbc-style.html") in ok_urls(again))
    assert again.stop()[0] == 0


def test_sigkill_mid_run_then_restart_stores_every_article_exactly_once(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World", "Tech", "Wire", "Notices"])
    for path in ("/science/observatory-reopens.html", "/tech/sodium-batteries.html"):
        newsroom.delay(path, 3)  # keeps the run going when the kill comes
    first = Daemon(cli, archive, port)
    daemons.append(first)
    wait_for("a first article", lambda: len(ok_urls(first)) >= 1)
    assert pending(first) > 0  # really mid-run

    first.kill()  # SIGKILL: no clean-up at all

    # Its own address: the killed daemon's port may be taken meanwhile by another test's
    # connection, and a daemon that cannot listen stops.
    port = free_port()
    config(tmp_path, newsroom, archive, port, ["World", "Tech", "Wire", "Notices"])
    second = Daemon(cli, archive, port)
    daemons.append(second)
    expected = [
        "/news/nbc-style.html",
        "/news/great-lakes-shipping.html",
        "/science/observatory-reopens.html",
        "/world/danube-grain.html",
        "/tech/sodium-batteries.html",
        "/news/legacy-1252.html",
        "/news/tokyo-sjis.html",
    ]
    wait_for(
        "every page archived",
        lambda: all(newsroom.url(p) in ok_urls(second) for p in expected) and pending(second) == 0,
    )
    assert second.stop()[0] == 0

    urls = ok_urls(second)
    assert sorted(urls) == sorted(newsroom.url(p) for p in expected)
    keys = [r[0] for r in second.query("SELECT url_key FROM articles WHERE url_key IS NOT NULL")]
    assert len(keys) == len(set(keys))
    assert second.query("SELECT count(*) FROM articles WHERE url IS NULL") == [(2,)]
    entries = second.query("SELECT feed_id, entry_key FROM entries")
    assert len(entries) == len(set(entries)) == 15


def test_config_changes_are_picked_up_without_a_restart(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World"])
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)
    wait_for("World's articles", lambda: newsroom.url("/news/nbc-style.html") in ok_urls(daemon))

    config(tmp_path, newsroom, archive, port, ["Tech"])  # World removed, Tech added

    wait_for(
        "Tech's article", lambda: newsroom.url("/tech/sodium-batteries.html") in ok_urls(daemon)
    )
    feeds = {f["name"]: f for f in cli.json("feeds", "--format", "json")}
    assert feeds["World"]["active"] is False
    assert feeds["Tech"]["active"] is True
    newsroom.clear_log()
    wait_for("a few more ticks", lambda: len(newsroom.requests_for("/feeds/tech.atom")) >= 2)
    assert newsroom.requests_for("/feeds/world.rss") == []  # removed feeds are not polled
    assert len(ok_urls(daemon)) >= 5  # and their articles are kept
    assert daemon.stop()[0] == 0


def test_sighup_reloads_the_config(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["Notices"])
    text = cli.config.read_text() if cli.config else ""
    cli.config.write_text(text.replace('reload_every = "0.3s"', 'reload_every = "1h"'))  # type: ignore[union-attr]
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)
    wait_for("the notices", lambda: len(daemon.query("SELECT id FROM articles")) == 2)
    assert cli.config is not None
    cli.config.write_text(cli.config.read_text().replace("/feeds/nolink.rss", "/feeds/tech.atom"))

    daemon.process.send_signal(signal.SIGHUP)

    wait_for(
        "Tech's article", lambda: newsroom.url("/tech/sodium-batteries.html") in ok_urls(daemon)
    )
    code, seconds = daemon.stop(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM
    assert code == 0
    assert seconds < 10


def test_a_failing_feed_backs_off_and_stays_listed_with_its_error(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World", "Tech"])
    newsroom.set("/feeds/world.rss", status=500)
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)

    wait_for("repeated failures", lambda: len(newsroom.requests_for("/feeds/world.rss")) >= 3)
    feeds = {f["name"]: f for f in cli.json("feeds", "--format", "json")}
    assert daemon.healthy()
    assert daemon.stop()[0] == 0

    world = feeds["World"]
    assert world["active"] is True
    assert world["error_count"] >= 2
    assert world["last_status"] == "http_500"
    assert "HTTP 500" in world["last_error"]
    assert world["next_poll_at"] > world["last_polled_at"]
    assert feeds["Tech"]["error_count"] == 0
    table = cli("feeds").stdout
    assert "http_500" in table


def test_bad_config_stops_the_daemon_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[daemon]\nlisten = "nowhere"\n')

    result = Ingest(tmp_path, path)("daemon", check=False)

    assert result.returncode == 2
    assert "daemon.listen" in result.stderr


def test_a_backlog_of_due_feeds_is_claimed_as_polls_finish_not_one_batch_per_tick(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    names = ["World", "Tech", "Wire", "Notices", "Broken", "Homepage"]
    cli = config(tmp_path, newsroom, archive, port, names, concurrency="2")
    assert cli.config is not None
    # One tick at start, the next an hour later: only the refill can reach feeds 3 to 6.
    cli.config.write_text(cli.config.read_text().replace('tick = "0.2s"', 'tick = "1h"'))
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)

    wait_for(
        "every feed polled once",
        lambda: (
            daemon.query("SELECT count(*) FROM feeds WHERE last_polled_at IS NOT NULL") == [(6,)]
        ),
        timeout=30,
    )
    assert daemon.stop()[0] == 0


def test_pages_beyond_the_memory_queue_wait_in_the_database_and_are_all_archived(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World", "Tech", "Wire"])
    assert cli.config is not None
    text = cli.config.read_text().replace('retry_every = "0.5s"', 'retry_every = "1h"')
    cli.config.write_text(text.replace("[daemon]", "[daemon]\npage_queue = 2"))
    for path in ("/news/nbc-style.html", "/news/great-lakes-shipping.html"):
        newsroom.delay(path, 1)  # the queue is full while these load
    daemon = Daemon(cli, archive, port)
    daemons.append(daemon)

    # Retries run once an hour here: only the refill as room frees can reach the waiting pages.
    wait_for(
        "every page settled",
        lambda: (
            daemon.query("SELECT count(*) FROM articles WHERE status = 'pending'") == [(0,)]
            and daemon.query("SELECT count(*) FROM articles") == [(12,)]
        ),
        timeout=60,
    )
    assert len(ok_urls(daemon)) == 7
    assert daemon.stop()[0] == 0


TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) +(.*)$")
# A round's line: of polls, or of pages retried (the failed page's retry may come before the
# stop on a slow machine).
POLLED = re.compile(
    r"^(?:polled \d+ feeds? \(\d+ not modified, \d+ failed\): \d+ new entr(?:y|ies), |"
    r"pages retried or resumed: )(\d+) articles? stored(?:, (\d+) pages? failed)?"
)


def test_the_daemon_says_what_it_does_on_stderr_at_the_default_level(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World", "Notices"])
    daemon = Daemon(cli, archive, port, options=())  # as `docker run` starts it, in text
    daemons.append(daemon)
    wait_for("World's pages", lambda: len(ok_urls(daemon)) >= 4)
    wait_for("a line saying so", lambda: any(POLLED.match(m) for m in messages(daemon)))

    assert daemon.stop()[0] == 0

    said = messages(daemon)
    assert said[0].startswith(
        f"daemon started: 2 feeds, /healthz and /metrics on http://127.0.0.1:{port}, archive "
    )
    assert said[-2:] == ["stopping: no new work is claimed", "daemon stopped"]
    polled = [m for m in said if POLLED.match(m)]
    failures = [m for m in said if m.startswith("page failed (")]
    # Nothing else: a line per round of polls, one per failure, start and stop.
    assert len(said) == 3 + len(polled) + len(failures), said
    stored = sum(int(POLLED.match(m).group(1)) for m in polled)  # type: ignore[union-attr]
    assert stored == len(daemon.query("SELECT id FROM articles WHERE status = 'ok'"))
    assert any(m.startswith("page failed (http_404): HTTP 404") for m in failures)
    assert any(m.startswith("page failed (not_html): ") for m in failures)
    assert daemon.out.read_text() == ""  # all of it on stderr, where `docker logs` shows it


def messages(daemon: Daemon) -> list[str]:
    """The messages of a text log, each line checked for its form."""
    said = []
    for line in daemon.log.read_text(encoding="utf-8").splitlines():
        match = TEXT_LINE.match(line)
        assert match, line
        said.append(match.group(2))
    return said


def test_a_quiet_daemon_says_nothing_while_all_is_well(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["Notices"])
    daemon = Daemon(cli, archive, port, options=("-q",))
    daemons.append(daemon)
    wait_for("the notices", lambda: len(daemon.query("SELECT id FROM articles")) == 2)

    assert daemon.stop()[0] == 0

    assert daemon.log.read_text() == ""


def test_a_second_daemon_on_a_taken_address_says_so_and_another_address_works(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    port = free_port()
    cli = config(tmp_path, newsroom, archive, port, ["World"])
    first = Daemon(cli, archive, port)
    daemons.append(first)
    wait_for("the first daemon", first.healthy)

    refused = cli("daemon", check=False)

    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("ingest: error: daemon.listen: cannot serve /healthz and /metrics on ")
    assert f"127.0.0.1:{port}" in line and "in use" in line
    assert "INGEST_DAEMON_LISTEN=" in line and 'listen = ""' in line  # how to choose another
    feeds = cli.json("feeds", "--format", "json")
    assert [f["active"] for f in feeds] == [True]  # it touched nothing on the way

    other_port = free_port()
    cli.env["INGEST_DAEMON_LISTEN"] = f"127.0.0.1:{other_port}"
    second = Daemon(cli, archive, other_port)
    daemons.append(second)
    assert wait_for("the second daemon", second.healthy)
    assert first.healthy()
    assert second.stop()[0] == 0
    assert first.stop()[0] == 0


def test_the_daemon_rechecks_archived_pages_and_keeps_a_new_version(
    tmp_path: Path, newsroom: Newsroom, archive: str, daemons: list[Daemon]
) -> None:
    from tests import versions_site as site

    port = free_port()
    config = tmp_path / "daemon.toml"
    # Due again at once (1 ms): the daemon looks at the page on each of its page rounds.
    extra = '[versions]\nschedule = { "30d" = "1ms" }\n' + FAST.format(port=port)
    config.write_text(site.config_lines(newsroom, archive) + "\n" + extra, encoding="utf-8")
    site.publish(newsroom)
    daemon = Daemon(Ingest(tmp_path, config), archive, port)
    daemons.append(daemon)
    wait_for("the story", lambda: newsroom.url(site.STORY) in ok_urls(daemon))
    wait_for(
        "a conditional re-check",
        lambda: any(r.status == 304 for r in newsroom.requests_for(site.STORY)),
    )

    site.publish(newsroom, site.page(site.NEW_HEADLINE))
    wait_for("a new version", lambda: daemon.query("SELECT count(*) FROM versions")[0][0] == 2)
    assert daemon.query("SELECT title FROM articles WHERE url_key IS NOT NULL") == [
        (site.NEW_HEADLINE,)
    ]
    _, metrics = daemon.get("/metrics")
    assert 'ingest_rechecks_total{outcome="changed"} 1.0' in metrics.decode()
    assert any(line["message"] == "new version" for line in daemon.logs())
    assert daemon.stop()[0] == 0
