"""OPML lists as readers export them, read into feeds and tags; hostile files refused whole;
what we write read back as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from ingest.errors import UsageError
from ingest.opml import MAX_OPML_BYTES, Subscription, read_opml, write_opml
from tests.newsroom import FIXTURES_DIR

OPML_DIR = FIXTURES_DIR / "opml"

# Each sample's feeds: URL -> (title, tags).
EXPECTED: dict[str, dict[str, tuple[str | None, tuple[str, ...]]]] = {
    "feedly.opml": {  # a feed in two folders is one feed with both tags
        "https://feeds.arstechnica.com/arstechnica/index": ("Ars Technica", ("Tech", "World")),
        "https://www.theverge.com/rss/index.xml": ("The Verge - All Posts", ("Tech",)),
        "https://feeds.bbci.co.uk/news/world/rss.xml": ("BBC News", ("World",)),
    },
    "inoreader.xml": {
        "https://feeds.npr.org/1001/rss.xml": ("NPR Topics: News", ("News",)),
        "https://www.aljazeera.com/xml/rss/all.xml": (
            "Al Jazeera – Breaking News, World News and Video from Al Jazeera",
            ("News",),
        ),
        "https://news.ycombinator.com/rss": ("Hacker News", ()),
    },
    "netnewswire.opml": {  # a byte-order mark, a comment, OPML 1.1
        "https://daringfireball.net/feeds/json": ("Daring Fireball", ()),
        "https://feedpress.me/sixcolors?type=xml": ("Six Colors", ("Apple",)),
        "https://www.macstories.net/feed/": ("MacStories", ("Apple",)),
    },
    "miniflux.opml": {  # folders with text only; an empty title falls back to text
        "https://lwn.net/headlines/rss": ("LWN.net", ("All",)),
        "https://www.quantamagazine.org/feed/": ("Quanta Magazine", ("Science",)),
        "https://www.nature.com/nature.rss": ("Nature", ("Science",)),
    },
    "freshrss.opml.xml": {  # frss: attributes of its own, no type on folders
        "https://www.lemonde.fr/rss/une.xml": (
            "Le Monde.fr - Actualités et Infos en France et dans le monde",
            ("Sans catégorie",),
        ),
        "https://framablog.org/feed/": ("Framablog", ("Tech",)),
        "https://linuxfr.org/news.atom": ("LinuxFr.org : les dépêches", ("Tech",)),
    },
    "latin1.opml": {  # ISO-8859-1, nested folders, category paths, feed: URLs
        "http://syndication.lesechos.fr/rss/rss_une.xml": (
            "Les Échos",
            ("Europe", "Économie", "Presse", "Quotidiens", "finance"),
        ),
        "https://www.spiegel.de/schlagzeilen/index.rss": (
            "DER SPIEGEL - Schlagzeilen",
            ("Europe",),
        ),
        "https://example.org/blog/atom.xml": ("Unfiled feed", ()),
    },
    # Written by hand as careless exporters write: a bare & in a URL, HTML entities, one
    # escaped twice, a control character, xmlUrl="" on a folder and on a feed (passed
    # over), feedUrl and url= for xmlUrl, a site URL urlsplit cannot read.
    "sloppy.opml": {
        "https://beans.example/feed?lang=en&format=rss": (
            "Espresso Notes",
            ("Cafés & Bars Weekly",),
        ),
        "https://leaves.example/rss?a=1&b=2&c=3": ("Tea & Biscuits", ("Cafés & Bars Weekly",)),
        "https://door.example/atom.xml": ("Side door", ()),
        "https://back.example/atom.xml": ("Back door", ()),
        "https://odd.example/rss": ("Odd site", ()),
    },
    # Windows-1252 bytes in a file that declares UTF-8.
    "cp1252.opml": {
        "https://cafe.example/rss": ("Le Café", ("Économie – “vite”",)),
        "https://naive.example/rss": ("Naïve €uros", ()),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader_exports_give_their_feeds_titles_and_tags(name: str) -> None:
    found = read_opml((OPML_DIR / name).read_bytes(), source=name)

    assert {s.url: (s.title, s.tags) for s in found} == EXPECTED[name]
    assert list({s.url: 0 for s in found}) == list(EXPECTED[name])  # in the order listed


def test_site_urls_are_kept_when_they_are_web_addresses() -> None:
    by_url = {s.url: s for s in read_opml((OPML_DIR / "latin1.opml").read_bytes(), source="x")}
    feedly = read_opml((OPML_DIR / "feedly.opml").read_bytes(), source="x")

    assert by_url["https://example.org/blog/atom.xml"].site_url is None  # javascript: dropped
    assert feedly[0].site_url == "https://arstechnica.com"


def test_what_is_read_leniently_or_passed_over_is_said() -> None:
    notes: list[str] = []
    read_opml((OPML_DIR / "sloppy.opml").read_bytes(), source="s.opml", notes=notes)
    strict: list[str] = []
    read_opml((OPML_DIR / "feedly.opml").read_bytes(), source="f.opml", notes=strict)

    assert notes == [
        "s.opml: not well-formed XML as written (a bare & or an HTML entity); read as other "
        "readers do",
        "s.opml: 1 feed outline(s) with an empty URL passed over ('Gone quiet')",
    ]
    assert strict == []  # well-formed files are read as they are, with nothing to say


def test_scraped_pages_are_no_feeds_and_included_lists_are_not_fetched() -> None:
    data = b"""<opml xmlns:x="https://reader.example/ns" version="2.0"><body>
