"""Feed bytes -> entries: RSS and Atom read by feedparser here, JSON Feed by `ingest.jsonfeed`
(`parse_feed` picks by content); both build entries from `ingest.entryparts`.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime
from html.entities import name2codepoint
from typing import Any
from urllib.parse import urlsplit

from ingest.entryparts import (
    MAX_ENCLOSURES,
    absolute,
    bounded_guid,
    bounded_link,
    empty_date,
    enclosure,
    entry_key,
    fragment_text,
    language_tag,
    line_text,
    loose_date,
    normalise_block,
    unique_enclosures,
)
from ingest.errors import FeedError
from ingest.jsonfeed import parse_json_feed
from ingest.records import Enclosure, FeedEntry, ParsedFeed

_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)\b", re.I | re.S)
_JSON_START = re.compile(rb"^(\xef\xbb\xbf)?\s*\{")
_XML_START = re.compile(rb"^(\xef\xbb\xbf)?\s*<")
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARATION = re.compile(rb"<\?xml\s")
_ROOT_END = re.compile(rb"</(?:rss|feed|rdf:RDF|RDF)\s*>")
_JUNK_BEFORE = _JUNK_AFTER = 4096  # bytes: a warning or two
_WORDS = re.compile(r"\w")
# Ampersands XML refuses, outside CDATA: a bare "&" ("?a=1&b=2") and HTML's named entities
# ("&nbsp;", "&eacute;"). The document is ill-formed and recorded malformed for them, though
# nothing is lost: escaped, or as numbers, they are XML.
_CDATA = re.compile(rb"(<!\[CDATA\[.*?\]\]>)", re.S)
_AMPERSAND = re.compile(rb"&(?:([A-Za-z][A-Za-z0-9]{0,31});|#[0-9]{1,8};|#x[0-9A-Fa-f]{1,8};)?")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
_UTF8_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
# feedparser's e-mail pattern ends at a top-level domain of 4 letters: "jo@site.industries
# (Jo Ann)" gives the e-mail "jo@site.indu" and the name "stries (Jo Ann".
_CUT_EMAIL = re.compile(r"\.[a-z]{4}$", re.I)
_EMAIL = re.compile(r"[^\s()<>@]+@[^\s()<>@]+\.[^\s()<>@]+")
JSON_TYPES = frozenset({"application/feed+json", "application/json"})


def _time(parsed: time.struct_time | None) -> datetime | None:
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError):
        return None


def _is_html(detail: Any) -> bool:
    return bool(detail) and detail.get("type") in {"text/html", "application/xhtml+xml"}


def _enclosures(raw: Any, base: str) -> tuple[Enclosure, ...]:
    """RSS ``<enclosure>`` and Atom ``link rel="enclosure"`` (feedparser lists both); an
    episode's ``itunes:duration`` is its one enclosure's."""
    listed = [e for e in raw.get("enclosures") or [] if isinstance(e, dict)]
    duration = raw.get("itunes_duration") if len(listed) == 1 else None
    # FeedBurner's proxy address stands in for the file; its origEnclosureLink is the file's.
    original = raw.get("feedburner_origenclosurelink") if len(listed) == 1 else None
    return unique_enclosures(
        [
            enclosure(
                absolute(original, base) or item.get("href"),
                base=base,
                type=item.get("type"),
                length=item.get("length"),
                title=item.get("title"),
                duration=duration,
            )
            for item in listed[: MAX_ENCLOSURES * 2]
        ]
    )


def _date(raw: Any, field: str) -> tuple[datetime | None, str | None]:
    """(the time, the text) of ``published`` or ``updated``: feedparser's reading, else ours
    of what it could not read (month names in another language). Read as a plain dict:
    feedparser's own ``get`` falls back from "updated" to "published", deprecated, and warns."""
    text = dict.get(raw, field)
    parsed = dict.get(raw, f"{field}_parsed")
    moment = _time(parsed) or loose_date(text)
    if moment is not None and empty_date(moment):
        moment = None
    return moment, text


def _author_name(detail: Any, whole: str | None) -> str | None:
    """A person's name from feedparser's reading of an author. RSS writes "e-mail (Name)" or
    "Name <e-mail>", which feedparser splits; an e-mail its pattern cut short is split again
    from the element's text (``whole``), an e-mail alone is no name."""
    name = normalise_block(detail.get("name") or "")
    email = detail.get("email") or ""
    if name and _CUT_EMAIL.search(email) and whole and email in whole:
        name = _EMAIL.sub(" ", whole)
        name = normalise_block(name.replace("()", " ").replace("<>", " ").strip(" ()<>"))
    return name or None


