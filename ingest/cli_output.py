"""What the command line prints for people: errors, run summaries, tables, progress,
interruptions.

Machine formats (``--format json`` and the like) are written by the commands themselves or by
`ingest.query`; everything here is text for a terminal or a log, at most 80 columns wide.
Only the CLI imports this module.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ingest.errors import ConfigError, IngestError, NotFoundError, QueryError, UsageError
from ingest.summary import plural

if TYPE_CHECKING:  # imported by the commands that print them: `--help` stays quick
    from ingest.dbcopy import CopyResult
    from ingest.models import Feed
    from ingest.reextract import Reextracted
    from ingest.search import SearchHit
    from ingest.summary import RunSummary


def span(seconds: float) -> str:
    """A length of time in at most two units, as a table cell has room for: 42s, 12m, 3h05m,
    2d4h."""
    whole = int(abs(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        hours, minutes = divmod(whole // 60, 60)
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(whole // 3600, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def moment(value: datetime) -> str:
    """A UTC time to the second, as people read it (no microseconds, no ``T``)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@contextmanager
def errors() -> Iterator[None]:
    """Library errors become one line on stderr and an exit status, never a traceback: 2 for
    what the user asked (config, usage, query), 1 for what could not be done."""
    try:
        yield
    except (ConfigError, QueryError, UsageError) as exc:
        status = 1 if isinstance(exc, NotFoundError) else 2
        click.echo(f"ingest: error: {exc}", err=True)
        sys.exit(status)
    except IngestError as exc:
        click.echo(f"ingest: error: {exc}", err=True)
        sys.exit(1)


# --- ingest fetch ------------------------------------------------------------------------------


def print_summary(summary: RunSummary) -> None:
    click.echo(
        f"Polled {plural(summary.feeds, 'feed')} ({summary.feeds_not_modified} not modified, "
        f"{summary.feeds_failed} failed): {plural(summary.entries_seen, 'entry', 'entries')}, "
        f"{summary.entries_new} new."
    )
    click.echo(
        f"Stored {plural(summary.articles_new, 'new article')}; "
        f"{plural(summary.articles_failed, 'page')} failed, "
        f"{plural(summary.articles_duplicate, 'duplicate')}, {summary.pages_retried} retried "
        f"({summary.seconds:.1f}s)."
    )
    if summary.pages_rechecked:
        click.echo(
            f"Looked again at {plural(summary.pages_rechecked, 'archived page')}: "
            f"{plural(summary.versions_new, 'new version')}, {summary.articles_removed} gone."
        )
    if summary.failures:
        click.echo("Failures:")
        for failure in summary.failures:
            click.echo(f"  {failure.kind:<5} {failure.reason:<16} {failure.message}")


def print_interrupted(summary: RunSummary | None, pending: int | None) -> None:
    """What a Ctrl-C left: what was stored, what waits for the next run."""
    done = ""
    if summary is not None:
        done = f" after storing {plural(summary.articles_new, 'new article')}"
    if pending is None:
        left = "pages not fetched yet stay pending"
    else:
        left = f"{plural(pending, 'page')} pending"
    click.echo(
        f"ingest: interrupted{done}; {left}: the next `ingest fetch` (or a running daemon) "
        "resumes them",
        err=True,
    )


@contextmanager
def fetch_progress(enabled: bool) -> Iterator[Any]:
    """A progress bar on stderr for a terminal (the pipeline's `Progress`); None otherwise."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("fetching"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("fetch", total=0)

        class _Bar:
            def add(self, pages: int) -> None:
                bar.update(task, total=(bar.tasks[0].total or 0) + pages)

            def done(self, pages: int = 1) -> None:
                bar.advance(task, pages)

        yield _Bar()


# --- the read side -----------------------------------------------------------------------------


def print_hits(hits: Sequence[SearchHit]) -> None:
    from rich.console import Console
    from rich.table import Table

    from ingest.query import hit_record

    table = Table(show_lines=True)
    for column in ("id", "published", "title", "snippet"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        row = hit_record(hit, mark=("[bold yellow]", "[/]"))
        title = row["title"] or ""
        if hit.copies:
            title += f" (+{plural(hit.copies, 'copy', 'copies')})"
        table.add_row(str(row["id"]), (row["published"] or "")[:10], title, row["snippet"])
    Console().print(table)


def print_feeds(feeds: Sequence[Feed], now: datetime) -> None:
    """Every feed in a table that fits 80 columns: times as ages (`--format json` has them
    exact), so that they never wrap; the feed and its last error fold instead."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("id", no_wrap=True)
    table.add_column("feed", overflow="fold", ratio=2)
    table.add_column("last poll", no_wrap=True)
    table.add_column("next poll", no_wrap=True)
    table.add_column("status", overflow="fold")
    table.add_column("errors", no_wrap=True, justify="right")
    table.add_column("last error", overflow="fold", ratio=3)
    for feed in feeds:
        if feed.last_polled_at is None:
            last = "never"
        else:
            last = f"{span((now - feed.last_polled_at).total_seconds())} ago"
        if not feed.active:
            upcoming = "-"  # not polled while it is not in the config
        elif feed.next_poll_at is None or feed.next_poll_at <= now:
            upcoming = "due"
        else:
            upcoming = f"in {span((feed.next_poll_at - now).total_seconds())}"
        table.add_row(
            str(feed.id),
            Text(  # not markup: a name or a tag may hold brackets
                (feed.name or feed.url)
                + ("" if feed.active else " (not in config)")
                + (f" [{', '.join(feed.tags)}]" if feed.tags else "")
            ),
            last,
            upcoming,
            feed.last_status or "-",
            str(feed.error_count),
            feed.last_error or "",
        )
    Console().print(table)


