"""Reading never writes: search, show, export, feeds and stats on an archive that cannot be
written (a read-only directory, as on a read-only mount or a copy handed to a researcher), and
on a file that is no archive, which must stay as it was.

The reads run as an unprivileged user (root can write anything, whatever the modes say), in a
directory of mode 0555 holding the archive, mode 0444, as a clean close leaves it: no -wal, no
-shm beside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Ingest
from tests.newsroom import Newsroom

NOBODY = 65534


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def shelf() -> Iterator[Path]:
    """A folder every user can enter (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="ingest-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def reader(folder: Path, database: Path) -> list[str]:
    """The command line of `ingest` run by a user who cannot write ``folder``."""
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    prefix = as_nobody if os.geteuid() == 0 else []
    return [*prefix, sys.executable, "-m", "ingest", "--database", f"sqlite:///{database}"]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(cwd)
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_an_archive_in_a_read_only_folder_is_read_and_left_as_it_was(
    ingest: Ingest, newsroom: Newsroom, archive: Path, shelf: Path
) -> None:
    ingest("fetch", "--feed", "World")
    folder = shelf / "archive"
    folder.mkdir()
    copy = folder / "archive.sqlite3"
    shutil.copy(archive, copy)
    copy.chmod(0o444)
    folder.chmod(0o555)
    before = digest(folder)
    url = newsroom.url("/news/nbc-style.html")

    results = {
        name: run([*reader(folder, copy), *args], shelf)
        for name, args in {
            "search": ["search", "undersea cable", "--format", "json"],
            "filtered": ["search", "cable", "--feed", "World", "--lang", "en", "--format", "json"],
            "show": ["show", url, "--format", "json"],
            "export": ["export", "--format", "jsonl"],
            "feeds": ["feeds", "--format", "json"],
            "stats": ["stats", "--format", "json"],
        }.items()
    }

    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
    assert '"undersea cable' not in results["search"].stderr
    assert "Nordic and Baltic" in results["search"].stdout
    assert "Nordic and Baltic" in results["show"].stdout
    assert results["export"].stdout.count("\n") >= 2
    assert digest(folder) == before  # no -wal, no -shm, the archive unchanged
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555


def test_reading_a_file_that_is_no_archive_leaves_it_as_it_was(shelf: Path) -> None:
    empty = shelf / "empty.sqlite3"
    empty.touch()
    text = shelf / "notes.sqlite3"
    text.write_text("not a database\n")

    for path, expected in ((empty, "empty, no archive"), (text, "not a database")):
        before = digest(shelf)
        for command in ("stats", "feeds"):
            result = run([*reader(shelf, path), command], shelf)
            assert result.returncode == 1, result.stderr
            assert expected in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert digest(shelf) == before


def test_a_read_only_archive_serves_many_threads_at_once(ingest: Ingest, archive: Path) -> None:
    # As `ingest serve` reads it: a pool of threads, more than the engine's pool holds.
    from concurrent.futures import ThreadPoolExecutor

    from ingest.search import Filters
    from ingest.store import Store

    ingest("fetch", "--feed", "World")
    store = Store.open(f"sqlite:///{archive}", read_only=True)
    try:

        def read(n: int) -> int:
            hits = store.search(("cable", "sea patrols", "nations")[n % 3], Filters())
            store.article(str(hits[0].article.id))
            return len(hits)

        with ThreadPoolExecutor(max_workers=24) as threads:
            found = list(threads.map(read, range(600)))
    finally:
        store.close()
    assert all(found)
