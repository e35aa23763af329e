"""`ingest.store.Store` on a real SQLite file: identity, retries, merging, search, reads."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard

from ingest.browse import Removal
from ingest.captures import pack
from ingest.config import FeedSettings, ScheduleSettings
from ingest.entryparts import entry_key
from ingest.errors import (
    FetchError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    QueryError,
    StoreError,
)
from ingest.models import ArticleStatus, ContentSource, Feed
from ingest.records import ExtractedArticle, FeedEntry, Page, PageJob, utcnow
from ingest.schedule import page_retry
from ingest.search import SNIPPET_CLOSE, SNIPPET_OPEN, Filters, SearchHit
from ingest.store import Store

HARBOUR = FeedSettings(url="https://news.example.org/rss", name="Harbour")
VALLEY = FeedSettings(url="https://valley.example.net/feed.atom", name="Valley")
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "archive.sqlite3"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    archive = Store.open(database_url)
    yield archive
    archive.close()


@pytest.fixture
def feeds(store: Store) -> list[Feed]:
    return store.sync_feeds([HARBOUR, VALLEY])


def entry(
    link: str | None,
    title: str,
    *,
    guid: str | None = None,
    content: str | None = None,
    published: datetime | None = None,
    authors: tuple[str, ...] = (),
    language: str | None = None,
) -> FeedEntry:
    return FeedEntry(
        key=entry_key(guid, link, title, published.isoformat() if published else None),
        guid=guid,
        link=link,
        title=title,
        summary=None,
        content=content,
        authors=authors,
        published=published,
        language=language,
    )


def page(job: PageJob, final_url: str | None = None, body: bytes = b"<html>page</html>") -> Page:
    return Page(
        url=job.url,
        final_url=final_url or job.url,
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        body=body,
        fetched_at=NOW,
    )


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def one_job(store: Store, feed: Feed, item: FeedEntry) -> PageJob:
    recorded = store.record_entries(feed, [item])
    (job,) = recorded.jobs
    return job


# --- feeds and entries ----------------------------------------------------------------------------


def test_sync_feeds_is_idempotent(store: Store, db_path: Path) -> None:
    first = store.sync_feeds([HARBOUR, VALLEY])
    second = store.sync_feeds([HARBOUR, VALLEY])

    assert [f.id for f in first] == [f.id for f in second]
    assert [f.name for f in second] == ["Harbour", "Valley"]
    assert rows(store, "SELECT count(*) FROM feeds") == [(2,)]


def test_sync_feeds_updates_a_renamed_feed(store: Store) -> None:
    (before,) = store.sync_feeds([HARBOUR])
    (after,) = store.sync_feeds([FeedSettings(url=HARBOUR.url, name="Harbour Gazette")])

    assert after.id == before.id
    assert after.name == "Harbour Gazette"


def polled(store: Store, feed: Feed, every: float) -> Feed:
    """``feed`` polled now, its next poll ``every`` seconds away."""
    assert feed.id is not None
    at = utcnow()
    store.feed_polled(
        feed.id, status="ok", next_poll_at=at + timedelta(seconds=every), interval=every
    )
    return next(f for f in store.feeds() if f.id == feed.id)


def test_a_shortened_feed_interval_pulls_its_next_poll_in(store: Store) -> None:
    hourly = FeedSettings(url=HARBOUR.url, name="Harbour", interval=3600.0)
    (feed,) = store.sync_feeds([hourly], rules=ScheduleSettings())
    feed = polled(store, feed, 3600.0)
    assert feed.last_polled_at is not None
    soon = feed.last_polled_at + timedelta(minutes=12)
    assert store.claim_feeds(soon) == []  # due in about an hour

    ten = FeedSettings(url=HARBOUR.url, name="Harbour", interval=600.0)
    (after,) = store.sync_feeds([ten], rules=ScheduleSettings())

    assert after.interval == 600.0
    assert after.next_poll_at is not None
    assert after.next_poll_at <= feed.last_polled_at + timedelta(seconds=660)  # 10 m ± 10%
    assert [f.id for f in store.claim_feeds(soon)] == [feed.id]


def test_a_shortened_default_interval_pulls_in_feeds_at_the_default(store: Store) -> None:
    before = ScheduleSettings()  # 30 m
    (feed,) = store.sync_feeds([HARBOUR], rules=before)
    feed = polled(store, feed, 1800.0)

    (after,) = store.sync_feeds(
        [HARBOUR], exclusive=True, rules=ScheduleSettings(interval=300.0), before=before
    )

    assert after.interval == 300.0
    assert feed.last_polled_at is not None and after.next_poll_at is not None
    assert after.next_poll_at <= feed.last_polled_at + timedelta(seconds=330)


def test_a_longer_interval_waits_for_the_poll_already_planned(store: Store) -> None:
    (feed,) = store.sync_feeds([FeedSettings(url=HARBOUR.url, interval=600.0)])
    feed = polled(store, feed, 600.0)

    (after,) = store.sync_feeds(
        [FeedSettings(url=HARBOUR.url, interval=3600.0)], rules=ScheduleSettings()
    )

    assert after.interval == 3600.0  # taken after the next poll
    assert after.next_poll_at == feed.next_poll_at


def test_a_failing_feed_keeps_its_back_off_when_its_interval_shrinks(store: Store) -> None:
    (feed,) = store.sync_feeds([FeedSettings(url=HARBOUR.url, interval=3600.0)])
    feed = polled(store, feed, 3600.0)
    assert feed.id is not None
    backoff = utcnow() + timedelta(hours=2)
    store.feed_polled(feed.id, status="http_500", error="HTTP 500", next_poll_at=backoff)

    (after,) = store.sync_feeds(
        [FeedSettings(url=HARBOUR.url, interval=600.0)], rules=ScheduleSettings()
    )

    assert after.next_poll_at == backoff


def test_a_feed_polled_once_gets_an_inactive_row_that_no_claim_of_due_feeds_takes(
    store: Store,
) -> None:
    once = FeedSettings(url="https://once.example.com/rss")
    configured, row = store.sync_feeds([HARBOUR], once=[once])

    assert configured.active and not row.active
    assert [f.id for f in store.claim_feeds(utcnow(), only=[row.id or 0])] == [row.id]
    store.feed_polled(row.id or 0, status="ok", next_poll_at=utcnow() - timedelta(hours=1))
    assert [f.url for f in store.claim_feeds(utcnow())] == [HARBOUR.url]


def test_a_known_feed_polled_once_is_left_as_it_is(store: Store) -> None:
    (configured,) = store.sync_feeds([HARBOUR])

    (again,) = store.sync_feeds([], once=[HARBOUR])

    assert again.id == configured.id
    assert again.active  # another worker's config may list it


def test_record_entries_twice_adds_nothing_the_second_time(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    items = [
        entry("https://news.example.org/a", "Ferry timetable changes"),
        entry("https://news.example.org/b", "Bridge works begin"),
    ]

    first = store.record_entries(feeds[0], items)
    second = store.record_entries(feeds[0], items)

    assert (first.new_entries, len(first.jobs)) == (2, 2)
    assert (second.new_entries, second.feed_only, second.jobs) == (0, 0, [])
    assert rows(store, "SELECT count(*) FROM articles") == [(2,)]
    assert rows(store, "SELECT count(*) FROM entries") == [(2,)]


def test_same_link_with_tracking_params_from_second_feed_is_one_article(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    harbour, valley = feeds
    first = store.record_entries(
        harbour, [entry("https://news.example.org/a?utm_source=rss", "Ferry timetable changes")]
    )
    second = store.record_entries(
        valley, [entry("https://news.example.org/a?fbclid=xyz#top", "Ferry timetable changes")]
    )

    assert len(first.jobs) == 1
    assert (second.new_entries, second.jobs) == (1, [])
    assert rows(store, "SELECT count(*) FROM articles") == [(1,)]
    assert rows(store, "SELECT feed_id, article_id FROM entries ORDER BY feed_id") == [
        (harbour.id, first.jobs[0].article_id),
        (valley.id, first.jobs[0].article_id),
    ]


def test_linkless_entry_is_stored_ok_from_the_feed_and_not_a_job(
    store: Store, feeds: list[Feed]
) -> None:
    recorded = store.record_entries(
        feeds[0], [entry(None, "Harbour office closed", content="Closed on Friday for repairs.")]
    )

    assert recorded.jobs == []
    assert (recorded.new_entries, recorded.feed_only) == (1, 1)
    ((article, feed_url),) = list(store.iter_articles(Filters()))
    assert article.status == ArticleStatus.OK
    assert article.content_source == ContentSource.FEED
    assert article.text == "Closed on Friday for repairs."
    assert feed_url == HARBOUR.url
    assert store.claim_pages(NOW + timedelta(days=365)) == []


def test_new_entry_hints_carry_feed_metadata(store: Store, feeds: list[Feed]) -> None:
    published = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    job = one_job(
        store,
        feeds[0],
        entry(
            "https://news.example.org/a",
            "Ferry timetable changes",
            published=published,
            authors=("Mara Lind",),
        ),
    )

    assert job.attempts == 0
    assert job.hints.title == "Ferry timetable changes"
    assert job.hints.authors == ("Mara Lind",)
    assert job.hints.published == published


def fail(
    store: Store,
    job: PageJob,
    error: FetchError,
    *,
    now: datetime,
    first_retry: float,
    max_attempts: int,
) -> None:
    """Record a failure the way the pipeline does: the retry policy, then the store."""
    attempts, at = page_retry(
        job.attempts, error, now, first_retry=first_retry, max_attempts=max_attempts
    )
    store.save_failure(job, error, attempts=attempts, next_attempt_at=at)


# --- failures and retries -------------------------------------------------------------------------


def test_save_failure_records_reason_and_first_retry(store: Store, feeds: list[Feed]) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a", "Ferry"))

    fail(
        store,
        job,
        HTTPStatusError("server error", url=job.url, status=503),
        now=NOW,
        first_retry=60,
        max_attempts=4,
    )

    article, _ = store.article(str(job.article_id))
    assert article.status == ArticleStatus.FAILED
    assert article.error == "http_503"
    assert article.attempts == 1
    assert article.next_attempt_at == NOW + timedelta(seconds=60)
    assert "server error" in (article.error_message or "")


def test_save_failure_doubles_the_delay_then_gives_up(store: Store, feeds: list[Feed]) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a", "Ferry"))
    delays: list[timedelta | None] = []
    now = NOW
    for _ in range(3):
        fail(
            store,
            job,
            NetworkError("timed out", url=job.url),
            now=now,
            first_retry=60,
            max_attempts=3,
        )
        article, _ = store.article(str(job.article_id))
        delays.append(article.next_attempt_at - now if article.next_attempt_at else None)
        now = article.next_attempt_at or now
        due = store.claim_pages(now)
        job = due[0] if due else job

    assert delays == [timedelta(seconds=60), timedelta(seconds=120), None]
    article, _ = store.article(str(job.article_id))
    assert (article.status, article.attempts, article.error) == ("failed", 3, "network")
    assert store.claim_pages(NOW + timedelta(days=3650)) == []


def test_claim_pages_returns_pending_and_failed_only_when_due(
    store: Store, feeds: list[Feed]
) -> None:
    recorded = store.record_entries(
        feeds[0],
        [
            entry("https://news.example.org/a", "Pending"),
            entry("https://news.example.org/b", "Bad"),
        ],
    )
    pending, failing = recorded.jobs
    fail(
        store,
        failing,
        NetworkError("reset", url=failing.url),
        now=NOW,
        first_retry=600,
        max_attempts=5,
    )
    store.release()  # the run that recorded them was interrupted

    assert [j.article_id for j in store.claim_pages(NOW)] == [pending.article_id]
    assert store.claim_pages(NOW + timedelta(seconds=1)) == []  # leased: not handed out twice
    store.release()
    assert [j.article_id for j in store.claim_pages(NOW + timedelta(seconds=599))] == [
        pending.article_id
    ]
    store.release()
    due = store.claim_pages(NOW + timedelta(seconds=600))
    assert [j.article_id for j in due] == [pending.article_id, failing.article_id]
    assert due[1].attempts == 1
    assert due[1].url == "https://news.example.org/b"
    assert due[1].hints.title == "Bad"


def test_claim_pages_limit(store: Store, feeds: list[Feed]) -> None:
    store.record_entries(
        feeds[0], [entry(f"https://news.example.org/{n}", f"Story {n}") for n in range(5)]
    )
    store.release()

    assert len(store.claim_pages(NOW, limit=2)) == 2


# --- saving articles ------------------------------------------------------------------------------


def test_save_article_stores_text_and_a_capture_of_its_shared_body(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a", "Ferry", content="Teaser."))
    body = b"<html><body><p>The morning ferry leaves earlier.</p></body></html>"
    extracted = ExtractedArticle(
        text="The morning ferry leaves earlier.\n\nEvening sailings are unchanged.",
        title="Ferry timetable changes",
        authors=("Mara Lind",),
        language="en",
        canonical_url="https://news.example.org/a",
    )

    saved = store.save_article(job, extracted, page(job, body=body), raw=pack(body))

    assert saved == job.article_id
    article, _ = store.article(str(saved))
    assert article.status == ArticleStatus.OK
    assert article.content_source == ContentSource.PAGE
    assert article.text == extracted.text
    assert article.title == "Ferry timetable changes"
    assert article.authors == ["Mara Lind"]
    assert article.attempts == 1
    assert article.fetched_at == NOW
    assert article.content_hash
    ((url, status, inline, body_id),) = rows(
        store, "SELECT url, status, body, body_id FROM captures"
    )
    assert (url, status, inline) == ("https://news.example.org/a", 200, b"")
    ((key, sha256, size, stored),) = rows(
        store, "SELECT id, sha256, size, body FROM capture_bodies"
    )
    assert key == body_id
    assert (sha256, size) == (hashlib.sha256(body).hexdigest(), len(body))
    assert zstandard.ZstdDecompressor().decompress(stored) == body
    assert store.capture_body(store.capture(job.article_id)) == body
    assert store.claim_pages(NOW + timedelta(days=1)) == []


def test_save_article_without_a_raw_body_stores_no_capture(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a", "Ferry"))

    store.save_article(job, ExtractedArticle(text="Body."), page(job))

    assert rows(store, "SELECT count(*) FROM captures") == [(0,)]


def test_save_article_after_failure_clears_the_error(store: Store, feeds: list[Feed]) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a", "Ferry"))
    fail(store, job, NetworkError("reset", url=job.url), now=NOW, first_retry=60, max_attempts=5)
    (retry,) = store.claim_pages(NOW + timedelta(seconds=60))

    store.save_article(retry, ExtractedArticle(text="Body."), page(retry))

    article, _ = store.article(str(job.article_id))
    assert (article.status, article.error, article.error_message) == ("ok", None, None)
    assert article.next_attempt_at is None
    assert article.attempts == 2


def test_page_redirecting_to_archived_article_is_merged(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    harbour, valley = feeds
    first = one_job(store, harbour, entry("https://news.example.org/local/ferry", "Ferry"))
    store.save_article(first, ExtractedArticle(text="Ferry body."), page(first))
    second = one_job(store, valley, entry("https://short.example/f3x", "Ferry (via Valley)"))

    merged = store.save_article(
        second,
        ExtractedArticle(text="Ferry body."),
        page(second, final_url="https://news.example.org/local/ferry?utm_source=short"),
        raw=pack(b"<html>the page</html>"),
    )

    assert merged == first.article_id
    assert rows(store, "SELECT id FROM articles") == [(first.article_id,)]
    assert rows(store, "SELECT feed_id, article_id FROM entries ORDER BY feed_id") == [
        (harbour.id, first.article_id),
        (valley.id, first.article_id),
    ]
    assert rows(store, "SELECT count(*) FROM captures") == [(0,)]


def settled_changes(store: Store, after: tuple[int, int] | None, least: int) -> list[Any]:
    """`Store.changes` once it holds ``least`` rows: on PostgreSQL it waits for every older
    transaction to end, and another test's may still be open on the same server."""
    deadline = time.monotonic() + 30
    while True:
        rows = store.changes(Filters(), after=after, limit=100)
        if len(rows) >= least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_a_merged_article_comes_among_the_changes_as_removed(
    store: Store, feeds: list[Feed]
) -> None:
    harbour, valley = feeds
    first = one_job(store, harbour, entry("https://news.example.org/local/ferry", "Ferry"))
    store.save_article(first, ExtractedArticle(text="Ferry body."), page(first))
    second = one_job(store, valley, entry("https://short.example/f3x", "Ferry (via Valley)"))
    # A mirror that read everything so far holds the pending second article.
    seen = settled_changes(store, None, 2)
    assert [row.id for row, _, _ in seen] == [first.article_id, second.article_id]

    store.save_article(
        second,
        ExtractedArticle(text="Ferry body."),
        page(second, final_url="https://news.example.org/local/ferry"),
    )
    later = settled_changes(store, seen[-1][2], 1)
    assert len(later) == 1
    removal, feed_url, key = later[0]
    assert isinstance(removal, Removal) and feed_url is None and key > seen[-1][2]
    assert (removal.article_id, removal.merged_into) == (second.article_id, first.article_id)
    assert removal.removed_at is not None
    # Whatever the filters say (the mirror may hold it), and nothing after it.
    only = Filters(feed=harbour.url)
    assert [r for r, _, _ in store.changes(only, after=seen[-1][2], limit=100)] == [removal]
    assert store.changes(Filters(), after=key, limit=100) == []
    # The next change numbers come after it.
    store.save_article(
        third := one_job(store, harbour, entry("https://news.example.org/b", "Bridge")),
        ExtractedArticle(text="Bridge body."),
        page(third),
    )
    assert [row.id for row, _, _ in settled_changes(store, key, 1)] == [third.article_id]


