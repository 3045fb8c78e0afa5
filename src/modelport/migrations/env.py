"""Alembic's entry point: runs the migrations on the connection modelport hands it.

``modelport.migrations.upgrade`` passes an open connection, inside a transaction and
under the database's lock, as ``config.attributes["connection"]``. A configuration
with a ``sqlalchemy.url`` instead (a developer running Alembic's own commands) gets
an engine of its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from modelport.migrations import VERSION_TABLE


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: a revision that must, uses batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("modelport's migrations read the database: run them online.")
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("Set sqlalchemy.url, or pass a connection in config.attributes.")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


_main()
