"""SQLAlchemy engine and tables: SQLite in MODELPORT_HOME by default, PostgreSQL at scale."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from modelport.errors import ConfigError, DatabaseBusyError

__all__ = [
    "call_log",
    "catalog_entries",
    "catalog_sources",
    "catalog_state",
    "get_engine",
    "metadata",
    "model_usage",
    "store_counters",
    "store_files",
    "store_models",
    "store_refs",
]

metadata = MetaData()

#: Catalog entries added by the user or by a remote catalog (bundled ones live in files).
catalog_entries = Table(
    "catalog_entries",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("origin", String(300), nullable=False, index=True),
    Column("data", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row whose ``stamp`` changes with every write to ``catalog_entries`` (SQLite triggers
#: set it in the writing transaction), so that a process can tell from one cheap read
#: whether a catalog snapshot built earlier still holds (see ``catalog/snapshot.py``).
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stamp", String(64), nullable=False),
)

#: SQLite only (other databases bypass the snapshot). Triggers rather than application
#: code, so that no write path (another version of modelport, a future method, a user's
#: own SQL) can change entries without changing the stamp.
_NEW_STAMP = "lower(hex(randomblob(16)))"
SQLITE_STAMP_DDL = (
    f"INSERT OR IGNORE INTO catalog_state (id, stamp) VALUES (1, {_NEW_STAMP})",
    *(
        f"CREATE TRIGGER IF NOT EXISTS catalog_entries_stamp_{op.lower()} "
        f"AFTER {op} ON catalog_entries BEGIN "
        f"UPDATE catalog_state SET stamp = {_NEW_STAMP} WHERE id = 1; END"
        for op in ("INSERT", "UPDATE", "DELETE")
    ),
)

#: How often each model was used (feeds ranking).
model_usage = Table(
    "model_usage",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("count", Integer, nullable=False, default=0),
    Column("last_used", DateTime(timezone=True), nullable=True),
)

#: Remote catalogs the user subscribed to.
catalog_sources = Table(
    "catalog_sources",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("format", String(32), nullable=False, default="modelport"),
    Column("entry_count", Integer, nullable=False, default=0),
    Column("etag", Text, nullable=True),
    Column("refreshed_at", DateTime(timezone=True), nullable=True),
)

#: Models complete in the local store, one row per registry/name/revision.
store_models = Table(
    "store_models",
    metadata,
    Column("key", String(600), primary_key=True),
    Column("registry", String(32), nullable=False, index=True),
    Column("name", String(400), nullable=False, index=True),
    Column("revision", String(100), nullable=False),
    Column("ref", Text, nullable=False),
    Column("requested", String(200), nullable=True),
    Column("size", Integer, nullable=False, default=0),
    Column("file_count", Integer, nullable=False, default=0),
    Column("task", String(100), nullable=True),
    Column("library", String(100), nullable=True),
    Column("pulled_at", DateTime(timezone=True), nullable=False),
    Column("last_used", DateTime(timezone=True), nullable=True),
    Column("use_count", Integer, nullable=False, default=0),
)

#: The files of each stored model and the blob each one is.
store_files = Table(
    "store_files",
    metadata,
    Column("model_key", String(600), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", Integer, nullable=False),
    Column("digest_kind", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
)

#: Branches and tags as last resolved to a commit (offline pulls resolve through these).
store_refs = Table(
    "store_refs",
    metadata,
    Column("registry", String(32), primary_key=True),
    Column("name", String(400), primary_key=True),
    Column("ref", String(200), primary_key=True),
    Column("revision", String(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Counters: pulls and runs served from the store (hits) or not (misses).
store_counters = Table(
    "store_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False, default=0),
)

#: Sources whose code the user allowed to run (PyTorch Hub repositories).
trusted_sources = Table(
    "trusted_sources",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(400), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

#: One row per call to a model (hosted, CLI, local or simulated): what it used and cost.
call_log = Table(
    "call_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    #: The catalog id, or the reference as the caller gave it.
    Column("model", String(400), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("access", String(16), nullable=False),  # api, cli, local or sim
    Column("origin", String(16), nullable=False),  # cli, python or gateway
    Column("operation", String(32), nullable=False),  # chat, embeddings, rerank, completion
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    Column("cached_tokens", Integer, nullable=True),
    Column("reasoning_tokens", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
    #: NULL when the price is unknown: never counted as free.
    Column("cost_usd", Float, nullable=True),
    Column("status", String(64), nullable=False),  # "ok" or the error's code
    #: The model that answered when a fallback served the call.
    Column("served_by", String(400), nullable=True),
)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


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


def _create_stamp_triggers(engine: Engine) -> None:
    """The catalog stamp's row and triggers (idempotent; databases made earlier get them)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        for statement in SQLITE_STAMP_DDL:
            conn.execute(text(statement))


def _create_tables(engine: Engine, url: str) -> None:
    """Create missing tables; processes starting together must not trip over each other."""
    path = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
    if path and path != ":memory:":
        from filelock import FileLock

        with FileLock(path + ".lock"):
            metadata.create_all(engine)
            _create_stamp_triggers(engine)
        return
    if url.startswith("sqlite"):
        metadata.create_all(engine)
        _create_stamp_triggers(engine)
        return
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError) as e:
        if "already exists" not in str(e.orig):
            raise
        metadata.create_all(engine)  # another server created them meanwhile


def get_engine(url: str) -> Engine:
    """The engine for a database URL, created once per process with the tables in place."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        try:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[1] if "///" in url else ""
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": _busy_timeout()}
                )
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "handle_error", _locked_is_one_sentence(path or url))
            else:
                engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as e:
            raise ConfigError(
                f"Cannot use the database URL {url.split('@')[-1]!r}: {e}.",
                hint="Set MODELPORT_DATABASE_URL to sqlite:///PATH or postgresql+psycopg://…",
            ) from None
        try:
            _create_tables(engine, url)
        except (OperationalError, ProgrammingError) as e:
            raise ConfigError(
                f"Cannot open the database: {e.orig}.",
                hint="Check MODELPORT_DATABASE_URL and that the database is reachable.",
            ) from None
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every engine (tests and forked workers call this)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