def test_page_whose_canonical_is_archived_is_merged(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    harbour, valley = feeds
    canonical = "https://news.example.org/local/ferry"
    first = one_job(store, harbour, entry(canonical, "Ferry"))
    store.save_article(
        first,
        ExtractedArticle(text="Ferry body.", canonical_url=canonical),
        page(first),
    )
    second = one_job(store, valley, entry("https://m.news.example.org/ferry-amp", "Ferry"))

    merged = store.save_article(
        second,
        ExtractedArticle(text="Ferry body.", canonical_url=canonical),
        page(second),
    )

    assert merged == first.article_id
    assert rows(store, "SELECT id FROM articles") == [(first.article_id,)]
    assert {a for (a,) in rows(store, "SELECT article_id FROM entries")} == {first.article_id}
    assert [h.article.id for h in store.search("ferry", Filters())] == [first.article_id]


def test_articles_without_canonical_url_are_not_merged(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    recorded = store.record_entries(
        feeds[0],
        [
            entry("https://news.example.org/ferry", "Ferry timetable changes"),
            entry("https://news.example.org/bridge", "Bridge works begin"),
        ],
    )
    ferry, bridge = recorded.jobs

    saved_ferry = store.save_article(ferry, ExtractedArticle(text="Ferry body."), page(ferry))
    saved_bridge = store.save_article(bridge, ExtractedArticle(text="Bridge body."), page(bridge))

    assert (saved_ferry, saved_bridge) == (ferry.article_id, bridge.article_id)
    assert rows(store, "SELECT id, text FROM articles ORDER BY id") == [
        (ferry.article_id, "Ferry body."),
        (bridge.article_id, "Bridge body."),
    ]


def test_pages_saved_in_one_batch_are_each_stored_or_merged_as_alone(
    store: Store, feeds: list[Feed], db_path: Path
) -> None:
    harbour, valley = feeds
    canonical = "https://news.example.org/local/ferry"
    ferry = one_job(store, harbour, entry(canonical, "Ferry"))
    amp = one_job(store, valley, entry("https://m.news.example.org/ferry-amp", "Ferry"))
    bridge = one_job(store, harbour, entry("https://news.example.org/bridge", "Bridge"))
    store.save_article(bridge, ExtractedArticle(text="Bridge body."), page(bridge))
    body = b"<html><body><p>Ferry body.</p></body></html>"

    stored = store.save_articles(
        [
            (
                ferry,
                ExtractedArticle(text="Ferry body.", canonical_url=canonical),
                page(ferry),
                None,
            ),
            # The same article reached through another feed: merged into the first of the batch.
            (amp, ExtractedArticle(text="Ferry body.", canonical_url=canonical), page(amp), None),
            # Stored already (another worker, a lease run out): left as it was.
            (bridge, ExtractedArticle(text="Bridge again."), page(bridge), pack(body)),
        ]
    )

    assert stored == [ferry.article_id, ferry.article_id, None]
    assert rows(store, "SELECT id, text FROM articles ORDER BY id") == [
        (ferry.article_id, "Ferry body."),
        (bridge.article_id, "Bridge body."),
    ]
    assert {a for (a,) in rows(store, "SELECT article_id FROM entries")} == {
        ferry.article_id,
        bridge.article_id,
    }
    assert rows(store, "SELECT count(*) FROM captures") == [(0,)]


# --- search ---------------------------------------------------------------------------------------


@pytest.fixture
def archive(store: Store, feeds: list[Feed]) -> Store:
    """Three feed-only articles: two in the Harbour feed, one in the Valley feed."""
    harbour, valley = feeds
    store.record_entries(
        harbour,
        [
            entry(
                None,
                "Lighthouse keeper retires",
                content="After thirty years the keeper handed over the lamp room keys.",
                published=datetime(2025, 1, 10, 9, 0, tzinfo=UTC),
                authors=("Mara Lind",),
                language="en",
            ),
            entry(
                None,
                "Harbour dredging starts",
                content="Crews began dredging the channel so that the lighthouse tender can dock.",
                published=datetime(2025, 2, 20, 9, 0, tzinfo=UTC),
                authors=("Ola Berg",),
                language="en",
            ),
        ],
    )
    store.record_entries(
        valley,
        [
            entry(
                None,
                "Gel tardif dans les vignes",
                content="Un gel tardif a touché les vignes près du phare de la vallée.",
                published=datetime(2025, 3, 15, 9, 0, tzinfo=UTC),
                authors=("Luc Moreau",),
                language="fr",
            )
        ],
    )
    return store


def titles(hits: list[SearchHit]) -> list[str]:
    return sorted(h.article.title or "" for h in hits)


def test_search_finds_by_title_with_marked_snippet(archive: Store) -> None:
    (hit,) = archive.search("keeper", Filters())

    assert hit.article.title == "Lighthouse keeper retires"
    assert f"{SNIPPET_OPEN}keeper{SNIPPET_CLOSE}" in hit.snippet.lower()
    assert hit.feed_url == HARBOUR.url


def test_search_finds_by_text(archive: Store) -> None:
    (hit,) = archive.search("tender", Filters())

    assert hit.article.title == "Harbour dredging starts"
    assert f"{SNIPPET_OPEN}tender{SNIPPET_CLOSE}" in hit.snippet


def test_search_ranks_title_matches_first(archive: Store) -> None:
    hits = archive.search("lighthouse", Filters())

    assert [h.article.title for h in hits] == [
        "Lighthouse keeper retires",
        "Harbour dredging starts",
    ]


def test_search_ignores_diacritics(archive: Store) -> None:
    assert titles(archive.search("touche", Filters())) == ["Gel tardif dans les vignes"]


def test_search_filter_by_feed_name_and_url(archive: Store) -> None:
    assert titles(archive.search("lighthouse OR phare", Filters(feed="Valley"))) == [
        "Gel tardif dans les vignes"
    ]
    assert titles(archive.search("lighthouse OR phare", Filters(feed=HARBOUR.url))) == [
        "Harbour dredging starts",
        "Lighthouse keeper retires",
    ]


def test_search_filter_since_and_until(archive: Store) -> None:
    query = "lighthouse OR phare"

    since = archive.search(query, Filters(since=datetime(2025, 2, 1, tzinfo=UTC)))
    until = archive.search(query, Filters(until=datetime(2025, 2, 20, 9, 0, tzinfo=UTC)))
    window = archive.search(
        query,
        Filters(since=datetime(2025, 2, 1, tzinfo=UTC), until=datetime(2025, 3, 1, tzinfo=UTC)),
    )

    assert titles(since) == ["Gel tardif dans les vignes", "Harbour dredging starts"]
    assert titles(until) == ["Lighthouse keeper retires"]
    assert titles(window) == ["Harbour dredging starts"]


def test_search_filter_by_author_substring(archive: Store) -> None:
    assert titles(archive.search("lighthouse OR phare", Filters(author="berg"))) == [
        "Harbour dredging starts"
    ]


def test_search_filter_by_language(archive: Store) -> None:
    assert titles(archive.search("lighthouse OR phare", Filters(language="FR"))) == [
        "Gel tardif dans les vignes"
    ]


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def test_search_filter_by_author_escaped_in_json(store: Store, feeds: list[Feed]) -> None:
    # Authors are stored as JSON: "Zoë" as "Zo\u00eb", a quote as \". A filter that is not
    # verbatim in that text must still find them (SQLite tries the JSON text first).
    store.record_entries(
        feeds[0],
        [
            entry(None, "Ferry fares", content="Fares rise.", authors=("Zoë Smith",)),
            entry(None, "Ferry crews", content="Crews strike.", authors=('Dan "Ace" Lee',)),
        ],
    )

    for author in ("smith", "oë sm", "zo%smith", "o_ s", "dan", '"ace"'):
        found = titles(store.search("ferry", Filters(author=author)))
        assert len(found) == 1, author
    assert store.search("ferry", Filters(author="zoe")) == []


@pytest.fixture
def ferries(store: Store, feeds: list[Feed]) -> list[int]:
    """Five articles matching "ferry", oldest first (ids grow with arrival): the oldest has
    it in its title, the others in their text, the newest three times; the last two are in
    French."""
    texts = [
        ("Ferry service resumes", "The crossing reopens on Monday.", "en"),
        ("Harbour news", "A ferry was late again.", "en"),
        ("Harbour notes", "The ferry timetable changes.", "en"),
        ("Nouvelles du port", "Le ferry part à midi.", "fr"),
        ("Port", "Ferry, ferry, ferry: trois départs par jour.", "fr"),
    ]
    recorded = store.record_entries(
        feeds[0], [entry(None, title, content=text, language=lang) for title, text, lang in texts]
    )
    assert recorded.feed_only == 5
    return [h.article.id or 0 for h in sorted(store.search("ferry", Filters()), key=by_id)]


def by_id(hit: SearchHit) -> int:
    return hit.article.id or 0


@SQLITE_ONLY  # the rank window is SQLite's: PostgreSQL ranks every match
def test_search_ranks_only_the_newest_matches_beyond_the_window(
    store: Store, ferries: list[int]
) -> None:
    oldest, _, third, fourth, newest = ferries

    everything = store.search("ferry", Filters(), limit=2, rank_window=None)
    window = store.search("ferry", Filters(), limit=2, rank_window=2)
    wide = store.search("ferry", Filters(), limit=2, rank_window=5)

    # Ranked over all five: the title match first. Within the two newest: those two, the
    # one saying "ferry" three times first. A window holding every match changes nothing.
    assert [h.article.id for h in everything] == [oldest, newest]
    assert [h.article.id for h in window] == [newest, fourth]
    assert [(h.article.id, h.rank) for h in wide] == [(h.article.id, h.rank) for h in everything]
    assert window[0].rank < window[1].rank  # BM25: lower is better
    assert f"{SNIPPET_OPEN}Ferry{SNIPPET_CLOSE}" in window[0].snippet
    assert third not in {h.article.id for h in window}


@SQLITE_ONLY
def test_search_window_counts_filtered_matches_only(store: Store, ferries: list[int]) -> None:
    oldest, second, third, _, _ = ferries

    english = store.search("ferry", Filters(language="en"), limit=2, rank_window=2)

    # The two French articles are newer but filtered out: the window is the newest two
    # English matches, the title match of the oldest is beyond it.
    assert {h.article.id for h in english} == {second, third}
    assert oldest not in {h.article.id for h in english}


@SQLITE_ONLY
def test_search_window_is_at_least_the_limit(store: Store, ferries: list[int]) -> None:
    hits = store.search("ferry", Filters(), limit=5, rank_window=1)

    assert sorted(h.article.id or 0 for h in hits) == ferries


@SQLITE_ONLY  # FTS5 query syntax
def test_search_column_filter(archive: Store) -> None:
    assert titles(archive.search("title:lighthouse", Filters())) == ["Lighthouse keeper retires"]


@POSTGRES_ONLY  # web-search syntax: no error for any query with a word in it
@pytest.mark.parametrize("query", ['"unclosed', "title:", "(ferry", "'; DROP", "a -b OR"])
def test_postgres_takes_any_query(archive: Store, query: str) -> None:
    assert isinstance(archive.search(query, Filters()), list)


@POSTGRES_ONLY
def test_postgres_search_stems_in_the_articles_language(archive: Store) -> None:
    assert titles(archive.search("retiring lighthouses", Filters())) == [
        "Lighthouse keeper retires"
    ]
    assert titles(archive.search("lighthouse -keeper", Filters())) == ["Harbour dredging starts"]
    assert titles(archive.search("vigne", Filters(language="fr"))) == ["Gel tardif dans les vignes"]


def test_search_reflects_text_updates(store: Store, feeds: list[Feed]) -> None:
    job = one_job(
        store,
        feeds[0],
        entry("https://news.example.org/a", "Ferry news", content="Teaser about timetables."),
    )
    assert len(store.search("timetables", Filters())) == 1

    store.save_article(
        job,
        ExtractedArticle(text="The catamaran replaces the old boat."),
        page(job),
    )

    assert store.search("timetables", Filters()) == []
    assert [h.article.id for h in store.search("catamaran", Filters())] == [job.article_id]


@pytest.mark.parametrize("query", ["AND", "OR NOT", "-lighthouse", "NOT keeper", "()", "!?"])
def test_a_query_with_no_word_to_find_says_how_to_write_one(archive: Store, query: str) -> None:
    with pytest.raises(QueryError, match="-word to exclude"):
        archive.search(query, Filters())


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"unclosed lamp', []),
        ("(lighthouse", ["Harbour dredging starts", "Lighthouse keeper retires"]),
        ("lighthouse )", ["Harbour dredging starts", "Lighthouse keeper retires"]),
        ("keeper OR", ["Lighthouse keeper retires"]),
        ("OR keeper AND", ["Lighthouse keeper retires"]),
        ("nosuchcolumn:keeper", []),
        ("lighthouse -keeper", ["Harbour dredging starts"]),
        ("lighthouse NOT keeper", ["Harbour dredging starts"]),
        ("(keeper OR crews) -dredging", ["Lighthouse keeper retires"]),
    ],
)
def test_a_query_typed_loosely_is_searched_not_refused(
    archive: Store, query: str, found: list[str]
) -> None:
    assert titles(archive.search(query, Filters())) == found


