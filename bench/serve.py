"""Server benchmark: `ingest serve` over a large synthetic archive, measured from clients.

    python -m bench.archive --articles 1000000 --dir DIR --keep --phases export   # build once
    python -m bench.serve --dir DIR                       # then measure the server on it
    python -m bench.serve --dir DIR --queries 200 --clients 8 --json /tmp/serve.json

The archive is `bench.archive`'s (brought up to date first: `ingest db upgrade`, timed). The
real `ingest serve` runs as a subprocess on a free loopback port. The one client is httpx; the
concurrent ones are processes, each one keep-alive connection of the standard library's lean
client, so that their own cost stays small against the server's.

1. Search from one client: `GET /api/v1/articles?q=w1+w2&limit=20`, `bench.archive`'s two-word
   queries (common+common, common+rare, rare+rare): p50 / p99 over the whole answer.
2. Searches/s from ``--clients`` concurrent clients, each running the query list (shifted).
3. An article by id (`GET /api/v1/articles/{id}`, random ids): p99 from one client, and
   requests/s from ``--clients`` clients.
4. Export: `GET /api/v1/export?format=jsonl` of the whole archive read by one client; articles/s
   and the server's peak RSS (every 50 ms), against its RSS before: memory stays constant.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.archive import Latency, make_queries
from bench.archive_corpus import Corpus
from bench.proctree import rss_kb


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "--database",
            url,
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/style.css", timeout=5)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("ingest serve did not answer within 60 s")


def timed(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return elapsed


def _client(port: int, paths: Sequence[str], start: Any, done: Any) -> None:
    """One client process: a keep-alive connection, its share of the requests in turn."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start.wait()
    for path in paths:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200, (path, answer.status)
    connection.close()
    done.put(len(paths))


def concurrent(port: int, clients: int, jobs: Sequence[tuple[str, dict[str, Any] | None]]) -> float:
    """Requests/s from ``clients`` processes sharing out ``jobs`` (each client its own turn).

    Processes with the standard library's HTTP client: threads with httpx spent more CPU
    than the server on an article by id, on the same two cores (215 against 800 requests/s
    from wrk, a C client, on one server)."""
    paths = [path + ("?" + urlencode(params) if params else "") for path, params in jobs]
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    processes = [
        context.Process(target=_client, args=(port, paths[i::clients], start, done))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    time.sleep(1.0)  # every client connected and waiting
    started = time.perf_counter()
    start.set()
    answered = sum(done.get() for _ in processes)
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"a client failed (exit {process.exitcode})")
    return answered / seconds


def export_memory(base: str, pid: int) -> dict[str, float]:
    before = rss_kb(pid) / 1024
    peak = before
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kb(pid) / 1024)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    lines = 0
    started = time.perf_counter()
    with (
        httpx.Client(base_url=base, timeout=None) as client,
        client.stream("GET", "/api/v1/export", params={"format": "jsonl"}) as answer,
    ):
        for line in answer.iter_lines():
            lines += bool(line)
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    return {
        "articles": lines,
        "seconds": seconds,
        "articles_per_second": lines / seconds,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ingest.store import Store

    path = Path(args.dir) / "archive.sqlite3"
    url = f"sqlite:///{path}"
    started = time.perf_counter()
    store = Store.open(url, create=False, migrate=False)
    before, after = store.upgrade()
    store.close()
    upgrade = time.perf_counter() - started
    log(f"schema {before} -> {after} in {upgrade:.1f} s")
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute("SELECT max(id) FROM articles").fetchone()
    queries = [q.text for q in make_queries(Corpus(total, seed=args.seed), args.queries)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(url, port)
    report: dict[str, Any] = {
        "articles": total,
        "upgrade_seconds": upgrade,
        "clients": args.clients,
    }
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            for q in queries[:10]:  # warm: the first requests import and compile
                timed(client, "/api/v1/articles", {"q": q, "limit": 20})
            log(f"search, one client, {len(queries)} queries")
            search = [timed(client, "/api/v1/articles", {"q": q, "limit": 20}) for q in queries]
            report["search_ms"] = asdict(Latency.of(search))
            rng = random.Random(args.seed)
            ids = [rng.randint(1, total) for _ in range(args.lookups)]
            log(f"article by id, one client, {len(ids)} ids")
            lookups = [timed(client, f"/api/v1/articles/{i}") for i in ids]
            report["article_ms"] = asdict(Latency.of(lookups))
        log(f"{args.clients} clients: searches")
        jobs = [("/api/v1/articles", {"q": q, "limit": 20}) for q in queries]
        report["searches_per_second"] = concurrent(port, args.clients, jobs)
        log(f"{args.clients} clients: articles by id")
        report["articles_per_second"] = concurrent(
            port, args.clients, [(f"/api/v1/articles/{i}", None) for i in ids * 5]
        )
        log("export, one client")
        report["export"] = export_memory(base, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    report["load_average_end"] = os.getloadavg()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="bench.archive's --dir, built with --keep")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
