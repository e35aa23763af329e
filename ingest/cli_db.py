"""`ingest db`: the archive database itself: its schema, its search index, copies elsewhere.

Commands of the `ingest.cli` group, written the same way: arguments in, one library call,
the result printed (`ingest.cli_output`).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from ingest.cli_output import copy_progress, errors, plural, print_copy, size

if TYPE_CHECKING:
    from ingest.cli_context import Context


@click.group()
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
    with errors(), obj.store(migrate=False) as store:
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

    with errors():
        url = obj.settings().database.url
        try:
            with copy_progress(sys.stderr.isatty()) as report:
                result = copy_archive(url, to, batch_size=batch_size, progress=report)
        except KeyboardInterrupt:
            click.echo("ingest: interrupted; run the same command again to resume", err=True)
            sys.exit(130)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print_copy(result)
    if result.mismatched:
        differing = ", ".join(
            f"{t.table} (source {t.source}, destination {t.destination})" for t in result.mismatched
        )
        click.echo(f"ingest: error: row counts differ after the copy: {differing}", err=True)
        sys.exit(1)


@db.command()
@click.option("--batch-size", type=click.IntRange(min=1), default=500, hidden=True)
@click.pass_obj
def stories(obj: Context, batch_size: int) -> None:
    """Link the articles archived before stories were (revision 0017) to their stories.

    Each stored article's text is fingerprinted and linked to the story of the copy it
    matches (the same story on another site), oldest first, a batch at a time: interrupted,
    the same command resumes. New articles are linked as they are stored.

    \b
    Example:
      ingest db stories
    """
    with errors(), obj.store() as store:
        done = None
        try:
            for done in store.link_stories(batch=batch_size):
                if sys.stderr.isatty():
                    click.echo(f"\r{plural(done.checked, 'article')} linked", nl=False, err=True)
        except KeyboardInterrupt:
            click.echo("\ningest: interrupted; run the same command again to resume", err=True)
            sys.exit(130)
    if sys.stderr.isatty() and done:
        click.echo(err=True)
    if done is None:
        click.echo("Every article has its story already.")
        return
    click.echo(
        f"Linked {plural(done.checked, 'article')}: {plural(done.copies, 'copy', 'copies')} of "
        f"a story seen before, {done.too_short} too short to tell."
    )


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
    with errors(), obj.store() as store:
        steps = store.merge_search_index()
    merged = f"Search index merged in {plural(steps, 'step')}."
    click.echo(merged if steps else "Nothing to merge.")


@db.command("pack-captures")
@click.option(
    "--level",
    type=click.IntRange(1, 22),
    default=6,
    show_default=True,
    help="zstd level for the pages kept as they came (19: a tenth smaller, 30x the CPU).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=200, hidden=True)
@click.pass_obj
def pack_captures(obj: Context, level: int, batch_size: int) -> None:
    """Store the archive's raw pages as small as it can, when it has the time.

    Captures made before revision 0015 each hold their page inline (zlib): their bodies move
    into the shared bodies (a page shared by several articles kept once). Pages kept as they
    came from the server (gzip, stored without compressing them again, as fetches do) are
    recompressed with zstd at --level where that is smaller. A batch per transaction; safe
    beside a running daemon; interrupted, the same command carries on. SQLite reuses the
    space freed for new pages (VACUUM returns it to the disk).

    \b
    Example:
      ingest db pack-captures
      ingest db pack-captures --level 19
    """
    with errors(), obj.store() as store:
        try:
            done = store.pack_captures(batch=batch_size)
            again = store.recompress_bodies(level=level, batch=batch_size)
        except KeyboardInterrupt:
            click.echo("ingest: interrupted; run the same command again to carry on", err=True)
            sys.exit(130)
    click.echo(
        f"Packed {plural(done.captures, 'capture')} into "
        f"{plural(done.bodies, 'new body', 'new bodies')}: "
        f"{size(done.bytes_before)} inline -> {size(done.bytes_after)}."
    )
    click.echo(
        f"Recompressed {plural(again.bodies, 'body', 'bodies')} kept as they came "
        f"(zstd level {level}): {size(again.bytes_before)} -> {size(again.bytes_after)}."
    )
    for why in (*done.damaged.values(), *again.damaged.values()):
        click.echo(f"ingest: error: {why}; left as it was", err=True)
    if done.damaged or again.damaged:
        sys.exit(1)
