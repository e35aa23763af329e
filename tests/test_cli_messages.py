"""What the real `ingest` CLI says when things go wrong, or are interrupted, and how it prints
what went right: one line and an exit status instead of a traceback, the next step named.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Ingest, write_config
from tests.newsroom import Newsroom


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ingest: error: ")
    return lines[0]


# --- errors: one line, never a traceback ---------------------------------------------------------


def test_export_into_a_folder_that_does_not_exist(ingest: Ingest) -> None:
    ingest("fetch", "--feed", "Notices")
    out = ingest.cwd / "no" / "such" / "folder" / "archive.jsonl"

    line = one_line(ingest("export", "--out", str(out), check=False), 2)

    assert str(out.parent) in line
    assert "mkdir -p" in line  # what to do next
    assert not out.parent.exists()


@pytest.mark.parametrize("kind", ["not sqlite", "a folder"])
def test_db_upgrade_on_a_file_that_is_not_an_archive(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "archive.sqlite3"
    if kind == "not sqlite":
        target.write_text("these are my notes, not a database\n" * 100)
    else:
        target.mkdir()  # cannot be read as a file
    cli = Ingest(tmp_path)

    upgrade = one_line(cli("--database", f"sqlite:///{target}", "db", "upgrade", check=False), 1)
    stats = one_line(cli("--database", f"sqlite:///{target}", "stats", check=False), 1)

    assert str(target) in upgrade
    assert "--database" in upgrade  # where to look
    if kind == "not sqlite":
        assert "file is not a database" in upgrade
        assert "file is not a database" in stats  # as every other command says


# --- no config file --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["fetch"], ["daemon"], ["stats"], ["search", "harbour"]])
def test_no_config_file_says_where_it_was_looked_for(tmp_path: Path, command: list[str]) -> None:
    # Nothing to poll is a config error; for the read side, the archive is missing.
    status = 2 if command[0] in {"fetch", "daemon"} else 1
    line = one_line(Ingest(tmp_path)(*command, check=False), status)

    assert str(tmp_path / "config" / "ingest.toml") in line
    assert "--config" in line and "INGEST_CONFIG" in line


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_during_fetch_says_what_is_pending_and_the_next_run_resumes_it(
    ingest: Ingest, newsroom: Newsroom
) -> None:
    slow = "/news/nbc-style.html"
    newsroom.delay(slow, 60)
    assert ingest.config is not None
    command = [sys.executable, "-m", "ingest", "--config", str(ingest.config), "fetch"]
    # A session of its own: Ctrl-C signals the whole foreground group, workers included.
    process = subprocess.Popen(
        command,
        cwd=ingest.cwd,
        env=ingest.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not newsroom.requests_for(slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert newsroom.requests_for(slow), "the slow page was never asked for"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 130
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    pending = re.search(r"(\d+) pages? pending", line)
    assert pending and int(pending.group(1)) >= 1, line
    assert "next `ingest fetch`" in line and "resumes" in line
    assert stdout == ""

    newsroom.delay(slow, 0)
    summary = ingest.json("fetch", "--feed", "World", "--format", "json")
    assert summary["articles_new"] >= 1
    record = ingest.json("show", newsroom.url(slow), "--format", "json")
    assert record["status"] == "ok"
    assert ingest.json("stats", "--format", "json")["articles"]["pending"] == 0


# --- a feed URL not in the config --------------------------------------------------------------


def test_fetch_of_a_feed_url_not_in_the_config_polls_it_once_and_does_not_follow_it(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    config = write_config(tmp_path / "c.toml", newsroom, ["World"], database=archive)
    cli = Ingest(tmp_path, config)
    url = newsroom.url("/feeds/nolink.rss")

    result = cli("fetch", "--feed", url)

    assert "Stored 2 new articles" in result.stdout
    assert f"{url} is not in the config: polled this once, not followed" in result.stderr
    assert "[[feeds]]" in result.stderr  # how to follow it instead
    feeds = {f["url"]: f for f in cli.json("feeds", "--format", "json")}
    assert feeds[url]["active"] is False  # no daemon polls it
    cli.env["COLUMNS"] = "200"
    assert "nolink.rss (not in config)" in cli("feeds").stdout
    assert cli.json("stats", "--format", "json")["feeds"]["active"] == 0  # World: never synced
    # A run of the configured feeds leaves it alone, and its articles stay.
    newsroom.clear_log()
    cli("fetch")
    assert newsroom.requests_for("/feeds/nolink.rss") == []
    assert len(cli.jsonl("export")) >= 2


# --- output for people -------------------------------------------------------------------------


def test_one_feed_is_one_feed(tmp_path: Path, newsroom: Newsroom, archive: Path) -> None:
    config = write_config(tmp_path / "c.toml", newsroom, ["Notices"], database=archive)

    out = Ingest(tmp_path, config)("fetch").stdout

    assert out.startswith("Polled 1 feed (0 not modified, 0 failed): 2 entries, 2 new.\n")
    assert "0 pages failed, 0 duplicates" in out


def test_the_feeds_table_fits_80_columns(ingest: Ingest) -> None:
    ingest("fetch")
    ingest.env["COLUMNS"] = "80"

    table = ingest("feeds").stdout.splitlines()

    assert max(len(line) for line in table) <= 80
    rows = [line for line in table if re.match(r"│ \d+ ", line)]
    assert len(rows) == 6
    for row in rows:  # every time on its row's first line: none wrapped
        assert re.search(r"│ \d+[smhd]\S* ago +│ (in \S+|due) +│", row), row


def test_stats_prints_times_to_the_second(ingest: Ingest) -> None:
    ingest("fetch", "--feed", "Notices")

    out = ingest("stats").stdout

    assert re.search(r"last poll \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", out), out


def test_show_lists_every_feed_of_an_article(ingest: Ingest, newsroom: Newsroom) -> None:
    ingest("fetch", "--feed", "World", "--feed", "Wire")
    danube = newsroom.url("/world/danube-grain.html")

    text = ingest("show", danube).stdout
    record = ingest.json("show", danube, "--format", "json")

    both = {newsroom.url("/feeds/world.rss"), newsroom.url("/feeds/wire.rdf")}
    first, second = record["feed_urls"]
    assert {first, second} == both
    assert record["feed_url"] == first  # the feed that listed it first (the two raced)
    assert f"Feeds:     {first}\n           {second}\n" in text
    exported = next(r for r in ingest.jsonl("export") if r["id"] == record["id"])
    assert exported["feed_urls"] == [first, second]


def test_the_articles_url_is_clean_where_shown_and_as_given_where_it_is_data(
    ingest: Ingest, newsroom: Newsroom
) -> None:
    ingest("fetch", "--feed", "World")  # World links the Danube story with utm_ parameters

    (hit,) = ingest.json("search", "Danube", "--format", "json")
    text = ingest("show", str(hit["id"])).stdout
    exported = next(r for r in ingest.jsonl("export") if r["id"] == hit["id"])

    clean = newsroom.url("/world/danube-grain.html")
    assert hit["url"] == clean
    assert f"URL:       {clean}\n" in text
    assert "utm_" in exported["url"]  # the feed's link, as the archive keeps it
    assert exported["final_url"] == exported["url"]  # fetched as given


def test_the_cli_module_stays_thin() -> None:
    for name in ("cli.py", "cli_output.py", "cli_db.py", "cli_read.py"):
        assert len((REPO / "ingest" / name).read_text().splitlines()) < 500, name
