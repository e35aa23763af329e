"""The pages: overview, search, article, feeds, login and the API's docs. Server-rendered
Jinja templates (autoescaped) over the same reads as the API; they work without JavaScript."""

from __future__ import annotations

import asyncio
import hmac
from datetime import date
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ingest.changes import Piece, by_line, changed_paragraphs, chars_changed, word_diff
from ingest.models import ArticleStatus, ContentSource
from ingest.query import article_url, media_note, pick_versions, record, with_feeds
from ingest.records import utcnow
from ingest.web.api import CHART_DAYS, Asked, Id, archive_stats, health_record, store_of
from ingest.web.auth import COOKIE, COOKIE_MAX_AGE, safe_next, session_value
from ingest.web.chart import draw
from ingest.web.listing import find

router = APIRouter(include_in_schema=False)
LOGIN_BODY_MAX = 4096
PAGING = ("cursor", "trail")
TRAIL = 20
SUBHEAD_CHARS = 80


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    template = request.app.state.templates.get_template(name)
    html = template.render(request=request, exposed=bool(request.app.state.token), **context)
    return HTMLResponse(html, status_code=status)


def web_url(url: str | None) -> str | None:
    """A link only to the web: a `javascript:` or `data:` URL from a feed is shown, not
    linked."""
    if url and urlsplit(url).scheme.lower() in ("http", "https"):
        return url
    return None


def is_subhead(paragraphs: list[str], n: int) -> bool:
    """Whether paragraph ``n`` reads as a subhead: the stored text is plain, and a subhead
    there is a short line without a sentence's end, between paragraphs of the body. Only
    how it is shown depends on it."""
    line = paragraphs[n]
    return (
        0 < n < len(paragraphs) - 1
        and len(line) <= SUBHEAD_CHARS
        and "\n" not in line
        and line[:1].isupper()
        and line[-1] not in ".!?:;,…\"'”’»)"
        and len(paragraphs[n + 1]) > 2 * len(line)
    )


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    store = store_of(request)
    data = archive_stats(store)
    # The feeds' rows only: their health counts every article (the feeds page pays that).
    names = {f.id: f.name or f.title or f.url for f in store.feeds() if f.id is not None}
    counts = [
        (date.fromisoformat(d["day"]), d["feed_id"], d["articles"])
        for d in data["articles_per_day"]
    ]
    chart = draw(counts, names, utcnow().date(), CHART_DAYS)
    return render(request, "overview.html", stats=data, chart=chart, days=CHART_DAYS)


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, asked: Asked) -> HTMLResponse:
    page = find(store_of(request), asked)
    kept = {k: v for k, v in request.query_params.items() if k not in PAGING and v}
    # The cursors of the pages before this one, so that "Previous page" can go back: a
    # keyset cursor only reads on. Kept to the last TRAIL pages ("First page" is always there).
    trail = [c for c in request.query_params.get("trail", "").split(".") if c][-TRAIL:]
    here = [*trail, asked.cursor or "-"]
    next_url = (
        f"/search?{urlencode({**kept, 'cursor': page.next_cursor, 'trail': '.'.join(here)})}"
        if page.next_cursor
        else None
    )
    previous_url = None
    if asked.cursor and trail:
        back = {"cursor": trail[-1]} if trail[-1] != "-" else {}
        rest = {"trail": ".".join(trail[:-1])} if len(trail) > 1 else {}
        previous_url = f"/search?{urlencode({**kept, **back, **rest})}"
    feeds = store_of(request).feeds()
    return render(
        request,
        "search.html",
        asked=asked,
        params=request.query_params,
        page=page,
        next_url=next_url,
        previous_url=previous_url,
        first_url=f"/search?{urlencode(kept)}" if asked.cursor else None,
        feeds=feeds,
        tags=sorted({tag for feed in feeds for tag in feed.tags or ()}),
        statuses=list(ArticleStatus),
        sources=list(ContentSource),
        feed_links={
            "Atom": f"/search.atom?{urlencode(kept)}",
            "JSON Feed": f"/search.feed.json?{urlencode(kept)}",
            "JSON": f"/api/v1/articles?{urlencode(kept)}",
        },
    )


@router.get("/articles/{article_id}", response_class=HTMLResponse)
def article(request: Request, article_id: Id) -> HTMLResponse:
    store = store_of(request)
    ((found, feed_urls),) = with_feeds(store, [store.article(str(article_id))])
    data = record(found, feed_urls)
    paragraphs = [p.strip() for p in (data["text"] or "").split("\n\n") if p.strip()]
    names = {f.url: f.name or f.title for f in store.feeds()}
    original = web_url(data["canonical_url"]) or web_url(data["final_url"]) or web_url(data["url"])
    return render(
        request,
        "article.html",
        article=data,
        blocks=[(is_subhead(paragraphs, n), p) for n, p in enumerate(paragraphs)],
        feeds=[(names.get(url) or url, url, web_url(url)) for url in feed_urls],
        media=[(item["url"], web_url(item["url"]), media_note(item)) for item in found.enclosures],
        original=original,
        shown_url=article_url(found),
        versions=store.versions(article_id),
    )


@router.get("/articles/{article_id}/diff", response_class=HTMLResponse)
def diff(
    request: Request,
    article_id: Id,
    first: Annotated[int | None, Query(alias="from", ge=1, le=2**31)] = None,
    second: Annotated[int | None, Query(alias="to", ge=1, le=2**31)] = None,
    whole: bool = False,
) -> HTMLResponse:
    """What changed between two versions of an article, word by word."""
    store = store_of(request)
    found, _ = store.article(str(article_id))
    versions = store.versions(article_id)
    if (first is None) != (second is None):
        first = second = None  # a half-made link: the last change
    old, new = pick_versions(versions, first, second)
    pieces = word_diff(old.text, new.text)
    if whole:
        blocks: list[list[Piece] | None] = [
            [part for p in paragraph for part in by_line(p)] for paragraph in _paragraphs(pieces)
        ]
    else:
        blocks = list(changed_paragraphs(pieces))
    return render(
        request,
        "diff.html",
        article=record(found, []),
        versions=versions,
        old=old,
        new=new,
        blocks=blocks,
        counts=chars_changed(pieces),
        whole=whole,
    )


def _paragraphs(pieces: list[Piece]) -> list[list[Piece]]:
    """Every paragraph of a diff, changed or not."""
    out: list[list[Piece]] = [[]]
    for piece in pieces:
        for part in by_line(piece):
            if part.op == "equal" and part.text.startswith("\n"):
                out.append([])
            else:
                out[-1].append(part)
    return [p for p in out if p]


@router.get("/feeds", response_class=HTMLResponse)
def feeds(request: Request) -> HTMLResponse:
    rows = [health_record(h) for h in store_of(request).feed_health()]
    return render(request, "feeds.html", feeds=rows, web_url=web_url)


@router.get("/api/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return render(request, "docs.html")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")))


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    body = await request.body()
    fields = parse_qs(body[:LOGIN_BODY_MAX].decode("utf-8", "replace"))
    given = (fields.get("token") or [""])[0]
    target = safe_next((fields.get("next") or ["/"])[0])
    token = request.app.state.token
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        await asyncio.sleep(0.5)  # a guess costs half a second
        return render(request, "login.html", status=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_value(token),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
