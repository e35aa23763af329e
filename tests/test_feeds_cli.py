"""`ingest feeds add`, `remove`, `import` and `export`, as users run them: the real CLI against
the loopback newsroom, on config files written as people write them (comments, blank lines)
that must keep every byte the edit did not touch, and on a real archive."""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FEEDS, Ingest
from tests.newsroom import SITE_DIR, Newsroom
from tests.test_opml import EXPECTED, HOSTILE, OPML_DIR

HOME = """<!DOCTYPE html><html><head><title>Newsdesk</title>
<base href="/feeds/">
<link rel="stylesheet" href="site.css">
<link rel="alternate" type="application/rss+xml" title="World (RSS)" href="world.rss">
<link rel="alternate" type="application/atom+xml" title="Tech" href="tech.atom">
<link rel="alternate" hreflang="fr" type="text/html" href="/fr/">
<link rel="alternate" type="application/json" href="/wp-json/">
</head><body><p>The front page.</p></body></html>"""
PLAIN_PAGE = (
    "<!DOCTYPE html><html><head><title>About</title></head><body>No feeds here.</body></html>"
)


def commented_config(path: Path, room: Newsroom, database: str) -> Path:
    """A config as a person keeps it: comments everywhere, a section after the feeds."""
    path.write_text(
        f"""# Feeds for the newsroom.
# Keep this comment.

[database]
url = "{database}"   # the archive

[fetch]
allow_private_networks = true
host_delay = 0   # one loopback host serves every page

# --- feeds -----------------------------------------------------------

# The world desk.
[[feeds]]
name = "World"
url = "{room.url(FEEDS["World"])}"
tags = ["news", "world"]   # front page

# Notices have no links.
[[feeds]]
name  = "Notices"
url   = "{room.url(FEEDS["Notices"])}"

# Polling, after the feeds.
[schedule]
interval = "30m"
""",
        encoding="utf-8",
    )
    return path


