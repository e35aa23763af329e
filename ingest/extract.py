"""Page bytes -> clean article: trafilatura for the body, then our own post-processing.

The page's own metadata (JSON-LD, meta tags, ``<html lang>``, canonical link) is read before
trafilatura touches the tree; the body text is cleaned of what trafilatura lets through on news
sites (browser banners, the headline or the lead repeated, bylines, date lines, trailing
newsletter and copyright lines); the feed entry fills what the page lacks.

This module runs in worker processes (`ingest.workers`): its inputs and outputs are picklable.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import lxml.html
import trafilatura
from dateutil import parser as dateparser
from lxml import etree
from w3lib.encoding import html_to_unicode

from ingest.errors import ExtractionError
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
_BANNER = re.compile(
    r"(is not supported|isn't supported|unsupported browser|upgrade your browser|outdated browser"
    r"|for an optimal experience|enable javascript|javascript is (?:disabled|required)"
    r"|turn off your ad ?blocker|we use cookies)",
    re.I,
)
_DATE_LINE = re.compile(
    r"^(?:published|updated|posted|last updated|last modified|first published)\b.{0,80}\d", re.I
)
_TRAILER = re.compile(
    r"^(?:©|\(c\)\s|copyright\s*(?:©|\(c\)|\d{4}|all rights)|all rights reserved"
    r"|read more\b|read next\b|related:|see also:|more from\b|recommended\b"
    r"|(?:sign up|subscribe)\b.{0,120}\b(?:newsletter|updates|inbox)"
    r"|follow (?:us|@)|share this\b|click here\b"
    r"|※.{0,40}(?:会員|登録|購読))",
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
_XP = set(os.environ.get("XP", "").split(","))
_WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")


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


# --- decoding -----------------------------------------------------------------------------------


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Bytes -> text: BOM, then the HTTP charset, then ``<meta charset>``, then detection."""
    _, text = html_to_unicode(content_type, body)
    return text


# --- page metadata ------------------------------------------------------------------------------


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _WS.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return text or None


def _parse_time(value: Any) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, date_only) from an ISO or loose date string."""
    text = _clean(value)
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
        content = _clean(meta.get("content"))
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
            publisher = _clean(obj.get("name"))
    if isinstance(article.get("publisher"), dict):
        publisher = _clean(article["publisher"].get("name")) or publisher

    meta.title = (
        _clean(article.get("headline")) or tags.get("og:title") or tags.get("twitter:title")
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
        moment, date_only = _parse_time(value)
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
        meta.updated, _ = _parse_time(value)
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
        tags.get("og:description") or tags.get("description") or _clean(article.get("description"))
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


# --- authors ------------------------------------------------------------------------------------


def split_authors(byline: str | None) -> list[str]:
    """A byline -> clean author names.

    "/ Source: The Associated Press" -> ["The Associated Press"];
    "By Jane Doe and John Roe, Reuters" -> ["Jane Doe", "John Roe", "Reuters"]; "AP" ->
    ["The Associated Press"].
    """
    text = _clean(byline)
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


def _byline_authors(paragraph: str) -> list[str] | None:
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


# --- body text ----------------------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


_HEADLINE_WORDS = 30
_READING_TIME = re.compile(
    r"^(?:(?:estimated )?read(?:ing)? time|tempo de leitura|tiempo de lectura|temps de lecture"
    r"|lesezeit|tempo di lettura)\b.{0,30}$|^\d+\s*min(?:ute)?s?\.?\s*(?:read|de leitura|de lectura)$",
    re.I,
)
_CLOCK_LINE = re.compile(
    r"^(?:\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?)?|\d{1,2}/\d{1,2}/\d{2,4}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4})\b",
    re.I,
)
_SIGNPOST = re.compile(
    r"^(?:related(?: posts?| articles?| stories| story| content| reading| coverage)?"
    r"|read (?:more|also|next)|also read|see also|more|more on this|recommended(?: reading)?"
    r"|you (?:may|might) also like)\s*(?::|\.\.\.|…|$)",
    re.I,
)
_PROMO = re.compile(
    r"\b(?:sign up|subscribe)\b.{0,120}\b(?:newsletters?|inbox)\b"
    r"|\b(?:newsletters?|inbox)\b.{0,60}\b(?:sign up|subscribe)\b",
    re.I,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_CREDITS = re.compile(
    r"^\(?(?:(?:additional )?reporting|writing|editing|compiled|produced) by\b"
    r"|^(?:source|sources|filed under|tags?|comments?)\s*(?::|$)",
    re.I,
)


def _on(flag: str) -> bool:
    return flag in _XP or "all" in _XP


def _headline_like(para: str, headlines: list[str]) -> bool:
    """The page's headline (or a shortened or slightly re-worded form of it)."""
    key = _key(para)
    if not key or len(key.split()) > _HEADLINE_WORDS:
        return False
    words = set(key.split())
    for headline in headlines:
        if key == headline:
            return True
        if not _on("title"):
            continue
        other = set(headline.split())
        shared = len(words & other)
        if len(words) >= 3 and shared >= 0.8 * len(words) and shared >= 0.6 * len(other):
            return True
    return False


