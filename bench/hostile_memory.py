"""Peak memory of `ingest daemon` on a hostile web of many hosts.

    python -m bench.hostile_memory                       # 48 hostile hosts, about a minute
    python -m bench.hostile_memory --hosts 16 --json /tmp/memory.json

Serves ``--hosts`` hostile servers (`tests.hostile.HostileWeb`) on 127.0.0.2, 127.0.0.3, ...
and one well-behaved feed site (`bench.newsroom.LoopbackSite`) on the next address, with two
feeds per hostile host: an RSS feed listing that host's hostile pages, and the host's
``/gzip-bomb.rss`` (a feed that inflates to 1 GiB). The pages of each host:

  /gzip-bomb          ~1 MB of gzip that inflates to 1 GiB
  /huge, /huge-close  200 MB of paragraphs, chunked / close-delimited
  /huge-declared      Content-Length 5 GB, 1 KB sent
  /huge-understated   Content-Length 2000, then 200 MB
  /ok/1..3.html       ordinary articles

With ``--big-every N``, on every Nth host /huge and /huge-close are 9.5 MB, just under the page
cap, so that they reach extraction: what an extraction worker's tree of such a page costs
(about 270 MB a worker for 9.5 MB of paragraphs) is then measured too. The default (0) is the
hostile web of the target: everything on it that is big is refused at the cap.

Then it runs the real ``python -m ingest daemon`` on a fresh SQLite archive with the defaults
that bound memory (``max_page_bytes`` 10 MB, ``max_feed_bytes`` 20 MB, ``concurrency`` 32,
``per_host`` 2, one extraction worker per core, ``extract.timeout`` 30 s); only what the
loopback web needs differs (``allow_private_networks``, no /metrics listener, a fast tick).
The whole process tree (daemon, forkserver, extraction workers) is polled from /proc every
50 ms (`bench.proctree.TreeSampler`: RSS summed over the processes) until every page is
settled (stored, or failed with its reason); then SIGTERM. Reports the tree's peak RSS, each
role's own peak (the daemon, forkserver, workers: their peaks need not coincide), and how each
page ended.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.newsroom import EPOCH, RSS_TYPE, LoopbackSite, Resource, rss
from bench.proctree import TreeSampler, clean_env
from tests.hostile import HostileWeb

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 300.0
HOSTILE_PAGES = (
    "/gzip-bomb",
    "/huge",
    "/huge-close",
    "/huge-declared",
    "/huge-understated",
    "/ok/1.html",
    "/ok/2.html",
    "/ok/3.html",
)
BIG_BYTES = 9_500_000  # under the 10 MB page cap: these pages are extracted
SETTLE_TIMEOUT = 600.0


def add_feeds(site: LoopbackSite, webs: Sequence[HostileWeb]) -> list[str]:
    """One RSS feed per hostile host on ``site``, listing that host's pages; their URLs."""
    urls = []
    for n, web in enumerate(webs):
        items = [
            {
                "url": web.url(path),
                "title": f"{path} on host {n}",
                "summary": "A hostile page.",
                "published": str(EPOCH - i),
            }
            for i, path in enumerate(HOSTILE_PAGES)
        ]
        body = rss(f"Hostile host {n}", web.base_url, items, EPOCH)
        urls.append(site.add(0, f"/feeds/{n}.rss", Resource.make(body, RSS_TYPE)))
    return urls


def write_config(path: Path, database: Path, feeds: Sequence[str]) -> None:
    lines = [
        "[database]",
        f'url = "sqlite:///{database}"',
        "[fetch]",
        "allow_private_networks = true  # the hostile web is on loopback",
        "[daemon]",
        'listen = ""',
        'tick = "1s"',
    ]
    for n, url in enumerate(feeds):
        lines += ["[[feeds]]", f'url = "{url}"', f'name = "feed {n}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def settled(database: Path, expected: int) -> Counter[str] | None:
    """Pages by outcome once every one of ``expected`` has one (None before)."""
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2) as db:
            rows = db.execute(
                "SELECT status, coalesce(error, '') FROM articles WHERE url IS NOT NULL"
            ).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) < expected or any(status == "pending" for status, _ in rows):
        return None
    return Counter(status if status == "ok" else error for status, error in rows)


def run(hosts: int, big_every: int, python: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-memory-"))
    big = set(range(0, hosts, big_every)) if big_every else set()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        webs = [
            stack.enter_context(
                HostileWeb(address=f"127.0.0.{2 + n}", huge_bytes=BIG_BYTES)
                if n in big
                else HostileWeb(address=f"127.0.0.{2 + n}")
            )
            for n in range(hosts)
        ]
        site = stack.enter_context(LoopbackSite(1, first=2 + hosts))
        feeds = add_feeds(site, webs) + [web.url("/gzip-bomb.rss") for web in webs]
        database = tmp / "archive.sqlite3"
        config = tmp / "ingest.toml"
        write_config(config, database, feeds)
        argv = [python, "-m", "ingest", "--config", str(config), "daemon"]
        started = time.monotonic()
        log = (tmp / "daemon.log").open("wb")
        stack.callback(log.close)
        process = subprocess.Popen(
            argv, cwd=tmp, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        outcome: Counter[str] | None = None
        try:
            deadline = started + SETTLE_TIMEOUT
            while outcome is None and time.monotonic() < deadline and process.poll() is None:
                outcome = settled(database, hosts * len(HOSTILE_PAGES))
                time.sleep(0.05)
            seconds = time.monotonic() - started
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            sampler.stop.set()
            sampler.join()
        if outcome is None:
            tail = (tmp / "daemon.log").read_text(errors="replace")[-3000:]
            raise SystemExit(
                f"pages not settled after {SETTLE_TIMEOUT:.0f}s (exit {code}):\n{tail}"
            )
    return {
        "hosts": hosts,
        "big_hosts": len(big),
        "pages": hosts * len(HOSTILE_PAGES),
        "seconds": round(seconds, 1),
        "peak_tree_mb": round(sampler.peak_kb / 1024, 1),
        "peak_mb_by_role": {
            name: round(kb / 1024, 1) for name, kb in sorted(sampler.peak_kb_by_role.items())
        },
        "peak_processes": sampler.peak_processes,
        "outcomes": dict(sorted(outcome.items())),
        "exit_status": code,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hostile_memory",
        description="Peak RSS of the `ingest daemon` process tree on a hostile loopback web.",
        epilog="example: python -m bench.hostile_memory --hosts 16 --json /tmp/memory.json",
    )
    parser.add_argument("--hosts", type=int, default=48, help="hostile hosts (default 48)")
    parser.add_argument(
        "--big-every", type=int, default=0, help="every Nth host serves 9.5 MB pages (0: none)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs; the largest peak counts")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 200:
        parser.error("--hosts must be within 1..200")
    runs = [run(args.hosts, args.big_every, sys.executable) for _ in range(args.repeat)]
    peak = max(r["peak_tree_mb"] for r in runs)
    for n, r in enumerate(runs, 1):
        print(
            f"run {n}: {r['pages']} pages on {r['hosts']} hosts ({r['big_hosts']} with 9.5 MB "
            f"pages) settled in {r['seconds']} s; peak RSS of the tree {r['peak_tree_mb']} MB "
            f"(each role's own peak: {r['peak_mb_by_role']}; {r['peak_processes']} processes "
            f"at most); "
            f"outcomes {r['outcomes']}"
        )
    verdict = "met" if peak < TARGET_MB else "NOT met"
    print(f"peak RSS of the daemon's process tree: {peak} MB (target < {TARGET_MB:g}: {verdict})")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "peak_tree_mb": peak}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