def print_stats(data: dict[str, Any]) -> None:
    feeds, articles, recent = data["feeds"], data["articles"], data["recent"]
    last_poll = recent["last_poll"]
    click.echo(f"Feeds:    {feeds['total']} ({feeds['active']} active, {feeds['failing']} failing)")
    click.echo(
        f"Articles: {articles['total']} ({articles['ok']} ok, {articles['pending']} pending, "
        f"{articles['failed']} failed)"
    )
    click.echo(
        f"Recent:   {recent['articles_last_24h']} new in 24 h, {recent['articles_last_7d']} in "
        f"7 days; last poll {moment(datetime.fromisoformat(last_poll)) if last_poll else 'never'}"
    )
    for reason, count in data["failures_by_reason"].items():
        click.echo(f"  failed {reason}: {count}")
    kept = data["versions"]
    click.echo(
        f"Versions: {plural(kept['articles_changed'], 'article')} changed "
        f"({plural(kept['versions'], 'version')}), {kept['articles_removed']} gone from the web; "
        f"{kept['articles_watched']} watched, {kept['rechecks_due']} due"
    )
    storage = data["storage"]
    line = f"Storage:  {size(storage['archive_bytes'])}"
    if storage["bytes_per_article"] is not None:
        line += f", {size(storage['bytes_per_article'])} an article"
    if storage["captures_share"] is not None:
        line += (
            f"; raw captures {storage['captures_share']:.0%} "
            f"({plural(storage['captures'], 'capture')}, "
            f"{plural(storage['capture_bodies'], 'shared body', 'shared bodies')})"
        )
    click.echo(line)
    if storage["free_bytes"]:
        click.echo(f"  unused: {size(storage['free_bytes'])} (reused as the archive grows)")


def size(count: int) -> str:
    """Bytes for people: 512 B, 35.2 kB, 1.4 MB, 10.3 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


# --- ingest reextract -------------------------------------------------------------------------


def print_reextracted(done: Reextracted, *, garbled: bool) -> None:
    which = "garbled articles" if garbled else "articles"
    click.echo(
        f"Re-extracted {done.checked} {which} from their captures: "
        f"{done.changed} changed, {done.unchanged} unchanged, "
        f"{done.failed} failed, {done.no_capture} without a kept page."
    )
    if done.current:
        click.echo(f"{plural(done.current, 'article')} made by {done.extractor} already: skipped.")
    for article_id, why in sorted(done.failures.items()):
        click.echo(f"  article {article_id}: {why}", err=True)
    if done.failed > len(done.failures):
        click.echo(f"  and {done.failed - len(done.failures)} more failed", err=True)
    if done.no_capture:
        click.echo(
            "  Pages are kept only with extract.keep_raw on (the default); those articles "
            "can only be fetched again.",
            err=True,
        )


# --- ingest db copy ----------------------------------------------------------------------------


def print_copy(result: CopyResult) -> None:
    width = max(len(t.table) for t in result.tables)
    click.echo(f"{'table':<{width}}  {'source':>10}  {'destination':>11}  {'copied':>10}")
    for t in result.tables:
        click.echo(f"{t.table:<{width}}  {t.source:>10}  {t.destination:>11}  {t.copied:>10}")
    copied = sum(t.copied for t in result.tables)
    click.echo(f"Copied {plural(copied, 'row')} into {result.destination} ({result.seconds:.1f}s).")


@contextmanager
def copy_progress(terminal: bool) -> Iterator[Callable[[str, int, int, bool], None]]:
    """A bar per table on a terminal; otherwise a line per table, and every 10 s meanwhile."""
    if not terminal:
        shown: dict[str, Any] = {"at": time.monotonic(), "what": None}

        def line(table: str, rows: int, total: int, finished: bool) -> None:
            due = finished or time.monotonic() - shown["at"] >= 10
            if due and shown["what"] != (table, rows):
                click.echo(f"copying {table}: {rows}/{total} rows", err=True)
                shown.update(at=time.monotonic(), what=(table, rows))

        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def update(table: str, rows: int, total: int, finished: bool) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=rows, total=total)

        yield update
