"""Archive benchmark: search latency, export streaming and size of a large synthetic archive.

    python -m bench.archive                        # 1,000,000 articles (about 20-30 min)
    python -m bench.archive --articles 100000      # quick run
    python -m bench.archive --dir /big/disk --keep --json /tmp/archive.json
    python -m bench.archive --dir /big/disk --reuse --phases export,cli   # measure it again
    python -m bench.archive --dir /big/disk --reuse --phases search --optimize

1. Build: `Store.open` creates the schema through the migrations; feeds, articles and entries
   (`bench.archive_corpus`: generated words, realistic lengths) are then inserted with raw
   sqlite3 ``executemany`` in transactions of 20,000 articles, the FTS5 triggers filling
   ``articles_fts`` as the application does (the index is the one the code builds, segments
   and merges included). Rows are generated in a producer process while this one inserts.
   The build runs in two stages, N/10 then N, and the export is measured after each.
   Reported: build time, file size, bytes per article and per table (``dbstat``), and an
   estimate of what ``captures`` adds with ``keep_raw`` on (the default): the corpus pages
   (``--corpus``, default ../shared/corpus/extraction, its html/) compressed as the store
   does, zlib level 6.
2. Search: Q two-word queries, a third each common+common (ranks 10..300 of the English
   vocabulary), common+rare and rare+rare (ranks 3,000..50,000). (a) `Store.search(q,
   Filters(), limit=20)` in this process (what a server or notebook pays), with match counts;
   the same with ``--lang``, ``--since`` and ``--author`` filters; and with the database's
   pages evicted from the page cache first (``posix_fadvise DONTNEED``; cold disk).
   (b) the whole ``python -m ingest --database URL search "w1 w2" --format json`` process on
   30 queries, next to ``python -c pass`` and ``python -m ingest --help``.
   (c) diagnosis: the SQL `Store.search` runs, its query plan, and the time of its parts.
   (d) what ranking only the newest matches (`Store.search`'s rank window) changes: how many
   of the 20 best by BM25 over every match it still returns, per class.
3. Export: ``python -m ingest export --format jsonl|csv --out FILE`` at N/10 and N: wall
   time, articles/s, peak RSS (``bench.proctree``: /proc every 50 ms). Constant memory means
   peak RSS does not grow with N.
4. A summary with the targets (search p50 < 50 ms, p99 < 250 ms; export in constant memory),
   PASS/FAIL; ``--json FILE`` writes every figure.

Times are wall clock on a shared machine; the page cache is warm after the build unless said.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.archive_corpus import ARTICLE_COLUMNS, ENTRY_COLUMNS, FEED_COLUMNS, Corpus
from bench.proctree import measure
from ingest import cjk
from ingest.querytext import fts5_query

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared/corpus/extraction"  # as the other benchmarks read it
TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
RSS_GROWTH_ALLOWED = 1.25  # peak RSS at N may exceed that at N/10 by 25% (noise, caches)
BATCH = 2000
COMMIT_EVERY = 20_000
CLASSES = ("common+common", "common+rare", "rare+rare")
PHASES = {"export", "search", "cli"}  # narrowed by --phases
COMMON = (10, 300)
RARE = (3_000, 50_000)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- statistics ---------------------------------------------------------------------------------


@dataclass
class Latency:
    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, ms: Sequence[float]) -> Latency:
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(ms)

        def pct(q: float) -> float:  # nearest rank: p99 of 200 is the 198th value
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(
            len(ms), pct(0.5), pct(0.95), pct(0.99), ordered[-1], sum(ordered) / len(ordered)
        )

    def line(self) -> str:
        return (
            f"p50 {self.p50:8.1f}  p95 {self.p95:8.1f}  p99 {self.p99:8.1f}  "
            f"max {self.max:8.1f} ms  (n={self.n})"
        )


# --- build ---------------------------------------------------------------------------------------


@dataclass
class Build:
    articles: int
    seconds: float
    waited_seconds: float  # inserter idle, waiting for the producer: generation was the limit
    rate: float  # articles/s


def _produce(corpus: Corpus, batches: list[tuple[int, int]], queue: Any) -> None:
    for first, count in batches:
        queue.put(corpus.batch(first, count))
    queue.put(None)


def insert_articles(
    conn: sqlite3.Connection, corpus: Corpus, first: int, last: int, producers: int
) -> Build:
    """Insert articles ``first..last`` (and their entries); the FTS triggers index them."""
    batches = [(i, min(BATCH, last - i + 1)) for i in range(first, last + 1, BATCH)]
    # fork: the producers share the parent's corpus (vocabularies, phrase pools) for free
    ctx = mp.get_context("fork")
    queues = [ctx.Queue(maxsize=4) for _ in range(producers)]
    procs = [
        ctx.Process(target=_produce, args=(corpus, batches[k::producers], queues[k]), daemon=True)
        for k in range(producers)
    ]
    for proc in procs:
        proc.start()
    article_sql = (
        f"INSERT INTO articles ({', '.join(ARTICLE_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))})"
    )
    entry_sql = (
        f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
    )
    start = time.perf_counter()
    waited = 0.0
    done = 0
    since_commit = 0
    next_report = time.perf_counter() + 30
    try:
        conn.execute("BEGIN")
        for index in range(len(batches)):
            t = time.perf_counter()
            item = queues[index % producers].get()
            waited += time.perf_counter() - t
            articles, entries = item
            conn.executemany(article_sql, articles)
            conn.executemany(entry_sql, entries)
            done += len(articles)
            since_commit += len(articles)
            if since_commit >= COMMIT_EVERY:
                conn.execute("COMMIT")
                conn.execute("BEGIN")
                since_commit = 0
            if time.perf_counter() > next_report:
                elapsed = time.perf_counter() - start
                log(
                    f"  {first + done - 1:,} articles ({done / elapsed:,.0f}/s, "
                    f"waited for rows {waited:.0f}s of {elapsed:.0f}s)"
                )
                next_report = time.perf_counter() + 30
        conn.execute("COMMIT")
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    seconds = time.perf_counter() - start
    return Build(done, seconds, waited, done / seconds if seconds else 0.0)


def bulk_connection(path: Path) -> sqlite3.Connection:
    """A connection for loading: no journal, no fsync, a large cache (the archive is scratch;
    the database is switched back to WAL afterwards, as `Store` keeps it)."""
    conn = sqlite3.connect(path, isolation_level=None)
    cjk.register(conn)  # the FTS5 triggers call it
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the unique url_key index is random
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def finish_bulk(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def sizes(path: Path) -> dict[str, int]:
    """Bytes per table or index (``dbstat``), grouped the way they matter here."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
        return {}
    finally:
        conn.close()
    groups: dict[str, int] = {}
    for name, size in rows:
        if name.startswith("articles_fts"):
            key = name  # _data (the index), _idx, _docsize, _config
        elif name == "articles":
            key = "articles (rows, text inline)"
        elif name.startswith(("ix_articles", "sqlite_autoindex_articles")):
            key = "articles indexes"
        elif "entries" in name:
            key = "entries (+ indexes)"
        else:
            key = "other"
        groups[key] = groups.get(key, 0) + size
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def capture_estimate(html_dir: Path) -> dict[str, float]:
    """What one ``captures`` row costs with keep_raw: the page zlib-6 compressed (as
    `Store.save_article` does) plus headers, URL and half a page of overflow slack."""
    compressed = []
    for page in sorted(html_dir.glob("*.html.gz")):
        compressed.append(len(zlib.compress(gzip.decompress(page.read_bytes()), 6)))
    if not compressed:
        return {}
    compressed.sort()
    mean = sum(compressed) / len(compressed)
    overhead = 600 + 100 + 2048  # headers JSON, url/status/dates, last overflow page half-empty
    return {
        "pages": len(compressed),
        "compressed_mean_bytes": mean,
        "compressed_median_bytes": compressed[len(compressed) // 2],
        "row_bytes_estimate": mean + overhead,
    }


# --- search --------------------------------------------------------------------------------------


@dataclass
class Query:
    text: str
    kind: str
    ranks: tuple[int, int]


def make_queries(corpus: Corpus, count: int, seed: int = 7) -> list[Query]:
    rng = random.Random(seed)
    words = corpus.vocab["en"].words

    def rank(band: tuple[int, int]) -> int:  # log-uniform: as many rank decades each
        low, high = band
        return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))

    queries: list[Query] = []
    for i in range(count):
        kind = CLASSES[i % len(CLASSES)]
        first, second = kind.split("+")
        while True:
            a = rank(COMMON if first == "common" else RARE)
            b = rank(COMMON if second == "common" else RARE)
            if a != b:
                break
        queries.append(Query(f"{words[a - 1]} {words[b - 1]}", kind, (a, b)))
    return queries


