"""The API of `ingest serve`, over HTTP, against the real server on a real archive made by
the real `ingest fetch` (SQLite and PostgreSQL): search and its cursors, filters, records
as `ingest export` writes them, raw captures, feeds, stats, exports, feeds of a search,
changes for mirrors that miss nothing while writing, errors, read-only, the token."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import sqlalchemy as sa

from tests.conftest import REPO, Ingest, postgres_schema, write_config
from tests.newsroom import Newsroom
from tests.webserver import HOSTILE_TITLE, TOKEN, Server, make_archive, serve


@pytest.fixture(scope="module")
def newsroom_module() -> Iterator[Newsroom]:
    with Newsroom() as room:
        yield room


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    newsroom_module: Newsroom,
) -> Iterator[tuple[Server, Ingest, str]]:
    """One archive and one server per backend, for the whole module (reads only)."""
    directory = tmp_path_factory.mktemp(f"serve-{request.param}")
    if request.param == "sqlite":
        with _site(directory, newsroom_module, f"sqlite:///{directory / 'archive.sqlite3'}") as s:
            yield s
        return
    with postgres_schema() as url, _site(directory, newsroom_module, url) as s:
        yield s


@contextmanager
def _site(directory: Path, room: Newsroom, url: str) -> Iterator[tuple[Server, Ingest, str]]:
    config = make_archive(directory, room, url)
    with serve(config) as server:
        yield server, Ingest(directory, config), url


def all_pages(server: Server, path: str, **params: Any) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = server.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        hits += body["articles"]
        cursor = body["next_cursor"]
        if not cursor:
            return hits


def test_search_finds_with_a_highlighted_snippet_as_ingest_search_does(site: Any) -> None:
    server, cli, _ = site
    answer = server.get("/api/v1/articles", params={"q": "danube"})
    expected = cli.json("search", "danube", "--format", "json")

    assert answer.status_code == 200
    hits = answer.json()["articles"]
    assert [h["id"] for h in hits] == [h["id"] for h in expected]
    assert "Danube" in hits[0]["title"]
    assert "<mark>" in hits[0]["snippet_html"] and "**" in hits[0]["snippet"]
    assert answer.json()["next_cursor"] is None


@pytest.mark.parametrize("sort", ["relevance", "newest"])
def test_pages_of_a_search_cover_every_hit_once(site: Any, sort: str) -> None:
    server, _, _ = site
    whole = server.get("/api/v1/articles", params={"q": "said", "sort": sort, "limit": 500})
    paged = all_pages(server, "/api/v1/articles", q="said", sort=sort, limit=2)

    assert len(whole.json()["articles"]) >= 5
    assert [h["id"] for h in paged] == [h["id"] for h in whole.json()["articles"]]
    if sort == "newest":
        dates = [h["published"] for h in paged if h["published"]]
        assert dates == sorted(dates, reverse=True)


def test_the_newest_articles_a_page_at_a_time(site: Any) -> None:
    server, cli, _ = site
    paged = all_pages(server, "/api/v1/articles", limit=3)
    exported = cli.jsonl("export")

    assert sorted(h["id"] for h in paged) == sorted(r["id"] for r in exported)
    assert paged[0]["title"] == HOSTILE_TITLE  # planted now: the newest


def test_filters_narrow_the_search_as_the_cli_does(site: Any) -> None:
    server, cli, _ = site
    failed = all_pages(server, "/api/v1/articles", status="failed")
    from_feed = all_pages(server, "/api/v1/articles", content_source="feed", feed="World")
    japanese = server.get("/api/v1/articles", params={"lang": "ja"}).json()["articles"]
    since = server.get("/api/v1/articles", params={"q": "the", "since": "2025-03-10"}).json()

    assert {h["id"] for h in failed} == {
        r["id"] for r in cli.jsonl("export") if r["status"] == "failed"
    }
    assert from_feed and all(h["feed_url"].endswith("/feeds/world.rss") for h in from_feed)
    assert [h["language"] for h in japanese] == ["ja"]
    expected = cli.json("search", "the", "--since", "2025-03-10", "--format", "json")
    assert sorted(h["id"] for h in since["articles"]) == sorted(h["id"] for h in expected)


def test_an_article_is_the_record_ingest_export_writes(site: Any) -> None:
    server, cli, _ = site
    for record in cli.jsonl("export")[:4]:
        answer = server.get(f"/api/v1/articles/{record['id']}")
        assert answer.status_code == 200
        assert answer.json() == record


def test_the_capture_is_the_page_as_received_as_a_download(
    site: Any, newsroom_module: Newsroom
) -> None:
    server, cli, _ = site
    (record,) = [r for r in cli.jsonl("export") if (r["url"] or "").endswith("legacy-1252.html")]
    answer = server.get(f"/api/v1/articles/{record['id']}/capture")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=windows-1252"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"
    page = (REPO / "tests/fixtures/site/news/legacy-1252.html").read_bytes()
    page = page.replace(b"{{BASE}}", newsroom_module.base_url.encode())
    assert answer.content == page
    assert "Café" in answer.content.decode("windows-1252")
    failed = next(r for r in cli.jsonl("export") if r["error"] == "http_404")
    assert server.get(f"/api/v1/articles/{failed['id']}/capture").status_code == 404


def test_feeds_carry_their_health_failing_first(site: Any) -> None:
    server, _, _ = site
    feeds = server.get("/api/v1/feeds").json()
    one = server.get(f"/api/v1/feeds/{feeds[-1]['id']}").json()

    assert feeds[0]["error_count"] > 0 and feeds[0]["last_status"] == "not_feed"
    assert all(f["error_count"] == 0 for f in feeds[1:])
    world = next(f for f in feeds if f["name"] == "World")
    assert (
        world["articles"]
        == world["articles_ok"] + world["articles_pending"] + world["articles_failed"]
    )
    assert world["articles_failed"] >= 2 and world["last_polled_at"] and world["next_poll_at"]
    assert one == feeds[-1]
    assert server.get("/api/v1/feeds/9999").status_code == 404


def test_stats_count_the_archive_and_its_days(site: Any) -> None:
    server, cli, _ = site
    stats = server.get("/api/v1/stats").json()

    assert stats["articles"]["total"] == len(cli.jsonl("export"))
    assert stats["failures_by_reason"]["http_404"] == 1
    assert sum(d["articles"] for d in stats["articles_per_day"]) == stats["articles"]["total"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_what_ingest_export_writes(site: Any, fmt: str) -> None:
    server, cli, _ = site
    with server.http.stream(
        "GET", "/api/v1/export", params={"format": fmt, "lang": "en"}
    ) as answer:
        assert answer.status_code == 200
        assert "attachment" in answer.headers["content-disposition"]
        body = b"".join(answer.iter_bytes()).decode()
    expected = cli("export", "--format", fmt, "--lang", "en").stdout
    if fmt == "csv":  # the CLI's output was read with universal newlines
        body, expected = (
            list(csv.reader(io.StringIO(body))),
            list(csv.reader(io.StringIO(expected))),
        )
    assert body == expected


def test_a_search_as_atom_and_json_feed(site: Any) -> None:
    server, cli, _ = site
    expected = [h["title"] for h in cli.json("search", "river", "--format", "json")]
    atom = server.get("/search.atom", params={"q": "river"})
    feed = server.get("/search.feed.json", params={"q": "river"})

    assert atom.headers["content-type"].startswith("application/atom+xml")
    titles = [
        e.text for e in ET.fromstring(atom.content).iter("{http://www.w3.org/2005/Atom}title")
    ]
    assert titles[1:] == expected
    assert feed.json()["version"] == "https://jsonfeed.org/version/1.1"
    assert [i["title"] for i in feed.json()["items"]] == expected
    # Polled again with its validator, an unchanged feed is a 304 without a body.
    for path, answer in (("/search.atom", atom), ("/search.feed.json", feed)):
        again = server.get(
            path, params={"q": "river"}, headers={"If-None-Match": answer.headers["etag"]}
        )
        assert (again.status_code, again.content) == (304, b"")
        other = server.get(
            path, params={"q": "ferry"}, headers={"If-None-Match": answer.headers["etag"]}
        )
        assert other.status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"q": "AND -cable"}, 400, "only excludes words"),
        ({"feed": "Nope"}, 400, "no feed 'Nope'"),
        ({"lang": "english"}, 400, "not a language code"),
        ({"since": "last tuesday"}, 422, "since"),
        ({"limit": "501"}, 422, "limit"),
        ({"limit": "0"}, 422, "limit"),
        ({"sort": "random"}, 422, "sort"),
        ({"status": "lost"}, 422, "status"),
        ({"cursor": "not-a-cursor"}, 422, "cursor"),
        ({"q": "x\x00y"}, 422, "NUL"),
    ],
)
def test_bad_parameters_are_json_errors_that_say_why(
    site: Any, params: dict[str, str], status: int, says: str
) -> None:
    server, _, _ = site
    answer = server.get("/api/v1/articles", params=params)
    assert answer.status_code == status
    assert says in answer.json()["message"]


def test_unknown_ids_and_paths_are_404(site: Any) -> None:
    server, _, _ = site
    for path in ("/api/v1/articles/99999", "/api/v1/articles/99999/capture", "/api/v1/nothing"):
        answer = server.get(path)
        assert answer.status_code == 404
        assert answer.json()["message"]
    assert server.get("/api/v1/articles/abc").status_code == 422


def test_nothing_can_change_the_archive(site: Any) -> None:
    server, cli, _url = site
    before = cli.jsonl("export")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        answer = server.http.request(method, "/api/v1/articles/1")
        assert answer.status_code == 405, method
    head = server.http.head("/api/v1/articles/1")
    assert head.status_code == 200 and head.content == b""
    assert cli.jsonl("export") == before


def test_the_openapi_schema_and_its_docs_page(site: Any) -> None:
    server, _, _ = site
    schema = server.get("/api/openapi.json").json()
    docs = server.get("/api/docs")

    assert {"/api/v1/articles", "/api/v1/changes", "/api/v1/export"} <= set(schema["paths"])
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert server.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def changes_since(
    server: Server, cursor: str | None, limit: int = 3
) -> tuple[list[dict[str, Any]], str]:
    answer = server.get(
        "/api/v1/changes", params={"limit": limit, **({"cursor": cursor} if cursor else {})}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["articles"], answer.json()["next_cursor"]


def test_changes_mirror_every_article_and_then_nothing(site: Any) -> None:
    server, cli, _ = site
    mirror: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        got, cursor = changes_since(server, cursor)
        if not got:
            break
        mirror.update({a["id"]: {k: v for k, v in a.items() if k != "change"} for a in got})
    again, same = changes_since(server, cursor)

    assert mirror == {r["id"]: r for r in cli.jsonl("export")}
    assert again == [] and same == cursor


def test_exposed_without_a_token_it_refuses_to_start(tmp_path: Path, newsroom: Newsroom) -> None:
    config = write_config(tmp_path / "ingest.toml", newsroom, database=tmp_path / "a.sqlite3")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "--config",
            str(config),
            "serve",
            "--listen",
            "0.0.0.0:8089",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "serve.token" in result.stderr and "INGEST_SERVE_TOKEN" in result.stderr


def test_exposed_with_a_token_it_asks_for_it(site: Any, tmp_path: Path) -> None:
    _server, cli, _ = site
    config = Path(cli.config)  # the same archive, served on every address, with a token
    with serve(config, listen_host="0.0.0.0", token=TOKEN) as exposed:
        bare = exposed.get("/api/v1/articles")
        wrong = exposed.get("/api/v1/articles", headers={"Authorization": "Bearer nope"})
        right = exposed.get("/api/v1/articles", headers={"Authorization": f"Bearer {TOKEN}"})
        page = exposed.get("/search?q=river")
        login = exposed.http.post("/login", data={"token": TOKEN, "next": "/search?q=river"})
        cookie = login.cookies.get("ingest_session") or exposed.http.cookies.get("ingest_session")
        after = exposed.get("/search?q=river")

    assert bare.status_code == wrong.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    assert login.status_code == 303 and login.headers["location"] == "/search?q=river"
    set_cookie = login.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and TOKEN not in set_cookie
    assert cookie
    assert after.status_code == 200 and "river" in after.text.lower()


def test_changes_miss_nothing_while_the_archive_is_written(site: Any) -> None:
    """A writer updates articles (one transaction at a time, or two at once committing out
    of order on PostgreSQL) while a mirror reads changes: at the end it holds every
    article as the archive has it."""
    server, cli, url = site
    engine = sa.create_engine(url)
    ids = [r["id"] for r in cli.jsonl("export")]
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"UPDATE articles SET summary = 'edit {n}' WHERE id = {ids[n % len(ids)]}"
                )

    mirror: dict[int, dict[str, Any]] = {}
    cursor = None
    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            got, cursor = changes_since(server, cursor, limit=4)
            mirror.update({a["id"]: a for a in got})
    finally:
        stop.set()
        writer.join()

    def read_on() -> None:
        nonlocal cursor
        got, cursor = changes_since(server, cursor, limit=50)
        mirror.update({a["id"]: a for a in got})

    if engine.dialect.name == "postgresql":
        _out_of_order_commits(engine, ids, read_on)
    engine.dispose()
    archive = {r["id"]: r["summary"] for r in cli.jsonl("export")}
    # On PostgreSQL the feed holds back what any transaction still open on the server (another
    # test's, here) could yet precede: it may lag, never skip. Read on until it has caught up.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got, cursor = changes_since(server, cursor, limit=50)
        mirror.update({a["id"]: a for a in got})
        if not got and {i: a["summary"] for i, a in mirror.items()} == archive:
            break
        if not got:
            time.sleep(0.2)
    assert {i: a["summary"] for i, a in mirror.items()} == archive


def _out_of_order_commits(engine: sa.Engine, ids: list[int], read: Callable[[], None]) -> None:
    """Two transactions: the older one commits after the younger; a mirror reading in
    between must not move past the older one's change."""
    with engine.connect() as older, engine.connect() as younger:
        older.exec_driver_sql(f"UPDATE articles SET summary = 'older' WHERE id = {ids[0]}")
        younger.exec_driver_sql(f"UPDATE articles SET summary = 'younger' WHERE id = {ids[1]}")
        younger.commit()
        read()  # sees the younger change committed, the older not yet
        older.commit()


