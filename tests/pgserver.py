"""A private PostgreSQL server for tests that stop and start it (the shared one must stay up).

`PostgresServer` runs initdb into a temporary directory and pg_ctl on a free loopback port,
as the ``postgres`` user when the tests run as root (initdb refuses root), and removes
everything on `close`. The binaries are found on PATH or in the usual Debian and RPM places.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.daemon_process import free_port

SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    for pattern in SEARCH:
        candidates = sorted(Path("/").glob(pattern.lstrip("/")), reverse=True)  # newest first
        for folder in candidates:
            if (folder / "pg_ctl").exists():
                return folder
    raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found (install postgresql)")


class PostgresServer:
    """A PostgreSQL cluster of its own; `url` names its ``postgres`` database (trust auth)."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="ingest-pg-"))
        if self._root:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.running = False
        self._run("initdb", "-D", str(self.folder / "data"), "-U", "postgres", "-A", "trust", "-N")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if self._root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        """Start the server (if it is not running) and wait until it takes connections."""
        if self.running:
            return
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40"
        )
        data = str(self.folder / "data")
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` drops every connection at once, as a crash would."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")
            self.running = False

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # a test left it half-way
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
