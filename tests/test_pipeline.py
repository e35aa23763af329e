"""The Ingestor in process, on an injected clock: schedules, back-off, Retry-After, robots.txt.

Real parts throughout (the loopback newsroom, a real SQLite file, the real HTTP client and
extraction pool); only the clock that decides *when* is injected, and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.config import FeedSettings, Settings, load_settings
from ingest.models import Feed
from ingest.net import HttpClient
from ingest.pipeline import POST_PAGE_FRESH, Ingestor, RunSummary
from ingest.search import Filters
from ingest.store import Store
from ingest.workers import ExtractorPool
from tests.conftest import write_config
from tests.newsroom import SITE_DIR, Newsroom


class Clock:
    """Wall time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def archive(database_url: str) -> str:
    """This module's archive: SQLite or PostgreSQL (every test runs on both)."""
    return database_url


@pytest.fixture
def store(archive: str) -> Iterator[Store]:
    opened = Store.open(archive)
    yield opened
    opened.close()


def settings_for(
    tmp_path: Path, room: Newsroom, archive: str, *names: str, extra: str = ""
) -> Settings:
    return load_settings(
        write_config(tmp_path / "c.toml", room, names, database=archive, extra=extra),
        environ={},
    )


def run(settings: Settings, store: Store, clock: Clock, feeds: list[FeedSettings]) -> RunSummary:
    async def go() -> RunSummary:
        summary = RunSummary()
        async with HttpClient(settings.fetch) as http, ExtractorPool(1) as pool:
            ingestor = Ingestor(settings, store, http, pool, clock=clock, tally=summary)
            await ingestor.run_once(store.sync_feeds(feeds))
        return summary

    return asyncio.run(go())


def feed_row(store: Store, name: str) -> Feed:
    return next(f for f in store.feeds() if f.name == name)


