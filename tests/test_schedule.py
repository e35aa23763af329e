"""`ingest.schedule`: poll intervals, server hints, error back-off, Retry-After, page retries.

Every function takes the current time as an argument, so these tests pass fixed ``now`` values
and never sleep.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from ingest.config import ScheduleSettings, load_settings, parse_duration
from ingest.errors import (
    ConfigError,
    FetchError,
    HostBackoffError,
    HTTPStatusError,
    NetworkError,
)
from ingest.polite import RobotsError
from ingest.schedule import (
    SPREAD,
    Timing,
    cache_hints,
    error_delay,
    feed_hints,
    interval,
    page_retry,
    reinterval,
    retry_after,
    spread,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RULES = ScheduleSettings()  # interval 30m, bounds [5m, 1d], adaptive, back-off 5m..6h
HOUR = 3600.0


def entries_every(*gaps_minutes: float, newest: datetime = NOW) -> tuple[datetime, ...]:
    """Entry times going back from ``newest``, separated by ``gaps_minutes`` in turn."""
    times = [newest]
    for gap in gaps_minutes:
        times.append(times[-1] - timedelta(minutes=gap))
    return tuple(times)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


# --- interval(): fixed, default, adaptive --------------------------------------------------------


def test_a_feeds_own_interval_is_obeyed() -> None:
    assert interval(2 * HOUR, Timing(), NOW, RULES) == 2 * HOUR


def test_the_default_interval_is_used_without_data() -> None:
    assert interval(None, Timing(), NOW, RULES) == RULES.interval


def test_adaptive_interval_is_half_the_median_gap_between_entries() -> None:
    # Gaps of 10m, 20m and 3h: the median (20m) ignores the outlier, a mean would not.
    timing = Timing(published=entries_every(10, 20, 180))
    assert interval(None, timing, NOW, RULES) == 10 * 60


def test_adaptive_interval_can_be_longer_than_the_default() -> None:
    timing = Timing(published=entries_every(240, 240, 240))
    assert interval(None, timing, NOW, RULES) == 2 * HOUR


def test_adaptive_interval_does_not_depend_on_entry_order() -> None:
    times = entries_every(60, 60, 60, 60)
    forward = interval(None, Timing(published=times), NOW, RULES)
    backward = interval(None, Timing(published=tuple(reversed(times))), NOW, RULES)
    assert forward == backward == 30 * 60


def test_adaptation_needs_at_least_three_dated_entries() -> None:
    two = Timing(published=entries_every(40))
    three = Timing(published=entries_every(40, 40))
    assert interval(None, two, NOW, RULES) == RULES.interval
    assert interval(None, three, NOW, RULES) == 20 * 60


def test_adaptation_does_not_override_a_fixed_interval() -> None:
    timing = Timing(published=entries_every(20, 20, 20, 20))
    assert interval(4 * HOUR, timing, NOW, RULES) == 4 * HOUR


def test_adaptation_is_off_when_adaptive_is_false() -> None:
    rules = ScheduleSettings(adaptive=False)
    timing = Timing(published=entries_every(20, 20, 20, 20))
    assert interval(None, timing, NOW, rules) == rules.interval
    assert interval(None, timing, NOW, rules, previous=5 * HOUR) == rules.interval


def test_previous_interval_is_kept_when_a_poll_brings_no_publishing_data() -> None:
    # A 304: no entries, so the interval adapted last time stands.
    assert interval(None, Timing(), NOW, RULES, previous=3 * HOUR) == 3 * HOUR


def test_previous_interval_gives_way_to_fresh_publishing_data() -> None:
    timing = Timing(published=entries_every(20, 20, 20))
    assert interval(None, timing, NOW, RULES, previous=3 * HOUR) == 10 * 60


def test_previous_interval_does_not_override_a_fixed_interval() -> None:
    assert interval(HOUR, Timing(), NOW, RULES, previous=3 * HOUR) == HOUR


# --- interval(): server hints are floors ----------------------------------------------------------


def test_feed_ttl_in_minutes_is_a_floor() -> None:
    timing = Timing(**feed_hints("120", None, None))  # type: ignore[arg-type]
    assert interval(None, timing, NOW, RULES) == 2 * HOUR
    assert interval(HOUR, timing, NOW, RULES) == 2 * HOUR  # also above a fixed interval


def test_feed_ttl_shorter_than_the_interval_does_not_shorten_it() -> None:
    timing = Timing(**feed_hints("1", None, None))  # type: ignore[arg-type]
    assert interval(None, timing, NOW, RULES) == RULES.interval


def test_syndication_update_period_and_frequency_are_a_floor() -> None:
    timing = Timing(**feed_hints(None, "daily", "4"))  # type: ignore[arg-type]
    assert interval(None, timing, NOW, RULES) == 6 * HOUR


def test_cache_control_max_age_is_a_floor() -> None:
    hints = cache_hints({"cache-control": "public, max-age=7200"}, NOW)
    assert interval(None, Timing(**hints), NOW, RULES) == 2 * HOUR  # type: ignore[arg-type]


def test_expires_is_a_floor() -> None:
    hints = cache_hints({"expires": http_date(NOW + timedelta(hours=3))}, NOW)
    assert interval(None, Timing(**hints), NOW, RULES) == 3 * HOUR  # type: ignore[arg-type]


def test_the_longest_server_hint_wins() -> None:
    timing = Timing(ttl=HOUR, update_period=2 * HOUR, max_age=600.0)
    assert interval(None, timing, NOW, RULES) == 2 * HOUR


def test_a_server_floor_above_an_adapted_interval_wins() -> None:
    timing = Timing(ttl=HOUR, published=entries_every(20, 20, 20))
    assert interval(None, timing, NOW, RULES) == HOUR


def test_interval_is_clamped_to_min_interval() -> None:
    assert interval(10.0, Timing(), NOW, RULES) == RULES.min_interval
    fast = Timing(published=entries_every(1, 1, 1, 1))
    assert interval(None, fast, NOW, RULES) == RULES.min_interval


def test_interval_is_clamped_to_max_interval() -> None:
    assert interval(30 * 86400.0, Timing(), NOW, RULES) == RULES.max_interval
    assert interval(None, Timing(ttl=7 * 86400.0), NOW, RULES) == RULES.max_interval
    slow = Timing(published=entries_every(*[7 * 24 * 60] * 3))
    assert interval(None, slow, NOW, RULES) == RULES.max_interval


def test_custom_bounds_apply() -> None:
    rules = ScheduleSettings(interval=600.0, min_interval=900.0, max_interval=1200.0)
    assert interval(None, Timing(), NOW, rules) == 900.0
    assert interval(None, Timing(ttl=HOUR), NOW, rules) == 1200.0


# --- reinterval(): the config changed what it gives a feed -------------------------------------


def test_a_shortened_own_interval_is_taken_at_once() -> None:
    assert reinterval(HOUR, fixed_before=HOUR, fixed=600.0, before=RULES, rules=RULES) == 600.0


def test_a_lengthened_own_interval_is_taken_too() -> None:
    assert reinterval(600.0, fixed_before=600.0, fixed=HOUR, before=RULES, rules=RULES) == HOUR


def test_an_unchanged_config_changes_nothing() -> None:
    assert reinterval(HOUR, fixed_before=HOUR, fixed=HOUR, before=RULES, rules=RULES) is None
    assert reinterval(1800.0, fixed_before=None, fixed=None, before=RULES, rules=RULES) is None


def test_a_shortened_default_reaches_feeds_still_at_the_default() -> None:
    shorter = ScheduleSettings(interval=600.0)

    assert reinterval(1800.0, fixed_before=None, fixed=None, before=RULES, rules=shorter) == 600.0


def test_a_shortened_default_leaves_an_adapted_interval_alone() -> None:
    # 2 h came from how often the feed publishes, not from the default.
    shorter = ScheduleSettings(interval=600.0)

    assert reinterval(2 * HOUR, fixed_before=None, fixed=None, before=RULES, rules=shorter) is None


def test_a_shortened_default_reaches_every_feed_without_adaptation() -> None:
    fixed_rules = ScheduleSettings(adaptive=False)
    shorter = ScheduleSettings(adaptive=False, interval=600.0)

    assert (
        reinterval(1800.0, fixed_before=None, fixed=None, before=fixed_rules, rules=shorter)
        == 600.0
    )


def test_a_lower_max_interval_pulls_in_an_adapted_interval() -> None:
    capped = ScheduleSettings(max_interval=HOUR)

    assert reinterval(3 * HOUR, fixed_before=None, fixed=None, before=RULES, rules=capped) == HOUR


def test_an_interval_the_server_asked_for_stays() -> None:
    # A <ttl> of 2 h made the interval longer than the 30 m the config gave: it still holds.
    assert reinterval(2 * HOUR, fixed_before=1800.0, fixed=600.0, before=RULES, rules=RULES) is None


def test_a_new_own_interval_replaces_the_default() -> None:
    assert reinterval(1800.0, fixed_before=None, fixed=600.0, before=RULES, rules=RULES) == 600.0


def test_a_new_interval_stays_within_the_bounds() -> None:
    assert reinterval(HOUR, fixed_before=HOUR, fixed=10.0, before=RULES, rules=RULES) == 300.0


# --- feed_hints ---------------------------------------------------------------------------------


def test_feed_hints_convert_ttl_minutes_to_seconds() -> None:
    assert feed_hints("60", None, None) == {"ttl": HOUR}
    assert feed_hints(" 90 ", None, None) == {"ttl": 90 * 60.0}


def test_feed_hints_divide_the_update_period_by_its_frequency() -> None:
    assert feed_hints(None, "hourly", None) == {"update_period": HOUR}
    assert feed_hints(None, "Daily ", "2") == {"update_period": 12 * HOUR}
    assert feed_hints(None, "weekly", "7") == {"update_period": 86400.0}


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "expected"),
    [
        ("soon", None, None, {}),
        ("", None, None, {}),
        ("0", None, None, {}),
        ("-30", None, None, {}),
        ("nan", None, None, {}),
        (None, "fortnightly", "2", {}),
        (None, "", "2", {}),
        (None, None, "4", {}),
        (None, "hourly", "often", {"update_period": HOUR}),  # bad frequency: once per period
        (None, "hourly", "0", {"update_period": HOUR}),
        (None, "hourly", "-3", {"update_period": HOUR}),
        ("abc", "daily", "x", {"update_period": 86400.0}),
    ],
)
def test_feed_hints_ignore_bad_values(
    ttl: str | None, period: str | None, frequency: str | None, expected: dict[str, float]
) -> None:
    assert feed_hints(ttl, period, frequency) == expected


# --- cache_hints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "max_age"),
    [
        ("max-age=600", 600.0),
        ("public, max-age=600", 600.0),
        ("no-transform, max-age=600, must-revalidate", 600.0),
        ("Public, Max-Age=600", 600.0),
        ("s-maxage=900", None),
        ("max-age=soon", None),
        ("max-age=-5", None),
        ("max-age", None),
        ("no-cache", None),
        ("", None),
    ],
)
def test_cache_hints_read_max_age_among_other_directives(
    header: str, max_age: float | None
) -> None:
    hints = cache_hints({"cache-control": header}, NOW)
    assert hints.get("max_age") == max_age


def test_cache_hints_read_a_future_expires() -> None:
    later = NOW + timedelta(hours=2)
    assert cache_hints({"expires": http_date(later)}, NOW) == {"expires": later}


def test_cache_hints_ignore_an_expires_in_the_past() -> None:
    assert cache_hints({"expires": http_date(NOW - timedelta(hours=2))}, NOW) == {}
    assert cache_hints({"expires": http_date(NOW)}, NOW) == {}


@pytest.mark.parametrize("value", ["0", "-1", "never", "Thu, 99 Foo 2024 25:61:00 GMT", ""])
def test_cache_hints_ignore_bad_expires_dates(value: str) -> None:
    assert cache_hints({"expires": value}, NOW) == {}


def test_cache_hints_without_headers_are_empty() -> None:
    assert cache_hints({}, NOW) == {}


def test_cache_hints_ignore_a_non_ascii_digit_max_age_instead_of_crashing() -> None:
    # BUG: "²".isdigit() is True but float("²") raises ValueError. Header values are decoded
    # as latin-1, so any server can send this byte (0xB2); the pipeline calls cache_hints
    # outside its error handling, so the ValueError escapes Ingestor.poll.
    assert cache_hints({"cache-control": "max-age=²"}, NOW) == {}


# --- error_delay --------------------------------------------------------------------------------


def test_error_delay_doubles_from_error_backoff() -> None:
    delays = [error_delay(count, RULES) for count in range(1, 6)]
    assert delays == [300.0, 600.0, 1200.0, 2400.0, 4800.0]


def test_error_delay_stays_at_max_error_backoff() -> None:
    assert error_delay(7, RULES) == 19200.0  # the last doubling under the 6h cap
    for count in (8, 9, 20, 33, 34, 100, 1000):
        assert error_delay(count, RULES) == RULES.max_error_backoff


@pytest.mark.parametrize("count", [2**31, 2**63, 10**100])
def test_error_delay_does_not_overflow_for_huge_counts(count: int) -> None:
    assert error_delay(count, RULES) == RULES.max_error_backoff


def test_error_delay_follows_custom_settings() -> None:
    rules = ScheduleSettings(error_backoff=60.0, max_error_backoff=500.0)
    delays = [error_delay(count, rules) for count in range(1, 7)]
    assert delays == [60.0, 120.0, 240.0, 480.0, 500.0, 500.0]


# --- retry_after ----------------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert retry_after("120", NOW, cap=86400) == NOW + timedelta(seconds=120)
    assert retry_after(" 120 ", NOW, cap=86400) == NOW + timedelta(seconds=120)
    assert retry_after("0", NOW, cap=86400) == NOW


def test_retry_after_as_an_http_date() -> None:
    later = NOW + timedelta(minutes=90)
    assert retry_after(http_date(later), NOW, cap=86400) == later


def test_retry_after_with_a_date_in_the_past_means_now() -> None:
    assert retry_after(http_date(NOW - timedelta(days=1)), NOW, cap=86400) == NOW


def test_retry_after_is_capped() -> None:
    assert retry_after("999999999", NOW, cap=3600) == NOW + timedelta(hours=1)
    far = http_date(NOW + timedelta(days=400))
    assert retry_after(far, NOW, cap=3600) == NOW + timedelta(hours=1)


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "1.5", "120s", "Fri, 99 Foo"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert retry_after(value, NOW, cap=86400) is None


def test_retry_after_non_ascii_digits_are_garbage_not_a_crash() -> None:
    # BUG: "²".isdigit() is True, then float("²") raises ValueError. A 429 carrying this
    # byte makes HttpClient.get raise ValueError instead of a FetchError.
    assert retry_after("²", NOW, cap=86400) is None


# --- spread ---------------------------------------------------------------------------------------


def test_spread_stays_within_ten_percent() -> None:
    seconds = 1000.0
    for n in range(500):
        moved = (spread(NOW, seconds, f"https://site{n}.example/feed") - NOW).total_seconds()
        assert seconds * (1 - SPREAD) <= moved <= seconds * (1 + SPREAD)
    assert pytest.approx(0.1) == SPREAD


def test_spread_is_stable_for_the_same_inputs() -> None:
    key = "https://example.org/feed.xml"
    assert spread(NOW, 1800.0, key) == spread(NOW, 1800.0, key)


def test_spread_differs_between_feeds() -> None:
    moments = {spread(NOW, 1800.0, f"https://example.org/feed{n}.xml") for n in range(50)}
    assert len(moments) == 50


def test_spread_of_zero_is_now() -> None:
    assert spread(NOW, 0.0, "https://example.org/feed.xml") == NOW


# --- page_retry -----------------------------------------------------------------------------------


def network_error() -> FetchError:
    return NetworkError("connection refused", url="https://example.org/a")


def test_page_retry_doubles_from_first_retry() -> None:
    attempts = 0
    waits: list[float] = []
    for _ in range(4):
        attempts, at = page_retry(attempts, network_error(), NOW, first_retry=600.0, max_attempts=5)
        assert at is not None
        waits.append((at - NOW).total_seconds())
    assert attempts == 4
    assert waits == [600.0, 1200.0, 2400.0, 4800.0]


def test_page_retry_gives_up_at_max_attempts() -> None:
    assert page_retry(4, network_error(), NOW, first_retry=600.0, max_attempts=5) == (5, None)
    assert page_retry(0, network_error(), NOW, first_retry=600.0, max_attempts=1) == (1, None)


def test_page_retry_retry_after_pushes_the_next_try_later() -> None:
    error = HTTPStatusError("HTTP 503", url="https://example.org/a", status=503)
    error.retry_at = NOW + timedelta(days=1)
    assert page_retry(0, error, NOW, first_retry=600.0, max_attempts=5) == (1, error.retry_at)


def test_page_retry_an_earlier_retry_after_does_not_bring_the_retry_forward() -> None:
    error = HTTPStatusError("HTTP 503", url="https://example.org/a", status=503)
    error.retry_at = NOW + timedelta(seconds=5)
    attempts, at = page_retry(2, error, NOW, first_retry=600.0, max_attempts=5)
    assert (attempts, at) == (3, NOW + timedelta(seconds=2400))


def test_page_retry_host_backoff_is_not_an_attempt() -> None:
    until = NOW + timedelta(hours=3)
    error = HostBackoffError("wait", url="https://example.org/a", retry_at=until)
    assert page_retry(2, error, NOW, first_retry=600.0, max_attempts=5) == (2, until)
    assert page_retry(4, error, NOW, first_retry=600.0, max_attempts=5) == (4, until)


def test_page_retry_never_retries_a_page_robots_disallows() -> None:
    error = RobotsError("disallowed", url="https://example.org/private")
    assert error.reason == "robots_disallowed"
    assert page_retry(0, error, NOW, first_retry=600.0, max_attempts=5) == (0, None)
    plain = FetchError("disallowed", url="https://example.org/p", reason="robots_disallowed")
    assert page_retry(1, plain, NOW, first_retry=600.0, max_attempts=5) == (1, None)


def test_page_retry_retries_an_unavailable_robots_txt() -> None:
    error = RobotsError("unreachable", url="https://example.org/a", reason="robots_unavailable")
    assert page_retry(0, error, NOW, first_retry=600.0, max_attempts=5) == (
        1,
        NOW + timedelta(seconds=600),
    )


def test_page_retry_does_not_overflow_for_a_huge_attempt_count() -> None:
    attempts, at = page_retry(10**6, network_error(), NOW, first_retry=1.0, max_attempts=10**9)
    assert attempts == 10**6 + 1
    assert at is not None and at > NOW


# --- parse_duration and config errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (" 15M ", 900.0),
        ("120", 120.0),
        ("0.5", 0.5),
        (120, 120.0),
        (1.5, 1.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "   ", "soon", "15x", "m", "1h30", "-5m", "1,5h", "h1"])
def test_parse_duration_refuses_bad_strings(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ingest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_feed_interval_in_duration_form_is_read(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        '[schedule]\nmin_interval = "1m"\n'
        '[[feeds]]\nurl = "https://example.org/feed.xml"\ninterval = "1h30m"\n',
    )
    settings = load_settings(path, environ={})
    assert settings.feeds[0].interval == 5400.0
    assert settings.schedule.min_interval == 60.0


@pytest.mark.parametrize("value", ['"soon"', '"15x"', "0", "-60", '""', "true"])
def test_a_bad_feed_interval_is_a_config_error(tmp_path: Path, value: str) -> None:
    path = config(
        tmp_path, f'[[feeds]]\nurl = "https://example.org/feed.xml"\ninterval = {value}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "feeds[0].interval" in message
    assert "\n" not in message


def test_min_interval_longer_than_max_interval_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, '[schedule]\nmin_interval = "2h"\nmax_interval = "1h"\n')
    with pytest.raises(ConfigError, match="min_interval is longer than max_interval") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


def test_min_interval_longer_than_max_interval_from_the_environment_is_a_config_error(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, '[schedule]\nmax_interval = "1h"\n')
    with pytest.raises(ConfigError, match="min_interval is longer than max_interval"):
        load_settings(path, environ={"INGEST_SCHEDULE_MIN_INTERVAL": "2h"})
