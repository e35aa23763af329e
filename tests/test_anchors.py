"""`ingest.anchors`: the post a #fragment names on a page of several, however the page marks its
posts; and the article made of it (`extract_article` with a fragment)."""

from __future__ import annotations

from datetime import UTC, datetime

import lxml.html
import pytest

from ingest.anchors import post_text
from ingest.extract import extract_article
from ingest.records import Hints

ARTICLES = """<html><body><header>Quay Log · a daily log · About</header><main>
<article id="p1"><h2>Ferry</h2><p>The first ferry left on time for once this week.</p>
<p class="time"><a href="#p1">7:02 AM</a></p></article>
<article id="p2"><p>Second post of the day, with two paragraphs.</p><p>And this one.</p>
<p class="time"><a href="#p2">#</a></p></article>
</main><footer>Copyright 2025 Quay Log, all rights reserved</footer></body></html>"""

HEADINGS = """<html><body><h1>Changes, March</h1>
<h2 id="week-1">First week</h2><p>Harbour office hours are longer now.</p><p>Bring your permit.</p>
<h2 id="week-2">Second week</h2><p>The slipway is closed for repairs until Friday.</p>
<h3>Details</h3><p>Use the north ramp meanwhile, please.</p>
<footer>Written by the harbour office staff</footer></body></html>"""

NAMED = """<html><body><table><tr><td>Log<br>about</td><td class="day">
<a name="a0800"></a><p>Low tide at eight, lowest of the month.</p>
<p class="pl"><a href="#a0800">#</a></p>
<a name="a2130"></a><p><b>Ferry.</b> Twenty minutes late, a car would not start.</p>
<p>Six people pushed it off the ramp.</p>
</td></tr></table><p>Footer line with several words in it</p></body></html>"""

INLINE = """<html><body><div class="log">
<a name="x1"></a>Bare text of the first post, no paragraphs.<br><br>
<a name="x2"></a>Bare text of the second post, just as bare.<br>
</div><div class="side">sidebar words that are not a post</div></body></html>"""

RULED = """<html><body><div>
<h3><a name="n1"></a>Nets</h3><p>New nets arrived at the co-op this morning.</p><hr>
<h3><a name="n2"></a>Gulls</h3><p>The gulls have learnt to open the bins again.</p><hr>
<p>Site footer text with enough words</p></div></body></html>"""


@pytest.mark.parametrize(
    ("page", "fragment", "title", "expected"),
    [
        (ARTICLES, "p1", "Ferry", "The first ferry left on time for once this week."),
        (ARTICLES, "p2", None, "Second post of the day, with two paragraphs.\n\nAnd this one."),
        (HEADINGS, "week-1", None, "Harbour office hours are longer now.\n\nBring your permit."),
        (
            HEADINGS,
            "week-2",
            None,
            "The slipway is closed for repairs until Friday.\n\nDetails\n\n"
            "Use the north ramp meanwhile, please.",
        ),
        (NAMED, "a0800", None, "Low tide at eight, lowest of the month."),
        (
            NAMED,
            "a2130",
            None,
            "Ferry. Twenty minutes late, a car would not start.\n\n"
            "Six people pushed it off the ramp.",
        ),
        (INLINE, "x1", None, "Bare text of the first post, no paragraphs."),
        (INLINE, "x2", None, "Bare text of the second post, just as bare."),
        (RULED, "n1", None, "New nets arrived at the co-op this morning."),
        (RULED, "n2", None, "The gulls have learnt to open the bins again."),
    ],
)
def test_the_post_is_what_its_anchor_holds_or_what_follows_it(
    page: str, fragment: str, title: str | None, expected: str
) -> None:
    assert post_text(lxml.html.document_fromstring(page), fragment, title) == expected


def test_an_encoded_fragment_finds_its_anchor() -> None:
    page = '<html><body><div id="café"><p>Coffee at the harbour café, three words.</p></div>'

    text = post_text(lxml.html.document_fromstring(page), "caf%C3%A9")

    assert text == "Coffee at the harbour café, three words."


@pytest.mark.parametrize(
    "page",
    [
        ARTICLES.replace('id="p1"', 'id="other"'),  # no such anchor
        '<html><body><p id="p1">9:12</p></body></html>',  # a timestamp is no post
        '<html><body><a name="p1"></a></body></html>',  # an anchor with nothing after it
    ],
)
def test_no_post_without_the_anchor_or_text_under_it(page: str) -> None:
    assert post_text(lxml.html.document_fromstring(page), "p1") is None


@pytest.mark.parametrize("fragment", ["a']|//*[@id='x", 'p1"]', "", "%ZZ", "a\x00b"])
def test_a_fragment_is_never_read_as_xpath(fragment: str) -> None:
    assert post_text(lxml.html.document_fromstring(ARTICLES), fragment) is None


PAGE = """<html lang="en"><head><title>Quay Log: Friday, March 14</title>
<link rel="canonical" href="https://log.example.net/2025/03/14.html">
<meta property="og:site_name" content="Quay Log"><meta name="author" content="Edda Quill">
</head><body>""" + ARTICLES.split("<body>", 1)[1]
FEED_TIME = datetime(2025, 3, 14, 7, 2, tzinfo=UTC)


def test_a_post_takes_the_entrys_title_and_date_and_the_pages_site() -> None:
    hints = Hints(title=None, published=FEED_TIME, content="The first ferry left…")

    article = extract_article(
        PAGE, "https://log.example.net/2025/03/14.html", hints=hints, fragment="p1"
    )

    assert article.text == "Ferry\n\nThe first ferry left on time for once this week."
    assert article.title is None  # the day page's title is not the post's
    assert article.published == FEED_TIME
    assert (article.site_name, article.language, article.authors) == (
        "Quay Log",
        "en",
        ("Edda Quill",),
    )
    assert article.canonical_url == "https://log.example.net/2025/03/14.html#p1"
    assert article.from_page


def test_a_post_the_page_does_not_hold_is_the_entrys_own_text() -> None:
    hints = Hints(title="Late post", content="Written on the boat home.")

    article = extract_article(PAGE, "https://log.example.net/", hints=hints, fragment="p9")

    assert (article.text, article.title, article.from_page) == (
        "Written on the boat home.",
        "Late post",
        False,
    )
