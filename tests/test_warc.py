"""WARC export and import, end to end: an archive made by the real `ingest fetch` against the
newsroom, exported by the real CLI, checked by warcio (its own `check` command and its
reader, digests verified), replayed, and imported into new archives."""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from ingest.search import Filters
from ingest.store import Store
from tests.conftest import FEEDS, Ingest
from tests.newsroom import Newsroom

WARCIO = Path(sys.executable).with_name("warcio")


def article_html(title: str, base: str, path: str) -> bytes:
    """A plain news page of our own: a headline, a byline and six paragraphs."""
    lines = [
        f"The {title.lower()} was confirmed on Tuesday by officials who had spent most of the "
        "winter negotiating the terms with the regional councils and the port authority.",
        "Residents who attended the evening meeting said the plan had changed several times, "
        "and that the final version kept the ferry schedule while moving the freight yard.",
        "The council's transport committee will publish the full budget next month, along "
        "with the traffic studies that the opposition had asked to see before the vote.",
        "Engineers expect the first phase to take about eighteen months, weather permitting, "
        "with the quay wall rebuilt before the new cranes arrive from the manufacturer.",
        "Local businesses were divided: cafés on the waterfront welcomed the foot traffic, "
        "while two haulage firms warned that the detour would add an hour to each trip.",
        "A public consultation on the second phase opens in the spring and runs for six weeks, "
        "the mayor's office said in a statement released after the meeting ended.",
    ]
    body = "".join(f"<p>{line}</p>\n" for line in lines)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="canonical" href="{base}{path}"></head><body><header><nav><a href="/">Home'
        f"</a></nav></header><main><article><h1>{title}</h1><p class=byline>By Ana Ruiz</p>"
        f"{body}</article></main><footer>© Harbour Gazette</footer></body></html>"
    ).encode()


