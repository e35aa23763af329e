"""The read side: archive records for search, show and export, in every output format.

Two kinds of URL: an article's *record* (`show --format json`, `export`) carries its URLs as
the archive holds them (``url`` the feed's link as given, tracking parameters and all;
``final_url``; ``canonical_url``), since they are data; where the article's URL is *shown*
(`show`'s header, a search hit's ``url``) it is `article_url`, the one clean URL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from ingest.browse import Removal
from ingest.changes import chars_changed, word_diff
from ingest.entryparts import url_key
from ingest.errors import NotFoundError, UsageError
from ingest.models import Article, Feed, Version
from ingest.search import SNIPPET_CLOSE, SNIPPET_OPEN, Filters, SearchHit
from ingest.store import Store

RECORD_FIELDS = (
    "id",
    "url",
    "final_url",
    "canonical_url",
    "feed_url",
    "feed_urls",
    "guid",
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "site_name",
    "summary",
    "text",
    "enclosures",
    "content_source",
    "extractor",
    "fetched_at",
    "status",
    "error",
    "checked_at",
    "removed_at",
    "story_id",
)
EXPORT_BATCH = 500  # articles whose feeds are read in one query
HIT_FIELDS = (
    "id",
    "title",
    "url",
    "published",
    "feed_url",
    "authors",
    "language",
    "story_id",
    "snippet",
)


def parse_moment(text: str) -> datetime:
    """A date or ISO 8601 date-time, as the CLI and the API take them; without a zone it is
    UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def feed_record(feed: Feed) -> dict[str, Any]:
    """A feed as `ingest feeds --format json` and the API give it."""
    return {
        "id": feed.id,
        "name": feed.name,
        "url": feed.url,
        "title": feed.title,
        "site_url": feed.site_url,
        "tags": list(feed.tags),
        "active": feed.active,
        "last_polled_at": _iso(feed.last_polled_at),
        "next_poll_at": _iso(feed.next_poll_at),
        "interval_seconds": feed.interval,
        "last_status": feed.last_status,
        "error_count": feed.error_count,
        "last_error": feed.last_error,
    }


def article_url(article: Article) -> str | None:
    """The article's URL as shown to people: its canonical URL, else where its link led, else
    the link, normalised with tracking parameters (``utm_*``, ``fbclid``, ...) dropped; a post
    on a page of several keeps its ``#fragment``."""
    if article.url_key and "#" in article.url_key:
        return article.url_key  # a post: its page's canonical URL would name the whole page
    url = article.canonical_url or article.final_url or article.url
    return url_key(url) if url else None


def record(article: Article, feed_urls: list[str]) -> dict[str, Any]:
    """One article as the JSON object of `show --format json` and `export`: ``feed_url`` the
    feed that listed it first, ``feed_urls`` every feed that did."""
    return {
        "id": article.id,
        "url": article.url,
        "final_url": article.final_url,
        "canonical_url": article.canonical_url,
        "feed_url": feed_urls[0] if feed_urls else None,
        "feed_urls": feed_urls,
        "guid": article.guid,
        "title": article.title,
        "authors": list(article.authors),
        "published": _iso(article.published),
        "updated": _iso(article.updated),
        "language": article.language,
        "site_name": article.site_name,
        "summary": article.summary,
        "text": article.text,
        "enclosures": [dict(item) for item in article.enclosures],
        "content_source": article.content_source,
        "extractor": article.extractor,
        "fetched_at": _iso(article.fetched_at),
        "status": article.status,
        "error": article.error,
        "checked_at": _iso(article.checked_at),  # its page last looked at again for changes
        "removed_at": _iso(article.removed_at),  # its page answered 404 or 410 since
        # The story it is a copy of (`ingest.storyindex`): its first article's id.
        "story_id": article.story_id,
    }


def copy_record(article: Article, feed_url: str) -> dict[str, Any]:
    """Another article of a story, as `show` lists it: where it was published and its URL."""
    return {
        "id": article.id,
        "site_name": article.site_name,
        "feed_url": feed_url,
        "title": article.title,
        "url": article_url(article),
        "published": _iso(article.published),
    }


def removal_record(removal: Removal) -> dict[str, Any]:
    """An article the archive no longer has, as a mirror reads it among the changes."""
    return {
        "id": removal.article_id,
        "status": "removed",
        "merged_into": removal.merged_into,
        "removed_at": _iso(removal.removed_at),
    }


