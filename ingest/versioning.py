"""Versions in the archive: re-checks claimed, their outcomes written, each change kept.

An archived article's page is looked at again on the `[versions]` schedule (`next_check_at`,
set when the article is saved). The answer is one of: not modified (a 304, or the same story
with another timestamp), changed (a new version: the article row takes the new state, and the
``versions`` table keeps every state in order, the first too), gone (404 or 410: the article is
marked removed and every version stays), or an error (looked at again later). Re-checks are
claimed with the same leases as new pages, so that no two workers re-check one page at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ingest.captures import PackedBody
from ingest.capturestore import CaptureStore
from ingest.changes import count_changes, is_meaningful_change
from ingest.claims import Claims, page_job
from ingest.entries import content_hash
from ingest.models import Article, ArticleStatus, Capture, Host, Version
from ingest.records import ExtractedArticle, Page, PageJob, Recheck, utcnow
from ingest.schedule import next_check
from ingest.stories import fingerprint
from ingest.storyindex import link

FIRST, CHANGED, REEXTRACTED = "first", "changed", "reextracted"


class Versioning(Claims, CaptureStore):
    """`Store`'s versions: `claim_rechecks`, `recheck_unchanged`, `recheck_gone`,
    `save_version`, `keep_version`, `versions`, `versions_of`."""

    def claim_rechecks(self, now: datetime, *, limit: int) -> list[PageJob]:
        """Lease to this worker up to ``limit`` archived pages due for a re-check (the most
        overdue first), leaving out hosts that asked every worker to wait."""
        blocked = select(Host.host).where(col(Host.blocked_until) > now)
        pick = (
            select(Article.id)
            .where(
                col(Article.next_check_at).is_not(None),  # the partial index of re-checks
                col(Article.next_check_at) <= now,
                col(Article.status) == ArticleStatus.OK,
                col(Article.host).is_(None) | col(Article.host).not_in(blocked),
            )
            .order_by(col(Article.next_check_at))
            .limit(limit)
        )
        rows = sorted(self._claim(Article, pick, now), key=lambda a: a.id or 0)
        return [recheck_job(a) for a in rows]

    def recheck_unchanged(
        self,
        article_id: int,
        now: datetime,
        steps: Sequence[tuple[float, float]],
        page: Page | None,
    ) -> None:
        """The page says nothing new (``page``: its answer, for its validators; None for an
        answer that said nothing, an error): next re-check on the schedule."""
        with self._session() as session:
            row = session.get(Article, article_id)
            if row is None:
                return
            values = self._checked(row, now, steps)
            if page is not None and page.status != 304:
                values |= _validators(page)
            session.execute(sa.update(Article).where(col(Article.id) == article_id).values(values))
            session.commit()

    def recheck_gone(self, article_id: int, now: datetime) -> None:
        """The page answered 404 or 410: the article is removed from the web, not from the
        archive (its text and every version stay); it is not re-checked again."""
        with self._session() as session:
            session.execute(
                sa.update(Article)
                .where(col(Article.id) == article_id)
                .values(
                    removed_at=sa.func.coalesce(col(Article.removed_at), now),
                    checked_at=now,
                    next_check_at=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            session.commit()

    def save_version(
        self,
        article_id: int,
        new: ExtractedArticle,
        page: Page,
        raw: PackedBody | None,
        steps: Sequence[tuple[float, float]],
    ) -> int | None:
        """The page looked at again says ``new``: keep it as the article's next version if it
        is a meaningful change (returns its number), else only note the re-check (None)."""
        now = page.fetched_at
        with self._session() as session:
            row = session.get(Article, article_id)
            if row is None:
                return None
            values = self._checked(row, now, steps) | _validators(page)
            title = new.title or row.title
            if not is_meaningful_change(row.title, row.text, title, new.text):
                session.execute(
                    sa.update(Article).where(col(Article.id) == article_id).values(values)
                )
                session.commit()
                return None
            capture_id = None
            if raw is not None:  # the page as now received: its body shared if unchanged
                (capture_id,) = self._keep_captures(session.connection(), [(article_id, page, raw)])
            last = session.execute(
                select(sa.func.max(Version.number)).where(col(Version.article_id) == article_id)
            ).scalar()
            before = None
            if last is None:  # version 1 is the state until now, from the capture before
                before = session.execute(
                    select(sa.func.max(Capture.id)).where(
                        col(Capture.article_id) == article_id,
                        col(Capture.id) != capture_id if capture_id is not None else sa.true(),
                    )
                ).scalar()
            rows = version_rows(
                row,
                last,
                before,
                title=title,
                text=new.text,
                authors=list(new.authors) or row.authors,
                fetched_at=now,
                capture_id=capture_id,
                reason=CHANGED,
            )
            session.execute(sa.insert(Version), rows)
            number = rows[-1]["number"]
            values |= {
                "title": title,
                "text": new.text,
                "authors": list(new.authors) or row.authors,
                "content_hash": content_hash(new.text),
                "fetched_at": now,
                "changed_at": now,
                "removed_at": None,  # back on the web
                "next_check_at": next_check(now, now, steps),
            }
            session.execute(sa.update(Article).where(col(Article.id) == article_id).values(values))
            # It stays in its story (copies may point at it); its fingerprint is the new text's.
            text_print = new.fingerprint or fingerprint(new.text)
            link(session.connection(), article_id, text_print, story=row.story_id, again=True)
            session.commit()
            return number

    def keep_version(self, article_id: int, title: str | None, text: str | None) -> int | None:
        """Before an article's text is made anew from the same capture: keep the new state as
        its next version, the old one before it, if they differ in more than whitespace
        (returns the new version's number, else None). The caller writes the new state to the
        article (`Archiving.replace_extraction` does both in one transaction)."""
        with self._session() as session:
            kept = keep_reextracted(session, [(article_id, ExtractedArticle(text or "", title))])
            session.commit()
            return kept.get(article_id)

    def versions(self, article_id: int) -> list[Version]:
        """An article's versions, oldest first: its one state when it never changed (not
        stored as a row: number 1, made of the article), [] for an unknown article."""
        with self._session() as session:
            rows = list(
                session.exec(
                    select(Version)
                    .where(col(Version.article_id) == article_id)
                    .order_by(col(Version.number))
                )
            )
            if rows:
                return rows
            article = session.get(Article, article_id)
            if article is None or article.status != ArticleStatus.OK:
                return []
            latest = session.execute(
                select(sa.func.max(Capture.id)).where(col(Capture.article_id) == article_id)
            ).scalar()
            return [Version(**first_state(article, latest))]

    def versions_of(self, article_ids: Sequence[int]) -> dict[int, list[Version]]:
        """The stored versions of several articles (those that changed), oldest first: one
        query for a batch of an export."""
        if not article_ids:
            return {}
        found: dict[int, list[Version]] = {}
        with self._session() as session:
            rows = session.exec(
                select(Version)
                .where(self._among(col(Version.article_id), article_ids))
                .order_by(col(Version.article_id), col(Version.number))
            )
            for row in rows:
                found.setdefault(row.article_id, []).append(row)
        return found

    # --- inside ----------------------------------------------------------------------------

    @staticmethod
    def _checked(
        row: Article, now: datetime, steps: Sequence[tuple[float, float]]
    ) -> dict[str, Any]:
        changed = row.changed_at or row.fetched_at or now
        return {
            "checked_at": now,
            "next_check_at": next_check(changed, now, steps) if steps else None,
            "lease_owner": None,
            "lease_until": None,
        }


def keep_reextracted(
    session: Session, replaced: Sequence[tuple[int, ExtractedArticle]]
) -> dict[int, int]:
    """Before re-extractions overwrite their articles (``replaced``: id, new extraction),
    in the caller's transaction: each meaningful change kept as the article's next version
    (the old state before it, on its first change), made from its latest capture. Returns
    the new versions' numbers by article id. A batch at a time: a few queries for all of
    them, one insert of every version (re-extraction runs this for thousands)."""
    ids = sorted({article_id for article_id, _ in replaced})
    if not ids:
        return {}
    conn = session.connection()
    articles = Article.__table__.c  # type: ignore[attr-defined]
    rows = {
        row.id: row
        for row in conn.execute(
            sa.select(
                articles.id,
                articles.title,
                articles.text,
                articles.authors,
                articles.content_hash,
                articles.fetched_at,
            ).where(articles.id.in_(ids))
        )
    }
    latest = dict(
        conn.execute(
            sa.select(col(Capture.article_id), sa.func.max(col(Capture.id)))
            .where(col(Capture.article_id).in_(ids))
            .group_by(col(Capture.article_id))
        ).all()
    )
    last = dict(
        conn.execute(
            sa.select(col(Version.article_id), sa.func.max(col(Version.number)))
            .where(col(Version.article_id).in_(ids))
            .group_by(col(Version.article_id))
        ).all()
    )
    numbers: dict[int, int] = {}
    kept: list[dict[str, Any]] = []
    for article_id, new in replaced:
        row = rows.get(article_id)
        title = new.title or (row.title if row is not None else None)
        if row is None or not is_meaningful_change(row.title, row.text, title, new.text):
            continue
        made = version_rows(
            row,
            last.get(article_id),
            latest.get(article_id),
            title=title,
            text=new.text,
            authors=list(new.authors) or list(row.authors),
            fetched_at=row.fetched_at,
            capture_id=latest.get(article_id),
            reason=REEXTRACTED,
        )
        numbers[article_id] = last[article_id] = made[-1]["number"]
        kept += made
    if kept:
        conn.execute(sa.insert(Version), kept)
    return numbers


def non_space(text: str | None) -> int:
    """Characters of ``text``, spaces not counted (as `chars_changed` counts them)."""
    return len("".join((text or "").split()))


def version_rows(
    article: Any,
    last: int | None,
    before: int | None,
    *,
    title: str | None,
    text: str | None,
    authors: list[str],
    fetched_at: datetime | None,
    capture_id: int | None,
    reason: str,
) -> list[dict[str, Any]]:
    """The ``versions`` rows a new state of ``article`` (its row as stored: the state the new
    one follows) adds after version ``last``: on its first change (``last`` None) the stored
    state as version 1, made from capture ``before``, then the new state with the characters
    added and removed."""
    rows = []
    if last is None:
        rows.append(first_state(article, before))
        last = 1
    added, removed = count_changes(article.text, text)
    rows.append(
        {
            "article_id": article.id,
            "number": last + 1,
            "title": title,
            "text": text,
            "authors": authors,
            "content_hash": content_hash(text),
            "fetched_at": fetched_at,
            "capture_id": capture_id,
            "chars_added": added,
            "chars_removed": removed,
            "reason": reason,
            "created_at": utcnow(),
        }
    )
    return rows


def first_state(article: Any, capture_id: int | None) -> dict[str, Any]:
    """An article's state as stored, as its version 1 (written on its first change, else
    made to list)."""
    return {
        "article_id": article.id or 0,
        "number": 1,
        "title": article.title,
        "text": article.text,
        "authors": list(article.authors),
        "content_hash": article.content_hash,
        "fetched_at": article.fetched_at,
        "capture_id": capture_id,
        "chars_added": non_space(article.text),
        "chars_removed": 0,
        "reason": FIRST,
        "created_at": article.fetched_at,
    }


def _validators(page: Page) -> dict[str, Any]:
    return {"etag": page.headers.get("etag"), "last_modified": page.headers.get("last-modified")}


def recheck_job(article: Article) -> PageJob:
    """The page job of a re-check: the article's page, asked for with its validators."""
    job = page_job(article)
    return PageJob(
        job.article_id,
        job.url,
        0,
        job.hints,
        fragment=job.fragment,
        recheck=Recheck(article.etag, article.last_modified),
    )