def bare_config(path: Path, database: str) -> Path:
    path.write_text(
        f'[database]\nurl = "{database}"\n[fetch]\nallow_private_networks = true\nhost_delay = 0\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli(tmp_path: Path, newsroom: Newsroom, archive: Path) -> Ingest:
    return Ingest(
        tmp_path, commented_config(tmp_path / "ingest.toml", newsroom, f"sqlite:///{archive}")
    )


@pytest.fixture
def bare(tmp_path: Path, archive: Path) -> Ingest:
    return Ingest(tmp_path, bare_config(tmp_path / "ingest.toml", f"sqlite:///{archive}"))


def feeds_of(cli: Ingest) -> list[dict[str, Any]]:
    assert cli.config is not None
    return tomllib.loads(cli.config.read_text(encoding="utf-8")).get("feeds", [])


# --- add: a feed, or a site's feeds ---------------------------------------------------------


def test_a_feed_url_is_added_after_the_last_feed_and_nothing_else_moves(
    cli: Ingest, newsroom: Newsroom
) -> None:
    assert cli.config is not None
    before = cli.config.read_text()
    url = newsroom.url(FEEDS["Tech"])

    result = cli(
        "feeds",
        "add",
        url,
        "--name",
        "Tech",
        "--interval",
        "15m",
        "--tag",
        "tech",
        "--tag",
        "gadgets",
    )

    assert f"Added 1 feed to {cli.config}" in result.stdout
    notices = f'url   = "{newsroom.url(FEEDS["Notices"])}"\n'
    table = (
        f'\n[[feeds]]\nname = "Tech"\nurl = "{url}"\ninterval = "15m"\ntags = ["tech", "gadgets"]\n'
    )
    assert cli.config.read_text() == before.replace(notices, notices + table)
    assert cli.config.read_text().endswith(
        'tags = ["tech", "gadgets"]\n\n# Polling, after the feeds.\n[schedule]\ninterval = "30m"\n'
    )


def test_without_a_name_the_feed_is_named_by_its_title(bare: Ingest, newsroom: Newsroom) -> None:
    bare("feeds", "add", newsroom.url(FEEDS["Wire"]))

    assert feeds_of(bare) == [
        {"name": "Meridian Wire: Partner Syndication", "url": newsroom.url(FEEDS["Wire"])}
    ]


def test_a_site_page_lists_its_feeds_and_all_are_added_with_all(
    bare: Ingest, newsroom: Newsroom
) -> None:
    newsroom.set("/", HOME)
    newsroom.set(
        "/wp-json/", '{"name": "an API, not a feed"}', headers={"Content-Type": "application/json"}
    )

    listed = bare("feeds", "add", newsroom.url("/"), check=False)
    added = bare("feeds", "add", newsroom.url("/"), "--all", "--tag", "desk")

    # No terminal to ask at: the candidates, with their titles, and how to choose.
    assert listed.returncode == 2
    assert "Newsdesk Digest: World [RSS]" in listed.stdout
    assert "Circuit Notes [Atom]" in listed.stdout
    assert newsroom.url("/feeds/world.rss") in listed.stdout  # hrefs resolved against <base>
    assert "--all" in listed.stderr
    assert "wp-json" not in listed.stdout + listed.stderr  # an API's JSON is no candidate
    assert "Added 2 feeds from" in added.stdout
    assert feeds_of(bare) == [
        {
            "name": "Newsdesk Digest: World",
            "url": newsroom.url("/feeds/world.rss"),
            "tags": ["desk"],
        },
        {"name": "Circuit Notes", "url": newsroom.url("/feeds/tech.atom"), "tags": ["desk"]},
    ]


def test_a_json_feed_found_by_its_link_type_is_a_candidate(
    bare: Ingest, newsroom: Newsroom
) -> None:
    newsroom.set(
        "/",
        '<html><head><link rel="alternate" type="application/feed+json" title="Desk" '
        'href="/feed.json"></head><body></body></html>',
    )
    newsroom.set(
        "/feed.json",
        '{"version": "https://jsonfeed.org/version/1.1", "title": "JSON Desk", "items": []}',
        headers={"Content-Type": "application/feed+json"},
    )

    result = bare("feeds", "add", newsroom.url("/"))

    assert "JSON Desk" in result.stdout
    assert feeds_of(bare) == [{"name": "JSON Desk", "url": newsroom.url("/feed.json")}]


def test_a_page_without_feed_links_finds_the_sites_feed_at_a_well_known_path(
    bare: Ingest, newsroom: Newsroom
) -> None:
    newsroom.set("/about/", PLAIN_PAGE)
    feed = (SITE_DIR / "feeds" / "world.rss").read_text(encoding="utf-8")
    newsroom.set("/feed", feed, headers={"Content-Type": "application/rss+xml"})

    bare("feeds", "add", newsroom.url("/about/"))

    assert feeds_of(bare) == [{"name": "Newsdesk Digest: World", "url": newsroom.url("/feed")}]
    assert newsroom.requests_for("/robots.txt")  # guessing is ours: robots.txt is asked
    assert newsroom.requests_for("/rss.xml") == []  # the first feed found ends the search


def test_guessed_paths_robots_txt_disallows_are_not_fetched(
    bare: Ingest, newsroom: Newsroom
) -> None:
    newsroom.set("/about/", PLAIN_PAGE)
    newsroom.set(
        "/robots.txt", "User-agent: *\nDisallow: /feed\n", headers={"Content-Type": "text/plain"}
    )
    feed = (SITE_DIR / "feeds" / "tech.atom").read_text(encoding="utf-8")
    newsroom.set("/rss.xml", feed, headers={"Content-Type": "application/atom+xml"})

    bare("feeds", "add", newsroom.url("/about/"))

    assert newsroom.requests_for("/feed") == []
    assert feeds_of(bare) == [{"name": "Circuit Notes", "url": newsroom.url("/rss.xml")}]


def test_a_page_with_no_feed_at_all_is_a_clear_error(bare: Ingest, newsroom: Newsroom) -> None:
    assert bare.config is not None
    before = bare.config.read_bytes()
    newsroom.set("/about/", PLAIN_PAGE)

    result = bare("feeds", "add", newsroom.url("/about/"), check=False)

    assert result.returncode == 1
    assert f"no feed found at {newsroom.url('/about/')}" in result.stderr
    assert "/feed, /rss.xml" in result.stderr
    assert bare.config.read_bytes() == before


def test_an_unreachable_or_private_url_is_refused_through_the_same_guard(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    config = bare_config(tmp_path / "c.toml", f"sqlite:///{archive}")
    config.write_text(
        config.read_text().replace(
            "allow_private_networks = true", "allow_private_networks = false"
        )
    )
    cli = Ingest(tmp_path, config)

    refused = cli("feeds", "add", newsroom.url(FEEDS["World"]), check=False)
    missing = Ingest(tmp_path, bare_config(tmp_path / "d.toml", f"sqlite:///{archive}"))(
        "feeds", "add", newsroom.url("/status/404"), check=False
    )

    assert refused.returncode == 1 and "refused" in refused.stderr
    assert newsroom.requests_for(FEEDS["World"]) == []  # refused before anything was sent
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


# --- what would break the config is refused -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{World}",), "already in"),
        (("{WORLD_VARIANT}",), "already in"),  # the same feed, however its URL is written
        (("{Tech}", "--name", "World"), "already named 'World'"),
        (("{Tech}", "--interval", "soon"), "not a duration"),
        (("{Tech}", "--tag", " "), "not a tag"),
        (("ftp://example.org/feed",), "not an http"),
    ],
)
def test_duplicates_and_bad_values_are_refused_and_the_file_is_untouched(
    cli: Ingest, newsroom: Newsroom, args: tuple[str, ...], message: str
) -> None:
    assert cli.config is not None
    before = cli.config.read_bytes()
    world = newsroom.url(FEEDS["World"])
    urls = {
        "World": world,
        "WORLD_VARIANT": world.replace("http://", "HTTP://") + "?utm_source=newsletter#top",
        "Tech": newsroom.url(FEEDS["Tech"]),
    }

    result = cli("feeds", "add", *(a.format(**urls) for a in args), check=False)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert cli.config.read_bytes() == before


