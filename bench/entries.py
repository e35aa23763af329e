"""Recording a feed document's entries (`Store.record_entries`), per shape of feed.

    python -m bench.entries                        # SQLite, 20 feeds x 100 entries, 5 rounds
    python -m bench.entries --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    PYTHONPATH=/tmp/ingest-before python -m bench.entries   # the same against other code

Each round records, into a fresh archive, ``--feeds`` documents of ``--entries`` entries of
each shape, then records the same documents again (a poll answered 200 with nothing new):

  news        every entry its own link (with tracking parameters, as feeds send them);
  podcast     every entry on the show's page (distinct guids, titles and dates);
  microblog   entries on fragments of day pages, ten posts a page.

and reports milliseconds per entry, medians over the rounds. Only the store's work is timed
(parsing feeds is not); the archive's file or schema is made before the clock starts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from ingest.config import FeedSettings
from ingest.entryparts import entry_key
from ingest.records import FeedEntry
from ingest.store import Store

START = datetime(2025, 3, 1, tzinfo=UTC)


def _entry(n: int, guid: str, link: str) -> FeedEntry:
    return FeedEntry(
        key=entry_key(guid, link, None, None),
        guid=guid,
        link=link,
        title=f"Entry {n} of the day",
        summary=None,
        content=f"What entry {n} says, in a sentence or two of plain text.",
        published=START + timedelta(hours=n),
    )


SHAPES: dict[str, Callable[[int, int], FeedEntry]] = {
    "news": lambda f, n: _entry(
        n, f"news-{f}-{n}", f"https://news{f}.example.org/story/{n}?utm_source=rss&utm_medium=feed"
    ),
    "podcast": lambda f, n: _entry(n, f"show-{f}-ep-{n}", f"https://show{f}.example.org/"),
    "microblog": lambda f, n: _entry(
        n, f"log-{f}-{n}", f"https://log{f}.example.net/2025/03/{n // 10:02d}.html#a{n:04d}"
    ),
}


def _archive(database: str | None, directory: Path) -> tuple[str, Callable[[], None]]:
    """A fresh archive's URL, and how to drop it."""
    if database is None:
        path = directory / f"{uuid.uuid4().hex}.sqlite3"
        return f"sqlite:///{path}", lambda: path.unlink()
    schema = f"bench_entries_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    return f"{database}?options=-csearch_path%3D{schema}", drop


def round_(shape: str, args: argparse.Namespace, directory: Path) -> tuple[float, float]:
    """(ms per entry of the first poll, ms per entry of a poll with nothing new)."""
    url, drop = _archive(args.database, directory)
    store = Store.open(url)
    try:
        feeds = store.sync_feeds(
            [FeedSettings(url=f"https://feeds.example.org/{shape}/{f}") for f in range(args.feeds)]
        )
        documents = [[SHAPES[shape](f, n) for n in range(args.entries)] for f in range(args.feeds)]
        timings = []
        for _ in ("first", "again"):
            started = time.perf_counter()
            for feed, entries in zip(feeds, documents, strict=True):
                store.record_entries(feed, entries, hold=False)
            timings.append((time.perf_counter() - started) * 1000 / (args.feeds * args.entries))
    finally:
        store.close()
        drop()
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-entries-") as tmp:
        results: dict[str, list[tuple[float, float]]] = {shape: [] for shape in SHAPES}
        for _ in range(args.repeat):
            for shape in SHAPES:  # interleaved, so that the machine's load hits every shape
                results[shape].append(round_(shape, args, Path(tmp)))
    print(f"{'shape':<10} {'first poll ms/entry':>20} {'nothing new ms/entry':>21}")
    for shape, runs in results.items():
        first = statistics.median(r[0] for r in runs)
        again = statistics.median(r[1] for r in runs)
        print(f"{shape:<10} {first:>20.3f} {again:>21.3f}")


if __name__ == "__main__":
    main()
