"""A database outage under a running daemon (issue 9): what is lost, what is logged.

A private PostgreSQL server (`tests.pgserver`) holds a fresh archive; a loopback newsroom
serves one feed of ``--pages`` distinct articles, each answered after ``--page-delay``
seconds; a real `ingest daemon` (text logs, as an operator reads them) archives them. Once
``--stop-after`` articles are stored the server is stopped (``pg_ctl -m immediate``) for
``--outage`` seconds, then started again, and the run is watched for ``--wait`` seconds::

    python -m bench.outage                       # 182 pages, 10 s outage, lease 20 s
    python -m bench.outage --source /tmp/main    # the same against another checkout

Reported: /healthz during the outage, log lines and tracebacks written during it, pages
still pending at the end (stranded), pages requested more than once, articles with more
than one capture, seconds from the server's restart to the last article stored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.daemon_process import free_port
from tests.newsroom import Newsroom
from tests.pgserver import PostgresServer

REPO = Path(__file__).resolve().parents[1]


def site(room: Newsroom, pages: int, delay: float) -> None:
    items = []
    for n in range(pages):
        path = f"/o/story-{n}.html"
        paragraphs = "".join(
            f"<p>Paragraph {k} of story {n}: the council met on day {n} to discuss the budget "
            f"of the harbour, the ferry and the schools; residents spoke for {k} hours.</p>"
            for k in range(5)
        )
        room.set(
            path,
            f"<html><head><title>Story {n}</title></head><body><article>"
            f"<h1>Story number {n}</h1>{paragraphs}</article></body></html>",
        )
        room.delay(path, delay)
        items.append(
            f"<item><title>Story {n}</title><link>{{{{BASE}}}}{path}</link><guid>s{n}</guid></item>"
        )
    room.set(
        "/feed.rss",
        "<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><link>{{BASE}}/</link>"
        + "".join(items)
        + "</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )


def health(port: int) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError as exc:
        return 0, str(exc)


def rows(engine: sa.Engine, sql: str) -> list[Any] | None:
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    except sa.exc.SQLAlchemyError:
        return None


def by_status(engine: sa.Engine) -> dict[str, int]:
    found = rows(engine, "SELECT status, count(*) FROM articles GROUP BY status")
    return {status: count for status, count in found or []}


def run(args: argparse.Namespace) -> dict[str, Any]:
    server = PostgresServer()
    room = Newsroom()
    work = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    engine = sa.create_engine(server.url, poolclass=sa.pool.NullPool)
    try:
        site(room, args.pages, args.page_delay)
        port = free_port()
        config = work / "ingest.toml"
        config.write_text(
            f'[database]\nurl = "{server.url}"\nlease = "{args.lease}"\n'
            f"[fetch]\nallow_private_networks = true\nhost_delay = 0.02\n"
            f"concurrency = {args.concurrency}\nper_host = {args.concurrency}\n"
            f'[daemon]\nlisten = "127.0.0.1:{port}"\ntick = "1s"\nretry_every = "2s"\n'
            f'[[feeds]]\nurl = "{room.url("/feed.rss")}"\nname = "T"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        env["PYTHONPATH"] = str(args.source)
        log = work / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "ingest", "--config", str(config), "daemon"],
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 120
            while by_status(engine).get("ok", 0) < args.stop_after:
                if time.monotonic() > deadline:
                    raise RuntimeError("the daemon stored nothing in two minutes")
                time.sleep(0.2)
            before = len(log.read_bytes().splitlines())
            server.stop()
            time.sleep(args.outage / 2)
            during = health(port)
            time.sleep(args.outage / 2)
            outage_log = log.read_bytes().splitlines()[before:]
            server.start()
            restarted = time.monotonic()
            last_stored = None
            while time.monotonic() < restarted + args.wait:
                statuses = by_status(engine)
                if sum(statuses.values()) == args.pages and not statuses.get("pending"):
                    last_stored = time.monotonic() - restarted
                    break
                time.sleep(0.5)
            after = health(port)
        finally:
            daemon.terminate()
            daemon.wait(30)
        asked = Counter(r.bare_path for r in room.requests if r.bare_path.startswith("/o/"))
        twice = rows(
            engine,
            "SELECT count(*) FROM (SELECT article_id FROM captures "
            "GROUP BY article_id HAVING count(*) > 1) AS x",
        )
        return {
            "pages": args.pages,
            "outage_seconds": args.outage,
            "healthz_during": during,
            "log_lines_during_outage": len(outage_log),
            "tracebacks_during_outage": sum(b"Traceback" in line for line in outage_log),
            "statuses_at_end": by_status(engine),
            "seconds_to_settle_after_restart": last_stored and round(last_stored, 1),
            "pages_requested_twice": sum(1 for n in asked.values() if n > 1),
            "articles_captured_twice": twice[0][0] if twice else None,
            "healthz_after": after[0],
        }
    finally:
        engine.dispose()
        room.close()
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=182)
    parser.add_argument("--page-delay", type=float, default=1.5, help="seconds per page")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lease", default="20s")
    parser.add_argument("--stop-after", type=int, default=20, help="articles stored first")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds stopped")
    parser.add_argument("--wait", type=float, default=90.0, help="seconds watched after")
    parser.add_argument("--source", type=Path, default=REPO, help="the ingest checkout run")
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
