"""The extraction worker pool: runs the extractor on every core.

Extraction is CPU-bound, so it runs in worker processes. The pool (and trafilatura's import)
starts on the first page that needs it, so a run where every feed answers 304 never pays for it.
A page crosses to its worker as it came from the network (compressed, most often: a fifth of
the bytes); the worker inflates it under the page cap, refuses what is not HTML, extracts, and
returns the article with the raw page packed for the archive (`ingest.captures.pack`: its
address and its compressed bytes, made here rather than in the parent) and its text's
fingerprint (`ingest.stories`: half a millisecond a page, off the main process).

Each worker has a pipe of its own, watched by the event loop: a page is one message out and its
result one message back, with no threads, locks or acknowledgements in between (a general
pool's bookkeeping cost 0.9 ms of CPU a page, as much as fetching one). A page past its time
limit, or cancelled, has its worker killed and replaced; a worker that dies fails its page.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import time
import traceback
from dataclasses import replace
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from ingest.captures import PackedBody, pack
from ingest.errors import ExtractionError
from ingest.inflate import decode_body
from ingest.records import ExtractedArticle, Hints, Page
from ingest.stories import fingerprint

log = logging.getLogger(__name__)
Result = tuple[ExtractedArticle, PackedBody | None, float]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain", ""})


# WHATWG MIME sniffing's "binary data bytes", control bytes no text uses, less NUL (half of
# a UTF-16 page's bytes): any binary format (random-looking bytes) has 1 in 10 of the rest.
_BINARY_BYTES = bytes([*range(1, 9), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def looks_binary(head: bytes) -> bool:
    """True when more than one byte in 16 of ``head`` is a binary data byte (a stray one in
    a text page is not enough)."""
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    return controls * 16 > len(head)


def check_page(body: bytes, media_type: str, url: str) -> None:
    """Refuse what is not an HTML page (``media_type``: the bare Content-Type)."""
    if not body.strip():
        raise ExtractionError("empty page", url=url, reason="empty_page")
    head = body[:1024].lstrip().lower()
    # A binary file called text/html (or anything) would be stored as an article of junk.
    if head.startswith(
        (b"%pdf", b"\x89png", b"gif8", b"\xff\xd8\xff", b"pk\x03\x04")
    ) or looks_binary(body[:1024]):
        raise ExtractionError("not an HTML page (binary content)", url=url, reason="not_html")
    if media_type not in HTML_TYPES and not head.startswith((b"<!doctype html", b"<html")):
        raise ExtractionError(f"not an HTML page ({media_type})", url=url, reason="not_html")


def _extract(
    page: Page, hints: Hints, keep_raw: bool, max_bytes: int, fragment: str | None
) -> Result:
    """In a worker: inflate, check, extract; the raw page packed with ``keep_raw``;
    and the CPU seconds the extraction itself took (what is not extraction is overhead)."""
    from ingest.extract import extract_article  # imported in the worker, not the parent

    body = decode_body(page.body, page.encoding, max_bytes=max_bytes, url=page.url)
    check_page(body, page.content_type, page.url)
    content_type = page.headers.get("content-type")
    started = time.process_time()
    article = extract_article(
        body, page.final_url, content_type=content_type, hints=hints, fragment=fragment
    )
    cpu = time.process_time() - started
    article = replace(article, fingerprint=fingerprint(article.text))
    return article, pack(body, page.body, page.encoding) if keep_raw else None, cpu


def _serve(conn: Connection) -> None:
    """A worker's life: take a page, send back its result or error, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            args = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the pool closed, or its process is gone
        try:
            reply = pickle.dumps((True, _extract(*args)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            reply = _error_reply(exc)
        try:
            conn.send_bytes(reply)
        except OSError:
            return


def _error_reply(exc: Exception) -> bytes:
    """An error as it can cross the pipe: itself, with the worker's traceback as a note; or,
    if it cannot be pickled, a RuntimeError that says what it was."""
    if not isinstance(exc, ExtractionError):  # ours say all; anything else is a bug to trace
        exc.add_note("in the extraction worker:\n" + traceback.format_exc().rstrip())
    try:
        return pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
    except Exception:
        text = "".join(traceback.format_exception_only(exc)).strip()
        return pickle.dumps((False, RuntimeError(text)), pickle.HIGHEST_PROTOCOL)


class _Worker:
    """One extraction process and the parent's end of its pipe."""

    def __init__(self, context: ForkServerContext) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process: BaseProcess = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()  # the worker holds the only other end: its death reads as end of file

    def stop(self) -> None:
        """Kill the process (it may be busy) and reap it."""
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class ExtractorPool:
    """A lazily started pool of extraction processes; a page that takes longer than
    ``timeout`` seconds is abandoned and its worker process replaced."""

    def __init__(self, workers: int = 0, *, timeout: float = 30.0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self._context: ForkServerContext | None = None
        self._starting: asyncio.Task[None] | None = None
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._live: set[_Worker] = set()
        self._chores: set[asyncio.Task[None]] = set()
        self._closed = False
        # CPU seconds the workers spent in the extractor itself: the rest of a run's CPU is
        # what fetching, storing and passing pages around cost (`ingest fetch` reports both).
        self.extract_cpu_seconds = 0.0

    # --- workers -------------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        """The process IDs of the live workers."""
        return [w.process.pid for w in self._live if w.process.pid is not None]

    def _spawn(self, count: int) -> list[_Worker]:
        if self._context is None:
            # forkserver: workers fork from a clean process that has trafilatura preloaded,
            # not from our threaded, event-looped parent.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["ingest.extract"])
            self._context = context
        # Ctrl-C is the parent's to handle: the forkserver (a second preloading trafilatura,
        # where a SIGINT to the terminal's process group printed a traceback) and the workers
        # it forks start with SIGINT blocked, as multiprocessing starts its resource tracker.
        # The tracker first: starting, it unblocks SIGINT in this thread.
        resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return [_Worker(self._context) for _ in range(count)]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    async def _add(self, count: int) -> None:
        # Starting the forkserver blocks on pipes for about half a second: in a thread, so
        # fetching goes on meanwhile.
        try:
            workers = await asyncio.to_thread(self._spawn, count)
        except Exception:
            if not self._live:
                self._idle.put_nowait(None)  # wakes whoever waits for a worker: none will come
            raise
        for worker in workers:
            if self._closed:
                worker.stop()
                continue
            self._live.add(worker)
            self._idle.put_nowait(worker)

    def warm(self) -> None:
        """Start the workers now (they preload the extractor), so the first page need not
        wait for them: called as soon as a feed yields pages to fetch."""
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._add(self.workers))

    async def _take(self, url: str) -> _Worker:
        self.warm()
        worker = await self._idle.get()
        if worker is None:
            self._idle.put_nowait(None)  # for the next one waiting
            starting = self._starting
            cause = starting.exception() if starting and starting.done() else None
            raise ExtractionError(
                f"no extraction worker could be started ({cause})", url=url, reason="worker_died"
            )
        return worker

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start another in its place, in the background."""
        self._live.discard(worker)
        loop = asyncio.get_running_loop()

        async def replace() -> None:
            await asyncio.to_thread(worker.stop)
            if not self._closed:
                await self._add(1)

        task = loop.create_task(replace())
        self._chores.add(task)
        task.add_done_callback(self._chore_done)

    def _chore_done(self, task: asyncio.Task[None]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not replace an extraction worker: %s", task.exception())

    async def _call(self, worker: _Worker, message: bytes) -> tuple[bool, Any]:
        """Send ``message`` to the idle ``worker`` and wait for its answer."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        fd = worker.conn.fileno()

        def readable() -> None:
            loop.remove_reader(fd)
            if answer.done():
                return
            try:  # the worker writes its whole answer at once: this does not wait on it long
                answer.set_result(worker.conn.recv_bytes())
            except (EOFError, OSError) as exc:
                answer.set_exception(exc)

        loop.add_reader(fd, readable)
        try:
            worker.conn.send_bytes(message)  # an idle worker is reading: taken at once
            async with asyncio.timeout(self.timeout):
                data = await answer
        finally:
            loop.remove_reader(fd)
        ok, value = pickle.loads(data)
        return ok, value

    # --- pages ---------------------------------------------------------------------------------

    async def extract(
        self,
        page: Page,
        hints: Hints,
        *,
        max_bytes: int,
        keep_raw: bool = False,
        fragment: str | None = None,
    ) -> tuple[ExtractedArticle, PackedBody | None]:
        """The clean article of ``page`` (with ``fragment``: the post it names there) and, with
        ``keep_raw``, its body packed for the archive. A page still compressed (`Page.encoding`) may
        inflate to ``max_bytes`` at most."""
        message = pickle.dumps(
            (page, hints, keep_raw, max_bytes, fragment), pickle.HIGHEST_PROTOCOL
        )
        worker = await self._take(page.url)
        try:
            ok, value = await self._call(worker, message)
        except TimeoutError as exc:
            self._replace(worker)
            raise ExtractionError(
                f"extraction took over {self.timeout:g}s: abandoned",
                url=page.url,
                reason="extract_timeout",
            ) from exc
        except (EOFError, OSError) as exc:
            worker.process.join(timeout=0.5)  # its pipe closed as it exited: reaped at once
            self._replace(worker)
            raise ExtractionError(
                f"extraction worker died (exit code {worker.process.exitcode})",
                url=page.url,
                reason="worker_died",
            ) from exc
        except BaseException:  # cancelled: the worker is still on the page
            self._replace(worker)
            raise
        self._idle.put_nowait(worker)
        if not ok:
            raise value
        article, raw, cpu = value
        self.extract_cpu_seconds += cpu
        return article, raw

    def close(self) -> None:
        """Stop the workers (abandoning any extraction in flight) and wait for them."""
        self._closed = True
        for task in (self._starting, *self._chores):
            if task is not None:
                task.cancel()
        idle: set[_Worker] = set()
        while not self._idle.empty():
            if (worker := self._idle.get_nowait()) is not None:
                idle.add(worker)
        live, self._live = self._live, set()
        for worker in live:
            worker.conn.close()  # an idle worker reads end of file and exits
            if worker not in idle:
                worker.process.kill()  # a busy one is abandoned
        for worker in live:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.stop()

    async def __aenter__(self) -> ExtractorPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._starting is not None and not self._starting.done():
            await asyncio.wait([self._starting])  # a pool half started would be left running
        if self._chores:
            await asyncio.wait(list(self._chores), timeout=5)
        self.close()
