"""`ingest.extract`: bylines, body clean-up, decoding, page metadata, real trafilatura."""

from __future__ import annotations

from datetime import UTC, datetime

import lxml.html
import pytest

from ingest.bylines import split_authors
from ingest.cleanup import clean_paragraphs
from ingest.errors import ExtractionError
from ingest.extract import extract_article
from ingest.markup import text_key
from ingest.metadata import PageMeta, merge_hints, page_metadata
from ingest.records import Hints

# --- split_authors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byline", "authors"),
    [
        ("/ Source: The Associated Press", ["The Associated Press"]),
        ("By Jane Doe and John Roe, Reuters", ["Jane Doe", "John Roe", "Reuters"]),
        ("AP", ["The Associated Press"]),
        ("By JANE DOE, Staff Writer", ["JANE DOE"]),
        ("Jane Doe; John Roe", ["Jane Doe", "John Roe"]),
        ("Written by: Ana Ruiz", ["Ana Ruiz"]),
        ("By Mara Lind | AFP", ["Mara Lind", "Agence France-Presse"]),
        ("By Sandra Anderson", ["Sandra Anderson"]),
        ("Jane Doe, Jane Doe", ["Jane Doe"]),
    ],
)
def test_split_authors(byline: str, authors: list[str]) -> None:
    assert split_authors(byline) == authors


@pytest.mark.parametrize("byline", [None, "", "   ", "By Staff", "Updated 4 March 2025"])
def test_split_authors_without_names_is_empty(byline: str | None) -> None:
    assert split_authors(byline) == []


def test_split_authors_drops_emails_and_urls() -> None:
    assert split_authors("By Mara Lind, mara@news.example.org, https://news.example.org/m") == [
        "Mara Lind"
    ]


# --- clean_paragraphs -----------------------------------------------------------------------------

TITLE = "Ferry timetable changes from Monday"
LEAD = (
    "The morning ferry from the island will leave twenty minutes earlier from next week, "
    "the operator said on Monday."
)
BODY = [
    LEAD,
    "Tides in the channel have shifted since the harbour was dredged last autumn.",
    "What changes for passengers",
    "Evening sailings are unchanged, and season tickets stay valid.",
]


def clean(paragraphs: list[str], description: str | None = None) -> tuple[list[str], list[str]]:
    return clean_paragraphs(paragraphs, title=TITLE, description=description)


def test_clean_paragraphs_keeps_a_clean_body_unchanged() -> None:
    assert clean(BODY) == (BODY, [])


def test_clean_paragraphs_drops_leading_browser_banner() -> None:
    banner = "IE 11 is not supported. For an optimal experience visit our site on another browser."

    assert clean([banner, *BODY]) == (BODY, [])


def test_clean_paragraphs_drops_leading_title_line() -> None:
    assert clean([TITLE, *BODY])[0] == BODY
    assert clean([TITLE.upper() + ".", *BODY])[0] == BODY


def test_clean_paragraphs_turns_byline_into_authors() -> None:
    paragraphs, authors = clean(["By Mara Lind and Ola Berg", *BODY])

    assert paragraphs == BODY
    assert authors == ["Mara Lind", "Ola Berg"]


def test_clean_paragraphs_agency_line_becomes_author() -> None:
    paragraphs, authors = clean(["/ Source: The Associated Press", *BODY])

    assert paragraphs == BODY
    assert authors == ["The Associated Press"]


def test_clean_paragraphs_drops_leading_date_line() -> None:
    assert clean(["Updated March 4, 2025, 9:30 AM GMT", *BODY])[0] == BODY


def test_clean_paragraphs_all_leading_chrome_together() -> None:
    paragraphs, authors = clean(
        [
            "IE 11 is not supported. For an optimal experience visit our site on another browser.",
            TITLE,
            "By Mara Lind",
            "Published 4 March 2025 09:30",
            *BODY,
        ]
    )

    assert (paragraphs, authors) == (BODY, ["Mara Lind"])


def test_clean_paragraphs_keeps_a_repeated_lead_once() -> None:
    assert clean([LEAD, *BODY])[0] == BODY


def test_clean_paragraphs_drops_summary_repeated_by_the_first_paragraph() -> None:
    dek = "The morning ferry from the island will leave twenty minutes earlier from next week."

    assert clean([dek, LEAD, *BODY[1:]], description=dek)[0] == BODY


