"""What a page says about itself: JSON-LD, meta tags, ``<html lang>``, the canonical link,
bylines; and the merge with what the feed said (the page first, the feed as fallback)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from dateutil import parser as dateparser

from ingest.feeds import language_tag
from ingest.models import ExtractedArticle, Hints

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
_ROLE_WORDS = re.compile(
    r"\b(staff|writer|reporter|correspondent|editor|contributor|columnist|updated|published"
    r"|photograph\w*|for the|special to)\b",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:/\s*)?(?:source|by|written by|story by|words by|von|por|par)\s*[:\-–—]?\s+(?P<who>.+)$",
    re.I,
)
# Zone abbreviations news pages print; dateutil knows none of them by itself.
_TZINFOS = {
    name: offset * 3600
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
        "EET": 2,
        "EEST": 3,
        "IST": 5.5,
        "JST": 9,
        "KST": 9,
        "AEST": 10,
        "AEDT": 11,
    }.items()
}
WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")


@dataclass
class PageMeta:
    """Metadata a page declares about itself, in order of trust."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published: datetime | None = None
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


def parse_time(value: Any) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, date_only) from an ISO or loose date string."""
    text = clean_text(value)
    if not text:
        return None, False
    try:
        parsed = dateparser.isoparse(text)
    except (ValueError, OverflowError):
        try:
            parsed = dateparser.parse(text, tzinfos=_TZINFOS)
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None, False
    if parsed is None:
        return None, False
    date_only = len(text) <= 10 and parsed.hour == parsed.minute == 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC), date_only
    except (ValueError, OverflowError):
        return None, False


def _json_ld_objects(tree: Any) -> Iterator[dict[str, Any]]:
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
                if "@graph" in item:
                    stack.extend(item["@graph"] if isinstance(item["@graph"], list) else [])
                yield item


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def _names(value: Any) -> list[str]:
    """Author names from a JSON-LD author value (string, object or list of them)."""
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        names.extend(split_authors(name) if isinstance(name, str) else [])
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


def page_metadata(tree: Any, url: str | None) -> PageMeta:
    """Read JSON-LD, meta tags, ``<html lang>`` and the canonical link."""
    meta = PageMeta()
    tags = _meta_tags(tree)
    article: dict[str, Any] = {}
    publisher: str | None = None
    for obj in _json_ld_objects(tree):
        kinds = _types(obj)
        if kinds & ARTICLE_TYPES and not article:
            article = obj
        if kinds & {"organization", "newsmediaorganization"} and not publisher:
            publisher = clean_text(obj.get("name"))
    if isinstance(article.get("publisher"), dict):
        publisher = clean_text(article["publisher"].get("name")) or publisher

    meta.title = (
        clean_text(article.get("headline")) or tags.get("og:title") or tags.get("twitter:title")
    )
    meta.authors = _names(article.get("author"))
    if not meta.authors:
        for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
            value = tags.get(key)
            if value and not value.startswith(("http://", "https://")):
                meta.authors = split_authors(value)
                break
    for value in (
        article.get("datePublished"),
        tags.get("article:published_time"),
        tags.get("og:published_time"),
        tags.get("datepublished"),
        tags.get("pubdate"),
        tags.get("publish-date"),
        tags.get("dc.date.issued"),
        tags.get("date"),
    ):
        moment, date_only = parse_time(value)
        # A full timestamp from any source beats a bare date from a better one.
        if moment and (meta.published is None or (meta.published_date_only and not date_only)):
            meta.published, meta.published_date_only = moment, date_only
    for value in (
        article.get("dateModified"),
        tags.get("article:modified_time"),
        tags.get("og:updated_time"),
        tags.get("datemodified"),
        tags.get("last-modified"),
    ):
        meta.updated, _ = parse_time(value)
        if meta.updated:
            break
    root = tree.getroottree().getroot() if hasattr(tree, "getroottree") else tree
    meta.language = (
        language_tag(root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"))
        or language_tag(tags.get("content-language"))
        or language_tag(
            article.get("inLanguage") if isinstance(article.get("inLanguage"), str) else None
        )
        or language_tag(tags.get("og:locale"))
        or language_tag(tags.get("dc.language"))
    )
    meta.site_name = tags.get("og:site_name") or publisher or tags.get("application-name")
    meta.description = (
        tags.get("og:description")
        or tags.get("description")
        or clean_text(article.get("description"))
    )
    canonical = None
    for link in tree.iterfind(".//link[@rel]"):
        if link.get("rel", "").lower().split() == ["canonical"] and link.get("href"):
            canonical = link.get("href").strip()
            break
    canonical = canonical or tags.get("og:url")
    if canonical:
        canonical = urljoin(url or "", canonical)
        meta.canonical_url = canonical if canonical.startswith(("http://", "https://")) else None
    return meta


def split_authors(byline: str | None) -> list[str]:
    """A byline -> clean author names.

    "/ Source: The Associated Press" -> ["The Associated Press"];
    "By Jane Doe and John Roe, Reuters" -> ["Jane Doe", "John Roe", "Reuters"]; "AP" ->
    ["The Associated Press"].
    """
    text = clean_text(byline)
    if not text:
        return []
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
    """Authors if ``paragraph`` is a byline line ("By ...", "/ Source: ...", "AP"), else None."""
    text = paragraph.strip()
    if len(text) > 120 or len(text.split()) > 14 or text.endswith((".", "?", "!", '"', "”")):
        return None
    if text.lower().strip(" /") in AGENCIES:
        return [AGENCIES[text.lower().strip(" /")]]
    if not _BYLINE.match(text):
        return None
    names = split_authors(text)
    # Every part must look like a name: capitalised words, not a sentence starting with "By".
    if names and all(n[:1].isupper() and len(n.split()) <= 5 for n in names):
        return names
    return None


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
