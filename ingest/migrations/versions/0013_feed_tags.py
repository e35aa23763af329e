"""Feed tags: ``feeds.tags``, the tags the config gives each feed (a JSON list of strings,
``[]`` for every feed already there until the next sync writes the config's), so that
``--tag`` selects the articles of the feeds that have one.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "feeds", sa.Column("tags", sa.JSON, nullable=False, server_default=sa.text("'[]'"))
    )
