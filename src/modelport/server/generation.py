"""Text generation for the protocol routers: one way to stream a served model's tokens.

The pipeline generates in a worker thread; its deltas reach the event loop through a
queue. When the consumer stops early (a client that disconnects, a router that ends the
stream), the ``cancelled`` flag stops the generation between two tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidValueError, ServerBusyError, UnsupportedParameterError

if TYPE_CHECKING:
    from modelport.server.pool import ModelPool, ServedModel

log = logging.getLogger("modelport.serve")

__all__ = [
    "Delta",
    "GenerationParams",
    "ToolCall",
    "chat_prompt",
    "context_room",
    "generator_of",
    "observe",
    "split_tool_calls",
    "stream",
]


#: New tokens a request that sets no limit gets when the model names no context length.
DEFAULT_MAX_TOKENS = 2048


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
    return str(pipeline.render_chat(messages, tools=tools or None))


def context_length(served: ServedModel) -> int | None:
    """Tokens the model can attend to (prompt and answer together), if it says."""
    limit = getattr(served.model.pipeline, "context_length", None)
    return int(limit) if isinstance(limit, int) else None


def context_room(
    served: ServedModel,
    prompt: str,
    *,
    window: int | None = None,
    add_special_tokens: bool = True,
) -> tuple[int, int | None]:
    """Tokens of the prompt, and how many new ones fit after it (None when no limit is known).

    ``window`` narrows the model's own context (Ollama's ``num_ctx``); the model's is the
    most a request gets. A prompt a chat template rendered holds its special tokens
    already (``add_special_tokens=False``).
    """
    tokens = int(generator_of(served).count_tokens(prompt, add_special_tokens=add_special_tokens))
    limit = context_length(served)
    if window is not None:
        limit = window if limit is None else min(limit, window)
    return tokens, None if limit is None else limit - tokens


def stream(
    pool: ModelPool,
    served: ServedModel,
    prompt: str,
    params: GenerationParams,
    *,
    add_special_tokens: bool = True,
) -> AsyncGenerator[Delta, None]:
    """Deltas of one generation, produced in a worker thread; stops when the caller stops.

    A full queue is refused here, when it is called: before a streamed answer starts.
    """
    pipeline = generator_of(served)
    if served.waiting >= pool.settings.max_queue:
        raise ServerBusyError(served.name, served.waiting)
    return _deltas(pool, served, pipeline, prompt, params, add_special_tokens)


async def _deltas(
    pool: ModelPool,
    served: ServedModel,
    pipeline: Any,
    prompt: str,
    params: GenerationParams,
    add_special_tokens: bool,
) -> AsyncGenerator[Delta, None]:
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
                max_new_tokens=params.max_tokens or DEFAULT_MAX_TOKENS,
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
                done = Delta(
                    delta.text,
                    getattr(delta, "finish_reason", None),
                    getattr(delta, "prompt_tokens", None) or 0,
                    getattr(delta, "completion_tokens", None) or 0,
                    first,
                )
                if done.finish_reason == "cancelled":
                    # Nobody reads this stream any more: count and log it here.
                    log.info(
                        "%s: the client went away; generation stopped after %d tokens",
                        served.name,
                        done.completion_tokens,
                    )
                    observe(pool.metrics, served.name, done)
                put(done)
        except BaseException as e:
            put(e)
        finally:
            slot.release()
            put(None)

    served.waiting += 1
    thread = threading.Thread(target=work, name=f"generate-{served.name}", daemon=True)
    thread.start()
    held: Delta | BaseException | None = None
    holding = False
    try:
        while True:
            if holding:
                item, holding = held, False
            else:
                item = await queue.get()
            # Deltas that arrived while the last one was being sent go out as one: a client
            # that reads slower than the model generates gets fewer, longer chunks.
            while isinstance(item, Delta) and item.finish_reason is None and not queue.empty():
                following = queue.get_nowait()
                if not isinstance(following, Delta):
                    held, holding = following, True  # the end (or an error) comes next
                    break
                following.text = item.text + following.text
                following.first_token_s = item.first_token_s
                item = following
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


def observe(metrics: Any, model: str, last: Delta) -> None:
    """Count a finished generation's tokens and its time to first token."""
    if metrics is None:
        return
    metrics.count_tokens(model, prompt=last.prompt_tokens, completion=last.completion_tokens)
    if last.first_token_s is not None:
        metrics.first_token.labels(model).observe(last.first_token_s)


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: a function name and its arguments as the model wrote them."""

    name: str
    #: Parsed JSON (usually an object), or the text the model wrote when it was a string.
    arguments: Any


def split_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Hermes-style ``<tool_call>{json}</tool_call>`` blocks as tool calls, and the text left.

    A block that is not a JSON object with a name ends the parsing: it stays in the text.
    """
    calls: list[ToolCall] = []
    rest = text
    while "<tool_call>" in rest and "</tool_call>" in rest:
        before, _, after = rest.partition("<tool_call>")
        inner, _, rest = after.partition("</tool_call>")
        try:
            call = json.loads(inner.strip())
            name = call["name"]
            arguments = call.get("arguments", call.get("parameters", {}))
        except (ValueError, KeyError, TypeError, AttributeError):
            rest = before + "<tool_call>" + inner + "</tool_call>" + rest
            break
        calls.append(ToolCall(str(name), arguments))
        rest = before + rest
    return (rest if calls else text), calls