def test_clean_paragraphs_drops_trailing_newsletter_and_copyright() -> None:
    paragraphs, _ = clean(
        [
            *BODY,
            "Sign up for our newsletter to get updates in your inbox",
            "© 2025 Example News. All rights reserved.",
        ]
    )

    assert paragraphs == BODY


def test_clean_paragraphs_keeps_subheads_and_a_normal_last_paragraph() -> None:
    body = [*BODY, "The operator will review the timetable again in September."]

    paragraphs, _ = clean(body)

    assert "What changes for passengers" in paragraphs
    assert paragraphs[-1] == "The operator will review the timetable again in September."


def test_clean_paragraphs_keeps_a_last_sentence_starting_with_copyright() -> None:
    # An ordinary closing sentence about copyright is article text, not a copyright notice.
    last = "Copyright holders have until June to object to the new rules, the ministry said."

    assert clean([*BODY, last])[0] == [*BODY, last]


def test_clean_paragraphs_does_not_take_a_sentence_for_a_byline() -> None:
    first = "By Tuesday the water had risen two metres above the pier."

    paragraphs, authors = clean([first, *BODY])

    assert paragraphs == [first, *BODY]
    assert authors == []


def test_clean_paragraphs_normalises_whitespace_and_drops_empty_lines() -> None:
    assert clean(["  Tides  in the\u00a0channel. ", "", "   "]) == (["Tides in the channel."], [])


def test_clean_paragraphs_drops_signposts_inside_the_body() -> None:
    paragraphs, _ = clean(
        [
            BODY[0],
            "Related: Harbour dredging starts next month",
            BODY[1],
            "[Read more: Lifeboat crew honoured for rescue]",
            "More:",
            *BODY[2:],
        ]
    )

    assert paragraphs == BODY


def test_clean_paragraphs_keeps_sentences_that_start_like_signposts() -> None:
    more = "More than 2,500 passengers used the ferry last month, the operator said."

    assert clean([*BODY[:2], more, *BODY[2:]])[0] == [*BODY[:2], more, *BODY[2:]]


@pytest.mark.parametrize(
    "line",
    [
        "Reading time: 3 minutes",
        "4 min read",
        "5:45 AM PST 11/19/2019 by Mara Lind",
        "segunda-feira, 22 de janeiro de 2018 às 0:13",
        "Start your day with our briefing. Sign up for the free daily newsletter.",
    ],
)
def test_clean_paragraphs_drops_leading_chrome(line: str) -> None:
    assert clean([line, *BODY])[0] == BODY


def test_clean_paragraphs_drops_a_leading_h1_that_differs_from_the_title() -> None:
    h1 = "Ferry timetable: changes start Monday"

    paragraphs, _ = clean_paragraphs([h1, *BODY], title=TITLE, description=None, headlines=[h1])

    assert paragraphs == BODY


@pytest.mark.parametrize(
    "line",
    [
        "Follow Harbour Gazette on Twitter and Facebook.",
        "Email Mara Lind at mara@news.example.org or follow her @maralind.",
        "There's more where that came from: sign up for our free newsletter.",
        "Filed under: Ferries",
        "Tags:",
        "copyright Harbour Gazette 2025 - ISSN 1234-5678",
        "You may also like...",
    ],
)
def test_clean_paragraphs_drops_trailing_chrome(line: str) -> None:
    assert clean([*BODY, line])[0] == BODY


def test_clean_paragraphs_drops_runs_of_links_but_keeps_single_ones() -> None:
    stories = ["Lifeboat crew honoured", "Dredging starts next month", "New harbour master named"]
    links = {text_key(text): 1.0 for text in [*stories, "Ferry operator"]}

    paragraphs, _ = clean_paragraphs(
        [BODY[0], *stories, BODY[1], "Ferry operator", *BODY[2:]],
        title=TITLE,
        description=None,
        links=links,
    )

    assert paragraphs == [*BODY[:2], "Ferry operator", *BODY[2:]]


def test_clean_paragraphs_drops_a_trailing_list_of_links() -> None:
    items = [
        "- The strange story of the last lighthouse keeper",
        "- How the harbour got its name",
        "- Ten walks along the coast",
    ]
    # Only part of each item is the link text.
    links = {text_key(item[2:]): 0.6 for item in items}

    paragraphs, _ = clean_paragraphs([*BODY, *items], title=TITLE, description=None, links=links)

    assert paragraphs == BODY