EVERYDAY = {
    "COVID-19": "Clinics report fewer COVID-19 admissions this winter.",
    "end-to-end": "The ferry app now uses end-to-end encryption for tickets.",
    "U.S.": "A U.S. delegation visited the harbour on Monday.",
    "don't": "Fishermen say they don't expect the quota to change.",
    "c++": "The tide model was rewritten in c++ last year.",
    "e-mail": "Residents can send an e-mail to the harbour office.",
}


def test_everyday_queries_with_inner_punctuation_find_their_article(
    store: Store, feeds: list[Feed]
) -> None:
    store.record_entries(
        feeds[0],
        [entry(None, f"Story {n}", content=text) for n, text in enumerate(EVERYDAY.values())],
    )

    for n, query in enumerate(EVERYDAY):
        assert f"Story {n}" in titles(store.search(query, Filters())), query
    assert titles(store.search("covid-19 winter", Filters())) == ["Story 0"]
    assert titles(store.search('"end-to-end encryption"', Filters())) == ["Story 1"]


def test_language_filter_matches_feed_only_article_with_region_subtag(
    store: Store, feeds: list[Feed]
) -> None:
    # Feeds declare "en-gb", "en-US"...; pages' languages are stored as ISO 639-1 ("en"). A
    # feed-only article must be found by the same --lang value.
    store.record_entries(
        feeds[0],
        [entry(None, "Tide tables", content="New tide tables are out.", language="en-GB")],
    )

    assert titles(store.search("tide", Filters(language="en"))) == ["Tide tables"]


