"""Leases, so that several workers share one archive: who holds a feed's poll or an article's
page fetch and until when; and each host's next free request time, shared by every worker.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN everywhere: nothing is rebuilt or dropped.
    for table in ("feeds", "articles"):
        op.add_column(table, sa.Column("lease_owner", sa.String))
        op.add_column(table, sa.Column("lease_until", sa.DateTime))
    # Epoch seconds (not a timestamp): reserved with plain arithmetic in one portable UPDATE.
    op.add_column("hosts", sa.Column("next_request_at", sa.Float))
    # The leases a worker holds, renewed every tick: found without reading every article.
    op.create_index(
        "ix_articles_lease",
        "articles",
        ["lease_owner"],
        postgresql_where=sa.text("lease_owner IS NOT NULL"),
        sqlite_where=sa.text("lease_owner IS NOT NULL"),
    )
    # The page queue, claimed oldest first: pending pages and failed ones with a retry to come
    # (written out here: a migration must not change when the models do).
    claimable = "status = 'pending' OR (status = 'failed' AND next_attempt_at IS NOT NULL)"
    op.create_index(
        "ix_articles_claim",
        "articles",
        ["id"],
        postgresql_where=sa.text(claimable),
        sqlite_where=sa.text(claimable),
    )
