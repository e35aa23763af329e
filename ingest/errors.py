"""The error tree of `ingest`.

Every error names its stage and carries the URL (or file) it is about, so a log line or a
failure recorded in the database says what failed and where::

    IngestError
    ├── ConfigError          bad config file, key or value (CLI exit status 2)
    ├── UsageError           a request the command refuses as given (CLI exit status 2)
    ├── StoreError           the database is unusable (CLI exit status 1)
    │   └── StoreUnavailableError  not now: unreachable, connection lost, locked, disk full or
    │                              failing (the daemon waits and tries again)
    ├── QueryError           a malformed search query
    │   └── NotFoundError    no such article
    └── FetchError           one URL could not be turned into something useful
        ├── NetworkError     timeout, refused, reset, DNS, too many redirects
        ├── HTTPStatusError  4xx / 5xx answer (429/503 may carry a retry time)
        ├── HostBackoffError the host asked us to wait (Retry-After) and the time is not up
        ├── BlockedError     the URL's address is private and private networks are not allowed
        ├── TooLargeError    the body passed its size cap
        ├── FeedError        the bytes are not a feed feedparser can read
        └── ExtractionError  the page is not HTML, or has no extractable article

Third-party conventions (httpx exceptions, feedparser's ``bozo``, trafilatura's ``None``) are
translated into these at the module boundary that calls the library.
"""

from __future__ import annotations

from datetime import datetime


class IngestError(Exception):
    """Base of every error `ingest` raises on purpose."""


class ConfigError(IngestError):
    """A config file, key or value is wrong. The message names the file and the key."""


class UsageError(IngestError):
    """A command was asked something it refuses as given (a bad ``--to`` URL, copying into a
    database that holds another archive). The message says what to do instead."""


class StoreError(IngestError):
    """The archive database cannot be opened or written."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached or written for now, whatever is asked of it: the server
    refused or dropped the connection, or SQLite found the file locked by another writer past
    its busy timeout, the disk full or failing. The daemon stops claiming work and tries again
    with a back-off; any other `StoreError` is about one statement and its data."""


class QueryError(IngestError):
    """A search query is malformed."""


class NotFoundError(QueryError):
    """The article asked for is not in the archive."""


class FetchError(IngestError):
    """A URL could not be turned into a feed or an article.

    ``reason`` is a short stable slug ("timeout", "http_404", "not_html", ...) that is stored in
    the database and counted in summaries; the message is for people.
    """

    reason = "fetch_error"
    retry_at: datetime | None = None  # when the server said to come back (Retry-After)

    def __init__(
        self,
        message: str,
        *,
        url: str,
        reason: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        if reason is not None:
            self.reason = reason
        if retry_at is not None:
            self.retry_at = retry_at

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.url})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: rebuild by hand when crossing a process boundary.
        return (_rebuild, (type(self), self.args[0], self.url, self.__dict__))


def _rebuild(cls: type[FetchError], message: str, url: str, state: dict[str, object]) -> FetchError:
    error = FetchError.__new__(cls)
    FetchError.__init__(error, message, url=url)
    error.__dict__.update(state)
    return error


class NetworkError(FetchError):
    reason = "network"


class HTTPStatusError(FetchError):
    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message, url=url, reason=f"http_{status}")
        self.status = status


class HostBackoffError(FetchError):
    reason = "host_backoff"


class BlockedError(FetchError):
    reason = "blocked_address"


class TooLargeError(FetchError):
    reason = "too_large"


class FeedError(FetchError):
    reason = "bad_feed"


class ExtractionError(FetchError):
    reason = "no_article"
