"""The catalog at scale on PostgreSQL: a search table with B-tree, GIN and trigram indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

PostgreSQL only (SQLite keeps the in-process catalog; the revision only moves its
version). ``catalog_search`` holds one row per user or remote entry with what filters,
sorts and fuzzy lookups read, so that a server answers them with indexed SQL instead of
loading every entry. Triggers on ``catalog_entries`` keep its rows (a written entry's row
is marked ``pending`` until the catalog computes it, in the same transaction when
modelport writes) and tell every replica what changed (``NOTIFY modelport_catalog``).
The existing entries are backfilled here as pending rows; their columns are computed by
the catalog's own normalization code (not SQL that could drift from it) the first time a
server opens the database, under the catalog's write lock.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLE = """
CREATE TABLE catalog_search (
    id text COLLATE "C" PRIMARY KEY,
    pending boolean NOT NULL DEFAULT true,
    lower_id text COLLATE "C",
    name_key text COLLATE "C",
    provider text COLLATE "C",
    category text,
    source text,
    status text,
    tasks text[],
    tags text[],
    capabilities text[],
    alias_keys text[],
    name_keys text[],
    words text[],
    fuzzy text,
    context bigint,
    price double precision,
    vram double precision,
    parameters bigint,
    release date,
    has_pricing boolean,
    has_requirements boolean,
    rank real NOT NULL DEFAULT 0,
    usage bigint NOT NULL DEFAULT 0
)
"""

#: (name, definition) of each index; sort columns carry the id that breaks their ties.
INDEXES = (
    ("ix_catalog_search_lower_id", "(lower_id, id)"),
    ("ix_catalog_search_name", "(name_key, id)"),
    ("ix_catalog_search_provider", "(provider, id)"),
    ("ix_catalog_search_category", "(category, id)"),
    ("ix_catalog_search_context", "(context, id)"),
    ("ix_catalog_search_price", "(price, id)"),
    ("ix_catalog_search_vram", "(vram, id)"),
    ("ix_catalog_search_parameters", "(parameters, id)"),
    ("ix_catalog_search_release", "(release, id)"),
    ("ix_catalog_search_usage", "(usage, id)"),
    ("ix_catalog_search_capabilities", "USING gin (capabilities)"),
    ("ix_catalog_search_tags", "USING gin (tags)"),
    ("ix_catalog_search_tasks", "USING gin (tasks)"),
    ("ix_catalog_search_alias_keys", "USING gin (alias_keys)"),
    ("ix_catalog_search_name_keys", "USING gin (name_keys)"),
    ("ix_catalog_search_words", "USING gin (words)"),
    # GIN, for a word of the query no name holds (a typo): ``word <% fuzzy`` reads the
    # postings of its trigrams. (A GiST index ordered by distance saturates its signatures
    # on a million names that share most trigrams: 0.7 s a lookup.)
    ("ix_catalog_search_fuzzy", "USING gin (fuzzy gin_trgm_ops)"),
    ("ix_catalog_search_pending", "(id) WHERE pending"),
)

#: Statement-level, with transition tables: one bulk import is one set-based update of
#: the search rows and one notification (ids, or ``*`` when they would not fit).
_FUNCTION = """
CREATE FUNCTION modelport_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM catalog_search s USING old_rows o WHERE s.id = o.id;
        SELECT string_agg(id, E'\\n') INTO ids FROM (SELECT id FROM old_rows LIMIT 200) t;
        IF (SELECT count(*) FROM old_rows) > 200 THEN ids := '*'; END IF;
    ELSE
        INSERT INTO catalog_search (id) SELECT id FROM new_rows
            ON CONFLICT (id) DO UPDATE SET pending = true;
        SELECT string_agg(id, E'\\n') INTO ids FROM (SELECT id FROM new_rows LIMIT 200) t;
        IF (SELECT count(*) FROM new_rows) > 200 THEN ids := '*'; END IF;
    END IF;
    IF ids IS NOT NULL THEN
        IF length(ids) > 7000 THEN ids := '*'; END IF;
        PERFORM pg_notify('modelport_catalog', ids);
    END IF;
    RETURN NULL;
END
$$
"""

_TRIGGERS = (
    ("catalog_entries_search_insert", "INSERT", "NEW TABLE AS new_rows"),
    ("catalog_entries_search_update", "UPDATE", "NEW TABLE AS new_rows"),
    ("catalog_entries_search_delete", "DELETE", "OLD TABLE AS old_rows"),
)


def upgrade() -> None:
    """Make the search table, its indexes and triggers, and backfill it (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(_TABLE)
    # Fuzzy lookups read which words are common from the statistics of ``words``.
    op.execute("ALTER TABLE catalog_search ALTER COLUMN words SET STATISTICS 1000")
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX {name} ON catalog_search {definition}")
    op.execute(_FUNCTION)
    for name, event, referencing in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON catalog_entries "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            "EXECUTE FUNCTION modelport_catalog_changed()"
        )
    # The existing entries, pending until the catalog computes their columns.
    op.execute("INSERT INTO catalog_search (id) SELECT id FROM catalog_entries")
    op.execute("UPDATE catalog_search s SET usage = u.count FROM model_usage u WHERE u.id = s.id")


def downgrade() -> None:
    """Drop the search table and its triggers (the entries stay)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _event, _referencing in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON catalog_entries")
    op.execute("DROP FUNCTION modelport_catalog_changed()")
    op.execute("DROP TABLE catalog_search")
