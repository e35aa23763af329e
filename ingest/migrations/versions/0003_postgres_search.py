"""PostgreSQL full-text search: a weighted tsvector per article, in its language, GIN-indexed.

SQLite searches through the FTS5 table of 0001; on SQLite this revision changes nothing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# ISO 639-1 code -> PostgreSQL text search configuration (those PostgreSQL 13+ ship).
CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    cases = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in CONFIGS.items())
    op.execute(
        "CREATE FUNCTION ingest_ts_config(lang text) RETURNS regconfig "
        f"LANGUAGE sql IMMUTABLE AS $$ SELECT (CASE lang {cases} ELSE 'simple' END)::regconfig $$"
    )
    op.execute("ALTER TABLE articles ADD COLUMN search tsvector")
    op.execute(
        """CREATE FUNCTION ingest_article_search() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            config regconfig := ingest_ts_config(NEW.language);
        BEGIN
            NEW.search := setweight(to_tsvector(config, coalesce(NEW.title, '')), 'A')
                || setweight(to_tsvector(config, coalesce(NEW.text, '')), 'B');
            RETURN NEW;
        END $$"""
    )
    op.execute(
        "CREATE TRIGGER articles_search BEFORE INSERT OR UPDATE OF title, text, language "
        "ON articles FOR EACH ROW EXECUTE FUNCTION ingest_article_search()"
    )
    op.execute("CREATE INDEX ix_articles_search ON articles USING gin (search)")
