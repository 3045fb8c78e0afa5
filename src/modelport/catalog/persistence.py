"""User-added and remote catalog entries, usage counts and remote sources in the database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, delete, select, update

from modelport.catalog.catalog import paused_gc
from modelport.catalog.entry import ModelEntry
from modelport.db import catalog_entries, catalog_sources, model_usage, upsert

__all__ = ["CatalogRepository", "RemoteSource"]


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
        conn: Connection, entries: Iterable[ModelEntry], origin: str, now: dt.datetime
    ) -> None:
        """Insert or replace rows: one executemany upsert.

        Two statements per entry made importing 50,000 entries take over a minute; one
        upsert, rather than a delete and an insert, lets two servers import the same
        entry at once on PostgreSQL.
        """
        rows = {
            entry.id: {
                "id": entry.id,
                "origin": origin,
                "data": json.dumps(entry.to_json_dict(), ensure_ascii=False),
                "updated_at": now,
            }
            for entry in entries
        }  # the last of equal ids wins, as one statement per entry did
        upsert(
            conn,
            catalog_entries,
            list(rows.values()),
            keys=["id"],
            replace=["origin", "data", "updated_at"],
        )

    def save(self, entries: Iterable[ModelEntry], *, origin: str) -> None:
        """Insert or replace entries under an origin."""
        with self.engine.begin() as conn:
            self._put(conn, entries, origin, _now())

    def replace_origin(self, origin: str, entries: Iterable[ModelEntry]) -> list[str]:
        """Make an origin hold exactly these entries (one transaction).

        An id that another origin already holds stays with it (a user's own entry is
        never overwritten by a remote catalog); the skipped ids are returned.
        """
        now = _now()
        skipped: list[str] = []
        with self.engine.begin() as conn:
            conn.execute(delete(catalog_entries).where(catalog_entries.c.origin == origin))
            taken = set(conn.execute(select(catalog_entries.c.id)).scalars())
            kept = []
            for entry in entries:
                if entry.id in taken:
                    skipped.append(entry.id)
                else:
                    kept.append(entry)
            self._put(conn, kept, origin, now)
        return skipped

    def delete(self, model_id: str) -> bool:
        """Delete a stored entry; whether it existed."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(catalog_entries).where(catalog_entries.c.id == model_id))
        return bool(result.rowcount)

    # ---------------------------------------------------------------- usage

    def usage(self) -> dict[str, int]:
        """Usage count of every model used so far."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(model_usage.c.id, model_usage.c.count)).all()
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
        """Remove a source and its entries; whether it existed."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(catalog_sources).where(catalog_sources.c.name == name))
            conn.execute(
                delete(catalog_entries).where(catalog_entries.c.origin == f"remote:{name}")
            )
        return bool(gone.rowcount)

    def mark_refreshed(self, name: str, *, entry_count: int, etag: str | None) -> None:
        """Record a successful refresh of a source."""
        with self.engine.begin() as conn:
            conn.execute(
                update(catalog_sources)
                .where(catalog_sources.c.name == name)
                .values(entry_count=entry_count, etag=etag, refreshed_at=_now())
            )