def test_clean_paragraphs_keeps_a_trailing_list_of_plain_items() -> None:
    items = ["- Bring a coat", "- Check the tide table", "- Buy tickets online"]

    assert clean([*BODY, *items])[0] == [*BODY, *items]


LINK_ITEMS = [
    "- How tide gauges work",
    "- The last lighthouse keeper",
    "- Mapping the sea floor by sound",
    "- A history of the ferry timetable",
]
LINK_INTRO = "Four things about the sea I read this week."


def test_clean_paragraphs_keeps_links_to_other_sites_that_are_most_of_the_text() -> None:
    # A post of links: the list is the post, not a list of other stories.
    links = {text_key(item[2:]): 1.0 for item in LINK_ITEMS}

    paragraphs, _ = clean_paragraphs(
        [LINK_INTRO, *LINK_ITEMS], title=TITLE, description=None, links=links, outbound=links
    )

    assert paragraphs == [LINK_INTRO, *LINK_ITEMS]


def test_clean_paragraphs_drops_the_sites_own_links_even_when_most_of_the_text() -> None:
    # A section page: its list of the site's own stories is no article text.
    links = {text_key(item[2:]): 1.0 for item in LINK_ITEMS}

    paragraphs, _ = clean_paragraphs(
        [LINK_INTRO, *LINK_ITEMS], title=TITLE, description=None, links=links
    )

    assert paragraphs == [LINK_INTRO]


def test_clean_paragraphs_keeps_a_paragraph_the_page_repeats_throughout() -> None:
    # Not a lead printed twice: the same paragraph comes back further down too.
    refrain = "The tide waits for no one, and the harbour office will not wait for the tide."
    paras = [refrain, BODY[0], refrain, BODY[1], BODY[2], refrain]

    assert clean(paras)[0] == paras


def test_clean_paragraphs_drops_a_teaser_the_body_repeats() -> None:
    # A paywall's preview of the first paragraphs (the last one cut short), then the body.
    teaser = [BODY[0], BODY[1][:60] + "…"]

    assert clean([*teaser, *BODY])[0] == BODY


@pytest.mark.parametrize(
    "line",
    [
        "Share this article: Facebook Twitter WhatsApp",
        "Share on Facebook",
        "Facebook Twitter LinkedIn Email",
        "Partager cet article : Facebook Twitter LinkedIn",
        "Artikel teilen: Facebook X WhatsApp E-Mail",
        "Compartir en Facebook Twitter WhatsApp",
        "Compartilhe: Facebook Twitter WhatsApp",
        "分享到",
        "Like Loading...",
    ],
)
def test_clean_paragraphs_drops_share_lines_anywhere(line: str) -> None:
    assert clean([*BODY[:2], line, *BODY[2:]])[0] == BODY


@pytest.mark.parametrize(
    "notice",
    [
        "We use cookies to give you the best possible experience on our website. By continuing"
        " to browse the site you are agreeing to our use of cookies.",
        "Ce site utilise des cookies pour vous offrir une meilleure expérience. En poursuivant"
        " votre navigation, vous acceptez l'utilisation de cookies.",
        "Diese Website verwendet Cookies. Wenn Sie die Seite weiter nutzen, stimmen Sie der"
        " Verwendung von Cookies zu.",
        "Utilizamos cookies propias y de terceros para mejorar nuestros servicios. Si continúa"
        " navegando, consideramos que acepta su uso.",
        "Questo sito utilizza cookie tecnici e di profilazione. Proseguendo la navigazione"
        " acconsenti all'uso dei cookie.",
        "This website uses cookies.",
    ],
)
def test_clean_paragraphs_drops_a_cookie_notice_and_its_buttons(notice: str) -> None:
    assert clean([*BODY[:3], notice, "Accept all", "Manage settings", *BODY[3:]])[0] == BODY


@pytest.mark.parametrize(
    "line",
    [
        "This article is for subscribers only. Subscribe to continue reading.",
        "Already a subscriber? Log in",
        "Cet article est réservé aux abonnés.",
        "Il vous reste 85% de cet article à lire.",
        "Dieser Artikel ist exklusiv für Abonnenten.",
        "Para seguir leyendo, suscríbete.",
        "Conteúdo exclusivo para assinantes. Já é assinante? Entre.",
        "Subscribe now",
        "Advertisement",
    ],
)
def test_clean_paragraphs_drops_paywall_prompts_and_ad_labels(line: str) -> None:
    assert clean([BODY[0], line, *BODY[1:]])[0] == BODY


