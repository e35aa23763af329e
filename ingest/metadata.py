"""What a page says about itself: JSON-LD, meta tags, microdata, ``<html lang>``, the canonical
link, bylines; and the merge with what the feed said (the page first, the feed as fallback).

Sources are tried in order of trust: JSON-LD, meta tags, microdata, then what the page shows
(``<time>`` elements, byline and date lines). A later source wins only where it says more
about the same thing: a timestamp with its zone over a bare date or a zoneless time of that day.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from courlan.clean import TRACKERS_RE
from dateutil import parser as dateparser

from ingest.feeds import language_tag
from ingest.records import ExtractedArticle, Hints

ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "backgroundnewsarticle",
        "reviewnewsarticle",
        "blogposting",
        "socialmediaposting",
        "liveblogposting",
        "techarticle",
        "scholarlyarticle",
        "report",
    }
)
# Wire-service credits written in short form; the archive stores the full name.
AGENCIES = {
    "ap": "The Associated Press",
    "associated press": "The Associated Press",
    "the associated press": "The Associated Press",
    "afp": "Agence France-Presse",
    "agence france-presse": "Agence France-Presse",
    "reuters": "Reuters",
    "upi": "United Press International",
    "dpa": "dpa",
}
_AGENCY_NAMES = frozenset(AGENCIES.values())
_ROLE_WORDS = re.compile(
    r"\b(staff|writer|reporter|correspondent|editor|contributor|columnist|updated|published"
    r"|photograph\w*|for the|special to|agencies|wires|wire services|news services)\b",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:/\s*)?(?:source|by|written by|story by|words by|von|por|par)\s*[:\-–—]?\s+(?P<who>.+)$",
    re.I,
)
# WordPress themes: "Posted on 20 February 2025 by Gwen Pryce".
_POSTED_BY = re.compile(r"^(?:posted|published)\b.{0,60}?\bby\s+(?P<who>.+)$", re.I)
# A byline runs on into its timestamp: "By Jane Doe Updated 5:00 PM EST, March 3, 2025",
# "by Jeff Foust Monday, November 18, 2019", "Carlos Nadalim 27/09/2018".
_BYLINE_END = re.compile(
    r"\s*[|·•–—-]?\s*(?:\b(?:last updated|updated|first published|published|posted"
    r"|aktualisiert|veröffentlicht|actualizado|publicado|mis à jour|publié|atualizado"
    r"|(?:mon|tues|wednes|thurs|fri|satur|sun)day)\b"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b).*$",
    re.I,
)
# Wire copy credits its reporters at the end: "Reporting by Jane Doe in Oslo and John Roe;
# Editing by Ann Poe" (editors and "additional reporting" are not the authors).
_CREDITS = re.compile(r"^\(?\s*(?:reporting|writing|text|words) by\s+", re.I)
# "Jane Doe | Staff Writer": a name, then the role.
_NAME_ROLE = re.compile(r"^(?P<who>[^|,]+?)\s*[|,–—]\s*(?P<role>[^|,]+)$")
# Lower-case words that belong inside names: "Ana de la Cruz", "Jan van der Berg".
_NAME_PARTICLES = frozenset(
    "de da do dos das del della di du la le van von der den ter ten zu y e bin al el".split()
)
_NY, _CHI, _DEN, _LA = (
    ZoneInfo(name)
    for name in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
)
# Zone abbreviations news pages print; dateutil knows none of them by itself. "ET" and its kin
# name a zone, not an offset: the date decides between standard and summer time.
_TZINFOS: dict[str, int | tzinfo] = {
    **{
        name: int(offset * 3600)
        for name, offset in {
            "UTC": 0,
            "GMT": 0,
            "Z": 0,
            "EST": -5,
            "EDT": -4,
            "CST": -6,
            "CDT": -5,
            "MST": -7,
            "MDT": -6,
            "PST": -8,
            "PDT": -7,
            "BST": 1,
            "CET": 1,
            "CEST": 2,
            "MEZ": 1,
            "MESZ": 2,
            "EET": 2,
            "EEST": 3,
            "IST": 5.5,
            "JST": 9,
            "KST": 9,
            "AEST": 10,
            "AEDT": 11,
        }.items()
    },
    "ET": _NY,
    "CT": _CHI,
    "MT": _DEN,
    "PT": _LA,
}
WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")
# How much a date says: a day, a wall-clock time without a zone, or an instant.
DATE_ONLY, LOCAL_TIME, INSTANT = 0, 1, 2
# Separators between a headline and the site's name in <title> and og:title.
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|\-–—·•»/]|::)\s+|\s*[｜|]\s*")
_CLOCK = re.compile(r"\d{1,2}[:h.]\d{2}|\d\s*[ap]\.?m\b", re.I)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_CJK_DATE = re.compile(
    r"(?P<y>\d{4})年\s*(?P<m>\d{1,2})月\s*(?P<d>\d{1,2})日(?:\D{0,6}(?P<H>\d{1,2})[:時](?P<M>\d{2}))?"
)
# Month names of the languages news pages come in, for dateutil (which reads English only).
_MONTHS = {
    english: re.compile(rf"\b(?:{names})\b\.?", re.I)
    for english, names in {
        "January": "januar|jänner|janvier|enero|janeiro|gennaio",
        "February": "februar|feber|février|fevrier|febrero|fevereiro|febbraio",
        "March": "märz|maerz|mars|marzo|março|marco",
        "April": "avril|abril|aprile",
        "May": "mai|mayo|maio|maggio",
        "June": "juni|juin|junio|junho|giugno",
        "July": "juli|juillet|julio|julho|luglio",
        "August": "août|aout|agosto",
        "September": "septembre|septiembre|setiembre|setembro|settembre",
        "October": "oktober|octobre|octubre|outubro|ottobre",
        "November": "novembre|noviembre|novembro",
        "December": "dezember|décembre|decembre|diciembre|dezembro|dicembre",
    }.items()
}
_WEEKDAYS = (
    r"\b(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi"
    r"|jeudi|vendredi|samedi|dimanche|lunes|martes|miércoles|jueves|viernes|sábado|domingo"
    r"|segunda|terça|quarta|quinta|sexta)(?:-feira)?\b,?"
)
_DATE_LABEL = re.compile(
    r"^(?:first published|published|posted|publicado(?: em| el)?|veröffentlicht(?: am)?"
    r"|publié(?: le)?|on)\s*:?\s*",
    re.I,
)
# Class names of the elements that show a byline or a date (in the languages of the set).
_BYLINE_CLASS = re.compile(
    r"byline|(?<![a-z])(?:author|autor|auteur|signature|firma|verfasser)(?:e?s)?(?![a-z])", re.I
)
_DATE_CLASS = re.compile(r"date|time|stamp|publish|publica|posted|fecha|datum|\bdata\b", re.I)
_UPDATED_CLASS = re.compile(r"updat|modif", re.I)
_OFF_STORY = re.compile(r"comment|related|recommend|teaser|promo|bio\b|more-", re.I)
_OFF_STORY_TAGS = frozenset({"aside", "footer", "nav", "figure", "figcaption"})
# What a byline element may say besides names: its label.
_LABELS = frozenset(
    {"author", "authors", "autor", "autores", "auteur", "auteurs", "byline", "by", "source"}
)


@dataclass
class PageMeta:
    """Metadata a page declares about itself, in order of trust."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published: datetime | None = None
    # A date without a time, or a time without its zone: a feed's timestamp says more.
    published_date_only: bool = False
    updated: datetime | None = None
    language: str | None = None
    site_name: str | None = None
    description: str | None = None
    canonical_url: str | None = None


