"""The command line: parse arguments, call one library function, format the result
(`ingest.cli_output` writes what people read). The read side's commands are in
`ingest.cli_read`, `ingest feeds` in `ingest.cli_feeds`, `ingest db` in `ingest.cli_db`, what
the global options resolve to in `ingest.cli_context`.

Exit status: 0 done; 1 nothing could be done (no feed could be polled, the database is
unusable, no such article); 2 usage, config or query errors; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ingest import __version__, cli_output
from ingest.cli_context import Context
from ingest.cli_db import db
from ingest.cli_feeds import feeds
from ingest.cli_read import export, filter_options, search, show, stats, to_filters
from ingest.cli_versions import diff, history
from ingest.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from ingest.store import Store

# Commands import what they use when they run: `--help` and a re-poll stay quick to start.


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ingest")
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="INGEST_CONFIG",
    help="Config file [default: config/ingest.toml].",
)
@click.option("--database", metavar="URL", help="Archive database URL (overrides the config).")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-v, -vv).")
@click.option(
    "-q",
    "--quiet",
    count=True,
    help="Log less (-q: the daemon says only warnings and errors, -qq: errors).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="INGEST_LOG_FORMAT",
    help="Log lines as text or as JSON objects.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    database: str | None,
    verbose: int,
    quiet: int,
    log_format: str,
) -> None:
    """Archive news feeds: fetch every new article, keep its clean text, search the archive.

    \b
    Example:
      ingest fetch && ingest search "climate summit" --since 2025-01-01
    """
    from ingest.logs import configure

    # The daemon has no other output: it says what it does (info). The other commands print
    # their results, and log problems only.
    base = logging.INFO if ctx.invoked_subcommand == "daemon" else logging.WARNING
    level = min(max(base + 10 * (quiet - verbose), logging.DEBUG), logging.CRITICAL)
    configure(level, log_format)
    ctx.obj = Context(config, database)


@cli.command()
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="NAME|URL",
    help="Poll only this feed (repeatable); a URL not in the config is polled this once, "
    "not followed.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--workers", type=click.IntRange(min=0), help="Extraction processes (0 = cores).")
@click.option(
    "--since",
    metavar="DATE",
    help="Sitemaps: fetch no URL dated before DATE (a first backfill's bound; overrides the "
    "feeds' since).",
)
@click.pass_obj
def fetch(
    obj: Context, feeds: tuple[str, ...], fmt: str, workers: int | None, since: str | None
) -> None:
    """Poll every configured feed once and archive every new article.

    Without --feed, archived pages due for a re-check ([versions]) are looked at again, and
    each meaningful change is kept as a new version.

    A feed URL not in the config (--feed URL) is polled this once: its articles are archived,
    and no daemon follows it (add it under [[feeds]] for that). Ctrl-C stops the run; the
    pages it had not stored are pending, and the next run resumes them.

    \b
    Example:
      ingest fetch --feed World --format json
      ingest fetch --feed https://example.org/news-sitemap.xml --since 2025-01-01
    """
    from ingest.pipeline import refresh, select_feeds
    from ingest.summary import RunSummary

    moment = _since(since) if since is not None else None
    summary = RunSummary()
    try:
        with cli_output.errors():
            settings = obj.settings()
            if workers is not None:
                settings = settings.model_copy(
                    update={"extract": settings.extract.model_copy(update={"workers": workers})}
                )
            chosen = select_feeds(settings, feeds)
            if moment is not None:
                chosen = [f.model_copy(update={"since": moment}) for f in chosen]
            unknown = sorted(set(feeds) - {f.url for f in chosen} - {f.name for f in chosen})
            if unknown:
                raise ConfigError(f"{settings.source}: no feed named {', '.join(unknown)}")
            if not chosen:
                if settings.not_found:
                    raise ConfigError(f"no feeds to poll: {settings.no_config()}")
                raise ConfigError(f"{settings.source}: no feeds configured ([[feeds]] url = ...)")
            terminal = fmt == "text" and sys.stderr.isatty()
            with (
                obj.store(settings.database.url, create=True) as store,
                cli_output.fetch_progress(terminal) as bar,
            ):
                try:
                    # A run over every feed also looks again at the pages due for a re-check.
                    run = refresh(
                        settings, store, chosen, progress=bar, summary=summary, rechecks=not feeds
                    )
                    asyncio.run(run)
                except KeyboardInterrupt:
                    # The run was cancelled and gave its leases back: its pages are pending.
                    cli_output.print_interrupted(summary, _pending(store))
                    sys.exit(130)
    except KeyboardInterrupt:  # before the run began
        cli_output.print_interrupted(None, None)
        sys.exit(130)
    if fmt == "json":
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        cli_output.print_summary(summary)
    configured = {f.url for f in settings.feeds}
    _say_polled_once(f.url for f in chosen if f.url not in configured)
    sys.exit(0 if summary.completed else 1)


def _since(value: str) -> datetime:
    from ingest.config import parse_moment

    try:
        moment = parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    assert isinstance(moment, datetime)
    return moment


def _pending(store: Store) -> int | None:
    try:
        return store.pending_pages()
    except (StoreError, KeyboardInterrupt):
        return None  # the line is written all the same


def _say_polled_once(urls: Iterable[str]) -> None:
    for url in urls:
        click.echo(
            f"ingest: note: {url} is not in the config: polled this once, not followed (its "
            "articles stay in the archive; add it under [[feeds]] to poll it on schedule)",
            err=True,
        )


@cli.command()
@click.option(
    "--garbled/--all",
    default=True,
    help="Only articles whose text or title shows a decoding error [default], or every one "
    "the current extractor did not make.",
)
@click.option("--workers", type=click.IntRange(min=0), help="Extraction processes (0 = cores).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@filter_options
@click.pass_obj
def reextract(obj: Context, garbled: bool, workers: int | None, fmt: str, **filters: Any) -> None:
    """Extract archived articles again from their kept raw page, without the network.

    Repairs articles stored garbled by an earlier version (U+FFFD, "CafÃ©"); with --all,
    brings every selected article up to the current extractor. A run that was stopped is
    carried on by the next: what the current extractor made is not done again.

    \b
    Example:
      ingest reextract --garbled --feed "Le Monde"
      ingest reextract --all --since 2025-01-01
    """
    from ingest.reextract import reextract as run

    with cli_output.errors(), obj.store() as store:
        settings = obj.settings()
        try:
            done = asyncio.run(
                run(store, settings, to_filters(**filters), garbled=garbled, workers=workers)
            )
        except KeyboardInterrupt:
            # What was committed stays; the same command carries on after it.
            click.echo("ingest: interrupted; run the same command again to carry on", err=True)
            sys.exit(130)
    if fmt == "json":
        click.echo(json.dumps(done.__dict__, default=str))
    else:
        cli_output.print_reextracted(done, garbled=garbled)
    if done.failed:
        sys.exit(1)


@cli.command("import")
@click.option(
    "--warc",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A WARC file (.warc or .warc.gz): ours, or any tool's.",
)
@click.option("--workers", type=click.IntRange(min=0), help="Extraction processes (0 = cores).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def import_(obj: Context, path: Path, workers: int | None, fmt: str) -> None:
    """Archive the pages of a WARC file: each HTTP response becomes an article.

    Its text is extracted again from the page; the records `ingest export --format warc`
    writes restore feeds, titles, authors, dates and guids (a WARC from another tool is
    archived under a feed named after the file). The file is read whole first: one that is
    not a WARC, or is cut short or damaged, changes nothing. Importing twice adds nothing.

    \b
    Example:
      ingest import --warc world.warc.gz
    """
    from ingest.warc import check_warc
    from ingest.warcimport import import_warc

    with cli_output.errors():
        checked = check_warc(path)  # before the archive is opened, let alone created
        settings = obj.settings()
        if workers is not None:
            settings = settings.model_copy(
                update={"extract": settings.extract.model_copy(update={"workers": workers})}
            )
        with obj.store(settings.database.url, create=True) as store:
            done = asyncio.run(import_warc(store, settings, path, checked=checked))
    if fmt == "json":
        click.echo(json.dumps(done.to_dict()))
        return
    click.echo(
        f"Imported {path.name}: {cli_output.plural(done.responses, 'response')}; "
        f"{cli_output.plural(done.articles, 'new article')}, "
        f"{cli_output.plural(done.captures, 'capture')} added to articles already archived, "
        f"{done.already} already in the archive, {sum(done.skipped.values())} skipped."
    )
    for reason, count in done.skipped.most_common():
        click.echo(f"  skipped {count}: {reason}", err=True)


@cli.command()
@click.pass_obj
def daemon(obj: Context) -> None:
    """Run until stopped: poll feeds on schedule, archive new articles, retry failures.

    Serves /healthz and /metrics on [daemon] listen (each daemon on a machine needs its own).
    Logs to stderr what it does: its start, a line per poll round, each failure, its stop
    (-q: warnings and errors only). SIGTERM or Ctrl-C stops it cleanly; SIGHUP re-reads the
    config file (it is also re-read when it changes).

    \b
    Example:
      ingest daemon
      ingest --log-format json --config /etc/ingest.toml daemon
    """
    from ingest.daemon import Daemon
    from ingest.dbstate import open_when_available
    from ingest.store import Store

    with cli_output.errors():
        settings = obj.settings()
        if settings.not_found:  # nothing to poll, nor a file to watch for feeds added later
            raise ConfigError(f"the daemon has no feeds to poll: {settings.no_config()}")
        path = Path(settings.source)
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

    with cli_output.errors():
        served = prepare(obj.settings(**({"serve": {"listen": listen}} if listen else {})))
    click.echo(f"ingest: serving the archive on {served.url}", err=True)
    run(served)


for command in (search, show, history, diff, export, feeds, stats, db):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="ingest")