@pytest.mark.parametrize(
    "sentence",
    [
        # About cookies, not the site's notice.
        "The regulator said websites must ask before they set cookies, and fined three firms.",
        "We use cookies in the recipe below: any shortbread will do, the baker said.",
        # About sharing and social networks, in a sentence.
        "Facebook and Twitter said on Monday they would share data with the harbour office.",
        "Share prices at the ferry operator rose by four percent after the announcement.",
        # About subscriptions.
        "The ferry company said subscribers to its season ticket would keep their discount.",
    ],
)
def test_clean_paragraphs_keeps_sentences_on_those_subjects(sentence: str) -> None:
    assert clean([*BODY[:2], sentence, *BODY[2:]])[0] == [*BODY[:2], sentence, *BODY[2:]]


# --- page_metadata --------------------------------------------------------------------------------

GRAPH_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head>
<title>New tide tables | Harbour Gazette</title>
<link rel="canonical" href="/local/tide-tables">
<meta property="og:site_name" content="Harbour Gazette">
<meta name="description" content="The harbour office printed new tide tables.">
<script type="application/ld+json">
{"@context": "https://schema.org", "@graph": [
  {"@type": "WebSite", "name": "Harbour Gazette website"},
  {"@type": "NewsMediaOrganization", "name": "Harbour Gazette Ltd"},
  {"@type": "NewsArticle", "headline": "New tide tables published",
   "datePublished": "2025-03-04T09:30:00+01:00", "dateModified": "2025-03-04T12:00:00Z",
   "author": [{"@type": "Person", "name": "Mara Lind"}, {"@type": "Person", "name": "Ola Berg"}]}
]}
</script>
</head><body><p>Body.</p></body></html>"""


def meta_of(
    html: str, url: str | None = "https://news.example.org/local/tide-tables?x=1"
) -> PageMeta:
    return page_metadata(lxml.html.document_fromstring(html), url)


def test_page_metadata_from_json_ld_graph() -> None:
    meta = meta_of(GRAPH_PAGE)

    assert meta.title == "New tide tables published"
    assert meta.authors == ["Mara Lind", "Ola Berg"]
    assert meta.published == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)
    assert meta.published_date_only is False
    assert meta.updated == datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
    assert meta.site_name == "Harbour Gazette"
    assert meta.description == "The harbour office printed new tide tables."


def test_page_metadata_language_is_primary_subtag() -> None:
    assert meta_of(GRAPH_PAGE).language == "en"


def test_page_metadata_canonical_made_absolute() -> None:
    assert meta_of(GRAPH_PAGE).canonical_url == "https://news.example.org/local/tide-tables"


def test_page_metadata_author_object_and_plain_news_article() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Bridge reopens",
     "author": {"@type": "Person", "name": "By Ines Park"},
     "publisher": {"@type": "Organization", "name": "Valley Post"},
     "datePublished": "2025-02-01T18:00:00-05:00"}
    </script></head><body></body></html>"""

    meta = meta_of(html)

    assert meta.title == "Bridge reopens"
    assert meta.authors == ["Ines Park"]
    assert meta.site_name == "Valley Post"
    assert meta.published == datetime(2025, 2, 1, 23, 0, tzinfo=UTC)


def test_page_metadata_json_ld_list_of_objects() -> None:
    html = """<html><head><script type="application/ld+json">
    [{"@type": "BreadcrumbList", "name": "crumbs"},
     {"@type": ["Article", "NewsArticle"], "headline": "Listed", "author": "Mara Lind"}]
    </script></head><body></body></html>"""

    meta = meta_of(html)

    assert (meta.title, meta.authors) == ("Listed", ["Mara Lind"])


def test_page_metadata_meta_tag_fallbacks() -> None:
    html = """<html><head>
    <meta property="og:title" content="Bridge reopens after repairs">
    <meta name="author" content="Ines Park">
    <meta property="article:published_time" content="2025-02-01T18:00:00-05:00">
    <meta property="article:modified_time" content="2025-02-02T08:00:00Z">
    <meta property="og:url" content="https://valley.example.net/a/bridge">
    <meta property="og:locale" content="de_DE">
    <meta property="og:description" content="The stone bridge is open again.">
    </head><body></body></html>"""

    meta = meta_of(html, "https://valley.example.net/a/bridge?utm_source=rss")

    assert meta.title == "Bridge reopens after repairs"
    assert meta.authors == ["Ines Park"]
    assert meta.published == datetime(2025, 2, 1, 23, 0, tzinfo=UTC)
    assert meta.updated == datetime(2025, 2, 2, 8, 0, tzinfo=UTC)
    assert meta.canonical_url == "https://valley.example.net/a/bridge"
    assert meta.language == "de"
    assert meta.description == "The stone bridge is open again."


