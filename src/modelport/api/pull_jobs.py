"""Pulls started from the web UI, as rows of the database every replica of a server uses,
so that any replica follows, keeps alive and cancels a pull that another one runs.

The replica running a pull writes where it stands (``write_progress``, ``finish``) and
polls ``look``; the others read ``read`` and ask ``request_cancel``; progress streams
call ``watch``. Rows of pulls that ended (or stopped being written) ``KEEP_S`` ago are
pruned when a new pull starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "KEEP_S",
    "JobRow",
    "create",
    "finish",
    "look",
    "read",
    "replica_name",
    "request_cancel",
    "watch",
    "write_progress",
]

#: How long the row of a pull is kept after it was last written.
KEEP_S = 86_400.0


@dataclass(frozen=True)
class JobRow:
    """A pull as the database has it."""

    id: str
    ref: str
    replica: str
    state: str
    status: str
    file: str | None
    files: int
    completed: int
    total: int | None
    message: str | None
    result: dict[str, Any] | None
    cancel_requested: bool
    updated_at: dt.datetime

    def progress(self) -> dict[str, Any]:
        """Bytes received and expected, as a progress event of the stream carries them."""
        out: dict[str, Any] = {
            "state": self.state,
            "status": self.status,
            "file": self.file,
            "files": self.files,
            "completed": self.completed,
            "total": self.total,
        }
        if self.total:
            out["percent"] = round(100.0 * min(self.completed, self.total) / self.total, 1)
        return out


def _engine() -> Engine:
    from modelport.db import get_engine

    return get_engine(get_settings().database_url)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def replica_name() -> str:
    """This process, as a row names the replica running a pull."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create(job_id: str, ref: str) -> None:
    """Record a pull this process is about to run; prune the rows of long-ended pulls."""
    from sqlalchemy import delete, insert

    from modelport.db import ui_pulls

    now = _now()
    with _engine().begin() as conn:
        # A running row unwritten for a day belongs to a replica that stopped.
        conn.execute(
            delete(ui_pulls).where(ui_pulls.c.updated_at < now - dt.timedelta(seconds=KEEP_S))
        )
        conn.execute(
            insert(ui_pulls).values(
                id=job_id,
                ref=ref,
                replica=replica_name(),
                state="running",
                status="starting",
                file=None,
                files=0,
                completed=0,
                total=None,
                message=None,
                result=None,
                cancel_requested=False,
                watches=0,
                watched_at=None,
                created_at=now,
                updated_at=now,
            )
        )


def write_progress(job_id: str, progress: dict[str, Any]) -> tuple[bool, int]:
    """Write where a running pull stands (``progress`` as ``JobRow.progress`` has it);
    whether a user asked to cancel it and how often it was watched."""
    from sqlalchemy import update

    from modelport.db import ui_pulls

    with _engine().begin() as conn:
        conn.execute(
            update(ui_pulls)
            # Never over the end ``finish`` wrote (this may race with it).
            .where(ui_pulls.c.id == job_id, ui_pulls.c.state == "running")
            .values(
                status=progress["status"][:200],
                file=progress["file"],
                files=progress["files"],
                completed=progress["completed"],
                total=progress["total"],
                updated_at=_now(),
            )
        )
    return look(job_id)


def look(job_id: str) -> tuple[bool, int]:
    """Whether a user asked to cancel a pull, and how often a stream watched it (one cheap
    read, for the replica running it)."""
    from sqlalchemy import select

    from modelport.db import ui_pulls

    with _engine().connect() as conn:
        row = conn.execute(
            select(ui_pulls.c.cancel_requested, ui_pulls.c.watches).where(ui_pulls.c.id == job_id)
        ).first()
    return (True, 0) if row is None else (bool(row[0]), int(row[1]))


def finish(
    job_id: str,
    progress: dict[str, Any],
    state: str,
    *,
    message: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Write how a pull ended, with where it stood last."""
    from sqlalchemy import update

    from modelport.db import ui_pulls

    with _engine().begin() as conn:
        conn.execute(
            update(ui_pulls)
            .where(ui_pulls.c.id == job_id)
            .values(
                state=state,
                status=progress["status"][:200],
                file=progress["file"],
                files=progress["files"],
                completed=progress["completed"],
                total=progress["total"],
                message=message,
                result=None if result is None else json.dumps(result),
                updated_at=_now(),
            )
        )


def read(job_id: str) -> JobRow | None:
    """A pull by its id, whichever replica runs it (None: no such pull)."""
    from sqlalchemy import select

    from modelport.db import ui_pulls

    with _engine().connect() as conn:
        row = conn.execute(select(ui_pulls).where(ui_pulls.c.id == job_id)).first()
    if row is None:
        return None
    m = row._mapping
    return JobRow(
        id=m["id"],
        ref=m["ref"],
        replica=m["replica"],
        state=m["state"],
        status=m["status"],
        file=m["file"],
        files=m["files"],
        completed=m["completed"],
        total=m["total"],
        message=m["message"],
        result=None if m["result"] is None else json.loads(m["result"]),
        cancel_requested=bool(m["cancel_requested"]),
        updated_at=m["updated_at"],
    )


def request_cancel(job_id: str) -> JobRow | None:
    """Ask the replica running a pull to stop it; the pull as it stands (None: no such pull)."""
    from sqlalchemy import update

    from modelport.db import ui_pulls

    with _engine().begin() as conn:
        conn.execute(
            update(ui_pulls)
            .where(ui_pulls.c.id == job_id, ui_pulls.c.state == "running")
            .values(cancel_requested=True)
        )
    return read(job_id)


def watch(job_id: str) -> None:
    """Say that a stream still watches a pull (the running replica counts the bumps)."""
    from sqlalchemy import update

    from modelport.db import ui_pulls

    with _engine().begin() as conn:
        conn.execute(
            update(ui_pulls)
            .where(ui_pulls.c.id == job_id, ui_pulls.c.state == "running")
            .values(watches=ui_pulls.c.watches + 1, watched_at=_now())
        )
