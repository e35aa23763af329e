"""Who may read: nobody needs a token on a loopback address; an exposed server requires one,
sent as ``Authorization: Bearer`` by API clients, or typed once on the login page by people,
who then carry a session cookie (HttpOnly, SameSite) derived from it."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

COOKIE = "ingest_session"
COOKIE_MAX_AGE = 30 * 86400


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listen address's host) only accepts connections from this
    machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def session_value(token: str) -> str:
    """The cookie a login sets: a MAC of the token, so the cookie never holds the token and
    a new token ends every session."""
    return hmac.new(token.encode(), b"ingest serve session", hashlib.sha256).hexdigest()


def authorized(token: str, authorization: str | None, cookie: str | None) -> bool:
    """Whether a request carries the token (Bearer) or a session cookie made from it."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    return cookie is not None and hmac.compare_digest(
        cookie.encode(), session_value(token).encode()
    )


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (never //host or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
