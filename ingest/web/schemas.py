"""What the API answers, as pydantic models: the OpenAPI schema is generated from them, and
every answer is checked against it (the fuzz test holds the server to it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    message: str = Field(description="What was wrong, for people.")
    errors: list[str] = Field(default_factory=list, description="Each bad parameter, if any.")


class EnclosureOut(BaseModel):
    """A media file the article's entry carries, as its feed describes it (never fetched)."""

    url: str
    type: str | None = Field(description="MIME type, as the feed gives it")
    length: int | None = Field(description="Bytes, as the feed says")
    title: str | None
    duration: float | None = Field(description="Seconds")


class ArticleOut(BaseModel):
    """An article's whole record, as `ingest export` and `ingest show --format json` write it."""

    id: int
    url: str | None
    final_url: str | None
    canonical_url: str | None
    feed_url: str = Field(description="The feed that listed it first.")
    feed_urls: list[str] = Field(description="Every feed that listed it, that one first.")
    guid: str | None
    title: str | None
    authors: list[str]
    published: str | None = Field(description="ISO 8601, UTC")
    updated: str | None
    language: str | None
    site_name: str | None
    summary: str | None
    text: str | None
    enclosures: list[EnclosureOut] = Field(
        description="Podcast and media enclosures of its entry (RSS enclosure, Atom "
        'link rel="enclosure", JSON Feed attachments)'
    )
    content_source: str = Field(description="page (extracted) or feed (the feed's own)")
    extractor: str | None = Field(
        description="What made the text: ingest's extraction rules and trafilatura's version "
        "(null: not extracted, or archived before this was recorded)"
    )
    fetched_at: str | None
    status: str = Field(description="pending, ok or failed")
    error: str | None
    checked_at: str | None = Field(description="When its page was last looked at again")
    removed_at: str | None = Field(description="When its page answered 404 or 410, if it did")

    story_id: int | None = Field(
        description="Its story (the same story published by several sites): the id of the "
        "story's first article; null for a text too short to tell, or not linked yet."
    )


class VersionSummaryOut(BaseModel):
    """One state of an article, as its page was seen (`ingest history`)."""

    number: int = Field(description="1 for the first state, then in order")
    title: str | None
    authors: list[str]
    fetched_at: str | None = Field(description="When the page was seen so; ISO 8601, UTC")
    reason: str = Field(description="first, changed (a re-check) or reextracted")
    chars_added: int = Field(description="Against the version before, spaces not counted")
    chars_removed: int
    capture_id: int | None = Field(description="The raw page it came from, if kept")


class VersionOut(VersionSummaryOut):
    """One state of an article, with its text."""

    text: str | None


class HistoryOut(BaseModel):
    """An article's versions, oldest first, and where its page stands."""

    id: int
    url: str | None
    title: str | None
    checked_at: str | None
    next_check_at: str | None = Field(description="When its page is next looked at; null: never")
    removed_at: str | None
    versions: list[VersionSummaryOut]


class PieceOut(BaseModel):
    op: Literal["equal", "delete", "insert"]
    text: str


class TitleChangeOut(BaseModel):
    from_: str | None = Field(alias="from")
    to: str | None


class DiffOut(BaseModel):
    """A word diff between two versions: runs of kept, removed and added text; joining the
    runs that are not inserts gives the old text back, those that are not deletes the new."""

    id: int
    from_: VersionSummaryOut = Field(alias="from")
    to: VersionSummaryOut
    title: TitleChangeOut
    chars_added: int
    chars_removed: int
    pieces: list[PieceOut]


class HitOut(BaseModel):
    """An article found: `ingest search`'s record."""

    id: int
    title: str | None
    url: str | None = Field(description="Its clean URL: canonical, else final, no tracking.")
    published: str | None
    feed_url: str
    authors: list[str]
    language: str | None
    story_id: int | None = Field(description="Its story: the id of the story's first article.")
    snippet: str = Field(description="Plain text; the matched words between ** and **.")
    snippet_html: str = Field(description="The snippet as escaped HTML, matches in <mark>.")


class ArticlesOut(BaseModel):
    articles: list[HitOut]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null on the last page."
    )


class ChangeOut(ArticleOut):
    change: str = Field(description="This change's cursor: read on after it.")


class RemovedOut(BaseModel):
    """An article the archive no longer has: a mirror removes it too."""

    id: int
    status: Literal["removed"]
    merged_into: int | None = Field(
        description="The article it was merged into (the same page), whose feeds grew."
    )
    removed_at: str | None = Field(description="ISO 8601, UTC")
    change: str = Field(description="This change's cursor: read on after it.")


class ChangesOut(BaseModel):
    articles: list[ChangeOut | RemovedOut]
    next_cursor: str = Field(
        description="Pass as cursor next time; with no articles, it is the cursor given."
    )


class FeedOut(BaseModel):
    id: int
    name: str | None
    url: str
    title: str | None
    site_url: str | None
    tags: list[str] = Field(description="The config's tags for this feed.")
    active: bool
    last_polled_at: str | None
    next_poll_at: str | None
    interval_seconds: float | None
    last_status: str | None
    error_count: int
    last_error: str | None
    articles: int = Field(description="Articles this feed listed, whatever their status.")
    articles_ok: int
    articles_pending: int
    articles_failed: int
    last_article_at: str | None = Field(description="When its newest article was stored.")


class DayOut(BaseModel):
    day: str = Field(description="YYYY-MM-DD, UTC")
    feed_id: int
    articles: int = Field(description="Articles stored that day first listed by the feed.")


class StatsOut(BaseModel):
    feeds: dict[str, int]
    articles: dict[str, int]
    failures_by_reason: dict[str, int]
    recent: dict[str, int | str | None]
    versions: dict[str, int] = Field(
        description="Articles whose page changed, versions kept, pages gone (404/410), "
        "articles still re-checked and re-checks due now."
    )
    articles_per_day: list[DayOut] = Field(description="The last 30 days.")
