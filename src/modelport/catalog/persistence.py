"""User-added and remote catalog entries, usage counts and remote sources in the database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Connection, Engine, Row, delete, select, text, update

from modelport.catalog.catalog import paused_gc
from modelport.catalog.entry import ModelEntry
from modelport.catalog.search_rows import SEARCH_COLUMNS, search_row
from modelport.catalog.versions import EntryVersion, archive, history
from modelport.db import catalog_entries, catalog_sources, model_usage, upsert, write_lock

__all__ = ["CatalogRepository", "EntryVersion", "RemoteSource"]


@dataclass(frozen=True)
class RemoteSource:
    """A remote catalog the user subscribed to."""

    name: str
    url: str
    format: str
    entry_count: int
    etag: str | None
    refreshed_at: dt.datetime | None


def _skip_stored(data: str, error: ValidationError) -> None:
    import logging

    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "$"
    try:
        model_id = str(json.loads(data).get("id"))
    except (ValueError, AttributeError):
        model_id = "?"
    logging.getLogger("modelport").warning(
        "Skipping stored catalog entry %s: %s %s; re-import it or run "
        "`modelport catalog remove %s`.",
        model_id,
        where,
        first["msg"].lower(),
        model_id,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _locked(conn: Connection, where: ColumnElement[bool]) -> list[Row[Any]]:
    """The rows of ``catalog_entries`` a write is about to change, read under the catalog's
    write lock: two writers of one entry keep its versions one after the other."""
    write_lock(conn, "catalog")
    return list(conn.execute(select(catalog_entries).where(where)).all())


_ARRAYS = ("tasks", "tags", "capabilities", "alias_keys", "name_keys", "words")

#: The upsert of computed search rows (PostgreSQL): arrays cast, as an empty list has no
#: element type.
_WRITE_SEARCH = text(
    "INSERT INTO catalog_search (pending, "
    + ", ".join(SEARCH_COLUMNS)
    + ") VALUES (false, "
    + ", ".join(f"CAST(:{c} AS text[])" if c in _ARRAYS else f":{c}" for c in SEARCH_COLUMNS)
    + ") ON CONFLICT (id) DO UPDATE SET pending = false, "
    + ", ".join(f"{c} = excluded.{c}" for c in SEARCH_COLUMNS if c != "id")
)


def write_search_rows(conn: Connection, entries: Iterable[ModelEntry]) -> None:
    """Write the search rows of entries stored in ``catalog_entries`` (PostgreSQL), with
    the usage counted for them so far, in the caller's transaction."""
    rows = [search_row(entry) for entry in entries]
    for i in range(0, len(rows), 2000):
        chunk = rows[i : i + 2000]
        conn.execute(_WRITE_SEARCH, chunk)
        conn.execute(
            text(
                "UPDATE catalog_search s SET usage = u.count FROM model_usage u "
                "WHERE u.id = s.id AND s.id = ANY(:ids)"
            ),
            {"ids": [r["id"] for r in chunk]},
        )


