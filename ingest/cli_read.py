"""The read side's commands: `search`, `show`, `export`, `stats`, and the filters they
share with `reextract` (`ingest feeds` is `ingest.cli_feeds`'s). Written as every command of
`ingest.cli`: arguments in, one library call on the archive opened read-only, the result
printed (`ingest.cli_output`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ingest import cli_output
from ingest.errors import IngestError, UsageError

if TYPE_CHECKING:
    from ingest.cli_context import Context
    from ingest.search import Filters

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


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


def filter_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--feed", help="Only articles listed by this feed (name or URL)."),
            click.option("--tag", help="Only articles listed by a feed with this tag."),
            click.option("--since", type=Moment(), help="Published on or after this date."),
            click.option("--until", type=Moment(), help="Published before this date."),
            click.option("--author", help="Only articles with an author matching this."),
            click.option("--lang", help="Only articles in this language (e.g. en)."),
        ]
    ):
        func = option(func)
    return func


def to_filters(
    feed: str | None,
    since: datetime | None,
    until: datetime | None,
    author: str | None = None,
    lang: str | None = None,
    tag: str | None = None,
) -> Filters:
    from ingest.search import Filters

    return Filters(feed=feed, tag=tag, since=since, until=until, author=author, language=lang)


@click.command()
@click.argument("query")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--collapse",
    is_flag=True,
    help="One article a story: the earliest of its copies on several sites, with their count.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "jsonl", "csv"]), default="table"
)
@click.pass_obj
def search(obj: Context, query: str, limit: int, collapse: bool, fmt: str, **filters: Any) -> None:
    """Full-text search of titles and texts, best match first.

    QUERY: words (all must match), "a phrase", OR, -word (or NOT word) to exclude, prefix*,
    title:word, (grouping). COVID-19, U.S. or don't are searched as typed.

    \b
    Example:
      ingest search '"climate summit" OR cop29' --since 2025-01-01 --lang en
      ingest search 'kosovo' --collapse
    """
    from ingest.query import hit_record, write_records

    with cli_output.errors(), obj.store(read_only=True) as store:
        find = store.search_stories if collapse else store.search
        hits = find(query, to_filters(**filters), limit=limit)
    if fmt != "table":
        write_records((hit_record(h) for h in hits), fmt, sys.stdout)
    elif not hits:
        click.echo("No matches.", err=True)
    else:
        cli_output.print_hits(hits)


@click.command()
@click.argument("ref", metavar="ID|URL")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def show(obj: Context, ref: str, fmt: str) -> None:
    """Show one article by its id or URL: its metadata, every feed that listed it, its copies
    (the same story on other sites), its text.

    \b
    Example:
      ingest show 42 --format json
    """
    from ingest.query import copy_record, record, render_text, with_feeds

    with cli_output.errors(), obj.store(read_only=True) as store:
        ((article, feed_urls),) = with_feeds(store, [store.article(ref)])
        copies = store.copies(article)
    if fmt == "json":
        data = {**record(article, feed_urls), "copies": [copy_record(*c) for c in copies]}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(article, feed_urls, copies), nl=False)


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv", "json", "warc"]), default="jsonl"
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not stdout."
)
@click.option(
    "--versions",
    "with_versions",
    is_flag=True,
    help="JSON: each article's versions too (every state with its text, once its page changed).",
)
@filter_options
@click.pass_obj
def export(obj: Context, fmt: str, out: Path | None, with_versions: bool, **filters: Any) -> None:
    """Stream the archive as JSON lines or CSV, oldest first; or its kept pages as a WARC.

    --format warc writes a WARC 1.1 file (--out, gzipped unless it ends in .warc): for every
    kept page of each article, its request, response, clean text and record.

    \b
    Example:
      ingest export --format csv --since 2025-01-01 --out archive.csv
      ingest export --versions --out archive.jsonl
      ingest export --format warc --feed World --out world.warc.gz
    """
    from ingest.query import export_records, write_records

    with cli_output.errors():
        if with_versions and fmt in ("csv", "warc"):
            # A WARC holds every version's capture anyway.
            raise UsageError("--versions needs --format jsonl or json (a version is a record)")
        if out is not None and not out.parent.is_dir():
            raise UsageError(
                f"--out {out}: there is no folder {out.parent}; create it first "
                f"(mkdir -p {out.parent}) or write elsewhere"
            )
        if fmt == "warc":
            if out is None:
                raise UsageError("--format warc writes a file: give --out FILE.warc.gz")
            _export_warc(obj, out, to_filters(**filters))
            return
        with obj.store(read_only=True) as store:
            records = export_records(store, to_filters(**filters), versions=with_versions)
            if out is None:
                write_records(records, fmt, sys.stdout)
                return
            count = write_file(out, lambda fh: write_records(records, fmt, fh))
    click.echo(f"Exported {cli_output.plural(count, 'article')} to {out}.", err=True)


def _export_warc(obj: Context, out: Path, filters: Filters) -> None:
    from ingest.warcexport import export_warc

    with obj.store(read_only=True) as store:
        done = write_file(
            out,
            lambda fh: export_warc(
                store, filters, fh, filename=out.name, gzip=not out.name.endswith(".warc")
            ),
            binary=True,
        )
    click.echo(
        f"Exported {cli_output.plural(done.captures, 'capture')} of "
        f"{cli_output.plural(done.articles - done.without_capture, 'article')} to {out}.",
        err=True,
    )
    if done.without_capture:
        click.echo(
            f"ingest: note: {cli_output.plural(done.without_capture, 'article')} selected had "
            "no kept page (pending, failed, a feed's own entry, or fetched with "
            "extract.keep_raw off): not in the WARC; `ingest export --format jsonl` has them",
            err=True,
        )


def write_file(out: Path, write: Callable[[Any], R], *, binary: bool = False) -> R:
    """``write`` into a file beside ``out`` renamed to it when done: never a half-written file
    under the asked name (a failed write leaves nothing)."""
    partial = out.with_name(out.name + ".partial")
    try:
        with (
            partial.open("wb") if binary else partial.open("w", encoding="utf-8", newline="")
        ) as fh:
            result = write(fh)
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise IngestError(f"cannot write {out}: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def stats(obj: Context, fmt: str) -> None:
    """Archive counts, failures by reason, recent activity, and what the archive takes
    (bytes, per article, the raw captures' share).

    \b
    Example:
      ingest stats --format json
    """
    from ingest.records import utcnow

    with cli_output.errors(), obj.store(read_only=True) as store:
        data = store.stats(utcnow()) | {"storage": store.storage()}
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        cli_output.print_stats(data)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
