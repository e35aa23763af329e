"""Metadata quality: every page of the metadata set (and the newsroom's) gives exactly its
expected title, authors, published date, language and canonical URL; bylines of every form
become clean author lists. `python -m bench.metadata` scores the same set per field."""

from __future__ import annotations

from datetime import UTC, datetime

import lxml.html
import pytest

from bench.metadata import FIELDS, Case, all_cases, extracted_record
from ingest.bylines import author_key, byline_authors, merge_authors, split_authors
from ingest.metadata import PageMeta, merge_hints, page_metadata
from ingest.records import Hints

CASES = all_cases()


def test_the_set_covers_the_conventions_it_is_meant_to() -> None:
    assert len(CASES) >= 30
    assert {c.expected["language"] for c in CASES} >= {"en", "de", "fr", "es", "pt", "ja", None}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_metadata_is_exactly_as_expected(case: Case) -> None:
    record = extracted_record(case)

    assert {f: record[f] for f in FIELDS} == case.expected


# --- split_authors: every byline form -------------------------------------------------------------


@pytest.mark.parametrize(
    ("byline", "authors"),
    [
        ("By Jane Doe", ["Jane Doe"]),
        ("by Jane Doe", ["Jane Doe"]),
        ("By JANE DOE and JOHN ROE", ["JANE DOE", "JOHN ROE"]),  # case as printed
        ("By Jane Doe, John Roe and Ann Poe", ["Jane Doe", "John Roe", "Ann Poe"]),
        ("By Jane Doe, Reuters", ["Jane Doe", "Reuters"]),
        ("By Jane Doe and John Roe, Reuters", ["Jane Doe", "John Roe", "Reuters"]),
        ("/ Source: The Associated Press", ["The Associated Press"]),
        ("Source: Reuters", ["Reuters"]),
        ("AP", ["The Associated Press"]),
        ("Associated Press", ["The Associated Press"]),
        ("By The Associated Press", ["The Associated Press"]),
        ("AFP", ["Agence France-Presse"]),
        ("Jane Doe | Staff Writer", ["Jane Doe"]),
        ("By Jane Doe, Contributing columnist", ["Jane Doe"]),
        ("Von Hans Müller", ["Hans Müller"]),
        ("Von Katrin Vogt und Jörg Albrecht", ["Katrin Vogt", "Jörg Albrecht"]),
        ("Por María López", ["María López"]),
        ("Por Carmen Ruiz y Andrés Molina", ["Carmen Ruiz", "Andrés Molina"]),
        ("Por João Silva e Ana Sousa", ["João Silva", "Ana Sousa"]),
        ("Par Jean Dupont", ["Jean Dupont"]),
        ("Par Élodie Garnier et Mathis Perrin", ["Élodie Garnier", "Mathis Perrin"]),
        ("By Jane Doe Updated 5:00 PM EST, Mon March 3, 2025", ["Jane Doe"]),
        ("By Jane Doe | Updated 5:00 PM", ["Jane Doe"]),
        ("By Jane Doe, Published March 3, 2025", ["Jane Doe"]),
        ("by Jeff Foust Monday, November 18, 2019", ["Jeff Foust"]),
        ("Carlos Nadalim 27/09/2018", ["Carlos Nadalim"]),
        ("Posted on 20 February 2025 by Gwen Pryce", ["Gwen Pryce"]),
        ("Felix Amundsen, Grace Whitlock", ["Felix Amundsen", "Grace Whitlock"]),
        ("Nia Callaghan and agencies", ["Nia Callaghan"]),
        ("Von Lena Brandt, dpa", ["Lena Brandt", "dpa"]),
        # agencies in every form a byline credits them
        ("Von Anna Berg (dpa/AFP)", ["Anna Berg", "dpa", "Agence France-Presse"]),
        ("Par Claire Dubois avec AFP", ["Claire Dubois", "Agence France-Presse"]),
        ("Por Lucía Montero, con información de EFE", ["Lucía Montero", "EFE"]),
        ("Inês Carvalho, com Lusa", ["Inês Carvalho", "Lusa"]),
        ("By Jane Doe / Reuters", ["Jane Doe", "Reuters"]),
        ("Reuters Staff", ["Reuters"]),
        ("PA Reporter", ["PA Media"]),
        ("Bloomberg News", ["Bloomberg"]),
        ("Agencia EFE", ["EFE"]),
        ("Door Sanne Bakker", ["Sanne Bakker"]),
        # an aside that is no agency goes; links go
        ("By Jane Doe (Berlin)", ["Jane Doe"]),
        ("Jane Doe, https://www.facebook.com/janedoe", ["Jane Doe"]),
        ("facebook.com/janedoe", []),
    ],
)
def test_split_authors_every_byline_form(byline: str, authors: list[str]) -> None:
    assert split_authors(byline) == authors


