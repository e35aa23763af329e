"""`ingest feeds`: the feeds as the archive knows them (the bare command), and the feeds of the
config file managed from the command line: `add` (a feed, or a site's feeds found from any of
its pages), `remove`, `import` (OPML), `export` (OPML or TOML).

Each edit writes the config file in use (`ingest.subscriptions`), then brings the archive's
feeds in step, as a daemon does when it reloads the file (which it also does by itself).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from ingest import cli_output
from ingest.errors import FetchError, IngestError, QueryError, UsageError

if TYPE_CHECKING:
    from ingest.cli_context import Context
    from ingest.configedit import ConfigFile
    from ingest.discovery import Candidate, Discovery
    from ingest.subscriptions import NewFeed

OPML_TITLE = "ingest subscriptions"


@click.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--tag", help="Only feeds with this tag.")
@click.pass_context
def feeds(ctx: click.Context, fmt: str, tag: str | None) -> None:
    """List every feed: last poll, next poll, last status, errors, tags; or manage the
    config's feeds (add, remove, import, export).

    The table gives times as ages ("5m ago", "in 25m"); --format json gives them exact.

    \b
    Example:
      ingest feeds --format json
      ingest feeds add https://example.org/ --tag news
    """
    if ctx.invoked_subcommand is not None:
        return
    from ingest.records import utcnow

    obj: Context = ctx.obj
    with cli_output.errors():
        with obj.store(read_only=True) as store:
            rows = store.feeds()
        if tag is not None:
            rows = [f for f in rows if tag in f.tags]
            if not rows:
                raise QueryError(
                    f"no feed tagged {tag!r} in the archive: `ingest feeds` lists each "
                    "feed's tags (tags = [...] under [[feeds]] in the config)"
                )
    if fmt == "table":
        cli_output.print_feeds(rows, utcnow())
        return
    from ingest.query import feed_record

    data = [feed_record(f) for f in rows]
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@feeds.command()
@click.argument("url")
@click.option("--name", help="The feed's name (--feed NAME selects it) [default: its title].")
@click.option("--interval", metavar="DURATION", help="Its own polling interval, e.g. 15m.")
@click.option("--tag", "tags", multiple=True, help="A tag for it (repeatable).")
@click.option("--all", "take_all", is_flag=True, help="Add every feed found, not one.")
@click.option(
    "--sitemaps",
    is_flag=True,
    help="Add the site's sitemaps instead (robots.txt's Sitemap: lines, else /sitemap.xml ...).",
)
@click.option(
    "--since",
    metavar="DATE",
    help="Sitemaps: fetch no URL dated before this (2025-01-01) [default: 2 days back].",
)
@click.pass_obj
def add(
    obj: Context,
    url: str,
    name: str | None,
    interval: str | None,
    tags: tuple[str, ...],
    take_all: bool,
    sitemaps: bool,
    since: str | None,
) -> None:
    """Add a feed to the config: URL is the feed, or any page of a site whose feeds are
    found (its <link rel="alternate">, else /feed, /rss.xml, /atom.xml, ...).

    Several found: a prompt chooses one (or --all); without a terminal they are listed, to
    add by their URL. With --sitemaps, the site's sitemaps are found instead and added as
    type = "sitemap" (a news sitemap lists far more articles than a feed).

    \b
    Example:
      ingest feeds add https://example.org/ --name Example --interval 30m --tag news
      ingest feeds add https://example.org/ --sitemaps --since 2025-01-01
    """
    from pydantic import ValidationError

    from ingest.config import FeedSettings, parse_duration
    from ingest.configedit import ConfigFile
    from ingest.discovery import discover
    from ingest.subscriptions import NewFeed, archive_if_any, config_in_use, feed_label, find

    with cli_output.errors():
        if urlsplit(url).scheme.lower() not in {"http", "https"}:
            raise UsageError(f"{url!r} is not an http:// or https:// URL")
        if interval is not None:
            try:
                parse_duration(interval)
            except ValueError as exc:
                raise UsageError(f"--interval: {exc}") from None
        if since is not None:
            try:
                FeedSettings(url=url, type="sitemap", since=since)
            except ValidationError:
                raise UsageError(f"--since: {since!r} is not a date like 2025-01-01") from None
        settings = obj.settings()
        config = ConfigFile(config_in_use(settings))
        index = None if sitemaps else find(config, url)
        if index is not None:
            raise UsageError(
                f"{url} is already in {config.path} as {feed_label(config.feeds[index])!r}"
            )
        try:
            with archive_if_any(settings) as archive:
                found = asyncio.run(
                    discover(url, settings.fetch, archive=archive, sitemaps=sitemaps)
                )
        except FetchError as exc:
            raise IngestError(f"cannot add {url}: {exc.args[0]}") from None
        _say_rejected(found)
        if sitemaps and not found.candidates:
            from ingest.discovery import SITEMAP_PATHS

            raise IngestError(
                f"no sitemap found for {url}: its robots.txt names none that works (Sitemap: "
                f"lines), and none of {', '.join(SITEMAP_PATHS)} is one; add the sitemap's "
                "own URL"
            )
        chosen = _choose(found, config, take_all=take_all)
        if name and len(chosen) > 1:
            raise UsageError("--name names one feed: add the feeds one at a time to name them")
        new = [
            NewFeed(
                c.url,
                name or c.title,
                bool(name),
                interval,
                tags,
                type="sitemap" if "sitemap" in c.kind else "feed",
                since=since if "sitemap" in c.kind else None,
            )
            for c in chosen
        ]
        if since is not None and not any(feed.type == "sitemap" for feed in new):
            raise UsageError("--since bounds what a sitemap backfills: this is no sitemap")
        _apply(obj, config, new, what=f"from {url}" if found.candidates[0].found != "url" else "")


@feeds.command()
@click.argument("ref", metavar="NAME|URL")
@click.pass_obj
def remove(obj: Context, ref: str) -> None:
    """Remove a feed from the config: it is no longer polled; its articles stay in the
    archive (and its row, listed as "not in config").

    \b
    Example:
      ingest feeds remove "BBC World"
    """
    from ingest.configedit import ConfigFile
    from ingest.subscriptions import config_in_use, feed_label, remove_feed

    with cli_output.errors():
        config = ConfigFile(config_in_use(obj.settings()))
        table = remove_feed(config, ref)
    click.echo(
        f"Removed {feed_label(table)!r} ({table['url']}) from {config.path}; its articles stay "
        "in the archive."
    )
    _sync(obj)


@feeds.command(name="import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--tag", "tags", multiple=True, help="A tag for every feed imported (repeatable).")
@click.pass_obj
def import_(obj: Context, file: Path, tags: tuple[str, ...]) -> None:
    """Add the feeds of an OPML file (another reader's export) to the config: folders and
    categories become tags; feeds already in the config are skipped.

    \b
    Example:
      ingest feeds import feedly.opml --tag imported
    """
    from ingest.configedit import ConfigFile
    from ingest.opml import MAX_OPML_BYTES, check_size, read_opml
    from ingest.subscriptions import config_in_use, from_opml

    with cli_output.errors():
        config = ConfigFile(config_in_use(obj.settings()))
        try:
            with file.open("rb") as fh:
                check_size(os.fstat(fh.fileno()).st_size, source=str(file))
                data = fh.read(MAX_OPML_BYTES + 1)  # a pipe or a device: enough to tell
        except OSError as exc:
            raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
        notes: list[str] = []
        found = read_opml(data, source=str(file), notes=notes)
        for note in notes:  # what was read leniently, or passed over
            click.echo(f"ingest: note: {note}", err=True)
        _apply(obj, config, from_opml(found, tags), what=f"from {file}")


@feeds.command()
@click.option("--format", "fmt", type=click.Choice(["opml", "toml"]), default="opml")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.pass_obj
def export(obj: Context, fmt: str, out: Path | None) -> None:
    """Write the config's feeds as OPML 2.0 (for another reader: tags as folders) or as
    [[feeds]] tables.

    \b
    Example:
      ingest feeds export --out subscriptions.opml
    """
    from ingest.cli_read import write_file
    from ingest.configedit import ConfigFile
    from ingest.opml import write_opml
    from ingest.records import utcnow
    from ingest.subscriptions import archived_feeds, config_in_use, to_opml, to_toml

    with cli_output.errors():
        if out is not None and not out.parent.is_dir():
            raise UsageError(f"--out {out}: there is no folder {out.parent}; create it first")
        settings = obj.settings()
        config = ConfigFile(config_in_use(settings))
        count = len(config.feeds)
        if fmt == "toml":
            text = to_toml(config)
        else:
            # A sitemap is no feed: another reader would subscribe to it and fail.
            feeds = [f for f in settings.feeds if f.type == "feed"]
            if len(feeds) < len(settings.feeds):
                left_out = cli_output.plural(len(settings.feeds) - len(feeds), "sitemap")
                click.echo(
                    f"ingest: note: {left_out} left out: OPML lists feeds (--format toml "
                    "keeps them)",
                    err=True,
                )
            count = len(feeds)
            subscriptions = to_opml(feeds, archived_feeds(settings))
            text = write_opml(subscriptions, title=OPML_TITLE, created=utcnow()).decode()
        if out is None:
            click.echo(text, nl=False)
            return
        write_file(out, lambda fh: fh.write(text))
    click.echo(f"Exported {cli_output.plural(count, 'feed')} to {out}.", err=True)


def _choose(found: Discovery, config: ConfigFile, *, take_all: bool) -> list[Candidate]:
    """The candidates to add: the only one, all (--all), or the one chosen at a prompt."""
    from ingest.subscriptions import find

    candidates = found.candidates
    if not candidates:
        from ingest.discovery import WELL_KNOWN

        raise IngestError(
            f"no feed found at {found.url}: it links to none that works "
            f'(<link rel="alternate">), and none of {", ".join(WELL_KNOWN)} is one; '
            "add the feed's own URL"
        )
    if len(candidates) == 1 or take_all:
        return candidates
    click.echo(f"Feeds found at {found.url}:")
    fresh = [c for c in candidates if find(config, c.url) is None]
    for number, candidate in enumerate(candidates, 1):
        there = "" if candidate in fresh else " (already in the config)"
        title = candidate.title or "(no title)"
        click.echo(f"  {number}. {title} [{candidate.kind}]{there}\n     {candidate.url}")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            f"{len(candidates)} feeds found: add one with `ingest feeds add` and its URL, "
            "or all of them with --all"
        )
    default = candidates.index(fresh[0]) + 1 if fresh else 1
    number = click.prompt("Add which one", type=click.IntRange(1, len(candidates)), default=default)
    return [candidates[number - 1]]


def _apply(obj: Context, config: ConfigFile, new: list[NewFeed], *, what: str) -> None:
    """Add ``new`` to the config file, say what was added and skipped, sync the archive."""
    from ingest.subscriptions import add_feeds

    with cli_output.errors():
        changes = add_feeds(config, new)
        for url, label in changes.skipped:
            click.echo(f"  skipped {url}: already in the config as {label!r}", err=True)
        if not changes.added:
            raise UsageError(
                f"nothing added{f' {what}' if what else ''}: every feed is already in {config.path}"
            )
    source = f" {what}" if what else ""
    click.echo(
        f"Added {cli_output.plural(len(changes.added), 'feed')}{source} to {config.path}"
        + (f" ({len(changes.skipped)} already there)" if changes.skipped else "")
        + ":"
    )
    for table in changes.added:
        tags = f" [{', '.join(table['tags'])}]" if table.get("tags") else ""
        click.echo(f"  {table.get('name') or '(no name)'}{tags}: {table['url']}")
    _sync(obj)


def _sync(obj: Context) -> None:
    from ingest.subscriptions import sync_archive

    with cli_output.errors():
        why = sync_archive(obj.settings())
    if why is not None:
        click.echo(
            f"ingest: note: the archive's feeds list is not updated yet ({why}); the next "
            "`ingest fetch`, or a running daemon, brings it in step",
            err=True,
        )


def _say_rejected(found: Discovery) -> None:
    for url, why in found.rejected:
        click.echo(f"  passed over {url}: {why}", err=True)
