"""Dynamic batching for encoders: concurrent requests to one model run as shared batches.

As in Hugging Face TEI, inputs that arrive together are run together, up to a token
budget, and the pipeline sorts each batch by length and pads it per mini-batch. Unlike
a plain FIFO, a batch takes inputs from the waiting requests in turn (round-robin), so a
request with a thousand inputs does not make a one-input request wait longer than one
batch. The queue is bounded: past ``max_queue`` waiting inputs a request is refused with
``ServerBusyError`` (429 with Retry-After), never kept in an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.errors import ServerBusyError

if TYPE_CHECKING:
    from modelport.runtime.model import Model

__all__ = ["BATCHED_TASKS", "Batcher"]

log = logging.getLogger("modelport.serve")

#: Tasks whose pipeline takes a list of texts and answers each one on its own.
BATCHED_TASKS = frozenset(
    {
        "feature-extraction",
        "sentence-similarity",
        "text-classification",
        "token-classification",
        "fill-mask",
    }
)


@dataclass(eq=False)
class _Request:
    texts: Sequence[str]
    counts: Sequence[int]
    options: dict[str, Any]
    future: asyncio.Future[list[Any]]
    loop: asyncio.AbstractEventLoop
    results: list[Any] = field(default_factory=list)
    next: int = 0
    left: int = 0

    @property
    def group(self) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((k, repr(v)) for k, v in self.options.items()))

    def settle(self, result: list[Any] | None, error: BaseException | None) -> None:
        def done() -> None:
            if self.future.done():
                return  # the client went away
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result or [])

        self.loop.call_soon_threadsafe(done)


class Batcher:
    """One worker thread per encoder that runs waiting inputs in shared batches."""

    def __init__(
        self,
        name: str,
        model: Model,
        *,
        max_batch_tokens: int,
        wait_s: float,
        max_queue: int,
        metrics: Any = None,
    ) -> None:
        self.name = name
        self.model = model
        self.max_batch_tokens = max_batch_tokens
        self.wait_s = wait_s
        self.max_queue = max_queue
        self.metrics = metrics
        self._pending: list[_Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self._first_arrival = 0.0
        #: Inputs waiting to be taken into a batch.
        self.waiting = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(
        self, texts: Sequence[str], counts: Sequence[int], **options: Any
    ) -> list[Any]:
        """The pipeline's answer for each text, in order, run in shared batches."""
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        request = _Request(texts, counts, options, loop.create_future(), loop)
        request.results = [None] * len(texts)
        request.left = len(texts)
        with self._cond:
            if self._closed:
                raise ServerBusyError(self.name, self.waiting, retry_after=1.0)
            # One request larger than the whole queue is still served when it is alone.
            if self.waiting and self.waiting + len(texts) > self.max_queue:
                raise ServerBusyError(self.name, self.waiting)
            if not self._pending:
                self._first_arrival = time.monotonic()
            self._pending.append(request)
            self.waiting += len(texts)
            self._observe_queue()
            self._cond.notify()
        try:
            return await request.future
        finally:
            if not request.future.done():
                request.future.cancel()
            with self._cond:  # a request the client abandoned leaves the queue
                if request in self._pending:
                    self._pending.remove(request)
                    self.waiting -= len(texts) - request.next
                    self._observe_queue()

    def close(self) -> None:
        """Stop taking requests; the worker ends after the batch it runs."""
        with self._cond:
            self._closed = True
            for request in self._pending:
                request.settle(None, ServerBusyError(self.name, 0, retry_after=1.0))
            self._pending.clear()
            self.waiting = 0
            self._cond.notify_all()

    def _observe_queue(self) -> None:
        if self.metrics is not None:
            self.metrics.queue(self.name, self.waiting)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                # An idle model waits a moment for company; a busy one never waits.
                deadline = self._first_arrival + self.wait_s
                while (
                    not self._closed
                    and self._pending_tokens() < self.max_batch_tokens
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                if self._closed:
                    return
                batch = self._take()
                self._first_arrival = time.monotonic()
                self._observe_queue()
            self._run(batch)

    def _pending_tokens(self) -> int:
        return sum(sum(r.counts[r.next :]) for r in self._pending)

    def _take(self) -> list[tuple[_Request, int]]:
        """Inputs for one batch: one from each waiting request in turn, within the budget."""
        group = self._pending[0].group
        members = [r for r in self._pending if r.group == group]
        taken: list[tuple[_Request, int]] = []
        tokens = 0
        more = True
        while more:
            more = False
            for request in members:
                if request.next >= len(request.texts):
                    continue
                cost = max(1, request.counts[request.next])
                if taken and tokens + cost > self.max_batch_tokens:
                    more = False
                    break
                taken.append((request, request.next))
                request.next += 1
                tokens += cost
                more = True
        self.waiting -= len(taken)
        self._pending = [r for r in self._pending if r.next < len(r.texts)]
        return taken

    def _run(self, batch: list[tuple[_Request, int]]) -> None:
        texts = [request.texts[index] for request, index in batch]
        options = batch[0][0].options
        try:
            answers = self.model(texts, **options)
        except Exception as e:  # every request of the batch gets the error
            for request in {r for r, _ in batch}:
                request.settle(None, e)
            return
        finally:
            self.batches += 1
            if self.metrics is not None:
                self.metrics.batch(self.name, len(batch))
        for (request, index), answer in zip(batch, answers, strict=True):
            request.results[index] = answer
            request.left -= 1
            if request.left == 0:
                request.settle(request.results, None)