@pytest.mark.parametrize(
    "byline", ["Updated 5:00 PM EST, March 3, 2025", "Published 4 March 2025", "Staff Writer"]
)
def test_split_authors_of_a_timestamp_or_role_alone_is_empty(byline: str) -> None:
    assert split_authors(byline) == []


@pytest.mark.parametrize(
    ("line", "authors"),
    [
        ("By Jane Doe", ["Jane Doe"]),
        ("Jane Doe | Staff Writer", ["Jane Doe"]),
        ("By Jane Doe Updated 5:00 p.m.", ["Jane Doe"]),
        ("Posted on 20 February 2025 by Gwen Pryce", ["Gwen Pryce"]),
        ("AP", ["The Associated Press"]),
        ("Por María López", ["María López"]),
        ("Von Lena Brandt, dpa", ["Lena Brandt", "dpa"]),
        ("(dpa)", ["dpa"]),
        ("AP/Reuters", ["The Associated Press", "Reuters"]),
        ("文・佐藤美咲", None),
    ],
)
def test_byline_authors_reads_byline_lines(line: str, authors: list[str] | None) -> None:
    assert byline_authors(line) == authors


@pytest.mark.parametrize(
    "line",
    [
        "By the numbers",
        "By Tuesday, officials had published 40 reports on the damage.",
        "Updated 4 March 2025",
        "The council said, reporter notes",
        "Jane Doe said the plan was a good one.",
    ],
)
def test_byline_authors_leaves_sentences_alone(line: str) -> None:
    assert byline_authors(line) is None


# --- page_metadata: what the whole-page cases cannot tell apart -----------------------------------


def meta_of(head: str, body: str = "", url: str = "https://news.example.org/a/story") -> PageMeta:
    html = f"<html><head>{head}</head><body>{body}</body></html>"
    return page_metadata(lxml.html.document_fromstring(html), url)


def test_json_ld_author_by_id_reference_is_resolved() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@graph": [
        {"@type": "Article", "headline": "H", "author": {"@id": "https://x.example/#p1"}},
        {"@type": "Person", "@id": "https://x.example/#p1", "name": "Gwen Pryce"}]}</script>"""
    )

    assert meta.authors == ["Gwen Pryce"]


def test_json_ld_article_as_main_entity_of_a_web_page() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@type": "WebPage", "name": "H - Site",
        "mainEntity": {"@type": "OpinionNewsArticle", "headline": "H",
        "author": {"@type": "Person", "name": "By Ann Poe"}}}</script>"""
    )

    assert (meta.title, meta.authors) == ("H", ["Ann Poe"])


def test_json_ld_html_escapes_are_decoded() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@type": "NewsArticle",
        "headline": "Caf&eacute; &#8220;rules&#8221; &amp; more"}</script>"""
    )

    assert meta.title == "Café “rules” & more"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Bus lanes extended | Metro Ledger", "Bus lanes extended"),
        ("Bus lanes extended - Metro Ledger", "Bus lanes extended"),
        ("Metro Ledger: Bus lanes extended", "Metro Ledger: Bus lanes extended"),
        ("Metro Ledger | Bus lanes extended", "Bus lanes extended"),
        ("市営バス増便｜Metro Ledger", "市営バス増便"),
        ("Bus lanes - what changes | Metro Ledger", "Bus lanes - what changes"),
        ("Bus lanes extended | City", "Bus lanes extended | City"),  # "City" is not the site
    ],
)
def test_site_name_comes_off_og_title(title: str, expected: str) -> None:
    meta = meta_of(
        f'<meta property="og:title" content="{title}">'
        '<meta property="og:site_name" content="Metro Ledger">'
    )

    assert meta.title == expected


def test_title_tag_is_used_when_the_h1_shows_where_the_headline_ends() -> None:
    meta = meta_of(
        "<title>Library hours extended | Riverbend</title>", "<h1>Library hours extended</h1>"
    )

    assert meta.title == "Library hours extended"


def test_title_tag_without_a_known_site_name_is_left_to_trafilatura() -> None:
    assert meta_of("<title>Library hours extended | Riverbend</title>").title is None


def test_an_aware_timestamp_beats_a_zoneless_one_of_the_same_day() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@type": "NewsArticle",
        "datePublished": "2025-03-05T10:30:00"}</script>
        <meta property="article:published_time" content="2025-03-05T10:30:00-05:00">"""
    )

    assert meta.published == datetime(2025, 3, 5, 15, 30, tzinfo=UTC)
    assert meta.published_date_only is False


