"""Capture bodies stored once: ``capture_bodies`` holds each page body as received (SHA-256 of
the decoded bytes, unique; decoded size; the bytes compressed, zstd since this revision), and
``captures.body_id`` points a capture at its body, so that the posts of one page, a podcast's
episodes on the show's page and the re-checks of an unchanged page keep it once.

Captures already stored keep their inline zlib body (``body_id`` NULL): a new table and a new
nullable column, so the upgrade rewrites nothing and takes no time whatever the archive's size
(`ingest db pack-captures` moves old bodies over later, in batches, when wanted). New captures
write an empty ``body``: the column stays NOT NULL, which SQLite could only relax by copying
the whole table.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_bodies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String, nullable=False, unique=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in place; Alembic would add the reference
        # as a constraint apart, which SQLite only does by copying the table.
        op.execute("ALTER TABLE captures ADD COLUMN body_id INTEGER REFERENCES capture_bodies (id)")
    else:
        op.add_column(
            "captures", sa.Column("body_id", sa.Integer, sa.ForeignKey("capture_bodies.id"))
        )
    op.create_index("ix_captures_body_id", "captures", ["body_id"])
