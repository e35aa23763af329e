"""`ingest reextract --all` against the machine's extraction limit, and its memory.

    python -m bench.reextract                          # 10,000 captures, and 2,000 for memory
    python -m bench.reextract --captures 1000 --small 0 --json /tmp/reextract.json
    python -m bench.reextract --profile /tmp/prof      # + one run under py-spy

Builds SQLite archives of ``--captures`` (10,000) and ``--small`` (2,000) articles, each a
copy of a page of the extraction corpus (`--corpus`, default ../shared/corpus/extraction,
read from there, never copied into the project) under a URL of its own (``?copy=N``), its
capture the page as `ingest fetch` keeps it (a zlib stream, ``text/html; charset=utf-8``),
its text a placeholder and its extractor unknown, as an archive made before looks to a new
extractor: every article is re-extracted and changes. Then, in one run, as whole processes
(`bench.proctree`: wall time, peak RSS summed over the process tree, CPU):

  reextract        the real CLI, ``python -m ingest --database URL reextract --all --format
                   json`` (one extraction worker per core, ``--workers``), on the large
                   archive, then on the small one (memory: the peak must not grow with it);
  limit            trafilatura with its metadata on the same pages (the large archive's,
                   copies included) and cores, from memory (`bench.extract_limit`, timed from
                   its pool's start), once before the large reextract and once after: the
                   ratio is taken against their mean, so that a change in the shared
                   machine's load over the run weighs on both sides.

Rates are pages a second of wall time; the reextract run's is its whole process (start-up,
imports and the last commit included). The archive is checked afterwards: every article made
by the current extractor, none failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.newsroom import DEFAULT_CORPUS, REPO, CorpusPage, load_corpus
from bench.proctree import Measured, clean_env, json_summary, measure

CORES = os.cpu_count() or 1
TARGET = 0.9
PLACEHOLDER = "Text of an older extractor."
HEADERS = json.dumps({"content-type": "text/html; charset=utf-8"})


def build_archive(path: Path, pages: Sequence[CorpusPage], count: int) -> None:
    """An archive of ``count`` articles with captures: the corpus pages in turn, each copy
    under its own URL, as an older extractor left them."""
    from ingest import cjk
    from ingest.captures import pack
    from ingest.store import Store

    Store.open(f"sqlite:///{path}").close()  # the schema, through the migrations
    packed = [pack(page.html) for page in pages]  # as `ingest fetch` keeps them: each body once
    now = "2025-01-01 12:00:00.000000"
    with sqlite3.connect(path) as db:
        cjk.register(db)  # the search index's triggers call it
        db.execute(
            "INSERT INTO feeds (id, url, name, error_count, active, tags) "
            "VALUES (1, 'http://bench.invalid/feed', 'bench', 0, 1, '[]')"
        )
        db.executemany(
            "INSERT OR IGNORE INTO capture_bodies (id, sha256, size, body) VALUES (?, ?, ?, ?)",
            [(n + 1, body.sha256, body.size, body.data) for n, body in enumerate(packed)],
        )
        ids = dict(db.execute("SELECT sha256, id FROM capture_bodies").fetchall())
        bodies = [ids[body.sha256] for body in packed]
        for start in range(0, count, 1000):
            articles, captures = [], []
            for n in range(start, min(count, start + 1000)):
                page = pages[n % len(pages)]
                url = f"{page.original_url}{'&' if '?' in page.original_url else '?'}copy={n}"
                articles.append((n + 1, url, url, url, PLACEHOLDER, now, now))
                captures.append((n + 1, url, bodies[n % len(pages)], now))
            db.executemany(
                "INSERT INTO articles (id, url_key, url, final_url, feed_id, authors, text, "
                "content_source, status, attempts, fetched_at, created_at) "
                "VALUES (?, ?, ?, ?, 1, '[]', ?, 'page', 'ok', 1, ?, ?)",
                articles,
            )
            db.executemany(
                "INSERT INTO captures (article_id, url, status, headers, body, body_id, "
                f"fetched_at) VALUES (?, ?, 200, '{HEADERS}', x'', ?, ?)",
                captures,
            )
            db.commit()


def manifest(path: Path, pages: Sequence[CorpusPage], count: int) -> Path:
    """`bench.extract_limit`'s list of the same ``count`` pages, copies included."""
    items = [
        {"url": pages[n % len(pages)].original_url, "path": str(pages[n % len(pages)].path)}
        for n in range(count)
    ]
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def run_reextract(archive: Path, workers: int) -> tuple[Measured, dict[str, Any]]:
    argv = [sys.executable, "-m", "ingest", "--database", f"sqlite:///{archive}"]
    argv += ["reextract", "--all", "--format", "json", "--workers", str(workers)]
    result = measure(argv, env=clean_env(), cwd=REPO, timeout=3600)
    return result, json_summary(result, "ingest reextract")


def check(archive: Path, count: int) -> dict[str, int]:
    """Every article made by the current extractor, its placeholder replaced."""
    from ingest.extract import EXTRACTOR

    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        made, left = db.execute(
            "SELECT sum(extractor = ?), sum(text = ?) FROM articles", (EXTRACTOR, PLACEHOLDER)
        ).fetchone()
    if made != count:
        print(f"WARNING: {made} of {count} articles made by {EXTRACTOR}", file=sys.stderr)
    return {"made_by_current": made or 0, "placeholders_left": left or 0}


