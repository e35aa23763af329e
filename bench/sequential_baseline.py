"""The plain way: one page at a time with feedparser + httpx + trafilatura into SQLite.

    python -m bench.sequential_baseline DB FEED_URL...

Run by `bench.throughput` as a fresh process: the baseline a simple script sets. It polls each
feed, fetches each entry's page with one ``httpx.Client`` (keep-alive, gzip), extracts it with
``trafilatura.extract(..., favor_precision=True, include_comments=False)`` and inserts the text
into an SQLite table, committing after every page. Prints one JSON object with the counts.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

import feedparser
import httpx
import trafilatura


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if args else 2
    database, feeds = args[0], args[1:]
    start = time.perf_counter()
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS articles (url TEXT PRIMARY KEY, title TEXT, text TEXT, "
        "fetched_at REAL)"
    )
    pages = ok = failed = 0
    with httpx.Client(timeout=30, headers={"User-Agent": "sequential-baseline/1"}) as client:
        for feed_url in feeds:
            parsed = feedparser.parse(client.get(feed_url).content)
            for entry in parsed.entries:
                pages += 1
                try:
                    response = client.get(entry.link)
                    response.raise_for_status()
                except httpx.HTTPError:
                    failed += 1
                    continue
                text = trafilatura.extract(
                    response.text,
                    url=str(response.url),
                    favor_precision=True,
                    include_comments=False,
                )
                if not text:
                    failed += 1
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?)",
                    (entry.link, entry.get("title"), text, time.time()),
                )
                db.commit()
                ok += 1
    db.close()
    print(
        json.dumps(
            {"pages": pages, "ok": ok, "failed": failed, "seconds": time.perf_counter() - start}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
