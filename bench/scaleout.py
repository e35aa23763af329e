"""Scale-out: articles per second with 1, 2 and 3 daemons sharing one PostgreSQL archive, and
1 daemon on SQLite, in one run.

    python -m bench.scaleout                        # 2 rounds, medians; about 3 minutes
    python -m bench.scaleout --page-delay 0.2       # article pages answer after 200 ms
    python -m bench.scaleout --repeat 3 --json /tmp/scaleout.json
    python -m bench.scaleout --configs sqlite:1,postgresql:2 --repeat 1

The newsroom (`bench.newsroom`): the 108 pages of the extraction corpus (`--corpus`), each
served `--copies` (4) times as a distinct article (`bench.throughput.copies`), behind `--feeds`
(108) feeds, RSS 2.0 and Atom, on `--hosts` (4) loopback addresses. There are more feeds than
one daemon claims at once (``[fetch] concurrency``, 32): a daemon archives the pages of the
feeds it polled, so with fewer feeds the first daemon up would take all the work.
`--page-delay D` holds back every article page's response by D seconds, as a distant server's
round trips would: a daemon has at most hosts x `--per-host` (4 x 1) pages in flight, so it
fetches at most 4 / D pages a second, and more daemons add requests in flight.

Each configuration starts from a fresh archive, an SQLite file or a PostgreSQL schema of its
own (created, then dropped), brought to the current schema by one ``ingest db upgrade`` as a
deployment's migration step does, so the daemons do not race to create it. Then N real
``python -m ingest --config CFG daemon`` processes are started at once, each with its own
/metrics port, a 0.2 s tick, a 0.5 s retry and `--extract-workers` (1) extraction processes:
one each, so that N daemons are N extraction processes (with 0, one per core, a single daemon
would already keep every core extracting). The archive is polled every 50 ms until every
article is stored (status ok), then the daemons are sent SIGTERM.

Reported per configuration, medians over `--repeat` rounds (every round runs each
configuration once, in an order rotated from round to round, so that a shared machine's noise
falls on each alike): seconds from the daemons' start to the last article stored, articles/s
over that, and articles/s from the first article stored to the last (start-up left out); CPU
seconds of the daemons' process trees (all together, exact: this process is their subreaper),
of the PostgreSQL backends serving them (found by application_name, read from /proc), and the
cores these kept busy on average; and each daemon's share of the articles (its /metrics).

Exactly-once is checked in every run: as many ok articles as were served and no other rows, no
url_key twice, one capture per article, no lease left after the stop, each article page and
each feed requested once, and no two requests for one feed overlapping in time (the server's
log: workers send the same requests, so overlap is what can be checked). A failed check is
printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from bench.newsroom import DEFAULT_CORPUS, Newsroom, Request, load_corpus, path_kind
from bench.proctree import TreeSampler, become_subreaper, clean_env, cpu_seconds, reap_orphans
from bench.throughput import copies

CORES = os.cpu_count() or 1
POSTGRES = os.environ.get(
    "INGEST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
APPLICATION = "ingest-scaleout"  # the daemons' application_name: their backends are found by it
POLL = 0.05  # seconds between two looks at the archive
STOP_TIMEOUT = 30.0
STALL = 30.0  # seconds without a change in the archive: the run is stuck (start-up included)
DEFAULT_CONFIGS = "postgresql:1,postgresql:2,postgresql:3,sqlite:1"


@dataclass(frozen=True)
class Setup:
    backend: str  # "postgresql" or "sqlite"
    daemons: int

    @property
    def name(self) -> str:
        return f"{self.backend} x{self.daemons}"


def parse_setups(text: str) -> list[Setup]:
    setups = []
    for item in text.split(","):
        backend, _, count = item.strip().partition(":")
        if backend not in {"postgresql", "sqlite"} or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: expected postgresql:N or sqlite:N")
        setups.append(Setup(backend, int(count)))
    return setups


# --- the archive ---------------------------------------------------------------------------


class Archive:
    """A fresh, empty archive for one run: `url` for the daemons, queries for the benchmark."""

    def __init__(self, backend: str, folder: Path, postgres: str) -> None:
        self.backend = backend
        self.folder = folder
        self.postgres = postgres
        self.schema = f"scaleout_{uuid.uuid4().hex[:12]}"
        self.url = ""
        self.engine: sa.Engine | None = None
        self._admin: sa.Engine | None = None

    def __enter__(self) -> Archive:
        if self.backend == "sqlite":
            path = self.folder / "archive.sqlite3"
            path.touch()  # `ingest db upgrade` refuses a missing file, migrates an empty one
            self.url = reader = f"sqlite:///{path}"
        else:
            self._admin = sa.create_engine(self.postgres, pool_size=1)
            with self._admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {self.schema}")
            join = "&" if "?" in self.postgres else "?"
            reader = f"{self.postgres}{join}options=-csearch_path%3D{self.schema}"
            self.url = f"{reader}&application_name={APPLICATION}"
        # One connection kept open: a new PostgreSQL backend per look would cost the server
        # CPU that the daemons compete for.
        self.engine = sa.create_engine(reader, pool_size=1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.engine is not None:
            self.engine.dispose()
        if self._admin is not None:
            with self._admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            self._admin.dispose()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]

    def by_status(self) -> Counter[str]:
        try:
            rows = self.rows("SELECT status, count(*) FROM articles GROUP BY status")
        except sa.exc.SQLAlchemyError:
            return Counter()  # locked for a moment (SQLite): look again at the next poll
        return Counter({str(status): int(n) for status, n in rows})

    def backend_pids(self) -> set[int]:
        """PostgreSQL server processes serving the daemons' connections."""
        if self._admin is None:
            return set()
        with self._admin.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
                {"app": APPLICATION},
            )
            return {int(pid) for (pid,) in rows}


