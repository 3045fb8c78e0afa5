"""Text generation for the protocol routers: one way to stream a served model's tokens.

The pipeline generates in a worker thread; its deltas reach the event loop through a
queue. When the consumer stops early (a client that disconnects, a router that ends the
stream), the ``cancelled`` flag stops the generation between two tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidValueError, ServerBusyError, UnsupportedParameterError

if TYPE_CHECKING:
    from modelport.server.pool import ModelPool, ServedModel

__all__ = ["Delta", "GenerationParams", "chat_prompt", "generator_of", "stream"]


@dataclass(frozen=True)
class GenerationParams:
    """What a request asks of one generation, in the protocols' common terms."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: Sequence[str] = ()


@dataclass
class Delta:
    """New text of a generation; the last one carries the finish reason and token counts."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def generator_of(served: ServedModel, param: str = "model") -> Any:
    """The served model's text-generation pipeline, or a 400 naming the model's task."""
    pipeline = served.model.pipeline
    if served.task != "text-generation" or not hasattr(pipeline, "stream"):
        raise InvalidValueError(
            f"{served.name} is a {served.task} model: it does not generate text.",
            hint="Pick a text-generation model (see `modelport ls`).",
            param=param,
        )
    return pipeline


def chat_prompt(
    served: ServedModel, messages: list[dict[str, Any]], *, tools: list[Any] | None = None
) -> str:
    """The conversation rendered with the model's own chat template."""
    pipeline = generator_of(served)
    if not messages:
        raise InvalidValueError("messages must hold at least one message.", param="messages")
    return str(pipeline.chat_prompt(messages, tools=tools or None))


def context_length(served: ServedModel) -> int | None:
    """Tokens the model can attend to (prompt and answer together), if it says."""
    limit = getattr(served.model.pipeline, "context_length", None)
    return int(limit) if isinstance(limit, int) else None


async def stream(
    pool: ModelPool,
    served: ServedModel,
    prompt: str,
    params: GenerationParams,
    *,
    add_special_tokens: bool = True,
) -> AsyncIterator[Delta]:
    """Deltas of one generation, produced in a worker thread; stops when the caller stops."""
    pipeline = generator_of(served)
    if served.waiting >= pool.settings.max_queue:
        raise ServerBusyError(served.name, served.waiting)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue()
    cancelled = threading.Event()
    started = time.perf_counter()

    def put(item: Delta | BaseException | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        slot = served.slots
        while not slot.acquire(timeout=0.2):
            if cancelled.is_set():
                return
        try:
            first: float | None = None
            for delta in pipeline.stream(
                prompt,
                max_new_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                seed=params.seed,
                stop=list(params.stop),
                cancelled=cancelled.is_set,
                add_special_tokens=add_special_tokens,
            ):
                if first is None:
                    first = time.perf_counter() - started
                put(
                    Delta(
                        delta.text,
                        getattr(delta, "finish_reason", None),
                        getattr(delta, "prompt_tokens", None) or 0,
                        getattr(delta, "completion_tokens", None) or 0,
                        first,
                    )
                )
                if cancelled.is_set():
                    break
        except BaseException as e:
            put(e)
        finally:
            slot.release()
            put(None)

    served.waiting += 1
    thread = threading.Thread(target=work, name=f"generate-{served.name}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        served.waiting -= 1


def refuse(param: str, value: object, reason: str) -> None:
    """Refuse a parameter the model cannot honour when the request sets it."""
    if value not in (None, False, 0, 0.0, [], {}):
        raise UnsupportedParameterError(param, reason)
