"""SQLAlchemy engine and tables: SQLite in MODELPORT_HOME by default, PostgreSQL at scale.

The tables here are what the code reads and writes; the schema a database has is made
and changed by the migrations (``modelport/migrations``), which ``get_engine`` runs up
to the newest revision when a process first opens a database, under a lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    text,
    update,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from modelport.errors import (
    ConfigError,
    DatabaseBusyError,
    DatabaseUnavailableError,
    MissingExtraError,
)

if TYPE_CHECKING:
    from modelport.migrations import SchemaChange

__all__ = [
    "BIG_INTEGER",
    "POSTGRESQL_ONLY_TABLES",
    "advisory_lock",
    "call_log",
    "catalog_entries",
    "catalog_entry_versions",
    "catalog_sources",
    "catalog_state",
    "database_name",
    "dispose_engines",
    "get_engine",
    "metadata",
    "model_usage",
    "schema_revision",
    "store_counters",
    "store_files",
    "store_models",
    "store_refs",
    "trusted_sources",
    "ui_pulls",
    "upgrade_schema",
    "upsert",
    "write_lock",
]

metadata = MetaData()

#: SQLite's INTEGER holds 64 bits, PostgreSQL's only 32: byte counts (a model file passes
#: 2 GiB), use counts (a busy server's requests) and the call log's ids are BIGINT there.
BIG_INTEGER = Integer().with_variant(BigInteger(), "postgresql")


def _string(length: int) -> Any:
    """A string column. SQLite never enforces a VARCHAR's length, so PostgreSQL stores it
    as TEXT (as fast there): both keep the same values. The length says what is usual."""
    return String(length).with_variant(Text(), "postgresql")


#: Tables that only PostgreSQL has, made by the migrations and read with SQL of its own
#: (``catalog_search``: the catalog at scale, see ``catalog/pgcatalog.py``); the tables
#: here are those of every database.
POSTGRESQL_ONLY_TABLES = frozenset({"catalog_search"})

#: Catalog entries added by the user or by a remote catalog (bundled ones live in files).
catalog_entries = Table(
    "catalog_entries",
    metadata,
    Column("id", _string(256), primary_key=True),
    Column("origin", _string(300), nullable=False, index=True),
    Column("data", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row whose ``stamp`` changes with every write to ``catalog_entries`` (SQLite triggers
#: set it in the writing transaction), so that a process can tell from one cheap read
#: whether a catalog snapshot built earlier still holds (see ``catalog/snapshot.py``).
#: The migrations make the row and the triggers, on SQLite only (other databases bypass
#: the snapshot); triggers rather than application code, so that no write path (another
#: version of modelport, a future method, a user's own SQL) can change entries without
#: changing the stamp.
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stamp", _string(64), nullable=False),
)

#: Earlier versions of user and remote entries: each change to an entry (a replacement
#: or a removal) keeps the version it ended, with who and what changed it and when. The
#: current version is the row in ``catalog_entries``.
catalog_entry_versions = Table(
    "catalog_entry_versions",
    metadata,
    Column("id", BIG_INTEGER, primary_key=True, autoincrement=True),
    Column("entry_id", _string(256), nullable=False),
    #: 1 for an entry's first version; the current one is the highest kept here plus one.
    Column("version", Integer, nullable=False),
    #: Where that version came from: ``user`` or ``remote:NAME``.
    Column("origin", _string(300), nullable=False),
    Column("data", Text, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
    Column("change", _string(16), nullable=False),  # replaced or removed
    #: What changed it: ``user`` (an import, a removal) or ``remote:NAME`` (an update).
    Column("changed_by", _string(300), nullable=False),
    #: Who: the account and machine that ran the change.
    Column("actor", _string(300), nullable=False),
    UniqueConstraint("entry_id", "version", name="uq_catalog_entry_versions_entry_version"),
)

#: How often each model was used (feeds ranking).
model_usage = Table(
    "model_usage",
    metadata,
    Column("id", _string(256), primary_key=True),
    Column("count", BIG_INTEGER, nullable=False, default=0),
    Column("last_used", DateTime(timezone=True), nullable=True),
)

#: Remote catalogs the user subscribed to.
catalog_sources = Table(
    "catalog_sources",
    metadata,
    Column("name", _string(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("format", _string(32), nullable=False, default="modelport"),
    Column("entry_count", Integer, nullable=False, default=0),
    Column("etag", Text, nullable=True),
    Column("refreshed_at", DateTime(timezone=True), nullable=True),
)

#: Models complete in the local store, one row per registry/name/revision.
store_models = Table(
    "store_models",
    metadata,
    Column("key", _string(600), primary_key=True),
    Column("registry", _string(32), nullable=False, index=True),
    Column("name", _string(400), nullable=False, index=True),
    Column("revision", _string(100), nullable=False),
    Column("ref", Text, nullable=False),
    Column("requested", _string(200), nullable=True),
    Column("size", BIG_INTEGER, nullable=False, default=0),
    Column("file_count", Integer, nullable=False, default=0),
    Column("task", _string(100), nullable=True),
    Column("library", _string(100), nullable=True),
    Column("pulled_at", DateTime(timezone=True), nullable=False),
    Column("last_used", DateTime(timezone=True), nullable=True),
    Column("use_count", BIG_INTEGER, nullable=False, default=0),
)

#: The files of each stored model and the blob each one is.
store_files = Table(
    "store_files",
    metadata,
    Column("model_key", _string(600), primary_key=True),
    Column("path", _string(1024), primary_key=True),
    Column("sha256", _string(64), nullable=False, index=True),
    Column("size", BIG_INTEGER, nullable=False),
    Column("digest_kind", _string(16), nullable=False),
    Column("digest", _string(64), nullable=False),
)

#: Branches and tags as last resolved to a commit (offline pulls resolve through these).
store_refs = Table(
    "store_refs",
    metadata,
    Column("registry", _string(32), primary_key=True),
    Column("name", _string(400), primary_key=True),
    Column("ref", _string(200), primary_key=True),
    Column("revision", _string(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Counters: pulls and runs served from the store (hits) or not (misses).
store_counters = Table(
    "store_counters",
    metadata,
    Column("name", _string(64), primary_key=True),
    Column("value", BIG_INTEGER, nullable=False, default=0),
)

#: Sources whose code the user allowed to run (PyTorch Hub repositories).
trusted_sources = Table(
    "trusted_sources",
    metadata,
    Column("kind", _string(32), primary_key=True),
    Column("name", _string(400), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

#: One row per call to a model (hosted, CLI, local or simulated): what it used and cost.
call_log = Table(
    "call_log",
    metadata,
    Column("id", BIG_INTEGER, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    #: The catalog id, or the reference as the caller gave it.
    Column("model", _string(400), nullable=False),
    Column("provider", _string(100), nullable=False),
    Column("access", _string(16), nullable=False),  # api, cli, local or sim
    Column("origin", _string(16), nullable=False),  # cli, python or gateway
    Column("operation", _string(32), nullable=False),  # chat, embeddings, rerank, completion
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("cached_tokens", Integer, nullable=True),
    Column("reasoning_tokens", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
    #: NULL when the price is unknown: never counted as free.
    Column("cost_usd", Float, nullable=True),
    Column("status", _string(64), nullable=False),  # "ok" or the error's code
    #: The model that answered when a fallback served the call.
    Column("served_by", _string(400), nullable=True),
)

#: Pulls started from the web UI, shared by every replica of a server: the replica running
#: one writes where it stands and polls ``cancel_requested``; a progress stream on any
#: replica reads the row and bumps ``watches`` (a pull nobody watches any more stops).
ui_pulls = Table(
    "ui_pulls",
    metadata,
    Column("id", _string(64), primary_key=True),
    Column("ref", Text, nullable=False),
    #: The process running it: host:pid.
    Column("replica", _string(300), nullable=False),
    Column("state", _string(16), nullable=False),  # running, done, failed or cancelled
    Column("status", _string(200), nullable=False),
    Column("file", Text, nullable=True),
    Column("files", Integer, nullable=False),
    Column("completed", BIG_INTEGER, nullable=False),
    #: NULL while some file's size is not known.
    Column("total", BIG_INTEGER, nullable=True),
    Column("message", Text, nullable=True),
    #: The pulled model (JSON) once done.
    Column("result", Text, nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    #: Bumped by progress streams, so that the running replica learns, with its own clock,
    #: that someone still watches (clocks of replicas may differ).
    Column("watches", BIG_INTEGER, nullable=False),
    Column("watched_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
#: Engines without a pool, for advisory locks held long (see ``advisory_lock``).
_lock_engines: dict[str, Engine] = {}


def upsert(
    conn: Connection,
    table: Table,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    replace: Sequence[str] = (),
    set_: Mapping[str, Any] | None = None,
) -> None:
    """Insert rows; where a row with the same ``keys`` exists, update it instead: the
    ``replace`` columns take the new row's values and ``set_`` gives expressions (such as
    ``count + 1``).

    One ``INSERT … ON CONFLICT`` statement on SQLite and PostgreSQL: two processes or
    servers writing the same key at once both succeed (a read, then an insert, collides on
    PostgreSQL, where writers do not wait for each other as on SQLite).
    """
    many = [dict(r) for r in ([rows] if isinstance(rows, Mapping) else rows)]
    if not many:
        return
    name = conn.dialect.name
    if name not in ("postgresql", "sqlite"):
        _update_then_insert(conn, table, many, keys=keys, replace=replace, set_=set_)
        return
    from sqlalchemy.dialects import postgresql, sqlite

    statement = (postgresql.insert if name == "postgresql" else sqlite.insert)(table)
    updates: dict[str, Any] = {column: statement.excluded[column] for column in replace}
    updates.update(set_ or {})
    if updates:
        conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates), many)
    else:
        conn.execute(statement.on_conflict_do_nothing(index_elements=list(keys)), many)


def write_lock(conn: Connection, name: str) -> None:
    """Hold the write lock ``name`` until the transaction ends: taken before the reads a
    write depends on, so that two processes or servers writing at once go one by one.

    SQLite: the database's one write lock, taken now (its driver begins a transaction only
    at the first write, so reads before it see what another writer may be changing).
    PostgreSQL: a transaction-level advisory lock of that name.
    """
    name_of = conn.dialect.name
    if name_of == "sqlite":
        conn.execute(update(catalog_state).where(false()).values(id=catalog_state.c.id))
    elif name_of == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(name)})


def _lock_key(name: str) -> int:
    """The 64-bit key of a PostgreSQL advisory lock named ``name``."""
    import hashlib

    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextlib.contextmanager
def advisory_lock(
    engine: Engine, name: str, *, waiting: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock ``name`` for the block, among every process and
    server using this database; ``waiting`` is called once if another holds it first.

    A session lock on a connection of its own, outside any transaction and outside the
    engine's pool, so that a long hold (a download) keeps no transaction open and takes no
    connection the requests need; a process that dies lets go of it with its connection.
    """
    key = _lock_key(name)
    with _lock_engine(engine).connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        if not taken:
            if waiting is not None:
                waiting()
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except (DBAPIError, DatabaseUnavailableError):
                # The connection is gone (the server restarted): so is the lock. A pooled
                # connection must never keep a session lock past the block.
                conn.invalidate()


