"""Capture requests: ``captures.request_headers``, the headers of the request that got each
kept page, as sent (JSON), so that a WARC export writes the request as it was; NULL for the
captures already there, whose request was not kept (the export reconstructs a minimal GET).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("captures", sa.Column("request_headers", sa.JSON, nullable=True))