def hit_record(hit: SearchHit, *, mark: tuple[str, str] = ("**", "**")) -> dict[str, Any]:
    """One search hit; the snippet's matches are wrapped in ``mark``."""
    full = record(hit.article, [hit.feed_url])
    full["url"] = article_url(hit.article)
    snippet = hit.snippet.replace(SNIPPET_OPEN, mark[0]).replace(SNIPPET_CLOSE, mark[1])
    found = {**{k: full[k] for k in HIT_FIELDS if k in full}, "snippet": " ".join(snippet.split())}
    if hit.copies is not None:  # one hit a story (`search --collapse`)
        found["copies"] = hit.copies
    return found


def render_text(
    article: Article, feed_urls: list[str], copies: Sequence[tuple[Article, str]] = ()
) -> str:
    """An article as readable text: a header of metadata (its clean URL, every feed that
    listed it, its copies on other sites), then the body."""
    data = record(article, feed_urls)
    data["url"] = article_url(article)
    data["feed_urls"] = ("\n" + " " * 11).join(feed_urls)  # one a line, under each other
    data["enclosures"] = ("\n" + " " * 11).join(_media(item) for item in article.enclosures)
    lines = [data["title"] or "(untitled)", ""]
    for label, key in (
        ("Authors", "authors"),
        ("Published", "published"),
        ("Updated", "updated"),
        ("Site", "site_name"),
        ("Language", "language"),
        ("URL", "url"),
        ("Feeds" if len(feed_urls) > 1 else "Feed", "feed_urls"),
        ("Status", "status"),
        ("Extractor", "extractor"),
        ("Media", "enclosures"),
    ):
        value = data[key]
        if isinstance(value, list):
            value = ", ".join(value)
        if value:
            lines.append(f"{label + ':':<11}{value}")
    if article.content_source == "feed":
        lines.append(f"Text:      from the feed ({_why_feed(article)})")
    if copies:
        lines.append(f"Copies:    {len(copies)}, the same story elsewhere:")
        for copy, feed_url in copies:
            lines.append(f"  {copy.id:>6}  {_where(copy, feed_url)}  {copy.title or '(untitled)'}")
            lines.append(f"{'':>10}{article_url(copy) or ''}")
    return "\n".join([*lines, "", data["text"] or ""]) + "\n"


def _where(article: Article, feed_url: str) -> str:
    """Where a copy was published: its site's name, else its feed's host."""
    return article.site_name or urlsplit(feed_url).hostname or feed_url


def media_note(item: dict[str, Any]) -> str:
    """What the feed says of an enclosure: its type, size, duration and title."""
    about = [item.get("type") or ""]
    if item.get("length"):
        size = item["length"]  # bytes; a photo of 246 bytes is not "0.0 MB"
        about.append(
            f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{max(1, round(size / 1e3))} KB"
        )
    if item.get("duration") is not None:
        minutes, seconds = divmod(round(item["duration"]), 60)
        hours, minutes = divmod(minutes, 60)
        about.append(f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}")
    if item.get("title"):
        about.append(f"“{item['title']}”")
    return ", ".join(a for a in about if a)


def _media(item: dict[str, Any]) -> str:
    """An enclosure on one line: its URL, then what the feed says of it."""
    said = media_note(item)
    return f"{item['url']} ({said})" if said else str(item["url"])


def _why_feed(article: Article) -> str:
    if article.shared_key:
        return "the entry's own: its link is shared by several entries"
    if article.status == "ok" and article.url_key and "#" in article.url_key:
        return "the entry's own: the page does not hold this post"
    return "the page was not extracted"


