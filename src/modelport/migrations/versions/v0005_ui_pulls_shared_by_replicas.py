"""Web UI pulls in the database: every replica follows and cancels any replica's pull.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

One row per pull started from the Store page: where it stands (written by the replica
running it, a few times a second at most, and its end always), whether a user asked to
cancel it (any replica sets the flag, the running one polls it), and how many times a
progress stream looked at it (a stream on any replica keeps the pull alive). Rows of pulls
that ended a day ago are pruned by the server.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _string(length: int) -> sa.types.TypeEngine[str]:
    """VARCHAR on SQLite (never enforced there), TEXT on PostgreSQL: as revision 0002."""
    return sa.String(length).with_variant(sa.Text(), "postgresql")


def upgrade() -> None:
    """Make the table of web UI pulls."""
    utc = sa.DateTime(timezone=True)
    big = sa.Integer().with_variant(sa.BigInteger(), "postgresql")
    op.create_table(
        "ui_pulls",
        sa.Column("id", _string(64), primary_key=True),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("replica", _string(300), nullable=False),
        sa.Column("state", _string(16), nullable=False),
        sa.Column("status", _string(200), nullable=False),
        sa.Column("file", sa.Text, nullable=True),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("completed", big, nullable=False),
        sa.Column("total", big, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("watches", big, nullable=False),
        sa.Column("watched_at", utc, nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
    )
    op.create_index("ix_ui_pulls_updated_at", "ui_pulls", ["updated_at"])


def downgrade() -> None:
    """Drop the web UI pulls (a running one goes on, followed on its replica only)."""
    op.drop_index("ix_ui_pulls_updated_at", table_name="ui_pulls")
    op.drop_table("ui_pulls")
