"""`bench.archive` reads the extraction corpus where the other benchmarks do, or from
``--corpus``: no path of one machine."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from bench import archive, newsroom
from tests.conftest import REPO


def test_the_corpus_defaults_to_the_projects_shared_folder() -> None:
    assert (
        archive.DEFAULT_CORPUS
        == newsroom.DEFAULT_CORPUS
        == REPO.parent / "shared/corpus/extraction"
    )


def test_no_benchmark_names_a_folder_of_one_machine() -> None:
    for module in sorted((REPO / "bench").glob("*.py")):
        assert '"/work/' not in module.read_text(encoding="utf-8"), module.name


def test_capture_estimate_reads_the_corpus_it_is_given(tmp_path: Path) -> None:
    html = tmp_path / "html"
    html.mkdir()
    (html / "1.html.gz").write_bytes(gzip.compress(b"<html><p>a page</p></html>" * 50))

    estimate = archive.capture_estimate(html)

    assert estimate["pages"] == 1
    assert archive.capture_estimate(tmp_path / "nowhere") == {}


def test_corpus_is_an_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.archive", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "--corpus" in result.stdout