def test_page_metadata_author_url_is_not_a_name() -> None:
    html = """<html><head>
    <meta property="article:author" content="https://www.example.org/people/ines">
    </head><body></body></html>"""

    assert meta_of(html).authors == []


def test_page_metadata_date_only_is_flagged() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@type": "NewsArticle", "datePublished": "2025-02-01"}</script></head><body></body></html>"""

    meta = meta_of(html)

    assert meta.published == datetime(2025, 2, 1, tzinfo=UTC)
    assert meta.published_date_only is True


def test_page_metadata_broken_json_ld_is_ignored() -> None:
    html = """<html lang="fr"><head><script type="application/ld+json">{"@type": "NewsArt
    </script><meta property="og:title" content="Titre"></head><body></body></html>"""

    meta = meta_of(html)

    assert (meta.title, meta.language) == ("Titre", "fr")


# --- merge_hints ----------------------------------------------------------------------------------

FEED_TIME = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


def test_merge_hints_feed_fills_missing_title_authors_language() -> None:
    hints = Hints(
        title="Feed title", authors=("Mara Lind",), language="en-GB", summary="Feed summary."
    )

    article = merge_hints(PageMeta(), "Body.", hints)

    assert article.text == "Body."
    assert article.title == "Feed title"
    assert article.authors == ("Mara Lind",)
    assert article.language == "en"
    assert article.summary == "Feed summary."


def test_merge_hints_page_metadata_wins_when_present() -> None:
    meta = PageMeta(title="Page title", authors=["Ola Berg"], language="fr")

    article = merge_hints(meta, "Body.", Hints(title="Feed", authors=("Mara Lind",), language="en"))

    assert (article.title, article.authors, article.language) == ("Page title", ("Ola Berg",), "fr")


def test_merge_hints_date_only_page_date_loses_to_feed_timestamp() -> None:
    meta = PageMeta(published=datetime(2025, 3, 4, tzinfo=UTC), published_date_only=True)

    assert merge_hints(meta, "Body.", Hints(published=FEED_TIME)).published == FEED_TIME


def test_merge_hints_page_timestamp_beats_feed_timestamp() -> None:
    page_time = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
    meta = PageMeta(published=page_time)

    assert merge_hints(meta, "Body.", Hints(published=FEED_TIME)).published == page_time


def test_merge_hints_feed_date_fills_missing_page_date() -> None:
    assert merge_hints(PageMeta(), "Body.", Hints(published=FEED_TIME)).published == FEED_TIME


# --- extract_article ------------------------------------------------------------------------------

ARTICLE_BODY = [
    "The harbour authority will replace the old tide gauge at the north pier this spring, "
    "ending more than forty years of manual readings by the pier staff.",
    "Engineers said the new gauge sends a reading every minute to the port office, where pilots "
    "can check the water level before guiding larger ships through the narrow channel.",
    "Local fishing crews welcomed the plan but asked for the readings to be published online so "
    "that smaller boats can use them too, especially during winter storms.",
    "What changes for visitors",
    "Visitors to the pier will notice a small steel mast and a solar panel near the lifeboat "
    "station, which the authority says will not block the view of the bay.",
    "Work is expected to take three weeks, and the pier will stay open to walkers except on two "
    "days when a crane lifts the mast into place.",
]
PAGE_URL = "https://news.example.org/local/new-tide-gauge?utm_source=rss"


