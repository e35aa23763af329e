"""`ingest.entries` through `Store.record_entries`, on SQLite and PostgreSQL: which article each
entry is when entries share a link, across polls and feeds, and what a page save may merge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ingest.config import FeedSettings
from ingest.entryparts import entry_key, shared_links
from ingest.models import Feed
from ingest.query import render_text
from ingest.records import ExtractedArticle, FeedEntry, Page, PageJob
from ingest.store import Store

SHOW = "https://audio.example.org/show/"
DAY = "https://log.example.net/2025/03/14.html"
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
PODCAST = FeedSettings(url="https://audio.example.org/feed.rss", name="Podcast")
MIRROR = FeedSettings(url="https://mirror.example.com/show.rss", name="Mirror")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    archive = Store.open(database_url)
    yield archive
    archive.close()


@pytest.fixture
def feeds(store: Store) -> list[Feed]:
    return store.sync_feeds([PODCAST, MIRROR])


def item(
    guid: str | None,
    link: str | None,
    title: str | None = None,
    content: str | None = None,
    published: datetime | None = None,
) -> FeedEntry:
    return FeedEntry(
        key=entry_key(guid, link, title, None),
        guid=guid,
        link=link,
        title=title,
        summary=None,
        content=content,
        published=published,
    )


def episode(n: int, link: str = SHOW) -> FeedEntry:
    return item(f"ep-{n}", link, f"Episode {n}", f"Notes of episode {n}.", NOW - timedelta(days=n))


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def articles(store: Store) -> list[tuple[object, ...]]:
    return rows(
        store, "SELECT url_key, shared_key, guid, title, status, content_source FROM articles"
    )


def test_shared_links_tells_several_entries_from_one_listed_twice() -> None:
    twins = [item("a", SHOW, "Same", "Text."), item("b", SHOW + "?utm_source=x", "Same", "Text.")]
    podcast = [episode(1), episode(2, SHOW + "?utm_medium=rss")]
    posts = [item(f"{DAY}#a1", f"{DAY}#a1"), item(f"{DAY}#a2", f"{DAY}#a2", "Two")]
    tracked = [item("t1", f"{DAY}#xtor=RSS-3", "One"), item("t2", f"{DAY}#xtor=RSS-4", "Two")]

    assert shared_links(twins).posts == frozenset()
    assert shared_links(podcast).posts == {SHOW}
    assert shared_links(posts).pages == {DAY}
    assert shared_links(posts).posts == frozenset()
    assert shared_links(tracked).posts == {DAY}  # tracking fragments drop: one link shared


def test_episodes_on_one_page_are_their_own_articles_and_nothing_is_fetched(
    store: Store, feeds: list[Feed]
) -> None:
    recorded = store.record_entries(feeds[0], [episode(n) for n in range(1, 6)])

    assert (recorded.new_entries, recorded.feed_only, recorded.jobs) == (5, 5, [])
    assert sorted(articles(store)) == [
        (None, SHOW, f"ep-{n}", f"Episode {n}", "ok", "feed") for n in range(1, 6)
    ]
    assert store.claim_pages(NOW + timedelta(days=365)) == []


def test_the_same_episodes_from_two_feeds_are_one_article_each(
    store: Store, feeds: list[Feed]
) -> None:
    store.record_entries(feeds[0], [episode(1), episode(2)])
    mirrored = store.record_entries(feeds[1], [episode(2), episode(1)])

    assert (mirrored.new_entries, mirrored.feed_only) == (2, 0)
    assert rows(store, "SELECT count(*) FROM articles") == [(2,)]
    assert rows(store, "SELECT count(DISTINCT article_id), count(*) FROM entries") == [(2, 4)]


def test_a_link_once_shared_in_a_feed_stays_shared(store: Store, feeds: list[Feed]) -> None:
    store.record_entries(feeds[0], [episode(1), episode(2)])

    later = store.record_entries(feeds[0], [episode(3)])  # the feed now lists one episode
    elsewhere = store.record_entries(feeds[1], [episode(9)])  # alone on the link in its feed

    assert (later.feed_only, later.jobs) == (1, [])
    assert (elsewhere.feed_only, len(elsewhere.jobs)) == (0, 1)
    assert elsewhere.jobs[0].url == SHOW and elsewhere.jobs[0].fragment is None


def test_a_new_guid_on_a_link_that_names_one_entry_joins_its_article(
    store: Store, feeds: list[Feed]
) -> None:
    first = store.record_entries(feeds[0], [item("v1", SHOW + "story", "Draft title", "Text.")])
    edited = store.record_entries(feeds[0], [item("v2", SHOW + "story", "Final title", "Text!")])

    assert (edited.new_entries, edited.feed_only, edited.jobs) == (1, 0, [])
    assert rows(store, "SELECT DISTINCT article_id FROM entries") == [(first.jobs[0].article_id,)]


def test_an_episode_under_a_new_guid_joins_its_article_unless_it_changed(
    store: Store, feeds: list[Feed]
) -> None:
    store.record_entries(feeds[0], [episode(1), episode(2)])
    moved = item("host-2/ep-1", SHOW, "Episode 1", "Notes of episode 1.", NOW - timedelta(days=1))
    edited = item("host-2/ep-2", SHOW, "Episode 2 (re-edited)", "Notes of episode 2.")
    mirrored = item("mirror-1", SHOW, "Episode 1", "Notes of episode 1.", NOW - timedelta(days=1))

    again = store.record_entries(feeds[0], [moved, edited])  # the guids of a new host
    elsewhere = store.record_entries(feeds[1], [mirrored, episode(3)])

    assert (again.new_entries, again.feed_only) == (2, 1)
    assert (elsewhere.new_entries, elsewhere.feed_only) == (2, 1)
    ids = dict(rows(store, "SELECT entry_key, article_id FROM entries"))
    assert ids[moved.key] == ids[mirrored.key] == ids[episode(1).key]
    assert ids[edited.key] not in {ids[episode(1).key], ids[episode(2).key]}


def test_an_entrys_own_article_says_why_its_text_is_the_feeds(
    store: Store, feeds: list[Feed]
) -> None:
    store.record_entries(feeds[0], [episode(1), episode(2)])

    article, feed_url = store.article(SHOW)

    assert article.title == "Episode 1"  # the first of the articles on the shared link
    assert "Text:      from the feed (the entry's own: its link is shared by several entries)" in (
        render_text(article, [feed_url])
    )


def test_an_entry_listed_twice_under_two_guids_is_one_article(
    store: Store, feeds: list[Feed]
) -> None:
    twin = item("ep-1-again", SHOW, "Episode 1", "Notes of episode 1.", NOW - timedelta(days=1))

    recorded = store.record_entries(feeds[0], [episode(1), episode(2), twin])
    again = store.record_entries(feeds[0], [episode(1), episode(2), twin])

    assert (recorded.new_entries, recorded.feed_only) == (3, 2)
    assert (again.new_entries, again.feed_only, again.separated) == (0, 0, 0)
    ids = dict(rows(store, "SELECT entry_key, article_id FROM entries"))
    assert ids[twin.key] == ids[episode(1).key] != ids[episode(2).key]


def test_entries_first_recorded_alone_on_their_link_get_their_own_article_once_it_is_shared(
    store: Store, feeds: list[Feed]
) -> None:
    (job,) = store.record_entries(feeds[0], [episode(1)]).jobs  # alone: the link is its page
    store.save_article(job, ExtractedArticle(text="The show's page."), page(job))

    shared = store.record_entries(feeds[0], [episode(2), episode(1)])
    again = store.record_entries(feeds[0], [episode(2), episode(1)])

    assert (shared.new_entries, shared.feed_only, shared.separated) == (1, 2, 1)
    assert again.separated == 0
    ids = dict(rows(store, "SELECT entry_key, article_id FROM entries"))
    assert job.article_id not in ids.values()
    kept, _ = store.article(str(job.article_id))  # the page's article stays as it was
    assert (kept.text, kept.content_source, kept.url_key) == ("The show's page.", "page", SHOW)
    own, _ = store.article(str(ids[episode(1).key]))
    assert (own.title, own.text, own.shared_key) == ("Episode 1", "Notes of episode 1.", SHOW)


def test_posts_on_one_page_are_fetched_as_posts_and_the_page_stays_split(
    store: Store, feeds: list[Feed]
) -> None:
    first = store.record_entries(
        feeds[0],
        [
            item(f"{DAY}#a0912", f"{DAY}#a0912", None, "Fog."),
            item(f"{DAY}#a1130", f"{DAY}#a1130", "Fees", "Mooring fees."),
        ],
    )
    later = store.record_entries(feeds[1], [item("p3", f"{DAY}#a1505", None, "Late.")])
    store.release()
    claimed = store.claim_pages(NOW)

    assert [(j.url, j.fragment, j.hints.content) for j in first.jobs] == [
        (f"{DAY}#a0912", "a0912", "Fog."),
        (f"{DAY}#a1130", "a1130", "Mooring fees."),
    ]
    assert [(j.fragment, j.hints.content) for j in later.jobs] == [("a1505", "Late.")]
    assert sorted(r[0] for r in rows(store, "SELECT url_key FROM articles")) == [
        f"{DAY}#a0912",
        f"{DAY}#a1130",
        f"{DAY}#a1505",
    ]
    assert [(j.fragment, j.hints.content) for j in claimed] == [
        ("a0912", "Fog."),
        ("a1130", "Mooring fees."),
        ("a1505", "Late."),
    ]


def test_a_fragment_that_tells_no_entries_apart_is_dropped(store: Store, feeds: list[Feed]) -> None:
    recorded = store.record_entries(
        feeds[0],
        [
            item("x1", "https://news.example.org/a#xtor=RSS-3", "A"),
            item("x2", "https://news.example.org/b#comments", "B"),
        ],
    )

    assert [j.fragment for j in recorded.jobs] == [None, None]
    assert sorted(r[0] for r in rows(store, "SELECT url_key FROM articles")) == [
        "https://news.example.org/a",
        "https://news.example.org/b",
    ]


def page(job: PageJob, final_url: str | None = None) -> Page:
    headers = {"content-type": "text/html"}
    return Page(job.url, final_url or job.url, 200, headers, b"<html></html>", NOW)


def test_a_post_is_never_merged_into_its_page_or_another_post(
    store: Store, feeds: list[Feed]
) -> None:
    (whole,) = store.record_entries(feeds[1], [item("day", DAY, "The whole day")]).jobs
    store.save_article(whole, ExtractedArticle(text="All day.", canonical_url=DAY), page(whole))
    one, two = store.record_entries(
        feeds[0], [item("a", f"{DAY}#a1", "One"), item("b", f"{DAY}#a2", "Two")]
    ).jobs

    saved = [
        store.save_article(
            job,
            ExtractedArticle(text=text, canonical_url=f"{DAY}#{job.fragment}"),
            page(job, final_url=DAY),  # the page's URL: no fragment after the fetch
        )
        for job, text in ((one, "Post one."), (two, "Post two."))
    ]

    assert saved == [one.article_id, two.article_id]
    assert sorted(rows(store, "SELECT url_key, final_url, text FROM articles")) == [
        (DAY, DAY, "All day."),
        (f"{DAY}#a1", f"{DAY}#a1", "Post one."),
        (f"{DAY}#a2", f"{DAY}#a2", "Post two."),
    ]


def test_a_post_whose_page_moved_joins_the_post_archived_there_and_stays_there(
    store: Store, feeds: list[Feed]
) -> None:
    moved = "https://log.example.net/archive/2025-03-14.html"
    posts = [item("a", f"{DAY}#a1", "One"), item("b", f"{DAY}#a2", "Two")]
    there = store.record_entries(
        feeds[1], [item("m1", f"{moved}#a1", "One"), item("m2", f"{moved}#a2", "Two")]
    ).jobs[0]
    store.save_article(there, ExtractedArticle(text="Post one."), page(there, final_url=moved))
    job = store.record_entries(feeds[0], posts).jobs[0]

    merged = store.save_article(job, ExtractedArticle(text="Post one."), page(job, moved))
    again = store.record_entries(feeds[0], posts)

    assert merged == there.article_id
    assert (again.new_entries, again.separated, again.jobs) == (0, 0, [])
    ids = dict(rows(store, "SELECT entry_key, article_id FROM entries"))
    assert ids[posts[0].key] == there.article_id


def test_workers_recording_the_same_episodes_from_two_feeds_store_each_once(
    database_url: str, feeds: list[Feed]
) -> None:
    workers = [Store.open(database_url) for _ in feeds]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def poll(worker: Store, feed: Feed) -> None:
        start.wait()
        try:
            worker.record_entries(feed, [episode(n) for n in range(1, 21)])
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=poll, args=(w, f)) for w, f in zip(workers, feeds, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = rows(workers[0], "SELECT count(*), count(DISTINCT guid) FROM articles")
    entries = rows(workers[0], "SELECT count(*), count(DISTINCT article_id) FROM entries")
    for worker in workers:
        worker.close()

    assert errors == []
    assert counts == [(20, 20)]
    assert entries == [(40, 20)]