def by_class(queries: Sequence[Query], per_class: int) -> list[Query]:
    return [q for kind in CLASSES for q in [q for q in queries if q.kind == kind][:per_class]]


@dataclass
class SearchRun:
    latency: Latency
    by_class: dict[str, Latency]
    matches_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    first_query_ms: float = 0.0


def timed_search(store: Any, queries: Sequence[Query], filters: Any) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in CLASSES}
    for query in queries:
        start = time.perf_counter()
        store.search(query.text, filters, limit=20)
        times[query.kind].append((time.perf_counter() - start) * 1000)
    return times


def search_run(times: dict[str, list[float]]) -> SearchRun:
    return SearchRun(
        Latency.of([t for ts in times.values() for t in ts]),
        {kind: Latency.of(ts) for kind, ts in times.items() if ts},
    )


def match_counts(path: Path, queries: Sequence[Query]) -> tuple[dict[str, dict[str, float]], Any]:
    """Matches per query class, and how long ``COUNT(*)`` of the matches takes."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    counts: dict[str, list[int]] = {kind: [] for kind in CLASSES}
    times: list[float] = []
    for query in queries:
        start = time.perf_counter()
        (n,) = conn.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", (query.text,)
        ).fetchone()
        times.append((time.perf_counter() - start) * 1000)
        counts[query.kind].append(n)
    conn.close()
    summary = {
        kind: {
            "median": sorted(c)[len(c) // 2],
            "min": min(c),
            "max": max(c),
        }
        for kind, c in counts.items()
        if c
    }
    return summary, Latency.of(times)


def evict(path: Path) -> None:
    """Drop this database's pages from the OS page cache (only this file's: no global drop)."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run_cli(argv: Sequence[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    return (time.perf_counter() - start) * 1000, done


