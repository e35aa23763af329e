"""`ingest.jsonfeed` through `parse_feed`: JSON Feed 1.0 and 1.1 as publishers write them
(fixtures under ``tests/fixtures/site/jsonfeed``), broken and hostile documents, and the
enclosures of RSS and Atom (``tests/fixtures/formats``)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.entryparts import entry_key
from ingest.errors import FeedError
from ingest.feeds import parse_feed
from ingest.records import Enclosure, ParsedFeed
from ingest.web.syndication import json_feed
from tests.newsroom import FIXTURES_DIR, SITE_DIR

BASE = "https://quay.example.org"


def fixture(name: str, *, content_type: str | None = None) -> ParsedFeed:
    body = (SITE_DIR / "jsonfeed" / name).read_bytes().replace(b"{{BASE}}", BASE.encode())
    return parse_feed(body, url=f"{BASE}/jsonfeed/{name}", content_type=content_type)


def parse_json(document: Any, **kwargs: Any) -> ParsedFeed:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_feed(body, url=f"{BASE}/feed.json", **kwargs)


def feed_with(*items: Any, **fields: Any) -> dict[str, Any]:
    return {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": items, **fields}


# --- the shapes publishers produce -----------------------------------------------------------


def test_podcast_1_1_gives_episodes_with_their_attachments() -> None:
    feed = fixture("podcast.json")

    assert feed.title == "The Tidewater Hour"
    assert feed.site_url == f"{BASE}/shared/tidewater/"
    assert feed.language == "en"
    assert feed.problem is None
    first, second, third = feed.entries
    assert first.guid == "tidewater-hour-episode-012"
    assert first.link == f"{BASE}/shared/tidewater/"
    assert first.title == "Listener questions, part two"
    assert first.summary == "Listener questions, part two."
    assert first.content == (
        "Episode 12: Listener questions, part two.\n\n"
        "A conversation recorded on the quay, edited lightly."
    )
    assert first.published == datetime(2025, 3, 20, 6, 0, tzinfo=UTC)
    assert first.enclosures == (
        Enclosure(
            url="https://media.example.org/tidewater/012.mp3",
            type="audio/mpeg",
            length=31012000,
            title="Listener questions, part two (MP3)",
            duration=3120.0,
        ),
        Enclosure(
            url="https://media.example.org/tidewater/012.m4a",
            type="audio/x-m4a",
            length=24000000,
            duration=3120.0,
        ),
    )
    # The feed's authors are an item's when it names none; an item's own list wins.
    assert first.authors == ("Tidewater Audio Collective",)
    assert second.authors == ("R. Lind", "Tidewater Audio Collective")
    # A relative attachment resolves against the home page; a zone is converted to UTC.
    assert second.enclosures[0].url == f"{BASE}/shared/media/tidewater-011.mp3"
    assert second.updated == datetime(2025, 3, 14, 7, 30, tzinfo=UTC)
    assert third.enclosures == (
        Enclosure(url="https://media.example.org/tidewater/010.mp3", type="audio/mpeg"),
    )
    assert third.content == "Episode 10: Ice in the harbour.\n\nA winter special."


def test_microblog_1_0_without_titles_keeps_its_text_and_its_author() -> None:
    feed = fixture("microblog.json")

    assert feed.problem is None
    first, second, third = feed.entries
    assert first.title is None
    assert first.content == (
        "The council has published the new mooring fees.\n\n"
        "Small boats pay eight percent more from April."
    )
    # 1.0's single author object; an id given as a number is its string (as the spec says).
    assert first.authors == ("Nell Quay",)
    assert first.guid == "1505"
    # Relative URLs, a path and a page-relative one, resolve against home_page_url.
    assert first.link == f"{BASE}/shared/notes/2025/03/14.html#a1505"
    assert third.link == f"{BASE}/shared/notes/2025/03/14.html#a0912"
    assert third.title == "Fog on the quay"
    assert (
        second.content == 'Overheard at the chandlery: "They don\'t make cleats like they used to."'
    )


def test_link_blog_archives_the_post_not_the_page_it_links_to() -> None:
    post, only_external = fixture("linkblog.json").entries

    assert post.link == f"{BASE}/jsonfeed/links/ice-charts.html"
    assert post.authors == ("Jo Marr", "Sam Weir")
    assert post.title == "★ The ice charts"
    # An item with no url of its own: the page it links to is all there is.
    assert only_external.link == f"{BASE}/world/danube-grain.html"
    assert only_external.language == "en"  # an item's language tag, made ISO 639-1


def test_entry_identity_is_the_same_rule_as_rss() -> None:
    post = fixture("linkblog.json").entries[0]

    assert post.key == entry_key(post.guid, post.link, post.title, "2025-03-14T18:00:00Z")


def test_without_home_page_relative_urls_resolve_against_the_feed() -> None:
    feed = parse_json(feed_with({"id": "1", "url": "posts/one.html", "content_text": "One."}))

    assert feed.entries[0].link == f"{BASE}/posts/one.html"


def test_a_placeholder_home_page_is_not_the_base_of_a_real_feed() -> None:
    document = feed_with(
        {"id": "1", "url": "/posts/tides.html", "content_text": "Tides."},
        home_page_url="https://example.com",  # a generator's default, never changed
    )

    feed = parse_feed(json.dumps(document).encode(), url="https://harbourlog.net/feed.json")

    assert feed.site_url is None
    assert feed.entries[0].link == "https://harbourlog.net/posts/tides.html"


def test_json_is_told_by_its_bytes_or_its_content_type() -> None:
    body = json.dumps(feed_with({"id": "1", "content_text": "One."})).encode()

    # A byte-order mark and white space before the object; a feed served as text/plain.
    assert parse_feed(b"\xef\xbb\xbf \n" + body, url=BASE, content_type="text/plain").entries
    # JSON Feed's own type on a body that starts with something else (an array).
    with pytest.raises(FeedError, match="malformed feed: JSON a list, not a JSON Feed"):
        parse_feed(b"[1, 2]", url=BASE, content_type="application/feed+json")
    # The bytes win over a header that says JSON of an RSS document.
    rss = (
        b'<rss version="2.0"><channel><title>R</title><item><title>x</title></item></channel></rss>'
    )
    assert parse_feed(rss, url=BASE, content_type="application/json").title == "R"


def test_plain_text_summary_with_html_in_it_is_read_as_html() -> None:
    (entry,) = parse_json(
        feed_with({"id": "1", "summary": "<p>A <b>bold</b> claim.</p><script>x()</script>"})
    ).entries

    assert entry.summary == "A bold claim."
    assert entry.content == "A bold claim."


def test_angle_brackets_in_plain_text_are_not_taken_for_html() -> None:
    note = "Swap Vec<u8> for Bytes, hit <Tab> twice; x<y and y>z."
    (entry,) = parse_json(feed_with({"id": "1", "content_text": note, "summary": note})).entries

    assert entry.content == entry.summary == note


def test_content_html_escaped_twice_by_a_template_is_read_as_html() -> None:
    twice = "&lt;p&gt;Ropes &amp;amp; knots.&lt;/p&gt;&lt;p&gt;A second part.&lt;/p&gt;"
    mention = "Wrap each paragraph in &lt;p&gt; tags."
    feed = parse_json(
        feed_with({"id": "1", "content_html": twice}, {"id": "2", "content_html": mention})
    )

    assert [e.content for e in feed.entries] == [
        "Ropes & knots.\n\nA second part.",
        "Wrap each paragraph in <p> tags.",  # escaped once: a tag named, not markup
    ]


def test_a_title_or_text_printed_as_a_number_is_its_text() -> None:
    feed = parse_json(
        feed_with(
            {"id": "1", "title": 1984, "content_text": 42, "authors": [{"name": 7}]},
            {"id": "2", "title": True, "content_text": "Kept."},
            title=2025,
        )
    )
    first, second = feed.entries

    assert (feed.title, first.title, first.content, first.authors) == ("2025", "1984", "42", ("7",))
    # A boolean is no title (a template's YAML "yes" is not the publisher's words): dropped, said.
    assert second.title is None
    assert feed.problem is not None and "title is a boolean" in feed.problem


def test_an_empty_feed_is_a_feed() -> None:
    feed = parse_json(feed_with())

    assert feed.entries == ()
    assert feed.problem is None


def test_an_empty_feed_with_a_broken_author_is_a_feed_said_malformed() -> None:
    feed = parse_json(feed_with(authors=[None]))

    assert feed.entries == ()
    assert feed.problem == "malformed feed, 0 entries recovered: an author is null, not an object"


# --- shapes found in real feeds (a corpus of other projects' JSON Feeds, tried one by one) ----


def test_plain_text_escaped_for_html_by_a_template_is_decoded() -> None:
    # Template engines autoescape: a title, a name and content_text come with references.
    feed = parse_json(
        feed_with(
            {
                "id": "1",
                "title": "Tides &amp; currents: what&#39;s &quot;slack water&quot;?",
                "content_text": "Ebb &amp; flood.\nAT&T and R&D &notes stay as written.",
                "authors": [{"name": "Ola &#x00C5;sen"}],
            },
            title="Harbour &amp; Shore",
        )
    )
    (entry,) = feed.entries

    assert feed.title == "Harbour & Shore"
    assert entry.title == 'Tides & currents: what\'s "slack water"?'
    assert entry.content == "Ebb & flood.\n\nAT&T and R&D &notes stay as written."
    assert entry.authors == ("Ola \u00c5sen",)


def test_authors_given_as_one_object_or_a_bare_name_are_read() -> None:
    feed = parse_json(
        feed_with(
            {"id": "1", "content_text": "a", "authors": {"name": "Kit Lowe"}},
            {"id": "2", "content_text": "b", "author": "Rae Dunn"},
            {"id": "3", "content_text": "c"},
            author="Desk Editor",
        )
    )

    assert [e.authors for e in feed.entries] == [("Kit Lowe",), ("Rae Dunn",), ("Desk Editor",)]
    assert feed.problem is None


def test_an_item_with_an_empty_authors_list_has_the_feeds() -> None:
    feed = parse_json(
        feed_with({"id": "1", "content_text": "a", "authors": []}, authors=[{"name": "Pilot Desk"}])
    )

    assert feed.entries[0].authors == ("Pilot Desk",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # RFC 822, as feeds converted from RSS and some templates write it.
        ("Sat, 16 Mar 2019 10:00:00 +0100", datetime(2019, 3, 16, 9, tzinfo=UTC)),
        ("2019-03-15 10:00:00 +0100", datetime(2019, 3, 15, 9, tzinfo=UTC)),  # Jekyll's default
        ("2020-01-23T10:43:08.000Z", datetime(2020, 1, 23, 10, 43, 8, tzinfo=UTC)),
        ("2018-01-06T08:00", datetime(2018, 1, 6, 8, tzinfo=UTC)),  # no zone: UTC
        # Placeholders of a missing date: Go's zero time (out of range once its zone is
        # applied, which raised), the Unix epoch; and a date that is no date.
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59-01:00", None),
        ("1970-01-01T00:00:00Z", None),
        ("next Tuesday", None),
    ],
)
def test_dates_as_publishers_write_them(raw: str, expected: datetime | None) -> None:
    item = {"id": "1", "content_text": "x", "date_published": raw}

    (entry,) = parse_json(feed_with(item)).entries

    assert entry.published == expected


def test_a_control_character_left_raw_in_a_string_does_not_lose_the_feed() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1", "title": "Raw",'
        b' "items": [{"id": "1", "title": "Mooring\tlines", "content_text": "one\ntwo"}]}'
    )

    (entry,) = parse_json(body).entries

    assert (entry.title, entry.content) == ("Mooring lines", "one\n\ntwo")


def test_items_with_nothing_but_text_are_distinct_entries() -> None:
    feed = parse_json(
        feed_with({"content_html": "<p>First note.</p>"}, {"content_text": "Second note."})
    )

    assert len({e.key for e in feed.entries}) == 2


def test_one_id_given_to_different_items_identifies_none_of_them() -> None:
    same = f"{BASE}/feed.json"  # a template printing the feed's own URL as each post's id
    feed = parse_json(
        feed_with(
            {"id": same, "url": "/posts/buoys.html", "content_text": "Buoys."},
            {"id": same, "url": "/posts/beacons.html", "content_text": "Beacons."},
            {"id": "kept", "url": "/posts/charts.html", "content_text": "Charts."},
            {"id": "kept", "url": "/posts/charts.html", "content_text": "Charts."},
        )
    )
    buoys, beacons, charts, again = feed.entries

    assert buoys.key != beacons.key
    assert buoys.key == entry_key(None, buoys.link, None, None)  # the link's, as without an id
    assert charts.key == again.key == entry_key("kept", charts.link, None, None)


def test_an_id_too_long_to_index_is_kept_as_its_hash_in_json_feed_and_rss() -> None:
    huge = "urn:episode:" + "ab" * 4000
    rss = (
        f'<rss version="2.0"><channel><title>R</title><item><guid isPermaLink="false">{huge}'
        "</guid><title>x</title></item></channel></rss>"
    ).encode()

    (from_json,) = parse_json(feed_with({"id": huge, "content_text": "x"})).entries
    (from_rss,) = parse_feed(rss, url=BASE).entries

    assert from_json.guid == from_rss.guid
    assert from_json.guid is not None and from_json.guid.startswith("sha256:")
    assert len(from_json.guid) == 71
    assert parse_json(feed_with({"id": "urn:short", "content_text": "x"})).entries[0].guid == (
        "urn:short"
    )


def test_a_link_too_long_to_index_is_no_link_and_the_entry_stays() -> None:
    huge = f"{BASE}/story?token=" + "Zq9" * 1000
    rss = (
        '<rss version="2.0"><channel><title>R</title><item>'
        f'<guid isPermaLink="false">g1</guid><title>x</title><link>{huge}</link>'
        "<description>Kept.</description></item></channel></rss>"
    ).encode()

    (from_json,) = parse_json(feed_with({"id": "g1", "url": huge, "content_text": "Kept."})).entries
    (from_rss,) = parse_feed(rss, url=BASE).entries

    assert (from_json.link, from_json.guid, from_json.content) == (None, "g1", "Kept.")
    assert (from_rss.link, from_rss.guid, from_rss.content) == (None, "g1", "Kept.")


def test_commented_out_markup_in_content_is_not_text() -> None:
    html = '<p>Before.</p><!-- <img src="https://cdn.example/a.jpg"> --><p>After.</p>'
    (entry,) = parse_json(feed_with({"id": "1", "content_html": html})).entries

    assert entry.content == "Before.\n\nAfter."


def test_other_json_with_an_items_list_is_not_a_feed() -> None:
    # RSS turned into JSON: no JSON Feed version, items with RSS's names for their fields.
    document = {
        "version": "2.0",
        "title": "Channel",
        "items": [{"title": "A post", "link": "https://a.example/1", "pubDate": "x"}],
    }

    with pytest.raises(FeedError, match="not a feed") as caught:
        parse_json(document)

    assert caught.value.reason == "not_feed"
    # Without the version but with JSON Feed items it is still read, as before.
    assert parse_json({"items": [{"id": "1", "content_text": "x"}]}).entries


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_in_utf16_or_utf32_is_a_json_feed_without_a_content_type(encoding: str) -> None:
    body = json.dumps(feed_with({"id": "1", "title": "Ebb tide"}), ensure_ascii=False)

    (entry,) = parse_feed(body.encode(encoding), url=BASE).entries

    assert entry.title == "Ebb tide"


def test_a_declared_legacy_charset_is_read_and_an_undeclared_one_refused() -> None:
    document = feed_with({"id": "1", "title": "Crème fraîche à la carte"})
    body = json.dumps(document, ensure_ascii=False).encode("latin-1")

    feed = parse_feed(body, url=BASE, content_type="application/json; charset=ISO-8859-1")

    assert feed.entries[0].title == "Crème fraîche à la carte"
    with pytest.raises(FeedError, match="not valid JSON"):
        parse_feed(body, url=BASE, content_type="application/json")


# --- the JSON Feed we serve (/search.feed.json), as readers and validators take it -----------

RFC3339 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
HITS: list[dict[str, Any]] = [
    {
        "id": 7,
        "title": "Locks & weirs",
        "url": "https://canal.example/Schleuse Köln?x=1&y=2",
        "published": "2025-03-14T09:30:00.250000Z",
        "authors": ["Ines Roth", ""],
        "language": "de",
        "snippet": "the **lock** keeper",
    },
    {
        "id": 8,
        "title": None,
        "url": "javascript:alert(1)",
        "published": None,
        "authors": [],
        "language": None,
        "snippet": "",
    },
]


def test_our_json_feed_follows_the_spec_as_validators_check_it() -> None:
    feed = json.loads(json_feed(HITS, "lock", "https://arch.example/search.feed.json?q=lock"))
    first, second = feed["items"]

    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["feed_url"].endswith("/search.feed.json?q=lock")
    assert feed["home_page_url"] == "https://arch.example/search?q=lock"
    # A URL with a space and non-ASCII is written as a URI; a javascript: one not at all.
    assert first["url"] == "https://canal.example/Schleuse%20K%C3%B6ln?x=1&y=2"
    assert "url" not in second
    assert re.fullmatch(RFC3339, first["date_published"])
    # 1.1's authors (no empty name), and 1.0's author for older readers.
    assert first["authors"] == [{"name": "Ines Roth"}] and first["author"] == {"name": "Ines Roth"}
    # No invented title; every item has an id and one of the contents, as the spec requires.
    assert "title" not in second
    assert all(isinstance(i["id"], str) and "content_text" in i for i in feed["items"])
    assert set(second) <= {"id", "url", "title", "content_text", "external_url"}


def test_our_json_feed_reads_back_through_our_reader() -> None:
    body = json_feed(HITS, "", "https://arch.example/search.feed.json")

    feed = parse_feed(body, url="https://arch.example/search.feed.json")
    first, second = feed.entries

    assert feed.site_url == "https://arch.example/search"
    assert (first.guid, first.title, first.authors, first.language) == (
        "7",
        "Locks & weirs",
        ("Ines Roth",),
        "de",
    )
    assert first.published == datetime(2025, 3, 14, 9, 30, 0, 250000, tzinfo=UTC)
    assert first.link == "https://canal.example/Schleuse%20K%C3%B6ln?x=1&y=2"
    assert second.link == "https://arch.example/articles/8"  # its page in the archive


# --- broken ----------------------------------------------------------------------------------


def test_broken_items_are_skipped_and_the_good_ones_kept_with_the_problem_said() -> None:
    feed = fixture("broken.json")

    assert [e.guid for e in feed.entries] == ["good-1", "bad-2", "good-3"]
    assert feed.problem is not None
    assert feed.problem.startswith("malformed feed, 3 entries recovered: title is a list")
    assert "more problems" in feed.problem
    assert feed.title is None
    bad, good = feed.entries[1], feed.entries[2]
    # Every field of the wrong type is dropped, not turned into text.
    assert (bad.link, bad.title, bad.content, bad.published, bad.authors) == (
        None,
        None,
        None,
        None,
        (),
    )
    # A javascript: URL is no enclosure; a size given as a string of digits is still read,
    # a negative duration and a type that is a list are not.
    assert good.enclosures == (Enclosure(url="https://media.example.org/a.mp3", length=12),)


def test_a_truncated_document_is_a_malformed_feed() -> None:
    with pytest.raises(FeedError, match="malformed feed: not valid JSON") as caught:
        fixture("truncated.json")

    assert caught.value.reason == "bad_feed"


def test_json_that_is_not_a_feed_is_not_a_feed() -> None:
    with pytest.raises(FeedError) as caught:
        parse_json({"status": "ok", "data": []})

    assert caught.value.reason == "not_feed"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (feed_with(items={"id": "1"}), "items is an object, not a list"),
        ({"version": "https://jsonfeed.org/version/1.1"}, "items is null, not a list"),
        (feed_with("a", 1, None, [], True), "item 1 is a string, not an object"),
        (feed_with({"id": True, "url": 7}), "item 1: id is a boolean"),
    ],
)
def test_nothing_recovered_is_an_error_that_says_why(document: Any, message: str) -> None:
    with pytest.raises(FeedError, match="malformed feed: " + message) as caught:
        parse_json(document)

    assert caught.value.reason == "bad_feed"


# --- hostile ---------------------------------------------------------------------------------

HOSTILE = [
    pytest.param(b"[" * 200_000 + b"]" * 200_000, id="deep-array"),
    pytest.param(b'{"items": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001, id="deep-object"),
    pytest.param(b'{"items": [{"id": ' + b"9" * 100_000 + b"}]}", id="huge-integer"),
    pytest.param(b'{"version": "https://jsonfeed.org/version/1", "items": 1e999999}', id="inf"),
    pytest.param(b'{"items": [{"id": "1", "title": "\xff\xfe"}]}', id="not-utf8"),
    pytest.param(b'{"items": [{"id": "1"}], }', id="trailing-comma"),
    pytest.param(b"{" + b" " * 1_000_000, id="open-brace"),
    pytest.param(b"\xef\xbb\xbf{}", id="empty-object"),
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_json_raises_only_feed_error(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_json(body)


WRONG_TYPES: list[Any] = [None, True, 0, -1, 1e308, float("nan"), "", "x", [], {}, [[]], [{}]]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_a_wrong_type_anywhere_never_raises_anything_but_feed_error(value: Any) -> None:
    fields = (
        "id url external_url title content_html content_text summary date_published "
        "date_modified author authors language attachments"
    ).split()
    attachment_fields = "url mime_type title size_in_bytes duration_in_seconds".split()
    documents = [
        feed_with({"id": "ok", "content_text": "Kept."}, **{key: value})
        for key in ("title", "home_page_url", "language", "author", "authors")
    ]
    documents += [feed_with({"id": "ok", "content_text": "Kept."}, {key: value}) for key in fields]
    documents += [
        feed_with({"id": "ok", "content_text": "Kept.", "attachments": [{key: value}]})
        for key in attachment_fields
    ]
    documents += [feed_with({"id": "ok", "authors": [{"name": value}], "content_text": "x"})]
    documents += [{"version": value, "items": value}, {"version": value, "items": [value]}]
    for document in documents:
        try:
            feed = parse_json(json.dumps(document, allow_nan=True).encode())
        except FeedError:
            continue
        for entry in feed.entries:
            assert entry.title is None or isinstance(entry.title, str)
            assert all(isinstance(item.url, str) for item in entry.enclosures)


def test_a_huge_number_in_a_size_or_a_duration_is_dropped() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", '
        b'"attachments": [{"url": "https://m.example.org/a.mp3", "mime_type": "audio/mpeg", '
        b'"size_in_bytes": ' + b"9" * 4000 + b', "duration_in_seconds": 1e400}]}]}'
    )

    (entry,) = parse_json(body).entries

    assert entry.enclosures == (Enclosure(url="https://m.example.org/a.mp3", type="audio/mpeg"),)


def test_many_attachments_and_authors_are_capped() -> None:
    attachments = [{"url": f"https://m.example.org/{n}.mp3"} for n in range(10_000)]
    authors = [{"name": f"Author {n}"} for n in range(10_000)]

    (entry,) = parse_json(
        feed_with({"id": "1", "attachments": attachments, "authors": authors})
    ).entries

    assert len(entry.enclosures) == 20
    assert len(entry.authors) == 50


# --- RSS and Atom enclosures -----------------------------------------------------------------


def test_rss_enclosures_with_their_length_type_and_itunes_duration() -> None:
    body = (FIXTURES_DIR / "formats" / "enclosures.rss").read_bytes()

    first, second, third = parse_feed(body, url="https://radio.example.org/feed.rss").entries

    # Relative to the feed; an episode's itunes:duration is its one enclosure's.
    assert first.enclosures == (
        Enclosure(
            url="https://radio.example.org/audio/2025-03-14.mp3",
            type="audio/mpeg",
            length=48213000,
            duration=3723.0,
        ),
    )
    # Listed twice is once; length 0 ("unknown") and a length that is no number are None; a
    # javascript: URL is dropped; with several enclosures no one of them has the duration.
    assert second.enclosures == (
        Enclosure(url="https://cdn.example.org/audio/2025-03-13.mp3", type="audio/mpeg"),
        Enclosure(url="https://cdn.example.org/video/2025-03-13.mp4", type="video/mp4"),
    )
    assert third.enclosures == ()


def test_atom_enclosure_links_with_their_title() -> None:
    body = (FIXTURES_DIR / "formats" / "enclosures.atom").read_bytes()

    (entry,) = parse_feed(body, url="https://video.example.org/feed.atom").entries

    assert entry.link == "https://video.example.org/harbour/clips/freighter.html"
    assert entry.enclosures == (
        Enclosure(
            url="https://video.example.org/harbour/clips/freighter.mp4",
            type="video/mp4",
            length=98765432,
            title="The freighter arrives (1080p)",
        ),
        Enclosure(url="https://video.example.org/harbour/clips/freighter.webm", type="video/webm"),
    )