def test_a_feed_that_publishes_rarely_is_polled_less_often(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    settings = settings_for(tmp_path, newsroom, archive, "World")
    clock = Clock()

    run(settings, store, clock, settings.feeds)

    # world.rss's entries are days apart: adapted past the 30-minute default, up to the bound.
    world = feed_row(store, "World")
    assert world.interval is not None
    assert settings.schedule.interval < world.interval <= settings.schedule.max_interval


def test_next_poll_honours_the_feeds_ttl(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    no_adapting = '\n[schedule]\nadaptive = false\ninterval = "10m"'
    settings = settings_for(tmp_path, newsroom, archive, "World", extra=no_adapting)
    clock = Clock()

    run(settings, store, clock, settings.feeds)

    world = feed_row(store, "World")
    # world.rss says <ttl>30</ttl>: not before 30 minutes, give or take the ±10% spread.
    assert world.interval == 1800
    assert world.next_poll_at is not None
    wait = (world.next_poll_at - clock.now).total_seconds()
    assert 1800 * 0.9 <= wait <= 1800 * 1.1


def test_a_fixed_interval_is_obeyed_and_a_304_keeps_it(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    settings = settings_for(tmp_path, newsroom, archive, "Tech")
    feeds = [f.model_copy(update={"interval": 900.0}) for f in settings.feeds]
    clock = Clock()

    run(settings, store, clock, feeds)
    clock.advance(minutes=20)
    summary = run(settings, store, clock, feeds)

    tech = feed_row(store, "Tech")
    assert summary.feeds_not_modified == 1
    assert tech.interval == 900
    assert tech.fixed_interval == 900
    assert tech.last_status == "not_modified"


def test_a_failing_feed_backs_off_doubling_to_the_cap_and_keeps_being_tried(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    settings = settings_for(tmp_path, newsroom, archive, "World")
    newsroom.set("/feeds/world.rss", status=500)
    clock = Clock()
    waits = []

    for _ in range(8):
        run(settings, store, clock, settings.feeds)
        world = feed_row(store, "World")
        assert world.next_poll_at is not None
        waits.append((world.next_poll_at - clock.now).total_seconds())
        clock.now = world.next_poll_at

    rules = settings.schedule
    expected = [min(rules.error_backoff * 2**n, rules.max_error_backoff) for n in range(8)]
    for wait, nominal in zip(waits, expected, strict=True):
        assert nominal * 0.9 <= wait <= nominal * 1.1
    assert expected[-1] == rules.max_error_backoff  # it reached the cap and stays there
    world = feed_row(store, "World")
    assert (world.error_count, world.last_status, world.active) == (8, "http_500", True)

    newsroom.unset("/feeds/world.rss")
    run(settings, store, clock, settings.feeds)
    assert feed_row(store, "World").error_count == 0


def test_retry_after_on_a_feed_holds_back_the_whole_host(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    settings = settings_for(tmp_path, newsroom, archive, "World", "Tech")
    newsroom.set("/feeds/world.rss", status=503, headers={"Retry-After": "3600"})
    clock = Clock()

    summary = run(settings, store, clock, settings.feeds)

    # Both feeds live on 127.0.0.1: after the 503 nothing more may be asked of it for an hour.
    reasons = sorted((f.kind, f.reason) for f in summary.failures)
    assert ("feed", "http_503") in reasons
    blocked = store.blocked_hosts(clock.now)
    assert list(blocked) == ["127.0.0.1"]
    assert blocked["127.0.0.1"] >= clock.now + timedelta(seconds=3500)
    world = feed_row(store, "World")
    assert world.next_poll_at is not None
    assert world.next_poll_at >= blocked["127.0.0.1"]

    # A later run (the block is kept in the database) does not ask the host anything.
    newsroom.clear_log()
    clock.advance(minutes=5)
    later = run(settings, store, clock, settings.feeds)
    assert newsroom.requests == []
    assert {f.reason for f in later.failures} == {"host_backoff"}
    tech = feed_row(store, "Tech")
    assert tech.last_status == "host_backoff"
    assert tech.error_count <= 1  # being held back is not the feed's fault


def test_pages_robots_txt_forbids_are_recorded_and_never_fetched(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    newsroom.set(
        "/robots.txt",
        "User-agent: *\nDisallow: /news/\n",
        headers={"Content-Type": "text/plain"},
    )
    settings = settings_for(tmp_path, newsroom, archive, "World")
    clock = Clock()

    run(settings, store, clock, settings.feeds)
    clock.advance(days=30)
    run(settings, store, clock, settings.feeds)

    assert newsroom.requests_for("/news/nbc-style.html") == []
    assert newsroom.requests_for("/news/great-lakes-shipping.html") == []
    records = {a.url: a for a, _ in store.iter_articles(Filters())}
    nbc = records[newsroom.url("/news/nbc-style.html")]
    assert (nbc.status, nbc.error, nbc.next_attempt_at) == ("failed", "robots_disallowed", None)
    assert nbc.text  # the feed's summary stands in
    observatory = records[newsroom.url("/science/observatory-reopens.html")]
    assert observatory.status == "ok"  # not under /news/
    # Asked once per run for its four pages (the cache lives as long as the Ingestor).
    assert len(newsroom.requests_for("/robots.txt")) == 2


def test_failed_pages_are_retried_when_due_and_given_up_after_max_attempts(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    settings = settings_for(
        tmp_path, newsroom, archive, "World", extra='max_attempts = 3\nretry_after = "10m"'
    )
    clock = Clock()

    run(settings, store, clock, settings.feeds)
    attempts = []
    for _ in range(4):
        clock.advance(days=1)  # later than any retry time
        newsroom.clear_log()
        run(settings, store, clock, settings.feeds)
        attempts.append(len(newsroom.requests_for("/status/404")))

    assert attempts == [1, 1, 0, 0]  # tries 2 and 3, then no more
    missing = next(a for a, _ in store.iter_articles(Filters()) if a.url and "/status/404" in a.url)
    assert (missing.status, missing.attempts, missing.next_attempt_at) == ("failed", 3, None)
    assert missing.error == "http_404"


def test_a_long_run_keeps_its_pages_from_other_workers(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    # Leases of 1 s and pages that take 2.5 s to answer: only renewal keeps them this run's.
    # (At 0.3 s a loop held up a third of a second by a loaded machine lost them: this is
    # about renewal, not about how short a lease can be.)
    loaded = settings_for(tmp_path, newsroom, archive, "World")
    settings = loaded.model_copy(
        update={"database": loaded.database.model_copy(update={"lease": 1.0})}
    )
    for path in ("/news/nbc-style.html", "/news/great-lakes-shipping.html"):
        newsroom.delay(path, 2.5)
    other = Store.open(archive)  # another worker, claiming all along
    taken: list[int] = []
    done = threading.Event()

    def claim() -> None:
        while not done.wait(0.05):
            taken.extend(job.article_id for job in other.claim_pages(datetime.now(UTC)))

    claimer = threading.Thread(target=claim)
    claimer.start()
    try:

        async def go() -> RunSummary:
            summary = RunSummary()
            async with HttpClient(settings.fetch) as http, ExtractorPool(1) as pool:
                ingestor = Ingestor(settings, store, http, pool, tally=summary)
                await ingestor.run_once(store.sync_feeds(settings.feeds))
            return summary

        summary = asyncio.run(go())
    finally:
        done.set()
        claimer.join()
        other.close()

    assert summary.articles_new >= 2
    assert taken == []


def test_a_day_page_is_read_once_for_its_posts_and_afresh_by_a_later_poll(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    notes = FeedSettings(url=newsroom.url("/shared/microblog.rss"), name="Notes")
    settings = settings_for(tmp_path, newsroom, archive).model_copy(update={"feeds": [notes]})
    day = "/shared/notes/2025/03/14.html"
    feed = (SITE_DIR / "shared" / "microblog.rss").read_text(encoding="utf-8")
    page = (SITE_DIR / day.lstrip("/")).read_text(encoding="utf-8")
    clock = Clock()

    async def go() -> None:
        async with HttpClient(settings.fetch) as http, ExtractorPool(1) as pool:
            ingestor = Ingestor(settings, store, http, pool, clock=clock)  # a daemon's, kept
            await ingestor.run_once(store.sync_feeds([notes]))
            first = len(newsroom.requests_for(day))
            # The evening's post, on the feed and on the grown day page, polled minutes later.
            later = (
                "<item><title>Harbour lights</title><description>Out at ten.</description>"
                f"<link>{{{{BASE}}}}{day}#a2200</link><guid>{{{{BASE}}}}{day}#a2200</guid></item>"
            )
            newsroom.set("/shared/microblog.rss", feed.replace("<item>", later + "<item>", 1))
            post = (
                '<article class="post" id="a2200"><p>Every harbour light went out at ten, '
                "and came back one by one as the wardens walked the quay.</p></article>"
            )
            newsroom.set(day, page.replace("</main>", post + "</main>"))
            clock.advance(seconds=POST_PAGE_FRESH.total_seconds() + 1)
            await ingestor.run_once(store.sync_feeds([notes]))
            assert (first, len(newsroom.requests_for(day))) == (1, 2)

    asyncio.run(go())
    article, _ = store.article(newsroom.url(f"{day}#a2200"))
    assert (article.title, article.content_source) == ("Harbour lights", "page")
    assert article.text and article.text.startswith("Every harbour light went out at ten")


def test_posts_whose_day_page_fails_keep_their_own_text_and_are_retried_together(
    tmp_path: Path, newsroom: Newsroom, archive: str, store: Store
) -> None:
    notes = FeedSettings(url=newsroom.url("/shared/microblog.rss"), name="Notes")
    settings = settings_for(tmp_path, newsroom, archive, extra='retry_after = "10m"')
    day = "/shared/notes/2025/03/14.html"
    newsroom.set(day, status=500)
    clock = Clock()

    first = run(settings, store, clock, [notes])
    failed, _ = store.article(newsroom.url(f"{day}#a1130"))
    newsroom.unset(day)
    clock.advance(minutes=11)
    newsroom.clear_log()
    run(settings, store, clock, [notes])
    fixed, _ = store.article(newsroom.url(f"{day}#a1130"))

    assert [f.reason for f in first.failures] == ["http_500"] * 4  # four posts on the page
    assert (failed.status, failed.content_source) == ("failed", "feed")
    assert failed.text == 'Overheard at the chandlery: "They don\'t make cleats like they used to."'
    assert len(newsroom.requests_for(day)) == 1  # the four retries, one request
    assert (fixed.id, fixed.status, fixed.content_source) == (failed.id, "ok", "page")
    assert fixed.text and fixed.text.endswith("out of something else now.")


def test_a_feed_whose_entries_the_database_refuses_fails_and_backs_off(
    tmp_path: Path, newsroom: Newsroom, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL takes no NUL byte in text: this feed's entries cannot be recorded as given.
    # Parsing now drops control characters (`ingest.feeds._without_controls`); kept here, they
    # stand for any entry the database refuses.
    monkeypatch.setattr("ingest.feeds._without_controls", lambda value: value)
    # (A link of its own: were the World feed, polled at the same time, to record a shared
    # link first, the entry would only be linked to that article, with no text of its own.)
    newsroom.set(
        "/feeds/nul.rss",
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Nul</title><item>"
        "<title>Bad\x00title</title><link>{{BASE}}/news/nul-story.html</link></item>"
        "</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    nul_feed = f'[[feeds]]\nurl = "{newsroom.url("/feeds/nul.rss")}"\nname = "Nul"'
    settings = settings_for(tmp_path, newsroom, postgres_url, "World", extra=nul_feed)
    clock = Clock()
    store = Store.open(postgres_url)
    try:
        summary = run(settings, store, clock, settings.feeds)
        nul, world = feed_row(store, "Nul"), feed_row(store, "World")
        pending = store.pending_pages()
        leased = [a for a, _ in store.iter_articles(Filters()) if a.lease_owner is not None]
    finally:
        store.close()

    assert (nul.last_status, nul.error_count) == ("not_stored", 1)
    assert nul.last_error is not None and "NUL" in nul.last_error
    assert nul.next_poll_at is not None and nul.next_poll_at > clock.now  # backs off
    assert nul.lease_owner is None
    # (a raw NUL is no XML either: feedparser also notes the feed as malformed)
    assert [f.reason for f in summary.failures if f.kind == "feed"][-1] == "not_stored"
    assert world.last_status == "ok" and summary.articles_new > 0  # the run went on
    assert (pending, leased) == (0, [])