<outline text="Kept" type="rss" xmlUrl="https://kept.example/rss"/>
<outline text="A page" type="HTML+XPath" xmlUrl="https://page.example/" x:xPathItem="//li"/>
<outline text="An API" type="JSON+DotNotation" xmlUrl="https://api.example/items.json"/>
<outline text="More" type="include" url="https://lists.example/more.opml"/>
<outline text="Synced list" x:opmlUrl="https://lists.example/synced.opml"/>
</body></opml>"""
    notes: list[str] = []

    found = read_opml(data, source="x", notes=notes)

    assert [s.url for s in found] == ["https://kept.example/rss"]
    assert "2 web page(s) a reader scraped" in notes[0] and "'A page', 'An API'" in notes[0]
    assert "2 outline(s) point to another OPML list" in notes[1]


def test_a_stray_line_before_the_declaration_is_forgiven() -> None:
    data = b'\n\n<?xml version="1.0" encoding="utf-8"?>\n<opml version="1.0"><body>'
    data += b'<outline text="A" type="rss" xmlUrl="https://a.example/rss"/></body></opml>'
    notes: list[str] = []

    assert [s.url for s in read_opml(data, source="x", notes=notes)] == ["https://a.example/rss"]
    assert "blank space before the XML declaration" in notes[0]


def test_windows_bytes_in_a_latin1_file_are_read_as_windows_meant_them() -> None:
    # Declared ISO-8859-1, written by a Windows tool: 0x93 0x94 0x96 0x80 are “ ” – €.
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<opml><body><outline text="'
    data += b'\x93Caf\xe9\x94 \x96 \x80"><outline text="Na\xefve" xmlUrl="https://n.example/rss"/>'

    (found,) = read_opml(data + b"</outline></body></opml>", source="x")

    assert (found.title, found.tags) == ("Naïve", ("“Café” – €",))


def test_control_characters_are_dropped_and_bad_site_urls_ignored() -> None:
    data = b'<opml><body><outline text="Bell\x07 Labs" xmlUrl="https://bell.example/rss"/>'
    found = read_opml(data + b"</body></opml>", source="x")

    assert [(s.title, s.site_url) for s in found] == [("Bell Labs", None)]
    assert read_opml((OPML_DIR / "sloppy.opml").read_bytes(), source="x")[-1].site_url is None


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<opml version="2.0"><body><outline text="&lol4;" xmlUrl="https://a.example/rss"/></body></opml>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="x" xmlUrl="https://a.example/rss">&secret;</outline>
</body></opml>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE opml SYSTEM "http://127.0.0.1:9/evil.dtd">
<opml version="2.0"><body><outline text="&evil;" xmlUrl="https://a.example/rss"/></body></opml>
"""
HOSTILE = {
    "billion laughs": (LAUGHS, "entities"),
    "external entity": (EXTERNAL, "entities"),
    "external DTD": (EXTERNAL_DTD, "external DTD"),
    "an RSS feed": (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "root element"),
    "an HTML page": (b"<!DOCTYPE html><html><body><p>hi</body></html>", "not an OPML file"),
    "cut short": (b'<opml version="2.0"><body><outline xmlUrl="https://a.example/', "well-formed"),
    "no feeds": (
        b'<opml version="2.0"><body><outline text="Empty folder"/></body></opml>',
        "no feeds",
    ),
    "no body": (b'<opml version="2.0"><head><title>t</title></head></opml>', "no feeds"),
    "only a file: URL": (
        b'<opml><body><outline text="b" xmlUrl="file:///etc/passwd"/></body></opml>',
        r"no feeds .*without an http\(s\) URL passed over",
    ),
    "a broken host": (
        b'<opml><body><outline text="a" xmlUrl="http://[oops/rss"/></body></opml>',
        r"no feeds .*without an http\(s\) URL passed over",
    ),
    "cut short, with a bare &": (
        b'<opml><body><outline text="a" xmlUrl="https://a.example/?a=1&b=2"/>',
        "well-formed",
    ),
    "entities, and a bare &": (
        b'<!DOCTYPE opml [<!ENTITY e "x">]><opml><body>'
        b'<outline text="&e;" xmlUrl="https://a.example/?a=1&b=2"/></body></opml>',
        "entities",
    ),
    "an empty file": (b" \n", "the file is empty"),
    "only empty URLs": (
        b'<opml><body><outline type="rss" text="a" xmlUrl=""/></body></opml>',
        r"no feeds .*; 1 feed outline\(s\) with an empty URL passed over \('a'\)",
    ),
    "a javascript: URL": (
        b'<opml><body><outline text="a" xmlUrl="javascript:alert(1)"/></body></opml>',
        r"no feeds .*without an http\(s\) URL passed over",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_or_broken_files_are_refused_with_a_reason(case: str) -> None:
    data, reason = HOSTILE[case]

    with pytest.raises(UsageError, match=reason) as caught:
        read_opml(data, source="subs.opml")

    assert str(caught.value).startswith("subs.opml: ")
    assert "root:" not in str(caught.value)  # /etc/passwd was never read


def test_a_file_over_the_cap_is_refused_before_it_is_parsed() -> None:
    data = b'<opml version="2.0"><body>' + b" " * MAX_OPML_BYTES + b"</body></opml>"

    with pytest.raises(UsageError, match="too large"):
        read_opml(data, source="big.opml")


def test_written_opml_reads_back_with_every_feed_and_tag() -> None:
    feeds = [
        Subscription("https://a.example/rss", "A & B <news>", "https://a.example/", ("news",)),
        Subscription("https://b.example/atom", "Bee", None, ("tech", "news", "AI/ML")),
        Subscription("https://c.example/feed.json", None, None, ()),
        Subscription("https://d.example/atom", "Dee", "tag:d.example,2013:blog", ()),
    ]

    data = write_opml(feeds, title="ingest subscriptions", created=datetime(2025, 3, 1, tzinfo=UTC))
    back = read_opml(data, source="out.opml")

    root = etree.fromstring(data)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "ingest subscriptions"
    assert root.findtext("head/dateCreated") == "Sat, 01 Mar 2025 00:00:00 GMT"
    folder = root.find("body/outline[@text='tech']")
    assert folder is not None
    (bee,) = folder
    # Under its first tag, every tag that category can hold listed there.
    assert dict(bee.attrib) == {
        "type": "rss",
        "text": "Bee",
        "title": "Bee",
        "xmlUrl": "https://b.example/atom",
        "category": "tech,news",
    }
    assert [(s.url, s.title, s.site_url, s.tags) for s in back] == [
        ("https://a.example/rss", "A & B <news>", "https://a.example/", ("news",)),
        ("https://b.example/atom", "Bee", None, ("tech", "news")),  # AI/ML: its folder only
        ("https://c.example/feed.json", None, None, ()),
        ("https://d.example/atom", "Dee", None, ()),  # a tag: URI is no site
    ]


def test_feeds_that_are_not_http_are_passed_over_with_a_note_and_the_rest_imported() -> None:
    data = (
        b'<?xml version="1.0"?><opml version="2.0"><body><outline text="Tools">'
        b'<outline text="Weather" type="rss" xmlUrl="|/usr/local/bin/weather-feed"/>'
        b'<outline text="Local" xmlUrl="file:///home/me/feed.xml"/>'
        b'<outline text="Relative" xmlUrl="/feed.xml"/>'
        b'<outline text="Harbour" xmlUrl="https://news.example.org/rss"/>'
        b"</outline></body></opml>"
    )
    notes: list[str] = []
    feeds = read_opml(data, source="list.opml", notes=notes)
    assert [(f.url, f.tags) for f in feeds] == [("https://news.example.org/rss", ("Tools",))]
    assert len(notes) == 1
    assert notes[0].startswith("list.opml: 3 feed(s) without an http(s) URL passed over (")
    assert "'|/usr/local/bin/weather-feed'" in notes[0] and "can poll" in notes[0]
