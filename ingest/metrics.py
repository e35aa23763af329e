"""Prometheus metrics (served by the daemon at /metrics); counted wherever work happens.

Only the daemon has anyone to scrape them: until it calls `enable`, every metric is a no-op
and prometheus_client is not even imported (a one-shot `ingest fetch` starts faster).
"""

from __future__ import annotations

from typing import Any


class _Off:
    """Takes every call a Prometheus metric takes, and does nothing."""

    def labels(self, *_: Any, **__: Any) -> _Off:
        return self

    def inc(self, *_: Any) -> None:
        pass

    def set(self, *_: Any) -> None:
        pass

    def observe(self, *_: Any) -> None:
        pass


POLLS: Any = _Off()
ENTRIES_NEW: Any = _Off()
ARTICLES: Any = _Off()
FAILURES: Any = _Off()
QUEUE: Any = _Off()
PENDING: Any = _Off()
FETCH_SECONDS: Any = _Off()
EXTRACT_SECONDS: Any = _Off()
DATABASE_UP: Any = _Off()
DATABASE_ERRORS: Any = _Off()
RECHECKS: Any = _Off()


def enable() -> None:
    """Make the metrics real (once per process: Prometheus registers each name once)."""
    global POLLS, ENTRIES_NEW, ARTICLES, FAILURES, QUEUE, PENDING, FETCH_SECONDS, EXTRACT_SECONDS
    global DATABASE_UP, DATABASE_ERRORS, RECHECKS
    if not isinstance(POLLS, _Off):
        return
    from prometheus_client import Counter, Gauge, Histogram

    POLLS = Counter("ingest_feed_polls_total", "Feed polls, by outcome.", ["status"])
    ENTRIES_NEW = Counter("ingest_entries_new_total", "Feed entries seen for the first time.")
    ARTICLES = Counter("ingest_articles_stored_total", "New articles stored.")
    FAILURES = Counter(
        "ingest_failures_total", "Failed feeds and pages, by kind and reason.", ["kind", "reason"]
    )
    QUEUE = Gauge("ingest_queue_depth", "Feeds and pages in flight or waiting, by kind.", ["kind"])
    PENDING = Gauge("ingest_pages_pending", "Article pages recorded but not fetched yet.")
    FETCH_SECONDS = Histogram(
        "ingest_fetch_seconds",
        "Time to fetch a feed or page.",
        ["kind"],
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    )
    EXTRACT_SECONDS = Histogram(
        "ingest_extract_seconds",
        "Time to extract one page.",
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    DATABASE_UP = Gauge(
        "ingest_database_up", "1 while the archive database answers, 0 while it is unavailable."
    )
    RECHECKS = Counter(
        "ingest_rechecks_total",
        "Archived pages looked at again, by outcome (unchanged, changed, gone, failed).",
        ["outcome"],
    )
    DATABASE_ERRORS = Counter(
        "ingest_database_errors_total",
        "Database calls that failed because the database was unavailable.",
    )
