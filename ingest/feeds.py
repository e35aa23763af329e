"""Feed bytes -> entries: entry identity, absolute links, enclosures, URL normalisation.

RSS and Atom are read by feedparser here; JSON Feed by `ingest.jsonfeed`, which builds on the
helpers of this module and returns the same values (`parse_feed` picks by content).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ingest.errors import FeedError
from ingest.records import Enclosure, FeedEntry, ParsedFeed

_BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li blockquote pre figure figcaption section article header "
    "footer table tr ul ol dl dt dd".split()
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)\b", re.I | re.S)
_JSON_START = re.compile(rb"^(\xef\xbb\xbf)?\s*\{")
_XML_START = re.compile(rb"^(\xef\xbb\xbf)?\s*<")
JSON_TYPES = frozenset({"application/feed+json", "application/json"})
MAX_ENCLOSURES = 20  # per entry: a podcast episode has one, a gallery a few
MAX_LENGTH = 2**63 - 1  # bytes: what a database's BIGINT holds; past it the number is noise


def url_key(url: str, *, fragment: bool = False) -> str:
    """The identity of an article URL: normalised, tracking parameters and fragment dropped.

    Two links that differ only by ``utm_*``, ``fbclid`` and the like, by host case, default
    port or parameter order give the same key. With ``fragment`` the key keeps the fragment
    (normalised; a tracking fragment such as ``#xtor=RSS-3`` is still dropped): the key of a
    post on a page of several, ``page#post``.
    """
    return _url_key(url, fragment)


# A link is keyed when its entry is recorded, when its feed is looked at for shared links,
# and when its page is saved, and again at every poll that lists it: courlan's normalising
# was a tenth of a run's main-process CPU. 16,384 keys are about 3 MB.
@functools.lru_cache(maxsize=16384)
def _url_key(url: str, fragment: bool) -> str:
    import courlan  # here, not at the top: a re-poll of unchanged feeds never needs it

    try:
        normal = courlan.normalize_url(url)
    except (ValueError, TypeError):
        normal = url
    parts = urlsplit(normal)
    path = urljoin("/", parts.path) if parts.path else "/"  # resolves ./ and ../ segments
    kept = parts.fragment if fragment else ""
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, parts.query, kept))


def page_of(post: str) -> str:
    """The page of a post key (`url_key` with its fragment): the key without the fragment."""
    return post.partition("#")[0]


@dataclass(frozen=True, slots=True)
class SharedLinks:
    """What one feed document says about the links of its entries."""

    posts: frozenset[str]  # post keys several distinct entries link to: no entry's identity
    pages: frozenset[str]  # pages whose entries link to distinct fragments: each its own post
    keys: dict[str, str]  # entry key -> the post key of its link (`url_key` with fragment)


def shared_links(entries: Sequence[FeedEntry]) -> SharedLinks:
    """The links of one feed document that do not identify its entries.

    Entries are distinct when their keys (guids) differ, unless they are the same entry listed
    twice (same title, content and date). A link several distinct entries share is no
    entry's identity (a podcast's episodes all linking to the show's page, two posts of a link
    blog on one URL); a page whose entries link to distinct fragments of it holds several
    posts, each identified by its fragment (a microblog's day page).
    """
    keys: dict[str, str] = {}
    readings: dict[str, set[tuple[object, ...]]] = defaultdict(set)
    for entry in entries:
        if entry.link and entry.key not in keys:
            post = keys[entry.key] = url_key(entry.link, fragment=True)
            readings[post].add((entry.title, entry.content, entry.published))
    posts_of: dict[str, set[str]] = defaultdict(set)
    for post in readings:
        posts_of[page_of(post)].add(post)
    return SharedLinks(
        posts=frozenset(post for post, seen_as in readings.items() if len(seen_as) > 1),
        pages=frozenset(page for page, posts in posts_of.items() if len(posts) > 1),
        keys=keys,
    )


def fragment_text(html: str | None) -> str | None:
    """Plain text of an HTML fragment (a feed's content), blocks separated by blank lines."""
    if not html or not html.strip():
        return None
    if "<" not in html:
        return _normalise_block(unescape(html)) or None
    import lxml.html  # here and in `parse_feed`: a re-poll of unchanged feeds needs neither
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _normalise_block(re.sub(r"<[^>]*>", " ", html)) or None
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = _normalise_block("".join(current))
        if text:
            blocks.append(text)
        current.clear()

    def walk(node: Any) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in {"script", "style"}:
            if node.tail:
                current.append(node.tail)
            return
        block = tag in _BLOCKS
        if block or tag == "br":
            flush()
        if node.text and tag != "br":
            current.append(node.text)
        for child in node:
            walk(child)
        if block:
            flush()
        if node.tail:
            current.append(node.tail)

    walk(root)
    flush()
    return "\n\n".join(blocks) or None


def has_tags(text: str) -> bool:
    """Whether ``text`` holds something that looks like an HTML tag."""
    return bool(_TAG.search(text))


def line_text(value: str | None, *, html: bool) -> str | None:
    """A title or a name as plain text on one line. Feeds mark up titles as HTML (Atom's
    ``type="html"``, and RSS, where feedparser takes titles for HTML): entities are decoded
    and tags dropped there (a script's text with them), but only where something looks like
    a tag, so that "x<y" in a title stays."""
    if not value:
        return None
    if html:
        if _TAG.search(value):
            value = (fragment_text(value) or "").replace("\n\n", " ")
        else:
            value = unescape(value)
    return _normalise_block(value) or None


def _normalise_block(text: str) -> str:
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def language_tag(value: str | None) -> str | None:
    """``en-US``, ``en_GB`` -> ``en``: the ISO 639 primary subtag, lower case, or None."""
    if not value:
        return None
    primary = re.split(r"[-_,; ]", value.strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def absolute(link: object, base: str) -> str | None:
    """``link`` resolved against ``base``, if it is then an http(s) URL; else None."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        resolved = urljoin(base, link.strip())
        scheme = urlsplit(resolved).scheme
    except ValueError:  # an invalid IPv6 host, say
        return None
    return resolved if scheme in {"http", "https"} else None


def enclosure(
    url: object,
    *,
    base: str,
    type: object = None,
    length: object = None,
    title: object = None,
    duration: object = None,
) -> Enclosure | None:
    """An enclosure from what a feed says of it, each value checked: a URL that is not
    http(s), a length that is no whole number of bytes, a duration that is no number of
    seconds are dropped (a length of 0, the usual "unknown" of RSS, is None too)."""
    href = absolute(url, base)
    if href is None:
        return None
    return Enclosure(
        url=href,
        type=(type.strip().lower() or None) if isinstance(type, str) else None,
        length=_count(length),
        title=line_text(title, html=False) if isinstance(title, str) else None,
        duration=duration_seconds(duration),
    )


def _count(value: object) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_LENGTH else None


def duration_seconds(value: object) -> float | None:
    """Seconds from a number or a clock (``"52:00"``, ``"1:02:03"``, iTunes' forms)."""
    if isinstance(value, str):
        parts = value.strip().split(":")
        if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d{1,6}(\.\d+)?", p) for p in parts):
            return None
        value = sum(float(p) * 60**i for i, p in enumerate(reversed(parts)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and 0 <= seconds < 1e9 else None


def unique_enclosures(found: Sequence[Enclosure | None]) -> tuple[Enclosure, ...]:
    """The enclosures of an entry, each URL once, at most `MAX_ENCLOSURES`."""
    seen: dict[str, Enclosure] = {}
    for item in found:
        if item is not None and item.url not in seen:
            seen[item.url] = item
    return tuple(seen.values())[:MAX_ENCLOSURES]


def _time(parsed: time.struct_time | None) -> datetime | None:
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError):
        return None


def entry_key(guid: str | None, link: str | None, title: str | None, date: str | None) -> str:
    """Entry identity: the guid, else the link, else the title and date, hashed."""
    basis = guid or (url_key(link) if link else None) or f"{title or ''}\x00{date or ''}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def _is_html(detail: Any) -> bool:
    return bool(detail) and detail.get("type") in {"text/html", "application/xhtml+xml"}


def _enclosures(raw: Any, base: str) -> tuple[Enclosure, ...]:
    """RSS ``<enclosure>`` and Atom ``link rel="enclosure"`` (feedparser lists both); an
    episode's ``itunes:duration`` is its one enclosure's."""
    listed = [e for e in raw.get("enclosures") or [] if isinstance(e, dict)]
    duration = raw.get("itunes_duration") if len(listed) == 1 else None
    return unique_enclosures(
        [
            enclosure(
                item.get("href"),
                base=base,
                type=item.get("type"),
                length=item.get("length"),
                title=item.get("title"),
                duration=duration,
            )
            for item in listed[: MAX_ENCLOSURES * 2]
        ]
    )


def _entry(raw: Any, language: str | None, base: str) -> FeedEntry | None:
    guid = (raw.get("id") or "").strip() or None
    link = (raw.get("link") or "").strip() or None
    if link and urlsplit(link).scheme not in {"http", "https"}:
        link = None
    title = line_text(raw.get("title"), html=_is_html(raw.get("title_detail")))
    contents = raw.get("content") or []
    html = max((c.get("value") or "" for c in contents), key=len, default="")
    summary = fragment_text(raw.get("summary"))
    content = fragment_text(html) or summary
    if not (guid or link or title or content):
        return None
    # Asked only when present: feedparser's fallback to "published" is deprecated and warns.
    updated = _time(raw["updated_parsed"]) if "updated_parsed" in raw else None
    # RSS 1.0's dc:date lands in "updated": with no other date it is the publication time.
    published = _time(raw.get("published_parsed")) or updated
    if updated == published:
        updated = None
    authors = tuple(
        name
        for name in (_normalise_block(a.get("name") or "") for a in raw.get("authors") or [])
        if name
    )
    return FeedEntry(
        key=entry_key(guid, link, title, raw.get("published") or raw.get("updated")),
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
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES and not _XML_START.match(body[:1024])


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed bytes; relative links resolve against
    ``url``."""
    if is_json(body, content_type):
        # Imported here: `ingest.jsonfeed` builds on this module's helpers.
        from ingest.jsonfeed import parse_json_feed

        return parse_json_feed(body, url=url)
    import feedparser

    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # Not sanitised: every piece of HTML taken from a feed is made plain text here
    # (`fragment_text`, `line_text`: no markup, no script's text, survives), and feedparser's
    # sanitiser cost a fifth of its parse (0.55 -> 0.43 ms an entry).
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    meta = parsed.get("feed", {})
    language = language_tag(meta.get("language"))
    entries = tuple(
        e for e in (_entry(raw, language, url) for raw in parsed.get("entries", [])) if e
    )
    # A wrong Content-Type or a charset override is harmless; a document that is not RSS or
    # Atom, or breaks off before its first whole entry, is not.
    if not entries and not (parsed.get("version") and not _fatal(parsed)):
        if _HTML_START.match(body[:2048]):
            raise FeedError("not a feed: the URL returned an HTML page", url=url, reason="not_feed")
        problem = parsed.get("bozo_exception") or "no RSS or Atom content"
        raise FeedError(f"malformed feed: {problem}", url=url)
    problem = None
    if _fatal(parsed):
        problem = f"malformed feed, {len(entries)} entries recovered: {parsed.bozo_exception}"
    return ParsedFeed(
        title=line_text(meta.get("title"), html=_is_html(meta.get("title_detail"))),
        site_url=meta.get("link"),
        language=language,
        entries=entries,
        problem=problem,
        ttl=meta.get("ttl"),
        update_period=meta.get("sy_updateperiod"),
        update_frequency=meta.get("sy_updatefrequency"),
    )


def _fatal(parsed: Any) -> bool:
    import feedparser

    error = parsed.get("bozo_exception")
    harmless = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
    return bool(parsed.get("bozo")) and not isinstance(error, harmless)
