"""Articles written to the archive together: a commit and a flush of the search index cost
more than a page's rows, so the pages extracted within `SAVE_WINDOW` seconds of the first of
them, up to `SAVE_BATCH`, are stored in one transaction (`Store.save_articles`).
"""

from __future__ import annotations

import asyncio

from ingest.errors import StoreError, StoreUnavailableError
from ingest.store import Save, Store

SAVE_BATCH = 32
SAVE_WINDOW = 0.25  # seconds


class Saves:
    """Articles waiting to be written together; each page's task awaits its own outcome."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[Save, asyncio.Future[int | None]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, save: Save) -> asyncio.Future[int | None]:
        """The id `Store.save_article` would give ``save``, once its batch is written (or the
        database error that kept it out)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self._waiting.append((save, future))
        if len(self._waiting) >= SAVE_BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(SAVE_WINDOW, self.flush)
        return future

    def flush(self) -> None:
        """Write what waits, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        try:
            outcomes: list[int | BaseException | None] = list(
                self.store.save_articles([save for save, _ in batch])
            )
        except StoreUnavailableError as exc:  # nothing went in: every page waits for the database
            outcomes = [exc] * len(batch)
        except StoreError:
            # One article the database refuses must not keep the others out: each alone.
            outcomes = [self._alone(save) for save, _ in batch]
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _alone(self, save: Save) -> int | BaseException | None:
        try:
            return self.store.save_articles([save])[0]
        except StoreError as exc:
            return exc
