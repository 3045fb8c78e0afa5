"""PostgreSQL keeps what SQLite keeps: 64-bit sizes, counts and ids; strings of any length.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

SQLite's INTEGER holds 64 bits and it never enforces a VARCHAR's length, so the first
schema worked there for any model. On PostgreSQL a model over 2 GiB, a count past two
billion or a reference longer than its column failed to be recorded. Nothing changes
on SQLite (the revision only moves its version).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: (table, column, length) of every VARCHAR of the first schema.
_STRINGS = (
    ("catalog_entries", "id", 256),
    ("catalog_entries", "origin", 300),
    ("catalog_state", "stamp", 64),
    ("model_usage", "id", 256),
    ("catalog_sources", "name", 100),
    ("catalog_sources", "format", 32),
    ("store_models", "key", 600),
    ("store_models", "registry", 32),
    ("store_models", "name", 400),
    ("store_models", "revision", 100),
    ("store_models", "requested", 200),
    ("store_models", "task", 100),
    ("store_models", "library", 100),
    ("store_files", "model_key", 600),
    ("store_files", "path", 1024),
    ("store_files", "sha256", 64),
    ("store_files", "digest_kind", 16),
    ("store_files", "digest", 64),
    ("store_refs", "registry", 32),
    ("store_refs", "name", 400),
    ("store_refs", "ref", 200),
    ("store_refs", "revision", 100),
    ("store_counters", "name", 64),
    ("trusted_sources", "kind", 32),
    ("trusted_sources", "name", 400),
    ("call_log", "model", 400),
    ("call_log", "provider", 100),
    ("call_log", "access", 16),
    ("call_log", "origin", 16),
    ("call_log", "operation", 32),
    ("call_log", "status", 64),
    ("call_log", "served_by", 400),
)
#: (table, column) of every INTEGER that becomes BIGINT.
_BIG = (
    ("model_usage", "count"),
    ("store_models", "size"),
    ("store_models", "use_count"),
    ("store_files", "size"),
    ("store_counters", "value"),
    ("call_log", "id"),
)


def upgrade() -> None:
    """On PostgreSQL: VARCHAR columns become TEXT, and counts, sizes and ids BIGINT."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in _STRINGS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))
    for table, column in _BIG:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
    # The call log's ids come from a sequence of its own, 32-bit until told otherwise.
    op.execute(
        "DO $$ DECLARE seq text := pg_get_serial_sequence('call_log', 'id'); BEGIN "
        "IF seq IS NOT NULL THEN EXECUTE format('ALTER SEQUENCE %s AS bigint', seq); "
        "END IF; END $$"
    )


def downgrade() -> None:
    """Back to the first schema's types (fails where a value no longer fits them)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "DO $$ DECLARE seq text := pg_get_serial_sequence('call_log', 'id'); BEGIN "
        "IF seq IS NOT NULL THEN EXECUTE format('ALTER SEQUENCE %s AS integer', seq); "
        "END IF; END $$"
    )
    for table, column in _BIG:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
    for table, column, length in _STRINGS:
        op.alter_column(table, column, type_=sa.String(length), existing_type=sa.Text())