def news_page(*, byline: str = "By Mara Lind", head: str = "") -> str:
    paragraphs = "\n".join(
        f"<h2>{p}</h2>" if p == "What changes for visitors" else f"<p>{p}</p>" for p in ARTICLE_BODY
    )
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<title>New tide gauge for the north pier | Harbour Gazette</title>
<meta property="og:title" content="New tide gauge for the north pier">
<meta property="og:site_name" content="Harbour Gazette">
<link rel="canonical" href="/local/new-tide-gauge">
{head}
</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/local">Local</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/weather">Weather</a></li></ul></nav>
<div class="banner">IE 11 is not supported. For an optimal experience visit our site on another
browser.</div></header>
<main><article>
<h1>New tide gauge for the north pier</h1>
<p class="byline">{byline}</p>
{paragraphs}
</article>
<aside class="related"><h3>Related</h3><ul>
<li><a href="/local/a">Lifeboat crew honoured for rescue</a></li>
<li><a href="/local/b">Harbour dredging starts next month</a></li></ul></aside>
</main>
<footer><p>Sign up for our newsletter to get updates in your inbox</p>
<p>© 2025 Harbour Gazette. All rights reserved.</p>
<p><a href="/privacy">Privacy</a> <a href="/terms">Terms</a></p></footer>
</body></html>"""


def test_extract_article_gives_exactly_the_body() -> None:
    article = extract_article(news_page().encode("utf-8"), PAGE_URL, content_type="text/html")

    assert article.text == "\n\n".join(ARTICLE_BODY)


def test_extract_article_metadata() -> None:
    article = extract_article(news_page(), PAGE_URL)

    assert article.title == "New tide gauge for the north pier"
    assert article.authors == ("Mara Lind",)
    assert article.language == "en"
    assert article.site_name == "Harbour Gazette"
    assert article.canonical_url == "https://news.example.org/local/new-tide-gauge"


def test_extract_article_body_byline_completes_the_declared_authors() -> None:
    # The byline is the story's first paragraph (no byline class): the body's clean-up finds it.
    head = '<meta name="author" content="Mara Lind"><meta name="author" content="Harbour Gazette">'
    page = news_page(byline="", head=head).replace(
        "<p>The harbour authority", "<p>By Mara Lind and Ola Berg, AFP</p><p>The harbour authority"
    )

    article = extract_article(page, PAGE_URL, hints=Hints(authors=("Harbour Gazette",)))

    assert article.authors == ("Mara Lind", "Ola Berg", "Agence France-Presse")
    assert article.text == "\n\n".join(ARTICLE_BODY)


def test_extract_article_windows_1252_page() -> None:
    body = news_page(byline="By Zoë Brontë").encode("cp1252")

    article = extract_article(body, PAGE_URL, content_type="text/html; charset=windows-1252")

    assert article.authors == ("Zoë Brontë",)
    assert article.text == "\n\n".join(ARTICLE_BODY)


def test_extract_article_feed_hints_fill_the_date() -> None:
    article = extract_article(news_page(), PAGE_URL, hints=Hints(published=FEED_TIME))

    assert article.published == FEED_TIME


@pytest.mark.parametrize("empty", ["", "   \n", b"", b"  "])
def test_extract_article_empty_page_raises(empty: str | bytes) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_article(empty, PAGE_URL)

    assert caught.value.reason == "empty_page"
    assert caught.value.url == PAGE_URL


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><title>Harbour Gazette</title></head><body></body></html>",
        "<html><body><div><img src='/logo.png' alt=''></div></body></html>",
        "<html><body><script>window.app = {};</script></body></html>",
        "<html><body><nav><a href='/'>Home</a></nav></body></html>",
        """<html><head><title>Harbour Gazette</title></head><body><header><nav><ul>
        <li><a href="/">Home</a></li><li><a href="/local">Local</a></li>
        <li><a href="/sport">Sport</a></li></ul></nav></header>
        <footer><p>© 2025 Harbour Gazette</p></footer></body></html>""",
    ],
)
def test_extract_article_page_without_text_raises(html: str) -> None:
    with pytest.raises(ExtractionError):
        extract_article(html, PAGE_URL)


# --- extract_article: pages that mislead the extractor --------------------------------------------


def story_page(body: str) -> str:
    return f"""<!DOCTYPE html><html lang="en"><head><title>New tide gauge | Harbour Gazette</title>
</head><body><header><nav><a href="/">Home</a> <a href="/local">Local</a></nav></header>
<main><article><h1>New tide gauge</h1>{body}</article></main>
<footer><p>© 2025 Harbour Gazette</p></footer></body></html>"""


def paragraphs_html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def test_extract_article_joins_a_body_split_by_an_ad() -> None:
    body = f"""<div class="chunks">