class _Chunked(BaseHTTPRequestHandler):
    """A page sent gzipped and chunked, with no Content-Length, as many servers send."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        body = gzip.compress(article_html("Harbour plan approved", base, self.path))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 700):
            piece = body[start : start + 700]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


@dataclass
class Source:
    """An archive made by `ingest fetch`, and its WARC export."""

    room: Newsroom
    dir: Path
    db: Path
    cli: Ingest
    warc: Path
    exported: subprocess.CompletedProcess[str]
    reconstructed: str  # the page whose capture lost its request headers (an old row)
    twice: str  # the page kept at two times


def harbour_feed(room: Newsroom, chunked: str) -> bytes:
    """A feed of two pages of our own: one served gzipped, one gzipped and chunked."""
    items = [
        ("Ferry timetable restored", room.url("/warc/gzipped.html"), "harbour-1"),
        ("Harbour plan approved", chunked, "harbour-2"),
    ]
    xml = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{guid}</guid>"
        "<pubDate>Tue, 11 Mar 2025 08:00:00 GMT</pubDate><author>Ana Ruiz</author></item>"
        for title, link, guid in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Gazette</title>'
        f"<link>{room.url('/')}</link>{xml}</channel></rss>"
    ).encode()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    folder = tmp_path_factory.mktemp("warc")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chunked = f"http://127.0.0.1:{server.server_address[1]}/harbour.html"
    with Newsroom() as room:
        page = article_html("Ferry timetable restored", room.base_url, "/warc/gzipped.html")
        room.set(
            "/warc/gzipped.html", body=gzip.compress(page), headers={"Content-Encoding": "gzip"}
        )
        room.set("/feeds/harbour.rss", body=harbour_feed(room, chunked))
        db = folder / "source.sqlite3"
        config = folder / "ingest.toml"
        feeds = ["World", "Tech", "Wire"]
        lines = [
            f'[database]\nurl = "sqlite:///{db}"',
            "[fetch]\nallow_private_networks = true\nhost_delay = 0",
            f'[[feeds]]\nurl = "{room.url("/feeds/harbour.rss")}"\nname = "Harbour"',
            *(f'[[feeds]]\nurl = "{room.url(FEEDS[n])}"\nname = "{n}"' for n in feeds),
        ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cli = Ingest(folder, config)
        cli("fetch")
        reconstructed = room.url("/news/great-lakes-shipping.html")
        twice = room.url("/news/nbc-style.html")
        with sqlite3.connect(db) as conn:
            # A capture made before requests were kept (revision 0016) ...
            conn.execute(
                "UPDATE captures SET request_headers = NULL WHERE url = ?", (reconstructed,)
            )
            # ... and a page fetched again a day later, unchanged: two captures, in order.
            conn.execute(
                "INSERT INTO captures (article_id, url, status, headers, body, body_id, "
                "fetched_at, request_headers) SELECT article_id, url, status, headers, body, "
                "body_id, datetime(fetched_at, '+1 day'), request_headers FROM captures "
                "WHERE url = ?",
                (twice,),
            )
            later = "UPDATE articles SET fetched_at = datetime(fetched_at, '+1 day') "
            later += "WHERE final_url = ?"
            conn.execute(later, (twice,))
        warc = folder / "archive.warc.gz"
        exported = cli("export", "--format", "warc", "--out", str(warc))
        yield Source(room, folder, db, cli, warc, exported, reconstructed, twice)
    server.shutdown()
    server.server_close()


def records(path: Path, **options: Any) -> list[tuple[Any, bytes]]:
    """Every record of a WARC with its content, read through warcio, digests checked."""
    found = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh, check_digests=True, **options):
            content = record.content_stream().read()
            found.append((record, content))
    return found


def export_jsonl(cli: Ingest, *args: str) -> dict[str, dict[str, Any]]:
    """The archive's articles with a kept page (``ok``, from the page), by where they were
    fetched from."""
    kept = cli.jsonl(*args, "export", "--format", "jsonl")
    return {r["final_url"]: r for r in kept if r["content_source"] == "page"}


def test_warcio_check_passes(source: Source) -> None:
    checked = subprocess.run(
        [str(WARCIO), "check", "-v", str(source.warc)], capture_output=True, text=True, check=False
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    verdicts = [line.strip() for line in checked.stdout.splitlines() if line.startswith("    ")]
    assert verdicts and set(verdicts) == {"digest pass"}
    assert verdicts.count("digest pass") == len(records(source.warc))


def test_records_carry_what_warc_1_1_asks_for(source: Source) -> None:
    parsed = records(source.warc)
    whole = records(source.warc, no_record_parse=True)  # the block as bytes: its exact length
    pages = export_jsonl(source.cli)

    kinds = [r.rec_type for r, _ in parsed]
    info, fields = parsed[0]
    assert kinds[0] == "warcinfo" and kinds.count("warcinfo") == 1
    assert info.rec_headers.protocol == "WARC/1.1"
    assert b"software: ingest/" in fields and b"format: WARC File Format 1.1" in fields
    assert f"ingest-archive: sqlite:///{source.db}".encode() in fields
    assert b"ingest-filters: none" in fields
    # Per capture: request, response, conversion, metadata.
    assert kinds[1:] == ["request", "response", "conversion", "metadata"] * ((len(kinds) - 1) // 4)
    ids = [r.rec_headers.get_header("WARC-Record-ID") for r, _ in parsed]
    assert len(set(ids)) == len(ids) and all(i.startswith("<urn:uuid:") for i in ids)
    for (record, _), (_, block) in zip(parsed, whole, strict=True):
        headers = record.rec_headers
        assert record.digest_checker.passed is True  # block and payload digests verified
        assert int(headers.get_header("Content-Length")) == len(block)
        assert headers.get_header("WARC-Date").endswith("Z")
        if record.rec_type != "warcinfo":
            assert headers.get_header("WARC-Block-Digest").startswith("sha1:")
            assert headers.get_header("WARC-Payload-Digest").startswith("sha1:")
            assert headers.get_header("WARC-Target-URI").startswith("http://127.0.0.1:")
    for start in range(1, len(parsed), 4):
        (request, _), (response, _), (conversion, text), (metadata, meta) = parsed[
            start : start + 4
        ]
        request_id = request.rec_headers.get_header("WARC-Record-ID")
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        assert request.rec_headers.get_header("WARC-Concurrent-To") == response_id
        assert response.rec_headers.get_header("WARC-Concurrent-To") == request_id
        for record in (conversion, metadata):
            assert record.rec_headers.get_header("WARC-Refers-To") == response_id
        assert conversion.rec_headers.get_header("Content-Type") == "text/plain; charset=utf-8"
        assert metadata.rec_headers.get_header("Content-Type") == "application/json"
        url = response.rec_headers.get_header("WARC-Target-URI")
        article = json.loads(meta)
        assert article == pages[url]  # the record `ingest export --format jsonl` writes
        assert text.decode("utf-8") == article["text"]
        date = response.rec_headers.get_header("WARC-Date")
        assert request.rec_headers.get_header("WARC-Date") == date
        if url != source.twice:  # the fetch time of the page (the second one: later)
            assert date.replace("Z", "+00:00").startswith(article["fetched_at"][:19])


def test_requests_are_the_ones_sent(source: Source) -> None:
    requests = [r for r, _ in records(source.warc) if r.rec_type == "request"]
    sent = {r.rec_headers.get_header("WARC-Target-URI"): r for r in requests}

    for url, request in sent.items():
        head = request.http_headers
        path = url.split("/", 3)[3]
        assert head.protocol == "GET" and head.statusline == f"/{path} HTTP/1.1"
        assert head.get_header("Host") == url.split("/")[2]
        if url == source.reconstructed:
            assert request.rec_headers.get_header("Ingest-Request").startswith("reconstructed")
            assert [name for name, _ in head.headers] == ["Host"]
        else:
            assert request.rec_headers.get_header("Ingest-Request") is None
            assert head.get_header("User-Agent").startswith("ingest/")
            assert head.get_header("Accept").startswith("text/html")
    # What the newsroom received is what the request records say was sent.
    for seen in source.room.requests_for("/news/nbc-style.html"):
        assert seen.headers["user-agent"] == sent[source.twice].http_headers.get_header(
            "User-Agent"
        )


def test_responses_replay_what_the_servers_sent(source: Source) -> None:
    responses = [(r, body) for r, body in records(source.warc) if r.rec_type == "response"]
    urls = [r.rec_headers.get_header("WARC-Target-URI") for r, _ in responses]
    gzipped = source.room.url("/warc/gzipped.html")
    chunked = next(u for u in urls if u.endswith("/harbour.html"))

    assert gzipped in urls and chunked in urls
    for record, body in responses:
        url = record.rec_headers.get_header("WARC-Target-URI")
        served = httpx.get(url)  # what a browser gets: gzip undone, chunks joined
        head = record.http_headers
        assert body == served.content, url  # byte for byte
        assert head.statusline == "200 OK"
        assert head.get_header("Content-Length") == str(len(body))
        assert head.get_header("Content-Type") == served.headers["content-type"]
        assert head.get_header("Content-Encoding") is None  # the body is kept decoded
        assert head.get_header("Transfer-Encoding") is None
    chunked_head = responses[urls.index(chunked)][0].http_headers
    assert chunked_head.get_header("X-Archive-Orig-Transfer-Encoding") == "chunked"


def test_every_capture_of_an_article_in_order(source: Source) -> None:
    responses = [r for r, _ in records(source.warc) if r.rec_type == "response"]
    again = [r for r in responses if r.rec_headers.get_header("WARC-Target-URI") == source.twice]
    pages = export_jsonl(source.cli)

    assert len(again) == 2
    first, second = (r.rec_headers.get_header("WARC-Date") for r in again)
    assert first < second
    assert len(responses) == len(pages) + 1 and len(pages) >= 8
    said = f"Exported {len(pages) + 1} captures of {len(pages)} articles"
    assert said in source.exported.stderr
    # Selected articles without a kept page (failed pages, feed-only entries) are counted.
    listed = source.cli.jsonl("export", "--format", "jsonl")
    missing = len(listed) - len(pages)
    assert missing > 0
    assert f"{missing} articles selected had no kept page" in source.exported.stderr


def test_export_by_feed_has_only_that_feeds_pages(source: Source) -> None:
    out = source.dir / "world.warc.gz"
    source.cli("export", "--format", "warc", "--feed", "World", "--out", str(out))
    world = {
        r["final_url"]
        for r in source.cli.jsonl("export", "--feed", "World")
        if r["content_source"] == "page"
    }
    parsed = records(out)
    urls = {
        r.rec_headers.get_header("WARC-Target-URI") for r, _ in parsed if r.rec_type == "response"
    }

    assert urls == world and len(world) >= 3
    assert source.room.url("/warc/gzipped.html") not in urls
    assert b"ingest-filters: feed=World" in parsed[0][1]
    for record, meta in parsed:
        if record.rec_type == "metadata":
            assert source.room.url("/feeds/world.rss") in json.loads(meta)["feed_urls"]


def test_round_trip_keeps_every_article_and_a_second_import_adds_nothing(
    source: Source, database_url: str, tmp_path: Path
) -> None:
    cli = Ingest(tmp_path)
    target = ("--database", database_url)
    first = cli.json(*target, "import", "--warc", str(source.warc), "--format", "json")
    again = cli.json(*target, "import", "--warc", str(source.warc), "--format", "json")
    before, after = export_jsonl(source.cli), export_jsonl(cli, *target)

    pages = len(before)
    assert first == {
        "responses": pages + 1,
        "articles": pages,
        "captures": 1,  # the page kept twice: its second capture
        "already": 0,
        "skipped": {},
    }
    assert again == {
        "responses": pages + 1,
        "articles": 0,
        "captures": 0,
        "already": pages + 1,
        "skipped": {},
    }
    assert after.keys() == before.keys()
    for url, was in before.items():
        now = after[url]
        kept = ("url", "final_url", "canonical_url", "feed_url", "feed_urls", "guid", "title")
        kept += ("authors", "published", "updated", "language", "text", "fetched_at", "status")
        assert {k: now[k] for k in kept} == {k: was[k] for k in kept}, url
    assert captures(database_url) == captures(f"sqlite:///{source.db}")


def captures(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every capture an archive keeps, by the URL it came from, oldest first: its time,
    status, headers (received and sent) and body."""
    store = Store.open(url, read_only=True)
    try:
        kept: dict[str, list[tuple[Any, ...]]] = {}
        for batch in store.iter_capture_batches(Filters()):
            for _, _, rows in batch:
                for c in rows:
                    row = (
                        c.fetched_at,
                        c.status,
                        c.headers,
                        c.request_headers,
                        store.capture_body(c),
                    )
                    kept.setdefault(c.url, []).append(row)
    finally:
        store.close()
    return kept