def _leading_chrome(para: str, headlines: list[str]) -> bool:
    short = len(para) < 200
    return (
        (_BANNER.search(para) is not None and short)
        or _headline_like(para, headlines)
        or (_DATE_LINE.match(para) is not None and len(para) < 100)
        or (_on("lead") and _READING_TIME.match(para) is not None)
        or (_on("lead") and _CLOCK_LINE.match(para) is not None and len(para) < 100 and not para.endswith("."))
        or (_on("promo") and _PROMO.search(para) is not None and len(para) < 300)
    )


def _trailing_chrome(para: str) -> bool:
    if len(para) >= 300:
        return False
    return (
        _TRAILER.match(para) is not None
        or _BANNER.search(para) is not None
        or (_on("promo") and _PROMO.search(para) is not None)
        or (_on("email") and _EMAIL.search(para) is not None)
        or (_on("credits") and _CREDITS.match(para) is not None)
        or (_on("signpost") and _SIGNPOST.match(para) is not None)
    )


def _signpost(para: str, links: frozenset[str]) -> bool:
    """A pointer to other pages inside the body: "Related: ...", "Read more: ..."."""
    if len(para) > 200 or _SIGNPOST.match(para) is None:
        return False
    return True


def _link_only(para: str, links: frozenset[str]) -> bool:
    return _key(para.removeprefix("- ")) in links


def _drop_link_lists(paras: list[str], links: frozenset[str]) -> list[str]:
    """Drop list items and runs of paragraphs that are nothing but a link: related-story lists."""
    kept: list[str] = []
    index = 0
    while index < len(paras):
        end = index
        while end < len(paras) and _link_only(paras[end], links):
            end += 1
        run = paras[index:end]
        if run:
            if len(run) < 3:
                kept.extend(p for p in run if not (_on("linkitems") and p.startswith("- ")))
            elif not _on("linkruns"):
                kept.extend(run)
            index = end
        else:
            kept.append(paras[index])
            index += 1
    return kept


