"""Database use-cases: the schema revision a database is at, upgrading it, the migrations.

Every process upgrades its database when it first opens it (``db.get_engine``); these
say what that did or would do, and let an operator run it at a time of their choosing.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelport.settings import get_settings

__all__ = [
    "DatabaseStatus",
    "DatabaseUpgrade",
    "SchemaRevision",
    "database_history",
    "database_status",
    "upgrade_database",
]


@dataclass(frozen=True)
class DatabaseStatus:
    """Which schema revision the database is at, and the newest one this modelport has.

    ``revision`` is None for a database not yet made, or made before migrations.
    ``known`` is False for a revision a newer modelport wrote.
    """

    database: str
    revision: str | None
    head: str
    known: bool
    up_to_date: bool


@dataclass(frozen=True)
class DatabaseUpgrade:
    """What an upgrade did: the revision before (None: a new or pre-migration database)
    and after."""

    database: str
    before: str | None
    after: str
    changed: bool


@dataclass(frozen=True)
class SchemaRevision:
    """One migration: its id, what it changes, the revision it follows, and whether it is
    the newest."""

    id: str
    message: str
    down_revision: str | None
    head: bool


def database_status() -> DatabaseStatus:
    """The database's schema revision, read without changing anything."""
    from modelport import migrations
    from modelport.db import database_name, schema_revision

    url = get_settings().database_url
    revision = schema_revision(url)
    known = revision is None or revision == migrations.HEAD or migrations.is_known(revision)
    return DatabaseStatus(
        database=database_name(url),
        revision=revision,
        head=migrations.HEAD,
        known=known,
        up_to_date=revision == migrations.HEAD,
    )


def upgrade_database() -> DatabaseUpgrade:
    """Upgrade the database to the newest schema now, under its lock (a no-op when it is
    there); a database newer than this modelport is refused with ``ConfigError``."""
    from modelport.db import database_name, upgrade_schema

    url = get_settings().database_url
    change = upgrade_schema(url)
    return DatabaseUpgrade(
        database=database_name(url),
        before=change.before,
        after=change.after,
        changed=change.changed,
    )


def database_history() -> list[SchemaRevision]:
    """Every migration of the schema, oldest first."""
    from modelport import migrations

    return [
        SchemaRevision(
            id=r.id,
            message=r.message.splitlines()[0] if r.message else "",
            down_revision=r.down_revision,
            head=r.id == migrations.HEAD,
        )
        for r in migrations.history()
    ]
