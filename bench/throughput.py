"""Steady-state throughput of `ingest fetch` against the machine's extraction limit, and the
CPU it spends outside extraction.

    python -m bench.throughput                     # 3 rounds, medians; about 3 minutes
    python -m bench.throughput --repeat 1 --json /tmp/throughput.json
    python -m bench.throughput --profile /tmp/prof # + one `ingest fetch` under py-spy

Serves the 108 pages of the extraction corpus (`--corpus`, default ../shared/corpus/extraction),
each `--copies` (10) times as a distinct article (1,080 pages: so that start-up does not decide),
behind `--feeds` (48) feeds, RSS 2.0 and Atom, on `--hosts` (48) loopback addresses from
127.0.0.2 (`bench.newsroom`). Each round measures, each as a fresh process (`bench.proctree`:
wall time, peak RSS summed over the process tree, CPU seconds of the tree):

  pipeline         the real CLI, ``python -m ingest --config CFG fetch --format json``, into a
                   fresh SQLite file (allow_private_networks, host_delay 0, per_host 8,
                   concurrency 32, keep_raw, one extraction worker per core);
  limit            trafilatura with its metadata, the way a user of trafilatura gets text and
                   metadata (``bare_extraction(..., with_metadata=True)``), on every core from
                   pages in memory (`bench.extract_limit`), timed from pool start (worker
                   start-up included, as the pipeline pays it);
  extraction       the same with the project's ``ingest.extract.extract_article``: what the
                   pipeline's workers run, and how much CPU it takes on these pages.

The three run in every round, in an order that rotates from round to round (interleaved, so
that a change in the machine's load falls on all of them); medians of ``--repeat`` rounds.

The pipeline's rate against the limit's is the target ratio (pages stored with status ok per
second of the whole process, over the limit's pages per second). CPU outside extraction is
what the pipeline spends that extracting the same pages does not:

  E                 the CPU seconds of the ``extract_article`` calls themselves on these pages,
                    as the pipeline's own workers measure them (``time.process_time`` around
                    each call, summed: ``extract_cpu_seconds`` of the run's summary; no
                    start-up, no inflating, no passing pages around). The extraction run
                    measures the same calls in its own tree: a cross-check, not subtracted
                    (E moves by a fifth between process trees on a shared machine);
  outside, whole    (the pipeline tree's CPU seconds - E) / pages: fetching, inflating, feed
                    parsing, storing and indexing, passing pages to the workers and back,
                    bookkeeping, and every process's start-up;
  outside, steady   the same without start-up: the tree's CPU from the moment its first page
                    was fetched (the archive's ``fetched_at``; the tree's CPU is polled from
                    /proc every 50 ms) to its exit, less E, per page;
  outside, middle   the same over the middle half of the pages by fetch time (the tree's
                    CPU between the fetches of the pages at the first and third quartiles,
                    per page fetched meanwhile, less E's average a page): every process has
                    started, nothing is winding down;
  by role           the main process's CPU per page (whole run, and from the first page
                    fetched), the forkserver's, and the workers' beyond E (receiving pages,
                    raw-page compression, returning articles).

The tree's CPU comes from ``getrusage`` of the reaped tree; the split by role and the start-up
from /proc polls (a lower bound by up to 50 ms per process). The pipeline's archive is
checked: every page must be stored with status ok (failures are listed). Its phases come from
the archive's own timestamps: start-up (process start to the first entry recorded), fetching
(first to last page fetched) and the tail (last page fetched to process exit).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.newsroom import DEFAULT_CORPUS, REPO, CorpusPage, Newsroom, load_corpus
from bench.proctree import clean_env, json_summary, measure

CORES = os.cpu_count() or 1
TARGET_VS_LIMIT = 0.85
TARGET_OUTSIDE_MS = 3.0
PIPELINE = "pipeline (ingest fetch)"
LIMIT = "limit: trafilatura + metadata"
EXTRACTION = "extraction: ingest.extract"


@dataclass
class Run:
    """One measurement of one contender."""

    name: str
    pages: int  # pages stored / extracted with text
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    server_cpu_seconds: float  # the benchmark process (the loopback servers) meanwhile
    warm_seconds: float | None = None  # limits: without worker start-up
    extract_cpu_seconds: float | None = None  # extraction runs: the calls alone
    startup_cpu_seconds: float | None = None  # pipeline: tree CPU before its first page
    startup_main_cpu_seconds: float | None = None  # the same, main process only
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0


def write_config(path: Path, database: Path, feeds: Sequence[str], workers: int) -> None:
    lines = [
        "[database]",
        f'url = "sqlite:///{database}"',
        "[fetch]",
        "allow_private_networks = true",
        "host_delay = 0",
        "per_host = 8",
        "concurrency = 32",
        "[extract]",
        f"workers = {workers}",
        "keep_raw = true",
    ]
    for n, url in enumerate(feeds):
        lines += ["[[feeds]]", f'url = "{url}"', f'name = "feed {n}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _utc(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def archive_report(database: Path, started_at: float, ended_at: float) -> dict[str, Any]:
    """Articles by status, failures, and the run's phases from the archive's timestamps."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        by_status = dict(db.execute("SELECT status, count(*) FROM articles GROUP BY status"))
        failures = [
            {"url": url, "error": error, "message": message}
            for url, error, message in db.execute(
                "SELECT url, error, error_message FROM articles WHERE status != 'ok'"
            )
        ]
        first_entry, first_fetch, last_fetch = db.execute(
            "SELECT min(created_at), min(fetched_at), max(fetched_at) FROM articles"
        ).fetchone()
        captures = db.execute("SELECT count(*) FROM captures").fetchone()[0]
        fetched = [
            t
            for (value,) in db.execute(
                "SELECT fetched_at FROM articles WHERE fetched_at IS NOT NULL ORDER BY fetched_at"
            )
            if (t := _utc(value)) is not None
        ]
    phases: dict[str, float | None] = {"startup": None, "fetching": None, "tail": None}
    entry, first, last = _utc(first_entry), _utc(first_fetch), _utc(last_fetch)
    if entry is not None:
        phases["startup"] = entry - started_at
    if first is not None and last is not None:
        phases["fetching"] = last - first
        phases["tail"] = ended_at - last
    return {
        "by_status": by_status,
        "failures": failures,
        "captures": captures,
        "phases": phases,
        "first_fetch": first,
        # The middle half of the pages, by fetch time: the run at its steadiest.
        "middle": (fetched[len(fetched) // 4], fetched[3 * len(fetched) // 4], len(fetched) // 2)
        if len(fetched) >= 8
        else None,
    }


def run_pipeline(tmp: Path, room: Newsroom, workers: int, round_no: int | str, python: str) -> Run:
    folder = tmp / f"pipeline-{round_no}"
    folder.mkdir()
    database = folder / "archive.sqlite3"
    config = folder / "ingest.toml"
    write_config(config, database, room.feed_urls, workers)
    argv = [python, "-m", "ingest", "--config", str(config), "fetch", "--format", "json"]
    room.reset_counts()
    result = measure(argv, env=clean_env(), cwd=folder)
    summary = json_summary(result, "ingest fetch")
    report = archive_report(database, result.started_at, result.started_at + result.seconds)
    startup = main = None
    if report["first_fetch"] is not None:
        startup, main = result.cpu_at(report["first_fetch"])
    middle = None
    if report["middle"] is not None:
        begin, end, count = report["middle"]
        (tree0, main0), (tree1, main1) = result.cpu_at(begin), result.cpu_at(end)
        middle = {"pages": count, "tree_cpu": tree1 - tree0, "main_cpu": main1 - main0}
    return Run(
        PIPELINE,
        int(report["by_status"].get("ok", 0)),
        result.seconds,
        result.peak_rss_mb,
        result.cpu_seconds,
        result.self_cpu_seconds,
        startup_cpu_seconds=startup,
        startup_main_cpu_seconds=main,
        detail={
            "summary": summary,
            "archive": report,
            "served": dict(room.served),
            "peak_processes": result.peak_processes,
            "unreaped": result.unreaped,
            "cpu_by_role": result.cpu_by_role,
            "middle": middle,
        },
    )


def run_extraction(tmp: Path, room: Newsroom, extractor: str, python: str) -> Run:
    manifest = tmp / "manifest.json"
    if not manifest.exists():
        items = [{"url": url, "path": str(page.path)} for url, page in room.pages]
        manifest.write_text(json.dumps(items), encoding="utf-8")
    argv = [python, "-m", "bench.extract_limit", str(manifest), "--extractor", extractor]
    result = measure(argv, env=clean_env(), cwd=REPO)
    out = json_summary(result, f"extract_limit {extractor}")
    return Run(
        LIMIT if extractor == "trafilatura" else EXTRACTION,
        int(out["ok"]),
        float(out["seconds"]),
        result.peak_rss_mb,
        result.cpu_seconds,
        result.self_cpu_seconds,
        warm_seconds=float(out["warm_seconds"]),
        extract_cpu_seconds=float(out["extract_cpu_seconds"]),
        detail={**out, "process_seconds": result.seconds, "cpu_by_role": result.cpu_by_role},
    )


def profile_pipeline(tmp: Path, room: Newsroom, workers: int, python: str, out: Path) -> str:
    """One more `ingest fetch` under py-spy (all processes); returns a summary of where the
    samples fell. Writes ``out/pipeline.svg`` and ``out/pipeline.txt`` (collapsed stacks)."""
    spy = shutil.which("py-spy", path=str(Path(python).parent)) or shutil.which("py-spy")
    if spy is None:
        return "py-spy not installed (pip install py-spy): no profile"
    out.mkdir(parents=True, exist_ok=True)
    folder = tmp / "profile"
    folder.mkdir()
    write_config(folder / "ingest.toml", folder / "archive.sqlite3", room.feed_urls, workers)
    target = [python, "-m", "ingest", "--config", str(folder / "ingest.toml")]
    target += ["fetch", "--format", "json"]
    for fmt, name in (("raw", "pipeline.txt"), ("flamegraph", "pipeline.svg")):
        if fmt == "flamegraph":  # a second run, on a fresh archive
            shutil.rmtree(folder)
            folder.mkdir()
            write_config(
                folder / "ingest.toml", folder / "archive.sqlite3", room.feed_urls, workers
            )
        argv = [spy, "record", "--subprocesses", "--rate", "200", "--format", fmt]
        argv += ["--output", str(out / name), "--", *target]
        subprocess.run(argv, env=clean_env(), cwd=folder, capture_output=True, check=False)
    return summarise_stacks(out / "pipeline.txt")


def summarise_stacks(path: Path, top: int = 12) -> str:
    """Where the samples of a py-spy raw profile (``--subprocesses``) fell: by process role,
    and the main process's subsystems (inclusive) and hottest functions (self time).

    py-spy nests a child process's stacks under its parent's ``process PID:"cmdline"`` frame:
    the innermost such frame names the process a sample was taken in, and how deep it is tells
    the main process (0), the pool's forkserver and resource tracker (1), workers (2).
    """
    if not path.exists():
        return f"no profile at {path}"
    by_role: dict[str, int] = {}
    pids: dict[str, set[str]] = {}
    main_self: dict[str, int] = {}
    main_incl: dict[str, int] = {}
    main_total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        marks = [i for i, f in enumerate(frames) if f.startswith("process ")]
        inner = marks[-1] if marks else 0
        role = _role(frames[inner], len(marks) - 1)
        by_role[role] = by_role.get(role, 0) + count
        pids.setdefault(role, set()).add(frames[inner].split(":", 1)[0])
        if role != "main":
            continue
        main_total += count
        own = frames[inner + 1 :] or ["(process)"]
        main_self[own[-1]] = main_self.get(own[-1], 0) + count
        for bucket in {_bucket(f) for f in own}:
            main_incl[bucket] = main_incl.get(bucket, 0) + count
    total = sum(by_role.values()) or 1
    lines = [f"py-spy samples (on-CPU) by process, {total} in all:"]
    for role, n in sorted(by_role.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>6} {n / total:6.1%}  {role} ({len(pids[role])} process(es))")
    if main_total:
        lines.append(f"main process, {main_total} samples; inclusive, by subsystem:")
        ranked = sorted(main_incl.items(), key=lambda kv: -kv[1])
        for bucket, n in [kv for kv in ranked if kv[0] != "other"][:top]:
            lines.append(f"  {n:>6} {n / main_total:6.1%}  {bucket}")
        lines.append("main process: hottest functions (self):")
        for leaf, n in sorted(main_self.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"  {n:>6} {n / main_total:6.1%}  {leaf[:100]}")
    return "\n".join(lines)


def _role(frame: str, depth: int) -> str:
    if depth <= 0:
        return "main"
    if "resource_tracker" in frame:
        return "resource tracker"
    if "forkserver" in frame:
        return "forkserver" if depth == 1 else "extraction workers"
    return "children" if depth == 1 else "grandchildren"


# The store and the modules it is composed of (`ingest.store.Store`).
STORE = "ingest.store (SQL, incl. SQLAlchemy below it)"
BUCKETS = (
    ("_bootstrap", "imports"),
    ("ingest/store.py", STORE),
    ("ingest/dbsession.py", STORE),
    ("ingest/feedstate.py", STORE),
    ("ingest/claims.py", STORE),
    ("ingest/hostturns.py", STORE),
    ("ingest/archiving.py", STORE),
    ("ingest/reads.py", STORE),
    ("sqlalchemy", "sqlalchemy"),
    ("workers.py", "ingest.workers (pool: pipes, pickling)"),
    ("net.py", "ingest.net (HTTP client)"),
    ("httpcore", "httpcore"),
    ("feeds.py", "ingest.feeds (feedparser)"),
    ("zlib", "zlib"),
    ("migrations", "alembic migrations"),
    ("alembic", "alembic"),
    ("base_events.py", "asyncio event loop"),
    ("selectors.py", "waiting in select()"),
)


def _bucket(frame: str) -> str:
    for needle, name in BUCKETS:
        if needle in frame:
            return name
    return "other"


# --- report --------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def _median_roles(runs: Sequence[Run]) -> dict[str, float]:
    order = ("main", "forkserver", "workers")
    roles = {role for r in runs for role in r.detail.get("cpu_by_role", {})}
    return {
        role: _median([r.detail.get("cpu_by_role", {}).get(role, 0.0) for r in runs])
        for role in sorted(roles, key=lambda name: order.index(name) if name in order else 9)
    }


def outside_extraction(pipeline: Run, extraction: Run) -> dict[str, float]:
    """CPU milliseconds a page that the pipeline spends outside extraction (module docstring),
    from one round's pipeline run and the extraction run of the same round."""
    pages = max(pipeline.pages, 1)
    # E as the pipeline's own workers measured it in this run; the extraction run's figure
    # for the same pages (another process tree, at another moment) is the cross-check.
    own = pipeline.detail.get("summary", {}).get("extract_cpu_seconds")
    alone = extraction.extract_cpu_seconds or 0.0
    extract = float(own) if own else alone
    startup = pipeline.startup_cpu_seconds or 0.0
    roles = pipeline.detail.get("cpu_by_role", {})
    main = roles.get("main", 0.0)
    return {
        "extraction": 1000 * extract / pages,
        "extraction_alone": 1000 * alone / max(extraction.pages, 1),
        "whole": 1000 * (pipeline.cpu_seconds - extract) / pages,
        "steady": 1000 * (pipeline.cpu_seconds - startup - extract) / pages,
        "startup_seconds": startup,
        "main": 1000 * main / pages,
        "main_steady": 1000 * (main - (pipeline.startup_main_cpu_seconds or 0.0)) / pages,
        "forkserver": 1000 * roles.get("forkserver", 0.0) / pages,
        "workers_beyond_extraction": 1000 * (roles.get("workers", 0.0) - extract) / pages,
        **_middle(pipeline.detail.get("middle"), extract / pages),
    }


def _middle(middle: dict[str, float] | None, extract_per_page: float) -> dict[str, float]:
    """CPU ms a page outside extraction while the middle half of the pages were fetched (E
    taken as its average a page): no start-up of any process, no tail."""
    if not middle:
        return {"middle": float("nan"), "main_middle": float("nan")}
    pages = max(middle["pages"], 1)
    return {
        "middle": 1000 * (middle["tree_cpu"] / pages - extract_per_page),
        "main_middle": 1000 * middle["main_cpu"] / pages,
    }


def summarise(rounds: list[dict[str, Run]]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for name in (PIPELINE, LIMIT, EXTRACTION):
        runs = [r[name] for r in rounds]
        rows[name] = {
            "pages": min(r.pages for r in runs),
            "seconds": _median([r.seconds for r in runs]),
            "pages_per_s": _median([r.rate for r in runs]),
            "peak_rss_mb": _median([r.peak_rss_mb for r in runs]),
            "cpu_seconds": _median([r.cpu_seconds for r in runs]),
            "server_cpu_seconds": _median([r.server_cpu_seconds for r in runs]),
            "warm_seconds": _median([r.warm_seconds for r in runs]),
            "cpu_by_role": _median_roles(runs),
            "runs": [asdict(r) | {"rate": r.rate} for r in runs],
        }
    # Ratios and CPU figures are taken within each round, then the median over rounds.
    per_round = [
        {
            "ratio": r[PIPELINE].rate / r[LIMIT].rate if r[LIMIT].rate else float("nan"),
            "ratio_extraction": r[PIPELINE].rate / r[EXTRACTION].rate
            if r[EXTRACTION].rate
            else float("nan"),
            # The ratio of rates on an idle machine where both keep every core busy: steadier
            # than the rates themselves when other jobs load the machine.
            "cpu_ratio": r[LIMIT].cpu_seconds
            / max(r[LIMIT].pages, 1)
            / (r[PIPELINE].cpu_seconds / max(r[PIPELINE].pages, 1)),
            **outside_extraction(r[PIPELINE], r[EXTRACTION]),
        }
        for r in rounds
    ]
    figures = {key: _median([f[key] for f in per_round]) for key in per_round[0]}
    return {"rows": rows, "figures": figures, "per_round": per_round}


def format_table(result: dict[str, Any], header: str) -> str:
    lines = [header, ""]
    lines.append(
        f"{'':<32} {'pages':>5} {'seconds':>8} {'pages/s':>8} {'warm s':>7} "
        f"{'peak RSS MB':>11} {'CPU s':>7} {'CPU ms/page':>11} {'server CPU s':>12}"
    )
    for name, row in result["rows"].items():
        warm = "" if row["warm_seconds"] != row["warm_seconds"] else f"{row['warm_seconds']:.2f}"
        lines.append(
            f"{name:<32} {row['pages']:>5} {row['seconds']:>8.2f} {row['pages_per_s']:>8.2f} "
            f"{warm:>7} {row['peak_rss_mb']:>11.0f} {row['cpu_seconds']:>7.2f} "
            f"{1000 * row['cpu_seconds'] / max(row['pages'], 1):>11.1f} "
            f"{row['server_cpu_seconds']:>12.2f}"
        )
    lines += ["", "CPU seconds by process (from /proc polls, a lower bound; median):"]
    for name, row in result["rows"].items():
        parts = ", ".join(f"{role} {sec:.2f}" for role, sec in row["cpu_by_role"].items())
        lines.append(f"  {name:<32} {parts}")
    f = result["figures"]

    def goal(met: bool) -> str:
        return "met" if met else "NOT met"

    lines += [
        "",
        "medians of the rounds' own figures:",
        f"  pipeline / limit (trafilatura + metadata)   {f['ratio']:6.2f}  "
        f"(target >= {TARGET_VS_LIMIT:g}: {goal(f['ratio'] >= TARGET_VS_LIMIT)})",
        f"  CPU a page, limit / pipeline                {f['cpu_ratio']:6.2f}",
        f"  pipeline / extraction alone (ingest)        {f['ratio_extraction']:6.2f}",
        f"  extraction itself (E), CPU ms a page        {f['extraction']:6.2f}  "
        f"(in the extraction run: {f['extraction_alone']:.2f})",
        f"  CPU outside extraction, ms a page: whole    {f['whole']:6.2f}  "
        f"(target <= {TARGET_OUTSIDE_MS:g}: {goal(f['whole'] <= TARGET_OUTSIDE_MS)})",
        f"    steady (after {f['startup_seconds']:.2f} s of start-up CPU)    {f['steady']:6.2f}  "
        f"(target <= {TARGET_OUTSIDE_MS:g}: {goal(f['steady'] <= TARGET_OUTSIDE_MS)})",
        f"    middle half of the pages (all started)    {f['middle']:6.2f}  "
        f"(target <= {TARGET_OUTSIDE_MS:g}: {goal(f['middle'] <= TARGET_OUTSIDE_MS)})",
        f"    main process: whole {f['main']:.2f}, steady {f['main_steady']:.2f}, middle "
        f"{f['main_middle']:.2f}; forkserver "
        f"{f['forkserver']:.2f}; workers beyond extraction "
        f"{f['workers_beyond_extraction']:.2f}",
    ]
    return "\n".join(lines)


def format_pipeline_detail(rounds: list[dict[str, Run]]) -> str:
    lines = ["", "pipeline runs (phases from the archive's timestamps):"]
    for n, runs in enumerate(rounds, 1):
        run = runs[PIPELINE]
        archive = run.detail["archive"]
        phases = archive["phases"]
        summary = run.detail["summary"]

        def sec(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}s"

        lines.append(
            f"  round {n}: {run.seconds:.2f}s wall, ingest's own 'seconds' "
            f"{summary.get('seconds', 0):.2f}s; start-up {sec(phases['startup'])}, "
            f"fetching {sec(phases['fetching'])}, tail {sec(phases['tail'])}; "
            f"articles {archive['by_status']}, captures {archive['captures']}, "
            f"peak processes {run.detail['peak_processes']}"
        )
        for failure in archive["failures"][:10]:
            lines.append(f"    not ok: {failure['url']} {failure['error']}: {failure['message']}")
        for failure in summary.get("failures", [])[:10]:
            lines.append(f"    failure: {failure}")
    return "\n".join(lines)


# The URLs a page declares as its own besides the one it was captured at: the archive merges
# pages that share one, so copies must not.
OWN_URL = re.compile(
    rb"""<(?:link[^>]*\brel=["']?canonical\b[^>]*\bhref|meta[^>]*\bproperty=["']?og:url\b"""
    rb"""[^>]*\bcontent)=["']?([^"'\s>]+)""",
    re.IGNORECASE,
)


def copies(pages: list[CorpusPage], count: int) -> list[CorpusPage]:
    """Each page ``count`` times, as distinct articles: a bigger newsroom, so that fixed costs
    (start-up, the pool's start, the last pages' extraction) weigh less than steady work. A
    copy's own URLs, wherever the page names them (the captured URL, the canonical link and
    og:url, which may differ from it, and JSON-LD), get a query parameter, so the archive does
    not merge the copies as one article."""
    if count <= 1:
        return pages
    out = []
    for page in pages:
        urls = {page.original_url.encode(), *OWN_URL.findall(page.html[:400_000])}
        # Longest first, in one pass: a URL that is a prefix of another is not rewritten twice.
        names = re.compile(b"|".join(re.escape(u) for u in sorted(urls, key=len, reverse=True)))
        for number in range(count):
            html = names.sub(lambda m, n=number: _copy_url(m[0], n), page.html)
            own = _copy_url(page.original_url.encode(), number).decode()
            out.append(
                replace(page, page_id=f"{number:02d}{page.page_id}", original_url=own, html=html)
            )
    # Copy by copy, as before: copy 0 of every page, then copy 1, ...
    return sorted(out, key=lambda p: p.page_id[:2])


def _copy_url(url: bytes, number: int) -> bytes:
    base, hash_, fragment = url.partition(b"#")
    return base + (b"&" if b"?" in base else b"?") + b"copy=%d" % number + hash_ + fragment


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=(
            "Steady-state throughput of `ingest fetch` on a loopback newsroom of the corpus "
            "pages, against trafilatura with metadata on every core, and its CPU outside "
            "extraction."
        ),
        epilog="example: python -m bench.throughput --repeat 1 --json /tmp/throughput.json",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--copies",
        type=int,
        default=10,
        help="serve each corpus page this many times, as distinct articles (default 10: 1,080)",
    )
    parser.add_argument("--feeds", type=int, default=48, help="feeds (RSS and Atom alternately)")
    parser.add_argument("--hosts", type=int, default=48, help="loopback addresses from 127.0.0.2")
    parser.add_argument("--workers", type=int, default=0, help="extract.workers (0: per core)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also run one `ingest fetch` under py-spy; write pipeline.svg/.txt into DIR",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary archives")
    return parser.parse_args(argv)


def run_round(tmp: Path, room: Newsroom, args: argparse.Namespace, n: int) -> dict[str, Run]:
    """The three contenders once, starting one further along the list each round."""
    contenders = [PIPELINE, LIMIT, EXTRACTION]
    runs: dict[str, Run] = {}
    for name in contenders[n % 3 :] + contenders[: n % 3]:
        if name == PIPELINE:
            runs[name] = run_pipeline(tmp, room, args.workers, n, sys.executable)
        else:
            extractor = "trafilatura" if name == LIMIT else "ingest"
            runs[name] = run_extraction(tmp, room, extractor, sys.executable)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    pages = copies(load_corpus(args.corpus), args.copies)
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    rounds: list[dict[str, Run]] = []
    profile = ""
    started = time.perf_counter()
    try:
        with Newsroom(pages, feeds=args.feeds, hosts=args.hosts) as room:
            for n in range(args.repeat):
                runs = run_round(tmp, room, args, n)
                rounds.append(runs)
                print(
                    f"round {n + 1}/{args.repeat}: "
                    + ", ".join(f"{name} {runs[name].rate:.1f}/s" for name in sorted(runs)),
                    file=sys.stderr,
                )
            if args.profile:
                profile = profile_pipeline(tmp, room, args.workers, sys.executable, args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = summarise(rounds)
    header = (
        f"throughput: {len(pages)} pages ({args.copies} copies of the corpus), {args.feeds} "
        f"feeds on {args.hosts} hosts, {CORES} cores, median of {args.repeat} round(s) "
        f"({time.perf_counter() - started:.0f}s in all; load average at the end "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(format_table(result, header))
    print(format_pipeline_detail(rounds))
    if profile:
        print("\n" + profile)
    expected = len(pages)
    stored = result["rows"][PIPELINE]["pages"]
    if stored != expected:
        print(f"\nWARNING: ingest fetch stored {stored} of {expected} articles as ok")
    if args.json:
        doc = {
            "corpus": str(args.corpus),
            "pages": expected,
            "cores": CORES,
            "repeat": args.repeat,
            **result,
            "profile": profile or None,
        }
        args.json.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
