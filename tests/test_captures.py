"""Raw captures, each body kept once: the real `ingest fetch` against the loopback newsroom,
every reader (`Store.capture_body`, `ingest reextract`, the API's capture download) getting
the exact bytes served, archives made before revision 0015 upgraded with their captures still
readable and packed later, and two writers storing one body at once, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard

from ingest.captures import ZSTD_MAGIC, as_zlib, pack, unpack
from ingest.config import FeedSettings
from ingest.entryparts import entry_key, url_key
from ingest.errors import StoreError
from ingest.records import ExtractedArticle, FeedEntry, Page, PageJob
from ingest.store import SCHEMA_REVISION, Store
from tests.newsroom import SITE_DIR, Newsroom
from tests.test_fetch_e2e import sql
from tests.test_shared_links import DAY_13, DAY_14, cli
from tests.webserver import serve

OBSERVATORY = "/science/observatory-reopens.html"
NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def served(room: Newsroom, path: str) -> bytes:
    """The bytes the newsroom serves at ``path``."""
    text = (SITE_DIR / path.lstrip("/")).read_bytes()
    return text.replace(b"{{BASE}}", room.base_url.encode())


def captures_by_page(archive: str, room: Newsroom) -> dict[str, list[tuple[Any, ...]]]:
    """Each page's captures: (article id, body_id, inline body), by the page's path."""
    rows = sql(
        archive,
        "SELECT c.url, c.article_id, c.body_id, c.body FROM captures c ORDER BY c.id",
    )
    pages: dict[str, list[tuple[Any, ...]]] = {}
    for url, article_id, body_id, body in rows:
        path = url.removeprefix(room.base_url).split("#")[0]
        pages.setdefault(path, []).append((article_id, body_id, bytes(body)))
    return pages


def read_every_capture(archive: str) -> dict[int, bytes]:
    """Every article's capture as `Store.capture_body` reads it, by article id."""
    store = Store.open(archive, read_only=True)
    try:
        ids = [a for (a,) in sql(archive, "SELECT article_id FROM captures ORDER BY id")]
        return {a: store.capture_body(store.capture(a)) for a in ids}
    finally:
        store.close()


