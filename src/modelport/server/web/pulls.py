"""Pulls started from the web UI: each runs the pull use-case in a thread, and its progress
events (the ones Ollama's ``/api/pull`` streams) are added up per file and sent to the
browser as Server-Sent Events.

A pull stops when the user cancels it, or when nobody watches it any more: the browser
closed its stream (the tab was closed, the page left) and did not come back within
``GRACE_S`` (an EventSource reconnects by itself after a network blip). The use-case then
deletes what the pull had begun, so a cancelled pull leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

    from modelport.hubs.base import PulledModel, PullEvent

__all__ = ["GRACE_S", "PullJob", "Pulls", "sse"]

#: How long a pull nobody watches goes on before it is cancelled (a reconnect is quicker).
GRACE_S = 2.0
#: How often a stream looks for news, and sends a comment to learn the browser left.
TICK_S = 0.1
KEEPALIVE_S = 5.0
#: Finished pulls are remembered this long (a late stream learns how it ended), at most
#: ``KEEP`` of them.
KEEP_S = 600.0
KEEP = 50


@dataclass
class PullJob:
    """One pull: where it stands, file by file, and how it ended."""

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
    #: Bumped at every change, so that a stream sends only news.
    version: int = 0
    watchers: int = 0
    ended_at: float | None = None
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
        """Record how the pull ended."""
        with self.lock:
            self.state = state
            self.message = message
            self.result = result
            self.ended_at = time.monotonic()
            self.version += 1


def _result(pulled: PulledModel) -> dict[str, Any]:
    return {
        "ref": f"{pulled.hub}:{pulled.id}",
        "revision": pulled.revision,
        "size": pulled.size,
        "downloaded": pulled.downloaded_bytes,
        "from_store": pulled.from_store,
    }


class Pulls:
    """The pulls this server started for browsers."""

    def __init__(self) -> None:
        self._jobs: dict[str, PullJob] = {}
        self._lock = threading.Lock()

    def start(self, ref: str, *, revision: str | None = None) -> PullJob:
        """Start pulling ``ref`` in a thread."""
        job = PullJob(id=secrets.token_urlsafe(12), ref=ref)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        threading.Thread(
            target=self._run, args=(job, revision), name=f"ui-pull-{ref}", daemon=True
        ).start()
        return job

    def get(self, job_id: str) -> PullJob | None:
        """A pull by its id, if this server still remembers it."""
        with self._lock:
            return self._jobs.get(job_id)

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
        from modelport.errors import ModelportError, PullCancelledError

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
    def release(job: PullJob) -> None:
        """A stream of ``job`` ended: without another one soon, the pull is cancelled."""
        with job.lock:
            job.watchers -= 1

        def check() -> None:
            if job.watchers <= 0 and job.state == "running":
                job.cancel.set()

        threading.Timer(GRACE_S, check).start()


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def sse(request: Request, job: PullJob) -> AsyncIterator[str]:
    """The pull's progress as Server-Sent Events: ``progress`` at each change (at most ten a
    second), then one of ``done``, ``failed`` or ``cancelled``, and the stream ends."""
    with job.lock:
        job.watchers += 1
    try:
        yield "retry: 1000\n\n"  # reconnect within GRACE_S after a blip
        seen = -1
        quiet_since = time.monotonic()
        while True:
            if job.version != seen:
                seen = job.version
                progress = job.progress()
                yield _event("progress", progress)
                quiet_since = time.monotonic()
                if job.state != "running":
                    with job.lock:
                        ending = {"message": job.message, "result": job.result}
                    yield _event(job.state, ending)
                    return
            elif time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": still pulling\n\n"
                quiet_since = time.monotonic()
            if await request.is_disconnected():
                return
            await asyncio.sleep(TICK_S)
    finally:
        Pulls.release(job)
