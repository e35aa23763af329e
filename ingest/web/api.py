"""The JSON API under /api/v1, and the search as feeds (Atom, JSON Feed): thin routes over
`ingest.web.listing` and the `Store` reads, answering `ingest.query`'s records."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from ingest.browse import Removal
from ingest.errors import NotFoundError
from ingest.models import Article
from ingest.query import (
    diff_record,
    export_records,
    feed_record,
    format_records,
    history_record,
    pick_versions,
    record,
    removal_record,
    version_record,
    with_feeds,
)
from ingest.records import utcnow
from ingest.search import Filters
from ingest.store import Store
from ingest.web import syndication
from ingest.web.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ArticleQuery,
    BadParameter,
    decode_cursor,
    encode_cursor,
    filters_from,
    find,
    text_param,
)
from ingest.web.schemas import (
    ArticleOut,
    ArticlesOut,
    ChangesOut,
    DiffOut,
    ErrorOut,
    FeedOut,
    HistoryOut,
    StatsOut,
    VersionOut,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A malformed search query"},
    401: {"model": ErrorOut, "description": "A token is required"},
    404: {"model": ErrorOut, "description": "No such article or feed"},
    422: {"model": ErrorOut, "description": "Bad parameters"},
}
CHART_DAYS = 30
EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}

router = APIRouter(responses=ERRORS)


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def filters(
    feed: Annotated[str | None, Query(description="Feed name or URL")] = None,
    tag: Annotated[str | None, Query(description="A tag of the feeds that listed it")] = None,
    author: Annotated[str | None, Query(description="Part of an author's name")] = None,
    lang: Annotated[str | None, Query(description="Language code, e.g. en")] = None,
    since: Annotated[str | None, Query(description="Published on or after (ISO 8601)")] = None,
    until: Annotated[str | None, Query(description="Published before (ISO 8601)")] = None,
    status: Annotated[str | None, Query(description="pending, ok or failed")] = None,
    content_source: Annotated[str | None, Query(description="page or feed")] = None,
) -> Filters:
    return filters_from(
        feed=feed,
        tag=tag,
        author=author,
        lang=lang,
        since=since,
        until=until,
        status=status,
        content_source=content_source,
    )


Q = Annotated[str, Query(description="Search query, as `ingest search` takes it")]
Sort = Annotated[str, Query(pattern="^(relevance|newest)$", description="relevance or newest")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Chosen = Annotated[Filters, Depends(filters)]


def article_query(
    chosen: Chosen,
    q: Q = "",
    sort: Sort = "relevance",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ArticleQuery:
    return ArticleQuery(text_param("q", q), chosen, sort, limit, cursor or None)


Asked = Annotated[ArticleQuery, Depends(article_query)]
# Ids are 64-bit in the database: a larger number names nothing (and SQLite refuses it).
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/api/v1/articles", response_model=ArticlesOut, tags=["articles"])
def articles(request: Request, asked: Asked) -> dict[str, Any]:
    """Search (with `q`) or list the newest articles, a page at a time: pass `next_cursor`
    back as `cursor` for the next page. Hits carry a highlighted snippet."""
    page = find(store_of(request), asked)
    return {"articles": page.hits, "next_cursor": page.next_cursor}


@router.get("/api/v1/changes", response_model=ChangesOut, tags=["articles"])
def changes(
    request: Request,
    chosen: Chosen,
    cursor: Annotated[str | None, Query(description="From the last answer; none: start")] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Every article stored, changed or removed since `cursor`, oldest change first, whole
    records: mirror the archive by asking again with `next_cursor`. Nothing is missed while
    the daemon writes; an article changed twice comes again. A removed article (merged into
    another: `merged_into`, whose record to read again) comes as `status: removed`, whatever
    the filters."""
    after = decode_cursor("changes", cursor, (int, int)) if cursor else None
    store = store_of(request)
    rows = store.changes(chosen, after=after, limit=limit)
    kept = [(a, feed_url) for a, feed_url, _ in rows if isinstance(a, Article) and feed_url]
    records = iter(record(*listed) for listed in with_feeds(store, kept))
    out = [
        {
            **(removal_record(row) if isinstance(row, Removal) else next(records)),
            "change": encode_cursor("changes", *key),
        }
        for row, _, key in rows
    ]
    next_cursor = out[-1]["change"] if out else cursor or encode_cursor("changes", 0, 0)
    return {"articles": out, "next_cursor": next_cursor}


@router.get("/api/v1/articles/{article_id}", response_model=ArticleOut, tags=["articles"])
async def article(request: Request, article_id: Id) -> dict[str, Any]:
    """One article's whole record, as `ingest export` writes it."""
    store = store_of(request)

    def read() -> dict[str, Any]:
        return record(*with_feeds(store, [store.article(str(article_id))])[0])

    # SQLite reads an article by id locally in well under a millisecond, less than handing
    # it to a thread costs (8 clients got 557 answers/s through the thread pool, 973 on the
    # loop); PostgreSQL's read is a round trip over the network, which must not hold the loop.
    return await run_in_threadpool(read) if store.postgres else read()


@router.get("/api/v1/articles/{article_id}/versions", response_model=HistoryOut, tags=["versions"])
def versions(request: Request, article_id: Id) -> dict[str, Any]:
    """An article's versions, oldest first: each state its page was seen in, with the
    characters added and removed against the one before (`ingest history`)."""
    store = store_of(request)
    article, _ = store.article(str(article_id))
    return history_record(article, store.versions(article_id))


