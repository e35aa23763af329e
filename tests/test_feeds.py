"""`ingest.feeds`: URL and entry identity, fragment text, feed parsing with real feedparser."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import pytest

from ingest.entryparts import entry_key, fragment_text, url_key
from ingest.errors import FeedError
from ingest.feeds import parse_feed

# feedparser warns when `updated_parsed` is read from an entry that only has a published date;
# one test below shows that `parse_feed` triggers it, the others are not about it.
FEEDPARSER_FALLBACK = "ignore:To avoid breaking existing software:DeprecationWarning"
pytestmark = pytest.mark.filterwarnings(FEEDPARSER_FALLBACK)

# --- url_key --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tracked",
    [
        "https://news.example.org/local/ferry?utm_source=rss&utm_medium=feed&utm_campaign=x",
        "https://news.example.org/local/ferry?fbclid=IwAR0abc",
        "https://news.example.org/local/ferry?gclid=Cj0KCQ",
        "https://news.example.org/local/ferry#comments",
        "https://NEWS.Example.ORG/local/ferry",
        "https://news.example.org:443/local/ferry",
        "https://news.example.org/local/./archive/../ferry",
    ],
)
def test_url_key_ignores_tracking_fragment_case_port_and_dot_segments(tracked: str) -> None:
    assert url_key(tracked) == url_key("https://news.example.org/local/ferry")


def test_url_key_drops_default_http_port() -> None:
    assert url_key("http://news.example.org:80/a") == url_key("http://news.example.org/a")


def test_url_key_keeps_other_parameters() -> None:
    key = url_key("https://news.example.org/story?id=42&utm_source=rss&page=2")

    assert "id=42" in key
    assert "page=2" in key
    assert "utm_source" not in key


def test_url_key_ignores_parameter_order() -> None:
    assert url_key("https://news.example.org/s?b=2&a=1") == url_key(
        "https://news.example.org/s?a=1&b=2"
    )


def test_url_key_keeps_distinct_articles_apart() -> None:
    assert url_key("https://news.example.org/story?id=1") != url_key(
        "https://news.example.org/story?id=2"
    )
    assert url_key("https://news.example.org/a") != url_key("https://news.example.org/b")
    assert url_key("https://news.example.org:8443/a") != url_key("https://news.example.org/a")


def test_url_key_keeps_path_case() -> None:
    assert url_key("https://news.example.org/Local/Ferry").endswith("/Local/Ferry")


# --- entry_key ------------------------------------------------------------------------------------


def test_entry_key_prefers_guid_over_link() -> None:
    a = entry_key("tag:news.example.org,2025:1", "https://news.example.org/a", "A", None)
    b = entry_key("tag:news.example.org,2025:1", "https://news.example.org/b", "B", None)

    assert a == b


def test_entry_key_different_guids_differ_even_with_same_link() -> None:
    link = "https://news.example.org/a"

    assert entry_key("guid-1", link, None, None) != entry_key("guid-2", link, None, None)


def test_entry_key_uses_link_when_no_guid() -> None:
    a = entry_key(None, "https://news.example.org/a", "First title", None)
    b = entry_key(None, "https://news.example.org/a", "Edited title", None)

    assert a == b
    assert a != entry_key(None, "https://news.example.org/b", "First title", None)


def test_entry_key_same_link_with_tracking_params_is_same_entry() -> None:
    plain = entry_key(None, "https://news.example.org/a", None, None)
    tracked = entry_key(None, "https://news.example.org/a?utm_source=rss#top", None, None)

    assert plain == tracked


def test_entry_key_falls_back_to_title_and_date() -> None:
    date = "Tue, 04 Mar 2025 09:30:00 GMT"
    key = entry_key(None, None, "Ferry timetable changes", date)

    assert key == entry_key(None, None, "Ferry timetable changes", date)
    assert key != entry_key(None, None, "Ferry timetable changes", "Wed, 05 Mar 2025 09:30:00 GMT")
    assert key != entry_key(None, None, "Bridge reopens", date)


def test_entry_key_is_a_hex_digest() -> None:
    key = entry_key("guid-1", None, None, None)

    assert len(key) == 64
    assert int(key, 16) >= 0


# --- fragment_text --------------------------------------------------------------------------------


def test_fragment_text_separates_paragraphs_with_blank_lines() -> None:
    html = "<p>The ferry leaves earlier.</p><p>Evening sailings are unchanged.</p>"

    assert fragment_text(html) == "The ferry leaves earlier.\n\nEvening sailings are unchanged."


def test_fragment_text_br_splits_blocks() -> None:
    assert fragment_text("<p>First line<br>second line<br/>third</p>") == (
        "First line\n\nsecond line\n\nthird"
    )


def test_fragment_text_keeps_headings_as_blocks() -> None:
    html = "<p>Intro.</p><h2>What changes</h2><p>Details.</p>"

    assert fragment_text(html) == "Intro.\n\nWhat changes\n\nDetails."


def test_fragment_text_drops_script_and_style_but_keeps_their_tail() -> None:
    html = "<div>Before<script>track('x');</script> after<style>p{color:red}</style> end</div>"

    assert fragment_text(html) == "Before after end"


def test_fragment_text_decodes_entities_in_markup() -> None:
    html = "<p>Smith &amp; Sons &ndash; caf&eacute; &#8220;open&#8221;</p>"

    assert fragment_text(html) == "Smith & Sons – café “open”"


def test_fragment_text_decodes_entities_without_tags() -> None:
    # Feeds often double-escape descriptions; the value handed over is HTML without tags.
    assert fragment_text("It&#8217;s Smith &amp; Sons") == "It’s Smith & Sons"


def test_fragment_text_passes_plain_text_through_with_spaces_normalised() -> None:
    assert fragment_text("  A plain\n summary   of the story. ") == "A plain summary of the story."


@pytest.mark.parametrize("empty", [None, "", "   \n ", "<p> </p>"])
def test_fragment_text_of_nothing_is_none(empty: str | None) -> None:
    assert fragment_text(empty) is None


# --- parse_feed -----------------------------------------------------------------------------------

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>  Harbour   Gazette </title>
  <link>https://news.example.org/</link>
  <language>en-gb</language>
  <item>
    <title>Ferry timetable changes</title>
    <link>/local/ferry-timetable?utm_source=rss</link>
    <guid isPermaLink="false">tag:news.example.org,2025:ferry-1</guid>
    <pubDate>Tue, 04 Mar 2025 09:30:00 +0100</pubDate>
    <dc:creator>Mara Lind</dc:creator>
    <description>Short summary of the ferry story.</description>
    <content:encoded><![CDATA[<p>The morning ferry will leave earlier.</p>
      <p>Evening sailings are unchanged.</p>]]></content:encoded>
  </item>
  <item>
    <title>Bridge works</title>
    <link>https://news.example.org/local/bridge</link>
    <author>desk@news.example.org (Ola Berg)</author>
    <description>&lt;p&gt;Only a description.&lt;/p&gt;</description>
  </item>
  <item>
    <title>Notice without a page</title>
    <description>Harbour office closed on Friday.</description>
  </item>
</channel>
</rss>
"""