def run_limit(path: Path) -> tuple[Measured, dict[str, Any]]:
    argv = [sys.executable, "-m", "bench.extract_limit", str(path), "--extractor", "trafilatura"]
    result = measure(argv, env=clean_env(), cwd=REPO, timeout=3600)
    return result, json_summary(result, "extract_limit trafilatura")


def profile(archive: Path, workers: int, out: Path) -> None:
    """One more run under py-spy (every process), as a flame graph: ``out/reextract.svg``."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy not installed (pip install py-spy): no profile", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--subprocesses", "--rate", "100", "--output"]
    argv += [str(out / "reextract.svg"), "--", sys.executable, "-m", "ingest"]
    argv += ["--database", f"sqlite:///{archive}", "reextract", "--all", "--workers", str(workers)]
    subprocess.run(argv, env=clean_env(), cwd=REPO, capture_output=True, check=False)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reextract", description=__doc__)
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--captures", type=int, default=10_000, help="the archive measured")
    parser.add_argument(
        "--small", type=int, default=2_000, help="a smaller archive, for memory (0: none)"
    )
    parser.add_argument("--workers", type=int, default=0, help="extraction processes (0: cores)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="also run once under py-spy (a flame graph)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary archives")
    return parser.parse_args(argv)


def _reextract_row(archive: Path, size: int, workers: int) -> dict[str, Any]:
    result, summary = run_reextract(archive, workers)
    return {
        "pages": summary["changed"],
        "failed": summary["failed"],
        "seconds": result.seconds,
        "peak_rss_mb": result.peak_rss_mb,
        "cpu_seconds": result.cpu_seconds,
        "cpu_by_role": result.cpu_by_role,
        **check(archive, size),
    }


def _limit_row(path: Path) -> dict[str, Any]:
    result, out = run_limit(path)
    return {
        "pages": out["ok"] + out["empty"],
        "failed": len(out["failed"]),
        "seconds": out["seconds"],
        "peak_rss_mb": result.peak_rss_mb,
        "cpu_seconds": result.cpu_seconds,
        "cpu_by_role": result.cpu_by_role,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    pages = load_corpus(args.corpus)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reextract-"))
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    big, small = f"reextract, {args.captures:,} captures", f"reextract, {args.small:,} captures"
    try:
        sizes = [args.captures] + ([args.small] if args.small else [])
        for size in sizes:
            build_archive(tmp / f"archive-{size}.sqlite3", pages, size)
        pages_of = manifest(tmp / "manifest.json", pages, args.captures)
        # The limit before and after: a change in the machine's load over the run falls on
        # both sides of the ratio.
        rows["limit, before"] = _limit_row(pages_of)
        rows[big] = _reextract_row(
            tmp / f"archive-{args.captures}.sqlite3", args.captures, args.workers
        )
        rows["limit, after"] = _limit_row(pages_of)
        if args.small:
            rows[small] = _reextract_row(
                tmp / f"archive-{args.small}.sqlite3", args.small, args.workers
            )
        if args.profile:
            build_archive(tmp / "profiled.sqlite3", pages, min(args.captures, 2000))
            profile(tmp / "profiled.sqlite3", args.workers, args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for row in rows.values():
        row["pages_per_s"] = row["pages"] / row["seconds"] if row["seconds"] else 0.0
    limits = [rows["limit, before"], rows["limit, after"]]
    limit_rate = sum(row["pages_per_s"] for row in limits) / 2
    ratio = rows[big]["pages_per_s"] / limit_rate if limit_rate else 0.0
    # CPU a page, limit over reextract: what the rates' ratio would be on an idle machine where
    # both keep every core busy; steadier than the rates when other jobs load the machine.
    limit_cpu = sum(row["cpu_seconds"] / max(row["pages"], 1) for row in limits) / 2
    cpu_ratio = limit_cpu / (rows[big]["cpu_seconds"] / max(rows[big]["pages"], 1))
    print(
        f"reextract: {args.captures:,} captures of the {len(pages)} corpus pages, {CORES} cores "
        f"({time.perf_counter() - started:.0f}s in all; load average at the end "
        f"{os.getloadavg()[0]:.1f})\n"
    )
    print(f"{'':<28} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'peak RSS MB':>11} {'CPU s':>7}")
    for name, row in rows.items():
        print(
            f"{name:<28} {row['pages']:>6} {row['seconds']:>8.1f} {row['pages_per_s']:>8.1f} "
            f"{row['peak_rss_mb']:>11.0f} {row['cpu_seconds']:>7.1f}"
        )
    print("\nCPU seconds by process (from /proc polls, a lower bound):")
    for name, row in rows.items():
        parts = ", ".join(f"{role} {sec:.1f}" for role, sec in row["cpu_by_role"].items())
        print(f"  {name:<28} {parts}")
    met = "met" if ratio >= TARGET else "NOT met"
    print(
        f"\nreextract / limit (mean of before and after), pages/s: {ratio:.2f} "
        f"(target >= {TARGET:g}: {met})"
    )
    print(f"CPU a page, limit / reextract: {cpu_ratio:.2f}")
    if args.json:
        doc = {"captures": args.captures, "cores": CORES, "ratio": ratio, "cpu_ratio": cpu_ratio}
        doc["rows"] = rows
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
