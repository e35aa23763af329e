"""Soak benchmark: does `ingest daemon`'s memory stay flat while it archives article after article?

    python -m bench.soak                                   # 3 minutes, 200 feeds, 4 hosts
    python -m bench.soak --minutes 2 --feeds 100 --out soak.json
    python -m bench.soak --tracemalloc                     # also diff the daemon's heap

Serves a generated newsroom on loopback (`bench.generated_site`: every feed publishes an entry
every 20 s), runs the real daemon on it in a subprocess with fast clocks, and every 5 s samples
the daemon's RSS, its child processes' RSS and PSS (the forkserver and extraction workers), the
articles stored (the archive, read-only, and /metrics) and the size of the log. At the end it
sends SIGTERM, times the exit, and fits RSS against articles stored after a 30 s warm-up: a
daemon that keeps something per article shows up as KB per 1000 articles.

With ``--tracemalloc`` the daemon runs under tracemalloc and its Python heap is snapshotted
after the warm-up and near the end; the lines that grew most are printed. Tracing makes the
daemon several times slower and its RSS meaningless: give it fewer feeds (about 70 on two cores)
so that it keeps up, or the pages queued in memory show up as growth.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.generated_site import GeneratedSite

REPO = Path(__file__).resolve().parents[1]
SAMPLE_EVERY = 5.0  # seconds between samples
WARMUP = 30.0  # seconds before the baseline: imports, the worker pool and caches filling up
STOP_TIMEOUT = 10.0  # seconds the daemon has to exit after SIGTERM
TRACE_FRAMES = 8

# Runs the daemon exactly as `python -m ingest` does, with tracemalloc on and a SIGUSR1 handler
# that dumps a heap snapshot (the daemon's own signal handlers cover TERM, INT and HUP only).
TRACED = """
import os, signal, sys, tracemalloc
tracemalloc.start({frames})
dumps = 0
def dump(*_):
    global dumps
    dumps += 1
    path = os.path.join({folder!r}, f"{{dumps}}.snapshot")
    tracemalloc.take_snapshot().dump(path + ".part")
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR1, dump)
sys.argv[0] = "ingest"
from ingest.cli import main
main()
"""


# --- processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    pid: int
    role: str  # "daemon", "forkserver", "resource_tracker", "worker" (or another "child")
    rss_kb: int
    anon_kb: int  # the heap's share of RSS: what a leak grows (file pages are shared code)
    pss_kb: int  # RSS with shared pages divided among sharers: sums without double counting


def _stat(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: split after its closing one.
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process we can see.

    /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, which not every kernel has.
    """
    out: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (OSError, ValueError):
                continue  # exited meanwhile
            out[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return out


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of every process below ``pid``: its children are at depth 1."""
    table = _processes()
    found: list[tuple[int, int]] = []
    frontier = [(pid, 0)]
    while frontier:
        parent, depth = frontier.pop()
        children = [(p, depth + 1) for p, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return sorted(found)


def session_members(sid: int) -> list[int]:
    """Processes still in the daemon's session (it is started as a session leader)."""
    return sorted(p for p, (_, session) in _processes().items() if session == sid)


def _role(pid: int, depth: int) -> str:
    # Workers fork from the forkserver and keep its command line: tell them by their depth.
    if depth > 1:
        return "worker"
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    for role in ("forkserver", "resource_tracker"):
        if role.encode() in command:
            return role
    return "child"


def memory(pid: int, depth: int = 0) -> Memory | None:
    try:
        status = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in {"VmRSS", "RssAnon"}:
                status[name] = int(value.split()[0])
        pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
        role = _role(pid, depth) if depth else "daemon"
        return Memory(pid, role, status.get("VmRSS", 0), status.get("RssAnon", 0), pss)
    except (OSError, ValueError):
        return None  # exited meanwhile (a worker being replaced)


# --- the daemon's view -------------------------------------------------------------------------


def archive_counts(database: Path) -> Counter[str]:
    """Articles by status, read-only (the daemon writes in WAL mode; readers never block it)."""
    if not database.exists():
        return Counter()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2) as db:
            rows = db.execute("SELECT status, count(*) FROM articles GROUP BY status").fetchall()
    except sqlite3.Error:
        return Counter()  # the schema is still being created
    return Counter({str(status): int(n) for status, n in rows})


