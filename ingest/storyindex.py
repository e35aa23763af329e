"""Stories in the archive: an article stored with its text's fingerprint joins the story of
the copy it matches, found through the band keys' index (``story_bands``) and verified
against the copy's signature (``story_fingerprints``); else it starts a story of its own.

``articles.story_id`` is the id of the story's first article. Stories grow one article at a
time and never merge: a new article joins the story of the candidate it matches best. The
cost of a new article is an index lookup per band key plus its rows, however large the
archive; a key shared by more articles than usual (a phrase every article of a site carries)
yields at most `MAX_CANDIDATES` candidates, those sharing the most keys.
"""

from __future__ import annotations

import sqlalchemy as sa

from ingest.stories import BANDS, THRESHOLD, Fingerprint, similarity

MAX_CANDIDATES = 16

# Written for the driver (each "?" becomes its parameter marker): these run for every article
# stored, and SQLAlchemy's statement handling cost as much as SQLite's work (bench.wire).
_CANDIDATES = f"""SELECT f.article_id, f.signature, f.shingles, a.story_id
FROM (SELECT article_id, count(*) AS shared FROM story_bands
      WHERE band IN ({", ".join(["?"] * BANDS)}) AND article_id != ?
      GROUP BY article_id ORDER BY shared DESC, article_id LIMIT {MAX_CANDIDATES}) c
JOIN story_fingerprints f ON f.article_id = c.article_id
JOIN articles a ON a.id = c.article_id"""
_ADD_BAND = "INSERT INTO story_bands (band, article_id) VALUES (?, ?)"
_ADD_PRINT = "INSERT INTO story_fingerprints (article_id, signature, shingles) VALUES (?, ?, ?)"
_SET_STORY = "UPDATE articles SET story_id = ? WHERE id = ?"
_OLD_PRINT = "SELECT signature, shingles FROM story_fingerprints WHERE article_id = ?"
_FORGET_BAND = "DELETE FROM story_bands WHERE band = ? AND article_id = ?"
_FORGET_PRINT = "DELETE FROM story_fingerprints WHERE article_id = ?"


def _sql(conn: sa.Connection, statement: str) -> str:
    """``statement`` with the driver's parameter markers (SQLite "?", psycopg "%s")."""
    return statement if conn.dialect.paramstyle == "qmark" else statement.replace("?", "%s")


def find_story(
    conn: sa.Connection, article_id: int, fingerprint: Fingerprint, keys: list[int]
) -> int | None:
    """The story of the archived article ``fingerprint`` (band ``keys``) matches best, if
    any reaches `THRESHOLD`."""
    best: tuple[float, int] | None = None
    rows = conn.exec_driver_sql(_sql(conn, _CANDIDATES), (*keys, article_id)).all()
    for candidate, signature, shingles, story in rows:
        score = similarity(fingerprint, Fingerprint.from_bytes(bytes(signature), shingles))
        story = story or candidate
        # The best match; equal ones: the older story.
        if score >= THRESHOLD and (best is None or (-score, story) < (-best[0], best[1])):
            best = (score, story)
    return best[1] if best else None


def link(
    conn: sa.Connection,
    article_id: int,
    fingerprint: Fingerprint | None,
    *,
    story: int | None = None,
    again: bool = False,
) -> int | None:
    """Record the fingerprint of a stored article and set its story: ``story`` if it has one
    already, else the one it is a copy of, else its own. A text too short to tell (no
    fingerprint) has none. ``again``: the article may have been linked before (its text
    changed): its old keys go. Returns the story."""
    if again:
        _forget(conn, article_id)
    if fingerprint is None:
        if story is not None:
            conn.exec_driver_sql(_sql(conn, _SET_STORY), (None, article_id))
        return None
    keys = fingerprint.bands
    if story is None:
        story = find_story(conn, article_id, fingerprint, keys) or article_id
        conn.exec_driver_sql(_sql(conn, _SET_STORY), (story, article_id))
    remember(conn, article_id, fingerprint, keys)
    return story


def story_of(
    conn: sa.Connection, article_id: int, fingerprint: Fingerprint | None
) -> tuple[int | None, list[int]]:
    """What `link` does for a new article, in two steps: the story it joins (that of the copy
    it is of, else its own; None for a text too short to tell) and its band keys, for the
    caller to write with the article's row (one UPDATE of it, not two); then `remember`."""
    if fingerprint is None:
        return None, []
    keys = fingerprint.bands
    return find_story(conn, article_id, fingerprint, keys) or article_id, keys


def remember(
    conn: sa.Connection, article_id: int, fingerprint: Fingerprint, keys: list[int]
) -> None:
    """Record an article's fingerprint and band keys (``fingerprint.bands``)."""
    conn.exec_driver_sql(
        _sql(conn, _ADD_PRINT), (article_id, fingerprint.to_bytes(), fingerprint.shingles)
    )
    conn.exec_driver_sql(_sql(conn, _ADD_BAND), [(key, article_id) for key in keys])


def _forget(conn: sa.Connection, article_id: int) -> None:
    """An article's fingerprint and band keys gone: the keys are found from the signature,
    each by the primary key (the table has no index by article)."""
    old = conn.exec_driver_sql(_sql(conn, _OLD_PRINT), (article_id,)).first()
    if old is None:
        return
    keys = Fingerprint.from_bytes(bytes(old[0]), old[1]).bands
    conn.exec_driver_sql(_sql(conn, _FORGET_BAND), [(key, article_id) for key in keys])
    conn.exec_driver_sql(_sql(conn, _FORGET_PRINT), (article_id,))