RSS1 = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://valley.example.net/rss">
    <title>Valley Post</title>
    <link>https://valley.example.net/</link>
    <description>News from the valley</description>
    <items><rdf:Seq><rdf:li rdf:resource="https://valley.example.net/a/bridge"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://valley.example.net/a/bridge">
    <title>Bridge reopens after repairs</title>
    <link>https://valley.example.net/a/bridge</link>
    <description>The old stone bridge reopened to traffic.</description>
    <dc:creator>Ines Park</dc:creator>
    <dc:date>2025-02-01T18:00:00-05:00</dc:date>
  </item>
</rdf:RDF>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.com/notes/"
      xml:lang="fr">
  <title>Carnet</title>
  <link href="https://blog.example.com/"/>
  <id>urn:uuid:feed</id>
  <updated>2025-01-02T08:00:00Z</updated>
  <entry>
    <title>Premier billet</title>
    <link rel="alternate" href="2025/premier.html"/>
    <id>urn:uuid:entry-1</id>
    <published>2025-01-01T23:15:00+02:00</published>
    <updated>2025-01-02T08:00:00Z</updated>
    <author><name>Luc Moreau</name></author>
    <author><name>Ana Ruiz</name></author>
    <summary>Un court resume.</summary>
    <content type="html">&lt;p&gt;Le texte complet.&lt;/p&gt;
      &lt;p&gt;Second paragraphe.&lt;/p&gt;</content>
  </entry>
  <entry xml:base="https://other.example.com/x/">
    <title>Ailleurs</title>
    <link href="../y/ailleurs"/>
    <id>urn:uuid:entry-2</id>
    <updated>2025-01-03T00:00:00Z</updated>
  </entry>