<div class="grid"><div class="article-body">{paragraphs_html(ARTICLE_BODY[:3])}</div></div>
<div class="ad-slot">Advertisement</div>
<div class="grid"><div class="article-body">{paragraphs_html(ARTICLE_BODY[4:])}</div></div>
</div>"""

    article = extract_article(story_page(body), PAGE_URL)

    assert article.text == "\n\n".join(ARTICLE_BODY[:3] + ARTICLE_BODY[4:])


def test_extract_article_keeps_an_embedded_post() -> None:
    post = (
        '<div class="social-media-embed"><blockquote class="twitter-tweet">'
        "<p>The new gauge is up and running at the north pier!</p>&mdash; Harbour Office "
        '(@harbouroffice) <a href="https://social.example.org/s/1">March 4, 2025</a>'
        "</blockquote></div>"
    )
    body = (
        f'<div class="article-body">{paragraphs_html(ARTICLE_BODY[:3])}{post}'
        f"{paragraphs_html(ARTICLE_BODY[4:])}</div>"
    )

    text = extract_article(story_page(body), PAGE_URL).text

    assert "The new gauge is up and running at the north pier!" in text.split("\n\n")
    assert text.endswith(ARTICLE_BODY[-1])


def test_extract_article_text_goes_on_after_an_html_comment() -> None:
    first = ARTICLE_BODY[0].replace("harbour authority", "harbour <!-- -->authority<!-- -->")
    body = f'<div class="article-body"><p>{first}</p>{paragraphs_html(ARTICLE_BODY[1:3])}</div>'

    text = extract_article(story_page(body), PAGE_URL).text

    assert text.split("\n\n")[0] == ARTICLE_BODY[0]


def test_extract_article_drops_a_hover_card() -> None:
    card = (
        '<span class="person"><a href="/people/mara-lind">Mara Lind</a>'
        '<span class="person-card"><a href="/people/mara-lind">Mara Lind</a>'
        '<a href="/a">Harbour dredging starts next month</a> '
        '<a href="/b">Lifeboat crew honoured for rescue</a></span></span>'
    )
    first = f"The harbour authority, led by {card}, will replace the old tide gauge this spring."
    body = f'<div class="article-body"><p>{first}</p>{paragraphs_html(ARTICLE_BODY[1:3])}</div>'

    text = extract_article(story_page(body), PAGE_URL).text

    assert text.split("\n\n")[0] == (
        "The harbour authority, led by Mara Lind, will replace the old tide gauge this spring."
    )


# --- extract_article: pages beyond news (bench.generality) ----------------------------------------


def test_extract_article_drops_a_share_line_inside_the_story() -> None:
    share = (
        "<p>Share this article: <a href='https://social.example.com/share'>Facebook</a> "
        "<a href='https://micro.example.net/share'>Twitter</a> "
        "<a href='https://chat.example.org/share'>WhatsApp</a></p>"
    )
    body = f'<div class="article-body">{paragraphs_html(ARTICLE_BODY[:3])}{share}'
    body += f"{paragraphs_html(ARTICLE_BODY[4:])}</div>"

    text = extract_article(story_page(body), PAGE_URL).text

    assert text == "\n\n".join(ARTICLE_BODY[:3] + ARTICLE_BODY[4:])


def test_extract_article_drops_a_cookie_notice_inside_the_story() -> None:
    notice = (
        "<p>Ce site utilise des cookies pour vous offrir une meilleure expérience de navigation"
        " et des publicités adaptées. En poursuivant votre navigation sur ce site, vous acceptez"
        " l'utilisation de cookies. Vous pouvez modifier vos paramètres à tout moment.</p>"
        "<p><a href='/cookies'>Tout accepter</a></p>"
    )
    body = f'<div class="article-body">{paragraphs_html(ARTICLE_BODY)}{notice}</div>'

    assert extract_article(story_page(body), PAGE_URL).text == "\n\n".join(ARTICLE_BODY)


LINKS = [
    ("How tide gauges work", "https://tides.example.net/gauges",
     "A patient explainer on floats, radar and the harbour wall."),
    ("The last lighthouse keeper", "https://coast.example.com/keeper",
     "An interview with the man who kept the light for thirty years."),
    ("Mapping the sea floor by sound", "https://oceans.example.net/sonar",
     "Why most of the ocean floor is still a blur, and who is fixing it."),
    ("A history of the ferry timetable", "https://history.example.net/ferries",
     "From sail to diesel, and why departures moved by twenty minutes."),
    ("Storm surge, explained", "https://weather.example.com/surge",
     "Wind, pressure and a full moon: the recipe for a flooded quay."),
]  # fmt: skip
LINKS_INTRO = "Five things about the sea I read this week."


def link_post(body: str) -> str:
    return f"""<!DOCTYPE html><html lang="en"><head><title>Links for the weekend | Harbour Notes
