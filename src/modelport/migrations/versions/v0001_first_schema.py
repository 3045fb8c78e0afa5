"""The first schema: the tables modelport made before it had migrations.

Revision ID: 0001
Revises:
Create Date: 2026-12-04

A frozen copy of the tables as ``db.py`` defined them then; later revisions change them.
A database made before migrations has some or all of these tables already (each
modelport release added the tables it needed, whole): only the missing ones are made,
so its rows stay. On SQLite, triggers keep the catalog stamp (``catalog_state``) that
the catalog snapshot is keyed by.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def _tables() -> list[tuple[str, list[sa.Column[object]], list[str]]]:
    """(name, columns, indexed columns) of every table, in creation order."""
    return [
        (
            "catalog_entries",
            [
                sa.Column("id", sa.String(256), primary_key=True),
                sa.Column("origin", sa.String(300), nullable=False),
                sa.Column("data", sa.Text, nullable=False),
                sa.Column("updated_at", _UTC, nullable=False),
            ],
            ["origin"],
        ),
        (
            "catalog_state",
            [
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("stamp", sa.String(64), nullable=False),
            ],
            [],
        ),
        (
            "model_usage",
            [
                sa.Column("id", sa.String(256), primary_key=True),
                sa.Column("count", sa.Integer, nullable=False),
                sa.Column("last_used", _UTC, nullable=True),
            ],
            [],
        ),
        (
            "catalog_sources",
            [
                sa.Column("name", sa.String(100), primary_key=True),
                sa.Column("url", sa.Text, nullable=False),
                sa.Column("format", sa.String(32), nullable=False),
                sa.Column("entry_count", sa.Integer, nullable=False),
                sa.Column("etag", sa.Text, nullable=True),
                sa.Column("refreshed_at", _UTC, nullable=True),
            ],
            [],
        ),
        (
            "store_models",
            [
                sa.Column("key", sa.String(600), primary_key=True),
                sa.Column("registry", sa.String(32), nullable=False),
                sa.Column("name", sa.String(400), nullable=False),
                sa.Column("revision", sa.String(100), nullable=False),
                sa.Column("ref", sa.Text, nullable=False),
                sa.Column("requested", sa.String(200), nullable=True),
                sa.Column("size", sa.Integer, nullable=False),
                sa.Column("file_count", sa.Integer, nullable=False),
                sa.Column("task", sa.String(100), nullable=True),
                sa.Column("library", sa.String(100), nullable=True),
                sa.Column("pulled_at", _UTC, nullable=False),
                sa.Column("last_used", _UTC, nullable=True),
                sa.Column("use_count", sa.Integer, nullable=False),
            ],
            ["registry", "name"],
        ),
        (
            "store_files",
            [
                sa.Column("model_key", sa.String(600), primary_key=True),
                sa.Column("path", sa.String(1024), primary_key=True),
                sa.Column("sha256", sa.String(64), nullable=False),
                sa.Column("size", sa.Integer, nullable=False),
                sa.Column("digest_kind", sa.String(16), nullable=False),
                sa.Column("digest", sa.String(64), nullable=False),
            ],
            ["sha256"],
        ),
        (
            "store_refs",
            [
                sa.Column("registry", sa.String(32), primary_key=True),
                sa.Column("name", sa.String(400), primary_key=True),
                sa.Column("ref", sa.String(200), primary_key=True),
                sa.Column("revision", sa.String(100), nullable=False),
                sa.Column("updated_at", _UTC, nullable=False),
            ],
            [],
        ),
        (
            "store_counters",
            [
                sa.Column("name", sa.String(64), primary_key=True),
                sa.Column("value", sa.Integer, nullable=False),
            ],
            [],
        ),
        (
            "trusted_sources",
            [
                sa.Column("kind", sa.String(32), primary_key=True),
                sa.Column("name", sa.String(400), primary_key=True),
                sa.Column("added_at", _UTC, nullable=False),
            ],
            [],
        ),
        (
            "call_log",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("started_at", _UTC, nullable=False),
                sa.Column("model", sa.String(400), nullable=False),
                sa.Column("provider", sa.String(100), nullable=False),
                sa.Column("access", sa.String(16), nullable=False),
                sa.Column("origin", sa.String(16), nullable=False),
                sa.Column("operation", sa.String(32), nullable=False),
                sa.Column("input_tokens", sa.Integer, nullable=True),
                sa.Column("output_tokens", sa.Integer, nullable=True),
                sa.Column("cached_tokens", sa.Integer, nullable=True),
                sa.Column("reasoning_tokens", sa.Integer, nullable=True),
                sa.Column("latency_ms", sa.Float, nullable=False),
                sa.Column("ttft_ms", sa.Float, nullable=True),
                sa.Column("cost_usd", sa.Float, nullable=True),
                sa.Column("status", sa.String(64), nullable=False),
                sa.Column("served_by", sa.String(400), nullable=True),
            ],
            ["started_at"],
        ),
    ]


_NEW_STAMP = "lower(hex(randomblob(16)))"
#: SQLite only: PostgreSQL databases bypass the catalog snapshot.
_SQLITE_STAMP = (
    f"INSERT OR IGNORE INTO catalog_state (id, stamp) VALUES (1, {_NEW_STAMP})",
    *(
        f"CREATE TRIGGER IF NOT EXISTS catalog_entries_stamp_{op_.lower()} "
        f"AFTER {op_} ON catalog_entries BEGIN "
        f"UPDATE catalog_state SET stamp = {_NEW_STAMP} WHERE id = 1; END"
        for op_ in ("INSERT", "UPDATE", "DELETE")
    ),
)


def upgrade() -> None:
    """Make the tables a database lacks, and on SQLite the catalog stamp's row and triggers."""
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for name, columns, indexed in _tables():
        if name in existing:
            continue
        op.create_table(name, *columns)
        for column in indexed:
            op.create_index(f"ix_{name}_{column}", name, [column])
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_STAMP:
            op.execute(statement)


def downgrade() -> None:
    """Drop every table of the first schema (and with them, the triggers)."""
    for name, _columns, _indexed in reversed(_tables()):
        op.drop_table(name)
