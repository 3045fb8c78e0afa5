"""Entry versions: every change to a user or remote entry keeps the version it ended.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

One row per ended version: the entry as it was, where it came from, when it was written
and when, how (replaced or removed), by what (``user`` or ``remote:NAME``) and by whom
(account@host) it ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _string(length: int) -> sa.types.TypeEngine[str]:
    """VARCHAR on SQLite (never enforced there), TEXT on PostgreSQL: as revision 0002."""
    return sa.String(length).with_variant(sa.Text(), "postgresql")


def upgrade() -> None:
    """Make the table of entry versions."""
    utc = sa.DateTime(timezone=True)
    op.create_table(
        "catalog_entry_versions",
        sa.Column(
            "id",
            sa.Integer().with_variant(sa.BigInteger(), "postgresql"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("entry_id", _string(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("origin", _string(300), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("written_at", utc, nullable=False),
        sa.Column("replaced_at", utc, nullable=False),
        sa.Column("change", _string(16), nullable=False),
        sa.Column("changed_by", _string(300), nullable=False),
        sa.Column("actor", _string(300), nullable=False),
        sa.UniqueConstraint("entry_id", "version", name="uq_catalog_entry_versions_entry_version"),
    )


def downgrade() -> None:
    """Drop the entry versions (the current entries stay)."""
    op.drop_table("catalog_entry_versions")