</feed>
"""

FEED_URL = "https://news.example.org/feeds/main.xml"


def test_rss2_channel_metadata() -> None:
    feed = parse_feed(RSS2, url=FEED_URL, content_type="application/rss+xml")

    assert feed.title == "Harbour Gazette"
    assert feed.site_url == "https://news.example.org/"
    assert feed.language == "en"
    assert len(feed.entries) == 3


def test_rss2_relative_link_resolved_against_feed_url() -> None:
    entry = parse_feed(RSS2, url=FEED_URL).entries[0]

    assert entry.link == "https://news.example.org/local/ferry-timetable?utm_source=rss"
    assert entry.guid == "tag:news.example.org,2025:ferry-1"


def test_rss2_pubdate_becomes_aware_utc() -> None:
    entry = parse_feed(RSS2, url=FEED_URL).entries[0]

    assert entry.published == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)
    assert entry.published.utcoffset() is not None


def test_rss2_authors_from_dc_creator_and_author_element() -> None:
    first, second, _ = parse_feed(RSS2, url=FEED_URL).entries

    assert first.authors == ("Mara Lind",)
    assert second.authors == ("Ola Berg",)


def test_rss2_content_encoded_preferred_over_description() -> None:
    entry = parse_feed(RSS2, url=FEED_URL).entries[0]

    assert (
        entry.content == "The morning ferry will leave earlier.\n\nEvening sailings are unchanged."
    )
    assert entry.summary == "Short summary of the ferry story."


def test_rss2_description_stands_in_for_missing_content() -> None:
    entry = parse_feed(RSS2, url=FEED_URL).entries[1]

    assert entry.content == "Only a description."
    assert entry.summary == "Only a description."


def test_rss2_entry_without_link_is_kept_with_its_content() -> None:
    entry = parse_feed(RSS2, url=FEED_URL).entries[2]

    assert entry.link is None
    assert entry.title == "Notice without a page"
    assert entry.content == "Harbour office closed on Friday."


def test_rss2_entry_language_comes_from_channel() -> None:
    assert {e.language for e in parse_feed(RSS2, url=FEED_URL).entries} == {"en"}


def test_rss1_rdf_entry() -> None:
    feed = parse_feed(RSS1, url="https://valley.example.net/rss")

    assert feed.title == "Valley Post"
    (entry,) = feed.entries
    assert entry.link == "https://valley.example.net/a/bridge"
    assert entry.title == "Bridge reopens after repairs"
    assert entry.authors == ("Ines Park",)
    assert entry.content == "The old stone bridge reopened to traffic."


def test_rss1_dc_date_is_the_published_time() -> None:
    # RSS 1.0 has no pubDate: dc:date is the item's date, and `published` is what the archive
    # shows and filters (--since) on.
    (entry,) = parse_feed(RSS1, url="https://valley.example.net/rss").entries

    assert entry.published == datetime(2025, 2, 1, 23, 0, tzinfo=UTC)


def test_atom_links_resolved_against_xml_base() -> None:
    first, second = parse_feed(ATOM, url="https://blog.example.com/feed.atom").entries

    assert first.link == "https://blog.example.com/notes/2025/premier.html"
    assert second.link == "https://other.example.com/y/ailleurs"


def test_atom_entry_fields() -> None:
    feed = parse_feed(ATOM, url="https://blog.example.com/feed.atom")
    entry = feed.entries[0]

    assert feed.language == "fr"
    assert entry.guid == "urn:uuid:entry-1"
    assert entry.authors == ("Luc Moreau", "Ana Ruiz")
    assert entry.published == datetime(2025, 1, 1, 21, 15, tzinfo=UTC)
    assert entry.updated == datetime(2025, 1, 2, 8, 0, tzinfo=UTC)
    assert entry.content == "Le texte complet.\n\nSecond paragraphe."
    assert entry.summary == "Un court resume."


def test_parse_feed_does_not_read_feedparsers_deprecated_date_fallback() -> None:
    # An RSS 2.0 item with only a pubDate: reading `updated_parsed` makes feedparser warn (its
    # fallback to `published_parsed` is deprecated), which the project's pytest settings turn
    # into an error for any in-process test parsing an ordinary feed.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        feed = parse_feed(RSS2, url=FEED_URL)

    assert feed.entries[0].published == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)


def test_parse_feed_entry_keys_are_stable_across_parses() -> None:
    once = [e.key for e in parse_feed(RSS2, url=FEED_URL).entries]
    again = [e.key for e in parse_feed(RSS2, url=FEED_URL).entries]

    assert once == again
    assert len(set(once)) == 3


def test_parse_feed_unreadable_xml_is_bad_feed() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Gazette</tit'

    with pytest.raises(FeedError) as caught:
        parse_feed(body, url=FEED_URL, content_type="application/rss+xml")

    assert caught.value.reason == "bad_feed"
    assert caught.value.url == FEED_URL


def test_parse_feed_mismatched_tags_is_bad_feed() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></chanel></rss>'

    with pytest.raises(FeedError) as caught:
        parse_feed(body, url=FEED_URL, content_type="application/rss+xml")

    assert caught.value.reason == "bad_feed"


def test_parse_feed_truncated_before_first_item_ends_is_bad_feed() -> None:
    # A download cut off inside the first item: nothing usable was read, so this must not pass
    # as a valid feed with no entries.
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Gazette</title>'
        b"<item><title>Ferry"
    )

    with pytest.raises(FeedError) as caught:
        parse_feed(body, url=FEED_URL, content_type="application/rss+xml")

    assert caught.value.reason == "bad_feed"


def test_parse_feed_empty_body_is_bad_feed() -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(b"", url=FEED_URL)

    assert caught.value.reason == "bad_feed"


def test_parse_feed_html_page_is_not_feed() -> None:
    body = (
        b"<!DOCTYPE html>\n<html lang='en'><head><title>Harbour Gazette</title></head>"
        b"<body><h1>Welcome</h1><p>Latest news from the harbour.</p></body></html>"
    )

    with pytest.raises(FeedError) as caught:
        parse_feed(body, url=FEED_URL, content_type="text/html; charset=utf-8")

    assert caught.value.reason == "not_feed"


def test_parse_feed_valid_feed_without_items_is_empty_not_an_error() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet Desk</title>'
        b"<link>https://quiet.example.org/</link></channel></rss>"
    )

    assert parse_feed(body, url=FEED_URL, content_type="application/rss+xml").entries == ()
    # Servers often send no or a wrong content type; a well-formed empty feed is still a feed.
    assert parse_feed(body, url=FEED_URL).entries == ()
    assert parse_feed(body, url=FEED_URL, content_type="text/html").title == "Quiet Desk"


def test_rss_091_is_read() -> None:
    body = b"""<?xml version="1.0"?>