def test_the_hostile_article_is_data_in_json(site: Any) -> None:
    server, _, _ = site
    (hit,) = server.get("/api/v1/articles", params={"q": "hostile paragraph"}).json()["articles"]
    assert hit["title"] == HOSTILE_TITLE
    # SQLite's snippet keeps the text's markup-like words, escaped; PostgreSQL's drops them.
    assert "<script" not in hit["snippet_html"] and "<img" not in hit["snippet_html"]
    assert "window.pwned" in hit["snippet_html"]
    assert json.loads(server.get(f"/api/v1/articles/{hit['id']}").text)["title"] == HOSTILE_TITLE


def test_an_article_merged_away_reaches_a_mirror_as_removed(
    tmp_path: Path, newsroom: Newsroom
) -> None:
    # Two entries whose pages are one: a short link that redirects to the other's page.
    paragraphs = "".join(
        f"<p>Paragraph {n}: the harbour board met on Tuesday and heard residents on the "
        f"ferry timetable, the budget and the new pier for an hour and a half.</p>"
        for n in range(4)
    )
    newsroom.set("/m/ferry.html", f"<html><body><article><h1>Ferry</h1>{paragraphs}</article>")
    newsroom.redirect("/m/f3x", "/m/ferry.html")
    items = "".join(
        f"<item><title>Ferry</title><link>{{{{BASE}}}}{path}</link><guid>{path}</guid></item>"
        for path in ("/m/f3x", "/m/ferry.html")
    )
    newsroom.set(
        "/m/feed.rss",
        f"<rss version='2.0'><channel><title>M</title>{items}</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "a.sqlite3"}"\n[fetch]\n'
        f'allow_private_networks = true\n[[feeds]]\nurl = "{newsroom.url("/m/feed.rss")}"\n'
    )
    cli = Ingest(tmp_path, config)
    cli("fetch")
    with serve(config) as server:
        mirror: dict[int, dict[str, Any]] = {}
        removed: list[dict[str, Any]] = []
        cursor = None
        while got := (answer := changes_since(server, cursor, limit=1))[0]:
            cursor = answer[1]
            for change in got:
                if change["status"] == "removed":
                    removed.append(change)
                    mirror.pop(change["id"], None)
                else:
                    mirror[change["id"]] = {k: v for k, v in change.items() if k != "change"}

    (kept,) = cli.jsonl("export")
    assert mirror == {kept["id"]: kept}
    assert [(r["id"] != kept["id"], r["merged_into"]) for r in removed] == [(True, kept["id"])]
    assert removed[0]["removed_at"]
    assert sorted(kept["feed_urls"]) == [newsroom.url("/m/feed.rss")]
