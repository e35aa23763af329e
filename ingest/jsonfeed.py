"""JSON Feed 1.0 and 1.1 bytes -> the `ParsedFeed` RSS and Atom give (`ingest.feeds`).

feedparser does not read JSON Feed, so this adapter does, with the same helpers: entry identity
(`entry_key`), HTML and text made plain (`fragment_text`, `line_text`), language tags.

Every value is checked for its type, since the JSON is the publisher's: a title that is a list,
an item that is a string, a size that is a string are dropped and noted, never trusted. An item
that cannot be read is skipped and the others kept, the feed then reported ``malformed`` with
what was wrong (as a broken RSS feed is); a document that is no JSON, or gives nothing, is a
`FeedError`. JSON nested deeper than the parser's stack or numbers longer than Python converts
are errors of `json.loads` (RecursionError, ValueError), turned into that `FeedError` too.

Links. Relative URLs resolve against ``home_page_url`` when it is absolute (the site whose
items these are: feeds are often served from elsewhere, a CDN or a feed service), else against
the feed's own URL. An item's article is its ``url``, else its ``external_url``: in a link blog
``url`` is the blog's post (its permalink, with the blogger's commentary: the entry the feed
published) and ``external_url`` the page it talks about, which belongs to another site and
would be archived under this feed's name; two posts on one ``external_url`` would also be one
article. The post is what the feed is; the linked page is left to its own site's feed.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
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
    has_tags,
    language_tag,
    line_text,
    unique_enclosures,
)
from ingest.errors import FeedError
from ingest.records import Enclosure, FeedEntry, ParsedFeed

VERSION_PREFIX = "https://jsonfeed.org/version/"
MAX_AUTHORS = 50  # per item: names past this are a hostile list, not a byline
MAX_PROBLEMS = 20  # problems kept in memory to report the first one and a count
# What only a JSON Feed item holds: a document without JSON Feed's version whose items hold
# none of these is some other JSON with an "items" list (RSS turned into JSON, an API).
ITEM_FIELDS = frozenset({"id", "url", "external_url", "content_html", "content_text"})
_EXAMPLE_DOMAINS = (".example", ".example.com", ".example.org", ".example.net", ".invalid", ".test")
# A character reference, complete with its semicolon: "AT&T" or "R&D &notes" hold none.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


class _Problems:
    """What was wrong with a document: the first said, the rest counted."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.count = 0

    def add(self, note: str) -> None:
        self.count += 1
        if len(self.notes) < MAX_PROBLEMS:
            self.notes.append(note)

    def summary(self) -> str | None:
        if not self.count:
            return None
        more = self.count - 1
        return self.notes[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _string(
    data: Mapping[str, Any], key: str, where: str, problems: _Problems, *, text: bool = False
) -> str | None:
    """``data[key]`` if it is a string; absent or null is None, another type a problem. With
    ``text``, a finite number is its string: a post titled ``2024`` in YAML front matter is a
    JSON number once a template's ``jsonify`` prints it."""
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if text and number and (isinstance(value, int) or math.isfinite(value)):
        return str(value)
    problems.add(f"{where}{key} is {_kind(value)}, not a string")
    return None


def _unescaped(text: str | None) -> str | None:
    """Plain text with its character references decoded. JSON Feed's plain-text fields
    (titles, names, ``summary``, ``content_text``) should hold none, but templates escape
    them for HTML (Nunjucks' autoescape in 11ty's own JSON Feed template gives
    ``Q&amp;A: what&#39;s new``): a reference complete with its ``;`` is decoded, a bare
    ``&`` is left as it is."""
    if not text or "&" not in text:
        return text
    return _ENTITY.sub(lambda found: unescape(found.group()), text)


def _line(text: str | None) -> str | None:
    """A title or a name: plain text on one line."""
    return line_text(_unescaped(text), html=False)


def _plain(text: str | None) -> str | None:
    """Plain text as the archive keeps it: each line a paragraph (a line break in plain text
    is what ``<br>`` is in HTML, which `fragment_text` also makes a paragraph). Text that
    holds tags after all (publishers put HTML in ``summary``) is read as HTML."""
    if not text or not text.strip():
        return None
    if has_tags(text):
        return fragment_text(text)
    lines = (_line(line) for line in text.splitlines())
    return "\n\n".join(line for line in lines if line) or None


def _date(value: str | None) -> datetime | None:
    """RFC 3339 (``2025-03-14T09:30:00Z``), as JSON Feed dates are; a time without a zone is
    taken as UTC, a date alone as its midnight. RSS's RFC 822 (``Sat, 16 Mar 2019 10:00:00
    +0100``), which feeds converted from RSS carry, is read too. Anything else is no date, and
    so are the placeholders of a missing one (`empty_date`: Go's zero time, what a Hugo
    template prints for a page without a date; the Unix epoch, JavaScript's ``new Date(0)``)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:  # year 1 or 9999 moved out of range by its zone
        return None
    return None if empty_date(moment) else moment


def _authors(data: Mapping[str, Any], where: str, problems: _Problems) -> tuple[str, ...] | None:
    """1.1's ``authors`` (a list of objects), else 1.0's ``author`` (one); None when neither
    is given (an item then takes the feed's). Feeds in the wild give ``authors`` as one
    object, and an author as a bare name (a template's ``"author": "{{ site.author }}"``):
    both say who wrote it without doubt, so both are read."""
    listed = data.get("authors")
    if listed is None and data.get("author") is not None:
        listed = [data["author"]]
    if listed is None:
        return None
    if isinstance(listed, dict | str):
        listed = [listed]
    if not isinstance(listed, list):
        problems.add(f"{where}authors is {_kind(listed)}, not a list")
        return None
    names: list[str] = []
    for author in listed[:MAX_AUTHORS]:
        if isinstance(author, str):
            author = {"name": author}
        if not isinstance(author, dict):
            problems.add(f"{where}an author is {_kind(author)}, not an object")
            continue
        name = _line(_string(author, "name", f"{where}author ", problems, text=True))
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _attachments(
    item: Mapping[str, Any], base: str, where: str, problems: _Problems
) -> tuple[Enclosure, ...]:
    listed = item.get("attachments")
    if listed is None:
        return ()
    if not isinstance(listed, list):
        problems.add(f"{where}attachments is {_kind(listed)}, not a list")
        return ()
    found = []
    for attachment in listed[: MAX_ENCLOSURES * 2]:
        if not isinstance(attachment, dict):
            problems.add(f"{where}an attachment is {_kind(attachment)}, not an object")
            continue
        found.append(
            enclosure(
                attachment.get("url"),
                base=base,
                type=attachment.get("mime_type"),
                length=attachment.get("size_in_bytes"),
                title=attachment.get("title"),
                duration=attachment.get("duration_in_seconds"),
            )
        )
    return unique_enclosures(found)


def _item(
    item: object,
    number: int,
    base: str,
    feed_language: str | None,
    feed_authors: tuple[str, ...],
    problems: _Problems,
) -> FeedEntry | None:
    where = f"item {number}: "
    if not isinstance(item, dict):
        problems.add(f"item {number} is {_kind(item)}, not an object")
        return None
    raw_id = item.get("id")
    # The spec asks readers to take a number given as the id as its string.
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    guid = _string({"id": raw_id}, "id", where, problems)
    guid = bounded_guid(guid.strip() or None) if guid else None
    link = bounded_link(
        absolute(_string(item, "url", where, problems), base)
        or absolute(_string(item, "external_url", where, problems), base)
    )
    title = _line(_string(item, "title", where, problems, text=True))
    summary = _plain(_string(item, "summary", where, problems, text=True))
    html = _string(item, "content_html", where, problems)
    text = _string(item, "content_text", where, problems, text=True)
    content = fragment_text(html) or _plain(text) or summary
    if not (guid or link or title or content):
        return None
    published_raw = _string(item, "date_published", where, problems)
    modified_raw = _string(item, "date_modified", where, problems)
    modified = _date(modified_raw)
    published = _date(published_raw) or modified
    authors = _authors(item, where, problems)
    language = language_tag(_string(item, "language", where, problems))
    # An item with no id, link or title is told from the others by its date and its text:
    # two such posts of one day (a microblog's) are two entries, not one.
    basis = published_raw or modified_raw
    if not (guid or link or title):
        basis = f"{basis or ''}\x00{content or ''}"
    return FeedEntry(
        key=entry_key(guid, link, title, basis),
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        content=content,
        # An item's empty list names no one (a generator's "authors": []): the feed's apply.
        authors=authors or feed_authors,
        published=published,
        updated=None if modified == published else modified,
        language=language or feed_language,
        enclosures=_attachments(item, base, where, problems),
    )


def _example(url: str) -> bool:
    """Whether ``url`` is on a domain reserved for examples (RFC 2606, RFC 6761)."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    return host.endswith(_EXAMPLE_DOMAINS) or host in {d.lstrip(".") for d in _EXAMPLE_DOMAINS}


def _home(home: str | None, url: str) -> str | None:
    """``home_page_url``, unless it is a template's placeholder: a domain reserved for
    examples (``https://example.com``, left in a generator's settings) on a feed that is not
    served from one, against which relative links would resolve to a site that is not its."""
    if home and _example(home) and not _example(url):
        return None
    return home


def _told_apart(entries: tuple[FeedEntry, ...]) -> tuple[FeedEntry, ...]:
    """Entries whose id the document gives to several different items (different links, or
    without links different text) keyed as if they had none: such an id (a template printing
    the feed's URL as every post's id) identifies none of them, and as their key it made
    every post after the first one already seen. The same item listed twice keeps its id."""
    seen: dict[str, set[object]] = defaultdict(set)
    for entry in entries:
        if entry.guid:
            seen[entry.guid].add(entry.link or (entry.title, entry.content))
    shared = {guid for guid, readings in seen.items() if len(readings) > 1}
    if not shared:
        return entries
    return tuple(
        replace(
            entry,
            key=entry_key(
                None, entry.link, entry.title, f"{entry.published}\x00{entry.content or ''}"
            ),
        )
        if entry.guid in shared
        else entry
        for entry in entries
    )


def _feed_items(items: list[Any]) -> bool:
    """Whether some item of a list holds a field only JSON Feed items hold."""
    return any(isinstance(item, dict) and not ITEM_FIELDS.isdisjoint(item) for item in items)


def _declared(body: bytes, content_type: str | None) -> str | bytes:
    """``body`` in the charset its Content-Type declares, when that is not UTF-8 and reads
    it (a legacy site's ``application/json; charset=iso-8859-1``); else the bytes, which
    `json.loads` reads as UTF-8, -16 or -32 and otherwise refuses."""
    from w3lib.encoding import http_content_type_encoding

    charset = http_content_type_encoding(content_type) if content_type else None
    if charset and charset.replace("_", "-").lower() not in {"utf-8", "utf8"}:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            try:
                return body.decode(charset)
            except (LookupError, UnicodeError):  # "undefined" raises UnicodeError
                pass
    return body


def parse_json_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse JSON Feed 1.0 or 1.1 bytes fetched from ``url``: UTF-8 (a BOM allowed), UTF-16
    or UTF-32, or the charset ``content_type`` declares."""
    try:
        # strict=False: a tab or a line break left raw inside a string (a template that
        # printed a title without escaping it) costs nothing to read, where refusing it
        # would lose the whole feed.
        document = json.loads(_declared(body, content_type), strict=False)
    except RecursionError:
        raise FeedError("malformed feed: JSON nested too deeply", url=url) from None
    except ValueError as exc:  # not JSON, not UTF-8, or a number too long to convert
        raise FeedError(f"malformed feed: not valid JSON: {exc}", url=url) from None
    if not isinstance(document, dict):
        raise FeedError(f"malformed feed: JSON {_kind(document)}, not a JSON Feed", url=url)
    version = document.get("version")
    items = document.get("items")
    if not (isinstance(version, str) and version.startswith(VERSION_PREFIX)) and (
        items is None or (isinstance(items, list) and items and not _feed_items(items))
    ):
        raise FeedError(
            "not a feed: JSON without a JSON Feed version or JSON Feed items",
            url=url,
            reason="not_feed",
        )
    problems = _Problems()
    title = _line(_string(document, "title", "", problems, text=True))
    home = _home(absolute(_string(document, "home_page_url", "", problems), url), url)
    base = home or url
    language = language_tag(_string(document, "language", "", problems))
    feed_authors = _authors(document, "", problems) or ()
    # An empty list is an empty feed, whatever else is wrong with it (a null author: it
    # cannot have cost an entry); items that are no list, or none readable, are an error.
    empty = items == []
    if not isinstance(items, list):
        problems.add(f"items is {_kind(items)}, not a list")
        items = []
    entries = _told_apart(
        tuple(
            entry
            for number, raw in enumerate(items, 1)
            if (entry := _item(raw, number, base, language, feed_authors, problems)) is not None
        )
    )
    problem = problems.summary()
    if problem and not entries and not empty:
        raise FeedError(f"malformed feed: {problem}", url=url)
    return ParsedFeed(
        title=title,
        site_url=home,
        language=language,
        entries=entries,
        problem=f"malformed feed, {len(entries)} entries recovered: {problem}" if problem else None,
    )