def test_posts_of_one_page_keep_its_body_once_and_every_reader_gets_its_bytes(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    ingest = cli(tmp_path, newsroom, database_url, "Notes")

    ingest("fetch")

    pages = captures_by_page(database_url, newsroom)
    assert {path: len(rows) for path, rows in pages.items()} == {
        DAY_14: 4,  # four posts of one day page (one it does not hold yet)
        DAY_13: 2,
        OBSERVATORY: 1,
    }
    for rows in pages.values():
        assert len({body_id for _, body_id, _ in rows}) == 1  # one body a page
        assert {inline for *_, inline in rows} == {b""}  # none inline
    assert sql(database_url, "SELECT count(*) FROM capture_bodies") == [(3,)]
    ((size,),) = sql(
        database_url, f"SELECT size FROM capture_bodies WHERE id = {pages[DAY_14][0][1]}"
    )
    assert size == len(served(newsroom, DAY_14))

    # Every reader gets the bytes as served: the store's one reader, ...
    bodies = read_every_capture(database_url)
    for path, rows in pages.items():
        for article_id, _, _ in rows:
            assert bodies[article_id] == served(newsroom, path)
    # ... re-extraction, which finds the same articles in them ...
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # as an older extractor left them
        conn.exec_driver_sql("UPDATE articles SET extractor = NULL")
    engine.dispose()
    redone = ingest.json("reextract", "--all", "--format", "json")
    assert (redone["checked"], redone["unchanged"], redone["failed"]) == (7, 7, 0)
    # ... and the API's download.
    with serve(ingest.config) as server:  # type: ignore[arg-type]
        post = pages[DAY_14][2][0]
        answer = server.get(f"/api/v1/articles/{post}/capture")
    assert answer.status_code == 200
    assert answer.content == served(newsroom, DAY_14)
    assert answer.headers["content-type"] == "text/html; charset=utf-8"

    stats = ingest.json("stats", "--format", "json")["storage"]
    assert (stats["captures"], stats["capture_bodies"]) == (7, 3)
    assert 0 < stats["captures_bytes"] < stats["archive_bytes"]
    assert stats["bytes_per_article"] == round(stats["archive_bytes"] / 7)
    assert 0 < stats["captures_share"] < 1


def gzipped(body: bytes) -> bytes:
    """``body`` as a server may gzip it: a member whose header names a file (FNAME)."""
    out = io.BytesIO()
    with gzip.GzipFile("page.html", "wb", 6, out, mtime=0) as member:
        member.write(body)
    return out.getvalue()


def test_a_gzipped_page_is_kept_as_it_came_and_recompressed_later(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    # Past a few KB, zstd's frames are smaller than gzip's (a smaller page stays as it came).
    links = "".join(
        f'<li><a href="/n/{n}">Harbour story {n * 7919 % 1000}</a></li>' for n in range(600)
    )
    day = served(newsroom, DAY_14).replace(b"</body>", f"<ul>{links}</ul></body>".encode())
    sent = gzipped(day)
    newsroom.set(DAY_14, sent, headers={"Content-Encoding": "gzip"})
    ingest = cli(tmp_path, newsroom, database_url, "Notes")

    ingest("fetch")

    pages = captures_by_page(database_url, newsroom)
    (body_id,) = {body_id for _, body_id, _ in pages[DAY_14]}
    ((size, kept),) = sql(
        database_url, f"SELECT size, body FROM capture_bodies WHERE id = {body_id}"
    )
    kept = bytes(kept)
    # The server's deflate data, untouched, framed as a zlib stream: nothing compressed again.
    assert size == len(day)
    assert kept[:2] == b"\x78\x9c" and kept[2:-4] in sent
    assert zlib.decompress(kept) == day
    bodies = read_every_capture(database_url)
    assert {bodies[article_id] for article_id, *_ in pages[DAY_14]} == {day}
    others = sql(database_url, f"SELECT body FROM capture_bodies WHERE id != {body_id}")
    assert all(bytes(data).startswith(ZSTD_MAGIC) for (data,) in others)  # served as they are

    packed = ingest("db", "pack-captures")
    again = ingest("db", "pack-captures")

    assert "Recompressed 1 body kept as they came (zstd level 6)" in packed.stdout
    assert "Recompressed 0 bodies" in again.stdout
    ((smaller,),) = sql(database_url, f"SELECT body FROM capture_bodies WHERE id = {body_id}")
    assert bytes(smaller).startswith(ZSTD_MAGIC) and len(smaller) < len(kept)
    assert read_every_capture(database_url) == bodies


# --- archives made before revision 0015 -------------------------------------------------------


def old_archive(url: str, room: Newsroom, pages: dict[str, bytes]) -> dict[str, int]:
    """An archive at revision 0013 as the code of then made it: one feed, an article per
    path of ``pages``, each with its capture, the body inline as a zlib stream (a damaged
    body as given). Returns the articles' ids by path."""
    store = Store.open(url, migrate=False)
    store.upgrade("0013")
    store.close()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if engine.dialect.name == "sqlite":  # the search index's triggers call ingest_cjk
        from ingest import cjk

        sa.event.listen(engine, "connect", lambda connection, _: cjk.register(connection))
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO feeds (url, name, error_count, active) "
            f"VALUES ('{room.url('/shared/microblog.rss')}', 'Old', 0, true)"
        )
        for n, (path, body) in enumerate(pages.items()):
            link = room.url(path)
            ids[path] = conn.execute(
                sa.text(
                    "INSERT INTO articles (url_key, url, final_url, feed_id, title, authors, "
                    "text, content_source, status, attempts, fetched_at, created_at, "
                    "enclosures) VALUES (:key, :url, :url, 1, :title, '[]', 'Old text.', "
                    "'page', 'ok', 1, :now, :now, '[]') RETURNING id"
                ),
                {
                    "key": url_key(link, fragment="#" in link),
                    "url": link,
                    "title": f"Old {n}",
                    "now": NOW,
                },
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO captures (article_id, url, status, headers, body, fetched_at) "
                    "VALUES (:a, :url, 200, :headers, :body, :now)"
                ),
                {
                    "a": ids[path],
                    "url": link,
                    "headers": json.dumps({"content-type": "text/html; charset=utf-8"}),
                    "body": body,
                    "now": NOW,
                },
            )
    engine.dispose()
    return ids


