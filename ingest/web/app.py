"""The web application: the API (`ingest.web.api`) and the pages (`ingest.web.pages`) over
one read-only `Store`, behind one gate that sets the security headers, refuses anything but
reading, and asks for the token when one is set.

Errors are JSON with a message under /api and the feeds, a page elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest import __version__
from ingest.errors import NotFoundError, QueryError, StoreError, StoreUnavailableError
from ingest.store import Store
from ingest.web.auth import COOKIE, authorized
from ingest.web.listing import BadParameter

HERE = Path(__file__).resolve().parent
# Scripts and styles from this server only, never inline: a title or a text holding
# <script> or onerror= can run nothing even if something slipped through escaping.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
READING = frozenset({"GET", "HEAD"})
PUBLIC = ("/login", "/static/")
JSON_PREFIXES = ("/api/", "/search.atom", "/search.feed.json")


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
    env.globals["version"] = __version__
    return env


def create_app(store: Store, *, token: str = "") -> FastAPI:
    """The application over ``store``; with ``token``, every request but the login page
    must carry it (see `ingest.web.auth`)."""
    from ingest.web import api, pages

    app = FastAPI(
        title="ingest archive API",
        version=__version__,
        description="Read the news archive: search, articles, raw captures, feeds, stats, "
        "exports and changes for mirrors. Read-only. On a non-loopback address, send "
        "`Authorization: Bearer <token>`.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.token = token
    app.state.templates = templates()
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path))
    app.mount("/static", StaticFiles(directory=HERE / "static"))
    app.include_router(api.router)
    app.include_router(pages.router)

    app.add_middleware(Gate)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(StoreError, _store_error)
    return app


class Gate:
    """Every request passes here: anything but reading is refused, a missing token is
    asked for (401 for the API, the login page for people), and every answer gets the
    security headers. HEAD is answered as GET without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        refused = _refused(request)
        head = scope["method"] == "HEAD"

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            elif head:  # the server sends no body for HEAD anyway
                message = {**message, "body": b""}
            await send(message)

        if refused is not None:
            await refused(scope, receive, secured)
            return
        await self.app({**scope, "method": "GET"} if head else scope, receive, secured)


def _refused(request: Request) -> Response | None:
    """The answer to a request that may not pass, or None."""
    path = request.url.path
    if request.method not in READING and not (request.method == "POST" and path == "/login"):
        return error_response(request, 405, "the archive is read-only here: GET or HEAD only")
    token = request.app.state.token
    cookie = request.cookies.get(COOKIE)
    if path.startswith(PUBLIC) or authorized(token, request.headers.get("authorization"), cookie):
        return None
    if wants_json(request):
        response = error_response(request, 401, "a token is required: Authorization: Bearer")
        response.headers["WWW-Authenticate"] = 'Bearer realm="ingest"'
        return response
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(JSON_PREFIXES)


def error_response(request: Request, status: int, message: str, errors: Any = ()) -> Response:
    if wants_json(request):
        return JSONResponse({"message": message, "errors": list(errors)}, status_code=status)
    html = request.app.state.templates.get_template("error.html").render(
        status=status, message=message, errors=list(errors), request=request
    )
    return HTMLResponse(html, status_code=status)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        f"{'.'.join(str(p) for p in e['loc'] if p != 'query')}: {e['msg']}" for e in exc.errors()
    ]
    return error_response(request, 422, "bad parameters: " + "; ".join(errors), errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"nothing at {request.url.path}"
    elif exc.status_code == 405:
        message = "the archive is read-only here: GET or HEAD only"
    return error_response(request, exc.status_code, message)


async def _query_error(request: Request, exc: Exception) -> Response:
    status = (
        404 if isinstance(exc, NotFoundError) else 422 if isinstance(exc, BadParameter) else 400
    )
    return error_response(request, status, str(exc))


async def _store_error(request: Request, exc: Exception) -> Response:
    status = 503 if isinstance(exc, StoreUnavailableError) else 500
    return error_response(request, status, str(exc))
