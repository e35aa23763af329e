"""Re-poll cost: `ingest fetch` over 1,000 feeds that all answer 304, against bare httpx.

    python -m bench.repoll                          # 1000 feeds, 3 rounds, medians; ~1 minute
    python -m bench.repoll --repeat 5 --json /tmp/repoll.json
    python -m bench.repoll --profile /tmp/prof      # + one re-poll under py-spy

Serves ``--feeds`` small RSS feeds on two loopback addresses (`bench.newsroom.LoopbackSite`),
every tenth with one entry linking to a tiny page, the rest empty; each answers 304 to a
matching If-None-Match / If-Modified-Since. One `ingest fetch` primes an archive (it stores
each feed's validators); then each round measures, as whole fresh processes
(`bench.proctree`):

  ingest fetch      ``python -m ingest --config CFG fetch --format json`` re-polling every feed
                    (all 304: checked, feeds_not_modified must equal --feeds), per_host 16 on
                    2 hosts and concurrency 32, host_delay 0;
  bare httpx        `bench.repoll_bare`: one AsyncClient, 32 connections, the same conditional
                    requests with the stored validators, nothing else;
  bare + commits    the same, also updating each feed's row in a copy of the archive with one
                    SQLite commit per feed (what recording each poll costs without an ORM).

and reports seconds, feeds/s and the ratio of rates (target: ingest / bare >= 0.8). Start-up:
the wall time of ``python -c pass``, ``python -c "import httpx"`` and ``python -m ingest
--help``, and ``python -X importtime`` of one re-poll, summed by top-level package.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.newsroom import REPO, RSS_TYPE, LoopbackSite, Resource, rss
from bench.proctree import clean_env, json_summary, measure
from bench.throughput import _utc, summarise_stacks

TARGET = 0.8
PAGE_EVERY = 10  # every tenth feed lists one entry
WORDS = (
    "harbour council budget river bridge vote winter grain railway museum festival court "
    "school market storm energy league mayor hospital airport ferry housing tariff port"
).split()


@dataclass
class Run:
    name: str
    seconds: float
    feeds: int
    not_modified: int
    peak_rss_mb: float
    cpu_seconds: float
    server_cpu_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.feeds / self.seconds if self.seconds > 0 else 0.0


def _page(i: int) -> bytes:
    rng = random.Random(i)
    paragraphs = "".join(
        "<p>" + " ".join(rng.choice(WORDS) for _ in range(40)).capitalize() + ".</p>"
        for _ in range(4)
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Story {i}</title>'
        f"</head><body><article><h1>Story {i}</h1>{paragraphs}</article></body></html>"
    ).encode()


def build_site(site: LoopbackSite, feeds: int) -> list[str]:
    """Add ``feeds`` feeds (and their few pages) to ``site``; returns the feed URLs."""
    urls = []
    for i in range(feeds):
        items = []
        if i % PAGE_EVERY == 0:
            page = site.add(i + 1, f"/news/{i}.html", Resource.make(_page(i), "text/html"))
            items.append(
                {"url": page, "title": f"Story {i}", "summary": "A story.", "published": "1.7e9"}
            )
        body = rss(f"Feed {i}", site.origin(i) + f"/section/{i}/", items, 1.7e9)
        urls.append(site.add(i, f"/feeds/{i}.rss", Resource.make(body, RSS_TYPE)))
    return urls


def write_config(path: Path, database: Path, feeds: Sequence[str], per_host: int) -> None:
    lines = [
        "[database]",
        f'url = "sqlite:///{database}"',
        "[fetch]",
        "allow_private_networks = true",
        "host_delay = 0",
        f"per_host = {per_host}",
        "concurrency = 32",
        "[extract]",
        "keep_raw = true",
    ]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def ingest_argv(python: str, config: Path) -> list[str]:
    return [python, "-m", "ingest", "--config", str(config), "fetch", "--format", "json"]


def poll_phases(database: Path, started_at: float, ended_at: float) -> dict[str, float | None]:
    """Start-up (process start to the first poll recorded), polling (first to last) and tail
    (last poll recorded to exit), from the feeds' ``last_polled_at``."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        query = "SELECT min(last_polled_at), max(last_polled_at) FROM feeds"
        first, last = db.execute(query).fetchone()
    start, end = _utc(first), _utc(last)
    if start is None or end is None or start < started_at:
        return {"startup": None, "polling": None, "tail": None}
    return {"startup": start - started_at, "polling": end - start, "tail": ended_at - end}


