"""When to poll a feed next: intervals, server hints, adaptation, error back-off, Retry-After.

Pure functions of their inputs (the current time is always passed in), so the scheduling rules
are tested with an injected clock. The rules:

- A feed's interval is its own (``[[feeds]] interval``) or the default; a feed without its own
  adapts to how often it publishes: half the median gap between its recent entries.
- The server's hints are floors: ``<ttl>``, ``sy:updatePeriod``/``updateFrequency``,
  ``Cache-Control: max-age`` and ``Expires`` say "not before", and are honoured.
- Everything is kept within ``[min_interval, max_interval]``, then spread by a stable ±10% so
  feeds that started together do not stay in lock-step.
- A failing feed waits ``error_backoff`` doubled per consecutive failure, up to
  ``max_error_backoff``, and is retried at that cap for as long as it fails.
- ``Retry-After`` (seconds or an HTTP date, capped) delays the whole host.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import pairwise

from ingest.config import ScheduleSettings
from ingest.errors import FetchError, HostBackoffError

SPREAD = 0.1  # ± share of an interval used to spread polls
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also accepts "²", which float() refuses
_PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0, "monthly": 2592000.0}
_PERIODS["yearly"] = 365 * 86400.0


@dataclass(frozen=True, slots=True)
class Timing:
    """What one poll taught us about when to come back."""

    ttl: float | None = None  # seconds, from the feed's <ttl> (given in minutes)
    update_period: float | None = None  # seconds, from sy:updatePeriod / sy:updateFrequency
    max_age: float | None = None  # seconds, from Cache-Control
    expires: datetime | None = None
    published: tuple[datetime, ...] = field(default=())  # the feed's entry times

    def floor(self, now: datetime) -> float:
        """The longest wait the server asked for, in seconds (0 if none)."""
        hints = [self.ttl, self.update_period, self.max_age]
        if self.expires is not None:
            hints.append((self.expires - now).total_seconds())
        return max((h for h in hints if h is not None and h > 0), default=0.0)


def feed_hints(ttl: str | None, period: str | None, frequency: str | None) -> dict[str, float]:
    """``<ttl>`` and the syndication module's period and frequency, in seconds."""
    hints: dict[str, float] = {}
    try:
        if ttl is not None and float(ttl) > 0:
            hints["ttl"] = float(ttl) * 60
    except ValueError:
        pass
    if period and period.strip().lower() in _PERIODS:
        try:
            times = max(float(frequency or 1), 1.0)
        except ValueError:
            times = 1.0
        hints["update_period"] = _PERIODS[period.strip().lower()] / times
    return hints


def cache_hints(headers: Mapping[str, str], now: datetime) -> dict[str, object]:
    """``Cache-Control: max-age`` (seconds) and ``Expires`` (a time) of a response."""
    hints: dict[str, object] = {}
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "max-age" and _DIGITS.fullmatch(value.strip()):
            hints["max_age"] = float(value.strip())
    expires = http_date(headers.get("expires"))
    if expires is not None and expires > now:
        hints["expires"] = expires
    return hints


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def retry_after(value: str | None, now: datetime, *, cap: float) -> datetime | None:
    """When a ``Retry-After`` (seconds or HTTP date) lets us back, at most ``cap`` s away."""
    if not value:
        return None
    text = value.strip()
    if _DIGITS.fullmatch(text):
        delay = float(text)
    else:
        moment = http_date(text)
        if moment is None:
            return None
        delay = (moment - now).total_seconds()
    return now + timedelta(seconds=min(max(delay, 0.0), cap))


def publishing_gap(published: Iterable[datetime]) -> float | None:
    """Median seconds between a feed's recent entries, or None with too few dated ones."""
    times = sorted(set(published), reverse=True)[:20]
    gaps = [(a - b).total_seconds() for a, b in pairwise(times)]
    return statistics.median(gaps) if len(gaps) >= 2 else None


