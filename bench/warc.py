"""WARC export and import benchmark: memory that does not grow with the archive, and rates.

    python -m bench.warc                         # 1,000 and 4,000 articles
    python -m bench.warc --sizes 1000,8000 --import-size 500

1. Build: for each size N, a synthetic SQLite archive made by `Store.open` (the migrations),
   then N articles, each with a capture of its own generated page (20-200 KB of HTML, zlib as
   the store keeps it), every fourth article kept twice (a second capture a day later), so
   N * 1.25 captures. Rows go in through the archive's own connection (its search triggers).
2. Export: the whole ``python -m ingest --database URL export --format warc --out FILE``
   process, measured by `bench.proctree` (/proc every 50 ms): wall time, captures/s, peak
   RSS. Constant memory means the peak does not grow with N.
3. Import (``--import-size``): the first that many articles' WARC imported into an empty
   archive by ``python -m ingest import --warc FILE`` (the extraction workers, every core):
   responses/s and the tree's peak RSS.

Sizes are measured in one run, one after another, so their ratios compare like with like.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.proctree import measure

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "harbour council ferry budget vote week plan city port river bridge rail minister "
    "report season record winter spring trade union talks court ruling election market "
    "energy price storm flood school hospital museum festival team coach league final"
).split()


def page(rng: random.Random, number: int) -> bytes:
    """A news page of 20-200 KB: a headline, a byline, paragraphs, and page chrome."""
    target = rng.randint(20_000, 200_000)
    title = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize()
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="canonical" href="https://news.example/{number}.html"></head><body>'
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav><article>"
        f"<h1>{title}</h1><p class='byline'>By Ana Ruiz</p>"
    ]
    size = sum(map(len, parts))
    while size < target:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 70)))
        paragraph = f"<p>{words.capitalize()}.</p>\n"
        parts.append(paragraph)
        size += len(paragraph)
    parts.append("</article><footer>© News Example</footer></body></html>")
    return "".join(parts).encode()


def build(path: Path, articles: int, seed: int = 11) -> int:
    """A synthetic archive of ``articles`` articles with their captures; returns captures."""
    from ingest.store import Store

    rng = random.Random(seed)
    store = Store.open(f"sqlite:///{path}")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    captures = 0
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, name, error_count, active, tags) "
            "VALUES ('https://news.example/rss', 'News', 0, 1, '[]')"
        )
        for number in range(1, articles + 1):
            url = f"https://news.example/{number}.html"
            body = page(rng, number)
            fetched = start + timedelta(minutes=number)
            times = [fetched, fetched + timedelta(days=1)] if number % 4 == 0 else [fetched]
            stamp = times[-1].strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.exec_driver_sql(
                "INSERT INTO articles (feed_id, url_key, url, final_url, title, text, authors, "
                "content_source, status, attempts, fetched_at, created_at) "
                "VALUES (1, ?, ?, ?, ?, ?, '[\"Ana Ruiz\"]', 'page', 'ok', 1, ?, ?)",
                (url, url, url, f"Article {number}", f"Text of article {number}.", stamp, stamp),
            )
            for moment in times:
                conn.exec_driver_sql(
                    "INSERT INTO captures (article_id, url, status, headers, body, fetched_at, "
                    "request_headers) VALUES (?, ?, 200, ?, ?, ?, ?)",
                    (
                        number,
                        url,
                        json.dumps({"content-type": "text/html; charset=utf-8"}),
                        zlib.compress(body, 1),
                        moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
                        json.dumps({"Host": "news.example", "User-Agent": "ingest/bench"}),
                    ),
                )
                captures += 1
    store.close()
    return captures


def run_ingest(args: Sequence[str]) -> Any:
    return measure([sys.executable, "-m", "ingest", *args], cwd=REPO, timeout=3600)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,4000", help="article counts, comma-separated")
    parser.add_argument("--import-size", type=int, default=400, help="articles imported (0: none)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict[str, Any] = {"export": [], "import": None}
    with tempfile.TemporaryDirectory(prefix="bench-warc-") as tmp:
        folder = Path(tmp)
        for size in sizes:
            db = folder / f"archive-{size}.sqlite3"
            captures = build(db, size)
            out = folder / f"archive-{size}.warc.gz"
            result = run_ingest(
                ["--database", f"sqlite:///{db}", "export", "--format", "warc", "--out", str(out)]
            )
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                return 1
            figures = {
                "articles": size,
                "captures": captures,
                "seconds": round(result.seconds, 2),
                "captures_per_s": round(captures / result.seconds, 1),
                "peak_rss_mb": round(result.peak_rss_mb, 1),
                "warc_mb": round(out.stat().st_size / 1e6, 1),
            }
            report["export"].append(figures)
            print(f"export {json.dumps(figures)}", flush=True)
            out.unlink()
        if args.import_size:
            db = folder / "source.sqlite3"
            build(db, args.import_size)
            warc = folder / "source.warc.gz"
            run_ingest(
                ["--database", f"sqlite:///{db}", "export", "--format", "warc", "--out", str(warc)]
            )
            target = folder / "imported.sqlite3"
            imported = ["import", "--warc", str(warc), "--format", "json"]
            result = run_ingest(["--database", f"sqlite:///{target}", *imported])
            done = json.loads(result.stdout) if result.returncode == 0 else result.stderr
            report["import"] = {
                "done": done,
                "seconds": round(result.seconds, 2),
                "responses_per_s": round(done["responses"] / result.seconds, 1)
                if isinstance(done, dict)
                else None,
                "peak_rss_mb_tree": round(result.peak_rss_mb, 1),
            }
            print(f"import {json.dumps(report['import'])}", flush=True)
    first, last = report["export"][0], report["export"][-1]
    ratio = last["peak_rss_mb"] / first["peak_rss_mb"]
    print(
        f"peak RSS {first['peak_rss_mb']} MB at {first['captures']} captures, "
        f"{last['peak_rss_mb']} MB at {last['captures']}: x{ratio:.2f} "
        f"for x{last['captures'] / first['captures']:.1f} the captures"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
