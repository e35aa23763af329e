"""Does the extraction generalise beyond news? ingest against trafilatura alone, on a broad set.

    python -m bench.generality                  # totals, then the pages where ingest loses most
    python -m bench.generality --per-page --json
    python -m bench.generality --xml-declaration  # every page as XHTML: <?xml ... ?> first

The corpus (shared/corpus/readability, third-party pages, evaluation only) holds 130 pages of
many kinds and languages, each with what Readability.js extracts from it (``expected.html``).
That output is no human ground truth but a strong second opinion on where the body is: each
extractor's text is scored against its text with the extraction benchmark's metric
(`bench.metric`: 4-token shingles, precision and recall averaged over pages). What counts is
the comparison between extractors on the same reference, page by page.

Every extractor gets the page's bytes, as a fetch gives them (ingest through
`extract_article`, which decodes them, trafilatura through its own decoding). A page an
extractor gives up on (an `ExtractionError`, an unparseable page) is scored as empty: it
lowers recall, and is listed. Each page is extracted by every extractor in turn in the same
worker process, so that their timings share the machine's load; ms a page is the CPU time
(``time.process_time``) of the extraction call alone, each extractor warmed up first.
``trafilatura+metadata`` is trafilatura's default extraction with its metadata
(``bare_extraction(with_metadata=True)``): ingest reads a page's metadata too, so its cost is
the one to compare ingest's with; ``trafilatura`` alone reads none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lxml.html

from bench.metric import PageScore, page_scores, summarize

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpus/readability"
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
REFERENCE = "trafilatura"

# Block elements of Readability's output: their text is separated from their neighbours'.
_BLOCKS = frozenset(
    "p div li ul ol h1 h2 h3 h4 h5 h6 blockquote pre table tr td th dt dd figure figcaption"
    " section article header footer br hr".split()
)


def reference_text(expected_html: str) -> str:
    """The text of Readability's output, one line per block (adjacent blocks do not glue)."""
    root = lxml.html.fromstring(expected_html or "<div></div>")
    for element in root.iter():
        if element.tag in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
            element.text = "\n" + (element.text or "")
    return "\n".join(line.strip() for line in root.text_content().split("\n") if line.strip())


def _ingest(html: bytes) -> str:
    from ingest.extract import extract_article

    return extract_article(html).text


def _trafilatura(html: bytes) -> str:
    import trafilatura

    return trafilatura.extract(html) or ""


def _trafilatura_precision(html: bytes) -> str:
    import trafilatura

    return trafilatura.extract(html, favor_precision=True) or ""


def _trafilatura_metadata(html: bytes) -> str:
    import trafilatura

    document = trafilatura.bare_extraction(html, with_metadata=True)
    return (document.text or "") if document is not None else ""


EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    "ingest": _ingest,
    "trafilatura": _trafilatura,
    "trafilatura-precision": _trafilatura_precision,
    "trafilatura+metadata": _trafilatura_metadata,
}


@dataclass(frozen=True)
class Page:
    name: str
    path: Path
    readerable: bool


@dataclass(frozen=True)
class Outcome:
    text: str
    ms: float
    failure: str | None = None


@dataclass(frozen=True)
class Result:
    """One extractor on one page."""

    score: PageScore
    outcome: Outcome

    def as_dict(self) -> dict[str, object]:
        return {
            "precision": self.score.precision,
            "recall": self.score.recall,
            "f1": round(self.score.f1, 4),
            "words": len(self.outcome.text.split()),
            "ms": round(self.outcome.ms, 1),
            "failure": self.outcome.failure,
        }


def load_pages(corpus: Path, only: Sequence[str] = ()) -> list[Page]:
    pages = []
    for folder in sorted((corpus / "pages").iterdir()):
        if only and folder.name not in only:
            continue
        meta = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        pages.append(Page(folder.name, folder, bool(meta.get("readerable", True))))
    return pages


def _warm_up() -> None:
    # A link to another site: ingest reads the list of public suffixes on the first one.
    sample = b"<html><body><article><p>" + b"Warm words here. " * 40
    sample += b'<a href="https://example.org/">a link</a></p></article></body>'
    for extract in EXTRACTORS.values():
        with contextlib.suppress(Exception):
            extract(sample + b"</html>")


def _run_page(page: Page, xml_declaration: bool) -> dict[str, Outcome]:
    html = (page.path / "source.html").read_bytes()
    if xml_declaration:
        html = XML_DECLARATION + html
    outcomes = {}
    for name, extract in EXTRACTORS.items():
        start = time.process_time()
        try:
            text, failure = extract(html), None
        except Exception as exc:  # scored as empty and listed: a page given up on still counts
            text, failure = "", f"{type(exc).__name__}: {exc}"[:160]
        outcomes[name] = Outcome(text, 1000 * (time.process_time() - start), failure)
    return outcomes