def _delete_ids(conn: Connection, ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        conn.execute(delete(catalog_entries).where(catalog_entries.c.id.in_(ids[i : i + 500])))


class CatalogRepository:
    """Reads and writes the catalog's rows; every write is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entries(self, *, origin: str | None = None) -> list[tuple[str, ModelEntry]]:
        """(origin, entry) for every stored entry, optionally of one origin."""
        query = select(catalog_entries.c.origin, catalog_entries.c.data).order_by(
            catalog_entries.c.id
        )
        if origin is not None:
            query = query.where(catalog_entries.c.origin == origin)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        with paused_gc(freeze=len(rows) > 10_000):
            out: list[tuple[str, ModelEntry]] = []
            for row in rows:
                try:
                    out.append((row.origin, ModelEntry.model_validate_json(row.data)))
                except ValidationError as e:
                    # A row stored before a range was enforced must not break every command.
                    _skip_stored(row.data, e)
            return out

    def origin_of(self, model_id: str) -> str | None:
        """Where a stored entry came from (``user`` or ``remote:NAME``), or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(catalog_entries.c.origin).where(catalog_entries.c.id == model_id)
            ).scalar_one_or_none()

    @staticmethod
    def _put(
        conn: Connection,
        entries: Iterable[ModelEntry],
        origin: str,
        now: dt.datetime,
        *,
        changed_by: str,
    ) -> None:
        """Insert or replace rows; a replaced row's version is kept first.

        The rows are read 500 ids a statement and written in one executemany upsert (two
        statements per entry made importing 50,000 entries take over a minute); an upsert,
        not a delete and an insert, lets two servers import one entry at once on
        PostgreSQL. A row that would stay as it is is not written (and keeps no version).
        """
        by_id = {entry.id: entry for entry in entries}
        rows = {
            entry.id: {
                "id": entry.id,
                "origin": origin,
                "data": json.dumps(entry.to_json_dict(), ensure_ascii=False),
                "updated_at": now,
            }
            for entry in by_id.values()
        }  # the last of equal ids wins, as one statement per entry did
        ids = list(rows)
        ended: list[Row[Any]] = []
        write_lock(conn, "catalog")
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for old in conn.execute(select(catalog_entries).where(catalog_entries.c.id.in_(chunk))):
                new = rows[old.id]
                if (old.origin, old.data) == (new["origin"], new["data"]):
                    del rows[old.id]
                else:
                    ended.append(old)
        archive(conn, ended, change="replaced", changed_by=changed_by, now=now)
        upsert(
            conn,
            catalog_entries,
            list(rows.values()),
            keys=["id"],
            replace=["origin", "data", "updated_at"],
        )
        if conn.dialect.name == "postgresql":
            # Its triggers marked the rows pending: computed now, in the same transaction.
            written = set(rows)
            write_search_rows(conn, (e for e in by_id.values() if e.id in written))

    def save(self, entries: Iterable[ModelEntry], *, origin: str) -> None:
        """Insert or replace entries under an origin (the user's own: ``user``)."""
        with self.engine.begin() as conn:
            self._put(conn, entries, origin, _now(), changed_by=origin)

    def replace_origin(self, origin: str, entries: Iterable[ModelEntry]) -> list[str]:
        """Make an origin hold exactly these entries (one transaction); the versions this
        ends are kept, as changed by that origin.

        An id that another origin already holds stays with it (a user's own entry is
        never overwritten by a remote catalog); the skipped ids are returned.
        """
        now = _now()
        with self.engine.begin() as conn:
            mine = {r.id: r for r in _locked(conn, catalog_entries.c.origin == origin)}
            taken = set(
                conn.execute(
                    select(catalog_entries.c.id).where(catalog_entries.c.origin != origin)
                ).scalars()
            )
            batch = list(entries)
            skipped = [e.id for e in batch if e.id in taken]
            kept = [e for e in batch if e.id not in taken]
            wanted = {e.id for e in kept}
            gone = [r for model_id, r in mine.items() if model_id not in wanted]
            archive(conn, gone, change="removed", changed_by=origin, now=now)
            _delete_ids(conn, [r.id for r in gone])
            self._put(conn, kept, origin, now, changed_by=origin)
        return skipped

    def delete(self, model_id: str, *, changed_by: str = "user") -> bool:
        """Delete a stored entry, keeping its last version; whether it existed."""
        with self.engine.begin() as conn:
            gone = _locked(conn, catalog_entries.c.id == model_id)
            archive(conn, gone, change="removed", changed_by=changed_by, now=_now())
            _delete_ids(conn, [r.id for r in gone])
        return bool(gone)

    def history(self, model_id: str) -> list[EntryVersion]:
        """Every version of a stored entry, newest first (empty: never stored)."""
        return history(self.engine, model_id)

    # ---------------------------------------------------------------- usage

    def usage(self, *, ids: list[str] | None = None) -> dict[str, int]:
        """Usage count of every model used so far (of these ids only, when given)."""
        query = select(model_usage.c.id, model_usage.c.count)
        if ids is not None:
            query = query.where(model_usage.c.id.in_(ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {str(row[0]): int(row[1]) for row in rows}

    def add_usage(self, model_id: str, count: int = 1) -> None:
        """Add to a model's usage count."""
        now = _now()
        with self.engine.begin() as conn:
            upsert(
                conn,
                model_usage,
                {"id": model_id, "count": count, "last_used": now},
                keys=["id"],
                set_={"count": model_usage.c.count + count, "last_used": now},
            )
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("UPDATE catalog_search SET usage = usage + :n WHERE id = :id"),
                    {"n": count, "id": model_id},
                )

    def fill_search(self) -> int:
        """Compute the search rows still pending (PostgreSQL: entries stored before revision
        0004, or written by something other than modelport); how many were computed."""
        if self.engine.dialect.name != "postgresql":
            return 0
        pending = text("SELECT id FROM catalog_search WHERE pending LIMIT 1")
        with self.engine.connect() as conn:
            if conn.execute(pending).first() is None:
                return 0
        done = 0
        with self.engine.begin() as conn:
            write_lock(conn, "catalog")  # one process computes them; the others wait
            ids = list(conn.execute(text("SELECT id FROM catalog_search WHERE pending")).scalars())
            for i in range(0, len(ids), 5000):
                chunk = ids[i : i + 5000]
                rows = conn.execute(
                    select(catalog_entries.c.data).where(catalog_entries.c.id.in_(chunk))
                ).scalars()
                batch = []
                for data in rows:
                    try:
                        batch.append(ModelEntry.model_validate_json(data))
                    except ValidationError as e:
                        _skip_stored(data, e)
                write_search_rows(conn, batch)
                done += len(batch)
        return done

    # ---------------------------------------------------------------- sources

    def sources(self) -> list[RemoteSource]:
        """Every remote catalog source."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(catalog_sources).order_by(catalog_sources.c.name)).all()
        return [
            RemoteSource(r.name, r.url, r.format, r.entry_count, r.etag, r.refreshed_at)
            for r in rows
        ]

    def add_source(self, name: str, url: str, *, format: str) -> None:
        """Add or re-point a remote source."""
        fresh = {"url": url, "format": format, "entry_count": 0, "etag": None, "refreshed_at": None}
        with self.engine.begin() as conn:
            upsert(
                conn, catalog_sources, {"name": name, **fresh}, keys=["name"], replace=list(fresh)
            )

    def remove_source(self, name: str) -> bool:
        """Remove a source and its entries (keeping their last versions); whether it
        existed."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(catalog_sources).where(catalog_sources.c.name == name))
            entries = _locked(conn, catalog_entries.c.origin == f"remote:{name}")
            archive(conn, entries, change="removed", changed_by="user", now=_now())
            _delete_ids(conn, [r.id for r in entries])
        return bool(gone.rowcount)

    def mark_refreshed(self, name: str, *, entry_count: int, etag: str | None) -> None:
        """Record a successful refresh of a source."""
        with self.engine.begin() as conn:
            conn.execute(
                update(catalog_sources)
                .where(catalog_sources.c.name == name)
                .values(entry_count=entry_count, etag=etag, refreshed_at=_now())
            )