def scrape(port: int) -> dict[str, float]:
    """The unlabelled series of /metrics (labelled ones are summed per name)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            base = name.split("{", 1)[0]
            out[base] = out.get(base, 0.0) + float(value)
    return out


@dataclass
class Sample:
    t: float  # seconds since the daemon started
    stored: int  # articles with clean text (status ok) in the archive
    pending: int
    failed: int
    metric_stored: int | None  # ingest_articles_stored_total
    daemon_rss_kb: int
    daemon_anon_kb: int
    children_rss_kb: int  # summed over every descendant: forkserver, tracker, workers
    children_pss_kb: int
    workers_rss_kb: int  # summed over the extraction workers only
    workers_pss_kb: int
    workers_anon_kb: int
    processes: list[Memory] = field(default_factory=list)
    log_bytes: int = 0


def sample(t: float, pid: int, port: int, database: Path, log: Path) -> Sample:
    counts = archive_counts(database)
    metrics = scrape(port)
    daemon = memory(pid) or Memory(pid, "daemon", 0, 0, 0)
    children = [m for m in (memory(p, d) for p, d in descendants(pid)) if m is not None]
    workers = [m for m in children if m.role == "worker"]
    stored = metrics.get("ingest_articles_stored_total")
    return Sample(
        t=round(t, 1),
        stored=counts["ok"],
        pending=counts["pending"],
        failed=counts["failed"],
        metric_stored=None if stored is None else int(stored),
        daemon_rss_kb=daemon.rss_kb,
        daemon_anon_kb=daemon.anon_kb,
        children_rss_kb=sum(m.rss_kb for m in children),
        children_pss_kb=sum(m.pss_kb for m in children),
        workers_rss_kb=sum(m.rss_kb for m in workers),
        workers_pss_kb=sum(m.pss_kb for m in workers),
        workers_anon_kb=sum(m.anon_kb for m in workers),
        processes=[daemon, *children],
        log_bytes=log.stat().st_size if log.exists() else 0,
    )


# --- the run -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, site: GeneratedSite, database: Path, port: int) -> str:
    lines = [
        "[database]",
        f'url = "sqlite:///{database}"',
        "[fetch]",
        "allow_private_networks = true  # the newsroom is on loopback",
        "host_delay = 0",
        "[extract]",
        "keep_raw = true  # the raw captures go through the daemon too",
        "[schedule]",
        'interval = "5s"',
        'min_interval = "5s"',
        'max_interval = "10s"',
        "adaptive = false",
        "[daemon]",
        f'listen = "127.0.0.1:{port}"',
        'tick = "1s"',
        'retry_every = "10s"',
    ]
    for i in range(site.feeds):
        lines += ["[[feeds]]", f'url = "{site.feed_url(i)}"', f'name = "feed-{i}"']
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


@dataclass
class Stopped:
    exit_status: int | None  # None: it ignored SIGTERM and was killed
    seconds: float
    leftovers: list[int]  # processes of its session still alive after it exited


def stop(process: subprocess.Popen[bytes]) -> Stopped:
    started = time.monotonic()
    status: int | None = None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    seconds = time.monotonic() - started
    # The workers should go with the daemon; give them a moment, then end what lingers.
    deadline = time.monotonic() + 3
    while (left := session_members(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return Stopped(status, round(seconds, 2), left)


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys against xs; None when xs do not vary."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def growth(samples: list[Sample], attr: str) -> dict[str, Any]:
    """One memory series: at the baseline, at the end, and per 1000 articles stored."""
    warm = [s for s in samples if s.t >= WARMUP] or samples[-1:]
    base, last = warm[0], samples[-1]
    per_article = slope([s.stored for s in warm], [getattr(s, attr) for s in warm])
    per_minute = slope([s.t for s in warm], [getattr(s, attr) for s in warm])
    return {
        "baseline_t": base.t,
        "baseline_mb": round(getattr(base, attr) / 1024, 1),
        "end_mb": round(getattr(last, attr) / 1024, 1),
        "growth_mb": round((getattr(last, attr) - getattr(base, attr)) / 1024, 2),
        "kb_per_1000_articles": None if per_article is None else round(per_article * 1000, 1),
        "kb_per_minute": None if per_minute is None else round(per_minute * 60, 1),
    }


def read_log(path: Path) -> dict[str, Any]:
    levels: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    other = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                other += 1  # a traceback or a warning printed by a library
                continue
            levels[record.get("level", "?")] += 1
            if record.get("level") in {"warning", "error", "critical"} or record.get("error"):
                # An exception's last line says what it was (a job's message does not).
                cause = (record.get("exception") or "").strip().rsplit("\n", 1)[-1]
                message = record.get("message", "")[:100] + (f" [{cause[:200]}]" if cause else "")
                problems[f"{record.get('level')}: {message}"] += 1
    return {
        "lines_by_level": dict(levels),
        "non_json_lines": other,
        "top_problems": problems.most_common(8),
    }


def heap_growth(folder: Path, top: int = 15) -> dict[str, Any]:
    """What grew in the daemon's Python heap between the first and the last snapshot."""
    files = sorted(folder.glob("*.snapshot"), key=lambda p: int(p.stem))
    if len(files) < 2:
        return {}
    noise = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]
    first = tracemalloc.Snapshot.load(str(files[0])).filter_traces(noise)
    last = tracemalloc.Snapshot.load(str(files[-1])).filter_traces(noise)

    def where(frame: tracemalloc.Frame) -> str:
        return f"{frame.filename.removeprefix(str(REPO) + '/')}:{frame.lineno}"

    # Ranked by line; the callers are those of the line's biggest growth (most recent first).
    callers: dict[str, list[str]] = {}
    for diff in sorted(last.compare_to(first, "traceback"), key=lambda d: -d.size_diff):
        frames = [where(f) for f in reversed(diff.traceback)]
        callers.setdefault(frames[0], frames[1:5])
    lines = []
    for diff in last.compare_to(first, "lineno")[:top]:
        line = where(diff.traceback[0])
        lines.append(
            {
                "kb_diff": round(diff.size_diff / 1024, 1),
                "kb": round(diff.size / 1024, 1),
                "count_diff": diff.count_diff,
                "where": line,
                "callers": callers.get(line, []),
            }
        )
    total = [sum(t.size for t in snap.traces) / 1024 for snap in (first, last)]
    return {"first_kb": round(total[0]), "last_kb": round(total[1]), "lines": lines}


