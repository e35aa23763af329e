"""What is archived: a feed's entries recorded once, a page's clean article saved (merged into
the article it duplicates), a page's failure recorded with its retry time.

Identity lives in the schema: ``articles.url_key`` (the normalised link) and
``entries (feed_id, entry_key)`` are unique, and every insert is insert-if-new, so running the
same fetch twice, or reaching one article from two feeds, stores it once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import urldefrag

import sqlalchemy as sa
from sqlmodel import col

from ingest.captures import PackedBody
from ingest.capturestore import CaptureStore
from ingest.entries import Lease, Recorded, Statements, content_hash, lock_keys, record
from ingest.entryparts import url_key
from ingest.errors import FetchError
from ingest.models import (
    Article,
    ArticleStatus,
    Capture,
    ContentSource,
    Entry,
    Feed,
    RemovedArticle,
    SkippedUrl,
)
from ingest.records import ExtractedArticle, FeedEntry, Page, PageJob, utcnow
from ingest.schedule import next_check
from ingest.stories import fingerprint
from ingest.storyindex import link, remember, story_of
from ingest.versioning import keep_reextracted


@dataclass
class Linked:
    """What `Store.link_stories` did so far."""

    checked: int = 0  # articles fingerprinted (or found too short)
    copies: int = 0  # of which copies of a story seen before
    too_short: int = 0  # texts too short to tell: no story


# What `Store.save_articles` stores of one page: the job, its article, the page, its raw body.
Save = tuple[PageJob, ExtractedArticle, Page, PackedBody | None]


def _page_keys(
    job: PageJob, article: ExtractedArticle, page: Page, _raw: PackedBody | None
) -> tuple[set[str], str]:
    """The URL keys a saved page is known by (where it was fetched from, its canonical URL),
    and the URL it is archived under: a post keeps its fragment in both."""
    post = job.fragment is not None
    final_url = f"{urldefrag(page.final_url).url}#{job.fragment}" if post else page.final_url
    keys = {url_key(final_url, fragment=post)}
    if article.canonical_url:
        keys.add(url_key(article.canonical_url, fragment=post))
    return keys, final_url


class _Saving:
    """The statements `Store.save_article` runs, built once with bound parameters."""

    def __init__(self) -> None:
        articles = Article.__table__  # type: ignore[attr-defined]
        entries = Entry.__table__  # type: ignore[attr-defined]
        c = articles.c

        def param(name: str) -> Any:  # named apart from the columns, as UPDATE requires
            return sa.bindparam(f"new_{name}", type_=c[name].type)

        self.duplicate = (
            sa.select(c.id)
            .where(
                c.id != sa.bindparam("id"),
                c.url_key.in_(sa.bindparam("keys", expanding=True))
                | (
                    (c.canonical_url == sa.bindparam("canonical", type_=sa.String))
                    & (c.content_source == ContentSource.PAGE.value)
                ),
            )
            .limit(1)
        )
        self.move_entries = (
            sa.update(entries)
            .where(entries.c.article_id == sa.bindparam("from_id"))
            .values(article_id=sa.bindparam("to_id"))
        )
        self.drop = sa.delete(articles).where(c.id == sa.bindparam("id"))
        removed = RemovedArticle.__table__  # type: ignore[attr-defined]
        # The trigger wrote the row's removal; what it became is known here only.
        self.merged = (
            sa.update(removed)
            .where(removed.c.article_id == sa.bindparam("from_id"), removed.c.merged_into.is_(None))
            .values(merged_into=sa.bindparam("to_id"))
        )
        fields = ("authors", "published", "updated", "language", "summary", "text")
        fields += ("canonical_url", "final_url", "content_hash", "attempts", "fetched_at")
        fields += ("content_source", "extractor", "changed_at", "etag", "last_modified")
        fields += ("next_check_at", "story_id")
        self.store = (
            sa.update(articles)
            .where(c.id == sa.bindparam("article"), c.status != ArticleStatus.OK.value)
            .values(
                {name: param(name) for name in fields}
                | {
                    "title": sa.func.coalesce(param("title"), c.title),
                    "site_name": sa.func.coalesce(param("site_name"), c.site_name),
                    "status": ArticleStatus.OK.value,
                    "next_attempt_at": None,
                    "error": None,
                    "error_message": None,
                    "lease_owner": None,
                    "lease_until": None,
                }
            )
        )
        # A new extraction of an archived article (`Archiving.replace_extraction`): a field
        # it lacks (None) keeps the stored value.
        replaced = {name: param(name) for name in REPLACED}
        kept = {name: sa.func.coalesce(param(name), c[name]) for name in KEPT_WHEN_MISSING}
        kept["authors"] = sa.func.coalesce(
            sa.bindparam("new_authors", type_=sa.JSON(none_as_null=True)), c.authors
        )
        self.replace = (
            sa.update(articles).where(c.id == sa.bindparam("article")).values(replaced | kept)
        )
        self.made_by = (
            sa.update(articles)
            .where(c.id == sa.bindparam("article"))
            .values(extractor=param("extractor"))
        )


# What a new extraction writes of an article: always, and only when it has a value.
REPLACED = ("text", "content_hash", "content_source", "extractor")
KEPT_WHEN_MISSING = (
    "title",
    "authors",
    "published",
    "updated",
    "language",
    "site_name",
    "summary",
    "canonical_url",
)
_SAVING = _Saving()


def extraction_values(article: ExtractedArticle) -> dict[str, Any]:
    """The columns a new extraction of an archived article writes, as parameters of
    `_Saving.replace` (``new_<column>``); None for a field it lacks, which keeps its value."""
    return {
        "new_text": article.text or None,
        "new_content_hash": content_hash(article.text),
        "new_content_source": (
            ContentSource.PAGE if article.from_page else ContentSource.FEED
        ).value,
        "new_extractor": article.extractor,
        "new_title": article.title,
        "new_authors": list(article.authors) or None,
        "new_published": article.published,
        "new_updated": article.updated,
        "new_language": article.language,
        "new_site_name": article.site_name,
        "new_summary": article.summary,
        "new_canonical_url": article.canonical_url or None,
    }


class Archiving(CaptureStore):
    """`Store`'s writes of what is archived: `record_entries`, `save_article(s)`,
    `add_capture`, `replace_extraction`, `save_failure`, `link_stories`."""

    # `[versions] schedule` while re-checks are on: an article saved is due for its first
    # re-check after the first step's interval. Empty: articles are not re-checked.
    recheck_steps: Sequence[tuple[float, float]] = ()

    @cached_property
    def _statements(self) -> Statements:
        """The statements `record` runs, built once in this database's dialect."""
        return Statements(self._insert)

    def record_entries(
        self,
        feed: Feed,
        entries: Sequence[FeedEntry],
        *,
        hold: bool = True,
        skipped: Sequence[str] = (),
    ) -> Recorded:
        """Store the entries a feed lists, each once, and say which pages are to be fetched.

        An entry whose link is already archived (from another feed, or the same URL with
        tracking parameters) is linked to that article rather than stored again; entries
        sharing one link are told apart (`ingest.entries`). With ``hold`` the new pages are
        leased to this worker; without, any worker may claim them. ``skipped``: entry keys of
        URLs a sitemap listed and this poll left unfetched on purpose, remembered with them
        (`listed_before`).
        """
        assert feed.id is not None
        now = utcnow()
        lease = Lease(self.owner, now + self.lease) if hold else Lease()
        with self._session() as session:
            recorded = record(
                session,
                self._statements,
                feed,
                entries,
                now=now,
                lease=lease,
                postgres=self.postgres,
            )
            if skipped:
                rows = [{"feed_id": feed.id, "entry_key": key, "seen_at": now} for key in skipped]
                session.execute(self._insert(SkippedUrl).on_conflict_do_nothing(), rows)
            session.commit()
        return recorded

    def listed_before(self, feed_id: int, keys: Sequence[str]) -> tuple[bool, set[str]]:
        """Whether ``feed_id`` has recorded anything yet (an entry, or a URL it skipped), and
        which of the entry ``keys`` it has (a sitemap's URLs without a date are new when not)."""
        entries = Entry.__table__.c  # type: ignore[attr-defined]
        skips = SkippedUrl.__table__.c  # type: ignore[attr-defined]
        found: set[str] = set()
        with self._session() as session:
            conn = session.connection()
            anything = conn.execute(
                sa.select(
                    sa.exists().where(entries.feed_id == feed_id)
                    | sa.exists().where(skips.feed_id == feed_id)
                )
            ).scalar()
            for start in range(0, len(keys), 500):
                batch = list(keys[start : start + 500])
                for column in (entries, skips):
                    found.update(
                        conn.execute(
                            sa.select(column.entry_key).where(
                                column.feed_id == feed_id, column.entry_key.in_(batch)
                            )
                        ).scalars()
                    )
        return bool(anything), found

    def save_article(
        self, job: PageJob, article: ExtractedArticle, page: Page, *, raw: PackedBody | None = None
    ) -> int | None:
        """Store a page's clean article; returns its id, or the id of the article it duplicates
        (None when it was stored meanwhile).

        A page whose final or canonical URL is already archived under another article (a
        redirecting feed link, say) is merged into that article instead of stored twice. A post
        on a page of several (``job.fragment``) is that URL with its fragment: the page's other
        posts, and the page itself, are other articles.
        """
        return self.save_articles([(job, article, page, raw)])[0]

    def save_articles(self, saves: Sequence[Save]) -> list[int | None]:
        """`save_article` for several pages in one transaction: one commit and one flush of
        the search index for all of them."""
        keyed = [(_page_keys(*save), save) for save in saves]
        with self._session() as session:
            if self.postgres:
                # Two workers saving pages that share a URL: the second waits for the first
                # and merges into it (keys locked in one order: no deadlock).
                lock_keys(session, (k for (keys, _), _ in keyed for k in keys if k))
            # Core statements built once (`_saving`): this runs for every page archived.
            conn = session.connection()
            stored = [
                self._save(conn, keys, final_url, *save, steps=self.recheck_steps)
                for (keys, final_url), save in keyed
            ]
            # Only the pages stored now keep their capture (not a duplicate, nor one stored
            # meanwhile), and after every article's row: see `_capture`.
            new = [s for s, id_ in zip(saves, stored, strict=True) if id_ == s[0].article_id]
            self._capture(conn, new)
            session.commit()
        return stored

    def _capture(self, conn: sa.Connection, saves: Sequence[Save]) -> None:
        """Keep the raw page of each of ``saves`` (`_keep_captures`)."""
        kept = [(job.article_id, page, raw) for job, _, page, raw in saves if raw is not None]
        self._keep_captures(conn, kept)

    @staticmethod
    def _save(
        conn: sa.Connection,
        keys: set[str],
        final_url: str,
        job: PageJob,
        article: ExtractedArticle,
        page: Page,
        _raw: PackedBody | None,
        *,
        steps: Sequence[tuple[float, float]],
    ) -> int | None:
        duplicate = conn.execute(
            _SAVING.duplicate,
            {"id": job.article_id, "keys": sorted(keys), "canonical": article.canonical_url},
        ).scalar()
        if duplicate is not None:
            conn.execute(_SAVING.move_entries, {"from_id": job.article_id, "to_id": duplicate})
            conn.execute(_SAVING.drop, {"id": job.article_id})
            conn.execute(_SAVING.merged, {"from_id": job.article_id, "to_id": duplicate})
            return duplicate
        # Its story: the copy it is of (the same story on another site), else its own, set by
        # the same UPDATE. The fingerprint comes from the worker; made here for an article
        # saved without one.
        text_print = article.fingerprint or fingerprint(article.text)
        story, keys = story_of(conn, job.article_id, text_print)
        # Not yet stored is part of the UPDATE itself: a worker whose lease ran out while it
        # worked may store the same page too, and only the first one counts.
        stored = conn.execute(
            _SAVING.store,
            {
                "article": job.article_id,
                "new_title": article.title,
                "new_authors": list(article.authors),
                "new_published": article.published,
                "new_updated": article.updated,
                "new_language": article.language,
                "new_site_name": article.site_name,
                "new_summary": article.summary,
                "new_text": article.text or None,
                "new_canonical_url": article.canonical_url,
                "new_final_url": final_url,
                "new_content_source": (
                    ContentSource.PAGE if article.from_page else ContentSource.FEED
                ).value,
                "new_content_hash": content_hash(article.text),
                "new_extractor": article.extractor,
                "new_attempts": job.attempts + 1,
                "new_fetched_at": page.fetched_at,
                # Its first state: re-checked on the `[versions]` schedule from now.
                "new_changed_at": page.fetched_at,
                "new_etag": page.headers.get("etag"),
                "new_last_modified": page.headers.get("last-modified"),
                "new_next_check_at": (
                    next_check(page.fetched_at, page.fetched_at, steps)
                    if article.from_page
                    else None  # the entry's own text: the page does not hold it
                ),
                "new_story_id": story,
            },
        )
        if stored.rowcount == 0:  # stored meanwhile, or merged into another article
            return None
        if text_print is not None:
            remember(conn, job.article_id, text_print, keys)
        return job.article_id

    def add_capture(
        self, article_id: int, page: Page, raw: PackedBody, article: ExtractedArticle
    ) -> bool:
        """Keep another capture of an archived article (an import's: its page kept at another
        time); False when it has one of that URL and time already. A capture newer than the
        article's last fetch makes ``article`` (extracted from it) the article's text."""
        captures = Capture.__table__.c  # type: ignore[attr-defined]
        with self._session() as session:
            conn = session.connection()
            kept = conn.execute(
                sa.select(captures.id).where(
                    captures.article_id == article_id,
                    captures.url == page.final_url,
                    captures.fetched_at == page.fetched_at,
                )
            ).first()
            if kept is not None:
                return False
            self._keep_captures(conn, [(article_id, page, raw)])
            newer = conn.execute(
                sa.update(Article)
                .where(
                    col(Article.id) == article_id,
                    col(Article.fetched_at).is_(None) | (col(Article.fetched_at) < page.fetched_at),
                )
                .values(fetched_at=page.fetched_at)
            ).rowcount
            session.commit()
        if newer:
            self.replace_extraction([(article_id, article)], extractor=article.extractor)
        return True

    def replace_extraction(
        self,
        replaced: Sequence[tuple[int, ExtractedArticle]],
        *,
        extractor: str | None,
        unchanged: Sequence[int] = (),
    ) -> None:
        """Store new extractions of archived articles (`ingest.reextract`) in one transaction:
        each of ``replaced`` gets its new text and what the page says of itself (a field the
        new extraction lacks keeps its value); every article, ``unchanged`` ones too, is
        recorded as made by ``extractor``."""
        with self._session() as session:
            conn = session.connection()
            if replaced:
                # The old texts are about to be overwritten: each meaningful change is kept
                # as a version, the old text before it, in this same transaction, so that a
                # text is never replaced without its old one kept.
                keep_reextracted(session, replaced)
                made = {"new_extractor": extractor}
                conn.execute(
                    _SAVING.replace,
                    [extraction_values(new) | made | {"article": i} for i, new in replaced],
                )
                stories = dict(
                    conn.execute(
                        sa.select(col(Article.id), col(Article.story_id)).where(
                            self._among(col(Article.id), [i for i, _ in replaced])
                        )
                    ).all()
                )
                for article_id, new in replaced:
                    # It stays in its story (copies may point at it); its fingerprint is
                    # the new text's.
                    text_print = new.fingerprint or fingerprint(new.text)
                    link(conn, article_id, text_print, story=stories.get(article_id), again=True)
            if unchanged:
                conn.execute(
                    _SAVING.made_by,
                    [{"article": i, "new_extractor": extractor} for i in unchanged],
                )
            session.commit()

    def link_stories(self, *, batch: int = 500) -> Iterator[Linked]:
        """Fingerprint the stored articles that have no story yet (archived before revision
        0017) and link each to its story, oldest first, ``batch`` a transaction; yields the
        running counts after each. Interrupted, it resumes where it stopped: what a batch
        linked has its story. Texts too short to tell are read again by each run."""
        texts = (
            sa.select(Article.id, Article.text)
            .where(
                col(Article.status) == ArticleStatus.OK,
                col(Article.story_id).is_(None),
                col(Article.id) > sa.bindparam("last"),
            )
            .order_by(col(Article.id))
            .limit(batch)
        )
        done = Linked()
        last = 0
        while True:
            with self._session() as session:
                conn = session.connection()
                rows = conn.execute(texts, {"last": last}).all()
                if not rows:
                    return
                for article_id, text in rows:
                    story = link(conn, article_id, fingerprint(text))
                    done.checked += 1
                    if story is None:
                        done.too_short += 1
                    elif story != article_id:
                        done.copies += 1
                session.commit()
            last = rows[-1][0]
            yield done

    def save_failure(
        self, job: PageJob, error: FetchError, *, attempts: int, next_attempt_at: datetime | None
    ) -> None:
        """Record why a page failed and when to try it again (None: never)."""
        with self._session() as session:
            session.execute(
                sa.update(Article)
                .where(col(Article.id) == job.article_id, col(Article.status) != ArticleStatus.OK)
                .values(
                    status=ArticleStatus.FAILED,
                    attempts=attempts,
                    error=error.reason,
                    error_message=str(error),
                    next_attempt_at=next_attempt_at,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            session.commit()