def test_merge_search_index_leaves_one_segment_and_search_works(
    store: Store, feeds: list[Feed], database_url: str
) -> None:
    for n in range(5):  # a transaction each: FTS5 writes a segment each
        store.record_entries(feeds[0], [entry(None, f"Ferry {n}", content="Crossing news.")])

    segments = "SELECT count(DISTINCT segid) FROM articles_fts_idx"
    sqlite = database_url.startswith("sqlite")
    before = rows(store, segments) if sqlite else None

    merged = store.merge_search_index(pages=1)
    again = store.merge_search_index()

    assert len(store.search("ferry crossing", Filters())) == 5
    if not sqlite:
        assert (merged, again) == (0, 0)
        return
    assert before == [(5,)]
    assert merged >= 1
    assert again == 0
    assert rows(store, "SELECT count(DISTINCT segid) FROM articles_fts_idx") == [(1,)]


# --- reading articles -----------------------------------------------------------------------------


def test_article_by_id_url_with_tracking_params_and_canonical(
    store: Store, feeds: list[Feed]
) -> None:
    job = one_job(store, feeds[0], entry("https://news.example.org/a?id=7", "Ferry"))
    store.save_article(
        job,
        ExtractedArticle(text="Body.", canonical_url="https://news.example.org/ferry-story"),
        page(job, final_url="https://www.news.example.org/a?id=7"),
    )

    for ref in (
        str(job.article_id),
        "https://news.example.org/a?id=7",
        "https://news.example.org/a?id=7&utm_source=x&fbclid=y#comments",
        "https://www.news.example.org/a?id=7",
        "https://news.example.org/ferry-story",
    ):
        article, feed_url = store.article(ref)
        assert article.id == job.article_id, ref
        assert feed_url == HARBOUR.url


