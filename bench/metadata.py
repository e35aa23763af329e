"""Metadata-quality benchmark: title, authors, published date, language and canonical URL.

    python -m bench.metadata              # accuracy per field, overall, and every failure
    python -m bench.metadata --per-page   # and one line per page

The pages are ``tests/fixtures/metadata`` (``pages/NAME.html`` with ``expected/NAME.json``;
see its README) and the newsroom's pages (``tests/fixtures/site``, expected records in
``tests/fixtures/expected``, their ``{{BASE}}`` replaced by a fixed base). Every page goes
through `ingest.extract.extract_article` as the pipeline runs it, without feed hints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from ingest.extract import extract_article
from tests.newsroom import BASE_PLACEHOLDER, EXPECTED_DIR, ROUTE_TYPES, SITE_DIR

METADATA_DIR = Path(__file__).resolve().parents[1] / "tests/fixtures/metadata"
NEWSROOM_BASE = "http://news.test"
FIELDS = ("title", "authors", "published", "language", "canonical_url")


@dataclass(frozen=True)
class Case:
    """One page: its bytes, the URL it was fetched from, and the record expected of it."""

    name: str
    url: str
    html: bytes
    content_type: str
    expected: dict[str, Any]


def metadata_cases() -> list[Case]:
    cases = []
    for path in sorted((METADATA_DIR / "expected").glob("*.json")):
        expected = json.loads(path.read_text(encoding="utf-8"))
        cases.append(
            Case(
                name=path.stem,
                url=expected["url"],
                html=(METADATA_DIR / "pages" / f"{path.stem}.html").read_bytes(),
                content_type="text/html; charset=utf-8",
                expected={key: expected[key] for key in FIELDS},
            )
        )
    return cases


def newsroom_cases() -> list[Case]:
    cases = []
    base = NEWSROOM_BASE.encode()
    for path in sorted(EXPECTED_DIR.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        expected = {key: record[key] for key in FIELDS}
        if expected["canonical_url"]:
            expected["canonical_url"] = expected["canonical_url"].replace(
                BASE_PLACEHOLDER, NEWSROOM_BASE
            )
        raw = (SITE_DIR / record["path"].lstrip("/")).read_bytes()
        cases.append(
            Case(
                name=f"newsroom/{path.stem}",
                url=NEWSROOM_BASE + record["path"],
                # The newsroom rewrites the placeholder in the served bytes (all ASCII).
                html=raw.replace(BASE_PLACEHOLDER.encode(), base),
                content_type=ROUTE_TYPES.get(record["path"], "text/html; charset=utf-8"),
                expected=expected,
            )
        )
    return cases


def all_cases() -> list[Case]:
    return metadata_cases() + newsroom_cases()


def extracted_record(case: Case) -> dict[str, Any]:
    """The five fields of the page's article as the archive stores them (dates ISO, UTC)."""
    article = extract_article(case.html, case.url, content_type=case.content_type)
    published = article.published
    return {
        "title": article.title,
        "authors": list(article.authors),
        "published": (
            published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if published else None
        ),
        "language": article.language,
        "canonical_url": article.canonical_url,
    }


@dataclass(frozen=True)
class Result:
    case: Case
    got: dict[str, Any] | None  # None: extraction raised
    error: str | None = None

    def correct(self, field: str) -> bool:
        return self.got is not None and self.got[field] == self.case.expected[field]


def run(cases: Sequence[Case]) -> list[Result]:
    results = []
    for case in cases:
        try:
            results.append(Result(case, extracted_record(case)))
        except Exception as exc:  # a crash is scored as all fields wrong, and shown
            results.append(Result(case, None, f"{type(exc).__name__}: {exc}"))
    return results


def report(results: Sequence[Result], *, per_page: bool = False) -> str:
    lines = [f"{len(results)} pages"]
    if per_page:
        for result in results:
            marks = " ".join(
                f"{field}={'ok' if result.correct(field) else 'FAIL'}" for field in FIELDS
            )
            lines.append(f"  {result.case.name:<44} {marks}")
    total = 0
    lines.append(f"{'field':<14} {'correct':>9} {'accuracy':>9}")
    for field in FIELDS:
        right = sum(r.correct(field) for r in results)
        total += right
        lines.append(f"{field:<14} {right:>4}/{len(results):<4} {right / len(results):>9.3f}")
    cells = len(results) * len(FIELDS)
    lines.append(f"{'overall':<14} {total:>4}/{cells:<4} {total / cells:>9.3f}")
    whole = sum(all(r.correct(f) for f in FIELDS) for r in results)
    lines.append(f"{'pages all ok':<14} {whole:>4}/{len(results):<4} {whole / len(results):>9.3f}")
    failures = [
        f"  {r.case.name} {field}: got {_show(r.got[field])}, expected "
        f"{_show(r.case.expected[field])}"
        for r in results
        if r.got is not None
        for field in FIELDS
        if not r.correct(field)
    ]
    failures += [f"  {r.case.name}: {r.error}" for r in results if r.got is None]
    lines.append(f"failures: {len(failures)}")
    lines.extend(failures)
    return "\n".join(lines)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metadata", description=__doc__)
    parser.add_argument("--per-page", action="store_true", help="one line per page")
    args = parser.parse_args(argv)
    print(report(run(all_cases()), per_page=args.per_page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