def test_a_timestamp_of_another_day_does_not_replace_the_first_date() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@type": "NewsArticle",
        "datePublished": "2025-03-05"}</script>
        <meta name="date" content="2025-03-09T10:30:00Z">"""
    )

    assert (meta.published, meta.published_date_only) == (datetime(2025, 3, 5, tzinfo=UTC), True)


def test_a_zoneless_time_alone_is_read_as_utc_and_yields_to_the_feed() -> None:
    meta = meta_of(
        """<script type="application/ld+json">{"@type": "NewsArticle",
        "datePublished": "2025-03-05T10:30:00"}</script>"""
    )
    feed_time = datetime(2025, 3, 5, 15, 30, tzinfo=UTC)

    assert meta.published == datetime(2025, 3, 5, 10, 30, tzinfo=UTC)
    assert merge_hints(meta, "Body.", Hints(published=feed_time)).published == feed_time


@pytest.mark.parametrize("placeholder", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
def test_a_cms_empty_date_is_no_date(placeholder: str) -> None:
    meta = meta_of(
        f"""<script type="application/ld+json">{{"@type": "NewsArticle",
        "datePublished": "{placeholder}"}}</script>""",
        '<article><h1>H</h1><time datetime="2019-11-19T19:07:00-05:00">Nov 19</time></article>',
    )

    assert meta.published == datetime(2019, 11, 20, 0, 7, tzinfo=UTC)


def test_the_update_time_is_not_the_publication_time() -> None:
    meta = meta_of(
        "",
        """<article><h1>H</h1><span class="updated">Updated
        <time datetime="2025-03-11T11:05:00Z">11:05</time></span>
        <time datetime="2025-03-11T08:20:00Z">8:20</time></article>""",
    )

    assert meta.published == datetime(2025, 3, 11, 8, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "published"),
    [
        ("Published March 4, 2025, 9:30 a.m. ET", datetime(2025, 3, 4, 14, 30)),
        ("Published July 4, 2025, 9:30 a.m. ET", datetime(2025, 7, 4, 13, 30)),  # summer time
        ("Dienstag, 4. März 2025, 08:15 Uhr", datetime(2025, 3, 4, 8, 15)),
        ("mardi 4 mars 2025 à 08h30", datetime(2025, 3, 4, 8, 30)),
        ("Publicado em 4 de março de 2025 às 08h30", datetime(2025, 3, 4, 8, 30)),
        ("2025年2月14日 7:00", datetime(2025, 2, 14, 7, 0)),
    ],
)
def test_a_printed_date_line(line: str, published: datetime) -> None:
    meta = meta_of("", f'<article><h1>H</h1><p class="date">{line}</p><p>Text.</p></article>')

    assert meta.published == published.replace(tzinfo=UTC)


@pytest.mark.parametrize("line", ["15:23 2019", "November 2019", "Updated March 4, 2025 9:30"])
def test_a_date_line_missing_its_day_or_marked_updated_is_no_date(line: str) -> None:
    assert meta_of("", f'<article><h1>H</h1><p class="date">{line}</p></article>').published is None


def test_canonical_url_loses_tracking_parameters_only() -> None:
    meta = meta_of(
        '<link rel="canonical" href="/a/story?id=7&amp;utm_source=rss&amp;xtor=RSS-1&amp;fbclid=x">'
    )

    assert meta.canonical_url == "https://news.example.org/a/story?id=7"


def test_a_canonical_url_too_long_to_index_is_none() -> None:
    # PostgreSQL indexes it: past 2,704 bytes the article could not be stored at all.
    junk = "x" * 3000
    assert meta_of(f'<link rel="canonical" href="/a/story?state={junk}">').canonical_url is None


def test_no_canonical_declared_is_none() -> None:
    assert meta_of("<title>T</title>").canonical_url is None


def test_template_english_loses_to_the_language_the_page_declares_elsewhere() -> None:
    html = """<html lang="en-US"><head><meta property="og:locale" content="es_ES"></head>
    <body></body></html>"""
    meta = page_metadata(lxml.html.document_fromstring(html), None)

    assert meta.language == "es"


def test_html_lang_wins_over_a_template_og_locale() -> None:
    html = """<html lang="fr"><head><meta property="og:locale" content="en_US"></head>
    <body></body></html>"""

    assert page_metadata(lxml.html.document_fromstring(html), None).language == "fr"


def test_an_author_that_is_the_site_name_yields_to_the_byline() -> None:
    meta = meta_of(
        '<meta name="author" content="Metro Ledger">'
        '<meta property="og:site_name" content="Metro Ledger">',
        '<article><h1>H</h1><div class="byline">By Priscilla Vane</div></article>',
    )

    assert meta.authors == ["Priscilla Vane"]


@pytest.mark.parametrize(
    "body",
    [
        # a byline element with dates and tags in it: the name inside it
        """<article class="entry author-carlos"><h1>H</h1><div class="entry-byline">
        <span class="entry-author">Carlos Nadalim</span> 27/09/2018 Comente!
        <a>Brinquedos</a>, <a>Música</a></div></article>""",
        # a microdata author names itself in its name property
        """<article><h1>H</h1><span itemprop="author" itemscope>
        <a itemprop="url" href="/c">Profile</a><span itemprop="name">Carlos Nadalim</span>
        </span></article>""",
    ],
)
def test_byline_elements(body: str) -> None:
    assert meta_of("", body).authors == ["Carlos Nadalim"]


def test_bylines_of_other_stories_are_not_the_authors() -> None:
    body = """<article><h1>H</h1><p>Text.</p></article>
    <aside class="related"><div class="byline">By Other Writer</div></aside>"""

    assert meta_of("", body).authors == []


def test_wire_credits_at_the_end_name_the_reporters_not_the_editors() -> None:
    body = """<article><h1>H</h1><p>Text.</p><p>(Reporting by Jane Doe in Oslo and John Roe;
    Additional reporting by Ann Poe; Editing by Max Moe)</p></article>"""

    assert meta_of("", body).authors == ["Jane Doe", "John Roe"]


# --- merging the author sources -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "authors"),
    [
        # one source a subset of another, either way round: the fuller one stands
        ([["Jane Doe"], ["Jane Doe", "Reuters"]], ["Jane Doe", "Reuters"]),
        ([["Jane Doe", "John Roe", "Reuters"], ["Jane Doe"]], ["Jane Doe", "John Roe", "Reuters"]),
        # people in the order of the fullest byline
        (
            [["Tom Price"], ["Maria Köhler", "Tom Price", "Reuters"]],
            ["Maria Köhler", "Tom Price", "Reuters"],
        ),
        # two partial lists that share a person: both
        ([["Ann Poe", "Jane Doe"], ["Jane Doe", "Max Moe"]], ["Ann Poe", "Jane Doe", "Max Moe"]),
        # a source naming only an agency adds it, whichever comes first
        ([["Jane Doe"], ["The Associated Press"]], ["Jane Doe", "The Associated Press"]),
        ([["Reuters"], ["Jane Doe"]], ["Jane Doe", "Reuters"]),
        # a byline that names the agency first: people still come first
        ([split_authors("By Reuters and Jane Doe")], ["Jane Doe", "Reuters"]),
        # a source naming other people disagrees: left out, its agency too
        ([["Jane Doe"], ["John Roe", "The Associated Press"]], ["Jane Doe"]),
        # a less trusted source adds only what looks like a name
        ([["Jane Doe"], ["Jane Doe", "follow her on social media"]], ["Jane Doe"]),
        # desks and CMS accounts yield to people, and stand when nobody else is named
        ([["admin"], ["Tomasz Nowak"]], ["Tomasz Nowak"]),
        ([["Web Desk"], ["Redaktion"]], ["Web Desk"]),
        ([], []),
    ],
)
def test_merge_authors(sources: list[list[str]], authors: list[str]) -> None:
    assert merge_authors(sources) == authors


def test_merge_authors_the_site_name_is_no_author_beside_people() -> None:
    sites = {"metroledger"}

    assert merge_authors([["The Metro Ledger"], ["Priscilla Vane"]], sites) == ["Priscilla Vane"]
    assert merge_authors([["Metro Ledger"]], sites) == ["Metro Ledger"]
    # an agency is kept even on the agency's own site
    assert merge_authors([["Jane Doe"], ["Reuters"]], {"reuters"}) == ["Jane Doe", "Reuters"]


@pytest.mark.parametrize(
    ("spellings", "kept"),
    [
        (["Maria Kohler", "Maria Koehler", "MARIA KÖHLER", "Maria Köhler"], "Maria Köhler"),
        (["Juergen Weiss", "Jürgen Weiß"], "Jürgen Weiß"),
        (["JANE DOE", "jane doe", "Jane Doe"], "Jane Doe"),
        (["Jane Doe", "Jane A. Doe"], "Jane A. Doe"),
        (["Zoe Brontë", "Zoë Brontë"], "Zoë Brontë"),
    ],
)
def test_spellings_of_one_person_are_one_author(spellings: list[str], kept: str) -> None:
    assert len({author_key(s) for s in spellings}) == 1
    assert merge_authors([[s] for s in spellings]) == [kept]


def test_different_people_are_not_merged() -> None:
    assert len({author_key(n) for n in ("Jane Doe", "John Doe", "Jane Roe", "佐藤美咲")}) == 4


BYLINE_REUTERS = '<article><h1>H</h1><div class="byline">By Jane Doe, Reuters</div></article>'
JSON_LD_JANE = """<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H",
    "author": {"@type": "Person", "name": "Jane Doe"}}</script>"""


@pytest.mark.parametrize(
    "head",
    [
        "",
        JSON_LD_JANE,
        '<meta name="author" content="Jane Doe">',
        '<meta name="author" content="JANE DOE">',
        '<meta property="article:author" content="https://www.facebook.com/jane.doe.news">',
    ],
)
def test_the_agency_is_kept_whatever_else_the_page_declares(head: str) -> None:
    # Issue 10: "By Jane Doe, Reuters" gave ["Jane Doe"] on a page with JSON-LD.
    assert meta_of(head, BYLINE_REUTERS).authors == ["Jane Doe", "Reuters"]


def test_a_meta_author_naming_one_of_the_byline_loses_no_one() -> None:
    body = """<article><h1>H</h1>
    <p class="byline">By Maria Köhler and Tom Price, Reuters</p><p>Text.</p></article>"""

    meta = meta_of('<meta name="author" content="Maria Koehler">', body)

    assert meta.authors == ["Maria Köhler", "Tom Price", "Reuters"]


def test_every_author_meta_tag_counts() -> None:
    head = """<meta property="article:author" content="Inês Carvalho">
    <meta property="article:author" content="Duarte Pires">"""

    assert meta_of(head).authors == ["Inês Carvalho", "Duarte Pires"]


def test_a_json_ld_source_organization_that_is_an_agency_is_credited() -> None:
    head = """<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H",
    "author": [{"@type": "Person", "name": "Jane Doe"}],
    "sourceOrganization": {"@type": "Organization", "name": "Associated Press"},
    "publisher": {"@type": "Organization", "name": "Metro Ledger"}}</script>"""

    assert meta_of(head).authors == ["Jane Doe", "The Associated Press"]


def test_a_json_ld_source_organization_that_is_the_publisher_is_no_author() -> None:
    head = """<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H",
    "sourceOrganization": {"@type": "Organization", "name": "Metro Ledger"}}</script>"""

    assert meta_of(head).authors == []


def test_a_byline_naming_someone_else_does_not_join_the_declared_authors() -> None:
    body = '<article><h1>H</h1><div class="byline">By John Roe, AP</div></article>'

    assert meta_of(JSON_LD_JANE, body).authors == ["Jane Doe"]


def test_the_sites_own_name_and_its_facebook_page_add_nobody() -> None:
    head = """<meta name="author" content="The Metro Ledger">
    <meta property="article:author" content="https://www.facebook.com/metroledger">
    <meta property="og:site_name" content="Metro Ledger">"""
    body = '<article><h1>H</h1><div class="byline">By Priscilla Vane and Ola Berg</div></article>'

    assert meta_of(head, body).authors == ["Priscilla Vane", "Ola Berg"]


# --- the feed's authors: one more source ----------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "feed", "authors"),
    [
        (["Jane Doe"], ("Jane Doe and John Roe",), ("Jane Doe", "John Roe")),
        (["Jane Doe"], ("By Jane Doe", "Reuters"), ("Jane Doe", "Reuters")),
        (["Jane Doe", "Reuters"], ("JANE DOE",), ("Jane Doe", "Reuters")),
        (["Jane Doe"], ("Metro Ledger",), ("Jane Doe",)),  # the site's name
        (["Jane Doe"], ("Ola Berg",), ("Jane Doe",)),  # someone else: the page wins
        (["Metro Ledger"], ("Ola Berg",), ("Ola Berg",)),  # the page named only the site
        ([], ("Maren Ostby and Tomas Reyes",), ("Maren Ostby", "Tomas Reyes")),
        ([], ("Newsdesk staff",), ("Newsdesk staff",)),  # no clean name: as the feed says
    ],
)
def test_feed_authors_merge_with_the_pages(
    page: list[str], feed: tuple[str, ...], authors: tuple[str, ...]
) -> None:
    meta = PageMeta(sites=frozenset({"metroledger"}))
    meta.add_bylines(page)

    assert merge_hints(meta, "Body.", Hints(authors=feed)).authors == authors