def _lock_engine(engine: Engine) -> Engine:
    """An engine of the same database that opens a connection per use (no pool)."""
    from sqlalchemy.pool import NullPool

    url = engine.url.render_as_string(hide_password=False)
    with _lock:
        found = _lock_engines.get(url)
        if found is None:
            found = create_engine(url, poolclass=NullPool)
            event.listen(found, "handle_error", _unreachable_is_one_sentence(database_name(url)))
            _lock_engines[url] = found
        return found


def _update_then_insert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    keys: Sequence[str],
    replace: Sequence[str],
    set_: Mapping[str, Any] | None,
) -> None:
    """``upsert`` for another database: update, then insert what was not there."""
    from sqlalchemy import and_, insert

    for row in rows:
        where = and_(*(table.c[k] == row[k] for k in keys))
        values = {column: row[column] for column in replace} | dict(set_ or {})
        if values:
            if conn.execute(update(table).where(where).values(values)).rowcount:
                continue
        elif conn.execute(table.select().where(where)).first() is not None:
            continue
        conn.execute(insert(table).values(row))


def _busy_timeout() -> float:
    from modelport.settings import get_settings

    return get_settings().db_busy_timeout


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(_busy_timeout() * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _locked_is_one_sentence(where: str) -> Any:
    """A handle_error listener: "database is locked" becomes ``DatabaseBusyError``."""

    def listener(context: Any) -> None:
        original = context.original_exception
        text = str(original).lower()
        if "database is locked" in text or "database table is locked" in text:
            raise DatabaseBusyError(where, _busy_timeout()) from None

    return listener


def _unreachable_is_one_sentence(where: str) -> Any:
    """A handle_error listener: a server that cannot be reached or dropped the connection
    (a restart) becomes ``DatabaseUnavailableError``. The pool still discards the
    connection; the next checkout pings and connects again."""

    def listener(context: Any) -> None:
        error = context.sqlalchemy_exception
        # No SQLSTATE: the connection failed. 08: connection exceptions; 57P01-57P03: the
        # server shuts down, crashed or is starting. (A deadlock is an OperationalError too,
        # with a state of its own: it stays what it is.)
        state = getattr(context.original_exception, "sqlstate", None)
        lost = state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")
        if context.is_disconnect or (isinstance(error, OperationalError) and lost):
            reason = _one_line(context.original_exception or error)
            raise DatabaseUnavailableError(where, reason) from None

    return listener


def _postgres_utc(dbapi_connection: Any, _record: Any) -> None:
    """Every PostgreSQL session speaks UTC: ``date()`` of a timestamp is the UTC day (as on
    SQLite), whatever time zone the server was set up with."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()  # a SET rolled back with its transaction would be undone


def _one_line(error: object) -> str:
    """A driver's message as one sentence (psycopg's spans lines)."""
    text = " ".join(str(error).split())
    return text if text.endswith((".", "?", "!")) else text + "."


def _sqlite_path(url: str) -> str:
    """The file behind a SQLite URL ("" for another database, ":memory:" for none)."""
    if not url.startswith("sqlite"):
        return ""
    return url.split("///", 1)[1] if "///" in url else ":memory:"


def database_name(url: str) -> str:
    """The database, named for a message: its file, or its URL without the credentials."""
    path = _sqlite_path(url)
    if path:
        return path
    return repr(url.split("@")[-1])


def _new_engine(url: str) -> Engine:
    """An engine for a URL, with the listeners modelport needs; no schema work."""
    try:
        path = _sqlite_path(url)
        if path:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": _busy_timeout()}
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "handle_error", _locked_is_one_sentence(path))
            return engine
        engine = create_engine(url, pool_pre_ping=True)
    except ImportError:
        if url.startswith("postgres"):
            raise MissingExtraError("postgres", feature="A PostgreSQL database") from None
        raise ConfigError(
            f"Cannot use the database URL {url.split('@')[-1]!r}: its driver is not installed.",
            hint="Set MODELPORT_DATABASE_URL to sqlite:///PATH or postgresql+psycopg://…",
        ) from None
    except ArgumentError as e:
        raise ConfigError(
            f"Cannot use the database URL {url.split('@')[-1]!r}: {e}.",
            hint="Set MODELPORT_DATABASE_URL to sqlite:///PATH or postgresql+psycopg://…",
        ) from None
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_utc)
        event.listen(engine, "handle_error", _unreachable_is_one_sentence(database_name(url)))
    return engine


def _upgrade(engine: Engine, url: str) -> SchemaChange:
    """Bring the database to the newest schema, under its lock; a no-op when it is there."""
    from modelport import migrations

    path = _sqlite_path(url)
    try:
        return migrations.upgrade_engine(
            engine,
            where=database_name(url),
            lock_file=path + ".lock" if path and path != ":memory:" else None,
        )
    except (OperationalError, ProgrammingError) as e:
        raise ConfigError(
            f"Cannot open the database: {_one_line(e.orig)}",
            hint="Check MODELPORT_DATABASE_URL and that the database is reachable.",
        ) from None
    except DatabaseUnavailableError as e:
        raise ConfigError(
            f"Cannot open the database: {e.reason}",
            hint="Check MODELPORT_DATABASE_URL and that the database is reachable.",
        ) from None


def get_engine(url: str) -> Engine:
    """The engine for a database URL, created once per process, its schema upgraded."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _new_engine(url)
            try:
                _upgrade(engine, url)
            except BaseException:
                engine.dispose()
                raise
            _engines[url] = engine
        return engine