<rss version="0.91"><channel><title>Old Wire</title><link>https://old.example.org/</link>
<language>en-us</language>
<item><title>Harbour reopens</title><link>https://old.example.org/harbour</link>
<description>The harbour reopened on Monday.</description></item>
</channel></rss>"""

    feed = parse_feed(body, url="https://old.example.org/rss.xml")

    (entry,) = feed.entries
    assert entry.link == "https://old.example.org/harbour"
    assert entry.content == "The harbour reopened on Monday."
    assert feed.language == "en"


# --- titles as plain text -------------------------------------------------------------------------


def rss_titles(*titles: str, channel: str = "Harbour news") -> tuple[str | None, list[str | None]]:
    items = "".join(
        f"<item><title>{t}</title><link>http://news.example/{n}</link></item>"
        for n, t in enumerate(titles)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{channel}</title>'
        f"<link>http://news.example/</link>{items}</channel></rss>"
    ).encode()
    parsed = parse_feed(body, url="http://news.example/feed")
    return parsed.title, [e.title for e in parsed.entries]


def test_html_in_rss_titles_is_made_plain_text() -> None:
    title, titles = rss_titles(
        "Q&amp;A &lt;i&gt;with&lt;/i&gt; the mayor",  # markup, escaped once
        "Ben &amp;amp; Jerry&apos;s",  # escaped twice, as many feeds do
        "<![CDATA[Fish &amp; <b>chips</b> on the quay]]>",
        channel="Ben &amp;amp; Jerry&apos;s news",
    )
    assert titles == ["Q&A with the mayor", "Ben & Jerry's", "Fish & chips on the quay"]
    assert title == "Ben & Jerry's news"


def test_a_less_than_sign_in_a_title_is_text_not_a_tag() -> None:
    _, titles = rss_titles("Why x&lt;y matters &lt;3", "5 &lt; 6 and AT&amp;T")
    assert titles == ["Why x<y matters <3", "5 < 6 and AT&T"]


def test_an_atom_html_title_loses_its_markup_and_a_script_s_text() -> None:
    body = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
    <title>Quay</title><id>urn:q</id><updated>2026-01-01T00:00:00Z</updated>
    <entry><id>urn:1</id><title type="html">A &lt;b&gt;bold&lt;/b&gt;
      &lt;script&gt;steal()&lt;/script&gt;move &amp;amp; more</title>
      <link href="http://news.example/1"/><updated>2026-01-01T00:00:00Z</updated></entry>
    <entry><id>urn:2</id><title type="text">Tags &lt;b&gt; stay text here</title>
      <link href="http://news.example/2"/><updated>2026-01-01T00:00:00Z</updated></entry>
    </feed>"""
    titles = [e.title for e in parse_feed(body, url="http://news.example/atom").entries]
    assert titles == ["A bold move & more", "Tags <b> stay text here"]


