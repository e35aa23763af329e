"""Score extraction on two halves of the development corpus, split by host.

    python -m bench.holdout                 # the project's ingest.extract
    python -m bench.holdout --baseline trafilatura-precision

A held-out discipline on the development split itself: design a change while looking only at
one half's pages, then check that the other half (sites it never saw) moves the same way.
Every page of a host falls in the same half, as the benchmark's unseen pages come partly from
unseen sites.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.extraction import BASELINES, DEFAULT_CORPUS, PROJECT, Page, _host, load_corpus, run_all
from bench.metric import evaluate

SALT = "holdout:"


def half_of(page: Page) -> str:
    """ "A" or "B", fixed by the page's host name."""
    digest = hashlib.sha256((SALT + _host(page.url)).encode("utf-8")).hexdigest()
    return "A" if int(digest, 16) % 2 == 0 else "B"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.holdout", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baseline", choices=BASELINES)
    args = parser.parse_args(argv)
    pages = load_corpus(args.corpus)
    outcomes = {o.page_id: o for o in run_all(args.baseline or PROJECT, pages, args.jobs)}
    for name in ("A", "B", "all"):
        chosen = [p for p in pages if name in ("all", half_of(p))]
        report = evaluate(
            {p.page_id: outcomes[p.page_id].text for p in chosen},
            {p.page_id: p.truth for p in chosen},
        )
        s = report.score
        print(
            f"{name:<4} {len(chosen):>3} pages  P {s.precision:.3f}  R {s.recall:.3f}  "
            f"F1 {s.f1:.3f}  accuracy {s.accuracy:.3f}"
        )
    return 1 if any(o.crash is not None for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