def upgrade_schema(url: str) -> SchemaChange:
    """Upgrade a database to the newest schema now; what it was and is."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:  # upgraded when this process opened it
            from modelport.migrations import HEAD, SchemaChange

            return SchemaChange(HEAD, HEAD)
        engine = _new_engine(url)
        try:
            change = _upgrade(engine, url)
        except BaseException:
            engine.dispose()
            raise
        _engines[url] = engine
        return change


def schema_revision(url: str) -> str | None:
    """The revision a database is at, read without upgrading it (None: empty or made
    before migrations; a SQLite file that does not exist is not created)."""
    path = _sqlite_path(url)
    if path and path != ":memory:" and not Path(path).is_file():
        return None
    from modelport import migrations

    with _lock:
        engine = _engines.get(url)
    own = engine is None
    engine = _new_engine(url) if engine is None else engine
    try:
        with engine.connect() as conn:
            return migrations.stored_revision(conn)
    except (OperationalError, ProgrammingError) as e:
        raise ConfigError(
            f"Cannot open the database: {_one_line(e.orig)}",
            hint="Check MODELPORT_DATABASE_URL and that the database is reachable.",
        ) from None
    except DatabaseUnavailableError as e:
        raise ConfigError(
            f"Cannot open the database: {e.reason}",
            hint="Check MODELPORT_DATABASE_URL and that the database is reachable.",
        ) from None
    finally:
        if own:
            engine.dispose()


def dispose_engines() -> None:
    """Close every engine (tests and forked workers call this)."""
    with _lock:
        for engine in [*_engines.values(), *_lock_engines.values()]:
            engine.dispose()
        _engines.clear()
        _lock_engines.clear()
