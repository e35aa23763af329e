"""The real `ingest daemon` as a subprocess, for end-to-end tests."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import Ingest

# Fast clocks, so a test sees several polls in a few seconds.
FAST = """
[schedule]
interval = "1s"
min_interval = "1s"
max_interval = "2s"
error_backoff = "1s"
max_error_backoff = "2s"
[daemon]
listen = "127.0.0.1:{port}"
tick = "0.2s"
retry_every = "0.5s"
reload_every = "0.3s"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (the daemon works on real time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + "".join(d.report() for d in _LIVE))


_LIVE: list[Daemon] = []  # the daemons started and not yet stopped: a timeout reports on them


class Daemon:
    """`ingest daemon` started in the background; `stop` sends a signal and times the exit."""

    def __init__(
        self,
        cli: Ingest,
        archive: Path | str,
        port: int,
        *,
        log_through_pipe: bool = False,
        options: Sequence[str] = ("-v", "--log-format", "json"),
    ) -> None:
        """``archive``: an SQLite file, or a database URL (PostgreSQL). The log is what the
        daemon writes to stderr (``options`` set its level and format); its stdout goes to
        `out`. With ``log_through_pipe`` the test writes the log file from a pipe, so the
        daemon writes no file but its archive (a test may limit the size of the files it may
        write)."""
        self.archive = archive
        self.port = port
        stamp = time.monotonic_ns()
        self.log = cli.cwd / f"daemon-{stamp}.log"
        self.out = cli.cwd / f"daemon-{stamp}.out"
        assert cli.config is not None
        command = [sys.executable, "-m", "ingest", "--config", str(cli.config)]
        with self.log.open("wb") as err, self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, *options, "daemon"],
                cwd=cli.cwd,
                env=cli.env,
                stdout=subprocess.DEVNULL if log_through_pipe else out,
                stderr=subprocess.PIPE if log_through_pipe else err,
            )
        if log_through_pipe:
            threading.Thread(target=self._copy_log, daemon=True).start()
        _LIVE.append(self)

    def report(self) -> str:
        """What a failed wait shows of this daemon: whether it still runs, its last log lines."""
        code = self.process.poll()
        state = "running" if code is None else f"exited with {code}"
        try:
            tail = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
        except OSError:
            tail = []
        return f"\n--- daemon on port {self.port}, {state}; its log ends:\n" + "\n".join(tail)

    def _copy_log(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as pipe, self.log.open("ab", buffering=0) as out:
            for line in pipe:
                out.write(line)

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def healthy(self) -> bool:
        return self.get("/healthz")[0] == 200

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Read the archive while the daemon runs: SQLite read-only, or over SQLAlchemy."""
        if isinstance(self.archive, str):
            engine = sa.create_engine(self.archive, poolclass=sa.pool.NullPool)
            try:
                with engine.connect() as conn:
                    return [tuple(row) for row in conn.execute(sa.text(sql))]
            except (sa.exc.ProgrammingError, sa.exc.OperationalError):  # schema not made yet
                return []
            finally:
                engine.dispose()
        if not self.archive.exists():
            return []
        with sqlite3.connect(f"file:{self.archive}?mode=ro", uri=True, timeout=5) as db:
            try:
                return db.execute(sql).fetchall()
            except sqlite3.OperationalError:  # the schema is still being created
                return []

    def stop(
        self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0
    ) -> tuple[int, float]:
        """Send ``sig``; return (exit status, seconds it took to exit)."""
        started = time.monotonic()
        self._forget()
        self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"daemon ignored {sig.name} for {timeout}s") from None
        return status, time.monotonic() - started

    def _forget(self) -> None:
        if self in _LIVE:
            _LIVE.remove(self)

    def kill(self) -> None:
        self._forget()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