def cli_search(url: str, queries: Sequence[Query]) -> dict[str, Any]:
    """Whole-process times: interpreter alone, `ingest --help`, `ingest search`."""
    py = sys.executable
    bare = [run_cli([py, "-c", "pass"], REPO)[0] for _ in range(10)]
    helps = [run_cli([py, "-m", "ingest", "--help"], REPO)[0] for _ in range(10)]
    times: dict[str, list[float]] = {kind: [] for kind in CLASSES}
    failures: list[str] = []
    for query in queries:
        ms, done = run_cli(
            [py, "-m", "ingest", "--database", url, "search", query.text, "--format", "json"],
            REPO,
        )
        times[query.kind].append(ms)
        if done.returncode != 0:
            failures.append(f"{query.text!r}: exit {done.returncode}: {done.stderr.strip()[:200]}")
    # where the start-up goes: the heaviest imports of one search process (cumulative us)
    _, traced = run_cli(
        [py, "-X", "importtime", "-m", "ingest", "--database", url, "search", queries[0].text],
        REPO,
    )
    imports = _importtime(traced.stderr)
    return {
        "python_c_pass": asdict(Latency.of(bare)),
        "ingest_help": asdict(Latency.of(helps)),
        "search": asdict(Latency.of([t for ts in times.values() for t in ts])),
        "search_by_class": {k: asdict(Latency.of(v)) for k, v in times.items() if v},
        "failures": failures,
        "top_imports_ms": imports,
    }


def _importtime(stderr: str) -> dict[str, float]:
    """Modules by cumulative import time (ms), from ``-X importtime``: the top level (whose sum
    is the whole import cost) and, below each, its direct imports of 20 ms or more."""
    rows: list[tuple[int, str, float]] = []
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        depth = (len(parts[2]) - len(parts[2].lstrip()) - 1) // 2  # nesting: 2 spaces a level
        rows.append((depth, parts[2].strip(), int(parts[1]) / 1000))
    total = sum(ms for depth, _, ms in rows if depth == 0)
    shown = {"(all imports)": round(total, 1)}
    for depth, name, ms in sorted(rows, key=lambda r: -r[2]):
        if depth <= 1 and ms >= 20 and len(shown) < 16:
            shown[name] = round(ms, 1)
    return shown


# --- diagnosis -----------------------------------------------------------------------------------