def write_records(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Stream records as ``json`` (one array), ``jsonl`` or ``csv``; returns how many."""
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    for chunk in format_records(counted(), fmt):
        out.write(chunk)
    return count


def format_records(rows: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """Records as ``json`` (one array), ``jsonl`` or ``csv`` text, a record at a time (for
    a file or an HTTP response alike)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            flat = {k: _cell(v) for k, v in row.items()}
            if writer is None:
                writer = csv.DictWriter(buffer, fieldnames=list(flat))
                writer.writeheader()
            writer.writerow(flat)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        return
    if fmt == "json":
        yield "["
        first = True
        for row in rows:
            yield ("" if first else ",") + "\n" + json.dumps(row, ensure_ascii=False)
            first = False
        yield "]\n" if first else "\n]\n"
        return
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def _cell(value: Any) -> Any:
    """A record's value in a CSV cell: a list of names joined by "; ", a list of objects
    (enclosures) as JSON."""
    if not isinstance(value, list):
        return value
    if all(isinstance(item, str) for item in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False)


def export_records(
    store: Store, filters: Filters, *, versions: bool = False
) -> Iterator[dict[str, Any]]:
    """Every archived article matching ``filters``, oldest first, streamed (the feeds that
    listed them read a batch at a time). With ``versions``, each record carries its
    ``versions`` (every state, with its text, once its page changed; [] while it never did)."""
    batch: list[tuple[Article, str]] = []
    for row in store.iter_articles(filters):
        batch.append(row)
        if len(batch) == EXPORT_BATCH:
            yield from _records(store, batch, versions)
            batch = []
    yield from _records(store, batch, versions)


def _records(
    store: Store, batch: Sequence[tuple[Article, str]], versions: bool
) -> Iterator[dict[str, Any]]:
    kept = store.versions_of([a.id for a, _ in batch if a.id]) if versions else {}
    for article, feed_urls in with_feeds(store, batch):
        data = record(article, feed_urls)
        if versions:
            data["versions"] = [version_record(v) for v in kept.get(article.id or 0, [])]
        yield data


def with_feeds(
    store: Store, rows: Sequence[tuple[Article, str]]
) -> list[tuple[Article, list[str]]]:
    """Articles as the store reads them (each with the feed that listed it first) with every
    feed that listed them, as `record` takes them: one query for them all."""
    listed = store.listed_by([a.id for a, _ in rows if a.id is not None]) if rows else {}
    return [
        (article, list(dict.fromkeys([first, *listed.get(article.id or 0, ())])))
        for article, first in rows
    ]


def version_record(version: Version, *, text: bool = True) -> dict[str, Any]:
    """One state of an article (`ingest history`, the API); ``text``: with its text."""
    data: dict[str, Any] = {
        "number": version.number,
        "title": version.title,
        "authors": list(version.authors),
        "fetched_at": _iso(version.fetched_at),
        "reason": version.reason,
        "chars_added": version.chars_added,
        "chars_removed": version.chars_removed,
        "capture_id": version.capture_id,
    }
    if text:
        data["text"] = version.text
    return data


def history_record(article: Article, versions: Sequence[Version]) -> dict[str, Any]:
    """An article's versions, oldest first, with where its page stands now."""
    return {
        "id": article.id,
        "url": article_url(article),
        "title": article.title,
        "checked_at": _iso(article.checked_at),
        "next_check_at": _iso(article.next_check_at),
        "removed_at": _iso(article.removed_at),
        "versions": [version_record(v, text=False) for v in versions],
    }


def pick_versions(
    versions: Sequence[Version], first: int | None, second: int | None
) -> tuple[Version, Version]:
    """The two versions a diff compares: ``first`` and ``second`` by number, or the last
    two (one version alone is compared with itself). NotFoundError names the ones there are."""
    if not versions:
        raise NotFoundError("this article has no archived text, so no versions")
    by_number = {v.number: v for v in versions}
    if first is None and second is None:
        return versions[-2] if len(versions) > 1 else versions[-1], versions[-1]
    if first is None or second is None:
        raise UsageError("give two version numbers, or none for the last change")
    missing = [n for n in (first, second) if n not in by_number]
    if missing:
        have = f"1 to {len(versions)}" if len(versions) > 1 else "only 1"
        raise NotFoundError(f"no version {missing[0]} of this article (it has {have})")
    return by_number[first], by_number[second]


def diff_record(article: Article, old: Version, new: Version) -> dict[str, Any]:
    """The word diff between two versions, as runs of kept, removed and added text."""
    pieces = word_diff(old.text, new.text)
    added, removed = chars_changed(pieces)
    return {
        "id": article.id,
        "from": version_record(old, text=False),
        "to": version_record(new, text=False),
        "title": {"from": old.title, "to": new.title},
        "chars_added": added,
        "chars_removed": removed,
        "pieces": [{"op": p.op, "text": p.text} for p in pieces],
    }