def upgrade(url: str) -> None:
    store = Store.open(url, migrate=False)
    store.upgrade()
    store.close()


def test_an_archive_made_before_0015_upgrades_and_its_captures_stay_readable(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    day, observatory = served(newsroom, DAY_13), served(newsroom, OBSERVATORY)
    # Two posts of the day page, each with its copy, as captures were kept before.
    ids = old_archive(
        database_url,
        newsroom,
        {
            f"{DAY_13}#a2130": zlib.compress(day, 1),
            f"{DAY_13}#a0800": zlib.compress(day, 6),
            OBSERVATORY: zlib.compress(observatory, 1),
        },
    )
    ingest = cli(tmp_path, newsroom, database_url, "Notes")

    refused = ingest("stats", check=False)
    upgraded = ingest("db", "upgrade")

    assert refused.returncode == 1 and "ingest db upgrade" in refused.stderr
    assert f"from revision 0013 to {SCHEMA_REVISION}" in upgraded.stdout
    assert sql(database_url, "SELECT count(*) FROM captures WHERE body_id IS NULL") == [(3,)]
    expected = {ids[f"{DAY_13}#a2130"]: day, ids[f"{DAY_13}#a0800"]: day}
    expected[ids[OBSERVATORY]] = observatory
    assert read_every_capture(database_url) == expected
    with serve(ingest.config) as server:  # type: ignore[arg-type]
        answer = server.get(f"/api/v1/articles/{ids[OBSERVATORY]}/capture")
    assert (answer.status_code, answer.content) == (200, observatory)
    redone = ingest.json("reextract", "--all", "--format", "json")
    assert (redone["checked"], redone["failed"], redone["no_capture"]) == (3, 0, 0)

    # New captures beside the old ones (the feed's other posts: those it shares with the old
    # archive are stored already); then the old bodies moved over, each page once.
    ingest("fetch")
    new = sql(database_url, "SELECT count(*) FROM captures WHERE body_id IS NOT NULL")
    packed = ingest("db", "pack-captures")
    again = ingest("db", "pack-captures")

    assert new == [(4,)]  # the four posts of the 14th, one body
    assert packed.stdout.startswith("Packed 3 captures into 2 new bodies")
    assert again.stdout.startswith("Packed 0 captures into 0 new bodies")
    assert sql(database_url, "SELECT count(*) FROM captures WHERE body_id IS NULL") == [(0,)]
    assert sql(database_url, "SELECT count(*) FROM capture_bodies") == [(3,)]
    after = read_every_capture(database_url)
    assert {a: after[a] for a in expected} == expected
    assert len(after) == 7


def test_old_bodies_unknown_to_the_archive_are_packed_once_each(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    day = served(newsroom, DAY_14)
    ids = old_archive(
        database_url,
        newsroom,
        {f"{DAY_14}#a{n}": zlib.compress(day, n) for n in range(1, 6)},
    )
    upgrade(database_url)
    ingest = cli(tmp_path, newsroom, database_url, "Notes")

    packed = ingest("db", "pack-captures", "--batch-size", "2")

    assert packed.stdout.startswith("Packed 5 captures into 1 new body")
    ((body_id, size, data),) = sql(database_url, "SELECT id, size, body FROM capture_bodies")
    assert size == len(day)
    assert zstandard.ZstdDecompressor().decompress(bytes(data)) == day
    rows = sql(database_url, "SELECT article_id, body_id, body FROM captures ORDER BY id")
    assert [(a, b, bytes(inline)) for a, b, inline in rows] == [
        (ids[path], body_id, b"") for path in ids
    ]


def test_a_damaged_capture_is_an_error_that_names_it_and_loses_nothing(
    tmp_path: Path, newsroom: Newsroom, database_url: str
) -> None:
    good = served(newsroom, OBSERVATORY)
    ids = old_archive(
        database_url,
        newsroom,
        {"/broken.html": b"\x78\x9cnot deflate at all", OBSERVATORY: zlib.compress(good)},
    )
    upgrade(database_url)
    ingest = cli(tmp_path, newsroom, database_url, "Notes")
    broken = ids["/broken.html"]

    packed = ingest("db", "pack-captures", check=False)
    redone = ingest("reextract", "--all", check=False)
    with serve(ingest.config) as server:  # type: ignore[arg-type]
        answer = server.get(f"/api/v1/articles/{broken}/capture")
        other = server.get(f"/api/v1/articles/{ids[OBSERVATORY]}/capture")

    assert packed.returncode == 1
    assert packed.stdout.startswith("Packed 1 capture into 1 new body")
    assert f"ingest: error: capture 1 of article {broken}: unreadable body" in packed.stderr
    assert redone.returncode == 1
    assert "1 changed, 0 unchanged, 1 failed" in redone.stdout
    assert f"article {broken}: capture 1 of article {broken}: unreadable body" in redone.stderr
    assert answer.status_code == 500
    assert f"capture 1 of article {broken}: unreadable body" in answer.json()["message"]
    assert (other.status_code, other.content) == (200, good)
    # The damaged body is where it was, as it was.
    assert sql(database_url, "SELECT body_id, body FROM captures WHERE id = 1") == [
        (None, b"\x78\x9cnot deflate at all")
    ]


# --- the codecs ---------------------------------------------------------------------------------

PAGE = b"<html><body>" + b"<p>The ferry left at nine, as every Sunday.</p>" * 300 + b"</html>"


@pytest.mark.parametrize(
    "stored",
    [
        pack(PAGE).data,
        zlib.compress(PAGE, 1),
        zlib.compress(PAGE, 9),
        zstandard.ZstdCompressor(level=3, write_content_size=False).compress(PAGE),
    ],
    ids=["ours", "zlib-1", "zlib-9", "zstd-without-size"],
)
def test_every_codec_the_archive_wrote_reads_back(stored: bytes) -> None:
    assert unpack(stored, what="capture 1") == PAGE


@pytest.mark.parametrize(
    ("encoded", "encoding", "kept"),
    [
        (gzip.compress(PAGE, 6, mtime=0), "gzip", True),
        (gzipped(PAGE), "x-gzip", True),  # a header with a file name
        (zlib.compress(PAGE, 9), "deflate", True),
        (gzip.compress(PAGE) + gzip.compress(b""), "gzip", False),  # two members
        (gzip.compress(PAGE) + b"trailing junk", "gzip", False),
        (gzip.compress(PAGE[:-1] + b"!"), "gzip", False),  # another body's checksum
        (zlib.compress(PAGE)[2:-4], "deflate", False),  # raw deflate: no zlib frame
        (PAGE, "", False),
    ],
    ids=["gzip", "gzip-fname", "zlib", "two-members", "trailing", "other-body", "raw", "none"],
)
def test_a_page_is_kept_as_it_came_only_when_that_holds_exactly_its_body(
    encoded: bytes, encoding: str, kept: bool
) -> None:
    packed = pack(PAGE, encoded, encoding)
    assert (packed.sha256, packed.size) == (pack(PAGE).sha256, len(PAGE))
    assert unpack(packed.data, what="capture 1") == PAGE
    assert packed.data.startswith(ZSTD_MAGIC) is not kept
    assert (as_zlib(encoded, encoding, PAGE) is not None) is kept


def test_a_body_is_addressed_by_its_decoded_bytes() -> None:
    first, second = pack(PAGE), pack(PAGE)
    assert first.sha256 == second.sha256 != pack(PAGE + b" ").sha256
    assert first.size == len(PAGE)
    assert len(first.data) < len(PAGE) / 10


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (b"", "in no known codec"),
        (b"<html>stored raw</html>", "in no known codec"),
        (zlib.compress(PAGE)[:-40], "cut short"),
        (pack(PAGE).data[:-20], "unreadable body"),
        (
            zstandard.ZstdCompressor(
                dict_data=zstandard.ZstdCompressionDict(
                    PAGE[:2000], dict_type=zstandard.DICT_TYPE_RAWCONTENT
                )
            ).compress(PAGE),
            "unreadable body",
        ),
        (
            zstandard.ZstdCompressor(
                dict_data=zstandard.train_dictionary(
                    4096, [PAGE[n : n + 3000] + bytes([n % 251]) * 40 for n in range(0, 9000, 9)]
                )
            ).compress(PAGE),
            "needs zstd dictionary",
        ),
    ],
    ids=["empty", "raw", "cut-zlib", "cut-zstd", "raw-dictionary", "trained-dictionary"],
)
def test_bytes_no_codec_reads_are_an_error_naming_the_capture(stored: bytes, message: str) -> None:
    with pytest.raises(StoreError, match=f"capture 7 of article 3: .*{message}"):
        unpack(stored, what="capture 7 of article 3")