def clean_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = WS.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return text or None


def _ld_text(value: Any) -> str | None:
    """A JSON-LD string: CMSs often leave HTML escapes in it ("&#8220;", "&amp;")."""
    return clean_text(html.unescape(value)) if isinstance(value, str) else None


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


# --- dates --------------------------------------------------------------------------------------


def _parse_local(value: Any) -> tuple[datetime | None, int]:
    """(the moment as written, naive if it has no zone; how precise it is)."""
    text = clean_text(value)
    if not text:
        return None, DATE_ONLY
    try:
        parsed = dateparser.isoparse(text)
    except (ValueError, OverflowError):
        try:
            with warnings.catch_warnings():
                # an unknown zone name leaves the time zoneless, which is what we want
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                parsed = dateparser.parse(text, tzinfos=_TZINFOS)
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None, DATE_ONLY
    if parsed is None:
        return None, DATE_ONLY
    if len(text) <= 10 and parsed.hour == parsed.minute == 0:
        return parsed, DATE_ONLY
    return parsed, LOCAL_TIME if parsed.tzinfo is None else INSTANT


def _utc(moment: datetime) -> datetime | None:
    if moment.year < 1800 or (moment.year in (1900, 1970) and moment.timetuple().tm_yday == 1):
        return None  # a CMS's empty date: 0001-01-01, the Unix epoch, 1900-01-01
    # A time without a zone is taken as UTC: the page gives nothing better.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_time(value: Any) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, date_only) from an ISO or loose date string."""
    moment, precision = _parse_local(value)
    utc = _utc(moment) if moment is not None else None
    return (utc, precision == DATE_ONLY) if utc else (None, False)


