"""The revisions of the schema, oldest first (Alembic reads them; nothing imports them)."""
