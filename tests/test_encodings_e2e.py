"""Pages in legacy charsets, undeclared or wrongly declared, through the real `ingest fetch`;
and articles stored garbled repaired from their raw capture by `ingest reextract`.

The newsroom serves its windows-1252 and Shift_JIS fixture pages with their ``<meta>`` charset
taken out and a Content-Type that says nothing, or says UTF-8: what the bytes are must be
found from the bytes.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from ingest import cjk
from tests.conftest import Ingest, write_config
from tests.newsroom import SITE_DIR, Newsroom

LATIN = "/news/legacy-1252.html"
JAPANESE = "/news/tokyo-sjis.html"
_META_CHARSET = re.compile(rb"<meta charset=[^>]*>", re.IGNORECASE)


def serve_undeclared(newsroom: Newsroom, path: str, content_type: str) -> None:
    body = _META_CHARSET.sub(b"", (SITE_DIR / path.lstrip("/")).read_bytes())
    assert b"charset" not in body.lower()
    body = body.replace(b"{{BASE}}", newsroom.base_url.encode())
    newsroom.set(path, body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=utf-8"])
def test_pages_that_declare_no_charset_or_a_wrong_one_are_stored_right(
    ingest: Ingest, newsroom: Newsroom, content_type: str
) -> None:
    serve_undeclared(newsroom, LATIN, content_type)
    serve_undeclared(newsroom, JAPANESE, content_type)

    ingest("fetch", "--feed", "Wire")
    latin = ingest.json("show", newsroom.url(LATIN), "--format", "json")
    japanese = ingest.json("show", newsroom.url(JAPANESE), "--format", "json")

    assert "£3" in latin["title"]
    assert all(ch in latin["text"] for ch in "“”’—é")
    assert japanese["text"] == newsroom.expected("tokyo-sjis")["text"]
    assert "\ufffd" not in latin["title"] + latin["text"] + japanese["text"]


def test_articles_stored_garbled_are_repaired_from_their_capture(
    ingest: Ingest, newsroom: Newsroom, archive: Path
) -> None:
    ingest("fetch", "--feed", "Wire")
    latin = ingest.json("show", newsroom.url(LATIN), "--format", "json")
    japanese = ingest.json("show", newsroom.url(JAPANESE), "--format", "json")
    # As an earlier version stored them: undecodable bytes as U+FFFD, UTF-8 read as cp1252.
    with sqlite3.connect(archive) as db:
        cjk.register(db)  # the search index's triggers call it
        db.execute(
            "UPDATE articles SET text = ?, title = ? WHERE id = ?",
            (
                latin["text"].replace("é", "\ufffd"),
                latin["title"].replace("£", "\ufffd"),
                latin["id"],
            ),
        )
        mangled = japanese["text"].encode("utf-8").decode("cp1252", errors="replace")
        db.execute("UPDATE articles SET text = ? WHERE id = ?", (mangled, japanese["id"]))
    newsroom.clear_log()

    result = ingest("reextract")
    after_latin = ingest.json("show", str(latin["id"]), "--format", "json")
    after_japanese = ingest.json("show", str(japanese["id"]), "--format", "json")
    hits = ingest.json("search", "Marchetti", "--format", "json")

    assert "Re-extracted 2 garbled articles from their captures: 2 changed" in result.stdout
    assert (after_latin["title"], after_latin["text"]) == (latin["title"], latin["text"])
    assert after_japanese["text"] == japanese["text"]
    assert newsroom.requests == []  # no network
    assert any(hit["id"] == latin["id"] for hit in hits)  # the search index follows

    again = ingest.json("reextract", "--all", "--format", "json")
    assert (again["checked"], again["changed"]) == (0, 0)  # the current extractor made them


def test_reextract_says_when_no_page_was_kept(tmp_path: Path, newsroom: Newsroom) -> None:
    config = write_config(
        tmp_path / "ingest.toml",
        newsroom,
        database=tmp_path / "a.sqlite3",
        extra="[extract]\nkeep_raw = false",
    )
    cli = Ingest(tmp_path, config)
    cli("fetch", "--feed", "Wire")
    with sqlite3.connect(tmp_path / "a.sqlite3") as db:  # as archived before extractors were
        db.execute("UPDATE articles SET extractor = NULL")

    result = cli("reextract", "--all")

    assert "0 changed" in result.stdout and "without a kept page" in result.stdout
    assert "keep_raw" in result.stderr
