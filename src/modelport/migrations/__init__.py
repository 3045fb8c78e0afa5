"""The database schema's migrations (Alembic), run from code: no ``alembic.ini`` anywhere.

The scripts live beside this module (``env.py``, ``script.py.mako``, ``versions/``).
``upgrade_engine`` runs them when a process first opens a database (``db.get_engine``),
under the database's lock and in one transaction, DDL included. ``HEAD`` names the newest
revision, so that opening a database already at it takes no lock and imports no Alembic
(about 180 ms); a test checks it against the scripts.

A new revision, from a checkout::

    python -c "from alembic import command; from modelport.migrations import config; \\
        command.revision(config(), 'what it changes', rev_id='0003')"

then write its ``upgrade`` for SQLite and PostgreSQL alike, and move ``HEAD``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

__all__ = [
    "FIRST",
    "HEAD",
    "SCHEMA_LOCK_KEY",
    "VERSION_TABLE",
    "Revision",
    "SchemaChange",
    "config",
    "history",
    "is_known",
    "newer_than_code",
    "stored_revision",
    "upgrade",
    "upgrade_engine",
]

#: The first schema: the tables modelport made before it had migrations.
FIRST = "0001"
#: The newest revision of the scripts in ``versions/``.
HEAD = "0005"
#: Where Alembic keeps a database's revision.
VERSION_TABLE = "alembic_version"
SCRIPTS = Path(__file__).parent


@dataclass(frozen=True)
class Revision:
    """One migration: its id, what it changes and the revision it follows."""

    id: str
    message: str
    down_revision: str | None


def config() -> Config:
    """An Alembic configuration for the scripts of this package (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    # ``v0001_first_schema.py``: a module name mypy and the imports accept.
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    return cfg


def stored_revision(connection: Connection) -> str | None:
    """The revision a database is at (None: no version table, or an empty one); no Alembic."""
    from sqlalchemy import String, column, select, table

    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return None
    version = column("version_num", String())
    query = select(version).select_from(table(VERSION_TABLE, version))
    versions = [str(v) for v in connection.execute(query).scalars()]
    return versions[0] if len(versions) == 1 else None


def _known(cfg: Config, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except CommandError:  # ResolutionError is one
        return False


def newer_than_code(where: str, revision: str) -> ConfigError:
    """The error for a database that a newer modelport migrated."""
    from modelport import __version__

    return ConfigError(
        f"The database {where} is at schema revision {revision!r}, which this modelport "
        f"({__version__}) does not know: a newer modelport upgraded it.",
        hint="Install the modelport that upgraded it (pip install -U modelport), or point "
        "MODELPORT_DATABASE_URL at another database.",
    )


def upgrade(connection: Connection, *, where: str) -> tuple[str | None, str]:
    """Bring a database to ``HEAD`` on a connection inside a transaction the caller holds.

    A database made before migrations (modelport's tables, no version table) is taken as
    the first schema: the first revision creates only the tables it lacks, so its rows
    stay. Returns (revision before, revision after).
    """
    from alembic import command

    before = stored_revision(connection)
    if before == HEAD:
        return before, HEAD
    cfg = config()
    if before is not None and not _known(cfg, before):
        raise newer_than_code(where, before)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    return before, HEAD


def history() -> list[Revision]:
    """Every revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config())
    out = []
    for rev in script.walk_revisions():  # newest first
        down = rev.down_revision
        out.append(
            Revision(
                id=rev.revision,
                message=(rev.doc or "").strip(),
                down_revision=down if isinstance(down, str) or down is None else down[0],
            )
        )
    return out[::-1]


def is_known(revision: str) -> bool:
    """Whether a revision is one of this package's scripts."""
    return _known(config(), revision)


# ------------------------------------------------------------------ the lock they run under

#: The PostgreSQL advisory lock that schema upgrades hold (any fixed 64-bit key; this
#: one is the bytes ``mp-schem``), so that servers starting together upgrade one by one.
SCHEMA_LOCK_KEY = int.from_bytes(b"mp-schem", "big", signed=True)


@dataclass(frozen=True)
class SchemaChange:
    """What an upgrade did: the revision before (None: an empty or pre-migration database)
    and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether the upgrade ran any migration."""
        return self.before != self.after


@contextmanager
def _sqlite_transaction(conn: Connection) -> Iterator[None]:
    """One SQLite transaction around everything, its DDL included: an upgrade is all done
    or not at all. (Python's driver begins a transaction only before a data change, so
    a ``CREATE TABLE`` before one would be committed on its own.)"""
    raw: Any = conn.connection.dbapi_connection
    level = raw.isolation_level
    raw.isolation_level = None  # we say BEGIN ourselves
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        raw.isolation_level = level


@contextmanager
def _schema_lock(engine: Engine, lock_file: str | None) -> Iterator[Connection]:
    """A connection in a transaction that holds the database's schema lock.

    SQLite: a file lock beside the database file, and SQLite's own write lock.
    PostgreSQL: a transaction-level advisory lock, released with the transaction, even
    when the process dies. On both, the DDL is inside the transaction.
    """
    if engine.dialect.name == "sqlite":
        from contextlib import nullcontext

        from filelock import FileLock

        with (
            FileLock(lock_file) if lock_file else nullcontext(),
            engine.connect() as conn,
            _sqlite_transaction(conn),
        ):
            yield conn
        return
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        yield conn


def upgrade_engine(engine: Engine, *, where: str, lock_file: str | None) -> SchemaChange:
    """Bring an engine's database to ``HEAD`` under its lock (``lock_file`` beside a SQLite
    file); at ``HEAD`` already, one read and nothing else."""
    with engine.connect() as conn:
        current = stored_revision(conn)
    if current == HEAD:  # the usual case: no lock, no Alembic
        return SchemaChange(current, current)
    with _schema_lock(engine, lock_file) as conn:
        before, after = upgrade(conn, where=where)
    return SchemaChange(before, after)
