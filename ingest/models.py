"""The archive's tables (SQLModel); the values stages pass along are in `ingest.records`.

Tables: ``feeds`` (one per configured feed, with its polling state), ``articles`` (one per
article, whatever feeds or URLs led to it), ``entries`` (which feed listed which article, under
which entry identity), ``captures`` (the raw HTTP response a page was extracted from) and
``hosts`` (hosts that asked us to back off) and ``skipped_urls`` (what a sitemap's first poll
left unfetched). The schema changes only through the migrations in
``ingest/migrations``.
Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always returned aware in UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the archive; use aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def _time(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


class ArticleStatus(StrEnum):
    PENDING = "pending"  # recorded from a feed, page not fetched yet
    OK = "ok"  # clean text stored
    FAILED = "failed"  # page failed; the feed's own content stands in until a retry works


class ContentSource(StrEnum):
    PAGE = "page"  # text extracted from the article page
    # text is the feed entry's own content: no link, a link shared by several entries, a page
    # without the post a #fragment names, or the page failed
    FEED = "feed"


class Feed(SQLModel, table=True):
    __tablename__ = "feeds"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True)
    name: str | None = None
    title: str | None = None
    site_url: str | None = None
    language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_polled_at: datetime | None = _time()
    last_status: str | None = None  # "ok", "not_modified" or an error reason
    error_count: int = 0
    last_error: str | None = None
    next_poll_at: datetime | None = _time(index=True)
    created_at: datetime | None = _time()
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    fixed_interval: float | None = None  # seconds, from the config; None: adaptive
    # The config's tags (migration 0010): `--tag` selects the articles of feeds that have one.
    tags: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    interval: float | None = None  # seconds, the interval the scheduler chose last
    # The worker polling it now, until when (a crashed worker's lease runs out).
    lease_owner: str | None = None
    lease_until: datetime | None = _time()


class Host(SQLModel, table=True):
    """A host that asked us to back off (429/503 with Retry-After): every feed and page on it
    waits until ``blocked_until``."""

    __tablename__ = "hosts"

    host: str = Field(primary_key=True)
    blocked_until: datetime | None = _time()
    reason: str | None = None
    updated_at: datetime | None = _time()
    # Epoch seconds before which no worker may send it another request (its delay, shared).
    next_request_at: float | None = None


# Pages some worker may still fetch: pending, or failed with a retry to come. Written out
# the same in the claim query, so that SQLite and PostgreSQL both use the partial index.
CLAIMABLE = "status = 'pending' OR (status = 'failed' AND next_attempt_at IS NOT NULL)"


class Article(SQLModel, table=True):
    __tablename__ = "articles"
    __table_args__ = (
        # The page queue, claimed a host at a time in turn: small, however many articles
        # are archived.
        sa.Index(
            "ix_articles_claim",
            "host",
            "id",
            postgresql_where=sa.text(CLAIMABLE),
            sqlite_where=sa.text(CLAIMABLE),
        ),
        # The leases a worker holds, renewed every tick: found without reading every article.
        sa.Index(
            "ix_articles_lease",
            "lease_owner",
            postgresql_where=sa.text("lease_owner IS NOT NULL"),
            sqlite_where=sa.text("lease_owner IS NOT NULL"),
        ),
        # Articles that are an entry's own (its link shared by several entries of a feed):
        # one per shared link and guid, however many feeds list it (migration 0006).
        sa.Index(
            "ix_articles_shared",
            "shared_key",
            "guid",
            unique=True,
            postgresql_where=sa.text("shared_key IS NOT NULL"),
            sqlite_where=sa.text("shared_key IS NOT NULL"),
        ),
        # SQLite only (migration 0005): what search filters read of each full-text match.
        sa.Index(
            "ix_articles_search_filters", "id", "language", "published", "created_at", "authors"
        ).ddl_if(dialect="sqlite"),
        # Mirrors read what changed after a point in this order (migration 0008).
        sa.Index("ix_articles_changes", "change_seq", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The article's identity: its normalised link (tracking parameters and fragment dropped),
    # with the fragment for a post on a page of several (``page#post``); NULL without a link
    # that identifies it (no link, or one shared by several entries: see ``shared_key``).
    url_key: str | None = Field(default=None, unique=True)
    # The link's key when several entries of a feed share it: the article is the entry's own,
    # found by this key and its guid; its text is the entry's (nothing is fetched).
    shared_key: str | None = None
    url: str | None = None
    host: str | None = None  # the host of `url`: the frontier's per-host queues
    final_url: str | None = None
    canonical_url: str | None = Field(default=None, index=True)
    feed_id: int = Field(foreign_key="feeds.id", index=True)
    guid: str | None = None
    title: str | None = None
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The media files its entry carries (podcast episodes, videos), as the feed describes them:
    # url, type, length, title, duration (`ingest.records.Enclosure`); never downloaded.
    enclosures: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    published: datetime | None = _time(index=True)
    updated: datetime | None = _time()
    language: str | None = Field(default=None, index=True)
    site_name: str | None = None
    summary: str | None = None
    text: str | None = None
    content_source: str = ContentSource.FEED
    content_hash: str | None = None
    # What made the text (migration 0017): `ingest.extract.EXTRACTOR`, the extraction rules'
    # version and trafilatura's; NULL when unknown (archived before) or not extracted (the
    # feed's own text). `ingest reextract --all` redoes what an older one made.
    extractor: str | None = None
    status: str = Field(default=ArticleStatus.PENDING, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = _time(index=True)
    error: str | None = None  # reason slug of the last failure
    error_message: str | None = None
    fetched_at: datetime | None = _time()
    created_at: datetime | None = _time(index=True)
    # The worker fetching its page now, until when (a crashed worker's lease runs out).
    lease_owner: str | None = None
    lease_until: datetime | None = _time()
    # Set by triggers whenever the article's record changes (migration 0008): SQLite's next
    # number, PostgreSQL's writing transaction id. Never written by the code.
    change_seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger))


class RemovedArticle(SQLModel, table=True):
    """An article row that is gone (a pending article whose page turned out to be one
    already archived: its entries moved to that one, ``merged_into``), written by a trigger
    (migration 0010) so that a mirror reading the changes removes it too."""

    __tablename__ = "removed_articles"
    __table_args__ = (sa.Index("ix_removed_articles_changes", "change_seq", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int  # no foreign key: the row it named is gone
    merged_into: int | None = None
    # In the articles' change sequence (`Article.change_seq`), set by the trigger.
    change_seq: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    removed_at: datetime | None = _time()


class Entry(SQLModel, table=True):
    """A feed listed an article: how the same article seen twice is recognised."""

    __tablename__ = "entries"
    __table_args__ = (sa.UniqueConstraint("feed_id", "entry_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id")
    entry_key: str  # sha256 of guid, else link, else title + date
    article_id: int = Field(foreign_key="articles.id", index=True)
    seen_at: datetime | None = _time()


class Capture(SQLModel, table=True):
    """The raw response an article was extracted from, zlib-compressed."""

    __tablename__ = "captures"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", index=True)
    url: str
    status: int
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    fetched_at: datetime | None = _time()


class SkippedUrl(SQLModel, table=True):
    """A URL a sitemap listed without a date and its first poll left unfetched (past
    ``sitemaps.first_undated``): remembered, so that later polls take only the URLs that
    appeared since (`ingest.sitemaps`)."""

    __tablename__ = "skipped_urls"
    __table_args__ = (sa.UniqueConstraint("feed_id", "entry_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id")
    entry_key: str  # as `Entry.entry_key`: sha256 of the normalised URL
    seen_at: datetime | None = _time()
