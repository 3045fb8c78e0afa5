"""Pulls started from the web UI: each runs the pull use-case in a thread, and its progress
events (the ones Ollama's ``/api/pull`` streams) are added up per file and sent to the
browser as Server-Sent Events.

Where a pull stands lives in the database every replica of the server uses
(``api.pull_jobs``), so that with several replicas behind a load balancer any of them
streams a pull's progress and cancels it: the replica running the pull writes its
progress there (``WRITE_S`` apart at most, and its end always) and looks for a cancel
request every ``LOOK_S``; a stream on any replica reads the row every ``POLL_S``.

A pull stops when the user cancels it, or when nobody watches it any more: the browser
closed its stream (the tab was closed, the page left) and no stream, on any replica, came
back within ``GRACE_S`` (an EventSource reconnects by itself after a network blip). The
use-case then deletes what the pull had begun, so a cancelled pull leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from modelport.api import pull_jobs
from modelport.errors import ModelportError

if TYPE_CHECKING:
    from starlette.requests import Request

    from modelport.api.pull_jobs import JobRow
    from modelport.hubs.base import PulledModel, PullEvent

__all__ = ["GRACE_S", "PullJob", "Pulls", "sse"]

log = logging.getLogger(__name__)

#: How long a pull nobody watches goes on before it is cancelled (a reconnect is quicker).
GRACE_S = 2.0
#: The running replica writes progress at most this often, and looks for a cancel request
#: (and for streams watching) this often when it has nothing to write.
WRITE_S = 0.2
LOOK_S = 0.5
#: ... and writes at least this often, so that streams elsewhere know it still runs; a pull
#: whose row was not written for ``STALE_S`` belongs to a replica that stopped.
HEARTBEAT_S = 10.0
STALE_S = 60.0
#: How often a stream reads the row, tells it still watches, and sends a comment to learn
#: the browser left.
POLL_S = 0.25
WATCH_S = 0.5
KEEPALIVE_S = 5.0
#: Finished pulls are remembered in memory this long, at most ``KEEP`` of them (the
#: database keeps their rows longer, for any replica).
KEEP_S = 600.0
KEEP = 50


@dataclass
class PullJob:
    """One pull this replica runs: where it stands, file by file, and how it ended."""

    id: str
    ref: str
    cancel: threading.Event = field(default_factory=threading.Event)
    #: running, done, failed or cancelled.
    state: str = "running"
    status: str = "starting"
    file: str | None = None
    #: Per download (its digest): bytes expected (None: not said) and bytes received.
    downloads: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    message: str | None = None
    result: dict[str, Any] | None = None
    #: Bumped at every change, so that only news is written.
    version: int = 0
    ended_at: float | None = None
    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_event(self, event: PullEvent) -> None:
        """Take one progress event of the pull use-case."""
        with self.lock:
            self.status = event.status
            if event.file:
                self.file = event.file
            if event.digest and event.status == "downloading":
                total = event.total
                done = event.completed or 0
                self.downloads[event.digest] = (total, done)
            self.version += 1

    def progress(self) -> dict[str, Any]:
        """Bytes received and expected over every download begun so far."""
        with self.lock:
            known = [t for t, _ in self.downloads.values() if t is not None]
            received = sum(d for _, d in self.downloads.values())
            total = sum(known) if len(known) == len(self.downloads) else None
            out: dict[str, Any] = {
                "state": self.state,
                "status": self.status,
                "file": self.file,
                "files": len(self.downloads),
                "completed": received,
                "total": total,
            }
        if total:
            out["percent"] = round(100.0 * min(received, total) / total, 1)
        return out

    def finish(self, state: str, *, message: str | None = None, result: Any = None) -> None:
        """Record how the pull ended, here and in the database."""
        with self.lock:
            self.state = state
            self.message = message
            self.result = result
            self.ended_at = time.monotonic()
            self.version += 1
        try:
            pull_jobs.finish(self.id, self.progress(), state, message=message, result=result)
        except ModelportError as e:
            log.warning("Could not record how the pull of %s ended: %s", self.ref, e.one_line())
        self.ended.set()


def _result(pulled: PulledModel) -> dict[str, Any]:
    return {
        "ref": f"{pulled.hub}:{pulled.id}",
        "revision": pulled.revision,
        "size": pulled.size,
        "downloaded": pulled.downloaded_bytes,
        "from_store": pulled.from_store,
    }


class Pulls:
    """The pulls this replica started for browsers."""

    def __init__(self) -> None:
        self._jobs: dict[str, PullJob] = {}
        self._lock = threading.Lock()

    def start(self, ref: str, *, revision: str | None = None) -> PullJob:
        """Start pulling ``ref`` in a thread (this writes to the database: not on the loop)."""
        job = PullJob(id=secrets.token_urlsafe(12), ref=ref)
        pull_jobs.create(job.id, ref)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        threading.Thread(
            target=self._run, args=(job, revision), name=f"ui-pull-{ref}", daemon=True
        ).start()
        threading.Thread(
            target=self._follow, args=(job,), name=f"ui-pull-follow-{ref}", daemon=True
        ).start()
        return job

    def get(self, job_id: str) -> PullJob | None:
        """A pull this replica runs, by its id, if it still remembers it."""
        with self._lock:
            return self._jobs.get(job_id)

    def find(self, job_id: str) -> PullJob | JobRow | None:
        """A pull by its id, whichever replica runs it (reads the database: not on the loop)."""
        return self.get(job_id) or pull_jobs.read(job_id)

    def _forget_old(self) -> None:
        now = time.monotonic()
        ended = sorted(
            (j for j in self._jobs.values() if j.ended_at is not None),
            key=lambda j: j.ended_at or 0.0,
        )
        for job in ended:
            if now - (job.ended_at or now) > KEEP_S or len(self._jobs) >= KEEP:
                del self._jobs[job.id]

    @staticmethod
    def _run(job: PullJob, revision: str | None) -> None:
        from modelport.api import pull
        from modelport.errors import PullCancelledError

        try:
            pulled = pull(job.ref, revision=revision, progress=job.on_event, cancel=job.cancel)
        except PullCancelledError as e:
            job.finish("cancelled", message=e.message)
        except ModelportError as e:
            job.finish("failed", message=e.one_line())
        except Exception as e:  # a bug must still end the stream with a sentence
            job.finish("failed", message=f"The pull failed: {type(e).__name__}: {e}")
        else:
            job.finish("done", result=_result(pulled))

    @staticmethod
    def _follow(job: PullJob) -> None:
        """While ``job`` runs: write its progress, stop it when a user cancels it (on any
        replica), or when no stream (on any replica) watched it for ``GRACE_S``."""
        written, wrote_at, looked_at = -1, 0.0, 0.0
        watches, watched_at = 0, time.monotonic()
        while not job.ended.wait(WRITE_S):
            now = time.monotonic()
            try:
                if (job.version != written and now - wrote_at >= WRITE_S) or (
                    now - wrote_at >= HEARTBEAT_S
                ):
                    written, wrote_at = job.version, now
                    cancel, seen = pull_jobs.write_progress(job.id, job.progress())
                elif now - looked_at >= LOOK_S:
                    cancel, seen = pull_jobs.look(job.id)
                else:
                    continue
            except ModelportError as e:  # a database blip: the pull goes on, tried again
                log.warning("Could not follow the pull of %s: %s", job.ref, e.one_line())
                continue
            looked_at = now
            if cancel:
                job.cancel.set()
            if seen != watches:
                watches, watched_at = seen, now
            elif watches and now - watched_at > GRACE_S:
                job.cancel.set()  # watched once, and no stream anywhere since


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _stale(row: JobRow) -> bool:
    """Whether the replica running a pull stopped writing its row long ago."""
    written = row.updated_at
    if written.tzinfo is None:  # SQLite gives back UTC without its zone
        written = written.replace(tzinfo=dt.UTC)
    return (dt.datetime.now(dt.UTC) - written).total_seconds() > STALE_S


async def sse(request: Request, row: JobRow) -> AsyncIterator[str]:
    """The pull's progress as Server-Sent Events, read from the database whichever replica
    runs it: ``progress`` at each change, then one of ``done``, ``failed`` or
    ``cancelled``, and the stream ends."""
    yield "retry: 1000\n\n"  # reconnect within GRACE_S after a blip
    seen: dict[str, Any] | None = None
    quiet_since = watched = time.monotonic()
    await _watch(row.id)
    while True:
        progress = row.progress()
        if progress != seen:
            seen = progress
            yield _event("progress", progress)
            quiet_since = time.monotonic()
            if row.state != "running":
                yield _event(row.state, {"message": row.message, "result": row.result})
                return
        elif _stale(row):
            message = "The server running this pull stopped; pull the model again."
            yield _event("failed", {"message": message, "result": None})
            return
        elif time.monotonic() - quiet_since > KEEPALIVE_S:
            yield ": still pulling\n\n"
            quiet_since = time.monotonic()
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)
        if time.monotonic() - watched >= WATCH_S:
            watched = time.monotonic()
            await _watch(row.id)
        try:
            found = await run_in_threadpool(pull_jobs.read, row.id)
        except ModelportError as e:  # a database blip: read it again next round
            log.debug("Could not read the pull %s: %s", row.id, e.one_line())
            continue
        if found is None:  # pruned meanwhile
            return
        row = found


async def _watch(job_id: str) -> None:
    try:
        await run_in_threadpool(pull_jobs.watch, job_id)
    except ModelportError as e:  # a busy database: the next round says it again
        log.debug("Could not mark the pull %s as watched: %s", job_id, e.one_line())