def test_a_script_in_a_description_leaves_no_text() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Quay</title>
    <item><title>Ferry</title><link>http://news.example/f</link><description>&lt;p&gt;The
    ferry runs.&lt;script&gt;document.write('x')&lt;/script&gt;&lt;/p&gt;</description></item>
    </channel></rss>"""
    (entry,) = parse_feed(body, url="http://news.example/feed").entries
    assert entry.summary == "The ferry runs."
    assert "document" not in (entry.content or "")


@pytest.mark.parametrize("content_type", [None, "application/rss+xml; charset=undefined"])
def test_a_feed_in_pythons_undefined_codec_is_read_as_utf8(content_type: str | None) -> None:
    # feedparser let the "undefined" codec's UnicodeError out: the feed crashed (a bug).
    body = (
        '<?xml version="1.0" encoding="undefined"?><rss version="2.0"><channel><title>t'
        "</title><item><title>café</title><link>http://x.test/1</link></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, url="http://x.test/feed", content_type=content_type)
    assert [e.title for e in parsed.entries] == ["café"]


def test_no_control_character_reaches_a_parsed_feed() -> None:
    # PostgreSQL refuses a NUL: one title with one lost every entry of the feed (not_stored).
    json_feed = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t\\u0000x", "items": [{'
        b'"id": "1\\u0000", "url": "http://x.test/1", "title": "a\\u0000b\\u001fc",'
        b' "content_text": "line\\u0000\\none", "authors": [{"name": "n\\u0007m"}]}]}'
    )
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>a'
        b"\x00b</title><link>http://x.test/2</link><author>x\x01y</author></item></channel></rss>"
    )
    for body, kind in ((json_feed, "application/feed+json"), (rss, "application/rss+xml")):
        parsed = parse_feed(body, url="http://x.test/feed", content_type=kind)
        assert parsed.entries
        text = repr(parsed).replace("\\n", "")
        assert not any(f"\\x{c:02x}" in text for c in range(32)), text
    assert parsed.entries[0].title == "ab"