def run_ingest(python: str, config: Path, feeds: int, site: LoopbackSite) -> Run:
    site.reset_counts()
    result = measure(ingest_argv(python, config), env=clean_env(), cwd=config.parent)
    summary = json_summary(result, "ingest fetch")
    phases = poll_phases(
        config.parent / "archive.sqlite3", result.started_at, result.started_at + result.seconds
    )
    if summary.get("feeds_not_modified") != feeds:
        print(
            f"WARNING: ingest re-poll: feeds_not_modified={summary.get('feeds_not_modified')} "
            f"of {feeds} (failures: {summary.get('failures', [])[:5]})",
            file=sys.stderr,
        )
    return Run(
        "ingest fetch",
        result.seconds,
        int(summary.get("feeds", 0)),
        int(summary.get("feeds_not_modified", 0)),
        result.peak_rss_mb,
        result.cpu_seconds,
        result.self_cpu_seconds,
        detail={
            "own_seconds": summary.get("seconds"),
            "phases": phases,
            "served": dict(site.served),
            "peak_processes": result.peak_processes,
        },
    )


def run_bare(
    python: str, manifest: Path, site: LoopbackSite, db: Path | None, concurrency: int
) -> Run:
    argv = [python, "-m", "bench.repoll_bare", str(manifest), "--concurrency", str(concurrency)]
    if db is not None:
        argv += ["--db", str(db)]
    site.reset_counts()
    result = measure(argv, env=clean_env(), cwd=REPO)
    out = json_summary(result, "repoll_bare")
    return Run(
        "bare httpx + commits" if db else "bare httpx",
        result.seconds,
        int(out["feeds"]),
        int(out["not_modified"]),
        result.peak_rss_mb,
        result.cpu_seconds,
        result.self_cpu_seconds,
        detail={"own_seconds": out["seconds"], "statuses": out["statuses"]},
    )


