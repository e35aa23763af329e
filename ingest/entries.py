"""Feed entries -> articles: which article each entry of a feed document is, recorded once.

An entry's article is found by one of three identities:

- **page** — the normalised link (`url_key`): one article whichever feeds, or links differing
  by tracking parameters, lead to it; its page is fetched. A link that names one entry at a
  time stays its identity, so an entry published again under a new guid joins the article.
- **post** — the link with its fragment (``page#post``), when entries of a feed link to
  distinct fragments of one page (a microblog's day page): the page is fetched, and the post's
  text is the part of it the fragment names (`ingest.anchors`).
- **own** — when several distinct entries of a feed share one link (a podcast's episodes and
  the show's page, a link blog's two posts on one URL), the link identifies none of them: each
  entry is its own article, ``url_key`` NULL and ``shared_key`` the link's key, found again by
  that key and its guid, or under another guid by what it says (title, date and content: the
  same entry listed twice, re-published, or in another feed); its text is the entry's own
  content (``content_source = 'feed'``, status ``ok``), and the shared page is not fetched.

A link is shared in a feed from the first document that shows it shared, and stays so (a later
document may list one of its entries only); a page is split into posts once a post of it is
archived. When a document shows that a link an entry was recorded under is shared (a link
blog's second post on a URL, or an archive made before this rule), the entry is given its own
article and its entry row points there; the article it had stays as it is (its page, its
capture, other feeds' entries): nothing is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from ingest.entryparts import SharedLinks, language_tag, page_of, shared_links
from ingest.models import Article, ArticleStatus, ContentSource, Entry, Feed, UTCDateTime
from ingest.polite import host_of
from ingest.records import FeedEntry, Hints, PageJob

PAGE, POST, OWN = "page", "post", "own"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `Store.record_entries` added."""

    new_entries: int  # entries this feed had not listed before
    feed_only: int  # new articles whose text is the feed's: no link, or a shared one
    jobs: list[PageJob]  # new articles whose page is to be fetched
    separated: int = 0  # entries recorded before, moved to their own article (shared link)


@dataclass(frozen=True, slots=True)
class Identity:
    kind: str  # PAGE, POST or OWN
    key: str  # the article's url_key (PAGE, POST) or shared_key (OWN)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds the new articles' pages (the worker that will fetch them), and until when."""

    owner: str | None = None
    until: datetime | None = None


def content_hash(text: str | None) -> str | None:
    if not text:
        return None
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def hints(entry: FeedEntry) -> Hints:
    return Hints(
        title=entry.title,
        authors=entry.authors,
        published=entry.published,
        updated=entry.updated,
        language=entry.language,
        summary=entry.summary,
    )


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """PostgreSQL: hold a transaction lock on each article key, taken in sorted order
    (unnest keeps the array's order)."""
    array = sa.bindparam("keys", sorted(set(keys)), type_=postgresql.ARRAY(sa.Text))
    ordered = sa.select(sa.func.unnest(array).label("k")).subquery()
    session.execute(
        sa.select(sa.func.count(sa.func.pg_advisory_xact_lock(sa.func.hashtext(ordered.c.k))))
    )


def identity(post: str, shared: SharedLinks, shared_before: set[str], split: set[str]) -> Identity:
    """The identity of an entry linking to ``post`` (its `url_key` with fragment), from the
    feed document (``shared``) and the archive: links this feed shared before, pages split."""
    page = page_of(post)
    if post in shared.posts or post in shared_before:
        return Identity(OWN, post)
    if post != page and (page in shared.pages or page in split):
        return Identity(POST, post)
    return Identity(PAGE, page)


def _identities(
    conn: sa.Connection,
    statements: Statements,
    feed: Feed,
    shared: SharedLinks,
    linked: Sequence[str],
) -> Callable[[str], Identity]:
    """`identity` of each post key in ``linked``, with what the archive knows of them."""
    shared_before: set[str] = set()
    if linked:
        query = statements.shared_before
        shared_before.update(conn.execute(query, {"feed": feed.id, "keys": linked}).scalars())
    split = {
        page
        for page in {page_of(post) for post in linked if "#" in post} - shared.pages
        if conn.execute(statements.split, {"low": f"{page}#", "high": f"{page}$"}).first()
    }
    return lambda post: identity(post, shared, shared_before, split)


