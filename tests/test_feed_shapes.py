"""`ingest.feeds` on shapes real feeds take that tidy test feeds do not: blank lines before the
XML declaration, authors feedparser misreads or that Atom puts on the feed, placeholder
content, dates in other languages. Each fixture is written here, after a real feed's shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.entryparts import fragment_text, loose_date
from ingest.errors import FeedError
from ingest.feeds import parse_feed

URL = "https://blog.example.org/feed.xml"


def test_blank_lines_before_the_xml_declaration_are_no_problem() -> None:
    body = (
        '\n\n<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="0.91"><channel>'
        "<title>Coluna</title><link>https://jornal.example.br/</link>"
        "<item><title>Opinião</title><link>https://jornal.example.br/a/1</link>"
        "<description>Não há pressa.</description></item></channel></rss>"
    ).encode("iso-8859-1")

    feed = parse_feed(body, url=URL)

    assert feed.problem is None
    assert feed.entries[0].title == "Opinião"
    assert feed.entries[0].content == "Não há pressa."


PLAIN_FEED = (
    '<?xml version="1.0" encoding="windows-1252"?>\n<rss version="2.0"><channel>'
    "<title>Caf\u00e9 log</title><link>https://log.example/</link><item><title>Cr\u00e8me</title>"
    "<link>https://log.example/creme</link></item></channel></rss>"
).encode("cp1252")
PHP_WARNING = (
    b"<br />\n<b>Warning</b>:  Undefined variable $x in <b>/srv/www/feed.php</b> on line "
    b"<b>7</b><br />\n"
)


@pytest.mark.parametrize(
    "body",
    [
        PHP_WARNING + PLAIN_FEED,
        PLAIN_FEED + b"\n" + PHP_WARNING,
        PHP_WARNING + PLAIN_FEED + PHP_WARNING,
        b"\n\n  " + PLAIN_FEED,
    ],
    ids=["warning-before", "warning-after", "both", "blank-lines"],
)
def test_what_a_server_prints_around_the_document_is_no_problem(body: bytes) -> None:
    feed = parse_feed(body, url=URL)

    assert feed.problem is None
    assert (feed.title, feed.entries[0].title) == ("Caf\u00e9 log", "Cr\u00e8me")


def test_a_byte_order_mark_then_blank_lines_is_no_problem() -> None:
    body = b"\xef\xbb\xbf\r\n" + PLAIN_FEED.decode("cp1252").replace(
        "windows-1252", "utf-8"
    ).encode("utf-8")

    feed = parse_feed(body, url=URL)

    assert feed.problem is None
    assert feed.entries[0].title == "Cr\u00e8me"


ATOM_FEED_AUTHOR = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Workshop notes</title>
  <id>urn:uuid:notes</id>
  <updated>2024-05-02T10:00:00Z</updated>
  <author><name>Rhea Olsen</name><email>rhea@example.org</email></author>
  <entry>
    <title>Sharpening chisels</title><id>urn:uuid:n1</id>
    <link href="https://notes.example.org/chisels"/>
    <updated>2024-05-02T10:00:00Z</updated>
  </entry>
  <entry>
    <title>A guest post</title><id>urn:uuid:n2</id>
    <link href="https://notes.example.org/guest"/>
    <updated>2024-05-01T10:00:00Z</updated>
    <author><name>Tomas Vik</name></author>
  </entry>
</feed>
"""


def test_an_atom_entry_without_an_author_has_the_feed_s() -> None:
    own, guest = parse_feed(ATOM_FEED_AUTHOR, url=URL).entries

    assert own.authors == ("Rhea Olsen",)
    assert guest.authors == ("Tomas Vik",)


