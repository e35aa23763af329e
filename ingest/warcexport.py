"""``ingest export --format warc``: the archive's kept pages as a WARC 1.1 file (`ingest.warc`).

Every capture of every selected article, oldest first (an article kept at several times has
several: one per version), becomes a request, a response, a conversion (its clean text: the
text of the version made from it, if any) and a metadata record (its record as ``ingest
export --format jsonl`` writes it, with that version's number, title and text). Streamed: a
batch of articles and their captures is read at a time (`Store.iter_capture_batches`), each
record written as it is made, so memory does not grow with the archive. An article with no
kept page (a failed or pending one, a feed's own entry, one fetched with ``extract.keep_raw``
off) has nothing to write and is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from importlib.metadata import version
from typing import IO

from ingest import __version__
from ingest.query import record, with_feeds
from ingest.search import Filters
from ingest.store import SCHEMA_REVISION, Store
from ingest.warc import WarcCapture, WarcWriter

SPEC = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"


@dataclass
class WarcExport:
    """What an export wrote."""

    articles: int = 0  # articles selected
    captures: int = 0  # captures written: a response record each
    without_capture: int = 0  # selected articles with no kept page


def describe(filters: Filters) -> str:
    """The filters an export was made with, as one line ("none" for the whole archive)."""
    values = ((f.name, getattr(filters, f.name)) for f in fields(filters))
    said = [
        f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
        for name, value in values
        if value is not None
    ]
    return "; ".join(said) or "none"


def export_warc(
    store: Store,
    filters: Filters,
    out: IO[bytes],
    *,
    filename: str,
    gzip: bool = True,
    progress: Callable[[WarcExport], None] | None = None,
) -> WarcExport:
    """Write the captures of the articles matching ``filters`` to ``out`` as a WARC file
    named ``filename``; ``progress`` is called after each batch of articles."""
    filters = store.checked(filters)
    writer = WarcWriter(out, gzip=gzip)
    writer.warcinfo(
        filename,
        {
            "software": f"ingest/{__version__} (warcio/{version('warcio')})",
            "format": "WARC File Format 1.1",
            "conformsTo": SPEC,
            "description": (
                "News articles archived by ingest: for each kept page, its request, response, "
                "clean text (conversion) and the article's record (metadata, application/json)"
            ),
            "ingest-archive": store.url,
            "ingest-schema": SCHEMA_REVISION,
            "ingest-filters": describe(filters),
        },
    )
    done = WarcExport()
    for batch in store.iter_capture_batches(filters):
        listed = with_feeds(store, [(article, feed) for article, feed, _ in batch])
        versions = store.versions_of([article.id for article, _, _ in batch if article.id])
        for (article, feed_urls), (_, _, captures) in zip(listed, batch, strict=True):
            done.articles += 1
            if not captures:
                done.without_capture += 1
                continue
            article_record = record(article, feed_urls)
            # A capture a version was made from converts to that version's text and title;
            # the others (an article that never changed) to the article's.
            made = {v.capture_id: v for v in versions.get(article.id or 0, ()) if v.capture_id}
            for capture in captures:
                state = made.get(capture.id)
                text = state.text if state is not None else article.text
                said = article_record
                if state is not None:
                    said = {**article_record, "title": state.title, "text": state.text}
                    said["version"] = state.number
                writer.capture(
                    WarcCapture(
                        url=capture.url,
                        fetched_at=capture.fetched_at or article.fetched_at,  # type: ignore[arg-type]
                        status=capture.status,
                        headers=dict(capture.headers),
                        body=store.capture_body(capture),
                        request_headers=capture.request_headers,
                        record=said,
                        text=text,
                    )
                )
                done.captures += 1
        if progress is not None:
            progress(done)
    return done
