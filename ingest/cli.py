"""The command line: parse arguments, call one library function, format the result.

Exit status: 0 done; 1 nothing could be done (no feed could be polled, the database is
unusable, no such article); 2 usage, config or query errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ingest import __version__
from ingest.errors import (
    ConfigError,
    IngestError,
    NotFoundError,
    QueryError,
    StoreError,
    UsageError,
)

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.search import Filters
    from ingest.store import Store

# Commands import what they use when they run: `--help` and a re-poll stay quick to start.

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What the group's options resolve to, handed to each command."""

    def __init__(self, config: Path | None, database: str | None) -> None:
        self.config = config
        self.database = database

    def settings(self, **sections: dict[str, Any]) -> Settings:
        """The settings, with ``sections`` (command-line flags) over the rest."""
        from ingest.config import load_settings

        overrides = {"database": {"url": self.database}} if self.database else {}
        return load_settings(self.config, overrides={**overrides, **sections})

    @contextmanager
    def store(self, url: str | None = None, **options: bool) -> Iterator[Store]:
        """The archive, closed on the way out; by default an existing one only."""
        from ingest.store import Store

        options.setdefault("create", False)
        store = Store.open(url or self.settings().database.url, **options)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become one line on stderr and an exit status, never a traceback."""
    try:
        yield
    except (ConfigError, QueryError, UsageError) as exc:
        status = 1 if isinstance(exc, NotFoundError) else 2
        click.echo(f"ingest: error: {exc}", err=True)
        sys.exit(status)
    except (StoreError, IngestError) as exc:
        click.echo(f"ingest: error: {exc}", err=True)
        sys.exit(1)


class Moment(click.ParamType):
    """A date or date-time; without a zone it is UTC."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ingest.query import parse_moment

        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD or ISO 8601)", param, ctx)


def _filter_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--feed", help="Only articles listed by this feed (name or URL)."),
            click.option("--since", type=Moment(), help="Published on or after this date."),
            click.option("--until", type=Moment(), help="Published before this date."),
            click.option("--author", help="Only articles with an author matching this."),
            click.option("--lang", help="Only articles in this language (e.g. en)."),
        ]
    ):
        func = option(func)
    return func


def _filters(
    feed: str | None,
    since: datetime | None,
    until: datetime | None,
    author: str | None = None,
    lang: str | None = None,
) -> Filters:
    from ingest.search import Filters

    return Filters(feed=feed, since=since, until=until, author=author, language=lang)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ingest")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="INGEST_CONFIG",
    help="Config file [default: config/ingest.toml].",
)
@click.option("--database", metavar="URL", help="Archive database URL (overrides the config).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="INGEST_LOG_FORMAT",
    help="Log lines as text or as JSON objects.",
)
@click.pass_context
def cli(
    ctx: click.Context, config: Path | None, database: str | None, verbose: int, log_format: str
) -> None:
    """Archive news feeds: fetch every new article, keep its clean text, search the archive.

    \b
    Example:
      ingest fetch && ingest search "climate summit" --since 2025-01-01
    """
    from ingest.logs import configure

    configure([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], log_format)
    ctx.obj = Context(config, database)


@cli.command()
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="NAME|URL",
    help="Poll only this feed (repeatable); a URL not in the config is polled as given.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--workers", type=click.IntRange(min=0), help="Extraction processes (0 = cores).")
@click.pass_obj
def fetch(obj: Context, feeds: tuple[str, ...], fmt: str, workers: int | None) -> None:
    """Poll every configured feed once and archive every new article.

    \b
    Example:
      ingest fetch --feed World --format json
    """
    from ingest.pipeline import refresh, select_feeds

    with _errors():
        settings = obj.settings()
        if workers is not None:
            settings = settings.model_copy(
                update={"extract": settings.extract.model_copy(update={"workers": workers})}
            )
        chosen = select_feeds(settings, feeds)
        unknown = sorted(set(feeds) - {f.url for f in chosen} - {f.name for f in chosen})
        if unknown:
            raise ConfigError(f"{settings.source}: no feed named {', '.join(unknown)}")
        if not chosen:
            raise ConfigError(f"{settings.source}: no feeds configured ([[feeds]] url = ...)")
        terminal = fmt == "text" and sys.stderr.isatty()
        with obj.store(settings.database.url, create=True) as store, _progress(terminal) as bar:
            summary = asyncio.run(refresh(settings, store, chosen, progress=bar))
    if fmt == "json":
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        _print_summary(summary)
    sys.exit(0 if summary.completed else 1)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
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


