"""The read side: archive records for search, show and export, in every output format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from ingest.models import Article
from ingest.search import SNIPPET_CLOSE, SNIPPET_OPEN, Filters, SearchHit
from ingest.store import Store

RECORD_FIELDS = (
    "id",
    "url",
    "final_url",
    "canonical_url",
    "feed_url",
    "guid",
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "site_name",
    "summary",
    "text",
    "content_source",
    "fetched_at",
    "status",
    "error",
)
HIT_FIELDS = ("id", "title", "url", "published", "feed_url", "authors", "language", "snippet")


def parse_moment(text: str) -> datetime:
    """A date or ISO 8601 date-time, as the CLI and the API take them; without a zone it is
    UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def record(article: Article, feed_url: str) -> dict[str, Any]:
    """One article as the JSON object of `show --format json` and `export`."""
    return {
        "id": article.id,
        "url": article.url,
        "final_url": article.final_url,
        "canonical_url": article.canonical_url,
        "feed_url": feed_url,
        "guid": article.guid,
        "title": article.title,
        "authors": list(article.authors),
        "published": _iso(article.published),
        "updated": _iso(article.updated),
        "language": article.language,
        "site_name": article.site_name,
        "summary": article.summary,
        "text": article.text,
        "content_source": article.content_source,
        "fetched_at": _iso(article.fetched_at),
        "status": article.status,
        "error": article.error,
    }


def hit_record(hit: SearchHit, *, mark: tuple[str, str] = ("**", "**")) -> dict[str, Any]:
    """One search hit; the snippet's matches are wrapped in ``mark``."""
    full = record(hit.article, hit.feed_url)
    snippet = hit.snippet.replace(SNIPPET_OPEN, mark[0]).replace(SNIPPET_CLOSE, mark[1])
    return {**{k: full[k] for k in HIT_FIELDS if k in full}, "snippet": " ".join(snippet.split())}


def render_text(article: Article, feed_url: str) -> str:
    """An article as readable text: a header of metadata, then the body."""
    data = record(article, feed_url)
    lines = [data["title"] or "(untitled)", ""]
    for label, key in (
        ("Authors", "authors"),
        ("Published", "published"),
        ("Updated", "updated"),
        ("Site", "site_name"),
        ("Language", "language"),
        ("URL", "canonical_url"),
        ("Feed", "feed_url"),
        ("Status", "status"),
    ):
        value = data[key] or (data["final_url"] or data["url"] if key == "canonical_url" else None)
        if isinstance(value, list):
            value = ", ".join(value)
        if value:
            lines.append(f"{label + ':':<11}{value}")
    if article.content_source == "feed":
        lines.append(f"Text:      from the feed ({_why_feed(article)})")
    return "\n".join([*lines, "", data["text"] or ""]) + "\n"


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
            flat = {k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()}
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


def export_records(store: Store, filters: Filters) -> Iterator[dict[str, Any]]:
    """Every archived article matching ``filters``, oldest first, streamed."""
    for article, feed_url in store.iter_articles(filters):
        yield record(article, feed_url)