</title></head><body><header><nav><a href="/">Home</a> <a href="/about">About</a>
<a href="/archive">Archive</a></nav></header><main><article><h1>Links for the weekend</h1>
<p>{LINKS_INTRO}</p>{body}</article></main><footer><p>Harbour Notes, a blog about the coast.</p>
</footer></body></html>"""


@pytest.mark.parametrize("shape", ["list", "list with words", "paragraphs"])
def test_extract_article_keeps_a_post_of_links(shape: str) -> None:
    if shape == "list":
        body = "<ul>" + "".join(f'<li><a href="{u}">{t}</a></li>' for t, u, _ in LINKS) + "</ul>"
        expected = [LINKS_INTRO, *(f"- {t}" for t, _, _ in LINKS)]
    elif shape == "list with words":
        body = "<ul>" + "".join(f'<li><a href="{u}">{t}</a>: {d}</li>' for t, u, d in LINKS)
        body += "</ul>"
        expected = [LINKS_INTRO, *(f"- {t}: {d}" for t, _, d in LINKS)]
    else:
        body = "".join(f'<p><a href="{u}">{t}</a></p><p>{d}</p>' for t, u, d in LINKS)
        expected = [LINKS_INTRO, *(line for t, _, d in LINKS for line in (t, d))]

    text = extract_article(link_post(body), "https://notes.example.org/2025/links").text

    assert text.split("\n\n") == expected


def test_extract_article_still_drops_the_sites_own_list_of_stories() -> None:
    stories = "".join(
        f'<li><a href="/local/{n}">{t}</a></li>'
        for n, t in enumerate(
            ["Lifeboat crew honoured for rescue", "Harbour dredging starts next month",
             "New harbour master named", "Ferry fares to rise in spring"]
        )
    )  # fmt: skip
    body = f'<div class="article-body">{paragraphs_html(ARTICLE_BODY)}<ul>{stories}</ul></div>'

    assert extract_article(story_page(body), PAGE_URL).text == "\n\n".join(ARTICLE_BODY)


def sectioned_review(sections: list[list[str]]) -> str:
    """A long review in blocks, each with its own text container, galleries between."""
    blocks = []
    for number, paragraphs in enumerate(sections):
        heading = f"<h2>Part {number}</h2>" if number else ""
        blocks.append(
            f'<div class="block"><div class="grid"><div class="cell">{heading}'
            f'<div class="article-text">{paragraphs_html(paragraphs)}</div></div></div></div>'
            f'<div class="gallery-block"><a href="/gallery/{number}"><img src="/{number}.jpg">'
            f"</a><span>Gallery: the pier | 14 photos</span></div>"
        )
    return story_page("".join(blocks))


def test_extract_article_keeps_a_long_page_past_its_first_section() -> None:
    sections = [
        [f"Part {s}, paragraph {n}: {ARTICLE_BODY[(s + n) % 3]}" for n in range(4)]
        for s in range(5)
    ]

    text = extract_article(sectioned_review(sections), PAGE_URL).text

    expected = [sections[0]]
    expected += [[f"Part {s}", *sections[s]] for s in range(1, 5)]
    assert text.split("\n\n") == [line for lines in expected for line in lines]


MORE_BODY = [
    "The old gauge, a float in a stilling well read by hand twice a day, will go to the town "
    "museum, which has asked for the brass dial and the logbooks that go back to 1983.",
    "Pilots said the minute-by-minute readings would matter most on spring tides, when the "
    "channel is deep enough for the largest ships for less than an hour either side of high water.",
    "The authority expects the new gauge to cost about 48,000 euros, most of it paid by the "
    "regional fund for small ports, and to need a visit from a technician once a year.",
]


@pytest.mark.parametrize("container", ["paywall", "paid-content", "article-body premium"])
def test_extract_article_gives_the_body_behind_a_teaser(container: str) -> None:
    story = ARTICLE_BODY + MORE_BODY
    teaser = f'<div class="article-intro">{paragraphs_html(story[:3])}</div>'
    prompt = (
        '<div class="subscribe-box"><p>This article is for subscribers only. Subscribe to'
        ' continue reading, or <a href="/login">log in</a>.</p>'
        '<p><a href="/subscribe">Subscribe now</a></p></div>'
    )
    body = f'<div class="{container}">{paragraphs_html(story)}</div>'

    text = extract_article(story_page(teaser + prompt + body), PAGE_URL).text

    assert text == "\n\n".join(story)
