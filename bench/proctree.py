"""Run a command as a whole process and measure its tree: wall time, peak RSS, CPU seconds.

    result = measure([sys.executable, "-m", "ingest", "fetch"], env=env)
    result.seconds, result.peak_rss_mb, result.cpu_seconds

- Wall time: from just before the process is started until it has exited.
- Peak RSS: /proc is polled every 50 ms; each poll sums VmRSS over the process and all its
  descendants (shared pages count once per process, as the brief asks: an upper bound on what
  the tree holds), and the largest sum is kept.
- CPU seconds: user + system of the whole tree, from ``getrusage(RUSAGE_CHILDREN)`` of this
  process. A process's children are only counted once it has reaped them, and a pool's
  forkserver is orphaned when its parent exits; so this process becomes a child subreaper
  (``prctl(PR_SET_CHILD_SUBREAPER)``): orphans of the tree are re-parented here and reaped here,
  and their CPU (with that of the workers they reaped) lands in RUSAGE_CHILDREN too.
- CPU by role (main process, forkserver, workers, ...): the last user + system time each
  process showed in /proc while polled; a lower bound (up to 50 ms of each process's last
  moments are missed), but it tells where the tree's CPU went. Each poll also appends
  (epoch seconds, the tree's CPU, the main process's CPU) to ``cpu_series``, so that a caller
  can split a run into phases (`Measured.cpu_at`).
- The caller's own CPU over the same interval (``self_cpu_seconds``) is what its threads did,
  e.g. a loopback server answering the measured process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05
PR_SET_CHILD_SUBREAPER = 36
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux); False where unsupported."""
    global _subreaper
    if _subreaper is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


@dataclass(frozen=True)
class Measured:
    argv: list[str]
    returncode: int
    seconds: float  # wall time of the process
    peak_rss_mb: float  # largest sum of VmRSS over the tree
    peak_processes: int  # most processes in the tree at one poll
    cpu_user: float
    cpu_system: float
    self_cpu_seconds: float  # this process (its server threads) meanwhile
    started_at: float  # time.time() when started
    stdout: str
    stderr: str
    unreaped: int  # descendants still alive when we gave up waiting for them
    cpu_by_role: dict[str, float]  # seconds, from /proc polls (a lower bound)
    processes_by_role: dict[str, int]
    cpu_series: list[tuple[float, float, float]]  # (epoch s, tree CPU s, main CPU s) per poll

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_user + self.cpu_system

    def cpu_at(self, when: float) -> tuple[float, float]:
        """(tree, main process) CPU seconds at the last poll before ``when`` (epoch seconds)."""
        before = [(tree, main) for at, tree, main in self.cpu_series if at <= when]
        return before[-1] if before else (0.0, 0.0)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (needs /proc/<pid>/task/<tid>/children)."""
    return [p for p, _ in tree_depths(pid)]


def tree_depths(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of ``pid`` (depth 0) and every process below it."""
    out = [(pid, 0)]
    frontier = [(pid, 0)]
    while frontier:
        parent, depth = frontier.pop()
        kids = [(k, depth + 1) for k in _children(parent)]
        out += kids
        frontier += kids
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system seconds of ``pid`` itself (not its children)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def role(pid: int, depth: int) -> str:
    if depth == 0:
        return "main"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        command = ""
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command and depth == 1:
        return "forkserver"
    return "workers"


def rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0  # exited meanwhile


class TreeSampler(threading.Thread):
    """Polls a process tree every `POLL_SECONDS` until ``stop`` is set: peak RSS, peak
    process count, and each process's last CPU seconds (`by_role`, `cpu_total`)."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.peak_processes = 0
        self.cpu: dict[int, float] = {}  # pid -> last user + system seconds seen
        self.roles: dict[int, str] = {}
        self.series: list[tuple[float, float, float]] = []
        self.peak_kb_by_role: dict[str, int] = {}  # the largest sum of VmRSS over each role
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            pids = tree_depths(self.pid)
            total = 0
            by_role: dict[str, int] = {}
            for pid, depth in pids:
                kb = rss_kb(pid)
                total += kb
                used = cpu_seconds(pid)
                if used is not None:
                    self.cpu[pid] = used
                    if pid not in self.roles:
                        self.roles[pid] = role(pid, depth)
                name = self.roles.get(pid, "workers")
                by_role[name] = by_role.get(name, 0) + kb
            for name, kb in by_role.items():
                self.peak_kb_by_role[name] = max(self.peak_kb_by_role.get(name, 0), kb)
            self.peak_kb = max(self.peak_kb, total)
            self.peak_processes = max(self.peak_processes, len(pids))
            self.series.append((time.time(), self.cpu_total(), self.cpu.get(self.pid, 0.0)))
            if self.stop.wait(POLL_SECONDS):
                return

    def cpu_total(self) -> float:
        """CPU seconds of every process seen in the tree (a lower bound, as `by_role`)."""
        return sum(self.cpu.values())

    def by_role(self) -> tuple[dict[str, float], dict[str, int]]:
        cpu: dict[str, float] = {}
        count: dict[str, int] = {}
        for pid, used in self.cpu.items():
            name = self.roles.get(pid, "workers")
            cpu[name] = cpu.get(name, 0.0) + used
            count[name] = count.get(name, 0) + 1
        return cpu, count


def reap_orphans(deadline: float) -> int:
    """Wait for re-parented descendants (a forkserver and its workers) to exit; returns how
    many are still alive at ``deadline``."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == 0:
            if time.monotonic() > deadline:
                return len(_children(os.getpid()))
            time.sleep(0.01)


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


def measure(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
    reap_timeout: float = 15.0,
) -> Measured:
    """Run ``argv`` to completion and measure it (see the module docstring)."""
    become_subreaper()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        before = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
        self_before = time.process_time()
        started_at = time.time()
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), env=dict(env) if env is not None else None, cwd=cwd, stdout=out, stderr=err
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in reversed(tree(process.pid)):
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            returncode = process.wait()
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        unreaped = reap_orphans(time.monotonic() + reap_timeout)
        after = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
        self_cpu = time.process_time() - self_before
        out.seek(0)
        err.seek(0)
        cpu_by_role, processes_by_role = sampler.by_role()
        return Measured(
            argv=list(argv),
            returncode=returncode,
            seconds=seconds,
            peak_rss_mb=sampler.peak_kb / 1024,
            peak_processes=sampler.peak_processes,
            cpu_user=after[0] - before[0],
            cpu_system=after[1] - before[1],
            self_cpu_seconds=self_cpu,
            started_at=started_at,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            unreaped=unreaped,
            cpu_by_role=cpu_by_role,
            processes_by_role=processes_by_role,
            cpu_series=sampler.series,
        )


def clean_env() -> dict[str, str]:
    """The environment for a measured `ingest` run: no INGEST_* settings leak in, and Python
    caches its bytecode, as it does for an installed `ingest` (pip compiles it), so that a
    measured run does not compile every module from source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    return env


def json_summary(result: Measured, what: str) -> dict[str, Any]:
    """The JSON object a measured command printed last, or exit with what went wrong."""
    if result.returncode != 0:
        raise SystemExit(
            f"{what} failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
            f"\n{result.stdout[-2000:]}"
        )
    try:
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        raise SystemExit(f"{what}: no JSON summary on stdout:\n{result.stdout[-2000:]}") from exc
