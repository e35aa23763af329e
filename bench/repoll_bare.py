"""The bare minimum of a re-poll: conditional GETs with httpx, nothing else.

    python -m bench.repoll_bare MANIFEST [--concurrency 32] [--db ARCHIVE]

Run by `bench.repoll` as a fresh process. MANIFEST is a JSON list of
``{"url", "etag", "last_modified"}``; every URL is requested once with ``If-None-Match`` /
``If-Modified-Since`` through one ``httpx.AsyncClient`` holding at most ``--concurrency``
connections, with at most that many requests handed to the client at once (a semaphore, as
`ingest` has: httpcore's pool rescans its whole queue of waiting requests every time a
connection frees up, so a thousand requests queued inside it cost seconds of CPU; see
encode/httpcore#1035; ``--queue-in-pool`` shows that). With ``--db`` each answer is also
written to that archive's ``feeds`` row and committed, one transaction per feed, as the
pipeline records each poll (the cost of the commits alone, without an ORM). Prints one JSON
object: statuses and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"


async def poll_all(
    manifest: list[dict[str, str]], concurrency: int, db: str | None, *, queue_in_pool: bool
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    connection = sqlite3.connect(db) if db else None
    if connection is not None:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    async with httpx.AsyncClient(
        limits=limits, timeout=30, headers={"User-Agent": "repoll-bare/1"}
    ) as client:
        gate = asyncio.Semaphore(len(manifest) if queue_in_pool else concurrency)

        async def poll(item: dict[str, str]) -> None:
            async with gate:
                await poll_one(item)

        async def poll_one(item: dict[str, str]) -> None:
            headers = {"Accept": ACCEPT}
            if item.get("etag"):
                headers["If-None-Match"] = item["etag"]
            if item.get("last_modified"):
                headers["If-Modified-Since"] = item["last_modified"]
            response = await client.get(item["url"], headers=headers)
            statuses[response.status_code] += 1
            if connection is not None:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
                connection.execute(
                    "UPDATE feeds SET last_polled_at = ?, last_status = ?, next_poll_at = ?, "
                    "error_count = 0 WHERE url = ?",
                    (now, "not_modified", now, item["url"]),
                )
                connection.commit()

        await asyncio.gather(*(poll(item) for item in manifest))
    if connection is not None:
        connection.close()
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.repoll_bare",
        description="Send conditional GETs for every feed of MANIFEST (run by bench.repoll).",
    )
    parser.add_argument("manifest", help='JSON list of {"url", "etag", "last_modified"}')
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--db", help="also record each poll in this archive, one commit each")
    parser.add_argument(
        "--queue-in-pool",
        action="store_true",
        help="no semaphore: queue every request in httpx's pool at once (slow)",
    )
    args = parser.parse_args(argv)
    manifest = json.loads(Path(args.manifest).read_text(encoding="utf-8"))
    start = time.perf_counter()
    statuses = asyncio.run(
        poll_all(manifest, args.concurrency, args.db, queue_in_pool=args.queue_in_pool)
    )
    print(
        json.dumps(
            {
                "feeds": len(manifest),
                "statuses": {str(k): v for k, v in statuses.items()},
                "not_modified": statuses.get(304, 0),
                "seconds": time.perf_counter() - start,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