def captured_sql(store: Any, query: str, filters: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The SQL and parameters `Store.search` sends (caught on the engine, nothing edited):
    the ranking step, then the rows and snippets of the best ids."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def hook(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if "articles_fts" in statement:
            seen.append((statement, tuple(params)))

    event.listen(store.engine, "before_cursor_execute", hook)
    try:
        store.search(query, filters, limit=20)
    finally:
        event.remove(store.engine, "before_cursor_execute", hook)
    return seen


TOP_BM25 = (
    "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? "
    "ORDER BY bm25(articles_fts, 4.0, 1.0), rowid DESC LIMIT 20"
)
DIAGNOSIS_SQL = {
    # the ranking alone, as the code orders: SQLite keeps only the best 20 while sorting
    "fts only: ORDER BY bm25() LIMIT 20": TOP_BM25,
    # FTS5's own sorted plan (ORDER BY rank): it sorts every match, no top-N
    "fts only: ORDER BY rank LIMIT 20": (
        "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? "
        "AND rank MATCH 'bm25(4.0, 1.0)' ORDER BY rank LIMIT 20"
    ),
    "fts only: count(*)": "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?",
    # a bounded alternative: the best 20 of the newest 5,000 matches (ids grow with time)
    "window: best 20 of the newest 5,000 matches": (
        "SELECT rowid FROM (SELECT rowid, bm25(articles_fts, 4.0, 1.0) AS r FROM articles_fts "
        "WHERE articles_fts MATCH ? ORDER BY rowid DESC LIMIT 5000) ORDER BY r LIMIT 20"
    ),
}
# Step 2 of the proposed search: rows and snippets of the 20 ids only. No bm25() here: with
# ``rowid IN (...)`` FTS5 is queried once per id and bm25 would recount its IDF each time.
ROWS_OF = (
    "SELECT a.*, f.url, snippet(articles_fts, -1, char(2), char(3), '…', 24) FROM articles_fts "
    "JOIN articles a ON a.id = articles_fts.rowid JOIN feeds f ON f.id = a.feed_id "
    "WHERE articles_fts MATCH ? AND articles_fts.rowid IN ({ids})"
)
TOP_BM25_LANG = (
    "SELECT articles_fts.rowid FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
    "WHERE articles_fts MATCH ? AND a.language = ? "
    "ORDER BY bm25(articles_fts, 4.0, 1.0), articles_fts.rowid DESC LIMIT 20"
)


def proposed(conn: sqlite3.Connection, text: str, top_sql: str, *args: Any) -> list[Any]:
    """Top 20 ids by BM25 first, then the rows and snippets of those 20 only."""
    ids = [r[0] for r in conn.execute(top_sql, (text, *args))]
    if not ids:
        return []
    rows = conn.execute(ROWS_OF.format(ids=",".join(map(str, ids))), (text,)).fetchall()
    order = {article_id: i for i, article_id in enumerate(ids)}
    return sorted(rows, key=lambda row: order[row[0]])


def diagnose(path: Path, store: Any, queries: Sequence[Query]) -> dict[str, Any]:
    """Where a search's time goes: the plan of `Store.search`'s SQL and its parts, timed.
    Variants run interleaved, query by query, so that the machine's noise hits them alike."""
    from ingest.search import Filters

    steps = captured_sql(store, queries[0].text, Filters())
    statement, params = steps[-1]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plan = [
        row[-1] for sql, args in steps for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args)
    ]
    (filtered_sql, filtered_args), *_ = captured_sql(store, queries[0].text, Filters(author="a"))
    filtered_plan = [
        row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {filtered_sql}", filtered_args)
    ]
    without_snippet = statement.replace(
        "snippet(articles_fts, ?, ?, ?, ?, ?) AS snippet_1", "'' AS snippet_1"
    )

    def as_store(sql: str, skip: int) -> Callable[[Query], Any]:
        def run(query: Query) -> Any:
            args = list(params)
            # The statement's MATCH argument is the query as `ingest.querytext` writes it.
            args[args.index(fts5_query(queries[0].text))] = fts5_query(query.text)
            return conn.execute(sql, args[skip:]).fetchall()

        return run

    english = Filters(language="en")
    variants: dict[str, Callable[[Query], Any]] = {
        "Store.search": lambda q: store.search(q.text, Filters(), limit=20),
        "Store.search, every match ranked": lambda q: store.search(
            q.text, Filters(), limit=20, rank_window=None
        ),
        "Store.search SQL, raw sqlite3": as_store(statement, 0),
        "  ... without snippet()": as_store(without_snippet, 5),  # its 5 parameters gone
    }
    for name, sql in DIAGNOSIS_SQL.items():
        variants[name] = lambda q, sql=sql: conn.execute(sql, (q.text,)).fetchall()
    variants["proposed: top 20 ids, then rows+snippets of 20"] = lambda q: proposed(
        conn, q.text, TOP_BM25
    )
    variants["Store.search --lang en"] = lambda q: store.search(q.text, english, limit=20)
    variants["proposed --lang en"] = lambda q: proposed(conn, q.text, TOP_BM25_LANG, "en")
    times: dict[str, dict[str, list[float]]] = {
        name: {kind: [] for kind in CLASSES} for name in variants
    }
    for query in queries:
        for name, run in variants.items():
            start = time.perf_counter()
            run(query)
            times[name][query.kind].append((time.perf_counter() - start) * 1000)
    # Store.search ranking every match must return what BM25 over every match gives
    same = 0
    for query in queries:
        exact = [
            h.article.id for h in store.search(query.text, Filters(), limit=20, rank_window=None)
        ]
        got = [row[0] for row in proposed(conn, query.text, TOP_BM25)]
        exact_en = [
            h.article.id for h in store.search(query.text, english, limit=20, rank_window=None)
        ]
        got_en = [row[0] for row in proposed(conn, query.text, TOP_BM25_LANG, "en")]
        same += exact == got and exact_en == got_en
    conn.close()
    return {
        "sql": [sql for sql, _ in steps],
        "plan": plan,
        "filtered_plan": filtered_plan,
        "variants": {
            name: {k: asdict(Latency.of(v)) for k, v in per.items()} for name, per in times.items()
        },
        "proposed_same_results": f"{same}/{len(queries)}",
    }


