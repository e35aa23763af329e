"""The small typed values the stages pass along: parsed feeds, fetched pages, extracted articles.

Plain frozen dataclasses with no database import, so the extraction workers (which receive and
return them) start without loading SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.stories import Fingerprint


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Enclosure:
    """A media file an entry carries (a podcast's episode, a video): kept with the entry as
    the feed describes it, never downloaded."""

    url: str
    type: str | None = None  # the MIME type the feed gives
    length: int | None = None  # bytes, as the feed says (None: not given, or 0)
    title: str | None = None
    duration: float | None = None  # seconds

    def to_dict(self) -> dict[str, Any]:
        """As the archive stores it and records show it (every key, null when unknown)."""
        return {
            "url": self.url,
            "type": self.type,
            "length": self.length,
            "title": self.title,
            "duration": self.duration,
        }


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of a parsed feed, links absolute, times UTC."""

    key: str
    guid: str | None
    link: str | None
    title: str | None
    summary: str | None
    content: str | None  # the entry's own text (plain, paragraphs separated by blank lines)
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    enclosures: tuple[Enclosure, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    language: str | None
    entries: tuple[FeedEntry, ...]
    problem: str | None = None  # what was wrong with a malformed feed whose entries were saved
    ttl: str | None = None  # <ttl>, minutes
    update_period: str | None = None  # sy:updatePeriod
    update_frequency: str | None = None  # sy:updateFrequency


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched HTTP response, its body size-checked and decoded, unless ``encoding`` names
    the Content-Encoding it is still in (pages travel compressed to the extraction workers,
    which inflate them under the same cap)."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime
    encoding: str = ""  # "" once decoded; else "gzip", "deflate", ...
    # The headers of the request that got this answer (the last one, after redirects), as
    # sent: what a WARC's request record holds. None where unknown (an archive's old capture).
    request_headers: dict[str, str] | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    """The clean article extraction made of a page, with metadata merged."""

    text: str
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    site_name: str | None = None
    summary: str | None = None
    canonical_url: str | None = None
    # False: the page did not hold this post (its #fragment), the text is the feed entry's own.
    from_page: bool = True
    # The text's fingerprint (`ingest.stories`), made in the worker: the main process only
    # looks its copies up. None: not made, or a text too short to tell.
    fingerprint: Fingerprint | None = None
    extractor: str | None = None  # what made it (`ingest.extract.EXTRACTOR`)


@dataclass(frozen=True, slots=True)
class Hints:
    """What the feed said about an article: the fallback for metadata the page lacks."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    summary: str | None = None
    content: str | None = None  # the entry's own text: set for a post (see `PageJob.fragment`)


@dataclass(frozen=True, slots=True)
class PageJob:
    """An article whose page is to be fetched."""

    article_id: int
    url: str
    attempts: int
    hints: Hints = field(default_factory=Hints)
    # A post on a page of several: its anchor there (the link's normalised fragment).
    fragment: str | None = None
    # An archived article's page looked at again for changes (`ingest.versions`).
    recheck: Recheck | None = None


@dataclass(frozen=True, slots=True)
class Recheck:
    """What a re-check of an archived page asks with: the validators of its last answer."""

    etag: str | None = None
    last_modified: str | None = None
