"""Politeness without stalling: a first run over many hosts, against the politeness bound.

    python -m bench.politeness                         # fetch, daemon, 2 and 3 workers; ~3 min
    python -m bench.politeness --modes fetch,daemon --repeat 3 --json /tmp/polite.json
    python -m bench.politeness --hosts 48 --busiest 25 --pages 1092 --delay 1

A loopback web of `--hosts` (48) hosts, 127.0.0.2 ...: each serves one RSS feed listing its
own article pages, `--pages` (1,092) in all: `--busiest` (25) on the first host, the rest
spread evenly; robots.txt answers 404 (no rules). A host's work is its robots.txt, its feed
and its pages, so the busiest host has busiest + 2 requests, and at `--delay`
(``fetch.host_delay``, 1 s, the default) apart a run cannot finish before (busiest + 1) x
delay: the politeness bound (26 s with the defaults). The pages are small generated articles
(extraction costs a few ms), so the bound, not the cores, decides.

Modes, each from a fresh archive (SQLite file; PostgreSQL schema for workers), interleaved
round by round:

  fetch       ``ingest fetch`` as a whole process, until it exits;
  daemon      one ``ingest daemon`` (SQLite), from its start until every page is stored;
  workers-N   N daemons on one PostgreSQL archive (127.0.0.1:5432, `--postgres`), likewise.

Reported: wall seconds, and their ratio to the bound (target: at most 1.25); the hosts that
were served in the first 5 seconds; and, from the server's log of every request (arrival
times), the smallest gap between two requests to one host (target: at least the delay).
Every page must be stored once (status ok); anything else is a failed run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from itertools import pairwise
from pathlib import Path

from bench.newsroom import EPOCH, HTML_TYPE, RSS_TYPE, LoopbackSite, Request, Resource, rss
from bench.proctree import clean_env
from bench.scaleout import POSTGRES, Archive, free_port, stop, wait_stored

TARGET = 1.25
WORDS = (
    "the minister said talks on the border deal would resume next week after a vote in "
    "parliament while markets rose and the central bank held rates as storms hit the coast"
).split()


@dataclass
class Run:
    mode: str
    round: int
    seconds: float
    bound: float
    stored: int
    expected: int
    hosts_in_first_5s: int
    min_gap: float
    requests: int
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound if self.bound else 0.0


def page_counts(hosts: int, pages: int, busiest: int) -> list[int]:
    """Pages per host: ``busiest`` on the first, the rest spread evenly over the others."""
    rest, extra = divmod(pages - busiest, hosts - 1)
    counts = [busiest] + [rest + (n < extra) for n in range(hosts - 1)]
    if hosts < 2 or min(counts) < 1 or max(counts[1:]) > busiest:
        raise SystemExit(f"{pages} pages do not spread over {hosts} hosts at most {busiest} each")
    return counts


def article(host: int, number: int) -> bytes:
    rng = random.Random(f"{host}/{number}")
    title = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize()
    paragraphs = "".join(
        "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 70))) + ".</p>"
        for _ in range(6)
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><nav><a href='/'>Home</a> <a href='/world/'>World</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article><footer>© Host {host}</footer>"
        "</body></html>"
    ).encode()


def build_site(site: LoopbackSite, counts: Sequence[int]) -> list[str]:
    """Serve each host's feed and pages; returns the feed URLs."""
    feeds = []
    for host, count in enumerate(counts):
        items = []
        for number in range(count):
            url = site.add(
                host, f"/world/{number}.html", Resource.make(article(host, number), HTML_TYPE)
            )
            items.append(
                {
                    "title": f"Story {number} of host {host}",
                    "url": url,
                    "summary": "A story.",
                    "published": str(EPOCH - number * 60),
                }
            )
        body = rss(f"Host {host}", site.origin(host) + "/", items, EPOCH)
        feeds.append(site.add(host, "/feed.rss", Resource.make(body, RSS_TYPE)))
    return feeds