def clean_paragraphs(
    paragraphs: list[str],
    *,
    title: str | None,
    description: str | None,
    headlines: Sequence[str] = (),
    links: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """Drop page chrome from the body; returns (paragraphs, byline authors).

    ``headlines`` are other forms of the title the page shows (``<h1>``, ``<title>``);
    ``links`` the texts of the page's links (as `_key` gives them), to tell lists of links
    from article text.
    """
    paras = [p for p in (_WS.sub(" ", p).strip() for p in paragraphs) if p]
    authors: list[str] = []
    heads = [k for k in (_key(t) for t in (title or "", *headlines)) if k]
    description_key = _key(description or "")

    # Leading chrome: banners, the headline, bylines and date lines before the first real
    # paragraph.
    while paras:
        names = _byline_authors(paras[0])
        if names:
            authors.extend(n for n in names if n not in authors)
        elif not _leading_chrome(paras[0], heads):
            break
        paras.pop(0)

    # The lead repeated: a summary ("dek") printed above the body, then the body's first
    # paragraph saying the same. Keep one.
    seen: set[str] = set()
    unique: list[str] = []
    for index, para in enumerate(paras):
        key = _key(para)
        if index < 4 and len(key) >= 40 and key in seen:
            continue
        seen.add(key)
        unique.append(para)
    paras = unique
    if (
        len(paras) > 1
        and description_key
        and _key(paras[0]) == description_key
        and _key(paras[1]).startswith(description_key[: max(40, len(description_key) // 2)])
    ):
        paras.pop(0)

    if _on("signpost"):
        paras = [p for p in paras if not _signpost(p, links)]
    paras = _drop_link_lists(paras, links)

    # Trailing chrome: banners, newsletter prompts, copyright and "read more" lines.
    while paras and _trailing_chrome(paras[-1]):
        paras.pop()
    return paras, authors




def _trafilatura(tree: Any, url: str | None, **options: Any) -> Any:
    settings = {"favor_precision": True, "with_metadata": True, **options}
    return trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
        **settings,
    )


def _words(text: str | None) -> int:
    return len(re.findall(r"\w+", text or ""))


def _body(tree: Any, url: str | None) -> tuple[Any, str]:
    document = _trafilatura(tree, url)
    text = (document.text or "") if document is not None else ""
    if "fb" in _XP and (_words(text) < int(os.environ.get("XPN", "100000")) or "merge" in _XP):
        wider = _trafilatura(tree, url, favor_precision=False, favor_recall=True, with_metadata=document is None)
        if wider is not None and _words(wider.text) >= float(os.environ.get("XPR", "2")) * _words(text):
            text = wider.text or ""
            document = document if document is not None else wider
        elif wider is not None and "merge" in _XP:
            text = _merge(text, wider.text or "")
    return document, text


_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")


def _prose(para: str) -> bool:
    return _words(para) >= int(os.environ.get("XPW", "8")) and _SENTENCE_END.search(para.strip()) is not None


def _merge(precise: str, wider: str) -> str:
    """Precise text plus the prose paragraphs the wider pass found between its paragraphs."""
    ours, theirs = precise.split("\n"), wider.split("\n")
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    merged: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        merged.extend(ours[i1:i2])
        if op == "insert" and 0 < i1 < len(ours):
            merged.extend(p for p in theirs[j1:j2] if _prose(p))
    return "\n".join(merged)


_EMBED_WRAPPER = re.compile(r"social|embed|share|tweet|instagram", re.I)


def _lift_embedded_posts(tree: Any) -> None:
    """Quoted social posts are article content: take them out of the "social"/"embed" wrappers
    a boilerplate filter drops wholesale (share bars use the same class names)."""
    for quote in tree.xpath(
        '//blockquote[contains(@class, "twitter-tweet") or contains(@class, "instagram-media")'
        ' or contains(@class, "tiktok-embed")]'
    ):
        quote.attrib.pop("class", None)
        text = _key(quote.text_content())
        outer = quote
        for parent in quote.iterancestors():
            marks = f"{parent.get('class', '')} {parent.get('id', '')}"
            if parent.tag in ("body", "article", "main") or _key(parent.text_content()) != text:
                break
            if _EMBED_WRAPPER.search(marks):
                outer = parent
        if outer is not quote:
            outer.getparent().replace(outer, quote)


def _headlines(tree: Any, document: Any) -> list[str]:
    """The forms of the headline a page shows: ``<h1>``s, ``<title>``, og:title, trafilatura's."""
    found = [_clean(h1.text_content()) for h1 in tree.iter("h1")]
    found.append(_clean(tree.findtext(".//title")))
    found.append(_clean(document.title))
    return [h for h in found if h]


def _link_texts(tree: Any) -> frozenset[str]:
    return frozenset(k for k in (_key(a.text_content()) for a in tree.iter("a")) if k)


def extract_article(
    html: str | bytes,
    url: str | None = None,
    *,
    content_type: str | None = None,
    hints: Hints | None = None,
) -> ExtractedArticle:
    """The clean article of a page, page metadata first and ``hints`` (the feed) as fallback.

    Raises `ExtractionError` when the page has no article text.
    """
    where = url or "(page)"
    text = decode_html(html, content_type) if isinstance(html, bytes) else html
    if not text.strip():
        raise ExtractionError("empty page", url=where, reason="empty_page")
    try:
        tree = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"unparseable HTML: {exc}", url=where, reason="bad_html") from exc
    meta = page_metadata(tree, url)
    if "embed" in _XP:
        _lift_embedded_posts(tree)
    document, body = _body(tree, url)
    if document is None or not body.strip():
        raise ExtractionError("no article text found", url=where)

    meta.title = meta.title or _clean(document.title)
    meta.site_name = meta.site_name or _clean(document.sitename)
    meta.description = meta.description or _clean(document.description)
    paragraphs, byline = clean_paragraphs(
        body.split("\n"),
        title=meta.title,
        description=meta.description,
        headlines=_headlines(tree, document),
        links=_link_texts(tree),
    )
    if not paragraphs:
        raise ExtractionError("no article text left after cleaning", url=where)
    if not meta.authors:
        meta.authors = byline or split_authors(document.author)
    if not meta.published and document.date:
        meta.published, meta.published_date_only = _parse_time(document.date)
    return merge_hints(meta, "\n\n".join(paragraphs), hints or Hints())


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