def archive_state(cli: Ingest, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every article record of an archive, and how many captures it keeps."""
    articles = cli.jsonl("--database", url, "export", "--format", "jsonl")
    store = Store.open(url, read_only=True)
    try:
        captures = sum(len(c) for batch in store.iter_capture_batches(Filters()) for *_, c in batch)
    finally:
        store.close()
    return articles, captures


def bad_files(source: Source, folder: Path) -> dict[str, Path]:
    """WARCs an import must refuse whole, each named by what is wrong with it."""
    data = source.warc.read_bytes()
    plain = gzip.decompress(data)  # every member: the same records, uncompressed
    at = plain.index(b"Great Lakes", plain.index(b"WARC-Type: response"))
    flipped = plain[:at] + b"Grcat Lakes" + plain[at + len(b"Great Lakes") :]
    dns = BytesIO()
    writer = WARCWriter(dns, gzip=True, warc_version="1.1")
    for record in ArchiveIterator(BytesIO(data)):
        if record.rec_type == "response":  # a good HTTP response first ...
            writer.write_record(record)
            break
    # ... then what Heritrix writes for each host it resolves.
    lookup = b"20250311080000\nexample.org.\t300\tIN\tA\t93.184.215.14\n"
    writer.write_record(
        writer.create_warc_record(
            "dns:example.org",
            "response",
            payload=BytesIO(lookup),
            length=len(lookup),
            warc_content_type="text/dns",
        )
    )
    files = {
        "empty": b"",
        "not-a-warc": b"id,title\n1,Not a WARC at all\n",
        "html": b"<!DOCTYPE html><html><body><p>A web page</p></body></html>\n",
        "truncated": data[: len(data) // 2],
        "truncated-tail": data[:-3],
        "digest-mismatch": flipped,
        "non-http-record": dns.getvalue(),
        "one-gzip-stream": gzip.compress(plain),
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = folder / f"{name}.warc.gz"
        paths[name].write_bytes(blob)
    return paths


def test_bad_input_is_refused_in_one_line_and_changes_nothing(
    source: Source, tmp_path: Path
) -> None:
    cli = Ingest(tmp_path)
    url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    cli("--database", url, "import", "--warc", str(source.warc))
    before = archive_state(cli, url)

    said = {}
    for name, path in bad_files(source, tmp_path).items():
        refused = cli("--database", url, "import", "--warc", str(path), check=False)
        said[name] = refused.stderr
        new = tmp_path / f"new-{name}.sqlite3"
        never = cli("--database", f"sqlite:///{new}", "import", "--warc", str(path), check=False)

        assert refused.returncode == 2, (name, refused.stderr)
        lines = refused.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("ingest: error: "), (name, lines)
        assert str(path) in lines[0] and "nothing was imported" in lines[0], lines[0]
        assert never.returncode == 2 and not new.exists()  # no archive made for a bad file
    assert archive_state(cli, url) == before
    assert "empty file" in said["empty"]
    assert "not a WARC file" in said["not-a-warc"] and "begins id,title" in said["not-a-warc"]
    assert "cut short" in said["truncated"] and "cut short" in said["truncated-tail"]
    assert "digest" in said["digest-mismatch"]
    assert "record 2 (response, dns:example.org) is not an HTTP response" in said["non-http-record"]
    assert "one gzip stream holding several records" in said["one-gzip-stream"]


def test_a_warc_from_another_tool_becomes_articles_of_a_feed_named_after_it(
    source: Source, tmp_path: Path
) -> None:
    import urllib.request  # through http.client, which warcio records

    from warcio.capture_http import capture_http

    foreign = tmp_path / "crawl.warc.gz"
    paths = ["/news/great-lakes-shipping.html", "/tech/sodium-batteries.html"]
    with capture_http(str(foreign), gzip=True):
        for path in [*paths, "/status/404", "/media/photo.png"]:
            with contextlib.suppress(urllib.error.HTTPError):  # recorded all the same
                urllib.request.urlopen(source.room.url(path)).read()
    cli = Ingest(tmp_path)
    url = f"sqlite:///{tmp_path / 'crawl.sqlite3'}"

    done = cli.json("--database", url, "import", "--warc", str(foreign), "--format", "json")
    again = cli.json("--database", url, "import", "--warc", str(foreign), "--format", "json")
    imported = export_jsonl(cli, "--database", url)
    fetched = export_jsonl(source.cli)

    assert done == {
        "responses": 4,
        "articles": 2,
        "captures": 0,
        "already": 0,
        "skipped": {"HTTP 404": 1, "not_html": 1},
    }
    assert again["articles"] == again["captures"] == 0 and again["already"] == 2
    assert sorted(imported) == sorted(source.room.url(p) for p in paths)
    feed = f"file://{foreign.resolve()}"
    for page, record in imported.items():
        assert record["feed_url"] == feed and record["guid"] is None
        assert record["text"] and record["title"] == fetched[page]["title"]
        assert record["text"] == fetched[page]["text"]  # the same page, the same extraction
    store = Store.open(url, read_only=True)
    try:
        (only,) = store.feeds()
        capture = store.capture(store.article(source.room.url(paths[0]))[0].id or 0)
    finally:
        store.close()
    assert (only.name, only.active) == ("crawl.warc.gz", False)  # never polled
    assert capture.request_headers is not None
    assert capture.request_headers["User-Agent"].startswith("Python-urllib/")


def test_an_archive_from_before_kept_requests_exports_after_its_upgrade(tmp_path: Path) -> None:
    import zlib

    path = tmp_path / "old.sqlite3"
    page = article_html("Ferry timetable restored", "https://example.org", "/ferry.html")
    store = Store.open(f"sqlite:///{path}", migrate=False)
    store.upgrade("0013")
    with store.engine.begin() as conn:  # the archive's own connection: its search triggers
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, error_count, active) VALUES ('https://example.org/rss', 0, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO articles (feed_id, url, final_url, title, text, authors, content_source, "
            "status, attempts, fetched_at) VALUES (1, 'https://example.org/ferry.html', "
            "'https://example.org/ferry.html', 'Ferry', 'Kept text', '[]', 'page', 'ok', 1, "
            "'2025-03-11 08:00:00.250000')"
        )
        conn.exec_driver_sql(
            "INSERT INTO captures (article_id, url, status, headers, body, fetched_at) VALUES "
            "(1, 'https://example.org/ferry.html', 200, ?, ?, '2025-03-11 08:00:00.250000')",
            (json.dumps({"content-type": "text/html; charset=utf-8"}), zlib.compress(page)),
        )
    store.close()
    cli = Ingest(tmp_path)
    database = ("--database", f"sqlite:///{path}")
    cli(*database, "db", "upgrade")
    out = tmp_path / "old.warc"  # .warc: not gzipped
    cli(*database, "export", "--format", "warc", "--out", str(out))
    parsed = records(out)

    assert out.read_bytes().startswith(b"WARC/1.1\r\n")
    assert [r.rec_type for r, _ in parsed] == [
        "warcinfo",
        "request",
        "response",
        "conversion",
        "metadata",
    ]
    request, response = parsed[1][0], parsed[2]
    assert request.rec_headers.get_header("Ingest-Request").startswith("reconstructed")
    assert request.http_headers.headers == [("Host", "example.org")]
    assert response[1] == page
    assert response[0].rec_headers.get_header("WARC-Date") == "2025-03-11T08:00:00.250000Z"
    assert all(r.digest_checker.passed for r, _ in parsed)


def test_a_warc_export_needs_a_file(source: Source) -> None:
    refused = source.cli("export", "--format", "warc", check=False)

    assert refused.returncode == 2
    assert refused.stderr == "ingest: error: --format warc writes a file: give --out FILE.warc.gz\n"
