"""The machine's extraction limit: extract pages from memory on every core, nothing else.

    python -m bench.extract_limit MANIFEST --extractor trafilatura|ingest [--processes N]

Run by `bench.throughput` and `bench.reextract` as a fresh process. MANIFEST is a JSON list of
``{"url", "path"}`` (``path``: a gzipped corpus page; one listed several times is read once).
Every page is read and decoded before the clock starts; then a ``multiprocessing`` pool with
one process per core (fork; each worker imports the extractor in its initializer) extracts
them all, one page per task. Prints one JSON object:
``seconds`` from pool start (worker start-up and imports included, as the pipeline pays them),
``warm_seconds`` from the moment every worker is ready, the pages extracted, empty, failed, and
``extract_cpu_seconds``: the CPU time (``time.process_time`` in the worker) of the extraction
calls alone, summed over the pages: no start-up, no reading, no passing pages around.

``trafilatura`` is the way a user of trafilatura gets a page's text and its metadata:
``trafilatura.bare_extraction(html, url=url, favor_precision=True, include_comments=False,
with_metadata=True)`` on the decoded text. ``ingest`` calls the project's own
``ingest.extract.extract_article(html_bytes, url, content_type=...)``, which is what the
pipeline's workers run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import sys
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

HTML_TYPE = "text/html; charset=utf-8"
_extractor = ""


def _init(extractor: str, barrier: Barrier) -> None:
    global _extractor
    _extractor = extractor
    if extractor == "trafilatura":
        import trafilatura  # noqa: F401
    else:
        import ingest.extract  # noqa: F401
    barrier.wait()  # no task completes before every worker is ready


def _ready(_: int) -> float:
    return time.perf_counter()


def _extract(job: tuple[str, Any]) -> tuple[str, float]:
    """('ok', 'empty' or 'failed: <why>', CPU seconds of the call) for one page."""
    url, html = job
    started = time.process_time()
    outcome = _outcome(url, html)
    return outcome, time.process_time() - started


def _outcome(url: str, html: Any) -> str:
    if _extractor == "trafilatura":
        import trafilatura

        document = trafilatura.bare_extraction(
            html, url=url, favor_precision=True, include_comments=False, with_metadata=True
        )
        return "ok" if document is not None and (document.text or "").strip() else "empty"
    from ingest.errors import ExtractionError
    from ingest.extract import extract_article

    try:
        article = extract_article(html, url, content_type=HTML_TYPE)
    except ExtractionError as exc:
        return f"failed: {exc}"
    return "ok" if article.text.strip() else "empty"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.extract_limit",
        description="Extract pages from memory on every core (run by bench.throughput).",
    )
    parser.add_argument("manifest", help='JSON list of {"url", "path"} (gzipped HTML)')
    parser.add_argument("--extractor", choices=("trafilatura", "ingest"), default="trafilatura")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="default: one per core"
    )
    args = parser.parse_args(argv)
    manifest = json.loads(Path(args.manifest).read_text(encoding="utf-8"))
    jobs: list[tuple[str, Any]] = []
    pages: dict[str, Any] = {}  # a page listed many times (as copies) is held once
    for item in manifest:
        if item["path"] not in pages:
            raw = gzip.decompress(Path(item["path"]).read_bytes())
            # trafilatura gets text (the brief's call); ingest gets the bytes the pipeline gets.
            pages[item["path"]] = raw.decode("utf-8") if args.extractor == "trafilatura" else raw
        jobs.append((item["url"], pages[item["path"]]))

    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    barrier = context.Barrier(args.processes)
    with context.Pool(
        args.processes, initializer=_init, initargs=(args.extractor, barrier)
    ) as pool:
        ready = max(pool.map(_ready, range(args.processes), chunksize=1))
        results = list(pool.imap_unordered(_extract, jobs, chunksize=1))
        end = time.perf_counter()
        pool.close()
        pool.join()
    outcomes = [outcome for outcome, _ in results]
    print(
        json.dumps(
            {
                "extractor": args.extractor,
                "processes": args.processes,
                "pages": len(jobs),
                "ok": sum(o == "ok" for o in outcomes),
                "empty": sum(o == "empty" for o in outcomes),
                "failed": [o for o in outcomes if o.startswith("failed")],
                "seconds": end - start,
                "warm_seconds": end - ready,
                "startup_seconds": ready - start,
                "extract_cpu_seconds": sum(cpu for _, cpu in results),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
