"""The database's up/down state and the wait between tries, on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.dbstate import DatabaseState, open_when_available
from ingest.errors import StoreError, StoreUnavailableError


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_waits_one_second_then_doubles_up_to_a_minute() -> None:
    clock = Clock()
    state = DatabaseState(clock=clock)

    first = state.failed("connection refused")
    waits = [first]
    while state.retry_at is not None and len(waits) < 9:
        clock.now = state.retry_at
        waits.append(state.failed("connection refused", attempt=True))

    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert not state.up
    assert state.error == "connection refused"
    assert state.down_for() == 1 + 2 + 4 + 8 + 16 + 32 + 60 + 60


def test_errors_of_work_in_flight_are_not_news_and_do_not_move_the_next_try() -> None:
    clock = Clock()
    state = DatabaseState(clock=clock)
    assert state.failed("database is locked") == 1
    retry_at = state.retry_at

    clock.now += 0.5
    assert state.failed("database is locked") is None  # a page's write, while known down
    assert state.failed("disk I/O error") is None

    assert state.retry_at == retry_at
    assert state.error == "disk I/O error"  # /healthz shows the latest


def test_a_try_that_succeeds_brings_it_up_and_says_how_long_it_was_down() -> None:
    clock = Clock()
    state = DatabaseState(clock=clock)
    assert state.succeeded() is None  # up all along: nothing to tell
    state.failed("server closed the connection unexpectedly")
    clock.now += 1
    state.failed("connection refused", attempt=True)
    clock.now += 2

    assert state.succeeded() == 3
    assert state.up
    assert (state.error, state.retry_at, state.down_for()) == (None, None, 0.0)


def test_a_database_that_flaps_is_not_tried_every_second() -> None:
    clock = Clock()
    state = DatabaseState(clock=clock)
    state.failed("locked")
    clock.now += 1
    state.failed("locked", attempt=True)  # 2 s
    clock.now += 2
    state.failed("locked", attempt=True)  # 4 s
    clock.now += 4
    state.succeeded()

    clock.now += 10  # back for a moment only
    assert state.failed("locked") == 8  # goes on from the wait it had reached
    clock.now += 8
    state.succeeded()

    clock.now += 60  # up for the longest wait: a new outage starts afresh
    assert state.failed("locked") == 1


def test_waits_follow_the_bounds_given() -> None:
    clock = Clock()
    state = DatabaseState(first=0.25, cap=1.0, clock=clock)

    waits = [state.failed("x")]
    for _ in range(3):
        waits.append(state.failed("x", attempt=True))

    assert waits == [0.25, 0.5, 1.0, 1.0]


# --- waiting for the database at start ----------------------------------------------------------


def test_a_store_is_opened_once_the_database_answers_the_waits_doubling() -> None:
    tries: list[int] = []
    waits: list[float] = []
    opened = object()

    def open_store() -> Any:
        tries.append(1)
        if len(tries) < 4:
            raise StoreUnavailableError("database: cannot open x: connection refused")
        return opened

    assert open_when_available(open_store, sleep=waits.append) is opened
    assert waits == [1.0, 2.0, 4.0]


def test_an_error_that_is_not_an_outage_is_not_waited_on() -> None:
    def open_store() -> Any:
        raise StoreError("database: bad URL 'nope'")

    waits: list[float] = []
    with pytest.raises(StoreError, match="bad URL"):
        open_when_available(open_store, sleep=waits.append)
    assert waits == []
