"""The archive's tables (SQLModel); the values stages pass along are in `ingest.records`.

Tables: ``feeds`` (one per configured feed, with its polling state), ``articles`` (one per
article, whatever feeds or URLs led to it), ``entries`` (which feed listed which article, under
which entry identity), ``captures`` (the raw HTTP response a page was extracted from) with
``capture_bodies`` (each page body once, however many captures share it), ``hosts`` (hosts
that asked us to back off), ``skipped_urls`` (what a sitemap's first poll left unfetched),
``versions`` (every state of an article whose page changed), ``story_fingerprints`` and
``story_bands`` (how copies of a story find each other). The schema changes only through the
migrations in ``ingest/migrations``.
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
        # The re-check queue (migration 0014): recent articles only.
        sa.Index(
            "ix_articles_recheck",
            "next_check_at",
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
        ),
        # An article's copies, and one article a story (migration 0017).
        sa.Index("ix_articles_story", "story_id"),
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
    # What made the text (migration 0018): `ingest.extract.EXTRACTOR`, the extraction rules'
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
    # Re-checks of its page (migration 0014): the last, the next (None: no more), when its
    # text or title last changed (the schedule slows as that ages), the page's validators for
    # a conditional request, and when the page answered 404 or 410.
    checked_at: datetime | None = _time()
    next_check_at: datetime | None = _time()
    changed_at: datetime | None = _time()
    etag: str | None = None
    last_modified: str | None = None
    removed_at: datetime | None = _time()
    # Set by triggers whenever the article's record changes (migration 0008): SQLite's next
    # number, PostgreSQL's writing transaction id. Never written by the code.
    change_seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    # The story it is a copy of (`ingest.storyindex`): the id of the story's first article
    # (its own when it is the first); NULL until fingerprinted, and for a text too short.
    story_id: int | None = None


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


class Version(SQLModel, table=True):
    """One state of an article whose page changed (migration 0014): every state, the first
    too, numbered from 1; an article that never changed has none (it is its only state)."""

    __tablename__ = "versions"
    __table_args__ = (
        sa.UniqueConstraint("article_id", "number", name="uq_versions_article_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(
        sa_column=Column(sa.ForeignKey("articles.id", ondelete="CASCADE"), nullable=False)
    )
    number: int
    title: str | None = None
    text: str | None = None
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    content_hash: str | None = None
    fetched_at: datetime | None = _time()
    capture_id: int | None = None  # the raw page it was made from, if kept
    chars_added: int = 0  # against the version before
    chars_removed: int = 0
    reason: str  # "first", "changed" (a re-check), "reextracted"
    created_at: datetime | None = _time()


class Entry(SQLModel, table=True):
    """A feed listed an article: how the same article seen twice is recognised."""

    __tablename__ = "entries"
    __table_args__ = (sa.UniqueConstraint("feed_id", "entry_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feeds.id")
    entry_key: str  # sha256 of guid, else link, else title + date
    article_id: int = Field(foreign_key="articles.id", index=True)
    seen_at: datetime | None = _time()


class CaptureBody(SQLModel, table=True):
    """A page body as received (Content-Encoding undone), stored once whatever the number of
    captures that share it: addressed by its SHA-256, compressed (`ingest.captures`)."""

    __tablename__ = "capture_bodies"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True)  # hex digest of the decoded body
    size: int  # decoded bytes
    body: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))


class Capture(SQLModel, table=True):
    """The raw response an article was extracted from, with the request that got it. Its
    body is ``body_id``'s, shared; captures made before revision 0015 hold theirs inline in
    ``body`` (a zlib stream), and the shared ones an empty ``body``. Read it with
    `Store.capture_body`, whatever its kind."""

    __tablename__ = "captures"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", index=True)
    url: str
    status: int
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # NOT NULL as the first schema made it: SQLite could relax that only by copying the whole
    # table, which the upgrade of a large archive must not do.
    body: bytes = Field(default=b"", sa_column=Column(sa.LargeBinary, nullable=False))
    body_id: int | None = Field(default=None, foreign_key="capture_bodies.id", index=True)
    fetched_at: datetime | None = _time()
    # The request's headers as sent (migration 0016), for a WARC's request record; None for
    # captures made before they were kept.
    request_headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))


class StoryFingerprint(SQLModel, table=True):
    """An article's MinHash signature (`ingest.stories`): what a candidate copy is verified
    against."""

    __tablename__ = "story_fingerprints"

    article_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    signature: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    shingles: int  # distinct shingles of its text: with the signature, how much it holds


class StoryBand(SQLModel, table=True):
    """An LSH band key of an article's signature: articles sharing a key are candidate copies,
    found by the primary key's index whatever the archive's size."""

    __tablename__ = "story_bands"
    __table_args__ = {"sqlite_with_rowid": False}

    band: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    article_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


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