def write_config(path: Path, url: str, feeds: Sequence[str], delay: float, port: int) -> None:
    lines = [
        "[database]",
        f'url = "{url}"',
        "[fetch]",
        "allow_private_networks = true  # the web is on loopback",
        f"host_delay = {delay}",
        "[daemon]",
        f'listen = "127.0.0.1:{port}"',
        'tick = "1s"',
        'retry_every = "2s"',
    ]
    for feed in feeds:
        lines += ["[[feeds]]", f'url = "{escape(feed)}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def gaps(requests: Sequence[Request]) -> tuple[float, int]:
    """The smallest gap between two requests to one host, and how many hosts were asked
    something in the first 5 seconds."""
    by_host: dict[int, list[float]] = defaultdict(list)
    for request in requests:
        by_host[request.host].append(request.started)
    first = min((r.started for r in requests), default=0.0)
    smallest = min(
        (b - a for times in by_host.values() for a, b in pairwise(sorted(times))),
        default=float("inf"),
    )
    early = sum(1 for times in by_host.values() if min(times) - first <= 5.0)
    return smallest, early


def run(
    mode: str, site: LoopbackSite, feeds: Sequence[str], args: argparse.Namespace, folder: Path
) -> Run:
    folder.mkdir()
    workers = int(mode.split("-")[1]) if mode.startswith("workers") else 1
    backend = "postgresql" if mode.startswith("workers") else "sqlite"
    expected = sum(args.counts)
    bound = (max(args.counts) + 1) * args.delay
    env = clean_env()
    with Archive(backend, folder, args.postgres) as archive:
        upgrade = subprocess.run(
            [sys.executable, "-m", "ingest", "--database", archive.url, "db", "upgrade"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if upgrade.returncode != 0:
            raise SystemExit(f"ingest db upgrade failed:\n{upgrade.stderr}")
        configs = []
        for n in range(workers):
            configs.append(folder / f"ingest-{n}.toml")
            write_config(configs[-1], archive.url, feeds, args.delay, free_port())
        site.requests = []
        problems: list[str] = []
        started = time.monotonic()
        if mode == "fetch":
            done = subprocess.run(
                [sys.executable, "-m", "ingest", "--config", str(configs[0]), "fetch"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - started
            if done.returncode != 0:
                problems.append(f"ingest fetch exited {done.returncode}: {done.stderr[-500:]}")
            stored = archive.by_status().get("ok", 0)
        else:
            daemons = [
                subprocess.Popen(
                    [sys.executable, "-m", "ingest", "--config", str(config), "daemon"],
                    cwd=folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                for config in configs
            ]
            try:
                progress = wait_stored(archive, daemons, expected, started, args.timeout)
            finally:
                stop(daemons)
            seconds, stored = progress.seconds, progress.stored
            problems += progress.problems
        requests, site.requests = site.requests or [], None
    if stored != expected:
        problems.append(f"{stored} of {expected} pages stored")
    smallest, early = gaps(requests)
    if smallest < args.delay:
        problems.append(f"two requests to one host {smallest:.3f} s apart")
    return Run(mode, 0, seconds, bound, stored, expected, early, smallest, len(requests), problems)


def report(runs: Sequence[Run], args: argparse.Namespace) -> str:
    bound = (max(args.counts) + 1) * args.delay
    lines = [
        f"{args.hosts} hosts, {sum(args.counts)} pages (busiest host {max(args.counts)}), "
        f"host_delay {args.delay:g} s: politeness bound {bound:.1f} s; medians of "
        f"{args.repeat} round(s)",
        "",
        "| run | seconds | / bound | hosts served in the first 5 s | smallest gap, one host |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode in args.modes:
        mine = [r for r in runs if r.mode == mode]
        seconds = statistics.median(r.seconds for r in mine)
        lines.append(
            f"| {mode} | {seconds:.1f} | {seconds / bound:.2f} | "
            f"{min(r.hosts_in_first_5s for r in mine)} of {args.hosts} | "
            f"{min(r.min_gap for r in mine):.3f} s |"
        )
    for r in runs:
        lines += [f"problem ({r.mode}, round {r.round}): {p}" for p in r.problems]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=48)
    parser.add_argument("--pages", type=int, default=1092)
    parser.add_argument("--busiest", type=int, default=25, help="pages on the busiest hosts")
    parser.add_argument("--delay", type=float, default=1.0, help="fetch.host_delay, seconds")
    parser.add_argument("--modes", default="fetch,daemon,workers-2,workers-3")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--json", type=Path, help="write every run here")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.counts = page_counts(args.hosts, args.pages, args.busiest)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="politeness-") as tmp, LoopbackSite(args.hosts) as site:
        feeds = build_site(site, args.counts)
        for round_no in range(1, args.repeat + 1):
            order = args.modes[round_no - 1 :] + args.modes[: round_no - 1]
            for mode in order:
                result = run(mode, site, feeds, args, Path(tmp) / f"{mode}-{round_no}")
                result.round = round_no
                runs.append(result)
                print(
                    f"round {round_no} {mode}: {result.seconds:.1f} s "
                    f"({result.ratio:.2f} x bound), gap {result.min_gap:.3f} s",
                    file=sys.stderr,
                )
    print(report(runs, args))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1), encoding="utf-8")
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