def test_no_config_file_is_an_error_that_says_where_and_creates_nothing(
    tmp_path: Path, newsroom: Newsroom
) -> None:
    cli = Ingest(tmp_path)  # no --config: config/ingest.toml under the working directory

    result = cli("feeds", "add", newsroom.url(FEEDS["World"]), check=False)
    named = Ingest(tmp_path, tmp_path / "missing.toml")("feeds", "remove", "World", check=False)

    assert result.returncode == 2
    assert str(tmp_path / "config" / "ingest.toml") in result.stderr
    assert "touch" in result.stderr and "--config" in result.stderr
    assert not (tmp_path / "config").exists()
    assert named.returncode == 2 and "missing.toml" in named.stderr
    assert not (tmp_path / "missing.toml").exists()


def test_a_config_that_does_not_validate_is_not_edited(tmp_path: Path, newsroom: Newsroom) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text("[fetch]\nallow_private_networks = true\nbogus = 1  # a typo\n")

    result = Ingest(tmp_path, config)("feeds", "add", newsroom.url(FEEDS["World"]), check=False)

    assert result.returncode == 2
    assert "fetch.bogus: unknown key" in result.stderr
    assert config.read_text() == "[fetch]\nallow_private_networks = true\nbogus = 1  # a typo\n"


def test_the_file_keeps_its_mode_and_a_symlink_stays_a_symlink(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    real = bare_config(tmp_path / "real.toml", f"sqlite:///{archive}")
    real.chmod(0o640)
    link = tmp_path / "ingest.toml"
    link.symlink_to(real)

    Ingest(tmp_path, link)("feeds", "add", newsroom.url(FEEDS["Wire"]))

    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert "[[feeds]]" in real.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --- remove ---------------------------------------------------------------------------------


def test_remove_takes_the_feed_and_its_comment_and_keeps_its_articles(
    cli: Ingest, newsroom: Newsroom
) -> None:
    assert cli.config is not None
    cli("fetch")
    before = cli.config.read_text()
    world_articles = cli.jsonl("export", "--feed", "World")
    assert world_articles

    result = cli("feeds", "remove", "World")

    assert "its articles stay" in result.stdout
    world = (
        '# The world desk.\n[[feeds]]\nname = "World"\n'
        f'url = "{newsroom.url(FEEDS["World"])}"\ntags = ["news", "world"]   # front page\n\n'
    )
    assert world in before
    assert cli.config.read_text() == before.replace(world, "")
    # Its articles stay, found as before; it is no longer polled, and listed as such.
    assert cli.jsonl("export", "--feed", "World") == world_articles
    assert cli.json("search", "Danube", "--format", "json")
    feeds = {f["name"]: f for f in cli.json("feeds", "--format", "json")}
    assert feeds["World"]["active"] is False
    newsroom.clear_log()
    cli("fetch")
    assert newsroom.requests_for(FEEDS["World"]) == []
    assert newsroom.requests_for(FEEDS["Notices"])


def test_remove_by_url_and_an_unknown_feed(cli: Ingest, newsroom: Newsroom) -> None:
    missing = cli("feeds", "remove", "Nope", check=False)
    cli("feeds", "remove", newsroom.url(FEEDS["Notices"]) + "?utm_medium=rss")

    assert missing.returncode == 2 and "no feed named 'Nope'" in missing.stderr
    assert "'World', 'Notices'" in missing.stderr
    assert [f["name"] for f in feeds_of(cli)] == ["World"]


# --- OPML -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_reader_exports_import_with_their_folders_as_tags(bare: Ingest, sample: str) -> None:
    result = bare("feeds", "import", str(OPML_DIR / sample), "--tag", "imported")
    again = bare("feeds", "import", str(OPML_DIR / sample), check=False)

    assert f"Added {len(EXPECTED[sample])} feeds from" in result.stdout
    assert {f["url"]: (f.get("name"), tuple(f.get("tags", []))) for f in feeds_of(bare)} == {
        url: (title, (*tags, "imported")) for url, (title, tags) in EXPECTED[sample].items()
    }
    # Imported again: every feed is there already, nothing is added twice.
    assert again.returncode == 2
    assert "already in the config" in again.stderr
    assert len(feeds_of(bare)) == len(EXPECTED[sample])


def test_import_into_a_commented_config_skips_what_is_there_and_keeps_the_rest(
    cli: Ingest, newsroom: Newsroom, tmp_path: Path
) -> None:
    assert cli.config is not None
    before = cli.config.read_text()
    opml = tmp_path / "subs.opml"
    opml.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="Desk"><outline text="World again" xmlUrl="{newsroom.url(FEEDS["World"])}"/>
<outline text="Notices" title="Notices" xmlUrl="{newsroom.url(FEEDS["Wire"])}"/></outline>
</body></opml>"""
    )

    result = cli("feeds", "import", str(opml))

    assert "skipped" in result.stderr and "already in the config as 'World'" in result.stderr
    notices = f'url   = "{newsroom.url(FEEDS["Notices"])}"\n'
    # The name in use is not taken twice.
    table = f'\n[[feeds]]\nname = "Notices (2)"\nurl = "{newsroom.url(FEEDS["Wire"])}"\n'
    assert cli.config.read_text() == before.replace(notices, notices + table + 'tags = ["Desk"]\n')


@pytest.mark.parametrize("case", sorted([*HOSTILE, "50 MB"]))
def test_hostile_opml_changes_nothing(cli: Ingest, tmp_path: Path, case: str) -> None:
    assert cli.config is not None
    before = cli.config.read_bytes()
    opml = tmp_path / "hostile.opml"
    if case == "50 MB":
        with opml.open("wb") as fh:
            fh.write(b'<opml version="2.0"><body>')
            fh.write(b'<outline text="x" xmlUrl="https://a.example/rss"/>' * 1_000_000)
            fh.write(b"</body></opml>")
    else:
        opml.write_bytes(HOSTILE[case][0])

    result = cli("feeds", "import", str(opml), check=False)

    assert result.returncode == 2
    assert result.stderr.startswith(f"ingest: error: {opml}: ")
    if case == "50 MB":
        assert "50,000,040 bytes is too large" in result.stderr
    assert cli.config.read_bytes() == before


def test_opml_round_trip_keeps_every_feed_and_tag(
    tmp_path: Path, bare: Ingest, archive: Path
) -> None:
    for sample in ("feedly.opml", "latin1.opml", "netnewswire.opml"):
        bare("feeds", "import", str(OPML_DIR / sample))
    out = tmp_path / "out" / "subs.opml"
    out.parent.mkdir()

    bare("feeds", "export", "--out", str(out))
    other = Ingest(tmp_path, bare_config(tmp_path / "other.toml", f"sqlite:///{archive}"))
    other("feeds", "import", str(out))

    # Every feed with its name and tags; untagged feeds come last (folders first).
    by_url = sorted(feeds_of(bare), key=lambda f: f["url"])
    assert sorted(feeds_of(other), key=lambda f: f["url"]) == by_url
    assert len(feeds_of(other)) == 9
    assert out.read_text().startswith(
        "<?xml version='1.0' encoding='UTF-8'?>\n<opml version=\"2.0\">"
    )


def test_export_as_toml_gives_the_feeds_tables(cli: Ingest) -> None:
    text = cli("feeds", "export", "--format", "toml").stdout

    assert tomllib.loads(text)["feeds"] == feeds_of(cli)
    assert text.startswith("[[feeds]]\n")


def test_export_gives_each_feeds_site_from_the_archive(cli: Ingest, newsroom: Newsroom) -> None:
    cli("fetch", "--feed", "World")

    text = cli("feeds", "export").stdout

    assert f'htmlUrl="{newsroom.url("/world")}"' in text  # World's <link>, from its last poll
    assert 'text="news" title="news"' in text


def test_export_leaves_sitemaps_out_and_writes_only_what_xml_holds(bare: Ingest) -> None:
    assert bare.config is not None
    with bare.config.open("a", encoding="utf-8") as fh:
        fh.write(
            '[[feeds]]\nname = "Bell\\u0007 Labs"\nurl = "https://bell.example/rss"\n\n'
            '[[feeds]]\nurl = "https://bell.example/sitemap.xml"\ntype = "sitemap"\n'
        )

    result = bare("feeds", "export")

    # A control character (a config may hold one, a JSON Feed's title too) is dropped, not
    # a traceback; a sitemap is no feed for another reader, and is said to be left out.
    assert 'text="Bell Labs" title="Bell Labs" xmlUrl="https://bell.example/rss"' in result.stdout
    assert "sitemap.xml" not in result.stdout
    assert "1 sitemap left out" in result.stderr


# --- tags -----------------------------------------------------------------------------------


def test_tags_filter_feeds_search_and_export(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    cli = Ingest(tmp_path, commented_config(tmp_path / "ingest.toml", newsroom, database_url))
    cli("feeds", "add", newsroom.url(FEEDS["Tech"]), "--name", "Tech", "--tag", "tech")
    cli("fetch")

    feeds = cli.json("feeds", "--tag", "news", "--format", "json")
    cli.env["COLUMNS"] = "200"
    table = cli("feeds").stdout
    found = cli.json("search", "sodium OR danube", "--format", "json")
    tech = cli.json("search", "sodium OR danube", "--tag", "tech", "--format", "json")
    news = cli.jsonl("export", "--tag", "news")

    assert [(f["name"], f["tags"]) for f in feeds] == [("World", ["news", "world"])]
    assert "[news, world]" in table
    assert {h["feed_url"] for h in found} == {
        newsroom.url(FEEDS["Tech"]),
        newsroom.url(FEEDS["World"]),
    }
    assert {h["feed_url"] for h in tech} == {newsroom.url(FEEDS["Tech"])}
    assert news and {a["feed_url"] for a in news} == {newsroom.url(FEEDS["World"])}
    for command in (("feeds",), ("search", "x"), ("export",)):
        unknown = cli(*command, "--tag", "nope", check=False)
        assert unknown.returncode == 2
        assert "no feed tagged 'nope'" in unknown.stderr


def test_a_running_daemon_picks_up_an_added_feed(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    import asyncio

    from ingest.config import load_settings
    from ingest.daemon import Daemon
    from ingest.store import Store

    cli = Ingest(
        tmp_path, commented_config(tmp_path / "ingest.toml", newsroom, f"sqlite:///{archive}")
    )
    assert cli.config is not None
    store = Store.open(f"sqlite:///{archive}")
    try:
        settings = load_settings(cli.config, environ={})
        store.sync_feeds(settings.feeds, exclusive=True, rules=settings.schedule)
        daemon = Daemon(settings, store, config_path=cli.config)
        asyncio.run(daemon.reload())  # unchanged: nothing to do

        cli("feeds", "add", newsroom.url(FEEDS["Wire"]), "--tag", "wire")
        cli("feeds", "remove", "Notices")
        asyncio.run(daemon.reload())  # as its timer does: the file changed

        assert [f.url for f in daemon.settings.feeds] == [
            newsroom.url(FEEDS["World"]),
            newsroom.url(FEEDS["Wire"]),
        ]
        rows = {f.url: (f.active, f.tags) for f in store.feeds()}
        assert rows[newsroom.url(FEEDS["Wire"])] == (True, ["wire"])
        assert rows[newsroom.url(FEEDS["Notices"])] == (False, [])
    finally:
        store.close()


def test_the_api_filters_by_tag_as_the_cli_does(
    tmp_path: Path, newsroom: Newsroom, archive: Path
) -> None:
    from tests.webserver import serve

    config = commented_config(tmp_path / "ingest.toml", newsroom, f"sqlite:///{archive}")
    cli = Ingest(tmp_path, config)
    cli("feeds", "add", newsroom.url(FEEDS["Tech"]), "--name", "Tech", "--tag", "tech")
    cli("fetch")
    expected = [h["id"] for h in cli.json("search", "the", "--tag", "news", "--format", "json")]

    with serve(config) as server:
        hits = server.get("/api/v1/articles", params={"q": "the", "tag": "news", "limit": 20})
        unknown = server.get("/api/v1/articles", params={"tag": "nope"})
        feeds = server.get("/api/v1/feeds")

    assert hits.status_code == 200
    assert [h["id"] for h in hits.json()["articles"]] == expected
    assert {h["feed_url"] for h in hits.json()["articles"]} == {newsroom.url(FEEDS["World"])}
    assert unknown.status_code == 400
    assert "no feed tagged 'nope'" in unknown.json()["message"]
    assert {f["name"]: f["tags"] for f in feeds.json()}["Tech"] == ["tech"]


@pytest.mark.parametrize("command", ["add", "remove", "import", "export"])
def test_each_feeds_command_has_help_with_an_example(command: str) -> None:
    from click.testing import CliRunner

    from ingest.cli import cli

    result = CliRunner().invoke(cli, ["feeds", command, "--help"], prog_name="ingest")

    assert result.exit_code == 0
    head = result.output.partition("\nOptions:\n")[0].rstrip()
    example = head.split("\n\n")[-1].splitlines()
    assert example[0].strip() == "Example:"
    assert example[1].strip().startswith(f"ingest feeds {command}")


def test_at_a_terminal_a_prompt_chooses_among_the_feeds_found(
    bare: Ingest, newsroom: Newsroom
) -> None:
    import os
    import pty
    import subprocess
    import sys

    newsroom.set("/", HOME)
    assert bare.config is not None
    primary, secondary = pty.openpty()
    command = [sys.executable, "-m", "ingest", "--config", str(bare.config)]
    process = subprocess.Popen(
        [*command, "feeds", "add", newsroom.url("/")],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=bare.cwd,
        env=bare.env,
    )
    os.close(secondary)
    seen = b""
    while b"Add which one [1]: " not in seen:
        chunk = os.read(primary, 4096)
        assert chunk, seen
        seen += chunk
    os.write(primary, b"2\n")
    assert process.wait(timeout=60) == 0
    os.close(primary)

    assert b"1. Newsdesk Digest: World [RSS]" in seen  # the first preselected
    assert feeds_of(bare) == [{"name": "Circuit Notes", "url": newsroom.url("/feeds/tech.atom")}]


def test_a_host_that_asked_the_archive_to_wait_is_not_asked_by_discovery(
    bare: Ingest, newsroom: Newsroom, archive: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from ingest.store import Store

    store = Store.open(f"sqlite:///{archive}")
    store.block_host("127.0.0.1", datetime.now(UTC) + timedelta(hours=1), "http_429")
    store.close()

    result = bare("feeds", "add", newsroom.url(FEEDS["World"]), check=False)

    assert result.returncode == 1
    assert "asked us to wait until" in result.stderr
    assert newsroom.requests == []


# --- add --sitemaps: a site's sitemaps, from its robots.txt -----------------------------------


def test_sitemaps_named_by_robots_txt_are_added_as_sitemaps_and_archived(
    bare: Ingest, newsroom: Newsroom
) -> None:
    for name in ("news-1.xml", "news-2.xml"):
        text = (SITE_DIR / "sitemaps" / name).read_text(encoding="utf-8")
        body = gzip.compress(newsroom.rebase(text).encode())
        newsroom.set(f"/sitemaps/{name}.gz", body, headers={"Content-Type": "application/x-gzip"})
    newsroom.set(
        "/robots.txt",
        "User-agent: *\nDisallow: /private/\n\n"
        "Sitemap: {{BASE}}/sitemaps/news-index.xml\nSitemap: /sitemaps/gone.xml\n",
        headers={"Content-Type": "text/plain"},
    )
    newsroom.set("/sitemaps/gone.xml", status=404)

    result = bare("feeds", "add", newsroom.url("/"), "--sitemaps", "--since", "2025-03-01")

    assert "passed over" in result.stderr and "gone.xml" in result.stderr
    (table,) = feeds_of(bare)
    assert table == {
        "url": newsroom.url("/sitemaps/news-index.xml"),
        "name": "127.0.0.1 sitemap index",
        "type": "sitemap",
        "since": "2025-03-01",
    }
    assert newsroom.requests_for("/feed") == []  # sitemaps were asked for, not feeds
    summary = bare.json("fetch", "--format", "json")
    assert summary["feeds_failed"] == 0 and summary["articles_new"] == 4


def test_without_sitemap_lines_the_usual_paths_are_tried(bare: Ingest, newsroom: Newsroom) -> None:
    newsroom.set(
        "/robots.txt", "User-agent: *\nDisallow:\n", headers={"Content-Type": "text/plain"}
    )
    news = (SITE_DIR / "sitemaps" / "news-1.xml").read_text(encoding="utf-8")
    newsroom.set("/news-sitemap.xml", news, headers={"Content-Type": "application/xml"})

    bare("feeds", "add", newsroom.url("/about/"), "--sitemaps")

    assert feeds_of(bare) == [
        {
            "url": newsroom.url("/news-sitemap.xml"),
            "name": "127.0.0.1 news sitemap",
            "type": "sitemap",
        }
    ]


def test_a_sitemaps_own_url_is_added_as_a_sitemap(bare: Ingest, newsroom: Newsroom) -> None:
    bare("feeds", "add", newsroom.url("/sitemaps/plain.xml"), "--name", "Plain")

    assert feeds_of(bare) == [
        {"url": newsroom.url("/sitemaps/plain.xml"), "name": "Plain", "type": "sitemap"}
    ]


def test_a_site_without_sitemaps_and_a_bad_since_are_clear_errors(
    bare: Ingest, newsroom: Newsroom
) -> None:
    assert bare.config is not None
    before = bare.config.read_bytes()

    none = bare("feeds", "add", newsroom.url("/"), "--sitemaps", check=False)
    bad = bare("feeds", "add", newsroom.url("/"), "--sitemaps", "--since", "last year", check=False)
    feed = bare("feeds", "add", newsroom.url(FEEDS["Tech"]), "--since", "2025-01-01", check=False)

    assert none.returncode == 1 and "no sitemap found" in none.stderr
    assert "/sitemap.xml" in none.stderr
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert feed.returncode == 2 and "no sitemap" in feed.stderr
    assert bare.config.read_bytes() == before
