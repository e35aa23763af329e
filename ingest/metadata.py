"""What a page says about itself, as one `PageMeta`: title, site name, language, description
and canonical link from its JSON-LD, meta tags, microdata and ``<html lang>``; its dates from
`ingest.dates`, its authors from `ingest.bylines`. Then the merge with what the feed said (the
page first, the feed as fallback).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from courlan.clean import TRACKERS_RE

from ingest.bylines import (
    AUTHOR_TAGS,
    agency_name,
    merge_authors,
    page_bylines,
    site_key,
    split_authors,
)
from ingest.dates import published_time, updated_time
from ingest.entryparts import bounded_link, language_tag
from ingest.markup import clean_text, element_text, itemprops, story_scope, text_key
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
# Separators between a headline and the site's name in <title> and og:title.
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|\-–—·•»/]|::)\s+|\s*[｜|]\s*")


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
    # What each author source named, most trusted first, and the site's names (`site_key`s):
    # `authors` is their merge (`ingest.bylines.merge_authors`), redone as sources are added.
    bylines: list[list[str]] = field(default_factory=list)
    sites: frozenset[str] = frozenset()

    def add_bylines(self, *sources: list[str]) -> None:
        """Add author sources, each less trusted than those already in, and merge again."""
        self.bylines.extend(names for names in sources if names)
        self.authors = merge_authors(self.bylines, self.sites)


def _ld_text(value: Any) -> str | None:
    """A JSON-LD string: CMSs often leave HTML escapes in it ("&#8220;", "&amp;")."""
    return clean_text(html.unescape(value)) if isinstance(value, str) else None


# --- JSON-LD, meta tags -------------------------------------------------------------------------


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


def _meta_tags(tree: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each meta tag's first value; and every value of the author tags (a page may name
    each of its authors in a tag of its own)."""
    tags: dict[str, str] = {}
    authors: dict[str, list[str]] = {}
    for meta in tree.iterfind(".//meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        key = key or meta.get("http-equiv")
        content = clean_text(meta.get("content"))
        if key and content:
            key = key.strip().lower()
            tags.setdefault(key, content)
            if key in AUTHOR_TAGS:
                authors.setdefault(key, []).append(content)
    return tags, authors


# --- titles and URLs ----------------------------------------------------------------------------


def _strip_site_name(title: str | None, sites: set[str], headlines: set[str]) -> str | None:
    """ "Headline | Site" or "Site - Headline" -> "Headline", when "Site" is one of the site's
    names or "Headline" is what the page's ``<h1>`` says (both as `text_key`s)."""
    if not title:
        return None
    separators = list(_TITLE_SEPARATOR.finditer(title))
    if not separators:
        return title
    last, first = separators[-1], separators[0]
    head, tail = title[: last.start()].strip(), title[last.end() :].strip()
    if head and (text_key(tail) in sites or text_key(head) in headlines):
        return head
    head, tail = title[: first.start()].strip(), title[first.end() :].strip()
    if tail and (text_key(head) in sites or text_key(tail) in headlines):
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
    tags, author_tags = _meta_tags(tree)
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
            sites.add(text_key(_ld_text(obj.get("name")) or ""))
    org = article.get("publisher")
    if isinstance(org, dict):
        org = nodes.get(str(org.get("@id")), org) if "name" not in org else org
        publisher = _ld_text(org.get("name")) or publisher
    meta.site_name = tags.get("og:site_name") or publisher or tags.get("application-name")
    scope = story_scope(tree)

    # Titles: the site's name comes off wherever it was appended (og:title often has it).
    sites |= {text_key(s) for s in (meta.site_name, publisher, tags.get("application-name")) if s}
    sites.discard("")
    headlines = {text_key(h.text_content()) for h in tree.iter("h1")}
    for candidate in (
        _ld_text(article.get("headline")),
        tags.get("og:title"),
        tags.get("twitter:title"),
        next((element_text(e) for e in itemprops(tree, "headline")), None),
    ):
        meta.title = meta.title or _strip_site_name(candidate, sites, headlines)
    page_title = clean_text(tree.findtext(".//title"))
    stripped = _strip_site_name(page_title, sites, headlines)
    # <title> only when the site's name or the <h1> shows where the headline ends; else
    # trafilatura's choice (see `ingest.extract`) is as good.
    meta.title = meta.title or (stripped if stripped != page_title else None)

    # Authors: JSON-LD, meta tags, microdata and the byline the page shows, merged.
    meta.sites = frozenset(site_key(s) for s in (*sites, tags.get("dc.publisher") or "")) - {""}
    # A wire story's agency may be its sourceOrganization rather than one of its authors.
    declared = _names(article.get("author"), nodes)
    declared += [
        a for n in _names(article.get("sourceOrganization"), nodes) if (a := agency_name(n))
    ]
    meta.add_bylines(*page_bylines(declared, author_tags, tree, scope))

    root = tree.getroottree().getroot() if hasattr(tree, "getroottree") else tree
    in_language = article.get("inLanguage")
    if isinstance(in_language, dict):
        in_language = in_language.get("alternateName") or in_language.get("name")
    declared = [
        language_tag(value)
        for value in (
            # XHTML's xml:lang: namespaced in an XML tree, a plain name to the HTML parser
            root.get("lang")
            or root.get("xml:lang")
            or root.get("{http://www.w3.org/XML/1998/namespace}lang"),
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
    meta.published, meta.published_date_only = published_time(
        article, tags, tree, scope, meta.language
    )
    meta.updated = updated_time(article, tags)

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
        # A canonical URL is indexed: one past `MAX_LINK_BYTES` (a page's junk) is none.
        web = canonical.startswith(("http://", "https://"))
        meta.canonical_url = bounded_link(canonical) if web else None
    return meta


def merge_hints(meta: PageMeta, text: str, hints: Hints) -> ExtractedArticle:
    """Page metadata first; the feed entry fills gaps, and beats a page date without a time.
    The feed's authors are one more source to merge with the page's (`merge_authors`)."""
    published = meta.published
    feed_authors = [n for name in hints.authors for n in split_authors(name)]
    authors = merge_authors([*(meta.bylines or [meta.authors]), feed_authors], meta.sites)
    if hints.published and (published is None or meta.published_date_only):
        published = hints.published
    return ExtractedArticle(
        text=text,
        title=meta.title or hints.title,
        # Nobody named cleanly on the page or in the feed: the feed's authors as it wrote them.
        authors=tuple(authors) or hints.authors,
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
