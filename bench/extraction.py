"""Extraction-quality benchmark: run an extractor over the corpus and score it.

    python -m bench.extraction                      # the project's ingest.extract
    python -m bench.extraction --baseline trafilatura-precision --per-page

The corpus (third-party pages, evaluation only) lives outside the repository, in
shared/corpus/extraction next to it; see its README for the format and the metric.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.metric import PageScore, Report, evaluate

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpus/extraction"
PROJECT = "ingest"
BASELINES = ("trafilatura", "trafilatura-precision")

Extractor = Callable[[str, str | None], str]


@dataclass(frozen=True)
class Page:
    page_id: str
    url: str
    truth: str
    html_path: Path


@dataclass(frozen=True)
class Outcome:
    """One page's prediction. `failure` says why it is empty when the extractor gave up;
    `crash` is an unexpected exception, scored as empty but reported as a bug."""

    page_id: str
    text: str
    seconds: float
    failure: str | None = None
    crash: str | None = None


def load_corpus(corpus: Path, only: Sequence[str] = ()) -> list[Page]:
    """Read ground-truth.json; `only` selects pages by id or unique id prefix."""
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    ids = sorted(truth)
    if only:
        ids = sorted({_resolve_id(prefix, ids) for prefix in only})
    return [
        Page(
            page_id=page_id,
            url=truth[page_id]["url"],
            truth=truth[page_id]["articleBody"],
            html_path=corpus / "html" / f"{page_id}.html.gz",
        )
        for page_id in ids
    ]


def _resolve_id(prefix: str, ids: Sequence[str]) -> str:
    matches = [page_id for page_id in ids if page_id.startswith(prefix)]
    if len(matches) != 1:
        raise SystemExit(f"--only {prefix}: {len(matches)} matching pages, need exactly 1")
    return matches[0]


def _extract_project(html: str, url: str | None) -> str:
    from ingest.extract import extract_article

    return extract_article(html, url=url).text


def _extract_trafilatura(html: str, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def _extract_trafilatura_precision(html: str, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, favor_precision=True, include_comments=False) or ""


EXTRACTORS: dict[str, Extractor] = {
    PROJECT: _extract_project,
    "trafilatura": _extract_trafilatura,
    "trafilatura-precision": _extract_trafilatura_precision,
}


def _gave_up_errors() -> tuple[type[BaseException], ...]:
    # ExtractionError means "nothing extractable": an empty prediction, not a bench failure.
    try:
        from ingest.errors import ExtractionError
    except ImportError:
        return ()
    return (ExtractionError,)


def run_page(extractor_name: str, page: Page) -> Outcome:
    """Extract one page; runs in a worker process, so it takes only picklable arguments."""
    html = gzip.decompress(page.html_path.read_bytes()).decode("utf-8")
    start = time.perf_counter()
    try:
        text = EXTRACTORS[extractor_name](html, page.url)
    except _gave_up_errors() as exc:
        return Outcome(page.page_id, "", time.perf_counter() - start, failure=str(exc))
    except Exception as exc:
        return Outcome(page.page_id, "", time.perf_counter() - start, crash=repr(exc))
    return Outcome(page.page_id, text, time.perf_counter() - start)


def run_all(extractor_name: str, pages: Sequence[Page], jobs: int) -> list[Outcome]:
    """Extract every page, in `jobs` worker processes (inline when 1, for debugging)."""
    names = [extractor_name] * len(pages)
    if jobs <= 1:
        return list(map(run_page, names, pages))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run_page, names, pages))


def _check_extractor(extractor_name: str) -> None:
    if extractor_name != PROJECT:
        return
    try:
        import ingest.extract  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"cannot import the project's extractor ({exc}); "
            f"use --baseline {'|'.join(BASELINES)} until ingest.extract exists"
        ) from exc


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _worst_first(report: Report) -> list[tuple[str, PageScore]]:
    return sorted(report.pages.items(), key=lambda item: (item[1].f1, item[0]))


def format_text(
    report: Report, pages: Sequence[Page], outcomes: Sequence[Outcome], header: str, per_page: bool
) -> str:
    lines = [header]
    for name in ("precision", "recall", "f1", "accuracy"):
        label = "F1" if name == "f1" else name
        lines.append(
            f"{label:<10} {getattr(report.score, name):.3f} ± {getattr(report.std, name):.3f}"
        )
    empty = sum(not o.text.strip() for o in outcomes)
    lines.append(f"empty      {empty} of {len(outcomes)} predictions")
    lines.extend(f"gave up    {o.page_id}: {o.failure}" for o in outcomes if o.failure is not None)
    lines.extend(f"CRASHED    {o.page_id}: {o.crash}" for o in outcomes if o.crash is not None)
    if per_page:
        hosts = {page.page_id: _host(page.url) for page in pages}
        lines.append("")
        lines.append(f"{'id':<64}  {'host':<32} {'P':>5} {'R':>5} {'F1':>5} exact")
        lines.extend(
            f"{page_id:<64}  {hosts[page_id][:32]:<32} {_ratio(s.precision):>5} "
            f"{_ratio(s.recall):>5} {s.f1:.3f} {'yes' if s.exact else 'no'}"
            for page_id, s in _worst_first(report)
        )
    return "\n".join(lines)


def format_json(
    report: Report,
    pages: Sequence[Page],
    outcomes: Sequence[Outcome],
    meta: dict[str, object],
    per_page: bool,
) -> str:
    doc: dict[str, object] = {
        **meta,
        "score": asdict(report.score),
        "std": asdict(report.std),
        "empty": sum(not o.text.strip() for o in outcomes),
        "gave_up": {o.page_id: o.failure for o in outcomes if o.failure is not None},
        "crashed": {o.page_id: o.crash for o in outcomes if o.crash is not None},
    }
    if per_page:
        urls = {page.page_id: page.url for page in pages}
        seconds = {o.page_id: o.seconds for o in outcomes}
        doc["pages"] = [
            {
                "id": page_id,
                "url": urls[page_id],
                "precision": s.precision,
                "recall": s.recall,
                "f1": s.f1,
                "exact": s.exact,
                "tp": s.tp,
                "fp": s.fp,
                "fn": s.fn,
                "seconds": round(seconds[page_id], 4),
            }
            for page_id, s in _worst_first(report)
        ]
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.extraction",
        description="Score article extraction on the benchmark corpus (see its README).",
        epilog="example: python -m bench.extraction --baseline trafilatura-precision --per-page",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--per-page", action="store_true", help="add per-page scores, worst first")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)"
    )
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="ID", help="only these pages (id or id prefix)"
    )
    parser.add_argument(
        "--baseline", choices=BASELINES, help="score a reference extractor instead of ingest"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    extractor_name = args.baseline or PROJECT
    _check_extractor(extractor_name)
    pages = load_corpus(args.corpus, args.only)
    start = time.perf_counter()
    outcomes = run_all(extractor_name, pages, args.jobs)
    elapsed = time.perf_counter() - start
    report = evaluate(
        {o.page_id: o.text for o in outcomes}, {page.page_id: page.truth for page in pages}
    )
    if args.json:
        meta = {
            "extractor": extractor_name,
            "corpus": str(args.corpus),
            "pages_count": len(pages),
            "seconds": round(elapsed, 2),
        }
        print(format_json(report, pages, outcomes, meta, args.per_page))
    else:
        header = (
            f"{extractor_name}: {len(pages)} pages from {args.corpus} "
            f"in {elapsed:.1f}s ({args.jobs} jobs)"
        )
        print(format_text(report, pages, outcomes, header, args.per_page))
    # Crashes are bugs in the extractor, not pages without an article: fail the run.
    return 1 if any(o.crash is not None for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
