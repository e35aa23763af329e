"""Whether the archive database can be used, as the daemon last found it.

Up until a database call fails with `StoreUnavailableError`; then down: the daemon claims
nothing and tries again after a wait that doubles with each failed try, from `FIRST_WAIT` to
`MAX_WAIT`, and is up again as soon as a try succeeds. Errors from work that was in flight
while it was down are counted, not news. A database that comes back and fails again soon
after goes on from the wait it had reached (it is not hammered every second while it flaps);
once up for `MAX_WAIT`, a new outage starts from `FIRST_WAIT` again. `open_when_available`
waits the same way for a database that does not answer when the daemon starts.

Written here rather than taken from a retry library (tenacity, backoff): those wrap one call
in a loop, where this is a state that the daemon's jobs, `/healthz` and the metrics all read.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from ingest.errors import StoreUnavailableError

log = logging.getLogger("ingest.daemon")
T = TypeVar("T")  # the store: opened by the caller, which knows its type

FIRST_WAIT = 1.0  # seconds before the first try once the database is found unavailable
MAX_WAIT = 60.0


class DatabaseState:
    """The database's state and the wait before the next try; ``clock`` is monotonic seconds."""

    def __init__(
        self,
        *,
        first: float = FIRST_WAIT,
        cap: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first = first
        self._cap = cap
        self._clock = clock
        self.error: str | None = None  # the last error, while down
        self.down_since: float | None = None
        self.retry_at: float | None = None  # when to try again, while down
        self._wait = 0.0  # the wait chosen last
        self._up_since = clock() - cap  # a first outage starts from the first wait

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, error: object, *, attempt: bool = False) -> float | None:
        """Record a database error. ``attempt``: this was the try the wait was for.

        Returns the wait before the next try when there is news to tell (the database just
        went down, or the try failed), None for one more error while it is known down.
        """
        now = self._clock()
        self.error = str(error)
        if self.down_since is None:
            self.down_since = now
            flapping = now - self._up_since < self._cap
            self._wait = min(2 * self._wait, self._cap) if flapping else self._first
        elif attempt:
            self._wait = min(2 * self._wait, self._cap)
        else:
            return None
        self.retry_at = now + self._wait
        return self._wait

    def succeeded(self) -> float | None:
        """The database answered: up. Returns how long it was down, None if it was up."""
        if self.down_since is None:
            return None
        now = self._clock()
        down_for = now - self.down_since
        self.down_since = self.retry_at = self.error = None
        self._up_since = now
        return down_for

    def down_for(self) -> float:
        """Seconds since the database was found unavailable (0 while up)."""
        return 0.0 if self.down_since is None else self._clock() - self.down_since


class _Stopped(Exception):
    """SIGTERM while waiting for the database at start."""


def open_when_available(
    open_store: Callable[[], T],
    *,
    state: DatabaseState | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """The archive, once its database answers: a daemon started before its database (a
    compose file bringing both up, a reboot) waits, saying so once per try, with the wait
    doubling as when the database goes away later. None if stopped (SIGTERM) meanwhile.
    Errors that are not unavailability (a bad URL, a schema too old) are raised at once."""
    state = state or DatabaseState()

    def stop(_signum: int, _frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                store = open_store()
            except StoreUnavailableError as exc:
                wait = state.failed(exc, attempt=not state.up)
                assert wait is not None  # a first failure and a failed try both set one
                log.warning(
                    "database unavailable at start; next try in %g s: %s",
                    wait,
                    exc,
                    extra={"error": "database_unavailable", "retry_in": wait},
                )
                sleep(wait)
                continue
            down_for = state.succeeded()
            if down_for is not None:
                log.info("database available after %.1f s", down_for)
            return store
    except (_Stopped, KeyboardInterrupt):
        log.info("stopped before the database answered")
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)
