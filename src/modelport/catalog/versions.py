"""Versions of user and remote catalog entries: each change keeps the version it ended.

The current version of an entry is its row in ``catalog_entries``; every replacement or
removal first copies that row into ``catalog_entry_versions`` with how it ended
(``replaced`` or ``removed``), by what (``user``, or ``remote:NAME`` for a refresh of a
remote catalog), by whom (account@host) and when. A write that leaves an entry as it was
keeps no version. Bundled entries change only with modelport itself and have none.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from modelport.db import catalog_entries, catalog_entry_versions

__all__ = ["EntryVersion", "actor", "archive", "history"]


@dataclass(frozen=True)
class EntryVersion:
    """One version of a user or remote entry: what it was, where it came from, how it ended.

    ``entry`` is the entry's document as it was stored (not validated again: a version
    written by an older modelport stays readable). The current version has
    ``current=True`` and no ``replaced_at``, ``change``, ``changed_by`` or ``actor``.
    """

    model_id: str
    version: int
    origin: str
    entry: dict[str, Any]
    written_at: dt.datetime
    current: bool
    replaced_at: dt.datetime | None = None
    change: str | None = None
    changed_by: str | None = None
    actor: str | None = None


def actor() -> str:
    """Who changes the catalog: this process's account on this machine."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every time stored is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _latest(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    """The highest version kept of each id (absent: none kept yet)."""
    found: dict[str, int] = {}
    v = catalog_entry_versions.c
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        query = select(v.entry_id, func.max(v.version)).where(v.entry_id.in_(chunk))
        found.update({str(k): int(n) for k, n in conn.execute(query.group_by(v.entry_id))})
    return found


def archive(
    conn: Connection,
    rows: Iterable[Any],
    *,
    change: str,
    changed_by: str,
    now: dt.datetime,
) -> None:
    """Keep the ``catalog_entries`` rows a change ends, in the caller's transaction.

    The caller read them ``FOR UPDATE`` (PostgreSQL), so two servers changing one entry
    at once number its versions one after the other.
    """
    ended = list(rows)
    if not ended:
        return
    latest = _latest(conn, [r.id for r in ended])
    who = actor()
    conn.execute(
        insert(catalog_entry_versions),
        [
            {
                "entry_id": r.id,
                "version": latest.get(r.id, 0) + 1,
                "origin": r.origin,
                "data": r.data,
                "written_at": r.updated_at,
                "replaced_at": now,
                "change": change,
                "changed_by": changed_by,
                "actor": who,
            }
            for r in ended
        ],
    )


def history(engine: Engine, model_id: str) -> list[EntryVersion]:
    """Every version of an entry, newest first (empty: never a user or remote entry)."""
    v = catalog_entry_versions.c
    with engine.connect() as conn:
        current = conn.execute(
            select(catalog_entries).where(catalog_entries.c.id == model_id)
        ).first()
        kept = conn.execute(
            select(catalog_entry_versions).where(v.entry_id == model_id).order_by(v.version.desc())
        ).all()
    out: list[EntryVersion] = []
    if current is not None:
        out.append(
            EntryVersion(
                model_id=model_id,
                version=(kept[0].version if kept else 0) + 1,
                origin=current.origin,
                entry=json.loads(current.data),
                written_at=_aware(current.updated_at),
                current=True,
            )
        )
    out.extend(
        EntryVersion(
            model_id=model_id,
            version=r.version,
            origin=r.origin,
            entry=json.loads(r.data),
            written_at=_aware(r.written_at),
            current=False,
            replaced_at=_aware(r.replaced_at),
            change=r.change,
            changed_by=r.changed_by,
            actor=r.actor,
        )
        for r in kept
    )
    return out