def test_an_aggregated_atom_entry_has_its_source_s_author_not_the_aggregator_s() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Planet Harbour</title>
      <id>urn:planet</id><updated>2024-01-01T00:00:00Z</updated>
      <author><name>Planet Keeper</name></author>
      <entry><title>Knots</title><id>urn:planet:1</id><link href="https://sailor.example/knots"/>
        <updated>2024-01-01T00:00:00Z</updated>
        <source><id>urn:sailor</id><title>Sailor's log</title>
          <author><name>Ida Sail</name></author><updated>2024-01-01T00:00:00Z</updated></source>
      </entry></feed>"""

    assert parse_feed(body, url=URL).entries[0].authors == ("Ida Sail",)


def test_an_rss_channel_s_creator_is_not_every_item_s_author() -> None:
    body = b"""<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
      <title>Listings</title><link>https://board.example.org/</link>
      <dc:creator>robot@board.example.org</dc:creator>
      <item><title>Bike for sale</title><link>https://board.example.org/1</link></item>
    </channel></rss>"""

    assert parse_feed(body, url=URL).entries[0].authors == ()


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("jo@studio.industries (Jo Große Lind)", "Jo Große Lind"),
        ("Jo Lind (jo@studio.travel)", "Jo Lind"),
        ("jo@studio.example.com (Jo Lind)", "Jo Lind"),
        ("Jo Lind &lt;jo@studio.example.com&gt;", "Jo Lind"),
        ("Jo Lind", "Jo Lind"),
    ],
)
def test_rss_author_names_survive_their_e_mail(written: str, name: str) -> None:
    body = (
        '<rss version="2.0"><channel><title>Studio</title><link>https://studio.example/</link>'
        f"<item><title>Post</title><link>https://studio.example/p</link>"
        f"<author>{written}</author></item></channel></rss>"
    ).encode()

    assert parse_feed(body, url=URL).entries[0].authors == (name,)


def test_an_e_mail_alone_is_no_author() -> None:
    body = b"""<rss version="2.0"><channel><title>S</title><link>https://s.example/</link>
      <item><title>P</title><link>https://s.example/p</link>
      <author>desk@s.example.museum</author></item></channel></rss>"""

    assert parse_feed(body, url=URL).entries[0].authors == ()


def test_placeholder_content_gives_way_to_the_description() -> None:
    body = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
      <channel><title>Lab</title><link>https://lab.example/</link>
      <item><title>Faster builds</title><link>https://lab.example/builds</link>
        <description>What made our builds &lt;em&gt;twice&lt;/em&gt; as fast.</description>
        <content:encoded>
          ...
        </content:encoded>
      </item></channel></rss>"""

    entry = parse_feed(body, url=URL).entries[0]

    assert entry.content == "What made our builds twice as fast."


def test_dates_with_month_names_in_another_language_are_read() -> None:
    body = """<rss><channel><title>Últimas</title><link>https://noticias.example.br/</link>
      <item><title>Mercado fecha em alta</title><link>https://noticias.example.br/1</link>
        <pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate></item>
      <item><title>Sem data</title><link>https://noticias.example.br/2</link>
        <pubDate>em breve</pubDate></item>
    </channel></rss>""".encode()

    dated, undated = parse_feed(body, url=URL).entries

    assert dated.published == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)
    assert undated.published is None


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("Di, 05 Mär 2024 10:00:00 +0100", datetime(2024, 3, 5, 9, tzinfo=UTC)),
        ("mar., 05 mars 2024 10:00:00 +0100", datetime(2024, 3, 5, 9, tzinfo=UTC)),
        ("jeu., 12 déc. 2024 07:00:00 GMT", datetime(2024, 12, 12, 7, tzinfo=UTC)),
        ("mer, 31 lug 2019 12:00:00 +0200", datetime(2019, 7, 31, 10, tzinfo=UTC)),
        ("sáb, 01 jun 2024 10:00:00 -0500", datetime(2024, 6, 1, 15, tzinfo=UTC)),
        ("ma, 3 mei 2021 10:00:00 +0200", datetime(2021, 5, 3, 8, tzinfo=UTC)),
        ("Do, 03 Okt 2019 11:20:00 MESZ", datetime(2019, 10, 3, 9, 20, tzinfo=UTC)),
        ("SÁB, 01 JUN 2024 10:00:00 GMT", datetime(2024, 6, 1, 10, tzinfo=UTC)),
        ("Okt 2019", None),  # no day
        ("2019-10-03", None),  # no month name: feedparser's to read
        ("tomorrow", None),
    ],
)
def test_loose_date(text: str, moment: datetime | None) -> None:
    assert loose_date(text) == moment