def _print_summary(summary: Any) -> None:
    click.echo(
        f"Polled {summary.feeds} feeds ({summary.feeds_not_modified} not modified, "
        f"{summary.feeds_failed} failed): {summary.entries_seen} entries, "
        f"{summary.entries_new} new."
    )
    click.echo(
        f"Stored {summary.articles_new} new articles; {summary.articles_failed} pages failed, "
        f"{summary.articles_duplicate} duplicates, {summary.pages_retried} retried "
        f"({summary.seconds:.1f}s)."
    )
    if summary.failures:
        click.echo("Failures:")
        for failure in summary.failures:
            click.echo(f"  {failure.kind:<5} {failure.reason:<16} {failure.message}")


@cli.command()
@click.argument("query")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "jsonl", "csv"]), default="table"
)
@click.pass_obj
def search(obj: Context, query: str, limit: int, fmt: str, **filters: Any) -> None:
    """Full-text search of titles and texts, best match first.

    QUERY: words (all must match), "a phrase", OR, -word (or NOT word) to exclude, prefix*,
    title:word, (grouping). COVID-19, U.S. or don't are searched as typed.

    \b
    Example:
      ingest search '"climate summit" OR cop29' --since 2025-01-01 --lang en
    """
    from ingest.query import hit_record, write_records

    with _errors(), obj.store(read_only=True) as store:
        hits = store.search(query, _filters(**filters), limit=limit)
    if fmt != "table":
        write_records((hit_record(h) for h in hits), fmt, sys.stdout)
        return
    if not hits:
        click.echo("No matches.", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=True)
    for column in ("id", "published", "title", "snippet"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        row = hit_record(hit, mark=("[bold yellow]", "[/]"))
        table.add_row(
            str(row["id"]), (row["published"] or "")[:10], row["title"] or "", row["snippet"]
        )
    Console().print(table)


@cli.command()
@click.argument("ref", metavar="ID|URL")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def show(obj: Context, ref: str, fmt: str) -> None:
    """Show one article by its id or URL.

    \b
    Example:
      ingest show 42 --format json
    """
    from ingest.query import record, render_text

    with _errors(), obj.store(read_only=True) as store:
        article, feed_url = store.article(ref)
    if fmt == "json":
        click.echo(json.dumps(record(article, feed_url), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(article, feed_url), nl=False)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "json"]), default="jsonl")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@_filter_options
@click.pass_obj
def export(obj: Context, fmt: str, out: Path | None, **filters: Any) -> None:
    """Stream the archive as JSON lines or CSV, oldest first.

    \b
    Example:
      ingest export --format csv --since 2025-01-01 --out archive.csv
    """
    from ingest.query import export_records, write_records

    with _errors(), obj.store(read_only=True) as store:
        if out is None:
            count = write_records(export_records(store, _filters(**filters)), fmt, sys.stdout)
        else:
            partial = out.with_name(out.name + ".partial")
            with partial.open("w", encoding="utf-8", newline="") as fh:
                count = write_records(export_records(store, _filters(**filters)), fmt, fh)
            partial.replace(out)  # never leave a half-written file under the asked name
    if out is not None:
        click.echo(f"Exported {count} articles to {out}.", err=True)


