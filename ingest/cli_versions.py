"""`ingest history` and `ingest diff`: what an article said each time its page changed.

Written as every read command: arguments in, one read of the archive opened read-only, the
result printed (the records are `ingest.query`'s, which the HTTP API serves as well).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ingest import cli_output

if TYPE_CHECKING:
    from ingest.cli_context import Context


@click.command()
@click.argument("ref", metavar="ID|URL")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def history(obj: Context, ref: str, fmt: str) -> None:
    """List an article's versions: each state its page was seen in, oldest first, with the
    characters added and removed against the one before.

    \b
    Example:
      ingest history 42
      ingest history https://example.org/news/story.html --format json
    """
    from ingest.query import history_record

    with cli_output.errors(), obj.store(read_only=True) as store:
        article, _ = store.article(ref)
        data = history_record(article, store.versions(article.id or 0))
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_history(data)


def _print_history(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    versions = data["versions"]
    click.echo(data["title"] or "(untitled)")
    status = [f"{cli_output.plural(len(versions), 'version')}", str(data["url"] or "")]
    if data["removed_at"]:
        status.append(f"page gone since {data['removed_at']}")
    elif data["next_check_at"]:
        status.append(f"next looked at {data['next_check_at']}")
    click.echo(" · ".join(s for s in status if s))
    table = Table()
    for column, justify in (("#", "right"), ("fetched", "left"), ("+chars", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("-chars", justify="right", no_wrap=True)
    table.add_column("why", no_wrap=True)
    table.add_column("title", overflow="fold")
    for v in versions:
        table.add_row(
            str(v["number"]),
            (v["fetched_at"] or "")[:16].replace("T", " "),
            str(v["chars_added"]),
            str(v["chars_removed"]),
            v["reason"],
            v["title"] or "",
        )
    Console().print(table)


@click.command()
@click.argument("ref", metavar="ID|URL")
@click.argument("first", type=click.IntRange(min=1), required=False)
@click.argument("second", type=click.IntRange(min=1), required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="The whole text, not only the changed paragraphs.")
@click.pass_obj
def diff(
    obj: Context, ref: str, first: int | None, second: int | None, fmt: str, full: bool
) -> None:
    """Show what changed between two versions of an article, word by word: [-removed-] and
    {+added+} (in colour on a terminal). Without version numbers, its last change.

    \b
    Example:
      ingest diff 42            # the last change
      ingest diff 42 1 3 --full
    """
    from ingest.query import diff_record, pick_versions

    with cli_output.errors(), obj.store(read_only=True) as store:
        article, _ = store.article(ref)
        old, new = pick_versions(store.versions(article.id or 0), first, second)
        data = diff_record(article, old, new)
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_diff(data, full=full, colour=sys.stdout.isatty())


def _print_diff(data: dict[str, Any], *, full: bool, colour: bool) -> None:
    from ingest.changes import Piece, by_line, changed_paragraphs

    def mark(piece: Piece) -> str:
        if piece.op == "equal":
            return piece.text
        if colour:
            fg = "red" if piece.op == "delete" else "green"
            return click.style(piece.text, fg=fg, strikethrough=piece.op == "delete")
        return f"[-{piece.text}-]" if piece.op == "delete" else f"{{+{piece.text}+}}"

    old, new = data["from"], data["to"]
    click.echo(
        f"version {old['number']} ({old['fetched_at']}) -> version {new['number']} "
        f"({new['fetched_at']}): +{data['chars_added']} -{data['chars_removed']} characters"
    )
    title = data["title"]
    if title["from"] != title["to"]:
        click.echo(f"Title: {mark(Piece('delete', title['from'] or ''))} ", nl=False)
        click.echo(mark(Piece("insert", title["to"] or "")))
    click.echo()
    pieces = [Piece(p["op"], p["text"]) for p in data["pieces"]]
    if full:
        click.echo("".join(mark(part) for p in pieces for part in by_line(p)))
        return
    shown = False
    for paragraph in changed_paragraphs(pieces):
        shown = True
        click.echo("…" if paragraph is None else "".join(mark(p) for p in paragraph).strip())
        click.echo()
    if not shown:
        click.echo("(the text is the same)")
