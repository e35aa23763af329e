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
worker process, so that their timings share the machine's load; ms a page is CPU time
(``time.process_time``) of the extraction call alone, each extractor warmed up first.
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


EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    "ingest": _ingest,
    "trafilatura": _trafilatura,
    "trafilatura-precision": _trafilatura_precision,
}
REFERENCE = "trafilatura"


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


def load_pages(corpus: Path, only: Sequence[str] = ()) -> list[Page]:
    pages = []
    for folder in sorted((corpus / "pages").iterdir()):
        if only and folder.name not in only:
            continue
        meta = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        pages.append(Page(folder.name, folder, bool(meta.get("readerable", True))))
    return pages


def _warm_up() -> None:
    sample = b"<html><body><article><p>" + b"Warm words here. " * 40 + b"</p></article></body>"
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
        except Exception as exc:  # scored as empty, listed: a page given up on still counts
            text, failure = "", f"{type(exc).__name__}: {exc}"[:160]
        outcomes[name] = Outcome(text, 1000 * (time.process_time() - start), failure)
    return outcomes


def run(pages: Sequence[Page], jobs: int, xml_declaration: bool) -> list[dict[str, Outcome]]:
    flags = [xml_declaration] * len(pages)
    if jobs <= 1:
        _warm_up()
        return list(map(_run_page, pages, flags))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_warm_up) as pool:
        return list(pool.map(_run_page, pages, flags, chunksize=4))


def _f(score: PageScore) -> float:
    return score.f1


def _row(name: str, scores: Sequence[PageScore], ms: Sequence[float], failed: int) -> str:
    s = summarize(scores)
    return (
        f"{name:<22} P {s.precision:.3f}  R {s.recall:.3f}  F {s.f1:.3f}  "
        f"mean F {statistics.fmean(map(_f, scores)):.3f}  "
        f"ms/page mean {statistics.fmean(ms):5.1f} median {statistics.median(ms):5.1f}  "
        f"gave up {failed}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generality",
        description="Score ingest's extraction against trafilatura alone on a broad corpus, "
        "with Readability's output as the reference.",
        epilog="example: python -m bench.generality --worst 25",
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
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
    outcomes = run(pages, args.jobs, args.xml_declaration)
    references = {
        p.name: reference_text((p.path / "expected.html").read_text(encoding="utf-8"))
        for p in pages
    }
    scores = {
        name: {
            p.name: page_scores(o[name].text, references[p.name])
            for p, o in zip(pages, outcomes, strict=True)
        }
        for name in EXTRACTORS
    }
    rows = []
    for p, o in zip(pages, outcomes, strict=True):
        row: dict[str, object] = {"page": p.name, "readerable": p.readerable}
        for name in EXTRACTORS:
            s = scores[name][p.name]
            row[name] = {
                "precision": s.precision,
                "recall": s.recall,
                "f1": round(s.f1, 4),
                "words": len(o[name].text.split()),
                "ms": round(o[name].ms, 1),
                "failure": o[name].failure,
            }
        row["delta_f1"] = round(scores["ingest"][p.name].f1 - scores[REFERENCE][p.name].f1, 4)
        rows.append(row)
    rows.sort(key=lambda r: (r["delta_f1"], r["page"]))  # type: ignore[arg-type, return-value]
    subsets = {
        "all": [p.name for p in pages],
        "readerable": [p.name for p in pages if p.readerable],
    }
    if args.json:
        doc = {
            "corpus": str(args.corpus),
            "xml_declaration": args.xml_declaration,
            "totals": {
                subset: {
                    name: {
                        **summarize([scores[name][n] for n in names]).__dict__,
                        "ms_mean": statistics.fmean(
                            o[name].ms
                            for p, o in zip(pages, outcomes, strict=True)
                            if p.name in names
                        ),
                    }
                    for name in EXTRACTORS
                }
                for subset, names in subsets.items()
            },
            "pages": rows if args.per_page else rows[: args.worst],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    for subset, names in subsets.items():
        chosen = set(names)
        print(f"{subset}: {len(names)} pages of {args.corpus}")
        for name in EXTRACTORS:
            mine = [o[name] for p, o in zip(pages, outcomes, strict=True) if p.name in chosen]
            print(
                "  "
                + _row(
                    name,
                    [scores[name][n] for n in names],
                    [o.ms for o in mine],
                    sum(o.failure is not None for o in mine),
                )
            )
    wins = sum(r["delta_f1"] > 0.005 for r in rows)  # type: ignore[operator]
    losses = sum(r["delta_f1"] < -0.005 for r in rows)  # type: ignore[operator]
    print(f"ingest against {REFERENCE}, page F: {wins} better, {losses} worse (by > 0.005)")
    listed = rows if args.per_page else [r for r in rows[: args.worst] if r["delta_f1"] < 0]  # type: ignore[operator]
    if listed:
        print(f"\n{'page':<40} {'dF':>6}  ingest P/R/words      trafilatura P/R/words")
        for r in listed:
            i, t = r["ingest"], r[REFERENCE]
            print(
                f"{r['page']:<40} {r['delta_f1']:+.3f}  "
                f"{_pr(i)}  {_pr(t)}" + (f"  ({i['failure']})" if i["failure"] else "")  # type: ignore[index]
            )
    for p, o in zip(pages, outcomes, strict=True):
        for name in EXTRACTORS:
            if o[name].failure:
                print(f"gave up  {name:<22} {p.name}: {o[name].failure}")
    return 0


def _pr(score: dict[str, object]) -> str:
    def ratio(value: object) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    return f"{ratio(score['precision'])}/{ratio(score['recall'])}/{score['words']:>5}"


if __name__ == "__main__":
    sys.exit(main())