@pytest.mark.parametrize("ref", ["999", "https://news.example.org/never-seen"])
def test_unknown_article_raises_not_found(store: Store, feeds: list[Feed], ref: str) -> None:
    with pytest.raises(NotFoundError):
        store.article(ref)


def test_iter_articles_streams_all_in_id_order(store: Store, feeds: list[Feed]) -> None:
    store.record_entries(
        feeds[0], [entry(f"https://news.example.org/{n}", f"Story {n}") for n in range(7)]
    )
    store.record_entries(feeds[1], [entry(None, "Valley notice", content="Text.")])

    streamed = list(store.iter_articles(Filters(), batch=3))

    ids = [a.id for a, _ in streamed]
    assert len(ids) == 8
    assert ids == sorted(ids)
    assert [a.title for a, _ in streamed][-1] == "Valley notice"
    assert streamed[-1][1] == VALLEY.url


def test_iter_articles_applies_filters(archive: Store) -> None:
    assert [a.title for a, _ in archive.iter_articles(Filters(feed="Valley"))] == [
        "Gel tardif dans les vignes"
    ]


# --- opening --------------------------------------------------------------------------------------


def test_reopening_keeps_data(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    first = Store.open(url)
    (feed,) = first.sync_feeds([HARBOUR])
    first.record_entries(feed, [entry(None, "Kept", content="Still here.")])
    first.close()

    again = Store.open(url, create=False)
    try:
        ((article, _),) = list(again.iter_articles(Filters()))
        assert article.text == "Still here."
        stats = again.stats(NOW)
        assert stats["feeds"]["total"] == 1
        assert stats["articles"] == {"total": 1, "pending": 0, "ok": 1, "failed": 0}
    finally:
        again.close()


def test_open_without_create_on_missing_file_raises(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "archive.sqlite3"

    with pytest.raises(StoreError):
        Store.open(f"sqlite:///{missing}", create=False)

    assert not missing.exists()


def test_open_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "archive.sqlite3"

    Store.open(f"sqlite:///{path}").close()

    assert path.exists()


def test_open_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("these are not the pages of a database\n" * 100, encoding="utf-8")

    with pytest.raises(StoreError):
        Store.open(f"sqlite:///{path}")


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (Filters(feed="Nope"), "no feed 'Nope' in the archive"),
        (Filters(language="english"), "'english' is not a language code"),
    ],
)
def test_a_filter_that_names_nothing_is_an_error_not_an_empty_answer(
    archive: Store, filters: Filters, message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        archive.search("lighthouse", filters)
    with pytest.raises(QueryError, match=message):
        list(archive.iter_articles(filters))


def test_a_language_filter_takes_a_regional_tag(archive: Store) -> None:
    assert titles(archive.search("lighthouse", Filters(language="en-GB"))) == [
        "Harbour dredging starts",
        "Lighthouse keeper retires",
    ]
    assert archive.search("lighthouse", Filters(language="de")) == []  # a code: just no match
