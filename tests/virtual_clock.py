"""A virtual clock for scheduling tests: time passes only while every task sleeps.

``sleep(s)`` parks the task until ``now + s``; once every other task has run as far as it can
(waiting or sleeping), time jumps to the earliest parked task's wake-up and wakes it. So
concurrent sleepers wake in order at their own times, as on a real clock, and nothing really
sleeps. ``advance`` moves time by hand between steps.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

SETTLE_TURNS = 20  # event-loop turns given to the other tasks before time jumps


class VirtualClock:
    """Monotonic seconds; pass ``clock`` as the clock and ``clock.sleep`` as the sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.waits: list[float] = []  # every sleep asked for, in order
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), woken))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.ensure_future(self._drive())
        await woken

    async def _drive(self) -> None:
        while self._sleepers:
            for _ in range(SETTLE_TURNS):
                await asyncio.sleep(0)
            at, _, woken = heapq.heappop(self._sleepers)
            if woken.done():  # its sleeper was cancelled
                continue
            self.now = max(self.now, at)
            woken.set_result(None)