def window_quality(store: Any, queries: Sequence[Query]) -> dict[str, dict[str, float]]:
    """What the rank window changes: per class, the share of the 20 best by BM25 over every
    match (of all matches, when fewer) that `Store.search` also returns, and how often it
    returns the same list."""
    from ingest.search import Filters

    kept: dict[str, list[float]] = {kind: [] for kind in CLASSES}
    same: dict[str, int] = dict.fromkeys(CLASSES, 0)
    for query in queries:
        exact = [h.article.id for h in store.search(query.text, Filters(), rank_window=None)]
        window = [h.article.id for h in store.search(query.text, Filters())]
        kept[query.kind].append(len(set(exact) & set(window)) / len(exact) if exact else 1.0)
        same[query.kind] += exact == window
    return {
        kind: {"queries": len(k), "kept_mean": sum(k) / len(k), "kept_min": min(k)}
        | {"same_list": same[kind]}
        for kind, k in kept.items()
        if k
    }


# --- export --------------------------------------------------------------------------------------


def export_run(url: str, out_dir: Path, fmt: str, articles: int) -> dict[str, Any]:
    out = out_dir / f"export-{articles}.{fmt}"
    argv = [sys.executable, "-m", "ingest", "--database", url, "export", "--format", fmt]
    result = measure([*argv, "--out", str(out)], cwd=REPO, timeout=7200)
    exported = None
    for word in result.stderr.split():
        if word.isdigit():
            exported = int(word)
            break
    size = out.stat().st_size if out.exists() else 0
    with contextlib.suppress(OSError):
        out.unlink()  # GBs at 1M articles: measured, not kept
    return {
        "format": fmt,
        "articles": articles,
        "exported": exported,
        "returncode": result.returncode,
        "seconds": result.seconds,
        "articles_per_s": (exported or 0) / result.seconds if result.seconds else 0.0,
        "peak_rss_mb": result.peak_rss_mb,
        "bytes": size,
        "stderr": result.stderr.strip()[-300:],
    }


# --- the run -------------------------------------------------------------------------------------


def stage_search(path: Path, url: str, queries: Sequence[Query]) -> dict[str, Any]:
    from ingest.search import Filters
    from ingest.store import Store

    store = Store.open(url, create=False)
    try:
        start = time.perf_counter()
        store.search(queries[0].text, Filters(), limit=20)  # compiles, opens, warms
        first = (time.perf_counter() - start) * 1000
        run = search_run(timed_search(store, queries, Filters()))
        run.first_query_ms = first
    finally:
        store.close()
    return asdict(run)