class Statements:
    """The statements `record` runs, built once per store in its dialect."""

    def __init__(self, insert: Callable[[Any], Any]) -> None:
        articles = Article.__table__  # type: ignore[attr-defined]
        entries = Entry.__table__  # type: ignore[attr-defined]
        a, e = articles.c, entries.c
        self.by_key = sa.select(a.id).where(a.url_key == sa.bindparam("key"))
        self.by_keys = sa.select(a.url_key, a.id).where(
            a.url_key.in_(sa.bindparam("keys", expanding=True))
        )
        # An entry's own article: by its guid, else the same entry under another guid (listed
        # twice, re-published, or in another feed) by what it says; such an article is never
        # rewritten, so what it was made from still matches.
        guid = a.guid == sa.bindparam("guid", type_=sa.String)
        self.own = (
            sa.select(a.id)
            .where(
                a.shared_key == sa.bindparam("key"),
                guid
                | (
                    a.title.is_not_distinct_from(sa.bindparam("title", type_=sa.String))
                    & a.published.is_not_distinct_from(
                        sa.bindparam("published", type_=UTCDateTime())
                    )
                    & a.content_hash.is_not_distinct_from(sa.bindparam("hash", type_=sa.String))
                ),
            )
            .order_by(sa.case((guid, 0), else_=1), a.id)
            .limit(1)
        )
        self.new_article = insert(articles).on_conflict_do_nothing().returning(a.id)
        self.new_entry = insert(entries).on_conflict_do_nothing()
        self.move_entry = (
            sa.update(entries)
            .where(e.feed_id == sa.bindparam("feed"), e.entry_key == sa.bindparam("key"))
            .values(article_id=sa.bindparam("article"))
        )
        self.known = (
            sa.select(e.entry_key, e.article_id, a.url_key, a.shared_key)
            .join(articles, a.id == e.article_id)
            .where(
                e.feed_id == sa.bindparam("feed"),
                e.entry_key.in_(sa.bindparam("keys", expanding=True)),
            )
        )
        # Links this feed's entries were found sharing before.
        self.shared_before = (
            sa.select(a.shared_key)
            .where(
                a.shared_key.in_(sa.bindparam("keys", expanding=True)),
                sa.exists().where(e.article_id == a.id, e.feed_id == sa.bindparam("feed")),
            )
            .distinct()
        )
        # A post of the page is archived: its keys sort between "page#" and "page$".
        self.split = (
            sa.select(a.id)
            .where(a.url_key > sa.bindparam("low"), a.url_key < sa.bindparam("high"))
            .limit(1)
        )


@dataclass
class _Recording:
    """One feed document being recorded in one transaction."""

    conn: sa.Connection
    statements: Statements
    feed: Feed
    now: datetime
    lease: Lease
    # The articles of the page and post keys about to be placed, found in one query
    # (`archived`); a key made here is added as it is made.
    archived: dict[str, int] = field(default_factory=dict)
    jobs: list[PageJob] = field(default_factory=list)
    feed_only: int = 0

    def look_up(self, keys: Iterable[str]) -> None:
        """Find the archived articles of ``keys`` (page and post keys) at once."""
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 500):
            query = {"keys": wanted[start : start + 500]}
            self.archived.update(
                (key, id_) for key, id_ in self.conn.execute(self.statements.by_keys, query)
            )

    def article(self, entry: FeedEntry, found: Identity | None) -> int:
        """The article of ``entry`` under identity ``found`` (None: no link), made if new."""
        if found is not None and found.kind == OWN:
            article_id = self._own(entry, found)
            return article_id if article_id is not None else self._new(entry, found)
        if found is not None and found.key in self.archived:
            return self.archived[found.key]
        return self._new(entry, found)

    def _scalar(self, statement: Any, **values: Any) -> int | None:
        return self.conn.execute(statement, values).scalar()

    def _own(self, entry: FeedEntry, found: Identity) -> int | None:
        return self._scalar(
            self.statements.own,
            key=found.key,
            guid=entry.guid,
            title=entry.title,
            published=entry.published,
            hash=content_hash(entry.content),
        )

    def _new(self, entry: FeedEntry, found: Identity | None) -> int:
        fetch = found is not None and found.kind != OWN
        values = {
            "url_key": found.key if found and fetch else None,
            "shared_key": found.key if found and not fetch else None,
            "url": entry.link,
            "feed_id": self.feed.id,
            "guid": entry.guid,
            "title": entry.title,
            "authors": list(entry.authors),
            "enclosures": [item.to_dict() for item in entry.enclosures],
            "published": entry.published,
            "updated": entry.updated,
            "language": language_tag(entry.language or self.feed.language),
            "site_name": self.feed.title,
            "summary": entry.summary,
            "text": entry.content,
            "content_source": ContentSource.FEED,
            "content_hash": content_hash(entry.content),
            # Without a page to fetch, the feed's content is all there will ever be.
            "status": ArticleStatus.PENDING if fetch else ArticleStatus.OK,
            "attempts": 0,
            "created_at": self.now,
            "host": host_of(entry.link) if fetch and entry.link else None,
            "lease_owner": self.lease.owner if fetch else None,
            "lease_until": self.lease.until if fetch else None,
        }
        article_id = self._scalar(self.statements.new_article, **values)
        if article_id is None:  # another worker stored it meanwhile: that one is the article
            assert found is not None
            if fetch:
                article_id = self._scalar(self.statements.by_key, key=found.key)
            else:
                article_id = self._own(entry, found)
            assert article_id is not None
            return article_id
        if fetch and found is not None:
            self.archived[found.key] = article_id
        if not fetch:
            self.feed_only += 1
        elif entry.link and found:
            job = PageJob(article_id, entry.link, 0, hints(entry))
            if found.kind == POST:
                job = replace(
                    job,
                    hints=replace(job.hints, content=entry.content),
                    fragment=found.key.partition("#")[2],
                )
            self.jobs.append(job)
        return article_id