def _entry(raw: Any, language: str | None, base: str) -> FeedEntry | None:
    guid = bounded_guid((raw.get("id") or "").strip() or None)
    # A FeedBurner feed links to its redirecting proxy; origLink is the article's own address.
    original = absolute(raw.get("feedburner_origlink"), base)
    link = bounded_link(original or (raw.get("link") or "").strip() or None)
    if link and urlsplit(link).scheme not in {"http", "https"}:
        link = None
    title = line_text(raw.get("title"), html=_is_html(raw.get("title_detail")))
    contents = raw.get("content") or []
    html = max((c.get("value") or "" for c in contents), key=len, default="")
    summary = fragment_text(raw.get("summary"))
    content = fragment_text(html)
    # A placeholder ("...", an empty paragraph) is no content: the summary says more.
    content = content if content and _WORDS.search(content) else summary
    if not (guid or link or title or content):
        return None
    updated, updated_text = _date(raw, "updated")
    # RSS 1.0's dc:date lands in "updated": with no other date it is the publication time.
    published, published_text = _date(raw, "published")
    published = published or updated
    if updated == published:
        updated = None
    listed = [a for a in raw.get("authors") or [] if isinstance(a, dict)]
    source = raw.get("source")
    if not listed and isinstance(source, dict):  # an aggregator's entry: its origin's authors
        listed = [a for a in source.get("authors") or [] if isinstance(a, dict)]
    whole = raw.get("author") if len(listed) == 1 else None
    # A podcast names its host twice (<author> and <itunes:author>): once is enough.
    authors = tuple(
        dict.fromkeys(name for name in (_author_name(a, whole) for a in listed) if name)
    )
    return FeedEntry(
        key=entry_key(guid, link, title, published_text or updated_text),
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        content=content,
        authors=authors,
        published=published,
        updated=updated,
        language=language,
        enclosures=_enclosures(raw, base),
    )


def is_json(body: bytes, content_type: str | None) -> bool:
    """Whether a feed's bytes are JSON: an object (after a BOM and spaces), or a JSON content
    type on a body that is not markup (the bytes win over a header that says otherwise)."""
    if _JSON_START.match(body[:1024]):
        return True
    # JSON may be UTF-16 or UTF-32 (the JSON Feed spec allows any JSON encoding): its first
    # bytes tell which, as `json.loads` reads them.
    encoding = json.detect_encoding(body[:4])
    if (
        encoding != "utf-8"
        and body[:1024].decode(encoding, "ignore").lstrip("\ufeff \t\r\n")[:1] == "{"
    ):
        return True
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES and not _XML_START.match(body[:1024])


