"""``prompt`` and ``chat``: the synchronous faces of prompting, for the CLI and Python.

They run ``modelport.api.prompting``'s async use-cases on one background event loop, so that
SDK clients and their connections are reused between calls; a ``Response`` streams when
iterated, a ``Conversation`` keeps the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from modelport.api.prompting import (
    ChatResult,
    ChatStream,
    _gather,
    chat_completion,
    resolve_target,
    stream_completion,
)
from modelport.errors import InvalidValueError
from modelport.providers.base import ChatChunk, Usage

if TYPE_CHECKING:
    from modelport.api.usage import Origin

__all__ = ["Conversation", "Response", "chat", "prompt"]


class _Loop:
    """One background event loop for synchronous callers (SDK clients live on it)."""

    def __init__(self) -> None:

        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        import asyncio
        import os

        with self._lock:
            # A forked child inherits the loop but not the thread that runs it.
            if self._loop is None or self._loop.is_closed() or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="modelport-prompt-loop", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Any) -> Any:
        import asyncio

        future = asyncio.run_coroutine_threadsafe(coroutine, self.get())
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()  # Ctrl-C stops the call on the loop too, not only the caller
            raise


_LOOP = _Loop()


class Response:
    """An answer to a prompt: iterate it for the text as it streams, or ask ``text()``.

    After the answer is complete: ``model`` (what answered), ``provider``, ``access``
    (``api``, ``cli`` or ``local``), ``usage``, ``cost_usd`` (None: unknown),
    ``latency_ms``, ``tool_calls`` and ``failed`` (fallbacks that failed first).
    """

    def __init__(self, start: Any, *, stream: bool) -> None:
        self._start = start
        self._stream = stream
        self._pieces: list[str] = []
        self._done = False
        self.message: dict[str, Any] = {}
        self.model: str | None = None
        self.provider: str | None = None
        self.access: str | None = None
        self.usage: Usage | None = None
        self.cost_usd: float | None = None
        self.latency_ms: float | None = None
        self.finish_reason: str | None = None
        self.failed: list[tuple[str, str]] = []
        self._began = False

    def __iter__(self) -> Iterator[str]:
        if self._done or self._began:
            # Read again after the end, or after the caller stopped early: the text so far,
            # never a second (billed) call.
            yield from self._pieces
            return
        self._began = True
        if not self._stream:
            self._whole()
            yield from self._pieces
            return
        stream: ChatStream = _LOOP.run(self._start(stream=True))
        self.model, self.provider, self.access = (
            stream.target.name,
            stream.target.provider or "local",
            stream.access,
        )
        self.failed = stream.failed
        iterator = stream.__aiter__()
        pieces: list[ChatChunk] = []
        try:
            while True:
                try:
                    chunk = _LOOP.run(anext(iterator))
                except StopAsyncIteration:
                    break
                pieces.append(chunk)
                text = chunk.delta.get("content")
                if text:
                    self._pieces.append(text)
                    yield text
        finally:
            whole = _gather(None, pieces, stream.target)
            self.message, self.usage = whole.message, whole.usage
            self.finish_reason = whole.finish_reason
            with contextlib.suppress(Exception):
                _LOOP.run(stream.aclose())  # an early stop records the call as far as it went
            self.cost_usd, self.latency_ms = stream.cost_usd, stream.latency_ms
        self._done = True

    def _whole(self) -> None:
        result: ChatResult = _LOOP.run(self._start(stream=False))
        self.message = result.response.message
        self._pieces = [result.text] if result.text else []
        self.model = result.target.name
        self.provider = result.target.provider or "local"
        self.access = result.response.access
        self.usage = result.response.usage
        self.cost_usd = result.cost_usd
        self.latency_ms = result.latency_ms
        self.finish_reason = result.response.finish_reason
        self.failed = result.failed
        self._done = True

    def text(self) -> str:
        """The whole answer's text (waits for the end)."""
        for _ in self:
            pass
        return "".join(self._pieces)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The tools the model asked to call, in OpenAI's shape."""
        self.text()
        return list(self.message.get("tool_calls") or [])

    def __repr__(self) -> str:
        state = "done" if self._done else "pending"
        return f"<Response {self.model or '?'} {state}>"


def prompt(
    model: str,
    text: str | None = None,
    *,
    system: str | None = None,
    messages: Sequence[dict[str, Any]] | None = None,
    stream: bool = False,
    key: str | None = None,
    access: str | None = None,
    fallbacks: Sequence[str] | None = None,
    origin: Origin = "python",
    **params: Any,
) -> Response:
    """Ask a hosted or local model once; ``stream=True`` yields the text as it comes."""
    history = list(messages or [])
    if system is not None:
        history.insert(0, {"role": "system", "content": system})
    if text is not None:
        history.append({"role": "user", "content": text})
    if not history:
        raise InvalidValueError("A prompt needs text or messages.")
    resolve_target(model)  # a name nothing answers fails here, not when the text is read

    async def start(*, stream: bool) -> Any:
        call = stream_completion if stream else chat_completion
        return await call(
            model, history, key=key, access=access, origin=origin, fallbacks=fallbacks, **params
        )

    return Response(start, stream=stream)


class Conversation:
    """A chat with one model that keeps its history: each ``prompt`` sees the turns before."""

    def __init__(
        self,
        model: str,
        *,
        system: str | None = None,
        key: str | None = None,
        access: str | None = None,
        origin: Origin = "python",
        **params: Any,
    ) -> None:
        self.model = model
        self.messages: list[dict[str, Any]] = []
        if system:
            self.messages.append({"role": "system", "content": system})
        self._key = key
        self._access = access
        self._origin = origin
        self._params = params
        self.responses: list[Response] = []

    def prompt(self, text: str, *, stream: bool = False, **params: Any) -> Response:
        """Say something; the answer joins the history once it is complete."""
        turn = {"role": "user", "content": text}
        response = prompt(
            self.model,
            messages=[*self.messages, turn],
            stream=stream,
            key=self._key,
            access=self._access,
            origin=self._origin,
            **{**self._params, **params},
        )
        conversation = self

        class _Turn(Response):
            def __iter__(self) -> Iterator[str]:
                yield from Response.__iter__(self)
                if self.message and not any(m is turn for m in conversation.messages):
                    conversation.messages.append(turn)
                    conversation.messages.append(
                        {
                            k: v
                            for k, v in self.message.items()
                            if k in ("role", "content", "tool_calls")
                        }
                    )

        response.__class__ = _Turn
        self.responses.append(response)
        return response

    def __repr__(self) -> str:
        return f"<Conversation {self.model} {len(self.messages)} messages>"


def chat(model: str, *, system: str | None = None, **options: Any) -> Conversation:
    """Start a conversation with a hosted or local model."""
    resolve_target(model)  # a bad name fails here, not at the first turn
    return Conversation(model, system=system, **options)