def run(args: argparse.Namespace, tmp: Path, site: GeneratedSite) -> dict[str, Any]:
    database, log, config = tmp / "soak.sqlite3", tmp / "daemon.log", tmp / "soak.toml"
    port = free_port()
    config_text = write_config(config, site, database, port)
    traces = tmp / "tracemalloc"
    if args.tracemalloc:
        traces.mkdir()
        entry = ["-c", TRACED.format(frames=TRACE_FRAMES, folder=str(traces))]
    else:
        entry = ["-m", "ingest"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [sys.executable, *entry, "--config", str(config), "--log-format", "json", "-v"]
    samples: list[Sample] = []
    snapshots_asked = 0
    crashed = False
    duration = args.minutes * 60
    with log.open("wb") as out:
        # A session of its own, so that whatever it leaves behind can be found and ended.
        process = subprocess.Popen(
            [*command, "daemon"],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    try:
        marks = [SAMPLE_EVERY * n for n in range(1, int(duration // SAMPLE_EVERY) + 1)]
        if not marks or marks[-1] < duration:
            marks.append(duration)
        for mark in marks:
            while time.monotonic() - started < mark and process.poll() is None:
                time.sleep(min(0.2, max(0.0, mark - (time.monotonic() - started))))
            if process.poll() is not None:
                crashed = True
                break
            samples.append(sample(time.monotonic() - started, process.pid, port, database, log))
            print(_row(samples[-1]), flush=True)
            # Heap snapshots after the warm-up and 10 s before the end (so the last one is
            # written before SIGTERM).
            due = (mark >= WARMUP and snapshots_asked == 0) or (
                mark >= duration - 10 and snapshots_asked == 1
            )
            if args.tracemalloc and due:
                process.send_signal(signal.SIGUSR1)
                snapshots_asked += 1
    finally:
        stopped = stop(process)
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.soak", *sys.argv[1:]]),
        "settings": {
            "minutes": args.minutes,
            "feeds": args.feeds,
            "hosts": args.hosts,
            "entry_period_s": site.period,
            "sample_every_s": SAMPLE_EVERY,
            "warmup_s": WARMUP,
            "cpus": os.cpu_count(),
            "tracemalloc": args.tracemalloc,
        },
        "config": config_text.split("[[feeds]]", 1)[0] + f"[[feeds]] x {site.feeds}\n",
        "samples": [asdict(s) for s in samples],
        "site": {"served": dict(site.served), "mb_served": round(site.bytes_served / 1e6, 1)},
        "log": read_log(log) if log.exists() else {},
        "crashed": crashed,
        "exit_status": stopped.exit_status,
        "shutdown_seconds": stopped.seconds,
        "leftover_processes": stopped.leftovers,
    }
    if crashed:
        result["log_tail"] = log.read_text(errors="replace").splitlines()[-30:]
    if samples:
        last = samples[-1]
        warm = [s for s in samples if s.t >= WARMUP] or samples[-1:]
        worker_pids = {m.pid for s in samples for m in s.processes if m.role == "worker"}
        result["summary"] = {
            "articles_stored": last.stored,
            "articles_stored_metric": last.metric_stored,
            "articles_after_warmup": last.stored - warm[0].stored,
            "pending_at_end": last.pending,
            "failed_at_end": last.failed,
            "daemon_rss": growth(samples, "daemon_rss_kb"),
            "daemon_anon": growth(samples, "daemon_anon_kb"),
            "children_rss": growth(samples, "children_rss_kb"),
            "children_pss": growth(samples, "children_pss_kb"),
            "workers_rss": growth(samples, "workers_rss_kb"),
            "workers_anon": growth(samples, "workers_anon_kb"),
            "worker_processes_seen": len(worker_pids),
            "log_mb": round(last.log_bytes / 1e6, 2),
            "log_bytes_per_article": round(last.log_bytes / last.stored) if last.stored else None,
        }
    if args.tracemalloc:
        result["heap_growth"] = heap_growth(traces)  # before the temp dir goes
    return result


# --- output ------------------------------------------------------------------------------------

HEADER = (
    f"{'t s':>6} {'stored':>7} {'metric':>7} {'pend':>5} {'fail':>5} "
    f"{'daemon MB':>10} {'anon MB':>8} {'children MB':>12} {'PSS MB':>7} {'workers MB':>11} "
    f"{'n':>2} {'log KB':>7}"
)


def _row(s: Sample) -> str:
    n = sum(1 for m in s.processes if m.role == "worker")
    metric = "-" if s.metric_stored is None else str(s.metric_stored)
    return (
        f"{s.t:6.0f} {s.stored:7d} {metric:>7} {s.pending:5d} {s.failed:5d} "
        f"{s.daemon_rss_kb / 1024:10.1f} {s.daemon_anon_kb / 1024:8.1f} "
        f"{s.children_rss_kb / 1024:12.1f} {s.children_pss_kb / 1024:7.1f} "
        f"{s.workers_rss_kb / 1024:11.1f} {n:2d} "
        f"{s.log_bytes / 1024:7.0f}"
    )


def report(result: dict[str, Any]) -> str:
    lines = []
    summary = result.get("summary")
    if summary:
        lines.append(
            f"\narticles stored: {summary['articles_stored']} "
            f"(/metrics {summary['articles_stored_metric']}; "
            f"{summary['articles_after_warmup']} after warm-up), "
            f"pending {summary['pending_at_end']}, failed {summary['failed_at_end']}"
        )
        lines.append(
            f"{'':22}{'at ' + str(summary['daemon_rss']['baseline_t']) + ' s':>10}"
            f"{'at end':>10}{'growth':>10}{'KB/1000 art.':>14}{'KB/min':>9}"
        )
        for label, key in (
            ("daemon RSS", "daemon_rss"),
            ("daemon RssAnon", "daemon_anon"),
            ("children RSS (sum)", "children_rss"),
            ("children PSS (sum)", "children_pss"),
            ("workers RSS (sum)", "workers_rss"),
            ("workers RssAnon (sum)", "workers_anon"),
        ):
            g = summary[key]
            lines.append(
                f"{label:22}{g['baseline_mb']:8.1f}MB{g['end_mb']:8.1f}MB{g['growth_mb']:+8.2f}MB"
                f"{_num(g['kb_per_1000_articles']):>14}{_num(g['kb_per_minute']):>9}"
            )
        lines.append(
            f"worker processes seen: {summary['worker_processes_seen']}; log "
            f"{summary['log_mb']} MB ({summary['log_bytes_per_article']} bytes per article)"
        )
    if result["crashed"]:
        ending = f"the daemon exited early, status {result['exit_status']}"
    elif result["exit_status"] is None:
        ending = f"the daemon ignored SIGTERM for {STOP_TIMEOUT:g} s and was killed"
    else:
        ending = f"exit status {result['exit_status']} {result['shutdown_seconds']} s after SIGTERM"
    if result["leftover_processes"]:
        ending += f"; it left behind {result['leftover_processes']} (killed)"
    lines.append(ending)
    log = result.get("log") or {}
    if log.get("top_problems"):
        lines.append("log problems: " + "; ".join(f"{m} x{n}" for m, n in log["top_problems"]))
    lines.append(f"served: {result['site']['served']} ({result['site']['mb_served']} MB)")
    heap = result.get("heap_growth") or {}
    if heap:
        lines.append(
            f"traced heap: {heap['first_kb']} KB after warm-up, {heap['last_kb']} KB near the end"
        )
    for item in heap.get("lines", []):
        lines.append(
            f"  {item['kb_diff']:+9.1f} KB ({item['count_diff']:+d} blocks) {item['where']}"
            f"  <- {' <- '.join(item['callers'][:3])}"
        )
    if result.get("log_tail"):
        lines += ["daemon log tail:", *result["log_tail"]]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the run (3)")
    parser.add_argument("--feeds", type=int, default=200, help="feeds in the newsroom (200)")
    parser.add_argument("--hosts", type=int, default=4, help="loopback hosts serving them (4)")
    parser.add_argument("--out", type=Path, help="write samples and summary to this JSON file")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace the daemon's heap and diff it"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.feeds <= 0:
        parser.error("--minutes and --feeds must be positive")
    if not 1 <= args.hosts <= 250:
        parser.error("--hosts must be within 1..250 (127.0.0.2 up to 127.0.0.251)")
    print(HEADER, flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="ingest-soak-") as folder,
        GeneratedSite(args.feeds, args.hosts) as site,
    ):
        result = run(args, Path(folder), site)
    print(report(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0 if result["exit_status"] == 0 and not result["crashed"] else 1


if __name__ == "__main__":
    sys.exit(main())