# C0 controls but tab, newline and carriage return: no text has them, XML forbids them, and
# PostgreSQL refuses a NUL, which lost a whole feed's entries over one title.
_CONTROLS = dict.fromkeys([*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20)])
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _without_controls(value: Any) -> Any:
    """``value`` (a parsed feed, an entry, their strings, tuples and dataclasses) with no
    `_CONTROLS` in any string; what holds none is returned as it is (the usual case: this
    runs on every entry polled)."""
    if isinstance(value, str):
        return value.translate(_CONTROLS) if _CONTROL.search(value) else value
    if isinstance(value, tuple):
        cleaned = tuple(_without_controls(v) for v in value)
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cleaned
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in fields(value):
            old = getattr(value, f.name)
            new = _without_controls(old)
            if new is not old:
                changes[f.name] = new
        return replace(value, **changes) if changes else value
    return value


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed bytes; relative links resolve against
    ``url``. No string of what it returns holds a control character but tab and newlines."""
    parsed: ParsedFeed = _without_controls(_parse_feed(body, url=url, content_type=content_type))
    return parsed


def _parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    if is_json(body, content_type):
        return parse_json_feed(body, url=url, content_type=content_type)
    import feedparser

    page = body[:2048]  # as it came, to tell an HTML page
    body, content_type = _as_utf8(_trimmed(body), content_type)
    if b"&" in body:
        body = b"".join(
            part if part.startswith(b"<![CDATA[") else _AMPERSAND.sub(_xml_ampersand, part)
            for part in _CDATA.split(body)
        )
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # Not sanitised: every piece of HTML taken from a feed is made plain text here
    # (`fragment_text`, `line_text`: no markup, no script's text, survives), and feedparser's
    # sanitiser cost a fifth of its parse (0.55 -> 0.43 ms an entry).
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    except UnicodeError:
        # A declared charset Python's "undefined" codec: feedparser lets its UnicodeError
        # out (it expects UnicodeDecodeError). The bytes are UTF-8 by now (`_as_utf8`).
        headers["content-type"] = "application/xml; charset=utf-8"
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    meta = parsed.get("feed", {})
    language = language_tag(meta.get("language"))
    entries = tuple(
        e for e in (_entry(raw, language, url) for raw in parsed.get("entries", [])) if e
    )
    if str(parsed.get("version") or "").startswith("atom"):
        entries = _with_feed_authors(entries, meta)
    # A wrong Content-Type or a charset override is harmless; a document that is not RSS or
    # Atom, or breaks off before its first whole entry, is not.
    if not entries and not (parsed.get("version") and not _fatal(parsed)):
        if _HTML_START.match(page):
            raise FeedError("not a feed: the URL returned an HTML page", url=url, reason="not_feed")
        problem = parsed.get("bozo_exception") or "no RSS or Atom content"
        raise FeedError(f"malformed feed: {problem}", url=url)
    problem = None
    if _fatal(parsed):
        problem = f"malformed feed, {len(entries)} entries recovered: {parsed.bozo_exception}"
    return ParsedFeed(
        title=line_text(meta.get("title"), html=_is_html(meta.get("title_detail"))),
        # http(s) and absolute, as for JSON Feed: Atom's feed link may be missing (feedparser
        # then gives the id, a "urn:"), RSS's relative.
        site_url=absolute(meta.get("link"), url),
        language=language,
        entries=entries,
        problem=problem,
        ttl=meta.get("ttl"),
        update_period=meta.get("sy_updateperiod"),
        update_frequency=meta.get("sy_updatefrequency"),
    )


def _trimmed(body: bytes) -> bytes:
    """The document without what a server printed around it: blank lines (a template's) or a
    PHP warning before the XML declaration, another after the root element. Either makes the
    XML ill-formed, and feedparser's lenient reading of it loses the declared encoding."""
    bom = _UTF8_BOM if body.startswith(_UTF8_BOM) else b""
    start = _DECLARATION.search(body, 0, _JUNK_BEFORE)
    if start and start.start() > len(bom):
        body = bom + body[start.start() :]
    tail = body[-_JUNK_AFTER:]
    ends = list(_ROOT_END.finditer(tail))
    if ends and tail[ends[-1].end() :].strip():
        body = body[: len(body) - len(tail) + ends[-1].end()]
    return body


def _xml_ampersand(match: re.Match[bytes]) -> bytes:
    if match.group() == b"&":
        return b"&amp;"
    name = match.group(1)
    if not name or name in _XML_ENTITIES:
        return match.group()  # a character reference, or one of XML's five
    point = name2codepoint.get(name.decode("ascii"))
    return b"&#%d;" % point if point else match.group()  # another entity: a DTD's, maybe


def _as_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Bytes that are not UTF-8 read as pages are (`ingest.decoding`: a declared charset that
    fits them, else detection) and handed on as UTF-8, said so twice. feedparser takes
    undeclared bytes for windows-1252 (Hebrew, Cyrillic, Greek garbled into accented Latin)
    and keeps a declared charset that cannot read them."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        from ingest.decoding import decode_html  # here: most feeds are UTF-8

        media = (content_type or "").split(";", 1)[0].strip() or "application/xml"
        text = _UTF8_DECLARATION + decode_html(body, content_type).lstrip()
        return text.encode("utf-8"), f"{media}; charset=utf-8"
    return body, content_type


def _with_feed_authors(entries: tuple[FeedEntry, ...], meta: Any) -> tuple[FeedEntry, ...]:
    """Atom's rule (RFC 4287, 4.2.1): an entry without an author (its own or its source's)
    has the feed's authors."""
    names = tuple(
        name
        for name in (normalise_block(a.get("name") or "") for a in meta.get("authors") or [])
        if name
    )
    if not names:
        return entries
    return tuple(e if e.authors else replace(e, authors=names) for e in entries)


def _fatal(parsed: Any) -> bool:
    import feedparser

    error = parsed.get("bozo_exception")
    harmless = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
    return bool(parsed.get("bozo")) and not isinstance(error, harmless)
