"""A/B of `ingest fetch` alone: the same run with two versions of `ingest`, alternated.

    git archive <rev> ingest | tar -x -C /tmp/old
    python -m bench.pipeline_ab --rounds 4 new= old=/tmp/old

Each ``name=path`` runs `ingest fetch` (as `bench.throughput` does: 1,080 pages, 48 feeds on
48 loopback hosts, a fresh SQLite archive) with ``path`` ahead of this checkout on PYTHONPATH
(empty: this checkout). The versions take turns in every round, so that the machine's load
falls on both alike; reported: the medians of CPU outside extraction (ms a page) and of E.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import throughput
from bench.newsroom import DEFAULT_CORPUS, Newsroom, load_corpus
from bench.proctree import clean_env

FIGURES = ("extraction", "whole", "steady", "middle", "main_steady", "main_middle")
FIGURES += ("workers_beyond_extraction",)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ab", description=__doc__)
    parser.add_argument("versions", nargs="+", metavar="NAME=PYTHONPATH")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    versions = dict(v.split("=", 1) for v in args.versions)
    pages = throughput.copies(load_corpus(args.corpus), args.copies)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    with Newsroom(pages, feeds=48, hosts=48) as room:
        for n in range(args.rounds):
            for name, prefix in versions.items():

                def env(prefix: str = prefix) -> dict[str, str]:
                    out = clean_env()
                    if prefix:
                        out["PYTHONPATH"] = prefix + ":" + out["PYTHONPATH"]
                    return out

                throughput.clean_env = env  # run_pipeline's environment: this version first
                run = throughput.run_pipeline(tmp, room, 0, f"{name}-{n}", sys.executable)
                figures = throughput.outside_extraction(run, run)
                results[name].append(figures)
                shown = ", ".join(f"{k} {figures[k]:.2f}" for k in FIGURES)
                print(f"round {n + 1} {name}: {run.pages} pages; {shown}", flush=True)
    for name, rows in results.items():
        medians = ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in FIGURES)
        print(f"median {name}: {medians}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