def run(pages: Sequence[Page], jobs: int, xml_declaration: bool) -> list[dict[str, Result]]:
    """Every extractor on every page, scored against the page's reference."""
    flags = [xml_declaration] * len(pages)
    if jobs <= 1:
        _warm_up()
        outcomes = list(map(_run_page, pages, flags))
    else:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_warm_up) as pool:
            outcomes = list(pool.map(_run_page, pages, flags, chunksize=4))
    results = []
    for page, by_name in zip(pages, outcomes, strict=True):
        reference = reference_text((page.path / "expected.html").read_text(encoding="utf-8"))
        results.append(
            {
                name: Result(page_scores(outcome.text, reference), outcome)
                for name, outcome in by_name.items()
            }
        )
    return results


def totals(results: Sequence[dict[str, Result]]) -> dict[str, dict[str, float]]:
    """Per extractor: the benchmark's P/R/F over pages, the mean of page F, ms a page."""
    out = {}
    for name in EXTRACTORS:
        mine = [r[name] for r in results]
        summary = summarize([r.score for r in mine])
        ms = [r.outcome.ms for r in mine]
        out[name] = {
            "precision": summary.precision,
            "recall": summary.recall,
            "f1": summary.f1,
            "mean_page_f1": statistics.fmean(r.score.f1 for r in mine),
            "ms_mean": statistics.fmean(ms),
            "ms_median": statistics.median(ms),
            "gave_up": sum(r.outcome.failure is not None for r in mine),
        }
    return out


def delta(result: dict[str, Result]) -> float:
    return result["ingest"].score.f1 - result[REFERENCE].score.f1


def _ratio(value: object) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def _brief(result: Result) -> str:
    s = result.score
    return f"{_ratio(s.precision)}/{_ratio(s.recall)}/{len(result.outcome.text.split()):>5}"


def format_text(
    pages: Sequence[Page], results: Sequence[dict[str, Result]], corpus: Path, listed: int | None
) -> str:
    lines = []
    subsets = {"all": list(range(len(pages)))}
    subsets["readerable"] = [i for i, page in enumerate(pages) if page.readerable]
    for subset, chosen in subsets.items():
        lines.append(f"{subset}: {len(chosen)} pages of {corpus}")
        for name, t in totals([results[i] for i in chosen]).items():
            lines.append(
                f"  {name:<22} P {t['precision']:.3f}  R {t['recall']:.3f}  F {t['f1']:.3f}  "
                f"mean page F {t['mean_page_f1']:.3f}  ms a page {t['ms_mean']:5.1f} "
                f"(median {t['ms_median']:5.1f})  gave up {t['gave_up']}"
            )
    deltas = [delta(r) for r in results]
    lines.append(
        f"ingest against {REFERENCE}, page F: {sum(d > 0.005 for d in deltas)} better, "
        f"{sum(d < -0.005 for d in deltas)} worse (by more than 0.005)"
    )
    order = sorted(range(len(pages)), key=lambda i: (deltas[i], pages[i].name))
    if listed is not None:
        order = [i for i in order[:listed] if deltas[i] < 0]
    if order:
        lines.append(f"\n{'page':<40} {'dF':>6}  ingest P/R/words      {REFERENCE} P/R/words")
    for i in order:
        failure = results[i]["ingest"].outcome.failure
        lines.append(
            f"{pages[i].name:<40} {deltas[i]:+.3f}  {_brief(results[i]['ingest'])}  "
            f"{_brief(results[i][REFERENCE])}" + (f"  ({failure})" if failure else "")
        )
    for page, result in zip(pages, results, strict=True):
        for name, r in result.items():
            if r.outcome.failure:
                lines.append(f"gave up  {name:<22} {page.name}: {r.outcome.failure}")
    return "\n".join(lines)


def format_json(
    pages: Sequence[Page],
    results: Sequence[dict[str, Result]],
    meta: dict[str, object],
    listed: int | None,
) -> str:
    order = sorted(range(len(pages)), key=lambda i: (delta(results[i]), pages[i].name))
    readerable = [r for page, r in zip(pages, results, strict=True) if page.readerable]
    doc = {
        **meta,
        "totals": {"all": totals(results), "readerable": totals(readerable)},
        "pages": [
            {
                "page": pages[i].name,
                "readerable": pages[i].readerable,
                "delta_f1": round(delta(results[i]), 4),
                **{name: r.as_dict() for name, r in results[i].items()},
            }
            for i in (order if listed is None else order[:listed])
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generality",
        description="Score ingest's extraction against trafilatura alone on a broad corpus, "
        "with Readability's output as the reference.",
        epilog="example: python -m bench.generality --worst 25",
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"default: {DEFAULT_CORPUS}"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="page folders")
    parser.add_argument("--worst", type=int, default=15, help="pages listed, biggest loss first")
    parser.add_argument("--per-page", action="store_true", help="list every page")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--xml-declaration",
        action="store_true",
        help="prefix every page with an XML declaration (XHTML as some sites serve it)",
    )
    args = parser.parse_args(argv)
    pages = load_pages(args.corpus, args.only)
    start = time.perf_counter()
    results = run(pages, args.jobs, args.xml_declaration)
    seconds = time.perf_counter() - start
    listed = None if args.per_page else args.worst
    if args.json:
        meta = {
            "corpus": str(args.corpus),
            "xml_declaration": args.xml_declaration,
            "pages_count": len(pages),
            "seconds": round(seconds, 1),
        }
        print(format_json(pages, results, meta, listed))
    else:
        print(format_text(pages, results, args.corpus, listed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