def _cyrillic_feed(declaration: str) -> bytes:
    return (
        f'{declaration}<rss version="2.0"><channel><title>Новости города</title>'
        "<link>https://gorod.example.ru/</link><item><title>Мост откроют в пятницу</title>"
        "<link>https://gorod.example.ru/most</link>"
        "<description>Ремонт старого моста закончится раньше срока.</description>"
        "</item></channel></rss>"
    ).encode("cp1251")


@pytest.mark.parametrize(
    ("declaration", "content_type"),
    [
        ("", None),  # nothing declared: feedparser alone reads it as windows-1252
        ("", "application/rss+xml"),
        ('<?xml version="1.0" encoding="utf-8"?>', None),  # declared wrong
        ("", "text/xml; charset=utf-8"),
    ],
)
def test_legacy_bytes_declared_wrong_or_not_at_all_are_read(
    declaration: str, content_type: str | None
) -> None:
    feed = parse_feed(_cyrillic_feed(declaration), url=URL, content_type=content_type)

    assert feed.title == "Новости города"
    assert feed.entries[0].title == "Мост откроют в пятницу"
    assert feed.entries[0].content == "Ремонт старого моста закончится раньше срока."


def test_a_declared_legacy_charset_that_fits_is_kept() -> None:
    body = (
        '<?xml version="1.0" encoding="ISO-8859-2"?><rss version="2.0"><channel><title>Wieści'
        "</title><link>https://wiesci.example.pl/</link><item><title>Źródło wody</title>"
        "<link>https://wiesci.example.pl/1</link><description>Łąka już zielona.</description>"
        "</item></channel></rss>"
    ).encode("iso-8859-2")

    entry = parse_feed(body, url=URL).entries[0]

    assert (entry.title, entry.content) == ("Źródło wody", "Łąka już zielona.")


def test_html_entities_xml_does_not_define_are_read_and_no_problem() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
      <rss version="2.0"><channel><title>Caf&eacute;&nbsp;Notes</title>
      <link>https://cafe.example/</link>
      <item><title>Cr&egrave;me br&ucirc;l&eacute;e &amp; more&hellip;</title>
        <link>https://cafe.example/creme</link>
        <description>&lt;p&gt;Sugar&nbsp;on top.&lt;/p&gt;</description></item>
      </channel></rss>"""

    feed = parse_feed(body, url=URL)

    assert feed.problem is None
    assert feed.title == "Café Notes"
    assert feed.entries[0].title == "Crème brûlée & more…"
    assert feed.entries[0].content == "Sugar on top."


def test_feedburner_original_link_and_enclosure_stand_for_the_proxy_s() -> None:
    body = b"""<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
      <channel><title>Show</title><link>https://show.example/</link>
      <item><title>Episode 9</title>
        <link>https://proxy.example/~r/show/~3/AbC/episode-9</link>
        <feedburner:origLink>https://show.example/episodes/9</feedburner:origLink>
        <enclosure url="https://proxy.example/~r/show/~5/XyZ/ep9.mp3" length="1000"
                   type="audio/mpeg"/>
        <feedburner:origEnclosureLink>https://cdn.show.example/ep9.mp3</feedburner:origEnclosureLink>
      </item>
      <item><title>Episode 8</title><link>https://show.example/episodes/8</link></item>
      </channel></rss>"""

    nine, eight = parse_feed(body, url=URL).entries

    assert nine.link == "https://show.example/episodes/9"
    assert [e.url for e in nine.enclosures] == ["https://cdn.show.example/ep9.mp3"]
    assert nine.enclosures[0].length == 1000
    assert eight.link == "https://show.example/episodes/8"


@pytest.mark.parametrize(
    ("channel", "site"),
    [
        ("<link>/</link>", "https://blog.example.org/"),
        ("<link>javascript:alert(1)</link>", None),
        ("", None),
    ],
)
def test_the_site_url_is_an_absolute_web_address(channel: str, site: str | None) -> None:
    body = f'<rss version="2.0"><channel><title>T</title>{channel}</channel></rss>'.encode()

    assert parse_feed(body, url=URL).site_url == site


def test_an_atom_feed_without_a_link_has_no_site_url_not_its_id() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:uuid:7</id>
      <updated>2024-01-01T00:00:00Z</updated></feed>"""

    assert parse_feed(body, url=URL).site_url is None


