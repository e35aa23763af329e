"""The read path the API, the pages and the feeds share: request parameters in, `Store`
reads, records out (`ingest.query`'s shapes) with opaque keyset cursors for the next page."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from ingest.errors import QueryError
from ingest.models import ArticleStatus, ContentSource
from ingest.query import hit_record, parse_moment
from ingest.search import SNIPPET_CLOSE, SNIPPET_OPEN, Filters, SearchHit
from ingest.store import Store

SORTS = ("relevance", "newest")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
SNIPPET_CHARS = 240  # a listing without a query shows the text's beginning


class BadParameter(QueryError):
    """A request parameter that cannot be used as given (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class ArticleQuery:
    q: str = ""
    filters: Filters = field(default_factory=Filters)
    sort: str = "relevance"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    hits: list[dict[str, Any]]
    next_cursor: str | None


def filters_from(
    *,
    feed: str | None = None,
    tag: str | None = None,
    author: str | None = None,
    lang: str | None = None,
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    content_source: str | None = None,
) -> Filters:
    """Filters from request parameters; empty ones are absent (a form sends them empty)."""
    for name, value, allowed in (
        ("status", status, ArticleStatus),
        ("content_source", content_source, ContentSource),
    ):
        if value and value not in set(allowed):
            raise BadParameter(f"{name}: must be one of {', '.join(allowed)}")
    return Filters(
        feed=_text("feed", feed),
        tag=_text("tag", tag),
        author=_text("author", author),
        language=_text("lang", lang),
        since=_moment("since", since),
        until=_moment("until", until),
        status=status or None,
        content_source=content_source or None,
    )


def text_param(name: str, value: str | None) -> str:
    return _text(name, value) or ""


def _text(name: str, value: str | None) -> str | None:
    if value and "\x00" in value:  # PostgreSQL takes no NUL in text, and no one types one
        raise BadParameter(f"{name}: must not contain a NUL character")
    return value.strip() or None if value else None


def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_moment(value)
    except ValueError:
        raise BadParameter(f"{name}: {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """The key a cursor of ``kind`` holds, each part of the given type."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found, *key = json.loads(raw)
        if found != kind or len(key) != len(types):
            raise ValueError(kind)
        return tuple(_key_part(t, part) for t, part in zip(types, key, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadParameter(
            f"cursor: not a cursor of this listing ({kind}); pass next_cursor as returned"
        ) from None


def _key_part(kind: type, part: Any) -> Any:
    if kind is datetime and isinstance(part, str):
        return parse_moment(part)
    if kind is int and isinstance(part, int) and not isinstance(part, bool) and abs(part) < 2**63:
        return part
    number = isinstance(part, int | float) and not isinstance(part, bool)
    if kind is float and number and math.isfinite(part):
        return float(part)
    raise ValueError(part)


def find(store: Store, query: ArticleQuery) -> Page:
    """One page of articles: a search when there is a query, else the newest."""
    if query.sort not in SORTS:
        raise BadParameter(f"sort: must be one of {', '.join(SORTS)}")
    if not query.q:
        after = None
        if query.cursor:
            after = decode_cursor("newest", query.cursor, (datetime, int))
        rows = store.latest(query.filters, limit=query.limit + 1, after=after)  # type: ignore[arg-type]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        hits = [_listed(article, feed_url) for article, feed_url in rows]
        last = rows[-1][0] if more else None
        key = (last.published or last.created_at, last.id) if last else None
        cursor = encode_cursor("newest", key[0].isoformat(), key[1]) if key and key[0] else None
        return Page(hits, cursor)
    kind = "q-" + query.sort
    after = decode_cursor(kind, query.cursor, (float, int)) if query.cursor else None
    found = store.search(
        query.q,
        query.filters,
        limit=query.limit + 1,
        newest=query.sort == "newest",
        after=after,  # type: ignore[arg-type]
    )
    more = len(found) > query.limit
    found = found[: query.limit]
    hits = [search_record(hit) for hit in found]
    last_hit = found[-1] if more else None
    return Page(hits, encode_cursor(kind, last_hit.rank, last_hit.article.id) if last_hit else None)


def search_record(hit: SearchHit) -> dict[str, Any]:
    """A hit as the API gives it: `ingest search`'s record, with the snippet as plain text
    (matches between ** **) and as safe HTML (matches in <mark>)."""
    return {**hit_record(hit), "snippet_html": str(snippet_html(hit.snippet))}


def snippet_html(snippet: str) -> Markup:
    escaped = str(escape(" ".join(snippet.split())))
    return Markup(escaped.replace(SNIPPET_OPEN, "<mark>").replace(SNIPPET_CLOSE, "</mark>"))


def _listed(article: Any, feed_url: str) -> dict[str, Any]:
    text = " ".join((article.summary or article.text or "").split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    hit = SearchHit(article, feed_url, text, 0.0)
    return search_record(hit)
