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

from ingest.models import Article, StoryBand, StoryFingerprint
from ingest.stories import THRESHOLD, Fingerprint, containment

MAX_CANDIDATES = 16

_ARTICLES = Article.__table__  # type: ignore[attr-defined]
_PRINTS = StoryFingerprint.__table__  # type: ignore[attr-defined]
_BANDS = StoryBand.__table__  # type: ignore[attr-defined]


class _Statements:
    """What `link` runs, built once with bound parameters (it runs for every article)."""

    def __init__(self) -> None:
        bands = _BANDS.c
        shared = sa.func.count().label("shared")
        candidates = (
            sa.select(bands.article_id, shared)
            .where(
                bands.band.in_(sa.bindparam("keys", expanding=True)),
                bands.article_id != sa.bindparam("id"),
            )
            .group_by(bands.article_id)
            .order_by(shared.desc(), bands.article_id)
            .limit(MAX_CANDIDATES)
            .subquery()
        )
        self.candidates = (
            sa.select(
                _PRINTS.c.article_id, _PRINTS.c.signature, _PRINTS.c.shingles, _ARTICLES.c.story_id
            )
            .join(candidates, candidates.c.article_id == _PRINTS.c.article_id)
            .join(_ARTICLES, _ARTICLES.c.id == _PRINTS.c.article_id)
        )
        self.forget_bands = sa.delete(_BANDS).where(_BANDS.c.article_id == sa.bindparam("id"))
        self.forget_print = sa.delete(_PRINTS).where(_PRINTS.c.article_id == sa.bindparam("id"))
        self.add_print = sa.insert(_PRINTS)
        self.add_bands = sa.insert(_BANDS)
        self.set_story = (
            sa.update(_ARTICLES)
            .where(_ARTICLES.c.id == sa.bindparam("id"))
            .values(story_id=sa.bindparam("story"))
        )


_STATEMENTS = _Statements()


def find_story(
    conn: sa.Connection, article_id: int, fingerprint: Fingerprint, keys: list[int]
) -> int | None:
    """The story of the archived article ``fingerprint`` (band ``keys``) matches best, if
    any reaches `THRESHOLD`."""
    best: tuple[float, int] | None = None
    rows = conn.execute(_STATEMENTS.candidates, {"keys": keys, "id": article_id}).all()
    for candidate, signature, shingles, story in rows:
        score = containment(fingerprint, Fingerprint.from_bytes(signature, shingles))
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
    fingerprint) has none. ``again``: the article was linked before (its text changed), its
    old keys go. Returns the story."""
    if again:
        conn.execute(_STATEMENTS.forget_bands, {"id": article_id})
        conn.execute(_STATEMENTS.forget_print, {"id": article_id})
    if fingerprint is None:
        if story is None:
            return None
        conn.execute(_STATEMENTS.set_story, {"id": article_id, "story": None})
        return None
    keys = fingerprint.bands
    if story is None:
        story = find_story(conn, article_id, fingerprint, keys) or article_id
        conn.execute(_STATEMENTS.set_story, {"id": article_id, "story": story})
    conn.execute(
        _STATEMENTS.add_print,
        {
            "article_id": article_id,
            "signature": fingerprint.to_bytes(),
            "shingles": fingerprint.shingles,
        },
    )
    conn.execute(_STATEMENTS.add_bands, [{"band": key, "article_id": article_id} for key in keys])
    return story