def _best_time(candidates: Iterable[tuple[datetime | None, int]]) -> tuple[datetime | None, int]:
    """The first date found, unless a later source is more precise about the same day."""
    best: tuple[datetime | None, int] = (None, DATE_ONLY)
    for moment, precision in candidates:
        if moment is None or _utc(moment) is None:
            continue
        if best[0] is None or (precision > best[1] and moment.date() == best[0].date()):
            best = (moment, precision)
        if best[1] == INSTANT:
            break
    return best


def _visible_date(text: str, language: str | None) -> tuple[datetime | None, int]:
    """A date line as printed: "Published March 4, 2025, 9:30 a.m. ET", "14.02.2025, 08:15",
    "2025年2月14日 7:00". Strict: no fuzzy parsing, and year, month and day must all be printed
    (dateutil would fill what is missing from today's date)."""
    text = _DATE_LABEL.sub("", text).strip()
    if not _YEAR.search(text) or len(text) > 80:
        return None, DATE_ONLY
    cjk = _CJK_DATE.search(text)
    if cjk:
        year, month, day, hour, minute = (int(cjk[g] or 0) for g in ("y", "m", "d", "H", "M"))
        try:
            return datetime(year, month, day, hour, minute), LOCAL_TIME if cjk["H"] else DATE_ONLY
        except ValueError:
            return None, DATE_ONLY
    numeric = re.search(r"\b\d{1,2}([./])\d{1,2}\1\d{4}\b", text)
    # 04.03.2025 is day-first everywhere; 04/03/2025 is month-first only in American English.
    dayfirst = bool(numeric) and (numeric[1] == "." or language not in (None, "en"))
    cleaned = re.sub(r"\b(\d{1,2})h(\d{2})\b", r"\1:\2", text)  # 08h30
    for english, names in _MONTHS.items():
        cleaned = names.sub(english, cleaned)
    # the words around a date's parts: "4 de março de 2025 às 08:30", "Dienstag, 4. März"
    cleaned = re.sub(
        rf"{_WEEKDAYS}|\b(?:de|del|le|the|of)\b|\s+(?:at|um|à|às|a las)\s+|\s*\|\s*|\s+Uhr\b",
        " ",
        cleaned,
        flags=re.I,
    )
    readings = []
    for default in (datetime(2000, 1, 1), datetime(2001, 2, 2)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                readings.append(
                    dateparser.parse(cleaned, default=default, tzinfos=_TZINFOS, dayfirst=dayfirst)
                )
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None, DATE_ONLY
    first, second = readings
    if first.date() != second.date():
        return None, DATE_ONLY  # a part of the date was not printed
    if not _CLOCK.search(text):
        return first.replace(hour=0, minute=0, second=0, tzinfo=None), DATE_ONLY
    return first, LOCAL_TIME if first.tzinfo is None else INSTANT


# --- JSON-LD, meta tags, microdata --------------------------------------------------------------


def _json_ld_objects(tree: Any) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for script in tree.iterfind('.//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                objects.append(item)
                # The article may be a WebPage's mainEntity rather than a top-level node.
                stack.extend(item[k] for k in ("@graph", "mainEntity") if k in item)
    return objects


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def _names(value: Any, nodes: dict[str, dict[str, Any]]) -> list[str]:
    """Author names from a JSON-LD author value (string, object, ``@id`` reference to a node
    elsewhere in the graph, or a list of them)."""
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if isinstance(item, dict) and "name" not in item:
            item = nodes.get(str(item.get("@id")), item)
        name = _ld_text(item.get("name") if isinstance(item, dict) else item)
        names.extend(n for n in split_authors(name) if n not in names)
    return names


def _meta_tags(tree: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for meta in tree.iterfind(".//meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        key = key or meta.get("http-equiv")
        content = clean_text(meta.get("content"))
        if key and content:
            tags.setdefault(key.strip().lower(), content)
    return tags


def _itemprops(tree: Any, name: str) -> Iterator[Any]:
    """Microdata elements with ``itemprop=name`` (meta tags excepted: `_meta_tags` has them)."""
    for element in tree.xpath(f'//*[@itemprop="{name}"]'):
        if element.tag != "meta":
            yield element


def _element_text(element: Any) -> str:
    return " ".join(" ".join(element.itertext()).split())


def _classes(element: Any) -> str:
    return f"{element.get('class', '')} {element.get('id', '')}"


def _on_story(element: Any) -> bool:
    """Not in an aside, footer, figure, comment or list of other stories."""
    return not any(
        node.tag in _OFF_STORY_TAGS or _OFF_STORY.search(_classes(node))
        for node in (element, *element.iterancestors())
    )


def _story_scope(tree: Any) -> Any:
    """The ``<article>`` that holds the headline, else the whole page."""
    h1 = next(tree.iter("h1"), None)
    article = next(h1.iterancestors("article"), None) if h1 is not None else None
    return tree if article is None else article


def _page_times(scope: Any) -> Iterator[tuple[datetime | None, int]]:
    """Publication times the page shows: ``<time datetime>`` (the one marked as published
    first), never one marked as the update time."""
    times = [
        t
        for t in scope.iter("time")
        if t.get("datetime")
        and _on_story(t)
        and not _UPDATED_CLASS.search(_classes(t) + _classes(t.getparent()))
    ]
    marked = [t for t in times if t.get("pubdate") is not None or "publish" in _classes(t)]
    for element in marked + times:
        yield _parse_local(element.get("datetime"))


def _printed_dates(scope: Any, language: str | None) -> Iterator[tuple[datetime | None, int]]:
    """Dates printed in date and timestamp elements (not update times)."""
    for element in scope.iter():
        if not isinstance(element.tag, str) or not _DATE_CLASS.search(_classes(element)):
            continue
        text = _element_text(element)
        if _UPDATED_CLASS.search(_classes(element)) or _UPDATED_CLASS.match(text):
            continue
        if text and _on_story(element):
            yield _visible_date(text, language)


# --- bylines ------------------------------------------------------------------------------------


def _looks_like_name(name: str) -> bool:
    """Up to five words, capitalised but for particles ("María de la Cruz"), no digits; any
    script without case ("佐藤美咲") passes."""
    words = name.split()
    if name in _AGENCY_NAMES:
        return True  # "dpa" styles itself in lower case
    if not 1 <= len(words) <= 5 or any(ch.isdigit() for ch in name):
        return False
    if name.endswith(("!", "?", ":")) or words[0][:1].islower():
        return False
    return all(not w[:1].islower() or w in _NAME_PARTICLES for w in words)


def _without_timestamp(text: str) -> str:
    """ "Jane Doe Updated 5:00 PM EST" -> "Jane Doe"; a tail without digits is no timestamp."""
    end = _BYLINE_END.search(text)
    return text[: end.start()] if end and re.search(r"\d", end.group()) else text


def split_authors(byline: str | None) -> list[str]:
    """A byline -> clean author names.

    "/ Source: The Associated Press" -> ["The Associated Press"];
    "By Jane Doe and John Roe, Reuters" -> ["Jane Doe", "John Roe", "Reuters"]; "AP" ->
    ["The Associated Press"]; "By Jane Doe Updated 5:00 PM" -> ["Jane Doe"].
    """
    text = clean_text(byline)
    if not text:
        return []
    posted = _POSTED_BY.match(text)
    if posted:
        text = posted.group("who")
    text = _without_timestamp(text)
    match = _BYLINE.match(text)
    if match:
        text = match.group("who")
    names: list[str] = []
    for part in re.split(r"\s*(?:,|;|\||&|\band\b|\bund\b|\by\b|\be\b|\bet\b)\s*", text):
        name = part.strip(" .:-–—/")
        name = re.sub(r"^(?:by|source)\s*:?\s+", "", name, flags=re.I)
        if not name or _ROLE_WORDS.search(name) or any(ch.isdigit() for ch in name):
            continue
        if "@" in name or name.startswith(("http://", "https://")):
            continue
        name = AGENCIES.get(name.lower(), name)
        if name not in names:
            names.append(name)
    return names


def byline_authors(paragraph: str) -> list[str] | None:
    """Authors if ``paragraph`` is a byline line ("By ...", "/ Source: ...", "AP",
    "Jane Doe | Staff Writer"), else None."""
    text = _without_timestamp(paragraph.strip()) or paragraph.strip()
    if len(text) > 120 or len(text.split()) > 14 or text.endswith((".", "?", "!", '"', "”")):
        return None
    if text.lower().strip(" /") in AGENCIES:
        return [AGENCIES[text.lower().strip(" /")]]
    name_role = _NAME_ROLE.match(text)
    if _BYLINE.match(text) or _POSTED_BY.match(text):
        names = split_authors(text)
    elif (
        name_role and _ROLE_WORDS.search(name_role["role"]) and len(name_role["role"].split()) <= 4
    ):
        names = split_authors(name_role["who"])
    else:
        return None
    # Every part must look like a name, not a sentence starting with "By".
    if names and all(_looks_like_name(n) for n in names):
        return names
    return None


def _credit_authors(scope: Any) -> list[str]:
    """Reporters named in a wire credit line ("(Reporting by ...; Editing by ...)")."""
    names: list[str] = []
    for para in scope.iter("p"):
        text = _element_text(para)
        if len(text) > 200 or not _CREDITS.match(text):
            continue
        for segment in re.split(r"[;)]", text):
            match = _CREDITS.match(segment.strip())
            if match:
                who = re.sub(
                    r"\s+in\s+[A-Z][\w.-]*(?:\s+[A-Z][\w.-]*)*", "", segment[match.end() :]
                )
                names.extend(n for n in split_authors(who) if n not in names)
    return names if all(_looks_like_name(n) for n in names) else []


def _page_byline(scope: Any) -> list[str]:
    """Authors from the first byline element the page shows (``itemprop=author``, or a class
    such as "byline", "author", "signature") that reads as a byline or a list of names."""
    for element in scope.iter():
        if not isinstance(element.tag, str) or element.tag in ("meta", "link", "script"):
            continue
        marked = element.get("itemprop") == "author" or element.get("rel") == "author"
        if not (marked or _BYLINE_CLASS.search(_classes(element))) or not _on_story(element):
            continue
        # A microdata author names itself in its "name" property (other properties: its URL...)
        inner = [n for n in element.iter() if n.get("itemprop") == "name"] if marked else []
        text = _element_text(inner[0] if inner else element)
        if not text or len(text) > 120:
            continue
        # "By ..." and its kin, or names alone: not a line with dates or tags in it
        names = byline_authors(text) or (
            split_authors(text) if not any(ch.isdigit() for ch in text) else []
        )
        if names and all(_looks_like_name(n) and _key(n) not in _LABELS for n in names):
            return names
    return []


# --- titles and URLs ----------------------------------------------------------------------------


def _strip_site_name(title: str | None, sites: set[str], headlines: set[str]) -> str | None:
    """ "Headline | Site" or "Site - Headline" -> "Headline", when "Site" is one of the site's
    names or "Headline" is what the page's ``<h1>`` says (both as `_key`s)."""
    if not title:
        return None
    separators = list(_TITLE_SEPARATOR.finditer(title))
    if not separators:
        return title
    last, first = separators[-1], separators[0]
    head, tail = title[: last.start()].strip(), title[last.end() :].strip()
    if head and (_key(tail) in sites or _key(head) in headlines):
        return head
    head, tail = title[: first.start()].strip(), title[first.end() :].strip()
    if tail and (_key(head) in sites or _key(tail) in headlines):
        return tail
    return title


def _without_tracking(url: str) -> str:
    """A canonical URL without campaign parameters (``utm_*``, ``xtor``, ``fbclid``...)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not TRACKERS_RE.search(k.lower())]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


# --- the page -----------------------------------------------------------------------------------


def page_metadata(tree: Any, url: str | None) -> PageMeta:
    """Read JSON-LD, meta tags, microdata, ``<html lang>``, the canonical link, and the bylines
    and dates the page shows."""
    meta = PageMeta()
    tags = _meta_tags(tree)
    objects = _json_ld_objects(tree)
    nodes = {o["@id"]: o for o in objects if isinstance(o.get("@id"), str) and len(o) > 1}
    article: dict[str, Any] = {}
    publisher: str | None = None
    sites: set[str] = set()
    for obj in objects:
        kinds = _types(obj)
        if kinds & ARTICLE_TYPES and not article:
            article = obj
        if kinds & {"organization", "newsmediaorganization"} and not publisher:
            publisher = _ld_text(obj.get("name"))
        if kinds & {"website", "organization", "newsmediaorganization"}:
            sites.add(_key(_ld_text(obj.get("name")) or ""))
    org = article.get("publisher")
    if isinstance(org, dict):
        org = nodes.get(str(org.get("@id")), org) if "name" not in org else org
        publisher = _ld_text(org.get("name")) or publisher
    meta.site_name = tags.get("og:site_name") or publisher or tags.get("application-name")
    scope = _story_scope(tree)

    # Titles: the site's name comes off wherever it was appended (og:title often has it).
    sites |= {_key(s) for s in (meta.site_name, publisher, tags.get("application-name")) if s}
    sites.discard("")
    headlines = {_key(h.text_content()) for h in tree.iter("h1")}
    for candidate in (
        _ld_text(article.get("headline")),
        tags.get("og:title"),
        tags.get("twitter:title"),
        next((_element_text(e) for e in _itemprops(tree, "headline")), None),
    ):
        meta.title = meta.title or _strip_site_name(candidate, sites, headlines)
    page_title = clean_text(tree.findtext(".//title"))
    stripped = _strip_site_name(page_title, sites, headlines)
    # <title> only when the site's name or the <h1> shows where the headline ends; else
    # trafilatura's choice (see `ingest.extract`) is as good.
    meta.title = meta.title or (stripped if stripped != page_title else None)

    # Authors: JSON-LD, meta tags, microdata, then the byline the page shows.
    meta.authors = _names(article.get("author"), nodes)
    if not meta.authors:
        for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
            value = tags.get(key)
            if value and not value.startswith(("http://", "https://")):
                meta.authors = split_authors(value)
                break
    site_key = _key(meta.site_name or "")
    # An "author" that is just the site's name says less than a byline naming people.
    if not meta.authors or [_key(a) for a in meta.authors] == [site_key]:
        meta.authors = (
            _page_byline(scope) or _page_byline(tree) or _credit_authors(scope) or meta.authors
        )

    root = tree.getroottree().getroot() if hasattr(tree, "getroottree") else tree
    in_language = article.get("inLanguage")
    if isinstance(in_language, dict):
        in_language = in_language.get("alternateName") or in_language.get("name")
    declared = [
        language_tag(value)
        for value in (
            root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"),
            tags.get("content-language"),
            in_language if isinstance(in_language, str) else None,
            tags.get("og:locale"),
            tags.get("dc.language"),
        )
    ]
    languages = [tag for tag in declared if tag]
    meta.language = languages[0] if languages else None
    # Themes ship with <html lang="en">: a page that declares another language elsewhere is in it.
    if declared[0] == "en" and any(tag != "en" for tag in languages):
        meta.language = next(tag for tag in languages if tag != "en")

    # Dates: structured sources first; the <time> and date lines the page shows last.
    def published_candidates() -> Iterator[tuple[datetime | None, int]]:
        yield _parse_local(article.get("datePublished"))
        for key in (
            "article:published_time",
            "og:published_time",
            "datepublished",
            "pubdate",
            "publish-date",
            "publishdate",
            "publish_date",
            "parsely-pub-date",
            "sailthru.date",
            "dc.date.issued",
            "dcterms.issued",
            "dc.date",
            "dcterms.date",
            "dcterms.created",
            "date",
        ):
            yield _parse_local(tags.get(key))
        for element in _itemprops(tree, "datePublished"):
            value = element.get("datetime") or element.get("content")
            if value:
                yield _parse_local(value)
            else:
                yield _visible_date(_element_text(element), meta.language)
        yield from _page_times(scope)
        yield from _printed_dates(scope, meta.language)

    moment, precision = _best_time(published_candidates())
    if moment is not None:
        meta.published, meta.published_date_only = _utc(moment), precision < INSTANT
    for value in (
        article.get("dateModified"),
        tags.get("article:modified_time"),
        tags.get("og:updated_time"),
        tags.get("datemodified"),
        tags.get("dcterms.modified"),
        tags.get("last-modified"),
    ):
        meta.updated, _ = parse_time(value)
        if meta.updated:
            break

    meta.description = (
        tags.get("og:description")
        or tags.get("description")
        or _ld_text(article.get("description"))
    )
    canonical = None
    for link in tree.iterfind(".//link[@rel]"):
        if link.get("rel", "").lower().split() == ["canonical"] and link.get("href"):
            canonical = link.get("href").strip()
            break
    canonical = canonical or tags.get("og:url")
    if canonical:
        canonical = _without_tracking(urljoin(url or "", canonical))
        meta.canonical_url = canonical if canonical.startswith(("http://", "https://")) else None
    return meta


def merge_hints(meta: PageMeta, text: str, hints: Hints) -> ExtractedArticle:
    """Page metadata first; the feed entry fills gaps, and beats a page date without a time."""
    published = meta.published
    if hints.published and (published is None or meta.published_date_only):
        published = hints.published
    return ExtractedArticle(
        text=text,
        title=meta.title or hints.title,
        authors=tuple(meta.authors) or hints.authors,
        published=published,
        # A feed's "updated" may predate the page's own publication time: then it says nothing.
        updated=meta.updated
        or (
            hints.updated
            if hints.updated and (not published or hints.updated > published)
            else None
        ),
        language=meta.language or language_tag(hints.language),
        site_name=meta.site_name,
        summary=meta.description or hints.summary,
        canonical_url=meta.canonical_url,
    )
