"""What a page costs outside extraction in the libraries alone, before any of ingest's glue.

    python -m bench.cpu_floor                 # the 108 corpus pages, 3 rounds, medians
    python -m bench.cpu_floor --rounds 5 --json /tmp/floor.json

Issue 9 asks for at most 3 ms of CPU a page outside extraction (`bench.throughput`'s
"outside"). This measures, on the same corpus pages, each step the pipeline cannot leave out,
done the cheapest way its library allows, with nothing of ingest around it:

  http request     one GET of a gzipped page over a kept-alive loopback connection with
                   httpx's AsyncClient (one pool, the body read raw, not decoded), the client's
                   thread only (`time.thread_time`: the servers are other threads);
  feed entry       feedparser on the corpus' RSS and Atom feeds, a feed's time / its entries;
  inflate          the gzipped body inflated (ISA-L, as `ingest.inflate`);
  search index     the clean text and title inserted into an SQLite FTS5 table made as the
                   archive's (unicode61, remove_diacritics 2), 32 a transaction, commit
                   included, each text 10 times (1,080 rows, as `bench.throughput` stores);
  fingerprint      `ingest.stories.fingerprint` of the clean text (wire copies, issue 13);
  capture          `ingest.captures.pack` of a page that came gzipped: its SHA-256, and the
                   checksums that let it be kept as it came (issue 13; a page that came
                   unencoded is compressed at zstd 3 instead: 0.4-0.6 ms more).

The clean texts are ingest's own extraction of the pages (made once, not timed). The sum is a
lower bound of what `ingest fetch` spends outside extraction: it leaves out the archive's rows
(entries, articles and their indexes, captures, stories), passing pages to the workers and
back, and the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import feedparser
import httpx
from isal import isal_zlib

from bench.newsroom import DEFAULT_CORPUS, Newsroom, load_corpus
from ingest.captures import pack
from ingest.stories import fingerprint

FTS = """CREATE VIRTUAL TABLE fts USING fts5(title, text,
    tokenize='unicode61 remove_diacritics 2')"""
BATCH = 32


def per_item(step: Callable[[Any], object], items: Sequence[Any]) -> float:
    """CPU milliseconds of ``step`` an item, over all ``items``."""
    started = time.process_time()
    for item in items:
        step(item)
    return 1000 * (time.process_time() - started) / len(items)


async def _requests(urls: Sequence[str]) -> float:
    headers = {"accept-encoding": "gzip"}
    async with httpx.AsyncClient(headers=headers) as client:
        for url in urls[:8]:  # connections opened before the clock starts
            async with client.stream("GET", url) as response:
                await response.aread()
        started = time.thread_time()
        for url in urls:
            async with client.stream("GET", url) as response:
                async for _ in response.aiter_raw():
                    pass
        return 1000 * (time.thread_time() - started) / len(urls)


def search_index(texts: Sequence[tuple[str, str]]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "fts.sqlite3")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(FTS)
        db.commit()
        started = time.process_time()
        for start in range(0, len(texts), BATCH):
            db.executemany(
                "INSERT INTO fts (title, text) VALUES (?, ?)", texts[start : start + BATCH]
            )
            db.commit()
        spent = time.process_time() - started
        db.close()
    return 1000 * spent / len(texts)


def one_round(room: Newsroom, texts: list[tuple[str, str]]) -> dict[str, float]:
    urls = [url for url, _ in room.pages]
    decoded = [page.html for _, page in room.pages]
    gzipped = [gzip.compress(body, 6, mtime=0) for body in decoded]  # as the rooms serve them
    feeds = [r.body for (_, path), r in room.routes.items() if path.startswith("/feeds/")]
    entries = sum(len(feedparser.parse(body).entries) for body in feeds)
    return {
        "http request": asyncio.run(_requests(urls)),
        "feed entry": per_item(feedparser.parse, feeds) * len(feeds) / entries,
        "inflate": per_item(lambda b: isal_zlib.decompress(b, 16 + 15), gzipped),
        # As many rows as `bench.throughput` stores: an index's merges grow with it.
        "search index": search_index(texts * 10),
        "fingerprint": per_item(lambda t: fingerprint(t[1]), texts),
        # As served here (gzip): kept as it came, hashed and checked, not compressed again.
        "capture": per_item(
            lambda pair: pack(pair[0], pair[1], "gzip"), list(zip(decoded, gzipped, strict=True))
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_floor", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from ingest.extract import extract_article

    pages = load_corpus(args.corpus)
    texts = []
    for page in pages:
        article = extract_article(page.html, page.original_url)
        texts.append((article.title or "", article.text))
    rounds: list[dict[str, float]] = []
    with Newsroom(pages, feeds=12, hosts=4) as room:
        for _ in range(args.rounds):
            rounds.append(one_round(room, texts))
    medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    print(f"CPU ms a page, {len(pages)} corpus pages, median of {args.rounds} rounds:")
    for name, value in medians.items():
        print(f"  {name:<16} {value:6.3f}")
    total = sum(medians.values())
    before = sum(v for k, v in medians.items() if k not in {"fingerprint", "capture"})
    print(
        f"  {'sum':<16} {total:6.3f}   (without issue 13's fingerprint and capture: {before:.3f})"
    )
    print("target for all the work outside extraction: 3 ms a page")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