class BackendSampler(threading.Thread):
    """CPU seconds of the PostgreSQL backends of the run, from /proc (a lower bound: a
    backend's last moments before it exits are missed). None when the server is not local."""

    def __init__(self, archive: Archive) -> None:
        super().__init__(name="backend-sampler", daemon=True)
        self.archive = archive
        self.cpu: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        pids: set[int] = set()
        looked = 0.0
        while True:
            if time.monotonic() - looked > 0.5:  # new connections come and go rarely
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    pids |= self.archive.backend_pids()
                looked = time.monotonic()
            for pid in pids:
                used = cpu_seconds(pid)
                if used is not None:
                    self.cpu[pid] = used
            if self.stop.wait(0.1):
                return

    def total(self) -> float | None:
        return sum(self.cpu.values()) if self.cpu else None


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Run:
    setup: str
    backend: str
    daemons: int
    round: int
    expected: int
    articles: int  # stored with status ok
    seconds: float  # daemons started -> last article stored (or gave up)
    first_seconds: float | None  # daemons started -> first article stored
    first_count: int  # articles already stored at that first look
    cpu_seconds: float  # the daemons' process trees, all together
    tree_cpu_seconds: list[float]  # each tree's, from /proc polls (a lower bound)
    backend_cpu_seconds: float | None  # the PostgreSQL backends serving them
    server_cpu_seconds: float  # this process meanwhile: the newsroom, the archive polls
    stored_by: list[int]  # articles each daemon stored (its /metrics)
    polled_by: list[int]  # feed polls each daemon made
    exit_codes: list[int | None]
    load: tuple[float, float]  # 1-minute load average before and after
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.articles / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_rate(self) -> float | None:
        if self.first_seconds is None or self.seconds <= self.first_seconds:
            return None
        return (self.articles - self.first_count) / (self.seconds - self.first_seconds)

    @property
    def cores_busy(self) -> float:
        used = self.cpu_seconds + (self.backend_cpu_seconds or 0.0)
        return used / self.seconds if self.seconds > 0 else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    path: Path, url: str, feeds: Sequence[str], port: int, args: argparse.Namespace
) -> None:
    lines = [
        "[database]",
        f'url = "{url}"',
        "[fetch]",
        "allow_private_networks = true  # the newsroom is on loopback",
        "host_delay = 0",
        f"per_host = {args.per_host}",
        "[extract]",
        f"workers = {args.extract_workers}",
        "[daemon]",
        f'listen = "127.0.0.1:{port}"',
        'tick = "0.2s"',
        'retry_every = "0.5s"',
    ]
    for n, feed in enumerate(feeds):
        lines += ["[[feeds]]", f'url = "{feed}"', f'name = "feed {n}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def scrape(port: int) -> dict[str, float]:
    """Each series of a daemon's /metrics, summed over its labels."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name.split("{", 1)[0]] += float(value)
    return out


def run_setup(
    setup: Setup, room: Newsroom, args: argparse.Namespace, tmp: Path, round_no: int
) -> Run:
    folder = tmp / f"{setup.backend}-{setup.daemons}-{round_no}"
    folder.mkdir()
    expected = len(room.pages)
    env = clean_env()
    python = sys.executable
    with Archive(setup.backend, folder, args.postgres) as archive:
        upgrade = subprocess.run(
            [python, "-m", "ingest", "--database", archive.url, "db", "upgrade"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if upgrade.returncode != 0:
            raise SystemExit(f"ingest db upgrade failed:\n{upgrade.stderr}")
        ports = [free_port() for _ in range(setup.daemons)]
        configs = []
        for n, port in enumerate(ports):
            configs.append(folder / f"daemon-{n}.toml")
            write_config(configs[-1], archive.url, room.feed_urls, port, args)
        room.reset_counts()
        room.requests = []
        backends = BackendSampler(archive)
        backends.start()
        load_before = os.getloadavg()[0]
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_before = time.process_time()
        started = time.monotonic()
        daemons: list[subprocess.Popen[bytes]] = []
        samplers: list[TreeSampler] = []
        logs: list[Path] = []
        try:
            for n, config in enumerate(configs):
                logs.append(folder / f"daemon-{n}.log")
                with logs[-1].open("wb") as log:
                    daemons.append(
                        subprocess.Popen(
                            [python, "-m", "ingest", "--config", str(config), "daemon"],
                            cwd=folder,
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
                samplers.append(TreeSampler(daemons[-1].pid))
                samplers[-1].start()
            progress = wait_stored(archive, daemons, expected, started, args.timeout)
            metrics = [scrape(port) for port in ports]
        finally:
            exit_codes = stop(daemons)
        unreaped = reap_orphans(time.monotonic() + 15.0)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = time.process_time() - self_before
        for sampler in [*samplers, backends]:
            sampler.stop.set()
            sampler.join()
        requests, room.requests = room.requests or [], None
        checks, problems = verify(archive, room, requests)
    problems = progress.problems + problems
    if unreaped:
        problems.append(f"{unreaped} process(es) of the daemons still alive after their exit")
    for n, code in enumerate(exit_codes):
        if code != 0:
            problems.append(f"daemon {n} exited with {code}")
    for n, path in enumerate(logs):
        noted = [line for line in path.read_text("utf-8", "replace").splitlines() if line]
        if noted:
            checks[f"daemon {n} log lines"] = len(noted)
            problems += [f"daemon {n}: {line[:300]}" for line in noted[:5]]
    cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return Run(
        setup=setup.name,
        backend=setup.backend,
        daemons=setup.daemons,
        round=round_no,
        expected=expected,
        articles=progress.stored,
        seconds=progress.seconds,
        first_seconds=progress.first_seconds,
        first_count=progress.first_count,
        cpu_seconds=cpu,
        tree_cpu_seconds=[round(s.cpu_total(), 2) for s in samplers],
        backend_cpu_seconds=backends.total() if setup.backend == "postgresql" else None,
        server_cpu_seconds=server_cpu,
        stored_by=[int(m.get("ingest_articles_stored_total", 0)) for m in metrics],
        polled_by=[int(m.get("ingest_feed_polls_total", 0)) for m in metrics],
        exit_codes=exit_codes,
        load=(load_before, os.getloadavg()[0]),
        checks=checks,
        problems=problems,
    )


@dataclass
class Progress:
    stored: int
    seconds: float
    first_seconds: float | None
    first_count: int
    problems: list[str]


def wait_stored(
    archive: Archive,
    daemons: Sequence[subprocess.Popen[bytes]],
    expected: int,
    started: float,
    timeout: float,
) -> Progress:
    """Poll the archive until ``expected`` articles are stored, a page failed (it would only
    be retried minutes later), a daemon exited, nothing changed for `STALL` seconds, or
    ``timeout`` passed."""
    first: tuple[float, int] | None = None
    last: tuple[float, Counter[str]] = (started, Counter())
    while True:
        now = time.monotonic()
        counts = archive.by_status()
        stored = counts.get("ok", 0)
        if stored and first is None:
            first = (now - started, stored)
        if counts != last[1]:
            last = (now, counts)
        problems = []
        if stored >= expected:
            pass
        elif counts.get("failed"):
            problems.append(f"{counts['failed']} page(s) failed: {dict(counts)}")
        elif any(d.poll() is not None for d in daemons):
            problems.append("a daemon exited before every article was stored")
        elif now - last[0] > STALL:
            problems.append(f"nothing stored for {STALL:.0f}s: {dict(counts)}")
        elif now - started > timeout:
            problems.append(f"gave up after {timeout:.0f}s: {dict(counts)}")
        else:
            time.sleep(POLL)
            continue
        return Progress(
            stored,
            now - started,
            first[0] if first else None,
            first[1] if first else 0,
            problems,
        )


def stop(daemons: Sequence[subprocess.Popen[bytes]]) -> list[int | None]:
    """SIGTERM to every daemon at once; their exit statuses (None: killed after the timeout)."""
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    deadline = time.monotonic() + STOP_TIMEOUT
    for daemon in daemons:
        try:
            codes.append(daemon.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
            codes.append(None)
    return codes


# --- exactly once ----------------------------------------------------------------------------


def overlaps(requests: Sequence[Request]) -> int:
    """Pairs of consecutive requests (by start) for one path where the second began before
    the first had been answered."""
    found = 0
    by_path: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        by_path[request.path].append(request)
    for same in by_path.values():
        same.sort(key=lambda r: r.started)
        found += sum(b.started < a.ended for a, b in itertools.pairwise(same))
    return found


def verify(
    archive: Archive, room: Newsroom, requests: Sequence[Request]
) -> tuple[dict[str, Any], list[str]]:
    """Each article stored once, each page and feed asked for once, no overlapping polls."""
    expected = len(room.pages)
    by_status = dict(archive.by_status())
    (total, keys, distinct_keys), *_ = archive.rows(
        "SELECT count(*), count(url_key), count(DISTINCT url_key) FROM articles"
    )
    (captures, captured), *_ = archive.rows(
        "SELECT count(*), count(DISTINCT article_id) FROM captures"
    )
    (leased_articles,), *_ = archive.rows(
        "SELECT count(*) FROM articles WHERE lease_owner IS NOT NULL"
    )
    (leased_feeds,), *_ = archive.rows("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL")
    pages = {urlsplit(url).path for url, _ in room.pages}
    feeds = {urlsplit(url).path for url in room.feed_urls}
    asked = Counter(r.path for r in requests if r.status == 200)
    feed_requests = [r for r in requests if r.path in feeds]
    checks: dict[str, Any] = {
        "articles": by_status,
        "rows": total,
        "url_keys": keys,
        "distinct_url_keys": distinct_keys,
        "captures": captures,
        "leases_left": leased_articles + leased_feeds,
        "pages_requested": sum(asked[p] for p in pages),
        "pages_requested_twice": sum(asked[p] > 1 for p in pages),
        "feeds_requested": sum(asked[p] for p in feeds),
        "overlapping_feed_requests": overlaps(feed_requests),
        "requests_by_kind": dict(Counter(f"{path_kind(r.path)} {r.status}" for r in requests)),
    }
    rules = [
        (by_status == {"ok": expected}, f"articles by status {by_status}, expected {expected} ok"),
        (total == keys == distinct_keys == expected, "a url_key twice, or extra rows"),
        (captures == captured == expected, f"{captures} captures for {captured} articles"),
        (checks["leases_left"] == 0, f"{checks['leases_left']} lease(s) left after the stop"),
        (
            all(asked[p] == 1 for p in pages),
            f"pages not requested exactly once: {checks['pages_requested_twice']} twice, "
            f"{sum(asked[p] == 0 for p in pages)} never",
        ),
        (all(asked[p] == 1 for p in feeds), "a feed not requested exactly once"),
        (checks["overlapping_feed_requests"] == 0, "two requests for one feed overlapped"),
    ]
    return checks, [message for ok, message in rules if not ok]


# --- report ----------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: Sequence[Run], setups: Sequence[Setup]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for setup in setups:
        mine = [r for r in runs if r.setup == setup.name]
        if not mine:
            continue
        rows[setup.name] = {
            "backend": setup.backend,
            "daemons": setup.daemons,
            "articles": min(r.articles for r in mine),
            "seconds": _median([r.seconds for r in mine]),
            "articles_per_s": _median([r.rate for r in mine]),
            "steady_articles_per_s": _median([r.steady_rate for r in mine]),
            "first_seconds": _median([r.first_seconds for r in mine]),
            "cpu_seconds": _median([r.cpu_seconds for r in mine]),
            "cpu_ms_per_article": _median(
                [1000 * r.cpu_seconds / max(r.articles, 1) for r in mine]
            ),
            "backend_cpu_seconds": _median([r.backend_cpu_seconds for r in mine]),
            "cores_busy": _median([r.cores_busy for r in mine]),
            "busiest_share": _median([max(r.stored_by) / max(r.articles, 1) for r in mine]),
            "rates": [round(r.rate, 2) for r in mine],
        }

    def ratio(a: str, b: str, key: str = "articles_per_s") -> float | None:
        if a in rows and b in rows and rows[a][key] and rows[b][key]:
            return float(rows[a][key] / rows[b][key])
        return None

    ratios = {
        "postgresql x2 / postgresql x1": ratio("postgresql x2", "postgresql x1"),
        "postgresql x3 / postgresql x1": ratio("postgresql x3", "postgresql x1"),
        "postgresql x1 / sqlite x1": ratio("postgresql x1", "sqlite x1"),
        "steady: postgresql x2 / postgresql x1": ratio(
            "postgresql x2", "postgresql x1", "steady_articles_per_s"
        ),
        "steady: postgresql x3 / postgresql x1": ratio(
            "postgresql x3", "postgresql x1", "steady_articles_per_s"
        ),
        "steady: postgresql x1 / sqlite x1": ratio(
            "postgresql x1", "sqlite x1", "steady_articles_per_s"
        ),
    }
    return {"rows": rows, "ratios": {k: v for k, v in ratios.items() if v is not None}}


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(summary: dict[str, Any], runs: Sequence[Run], header: str) -> str:
    lines = [header, ""]
    lines.append(
        f"{'':<15} {'articles':>8} {'seconds':>8} {'art/s':>6} {'steady/s':>8} "
        f"{'1st at s':>8} {'CPU s':>6} {'ms/art':>6} {'PG CPU s':>8} {'cores':>5} "
        f"{'busiest':>7}"
    )
    for name, row in summary["rows"].items():
        lines.append(
            f"{name:<15} {row['articles']:>8} {_num(row['seconds'], 2):>8} "
            f"{_num(row['articles_per_s']):>6} {_num(row['steady_articles_per_s']):>8} "
            f"{_num(row['first_seconds'], 2):>8} {_num(row['cpu_seconds']):>6} "
            f"{_num(row['cpu_ms_per_article']):>6} {_num(row['backend_cpu_seconds']):>8} "
            f"{_num(row['cores_busy'], 2):>5} {_num(100 * row['busiest_share'], 0):>6}%"
        )
    lines.append("")
    for name, value in summary["ratios"].items():
        lines.append(f"{name:<40} {value:5.2f}")
    lines += ["", "runs (articles each daemon stored / feeds it polled; load average before):"]
    for run in runs:
        shares = "/".join(str(n) for n in run.stored_by)
        polls = "/".join(str(n) for n in run.polled_by)
        lines.append(
            f"  round {run.round + 1} {run.setup:<15} {run.seconds:6.2f}s {run.rate:5.1f}/s "
            f"steady {_num(run.steady_rate):>5}/s, stored {shares}, polled {polls}, "
            f"tree CPU {'/'.join(f'{c:.1f}' for c in run.tree_cpu_seconds)} s, "
            f"load {run.load[0]:.1f}"
        )
        for problem in run.problems:
            lines.append(f"    PROBLEM: {problem}")
    failed = [r for r in runs if r.problems]
    if failed:
        lines.append(f"\nexactly-once or completion FAILED in {len(failed)} run(s)")
    else:
        first = runs[0].checks if runs else {}
        lines.append(
            f"\nexactly-once held in every run: {runs[0].expected if runs else 0} ok articles, "
            "no url_key twice, one capture each, no lease left, each page and feed requested "
            f"once ({first.get('pages_requested')} pages, {first.get('feeds_requested')} "
            "feeds), no overlapping feed requests"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaleout",
        description=(
            "Articles per second with 1, 2 and 3 `ingest daemon` workers on one PostgreSQL "
            "archive, and 1 on SQLite, on a loopback newsroom of the corpus pages."
        ),
        epilog="example: python -m bench.scaleout --page-delay 0.2 --json /tmp/scaleout.json",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds; medians reported (2)")
    parser.add_argument(
        "--copies", type=int, default=4, help="each corpus page served as this many articles (4)"
    )
    parser.add_argument("--feeds", type=int, default=108, help="feeds, RSS and Atom (108)")
    parser.add_argument("--hosts", type=int, default=4, help="loopback hosts (4)")
    parser.add_argument(
        "--page-delay", type=float, default=0.0, help="seconds each article page waits (0)"
    )
    parser.add_argument(
        "--extract-workers",
        type=int,
        default=1,
        help="[extract] workers of each daemon (1; 0 = one per core)",
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=1,
        help="[fetch] per_host (1): a daemon has at most hosts x per_host pages in flight",
    )
    parser.add_argument(
        "--configs",
        type=parse_setups,
        default=parse_setups(DEFAULT_CONFIGS),
        help=f"backend:daemons, comma-separated ({DEFAULT_CONFIGS})",
    )
    parser.add_argument(
        "--postgres", default=POSTGRES, help=f"PostgreSQL server (INGEST_TEST_POSTGRES; {POSTGRES})"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run (300)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the daemons' configs and logs")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    setups: list[Setup] = args.configs
    become_subreaper()  # the daemons' orphaned forkservers are reaped here, CPU counted
    pages = copies(load_corpus(args.corpus), args.copies)
    runs: list[Run] = []
    began = time.monotonic()
    with (
        _workdir(args.keep) as tmp,
        Newsroom(pages, feeds=args.feeds, hosts=args.hosts, page_delay=args.page_delay) as room,
    ):
        for round_no in range(args.repeat):
            turn = round_no % len(setups)
            for setup in setups[turn:] + setups[:turn]:
                run = run_setup(setup, room, args, tmp, round_no)
                runs.append(run)
                print(
                    f"round {round_no + 1}/{args.repeat} {setup.name}: {run.articles} articles "
                    f"in {run.seconds:.2f}s, {run.rate:.1f}/s"
                    + (f"; PROBLEMS: {run.problems}" if run.problems else ""),
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarise(runs, setups)
    header = (
        f"scale-out: {len(pages)} articles ({len(pages) // args.copies} corpus pages x "
        f"{args.copies}), {args.feeds} feeds on {args.hosts} hosts, page delay "
        f"{args.page_delay:g}s, per_host {args.per_host}; {CORES} cores; each daemon with "
        f"{args.extract_workers or 'one per core'} extraction process(es); median of "
        f"{args.repeat} round(s), {time.monotonic() - began:.0f}s in all"
    )
    print(format_report(summary, runs, header))
    if args.json:
        doc = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "cores": CORES,
            "articles": len(pages),
            **summary,
            "runs": [asdict(r) | {"rate": r.rate, "steady_rate": r.steady_rate} for r in runs],
        }
        doc["args"]["configs"] = [s.name for s in setups]
        args.json.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