def interval(
    fixed: float | None,
    timing: Timing,
    now: datetime,
    rules: ScheduleSettings,
    *,
    previous: float | None = None,
) -> float:
    """Seconds until the next poll of a feed that answered normally (200 or 304).

    ``previous`` is the interval chosen last time: a 304 tells nothing about publishing, so an
    adapted interval is kept.
    """
    chosen = fixed or (previous if rules.adaptive and previous else rules.interval)
    if fixed is None and rules.adaptive:
        gap = publishing_gap(timing.published)
        if gap is not None:
            chosen = gap / 2  # twice per typical gap: a new entry waits half a gap on average
    chosen = max(chosen, timing.floor(now))
    return _bounded(chosen, rules)


def _bounded(seconds: float, rules: ScheduleSettings) -> float:
    return min(max(seconds, rules.min_interval), rules.max_interval)


def reinterval(
    previous: float,
    *,
    fixed_before: float | None,
    fixed: float | None,
    before: ScheduleSettings,
    rules: ScheduleSettings,
) -> float | None:
    """The interval a feed takes at once because the config changed what it gives the feed,
    or None.

    ``previous`` is the interval chosen at the feed's last poll, under the schedule ``before``
    and its own interval ``fixed_before`` (None: it had none); ``fixed`` and ``rules`` are the
    config now. What the config gives a feed: its own interval, else the one it adapted to,
    else ``[schedule] interval``, within the bounds. A feed whose interval is longer than the
    config gave keeps it: the server asked for that (``<ttl>``, ``max-age``), and still does.
    """
    default_before = _bounded(before.interval, before)
    adapted = fixed_before is None and before.adaptive and previous != default_before

    def given(own: float | None, schedule: ScheduleSettings) -> float:
        if own is not None:
            return _bounded(own, schedule)
        if adapted and schedule.adaptive:
            return _bounded(previous, schedule)
        return _bounded(schedule.interval, schedule)

    was, now = given(fixed_before, before), given(fixed, rules)
    return now if now != was and previous <= was else None


def error_delay(error_count: int, rules: ScheduleSettings) -> float:
    """Seconds before polling a feed that failed ``error_count`` times in a row."""
    steps = min(max(error_count - 1, 0), 32)  # 2**32 times any backoff is past every cap
    return min(rules.error_backoff * 2**steps, rules.max_error_backoff)


def spread(now: datetime, seconds: float, key: str) -> datetime:
    """``now + seconds``, moved by a stable ±10% that differs from feed to feed."""
    digest = hashlib.sha256(f"{key}\x00{now.isoformat()}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return now + timedelta(seconds=seconds * (1 + SPREAD * (2 * share - 1)))


def page_retry(
    attempts: int, error: FetchError, now: datetime, *, first_retry: float, max_attempts: int
) -> tuple[int, datetime | None]:
    """(attempts so far, when to try again or None for never) after a page failed.

    Delays double from ``first_retry``; a Retry-After pushes the next try later still; a
    request we did not even send (the host asked us to wait) is not counted as an attempt;
    a page robots.txt forbids is not tried again.
    """
    if error.reason == "robots_disallowed":
        return attempts, None
    if isinstance(error, HostBackoffError):
        return attempts, error.retry_at
    attempts += 1
    if attempts >= max_attempts:
        return attempts, None
    at = now + timedelta(seconds=first_retry * 2 ** min(attempts - 1, 32))
    return attempts, max(at, error.retry_at) if error.retry_at else at


def next_check(
    changed_at: datetime, now: datetime, steps: Iterable[tuple[float, float]]
) -> datetime | None:
    """When to look at an article's page again (None: no more), by the age of its last
    change: the interval of the first step whose age is beyond it (`[versions] schedule`)."""
    age = (now - changed_at).total_seconds()
    for under, every in steps:
        if age < under:
            return now + timedelta(seconds=every)
    return None