@cli.command()
@click.option(
    "--garbled/--all",
    default=True,
    help="Only articles whose text or title shows a decoding error [default], or every one.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@_filter_options
@click.pass_obj
def reextract(obj: Context, garbled: bool, fmt: str, **filters: Any) -> None:
    """Extract archived articles again from their kept raw page, without the network.

    Repairs articles stored garbled by an earlier version (U+FFFD, "CafÃ©"); with --all,
    brings every selected article up to the current extractor.

    \b
    Example:
      ingest reextract --garbled --feed "Le Monde"
    """
    from ingest.reextract import reextract as run

    with _errors(), obj.store() as store:
        done = asyncio.run(run(store, obj.settings(), _filters(**filters), garbled=garbled))
    if fmt == "json":
        click.echo(json.dumps(done.__dict__, default=str))
    else:
        which = "garbled articles" if garbled else "articles"
        click.echo(
            f"Re-extracted {done.checked} {which} from their captures: "
            f"{len(done.changed)} changed, {done.unchanged} unchanged, "
            f"{len(done.failed)} failed, {done.no_capture} without a kept page."
        )
        for article_id, why in sorted(done.failed.items()):
            click.echo(f"  article {article_id}: {why}", err=True)
        if done.no_capture:
            click.echo(
                "  Pages are kept only with extract.keep_raw on (the default); those articles "
                "can only be fetched again.",
                err=True,
            )
    if done.failed:
        sys.exit(1)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def feeds(obj: Context, fmt: str) -> None:
    """List every feed: last poll, next poll, last status, errors.

    \b
    Example:
      ingest feeds --format json
    """
    with _errors(), obj.store(read_only=True) as store:
        rows = store.feeds()
    data = [
        {
            "id": f.id,
            "name": f.name,
            "url": f.url,
            "title": f.title,
            "active": f.active,
            "last_polled_at": _iso(f.last_polled_at),
            "next_poll_at": _iso(f.next_poll_at),
            "interval_seconds": f.interval,
            "last_status": f.last_status,
            "error_count": f.error_count,
            "last_error": f.last_error,
        }
        for f in rows
    ]
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("id", "feed", "last poll", "next poll", "status", "errors", "last error"):
        table.add_column(column, overflow="fold")
    for item in data:
        table.add_row(
            str(item["id"]),
            (item["name"] or item["url"]) + ("" if item["active"] else " (removed)"),
            (item["last_polled_at"] or "never")[:19],
            (item["next_poll_at"] or "now")[:19],
            item["last_status"] or "-",
            str(item["error_count"]),
            item["last_error"] or "",
        )
    Console().print(table)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def stats(obj: Context, fmt: str) -> None:
    """Archive counts, failures by reason and recent activity.

    \b
    Example:
      ingest stats --format json
    """
    from ingest.records import utcnow

    with _errors(), obj.store(read_only=True) as store:
        data = store.stats(utcnow())
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    feeds_, articles, recent = data["feeds"], data["articles"], data["recent"]
    click.echo(
        f"Feeds:    {feeds_['total']} ({feeds_['active']} active, {feeds_['failing']} failing)"
    )
    click.echo(
        f"Articles: {articles['total']} ({articles['ok']} ok, {articles['pending']} pending, "
        f"{articles['failed']} failed)"
    )
    click.echo(
        f"Recent:   {recent['articles_last_24h']} new in 24 h, {recent['articles_last_7d']} in "
        f"7 days; last poll {recent['last_poll'] or 'never'}"
    )
    for reason, count in data["failures_by_reason"].items():
        click.echo(f"  failed {reason}: {count}")


@cli.command()
@click.pass_obj
def daemon(obj: Context) -> None:
    """Run until stopped: poll feeds on schedule, archive new articles, retry failures.

    Serves /healthz and /metrics on [daemon] listen. SIGTERM or Ctrl-C stops it cleanly;
    SIGHUP re-reads the config file (it is also re-read when it changes).

    \b
    Example:
      ingest daemon
      ingest --log-format json --config /etc/ingest.toml daemon
    """
    from ingest.daemon import Daemon
    from ingest.dbstate import open_when_available
    from ingest.store import Store

    with _errors():
        settings = obj.settings()
        path = Path(settings.source) if settings.source != "(defaults)" else None
        store = open_when_available(lambda: Store.open(settings.database.url, create=True))
        if store is None:
            return
        try:
            asyncio.run(Daemon(settings, store, config_path=path).run())
        finally:
            store.close()


@cli.command()
@click.option("--listen", metavar="HOST:PORT", help="Address to serve on [serve.listen].")
@click.pass_obj
def serve(obj: Context, listen: str | None) -> None:
    """Serve the archive read-only over HTTP: a JSON API (/api/v1, /api/docs) and pages.

    A non-loopback address needs serve.token (or INGEST_SERVE_TOKEN); it may run beside
    a daemon on the same archive.

    \b
    Example:
      ingest serve --listen 127.0.0.1:8080
      ingest serve --listen 0.0.0.0:8080    # with INGEST_SERVE_TOKEN set
    """
    from ingest.web.server import prepare, run

    with _errors():
        served = prepare(obj.settings(**({"serve": {"listen": listen}} if listen else {})))
    click.echo(f"ingest: serving the archive on {served.url}", err=True)
    run(served)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@cli.group()
def db() -> None:
    """Manage the archive database: its schema, its search index, copies elsewhere.

    \b
    Example:
      ingest db upgrade
      ingest db copy --to postgresql+psycopg://ingest@db.example.org/ingest
    """


@db.command()
@click.pass_obj
def upgrade(obj: Context) -> None:
    """Bring the archive's schema up to date, keeping every article.

    \b
    Example:
      ingest --database sqlite:///data/ingest.sqlite3 db upgrade
    """
    with _errors(), obj.store(migrate=False) as store:
        before, after = store.upgrade()
    if before == after:
        click.echo(f"Schema already at revision {after}.")
    else:
        click.echo(f"Schema upgraded from revision {before or '(empty)'} to {after}.")


@db.command("copy")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL|PATH",
    help="Destination: a postgresql+psycopg:// or sqlite:/// URL, or an SQLite file path.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, hidden=True)
@click.pass_obj
def copy_(obj: Context, to: str, fmt: str, batch_size: int) -> None:
    """Copy the whole archive into another database: SQLite to PostgreSQL, or back.

    The destination is created through the migrations; rows keep their ids; the counts of
    every table are compared at the end. Interrupted, the same command resumes the copy.
    A destination that holds another archive is refused.

    \b
    Example:
      ingest db copy --to postgresql+psycopg://ingest@db.example.org/ingest
      ingest --database postgresql+psycopg://ingest@db/ingest db copy --to archive.sqlite3
    """
    from ingest.dbcopy import copy_archive

    with _errors():
        url = obj.settings().database.url
        try:
            with _copy_progress(sys.stderr.isatty()) as report:
                result = copy_archive(url, to, batch_size=batch_size, progress=report)
        except KeyboardInterrupt:
            click.echo("ingest: interrupted; run the same command again to resume", err=True)
            sys.exit(130)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        width = max(len(t.table) for t in result.tables)
        click.echo(f"{'table':<{width}}  {'source':>10}  {'destination':>11}  {'copied':>10}")
        for t in result.tables:
            click.echo(f"{t.table:<{width}}  {t.source:>10}  {t.destination:>11}  {t.copied:>10}")
        copied = sum(t.copied for t in result.tables)
        click.echo(f"Copied {copied} rows into {result.destination} ({result.seconds:.1f}s).")
    if result.mismatched:
        differing = ", ".join(
            f"{t.table} (source {t.source}, destination {t.destination})" for t in result.mismatched
        )
        click.echo(f"ingest: error: row counts differ after the copy: {differing}", err=True)
        sys.exit(1)


@contextmanager
def _copy_progress(terminal: bool) -> Iterator[Callable[[str, int, int, bool], None]]:
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


@db.command()
@click.pass_obj
def optimize(obj: Context) -> None:
    """Merge the SQLite search index into one piece: searches for common words get faster.

    Worth running after a large import and now and then on a growing archive (it takes
    about two minutes a million articles; a running fetch waits a moment at most).
    Nothing to do on PostgreSQL.

    \b
    Example:
      ingest db optimize
    """
    with _errors(), obj.store() as store:
        steps = store.merge_search_index()
    click.echo(f"Search index merged in {steps} steps." if steps else "Nothing to merge.")


def main() -> None:
    cli(prog_name="ingest")