@router.get(
    "/api/v1/articles/{article_id}/versions/{number}",
    response_model=VersionOut,
    tags=["versions"],
)
def version(request: Request, article_id: Id, number: Id) -> dict[str, Any]:
    """One version of an article, with its text."""
    store = store_of(request)
    store.article(str(article_id))  # an unknown article is a 404 that says so
    found = [v for v in store.versions(article_id) if v.number == number]
    if not found:
        raise NotFoundError(f"no version {number} of article {article_id}")
    return version_record(found[0])


@router.get(
    "/api/v1/articles/{article_id}/diff",
    response_model=DiffOut,
    tags=["versions"],
)
def diff(
    request: Request,
    article_id: Id,
    first: Annotated[int | None, Query(alias="from", ge=1, le=2**31)] = None,
    second: Annotated[int | None, Query(alias="to", ge=1, le=2**31)] = None,
) -> dict[str, Any]:
    """The word diff between two versions (``from`` and ``to``; neither: the last change),
    as runs of kept, removed and added text (`ingest diff`)."""
    if (first is None) != (second is None):
        raise BadParameter("give both from and to, or neither for the last change")
    store = store_of(request)
    article, _ = store.article(str(article_id))
    old, new = pick_versions(store.versions(article_id), first, second)
    return diff_record(article, old, new)


@router.get(
    "/api/v1/articles/{article_id}/capture",
    tags=["articles"],
    response_class=Response,
    responses={200: {"content": {"*/*": {}}, "description": "The page as it was received"}},
)
def capture(request: Request, article_id: Id) -> Response:
    """The raw page an article was extracted from, as received (Content-Type and charset
    as the site sent them), as a download: never shown inline."""
    store = store_of(request)
    kept = store.capture(article_id)
    headers = {k.lower(): v for k, v in kept.headers.items()}
    kind = headers.get("content-type", "application/octet-stream")
    extension = "html" if "html" in kind else "bin"
    body = store.capture_body(kept)
    return Response(
        body,
        media_type=kind,
        headers={
            "Content-Disposition": f'attachment; filename="article-{article_id}.{extension}"',
            # Opened anyway (a browser told to), it runs nothing and reaches nothing.
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@router.get("/api/v1/feeds", response_model=list[FeedOut], tags=["feeds"])
def feeds(request: Request) -> list[dict[str, Any]]:
    """Every feed with its health: last and next poll, status, errors, article counts.
    Failing feeds first."""
    return [health_record(h) for h in store_of(request).feed_health()]


@router.get("/api/v1/feeds/{feed_id}", response_model=FeedOut, tags=["feeds"])
def feed(request: Request, feed_id: Id) -> dict[str, Any]:
    """One feed with its health."""
    found = store_of(request).feed_health(feed_id)
    if not found:
        raise NotFoundError(f"no feed {feed_id} in the archive")
    return health_record(found[0])


@router.get("/api/v1/stats", response_model=StatsOut, tags=["archive"])
def stats(request: Request) -> dict[str, Any]:
    """Archive counts, failures by reason, and articles stored per day per feed (30 days)."""
    return archive_stats(store_of(request))


@router.get(
    "/api/v1/export",
    tags=["archive"],
    response_class=StreamingResponse,
    responses={200: {"content": {t.split(";")[0]: {} for t in EXPORT_TYPES.values()}}},
)
def export(
    request: Request,
    chosen: Chosen,
    fmt: Annotated[str, Query(alias="format", pattern="^(jsonl|csv)$")] = "jsonl",
) -> StreamingResponse:
    """Every matching article's whole record, oldest first, as JSON lines or CSV; streamed
    (the server holds a few hundred articles at a time, whatever the archive's size)."""
    store = store_of(request)
    # Checked before the answer starts: an unknown feed is a 400, not a stream cut short.
    rows = format_records(export_records(store, store.checked(chosen)), fmt)
    return StreamingResponse(
        (chunk.encode() for chunk in rows),
        media_type=EXPORT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="ingest-export.{fmt}"'},
    )


@router.get(
    "/search.atom",
    tags=["feeds of a search"],
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}},
)
def search_atom(request: Request, asked: Asked) -> Response:
    """The search's first page as an Atom feed (same parameters as /api/v1/articles)."""
    body = syndication.atom(find(store_of(request), asked).hits, asked.q, str(request.url))
    return _feed(request, body, "application/atom+xml")


@router.get(
    "/search.feed.json",
    tags=["feeds of a search"],
    response_class=Response,
    responses={200: {"content": {"application/feed+json": {}}}},
)
def search_json_feed(request: Request, asked: Asked) -> Response:
    """The search's first page as a JSON Feed 1.1 (same parameters as /api/v1/articles)."""
    body = syndication.json_feed(find(store_of(request), asked).hits, asked.q, str(request.url))
    return _feed(request, body, "application/feed+json")


def _feed(request: Request, body: bytes, media_type: str) -> Response:
    """A feed with its validator: a reader polling with If-None-Match gets 304 and no body
    while the search's first page is unchanged (the JSON Feed spec asks publishers for
    conditional GET, as readers poll feeds every few minutes)."""
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    asked = {
        tag.strip().removeprefix("W/")
        for tag in request.headers.get("if-none-match", "").split(",")
    }
    if etag in asked or "*" in asked:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type=media_type, headers={"ETag": etag})


def health_record(health: Any) -> dict[str, Any]:
    return {
        **feed_record(health.feed),
        "articles": health.articles,
        "articles_ok": health.ok,
        "articles_pending": health.pending,
        "articles_failed": health.failed,
        "last_article_at": _iso(health.last_article_at),
    }


def archive_stats(store: Store) -> dict[str, Any]:
    now = utcnow()
    since = (now - timedelta(days=CHART_DAYS - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    days = store.daily_counts(since)
    return {
        **store.stats(now),
        "articles_per_day": [
            {"day": day.isoformat(), "feed_id": feed_id, "articles": count}
            for day, feed_id, count in days
        ],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