def test_bare_ampersands_outside_cdata_are_no_problem_and_cdata_is_kept() -> None:
    body = b"""<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
      <title>Tips & tricks</title><link>https://tips.example/</link>
      <atom:link rel="self" href="https://tips.example/index.php?feed=rss&format=raw"/>
      <item><title>Salt & pepper &#8211; a guide</title>
        <link><![CDATA[https://tips.example/read?id=4&lang=en]]></link>
        <description><![CDATA[<p>Fish &amp; chips & peas.</p>]]></description></item>
      </channel></rss>"""

    feed = parse_feed(body, url=URL)
    entry = feed.entries[0]

    assert feed.problem is None
    assert feed.title == "Tips & tricks"
    assert entry.title == "Salt & pepper \u2013 a guide"
    assert entry.link == "https://tips.example/read?id=4&lang=en"
    assert entry.content == "Fish & chips & peas."


def test_one_author_named_twice_is_one_author() -> None:
    body = b"""<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
      <channel><title>Cast</title><link>https://cast.example/</link>
      <item><title>Ep 1</title><link>https://cast.example/1</link>
        <author>Harbour Radio</author><itunes:author>Harbour Radio</itunes:author></item>
      </channel></rss>"""

    assert parse_feed(body, url=URL).entries[0].authors == ("Harbour Radio",)


def test_table_cells_in_feed_html_stay_words_apart() -> None:
    html = "<table><tr><td>Tide</td><td>High</td></tr><tr><th>Wind</th><td>Calm</td></tr></table>"

    assert fragment_text(html) == "Tide High\n\nWind Calm"


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("Thu, 01 Jan 1970 00:00:00 +0000", None),
        ("Mon, 01 Jan 0001 00:00:00 +0000", None),
        ("Mon, 01 Jan 1900 00:00:00 GMT", None),
        ("Thu, 01 Jan 1970 09:30:00 +0000", datetime(1970, 1, 1, 9, 30, tzinfo=UTC)),
        ("Fri, 31 Dec 1999 23:00:00 -0500", datetime(2000, 1, 1, 4, tzinfo=UTC)),
    ],
)
def test_a_cms_s_empty_date_is_no_date(written: str, published: datetime | None) -> None:
    body = (
        '<rss version="2.0"><channel><title>T</title><item><title>Old</title>'
        f"<link>https://a.example/1</link><pubDate>{written}</pubDate></item></channel></rss>"
    ).encode()

    assert parse_feed(body, url=URL).entries[0].published == published


def test_an_html_page_in_a_legacy_charset_is_still_told_from_a_feed() -> None:
    page = "<!DOCTYPE html><html><head><title>Caf\u00e9</title></head><body>Men\u00fa</body></html>"

    with pytest.raises(FeedError) as caught:
        parse_feed(page.encode("cp1252"), url=URL, content_type="text/html")

    assert caught.value.reason == "not_feed"


def test_html_escaped_twice_is_made_plain_too() -> None:
    body = b"""<rss version="2.0"><channel><title>T</title><item><title>Dock notes</title>
      <link>https://dock.example/1</link>
      <description>&amp;lt;p&amp;gt;Boats &amp;amp;amp; ropes.&amp;lt;/p&amp;gt;
        &amp;lt;p&amp;gt;Tide at six.&amp;lt;/p&amp;gt;</description>
      </item></channel></rss>"""

    assert parse_feed(body, url=URL).entries[0].content == "Boats & ropes.\n\nTide at six."


def test_plain_text_with_a_less_than_sign_stays_as_written() -> None:
    assert fragment_text("Prices &lt; 5 euros &amp; falling") == "Prices < 5 euros & falling"
