"""Alembic migrations of the archive schema; run by `ingest db upgrade` (and on a new archive)."""