def full_search(
    path: Path, url: str, corpus: Corpus, queries: Sequence[Query], cli_queries: int
) -> dict[str, Any]:
    from ingest.search import Filters
    from ingest.store import Store

    out: dict[str, Any] = {}
    if cli_queries and "search" not in PHASES:
        log(f"search as a process: {cli_queries} queries")
        out["cli"] = cli_search(url, by_class(queries, max(1, cli_queries // 3)))
        return out
    log(f"search in process: {len(queries)} queries")
    out["in_process"] = stage_search(path, url, queries)
    matches, count_latency = match_counts(path, queries)
    out["in_process"]["matches_by_class"] = matches
    out["count_matches_ms"] = asdict(count_latency)
    subset = by_class(queries, 10)
    store = Store.open(url, create=False)
    try:
        end = corpus.start + timedelta(days=365 * 5)
        author = corpus.authors[0].split()[-1].lower()
        filtered = {
            "none": Filters(),
            "--lang en": Filters(language="en"),
            "--since (last year)": Filters(since=end - timedelta(days=365)),
            f"--author {author}": Filters(author=author),
            f"--feed {corpus.feeds()[0][2]!r}": Filters(feed=str(corpus.feeds()[0][2])),
        }
        log(f"search with filters: {len(subset)} queries x {len(filtered)}")
        out["filters"] = {
            name: asdict(search_run(timed_search(store, subset, filters)))
            for name, filters in filtered.items()
        }
        log("diagnosis of Store.search")
        out["diagnosis"] = diagnose(path, store, by_class(queries, 5))
        log("rank window against ranking every match")
        out["window_quality"] = window_quality(store, by_class(queries, 20))
        # last: evicting the file's pages would make whatever runs next pay for disk reads
        times: dict[str, list[float]] = {kind: [] for kind in CLASSES}
        for query in by_class(queries, 3):
            evict(path)
            start = time.perf_counter()
            store.search(query.text, Filters(), limit=20)
            times[query.kind].append((time.perf_counter() - start) * 1000)
        out["cold_cache"] = asdict(search_run(times))
    finally:
        store.close()
    if cli_queries:
        log(f"search as a process: {cli_queries} queries")
        out["cli"] = cli_search(url, by_class(queries, max(1, cli_queries // 3)))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ingest.store import Store

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="archive-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    path = base / "archive.sqlite3"
    url = f"sqlite:///{path}"
    if args.reuse:
        if not path.exists():
            raise SystemExit(f"--reuse: no archive at {path}")
        # the code may have moved on (a new migration) since the archive was built
        store = Store.open(url, create=False, migrate=False)
        store.upgrade()
        store.close()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            (total,) = conn.execute("SELECT max(id) FROM articles").fetchone()
        stages: list[int] = []
    else:
        if path.exists():
            raise SystemExit(f"{path} exists: give an empty --dir, or --reuse it")
        total = args.articles
        stages = sorted({max(1, total // 10), total})
    report: dict[str, Any] = {
        "articles": total,
        "dir": str(base),
        "sqlite": sqlite3.sqlite_version,
        "cores": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "phases": sorted(PHASES),
        "stages": [],
    }
    try:
        log(f"archive at {path}; generating the vocabularies")
        corpus = Corpus(total, seed=args.seed)
        queries = make_queries(corpus, args.queries, seed=args.seed)
        if stages:
            Store.open(url).close()  # the schema, through the migrations
            conn = bulk_connection(path)
            conn.executemany(
                f"INSERT INTO feeds ({', '.join(FEED_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(FEED_COLUMNS))})",
                corpus.feeds(),
            )
            from ingest.entryparts import url_key

            sample = corpus.batch(1, 50)[0]
            assert all(url_key(row[2]) == row[1] for row in sample), "generated URLs not normal"
            conn.close()
        built = 0
        build_seconds = 0.0
        for upto in stages or [total]:
            stage: dict[str, Any] = {"articles": upto}
            if stages:
                conn = bulk_connection(path)
                log(f"build: articles {built + 1:,}..{upto:,}")
                build = insert_articles(conn, corpus, built + 1, upto, args.producers)
                finish_bulk(conn)
                built = upto
                build_seconds += build.seconds
                log(f"  {build.rate:,.0f} articles/s; file {path.stat().st_size / 1e9:.2f} GB")
                stage["build"] = asdict(build)
                stage["build_seconds_total"] = build_seconds
            stage["file_bytes"] = path.stat().st_size
            stage["bytes_per_article"] = stage["file_bytes"] / upto
            if upto != total and "search" in PHASES:  # how search scales with the archive
                log("search at this size")
                stage["search"] = stage_search(path, url, by_class(queries, 20))
            for fmt in ("jsonl", "csv") if "export" in PHASES else ():
                log(f"export {fmt} of {upto:,} articles")
                stage[f"export_{fmt}"] = export_run(url, base, fmt, upto)
                log(
                    f"  {stage[f'export_{fmt}']['seconds']:.1f}s, "
                    f"peak RSS {stage[f'export_{fmt}']['peak_rss_mb']:.0f} MB"
                )
            report["stages"].append(stage)
        if stages:
            log("sizes per table (dbstat)")
            start = time.perf_counter()
            report["table_bytes"] = sizes(path)
            report["dbstat_seconds"] = time.perf_counter() - start
        report["capture_estimate"] = capture_estimate(args.corpus / "html")
        if not report["capture_estimate"]:
            log(
                f"no corpus pages in {args.corpus / 'html'} (--corpus PATH): captures not estimated"
            )
        if args.optimize:
            log("ingest db optimize (merges the search index's segments)")
            argv = [sys.executable, "-m", "ingest", "--database", url, "db", "optimize"]
            ms, done = run_cli(argv, REPO)
            report["optimize"] = {
                "seconds": ms / 1000,
                "returncode": done.returncode,
                "output": (done.stdout + done.stderr).strip()[-300:],
            }
            log(f"  {ms / 1000:.0f}s: {report['optimize']['output']}")
        cli_queries = args.cli_queries if "cli" in PHASES else 0
        if "search" in PHASES or cli_queries:
            report["search"] = full_search(path, url, corpus, queries, cli_queries)
        report["load_average_end"] = os.getloadavg()
    finally:
        if args.keep or args.reuse:  # a reused archive is the caller's: never removed
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return report


# --- summary ------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    final = report["stages"][-1]
    n = report["articles"]
    lines.append(f"Archive benchmark: {n:,} articles, SQLite {report['sqlite']}")
    lines.append("")
    lines.append("Build" if "build" in final else "Archive (reused, not built)")
    for stage in report["stages"]:
        b = stage.get("build")
        built = (
            f"{b['seconds']:7.1f}s ({b['rate']:,.0f} articles/s, producer-bound "
            f"{b['waited_seconds']:.0f}s); "
            if b
            else ""
        )
        lines.append(
            f"  up to {stage['articles']:>9,}: {built}file {stage['file_bytes'] / 1e9:.2f} GB = "
            f"{stage['bytes_per_article']:,.0f} bytes/article"
        )
    if report.get("table_bytes"):
        lines.append("  bytes per article by table:")
    for name, size in report.get("table_bytes", {}).items():
        lines.append(f"    {name:<32} {size / n:>8,.0f}")
    cap = report.get("capture_estimate") or {}
    if cap:
        per = final["bytes_per_article"] + cap["row_bytes_estimate"]
        lines.append(
            f"  captures empty here; with keep_raw (default) add ~{cap['row_bytes_estimate']:,.0f}"
            f" bytes/article (corpus pages zlib-6: mean {cap['compressed_mean_bytes']:,.0f}, "
            f"median {cap['compressed_median_bytes']:,.0f}) -> ~{per:,.0f} bytes/article, "
            f"~{per * n / 1e9:.1f} GB"
        )
    opt = report.get("optimize")
    if opt:
        lines.append(f"  ingest db optimize: {opt['seconds']:.0f}s, {opt['output']}")
    search = report.get("search", {})
    inproc = search.get("in_process")
    if inproc:
        lines += _search_lines(report, search)
    cli = search.get("cli")
    if cli:
        lines.append("")
        lines.append("Search, whole process (python -m ingest search ... --format json)")
        lines.append(f"  python -c pass {_lat(cli['python_c_pass'])}")
        lines.append(f"  ingest --help  {_lat(cli['ingest_help'])}")
        lines.append(f"  ingest search  {_lat(cli['search'])}")
        for kind, lat in cli["search_by_class"].items():
            lines.append(f"    {kind:<12} {_lat(lat)}")
        if cli["failures"]:
            lines.append(f"  FAILED RUNS ({len(cli['failures'])}): {cli['failures'][:2]}")
        lines.append(f"  imports (ms, cumulative): {cli['top_imports_ms']}")
    exports = [
        (s, s[f"export_{f}"])
        for s in report["stages"]
        for f in ("jsonl", "csv")
        if f"export_{f}" in s
    ]
    if exports:
        lines.append("")
        lines.append("Export (python -m ingest export --out FILE)")
    for _, e in exports:
        lines.append(
            f"  {e['format']:<5} {e['articles']:>9,}: {e['seconds']:7.1f}s "
            f"{e['articles_per_s']:>7,.0f} articles/s  peak RSS {e['peak_rss_mb']:6.0f} MB"
            f"  {e['bytes'] / 1e9:5.2f} GB  exported {e['exported']}"
            + (f"  FAILED: {e['stderr'][-160:]}" if e["returncode"] else "")
        )
    lines.append("")
    lines.append("Targets")
    if inproc:
        p50, p99 = inproc["latency"]["p50"], inproc["latency"]["p99"]
        lines.append(
            f"  search p50 < {TARGET_P50_MS:.0f} ms   in process {p50:8.1f}  "
            f"{_verdict(p50 < TARGET_P50_MS)}"
        )
        lines.append(
            f"  search p99 < {TARGET_P99_MS:.0f} ms  in process {p99:8.1f}  "
            f"{_verdict(p99 < TARGET_P99_MS)}"
        )
    if cli:
        ok = not cli["failures"]
        for name, target in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS)):
            value = cli["search"][name]
            lines.append(
                f"  search {name} < {target:.0f} ms  whole process {value:8.1f}  "
                f"{_verdict(ok and value < target)}"
            )
    for fmt in ("jsonl", "csv"):
        runs = [(s, s[f"export_{fmt}"]) for s in report["stages"] if f"export_{fmt}" in s]
        if not runs:
            continue
        small, big = runs[0][1], runs[-1][1]
        complete = all(e["returncode"] == 0 and e["exported"] == s["articles"] for s, e in runs)
        if len(runs) < 2:
            lines.append(
                f"  export {fmt:<5} constant memory: one size only ({big['peak_rss_mb']:.0f} MB "
                f"at {big['articles']:,}), not judged"
            )
            continue
        ok = complete and big["peak_rss_mb"] <= small["peak_rss_mb"] * RSS_GROWTH_ALLOWED
        lines.append(
            f"  export {fmt:<5} constant memory: peak RSS {small['peak_rss_mb']:.0f} MB at "
            f"{small['articles']:,}, {big['peak_rss_mb']:.0f} MB at {big['articles']:,}  "
            f"{_verdict(ok)}"
        )
    lines.append(
        f"  size: {final['bytes_per_article']:,.0f} bytes/article without captures (reported)"
    )
    return lines


def _search_lines(report: dict[str, Any], search: dict[str, Any]) -> list[str]:
    inproc = search["in_process"]
    lines = ["", "Search, in process (Store.search, limit 20, warm cache)"]
    lines.append(f"  all            {_lat(inproc['latency'])}")
    for kind, lat in inproc["by_class"].items():
        m = inproc.get("matches_by_class", {}).get(kind, {})
        lines.append(
            f"  {kind:<14} {_lat(lat)}  matches median {m.get('median', 0):,} "
            f"(max {m.get('max', 0):,})"
        )
    lines.append(f"  first query    {inproc['first_query_ms']:.0f} ms (engine, compile)")
    lines.append(f"  count(*) of matches: {_lat(search['count_matches_ms'])}")
    for stage in report["stages"][:-1]:
        if "search" in stage:
            lines.append(f"  at {stage['articles']:,} articles:")
            for kind, lat in stage["search"]["by_class"].items():
                lines.append(f"    {kind:<12} {_lat(lat)}")
    lines.append("  with filters (10 queries per class):")
    for name, runs in search["filters"].items():
        lines.append(f"    {name[:30]:<30} {_lat(runs['latency'])}")
    lines.append(f"  cold page cache: {_lat(search['cold_cache']['latency'])}")
    diag = search["diagnosis"]
    lines.append("  query plan of Store.search (ranking, then rows and snippets):")
    lines += [f"    {step}" for step in diag["plan"]]
    lines.append("  ranking step with a filter (--author):")
    lines += [f"    {step}" for step in diag.get("filtered_plan", [])]
    lines.append(f"  parts, 5 queries per class, p50 ms: {'  '.join(f'{k:>13}' for k in CLASSES)}")
    for name, per_class in diag["variants"].items():
        cells = "  ".join(f"{per_class[k]['p50']:13.1f}" for k in CLASSES if k in per_class)
        lines.append(f"    {name:<46} {cells}")
    lines.append(
        f"    Store.search ranking every match gives BM25's top 20: {diag['proposed_same_results']}"
    )
    quality = search.get("window_quality") or {}
    if quality:
        lines.append("  rank window: share of BM25's top 20 over every match still returned:")
    for kind, q in quality.items():
        lines.append(
            f"    {kind:<14} mean {q['kept_mean']:4.0%}  min {q['kept_min']:4.0%}  "
            f"same list {q['same_list']}/{q['queries']}"
        )
    return lines


def _lat(lat: dict[str, Any]) -> str:
    return Latency(**lat).line()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.archive",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cli-queries", type=int, default=30)
    parser.add_argument("--dir", help="where to build the archive (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the archive afterwards")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--producers", type=int, default=1, help="row generator processes")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help=f"extraction corpus whose pages estimate a capture's size (default: {DEFAULT_CORPUS})",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the archive kept in --dir (upgraded to the code's schema), no build",
    )
    parser.add_argument(
        "--phases", default="export,search,cli", help="of export, search (in process), cli"
    )
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="run `ingest db optimize` before measuring (timed; it changes the archive)",
    )
    args = parser.parse_args(argv)
    PHASES.intersection_update(args.phases.split(","))
    if args.reuse and not args.dir:
        parser.error("--reuse needs --dir")
    if args.articles < 10 or args.queries < 3:
        parser.error("need at least 10 articles and 3 queries")
    report = run(args)
    text = summary(report)
    print("\n".join(text))
    if args.json:
        args.json.write_text(json.dumps({**report, "summary": text}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