def test_a_body_past_the_cap_is_refused_before_it_is_inflated() -> None:
    with pytest.raises(StoreError, match="over 1000 bytes"):
        unpack(pack(PAGE).data, what="capture 1", max_bytes=1000)
    with pytest.raises(StoreError, match="over 1000 bytes"):
        unpack(zlib.compress(PAGE), what="capture 1", max_bytes=1000)


# --- two writers, one body ----------------------------------------------------------------------


def two_jobs(store: Store) -> list[PageJob]:
    """Two articles whose pages hold the same bytes (a site's page under two URLs)."""
    (feed,) = store.sync_feeds([FeedSettings(url="https://notes.example.org/rss", name="N")])
    entries = [
        FeedEntry(
            key=entry_key(None, link, None, None),
            guid=None,
            link=link,
            title=f"Post {n}",
            summary=None,
            content=None,
        )
        for n, link in enumerate(["https://notes.example.org/a", "https://notes.example.org/b"])
    ]
    return list(store.record_entries(feed, entries).jobs)


def saved(store: Store, job: PageJob, out: dict[int, int | None]) -> None:
    page = Page(job.url, job.url, 200, {"content-type": "text/html"}, b"", NOW)
    out[job.article_id] = store.save_article(
        job, ExtractedArticle(text=f"Post {job.article_id}."), page, raw=pack(PAGE)
    )


