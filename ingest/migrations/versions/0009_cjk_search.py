"""Chinese and Japanese search: both indexes hold each CJK run as its overlapping bigrams and
its last character (`ingest.cjk`), so a query for a word inside a run finds it.

SQLite: the FTS5 triggers index ``ingest_cjk(title)`` and ``ingest_cjk(text)``, a function
every connection of ``ingest`` registers (`ingest.dbsession`): this revision, and any writing
of articles, needs a connection opened by ``ingest``. PostgreSQL: ``ingest_cjk`` in SQL, called
by the tsvector trigger. Existing articles with CJK in them are indexed again (those without
index the same as before); no row changes but in the index.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Written out here, as ingest.cjk.CJK was when this revision was made: the index must not
# change when the code does.
CJK = (
    r"\u3005-\u3007\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts(rowid, title, text)
        VALUES (new.id, ingest_cjk(new.title), ingest_cjk(new.text));
    END""",
    """CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, text)
        VALUES ('delete', old.id, ingest_cjk(old.title), ingest_cjk(old.text));
    END""",
    """CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, text)
        VALUES ('delete', old.id, ingest_cjk(old.title), ingest_cjk(old.text));
        INSERT INTO articles_fts(rowid, title, text)
        VALUES (new.id, ingest_cjk(new.title), ingest_cjk(new.text));
    END""",
]

# "東京都心": every character after the first of a run doubled ("東京京都都心心"), then cut
# into pairs, the odd last one alone: " 東京  京都  都心  心 ". PostgreSQL's regular
# expressions cannot capture inside a lookahead, hence the doubling.
_POSTGRES_CJK = f"""CREATE FUNCTION ingest_cjk(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT regexp_replace(
        regexp_replace(t, '(?<=[{CJK}])([{CJK}])', '\\1\\1', 'g'),
        '([{CJK}]{{1,2}})', ' \\1 ', 'g')
    $$"""

_POSTGRES_SEARCH = """
    setweight(to_tsvector({config}, coalesce(ingest_cjk({row}title), '')), 'A')
    || setweight(to_tsvector({config}, coalesce(ingest_cjk({row}text), '')), 'B')"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_CJK)
        vector = _POSTGRES_SEARCH.format(config="config", row="NEW.")
        op.execute(
            f"""CREATE OR REPLACE FUNCTION ingest_article_search() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE
                config regconfig := ingest_ts_config(NEW.language);
            BEGIN
                NEW.search := {vector};
                RETURN NEW;
            END $$"""
        )
        vector = _POSTGRES_SEARCH.format(config="ingest_ts_config(language)", row="")
        op.execute(
            f"UPDATE articles SET search = {vector} WHERE title ~ '[{CJK}]' OR text ~ '[{CJK}]'"
        )
        return
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER articles_fts_{name}")
    for ddl in _SQLITE_TRIGGERS:
        op.execute(ddl)
    # Out of the index as indexed before (the text as it is), back in as bigrams.
    changed = "ingest_cjk(title) IS NOT title OR ingest_cjk(text) IS NOT text"
    op.execute(
        "INSERT INTO articles_fts(articles_fts, rowid, title, text) "
        f"SELECT 'delete', id, title, text FROM articles WHERE {changed}"
    )
    op.execute(
        "INSERT INTO articles_fts(rowid, title, text) "
        f"SELECT id, ingest_cjk(title), ingest_cjk(text) FROM articles WHERE {changed}"
    )
