"""What entries of every feed format are made of: their identity (normalised URLs, entry
keys, links shared by several entries), their text (HTML fragments made plain, one-line
values, language tags), absolute links and enclosures. `ingest.feeds` (RSS, Atom) and
`ingest.jsonfeed` build entries from these; the read side normalises URLs with them.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from ingest.records import Enclosure, FeedEntry

_BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li blockquote pre figure figcaption section article header "
    "footer table tr ul ol dl dt dd".split()
)
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
# The tag of an element publishers put in text meant to be plain (a summary pasted from the
# post), its attributes written name=value: "Vector<int>", "press <Enter>" or "a<b and c>d"
# in a note are not markup.
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|blockquote|br|cite|code|dd|del|div|dl|dt|em|figcaption|figure|h[1-6]|hr"
    r"|i|iframe|img|ins|li|mark|ol|p|picture|pre|q|s|script|small|source|span|strong|style"
    r"|sub|sup|table|td|th|tr|u|ul|video|audio)"
    r"""(?:\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))*\s*/?>""",
    re.IGNORECASE,
)
MAX_ENCLOSURES = 20  # per entry: a podcast episode has one, a gallery a few
MAX_LENGTH = 2**63 - 1  # bytes: what a database's BIGINT holds; past it the number is noise
# An entry's guid is indexed with its link's key (articles of shared links): PostgreSQL refuses
# an index row past 2,704 bytes, and the insert failing ended the whole run. Real ids (URLs,
# tag: URIs, UUIDs) are far shorter; a longer one is kept as its hash.
MAX_GUID_BYTES = 1024
# An article's link is indexed whole (its key is unique): past PostgreSQL's 2,704 bytes the
# insert failed and ended the run. The sitemap protocol's limit, and browsers' in practice.
MAX_LINK_BYTES = 2048


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
        text = unescape(html)
        # HTML escaped twice (a template's escaping before the feed's: "&lt;p&gt;Text") is
        # markup one unescape away when it opens with a tag; a tag merely named in text
        # ("wrap it in &lt;p&gt;") is text.
        if not (html.lstrip().startswith("&lt;") and has_tags(text)):
            return normalise_block(text) or None
        html = text
    import lxml.html  # here and in `parse_feed`: a re-poll of unchanged feeds needs neither
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return normalise_block(re.sub(r"<[^>]*>", " ", html)) or None
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = normalise_block("".join(current))
        if text:
            blocks.append(text)
        current.clear()

    def walk(node: Any) -> None:
        # A comment or processing instruction (its tag is not a string) is no text: the
        # commented-out markup publishers leave in content (``<!-- img src=... -->``) is not
        # read; what follows it is.
        tag = node.tag if isinstance(node.tag, str) else None
        if tag is None or tag in {"script", "style"}:
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
        elif tag in _CELLS:
            current.append(" ")  # a row's cells are words apart, not glued together
        if node.tail:
            current.append(node.tail)

    walk(root)
    flush()
    return "\n\n".join(blocks) or None


def has_tags(text: str) -> bool:
    """Whether ``text`` holds the tag of an HTML element (``<p>``, ``<a href=...>``,
    ``</em>``), not merely something between angle brackets."""
    return bool(_HTML_TAG.search(text))


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
    return normalise_block(value) or None


def normalise_block(text: str) -> str:
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


def bounded_link(link: str | None) -> str | None:
    """``link``, or None when it is longer than `MAX_LINK_BYTES` (a link no page is at in
    practice: the entry keeps its guid, title and text, and is its own article)."""
    if link is None or len(link) * 4 <= MAX_LINK_BYTES:
        return link
    return link if len(link.encode("utf-8", "surrogatepass")) <= MAX_LINK_BYTES else None


def bounded_guid(guid: str | None) -> str | None:
    """``guid``, or ``sha256:`` and its hash when it is longer than `MAX_GUID_BYTES`."""
    if guid is None or len(guid) * 4 <= MAX_GUID_BYTES:  # short enough in any encoding
        return guid
    encoded = guid.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_GUID_BYTES:
        return guid
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def entry_key(guid: str | None, link: str | None, title: str | None, date: str | None) -> str:
    """Entry identity: the guid, else the link, else the title and date, hashed."""
    basis = guid or (url_key(link) if link else None) or f"{title or ''}\x00{date or ''}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


# Month names and abbreviations of the languages feeds are written in, by their first letters
# once accents are dropped ("mär" -> "mar", "févr" -> "fev"): feedparser reads English only.
_MONTH_PREFIXES = {
    "jan": 1, "gen": 1, "ene": 1, "feb": 2, "fev": 2, "mar": 3, "maa": 3, "apr": 4, "avr": 4,
    "abr": 4, "may": 5, "mai": 5, "mag": 5, "mei": 5, "jun": 6, "juin": 6, "giu": 6, "jul": 7,
    "juil": 7, "lug": 7, "aug": 8, "aou": 8, "ago": 8, "sep": 9, "set": 9, "oct": 10, "okt": 10,
    "out": 10, "ott": 10, "nov": 11, "dec": 12, "dez": 12, "dic": 12,
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+\.?")
# Zone names such dates are written with: dateutil knows only UTC and GMT by themselves.
_ZONES: dict[str, int] = {"GMT": 0, "UTC": 0, "UT": 0, "Z": 0, "WET": 0, "WEST": 3600}
_ZONES |= {"CET": 3600, "MEZ": 3600, "CEST": 7200, "MESZ": 7200, "EET": 7200, "EEST": 10800}
_WEEKDAY = re.compile(r"^\s*[^\W\d_]+\.?,\s*")


def _month_number(word: str) -> int | None:
    plain = "".join(
        c for c in unicodedata.normalize("NFD", word.lower()) if not unicodedata.combining(c)
    ).rstrip(".")
    for size in (4, 3):
        if len(plain) >= size and plain[:size] in _MONTH_PREFIXES:
            return _MONTH_PREFIXES[plain[:size]]
    return None


def empty_date(moment: datetime) -> bool:
    """Whether ``moment`` is what a CMS or template prints for a missing date: anything before
    1800 (Go's zero time is year 1), the Unix epoch's instant in any zone, or midnight of
    1970-01-01 or 1900-01-01 as written. No date is truer."""
    if moment.year < 1800:
        return True
    if moment.utcoffset() is not None and moment.timestamp() == 0:
        return True
    new_year = moment.month == moment.day == 1
    midnight = moment.hour == moment.minute == moment.second == 0
    return new_year and midnight and moment.year in (1900, 1970)


def loose_date(text: object) -> datetime | None:
    """A feed date feedparser could not read, as UTC: RFC 822 with the weekday and month in
    another language ("Seg, 24 Set 2018 19:42:40 -0300", "Di, 05 Mär 2024 10:00 +0100").
    Strict: year, month and day must all be there; a time without a zone is taken as UTC."""
    if not isinstance(text, str) or not 6 <= len(text) <= 80:
        return None
    from dateutil import parser as dateparser  # only for the odd date

    text = _WEEKDAY.sub("", text)  # "mar," is Tuesday in Spanish, not March
    months = [m for m in (_month_number(w.group()) for w in _WORD.finditer(text)) if m]
    if len(months) != 1:
        return None
    # Other words go (a weekday, "de"), the month's name is put in English for dateutil,
    # zone names stay ("GMT", "MESZ").
    english = datetime(2000, months[0], 1).strftime(" %b ")
    cleaned = _WORD.sub(
        lambda w: (
            english
            if _month_number(w.group())
            else (f" {w.group()} " if w.group() in _ZONES else " ")
        ),
        text,
    )
    readings = []
    for default in (datetime(2000, 1, 1), datetime(2001, 2, 2)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                readings.append(dateparser.parse(cleaned, default=default, tzinfos=_ZONES))
        except (ValueError, OverflowError, TypeError, dateparser.ParserError):
            return None
    first, second = readings
    if first.date() != second.date() or first.month != months[0]:
        return None  # a part of the date was not written, or was read as something else
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    try:
        return first.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
