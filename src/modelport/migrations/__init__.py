"""The database schema's migrations (Alembic), run from code: no ``alembic.ini`` anywhere.

The scripts live beside this module (``env.py``, ``script.py.mako``, ``versions/``) and
run on a connection the caller opened and locked (``db.py`` holds the lock). ``HEAD``
names the newest revision, so that opening a database already at it imports no Alembic
(about 180 ms); a test checks it against the scripts.

A new revision, from a checkout::

    python -c "from alembic import command; from modelport.migrations import config; \\
        command.revision(config(), 'what it changes', rev_id='0003')"

then write its ``upgrade`` for SQLite and PostgreSQL alike, and move ``HEAD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

__all__ = [
    "FIRST",
    "HEAD",
    "VERSION_TABLE",
    "Revision",
    "config",
    "history",
    "stored_revision",
    "upgrade",
]

#: The first schema: the tables modelport made before it had migrations.
FIRST = "0001"
#: The newest revision of the scripts in ``versions/``.
HEAD = "0003"
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