def wall(argv: Sequence[str], times: int = 5) -> float:
    """Median wall seconds of running ``argv`` to completion."""
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(list(argv), env=clean_env(), cwd=REPO, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def import_times(stderr: str) -> dict[str, dict[str, int]]:
    """``-X importtime`` lines -> per top-level package: its self time, and the cumulative
    time of its outermost imports (those not inside another import of the same package)."""
    out: dict[str, dict[str, int]] = {}
    stack: list[tuple[int, str]] = []  # (depth, package) of the enclosing imports
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((int(self_us), int(cumulative_us), depth, name.strip()))
    # importtime prints children before their parent: walk backwards to know each parent first.
    for self_us, cumulative_us, depth, name in reversed(rows):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        package = name.split(".")[0]
        entry = out.setdefault(package, {"self_us": 0, "cumulative_us": 0})
        entry["self_us"] += self_us
        if package not in {p for _, p in stack}:
            entry["cumulative_us"] += cumulative_us
        stack.append((depth, package))
    return out


def startup(python: str, config: Path) -> dict[str, Any]:
    timed = subprocess.run(
        [python, "-X", "importtime", *ingest_argv(python, config)[1:]],
        env=clean_env(),
        cwd=config.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    packages = import_times(timed.stderr)
    total = sum(p["self_us"] for p in packages.values())
    return {
        "python -c pass": wall([python, "-c", "pass"]),
        "python -c 'import httpx'": wall([python, "-c", "import httpx"]),
        "python -m ingest --help": wall([python, "-m", "ingest", "--help"]),
        "imports_total_us": total,
        "imports": dict(sorted(packages.items(), key=lambda kv: -kv[1]["cumulative_us"])),
    }


def manifest_from(database: Path, path: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT url, etag, last_modified FROM feeds ORDER BY id").fetchall()
    items = [{"url": u, "etag": e or "", "last_modified": m or ""} for u, e, m in rows]
    path.write_text(json.dumps(items), encoding="utf-8")
    return sum(1 for item in items if item["etag"])


def copy_archive(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


# --- report --------------------------------------------------------------------------------


def summarise(rounds: list[dict[str, Run]]) -> dict[str, Any]:
    rows = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        rows[name] = {
            "feeds": min(r.feeds for r in runs),
            "not_modified": min(r.not_modified for r in runs),
            "seconds": statistics.median(r.seconds for r in runs),
            "feeds_per_s": statistics.median(r.rate for r in runs),
            "peak_rss_mb": statistics.median(r.peak_rss_mb for r in runs),
            "cpu_seconds": statistics.median(r.cpu_seconds for r in runs),
            "server_cpu_seconds": statistics.median(r.server_cpu_seconds for r in runs),
            "own_seconds": statistics.median(float(r.detail["own_seconds"]) for r in runs),
            "runs": [asdict(r) | {"rate": r.rate} for r in runs],
        }
    ingest, bare = rows["ingest fetch"]["feeds_per_s"], rows["bare httpx"]["feeds_per_s"]
    ratios = {"ingest / bare httpx": (ingest / bare, TARGET)}
    # CPU seconds, bare / ingest: the ratio of rates where CPU is what limits (robust to load).
    ratios["CPU: bare httpx / ingest"] = (
        rows["bare httpx"]["cpu_seconds"] / rows["ingest fetch"]["cpu_seconds"],
        None,
    )
    if "bare httpx + commits" in rows:
        ratios["ingest / bare httpx + commits"] = (
            ingest / rows["bare httpx + commits"]["feeds_per_s"],
            None,
        )
    return {"rows": rows, "ratios": ratios}


def format_report(result: dict[str, Any], start: dict[str, Any], header: str) -> str:
    lines = [header, ""]
    lines.append(
        f"{'':<22} {'304s':>5} {'seconds':>8} {'feeds/s':>8} {'in-process s':>12} "
        f"{'peak RSS MB':>11} {'CPU s':>6} {'server CPU s':>12}"
    )
    for name, row in result["rows"].items():
        lines.append(
            f"{name:<22} {row['not_modified']:>5} {row['seconds']:>8.2f} "
            f"{row['feeds_per_s']:>8.0f} {row['own_seconds']:>12.2f} "
            f"{row['peak_rss_mb']:>11.0f} {row['cpu_seconds']:>6.2f} "
            f"{row['server_cpu_seconds']:>12.2f}"
        )
    lines.append("")
    for name, (value, target) in result["ratios"].items():
        goal = ""
        if target is not None:
            goal = f"  (target >= {target:g}: {'met' if value >= target else 'NOT met'})"
        lines.append(f"{name:<32} {value:6.2f}{goal}")
    phases = [r["detail"]["phases"] for r in result["rows"]["ingest fetch"]["runs"]]
    lines += ["", "ingest fetch phases, per round (from the feeds' last_polled_at):"]
    for n, phase in enumerate(phases, 1):
        parts = ", ".join(
            f"{name} {'-' if value is None else f'{value:.2f}s'}" for name, value in phase.items()
        )
        lines.append(f"  round {n}: {parts}")
    lines += ["", "start-up (median wall of 5):"]
    for key in ("python -c pass", "python -c 'import httpx'", "python -m ingest --help"):
        lines.append(f"  {key:<28} {start[key]:6.3f}s")
    lines.append(
        f"  imports of one re-poll (-X importtime): {start['imports_total_us'] / 1e6:.3f}s "
        "in all; top packages (cumulative of outermost imports / self):"
    )
    for package, times in list(start["imports"].items())[:14]:
        lines.append(
            f"    {package:<20} {times['cumulative_us'] / 1e3:8.1f} ms  "
            f"{times['self_us'] / 1e3:8.1f} ms"
        )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.repoll",
        description=(
            "Time `ingest fetch` re-polling feeds that all answer 304, against a bare httpx "
            "script sending the same conditional requests; and what start-up costs."
        ),
        epilog="example: python -m bench.repoll --repeat 3 --json /tmp/repoll.json",
    )
    parser.add_argument("--feeds", type=int, default=1000, help="feeds to serve (default 1000)")
    parser.add_argument("--hosts", type=int, default=2, help="loopback addresses (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--per-host", type=int, default=16, help="fetch.per_host for ingest (default 16)"
    )
    parser.add_argument(
        "--no-commits", action="store_true", help="skip the bare httpx + commits variant"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="also profile one re-poll with py-spy"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary archive")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    python = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="bench-repoll-"))
    started = time.perf_counter()
    rounds: list[dict[str, Run]] = []
    profile = ""
    try:
        with LoopbackSite(args.hosts) as site:
            urls = build_site(site, args.feeds)
            config = tmp / "ingest.toml"
            database = tmp / "archive.sqlite3"
            write_config(config, database, urls, args.per_host)
            prime = measure(ingest_argv(python, config), env=clean_env(), cwd=tmp)
            primed = json_summary(prime, "priming ingest fetch")
            print(
                f"primed {primed.get('feeds')} feeds, {primed.get('articles_new')} articles "
                f"in {prime.seconds:.1f}s",
                file=sys.stderr,
            )
            manifest = tmp / "manifest.json"
            validators = manifest_from(database, manifest)
            if validators != args.feeds:
                print(f"WARNING: only {validators} feeds have an ETag", file=sys.stderr)
            copy = tmp / "bare.sqlite3"
            copy_archive(database, copy)
            for n in range(args.repeat):
                runs = {"ingest fetch": run_ingest(python, config, args.feeds, site)}
                runs["bare httpx"] = run_bare(python, manifest, site, None, 32)
                if not args.no_commits:
                    runs["bare httpx + commits"] = run_bare(python, manifest, site, copy, 32)
                rounds.append(runs)
                print(
                    f"round {n + 1}/{args.repeat}: "
                    + ", ".join(f"{k} {r.seconds:.2f}s" for k, r in runs.items()),
                    file=sys.stderr,
                )
            start = startup(python, config)
            if args.profile:
                profile = profile_repoll(python, config, args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = summarise(rounds)
    header = (
        f"re-poll: {args.feeds} feeds answering 304 on {args.hosts} hosts, ingest per_host "
        f"{args.per_host} / concurrency 32, bare httpx 32 connections; median of "
        f"{args.repeat} round(s) ({time.perf_counter() - started:.0f}s in all)"
    )
    print(format_report(result, start, header))
    if profile:
        print("\n" + profile)
    if args.json:
        doc = {"feeds": args.feeds, "repeat": args.repeat, **result, "startup": start}
        doc["profile"] = profile or None
        args.json.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    return 0


def profile_repoll(python: str, config: Path, out: Path) -> str:
    spy = shutil.which("py-spy", path=str(Path(python).parent)) or shutil.which("py-spy")
    if spy is None:
        return "py-spy not installed (pip install py-spy): no profile"
    out.mkdir(parents=True, exist_ok=True)
    for fmt, name in (("raw", "repoll.txt"), ("flamegraph", "repoll.svg")):
        argv = [spy, "record", "--subprocesses", "--rate", "500", "--format", fmt]
        argv += ["--output", str(out / name), "--", *ingest_argv(python, config)]
        subprocess.run(argv, env=clean_env(), cwd=config.parent, capture_output=True, check=False)
    return summarise_stacks(out / "repoll.txt")


if __name__ == "__main__":
    sys.exit(main())
