"""A config reloaded by the daemon takes effect at once: a shortened interval does not wait out
the longer one. In process, on a real archive, with the claim's clock passed in (no sleeping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.config import load_settings
from ingest.daemon import Daemon
from ingest.models import Feed
from ingest.records import utcnow
from ingest.store import Store

FEED = "https://news.example.org/rss"


def config(path: Path, database: str, *, feed_interval: str = "", interval: str = "1h") -> Path:
    own = f'interval = "{feed_interval}"\n' if feed_interval else ""
    path.write_text(
        f'[database]\nurl = "{database}"\n[schedule]\ninterval = "{interval}"\n'
        f'[[feeds]]\nurl = "{FEED}"\n{own}',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    archive = Store.open(database_url)
    yield archive
    archive.close()


def polled_an_hour_apart(store: Store, settings_path: Path) -> tuple[Daemon, Feed]:
    """The daemon's view after the feed's poll: its next poll an hour away."""
    settings = load_settings(settings_path, environ={})
    (feed,) = store.sync_feeds(settings.feeds, exclusive=True, rules=settings.schedule)
    assert feed.id is not None
    store.feed_polled(
        feed.id, status="ok", next_poll_at=utcnow() + timedelta(hours=1), interval=3600.0
    )
    daemon = Daemon(settings, store, config_path=settings_path)
    (feed,) = store.feeds()
    return daemon, feed


def due_after(store: Store, feed: Feed, minutes: float) -> list[str]:
    assert feed.last_polled_at is not None
    claimed = store.claim_feeds(feed.last_polled_at + timedelta(minutes=minutes))
    store.release()
    return [f.url for f in claimed]


def reload(daemon: Daemon) -> None:
    asyncio.run(daemon.reload(force=True))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"feed_interval": "1h"}, {"feed_interval": "10m"}),  # the feed's own interval
        ({"interval": "1h"}, {"interval": "10m"}),  # the schedule's default
    ],
)
def test_a_shortened_interval_takes_effect_at_the_next_reload(
    tmp_path: Path, store: Store, database_url: str, before: dict[str, str], after: dict[str, str]
) -> None:
    path = config(tmp_path / "ingest.toml", database_url, **before)
    daemon, feed = polled_an_hour_apart(store, path)
    assert due_after(store, feed, 12) == []

    config(path, database_url, **after)
    reload(daemon)

    assert due_after(store, feed, 12) == [FEED]  # 10 m ± 10% after the last poll, not 1 h
    (row,) = store.feeds()
    assert row.interval == 600.0
    assert daemon.settings.schedule.interval == (600.0 if "interval" in after else 3600.0)


def test_a_reload_that_changes_no_interval_moves_no_poll(
    tmp_path: Path, store: Store, database_url: str
) -> None:
    path = config(tmp_path / "ingest.toml", database_url, feed_interval="1h")
    daemon, feed = polled_an_hour_apart(store, path)
    planned: datetime | None = feed.next_poll_at

    path.write_text(path.read_text() + "name = 'Harbour'\n", encoding="utf-8")
    reload(daemon)

    (row,) = store.feeds()
    assert row.name == "Harbour"
    assert row.next_poll_at == planned