def test_two_writers_storing_one_body_at_once_store_it_once(database_url: str) -> None:
    a, b = Store.open(database_url), Store.open(database_url)
    try:
        first, second = two_jobs(a)
        out: dict[int, int | None] = {}
        start = threading.Barrier(2)

        def run(store: Store, job: PageJob) -> None:
            start.wait()
            saved(store, job, out)

        threads = [
            threading.Thread(target=run, args=(a, first)),
            threading.Thread(target=run, args=(b, second)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        a.close()
        b.close()

    assert out == {first.article_id: first.article_id, second.article_id: second.article_id}
    assert sql(database_url, "SELECT count(*) FROM capture_bodies") == [(1,)]
    assert len({b for (b,) in sql(database_url, "SELECT body_id FROM captures")}) == 1


def waiting(url: str, count: int) -> None:
    """Until ``count`` other sessions of this database wait on a lock (PostgreSQL)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid != pg_backend_pid()"
                ).scalar()
            if found == count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{count} sessions never waited on a lock")
    finally:
        engine.dispose()


def test_a_body_another_transaction_is_storing_is_waited_for_then_shared(
    postgres_url: str,
) -> None:
    """The race itself, made certain: the first writer has stored the body but not committed
    (it waits on a lock of ours, taken on the captures table) when the second stores it too."""
    a, b = Store.open(postgres_url), Store.open(postgres_url)
    holder = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        first, second = two_jobs(a)
        out: dict[int, int | None] = {}
        with holder.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("LOCK TABLE captures IN EXCLUSIVE MODE")
            writer = threading.Thread(target=saved, args=(a, first, out))
            writer.start()
            waiting(postgres_url, 1)  # the body in, its capture waiting for the table
            racer = threading.Thread(target=saved, args=(b, second, out))
            racer.start()
            waiting(postgres_url, 2)  # the same body, waiting for the first to commit
            conn.exec_driver_sql("COMMIT")
        writer.join(timeout=60)
        racer.join(timeout=60)
    finally:
        holder.dispose()
        a.close()
        b.close()

    assert out == {first.article_id: first.article_id, second.article_id: second.article_id}
    assert sql(postgres_url, "SELECT count(*) FROM capture_bodies") == [(1,)]
    rows = sql(postgres_url, "SELECT article_id, body_id FROM captures ORDER BY article_id")
    assert [a for a, _ in rows] == [first.article_id, second.article_id]
    assert len({body_id for _, body_id in rows}) == 1