def _fits(found: Identity, recorded: Any) -> bool | None:
    """Whether an entry ``recorded`` before (its article's ``url_key`` and ``shared_key``) is
    where ``found`` says: True; False, to be moved (its article is the shared link's); or
    None, left alone (an article it was merged into on purpose, such as a redirect's)."""
    if found.kind == OWN:
        if recorded.shared_key == found.key:
            return True
        return False if recorded.url_key in {found.key, page_of(found.key)} else None
    if found.kind == POST:
        if recorded.url_key == found.key:
            return True
        return False if recorded.url_key == page_of(found.key) else None
    return True


def record(
    session: Session,
    statements: Statements,
    feed: Feed,
    entries: Sequence[FeedEntry],
    *,
    now: datetime,
    lease: Lease,
    postgres: bool,
) -> Recorded:
    """Record the entries of one document of ``feed``, each once, in ``session`` (not
    committed); say which pages are to be fetched."""
    conn = session.connection()  # Core statements built once: a poll may list hundreds
    first: dict[str, FeedEntry] = {}
    for entry in entries:  # an entry listed twice under one key is recorded once
        first.setdefault(entry.key, entry)
    unique = list(first.values())
    known = {
        row.entry_key: row
        for row in conn.execute(statements.known, {"feed": feed.id, "keys": list(first)})
    }
    merged = len({row.article_id for row in known.values()}) < len(known)
    if len(known) == len(unique) and not merged:
        return Recorded(0, 0, [])  # nothing new, nothing recorded under a shared link
    shared = shared_links(unique)
    posts = shared.keys

    def in_shared(entry: FeedEntry) -> bool:
        post = posts.get(entry.key)
        return post is not None and (post in shared.posts or page_of(post) in shared.pages)

    # The new entries, and those recorded before under a link this document shows shared.
    placing = [e for e in unique if e.key not in known or in_shared(e)]
    linked = [posts[e.key] for e in placing if e.key in posts]
    found = _identities(conn, statements, feed, shared, linked)
    fresh = [e for e in placing if e.key not in known]
    moving = [
        e for e in placing if e.key in known and _fits(found(posts[e.key]), known[e.key]) is False
    ]
    if postgres:
        # Two workers polling two feeds that list the same new articles would each hold some
        # of the keys the other inserts next: locked first, in one order, they wait for each
        # other instead of deadlocking.
        lock_keys(session, [found(posts[e.key]).key for e in (*fresh, *moving) if e.key in posts])
    recording = _Recording(conn, statements, feed, now, lease)
    placed = [found(posts[e.key]) for e in (*fresh, *moving) if e.key in posts]
    recording.look_up(place.key for place in placed if place.kind != OWN)
    for entry in moving:
        article_id = recording.article(entry, found(posts[entry.key]))
        conn.execute(
            statements.move_entry, {"feed": feed.id, "key": entry.key, "article": article_id}
        )
    rows = []
    for entry in fresh:
        post = posts.get(entry.key)
        article_id = recording.article(entry, found(post) if post else None)
        rows.append(
            {"feed_id": feed.id, "entry_key": entry.key, "article_id": article_id, "seen_at": now}
        )
    if rows:
        conn.execute(statements.new_entry, rows)
    return Recorded(len(fresh), recording.feed_only, recording.jobs, len(moving))
