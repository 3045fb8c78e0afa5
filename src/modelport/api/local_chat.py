"""A local model's chat answer, generated on ONNX Runtime in a worker thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from modelport.api.targets import Target
from modelport.errors import InvalidValueError, UnsupportedOperationError
from modelport.providers.base import ChatChunk, ChatRequest, Usage

__all__ = ["local_stream"]


def _local_pipeline(target: Target) -> Any:
    from modelport.api.running import load_model

    model = load_model(target.model)
    pipeline = model.pipeline
    if not hasattr(pipeline, "render_chat"):
        raise InvalidValueError(
            f"{target.reference} is a {model.task} model: it does not chat.",
            hint="Pick a text-generation model (see `modelport ls`).",
        )
    return pipeline


def _local_options(request: ChatRequest, pipeline: Any) -> dict[str, Any]:
    for name, value in (
        ("tools", request.tools),
        ("response_format", request.response_format),
        ("tool_choice", request.tool_choice),
    ):
        if value:
            raise UnsupportedOperationError(
                f"Local models do not take `{name}` here yet.",
                hint="Serve the model (`modelport serve`) for tools, or use a hosted model.",
            )
    if request.options:
        name = sorted(request.options)[0]
        raise UnsupportedOperationError(f"Local models do not take `{name}`.")
    room = pipeline.context_length
    return {
        "max_new_tokens": request.max_tokens or (512 if room is None else min(room, 512)),
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "seed": request.seed,
        "stop": request.stop,
        "add_special_tokens": False,
    }


def _local_deltas(target: Target, request: ChatRequest) -> Iterator[ChatChunk]:
    pipeline = _local_pipeline(target)
    prompt_text = pipeline.render_chat(request.messages)
    options = _local_options(request, pipeline)
    yield ChatChunk(delta={"role": "assistant", "content": ""}, model=target.name)
    for delta in pipeline.stream(prompt_text, **options):
        usage = None
        if delta.finish_reason is not None:
            usage = Usage(input_tokens=delta.prompt_tokens, output_tokens=delta.completion_tokens)
        yield ChatChunk(
            delta={"content": delta.text} if delta.text else {},
            finish_reason=delta.finish_reason,
            usage=usage,
            model=target.name,
        )


async def local_stream(target: Target, request: ChatRequest) -> AsyncIterator[ChatChunk]:
    """A local model's answer, generated in a worker thread, chunk by chunk."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in _local_deltas(target, request):
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
        except BaseException as e:  # handed to the awaiting side
            loop.call_soon_threadsafe(queue.put_nowait, ("error", e))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    worker = threading.Thread(target=work, name="modelport-local-chat", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
