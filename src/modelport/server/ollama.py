"""/api: Ollama's protocol, so that the ``ollama`` client and tools made for Ollama work.

Shapes follow Ollama's API (docs/api.md): NDJSON streams by default (``stream: false``
answers one object), durations in nanoseconds, ``{"error": "..."}`` with Ollama's
statuses (400 bad request, 404 unknown model). Models load, batch and generate through
the pool, the batcher and the generation bridge, as on every other protocol.

What each option and field does, or why it is refused: ``ollama_protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from modelport import __version__
from modelport.errors import (
    InputTooLongError,
    InvalidValueError,
    ModelNotFoundError,
)
from modelport.server.embeddings import embed, encoder_of
from modelport.server.errors import LOADING, error_responses
from modelport.server.generation import (
    Delta,
    GenerationParams,
    chat_prompt,
    context_room,
    generator_of,
    observe,
    refuse,
    split_tool_calls,
    stream,
)
from modelport.server.ollama_gateway import (
    hosted_chat,
    hosted_embed,
    hosted_generate,
    hosted_target,
)
from modelport.server.ollama_models import (
    local_models,
    request_name,
    running_models,
    show_model,
)
from modelport.server.ollama_protocol import (
    ChatRequest,
    DeleteRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    GenerationBody,
    PullRequest,
    ShowRequest,
    embedding_window,
    error_line,
    generation_options,
    ndjson_line,
    now_iso,
)
from modelport.server.pool import keep_alive_seconds
from modelport.server.state import pool_of, record_model

__all__ = ["router"]

log = logging.getLogger("modelport.serve")

router = APIRouter(prefix="/api", tags=["ollama"])

_ERRORS = error_responses(*LOADING, shape="ollama")
#: Routes that may pull from a hub (a model loads on first use) answer its errors too.
_PULLING = error_responses(*LOADING, shape="ollama")
_LISTING = error_responses(401, shape="ollama")
_NDJSON = "application/x-ndjson"


# -- shared pieces -------------------------------------------------------------------------


def _metrics(request: Request) -> Any:
    return getattr(request.app.state, "metrics", None)


async def _exists_or_404(pool: Any, name: str, shown: str) -> None:
    """Refuse a name that reaches no stored, loaded or served model (Ollama's 404)."""
    from anyio import to_thread

    from modelport.api import stored_revisions

    if pool.find(name) is not None or name in pool.folders:
        return
    if not await to_thread.run_sync(lambda: stored_revisions(name)):
        raise ModelNotFoundError(
            name,
            message=f"model '{shown}' not found: it is not in the local store.",
            hint=f"Pull it first: `ollama pull {shown}` (or `modelport pull {name}`).",
        )


# -- models --------------------------------------------------------------------------------


@router.get("/version", responses=_LISTING)
@router.head("/version", include_in_schema=False)
def version() -> dict[str, str]:
    """The server's version (modelport's own)."""
    return {"version": __version__}


@router.get("/tags", responses=_LISTING)
@router.head("/tags", include_in_schema=False)
async def tags(request: Request) -> dict[str, Any]:
    """Local models: the runnable models of the store, then served ones not stored."""
    from anyio import to_thread

    pool = pool_of(request)
    return {"models": await to_thread.run_sync(lambda: local_models(pool))}


@router.get("/ps", responses=_LISTING)
async def ps(request: Request) -> dict[str, Any]:
    """Models loaded now, most recently used first, with when their keep-alive ends."""
    from anyio import to_thread

    pool = pool_of(request)
    return {"models": await to_thread.run_sync(lambda: running_models(pool))}


@router.post("/show", responses=_ERRORS)
async def show(body: ShowRequest, request: Request) -> dict[str, Any]:
    """What modelport knows of a local model: details, model info, template, capabilities."""
    from anyio import to_thread

    name, shown = body.ref()
    record_model(request, name)
    refuse("system", body.system, "modelport has no Modelfile system prompts to override.")
    refuse("template", body.template, "modelport has no Modelfile templates to override.")
    refuse("options", body.options, "modelport has no Modelfile parameters to override.")
    pool = pool_of(request)
    # verbose asks for nothing more: every field modelport knows is always shown.
    return await to_thread.run_sync(lambda: show_model(pool, name, shown))


@router.delete("/delete", responses=_ERRORS)
async def delete(body: DeleteRequest, request: Request) -> Response:
    """Remove a model (every stored revision) from the store, and unload it."""
    from anyio import to_thread

    from modelport.api import remove

    name, _ = body.ref()
    record_model(request, name)
    await to_thread.run_sync(lambda: remove(name))
    pool_of(request).unload(name)
    return Response(status_code=200)


def _progress(event: Any) -> dict[str, Any]:
    """A pull event as Ollama's progress object."""
    status = event.status
    if status == "downloading" and event.file:
        status = f"pulling {event.file}"
    out: dict[str, Any] = {"status": status}
    if event.digest:
        out["digest"] = event.digest
    if event.total is not None:
        out["total"] = event.total
    if event.completed is not None:
        out["completed"] = event.completed
    return out


#: Statuses a pull sends before it has found the model: an error until then has a status.
_EARLY = ("pulling manifest", "warning: ")


@router.post("/pull", responses=_PULLING)
async def pull(body: PullRequest, request: Request) -> Any:
    """Pull a model into the store, streaming Ollama's progress objects as NDJSON."""
    from modelport.api import pull as pull_model

    name, _ = body.ref()
    record_model(request, name)
    refuse("insecure", body.insecure, "hub connections are always verified.")
    refuse("username", body.username, "hub credentials come from the server's settings.")
    refuse("password", body.password, "hub credentials come from the server's settings.")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()

    def put(item: dict[str, Any] | BaseException | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            pull_model(name, progress=lambda event: put(_progress(event)))
        except BaseException as e:
            put(e)
        else:
            put(None)

    # A pull the client leaves finishes anyway (the next one finds it in the store).
    threading.Thread(target=work, name=f"pull-{name}", daemon=True).start()

    async def events() -> AsyncIterator[dict[str, Any] | None]:
        """Progress objects (of a run of one status, the newest only), then None at the end."""
        backlog: list[dict[str, Any] | BaseException | None] = []
        while True:
            item = backlog.pop() if backlog else await queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                yield None
                return
            while not queue.empty():
                following = queue.get_nowait()
                if isinstance(following, dict) and following["status"] == item["status"]:
                    item = following
                else:
                    backlog.append(following)
                    break
            yield item

    source = events()
    if not body.stream:
        async for _ in source:
            pass
        return {"status": "success"}
    # Until the model is found, an error is an HTTP status (404 for an unknown model).
    held: list[dict[str, Any] | None] = []
    async for item in source:
        held.append(item)
        if item is None or not str(item["status"]).startswith(_EARLY):
            break

    async def lines() -> AsyncIterator[str]:
        last = ""
        try:
            for item in held:
                if item is not None:
                    last = item["status"]
                    yield ndjson_line(item)
            if held and held[-1] is not None:
                async for item in source:
                    if item is not None:
                        last = item["status"]
                        yield ndjson_line(item)
            if last != "success":
                yield ndjson_line({"status": "success"})
        except Exception as e:
            yield error_line(e)

    return StreamingResponse(lines(), media_type=_NDJSON)


# -- embeddings ----------------------------------------------------------------------------


@router.post("/embed", responses=_PULLING)
async def embed_texts(body: EmbedRequest, request: Request) -> dict[str, Any]:
    """Embed a text or a list of texts; vectors are L2-normalized, as Ollama's are."""
    import numpy as np

    started = time.perf_counter_ns()
    name = request_name(body.model)
    record_model(request, name)
    inputs = [body.input] if isinstance(body.input, str) and body.input else body.input or []
    if inputs and (hosted := await hosted_target(name)) is not None:
        return await hosted_embed(body, hosted, list(inputs))
    window = embedding_window(body.options)
    pool = pool_of(request)
    async with pool.use(name, keep_alive=keep_alive_seconds(body.keep_alive)) as served:
        loaded = time.perf_counter_ns()
        encoder_of(served, body.model)
        if not inputs:  # Ollama's way to load an embedding model
            return {"model": body.model, "embeddings": []}
        done = await embed(
            pool,
            served,
            list(inputs),
            model=body.model,
            truncate=body.truncate is not False,
            window=window,
            dimensions=body.dimensions,
        )
    vectors = done.vectors
    vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    if (metrics := _metrics(request)) is not None:
        metrics.count_tokens(served.name, prompt=done.total_tokens)
    return {
        "model": body.model,
        "embeddings": vectors.tolist(),
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": loaded - started,
        "prompt_eval_count": done.total_tokens,
    }


@router.post("/embeddings", responses=_PULLING)
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict[str, Any]:
    """The legacy embeddings endpoint: one prompt, one vector, as the model makes it."""
    name = request_name(body.model)
    record_model(request, name)
    window = embedding_window(body.options)
    pool = pool_of(request)
    async with pool.use(name, keep_alive=keep_alive_seconds(body.keep_alive)) as served:
        encoder_of(served, body.model)
        if not body.prompt:
            return {"embedding": []}
        done = await embed(
            pool, served, [body.prompt], model=body.model, truncate=True, window=window
        )
    if (metrics := _metrics(request)) is not None:
        metrics.count_tokens(served.name, prompt=done.total_tokens)
    return {"embedding": done.vectors[0].tolist()}


# -- generation ----------------------------------------------------------------------------


async def _load_or_unload(
    request: Request, name: str, shown: str, keep_alive: float | None, body: Any
) -> str:
    """Ollama's empty request: load the model, or with ``keep_alive: 0`` unload it."""
    pool = pool_of(request)
    if body.keep_alive is not None and keep_alive == 0:
        if not pool.unload(name):
            await _exists_or_404(pool, name, shown)
        return "unload"
    async with pool.use(name, keep_alive=keep_alive) as served:
        generator_of(served)
    return "load"


@router.post("/generate", responses=_PULLING)
async def generate(body: GenerateRequest, request: Request) -> Any:
    """Continue a prompt (rendered with the model's chat template unless ``raw``)."""
    started = time.perf_counter_ns()
    name = request_name(body.model)
    record_model(request, name)
    if body.prompt and (hosted := await hosted_target(name)) is not None:
        return await hosted_generate(body, hosted)
    body.refuse_unsupported()
    refuse("suffix", body.suffix, "local models do not fill in the middle.")
    refuse("images", body.images, "local models here read no images.")
    refuse("context", body.context, "it is deprecated; send the conversation to /api/chat.")
    refuse(
        "template",
        body.template,
        "prompts are rendered with the model's own chat template; Go templates are not read.",
    )
    for field in ("width", "height", "steps"):
        refuse(field, getattr(body, field), "image generation is not supported.")
    if body.raw and body.system:
        raise InvalidValueError(
            "raw mode does not support template, system, or context.", param="raw"
        )
    params, window = generation_options(body.options)
    keep_alive = keep_alive_seconds(body.keep_alive)
    if not body.prompt:
        reason = await _load_or_unload(request, name, body.model, keep_alive, body)
        return {
            "model": body.model,
            "created_at": now_iso(),
            "response": "",
            "done": True,
            "done_reason": reason,
        }
    prompt = body.prompt
    messages = [{"role": "system", "content": body.system}] if body.system else []
    messages.append({"role": "user", "content": prompt})

    def render(served: Any) -> str:
        return prompt if body.raw else chat_prompt(served, messages)

    return await _generate(
        request,
        name,
        body,
        render,
        params,
        window,
        keep_alive=keep_alive,
        started=started,
        raw=bool(body.raw),
        chat=False,
    )


@router.post("/chat", responses=_PULLING)
async def chat(body: ChatRequest, request: Request) -> Any:
    """Chat with a model, its messages rendered with the model's own chat template."""
    started = time.perf_counter_ns()
    name = request_name(body.model)
    record_model(request, name)
    if body.messages and (hosted := await hosted_target(name)) is not None:
        return await hosted_chat(body, hosted)
    body.refuse_unsupported()
    params, window = generation_options(body.options)
    keep_alive = keep_alive_seconds(body.keep_alive)
    messages = [m.for_template(i) for i, m in enumerate(body.messages)]
    if not messages:
        reason = await _load_or_unload(request, name, body.model, keep_alive, body)
        return {
            "model": body.model,
            "created_at": now_iso(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": reason,
        }
    tools = body.tools or None
    return await _generate(
        request,
        name,
        body,
        lambda served: chat_prompt(served, messages, tools=tools),
        params,
        window,
        keep_alive=keep_alive,
        started=started,
        raw=False,
        chat=True,
        tools=bool(tools),
    )


def _fit(
    served: Any, model: str, prompt: str, params: GenerationParams, window: int | None, raw: bool
) -> Any:
    """The params with max tokens capped to the room the context leaves after the prompt."""
    from dataclasses import replace

    tokens, room = context_room(served, prompt, window=window, add_special_tokens=raw)
    if room is None:
        return params
    if room <= 0:
        what = "prompt" if raw else "prompt (with its template)"
        raise InputTooLongError(model, tokens, tokens + room, param="prompt", what=what)
    wanted = params.max_tokens
    return replace(params, max_tokens=room if wanted is None else min(wanted, room))


async def _generate(
    request: Request,
    name: str,
    body: GenerationBody,
    render: Callable[[Any], str],
    params: GenerationParams,
    window: int | None,
    *,
    keep_alive: float | None,
    started: int,
    raw: bool,
    chat: bool,
    tools: bool = False,
) -> Any:
    pool = pool_of(request)
    stack = contextlib.AsyncExitStack()
    served = await stack.enter_async_context(pool.use(name, keep_alive=keep_alive))
    loaded = time.perf_counter_ns()
    try:
        generator_of(served)
        prompt = render(served)
        params = _fit(served, body.model, prompt, params, window, raw)
        began = time.perf_counter_ns()
        # A template renders its own special tokens; a raw prompt gets the tokenizer's.
        deltas = stream(pool, served, prompt, params, add_special_tokens=raw)
        first: Delta | None = await anext(deltas, None)
    except BaseException:
        await stack.aclose()
        raise
    metrics = _metrics(request)

    def piece(text: str, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"model": body.model, "created_at": now_iso()}
        if chat:
            base["message"] = {"role": "assistant", "content": text, **extra}
        else:
            base["response"] = text
        return {**base, "done": False}

    def final(last: Delta, text: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
        end = time.perf_counter_ns()
        prompt_ns = int((last.first_token_s or 0) * 1e9)
        out = piece(text, **({"tool_calls": calls} if calls else {}))
        out.update(
            done=True,
            done_reason=last.finish_reason or "stop",
            total_duration=end - started,
            load_duration=loaded - started,
            prompt_eval_count=last.prompt_tokens,
            prompt_eval_duration=prompt_ns,
            eval_count=last.completion_tokens,
            eval_duration=max(0, end - began - prompt_ns),
        )
        return out

    def tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
        if not tools:
            return text, []
        rest, found = split_tool_calls(text)
        calls = []
        for i, call in enumerate(found):
            arguments = call.arguments
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):
                    arguments = json.loads(arguments)
            if not isinstance(arguments, dict):
                return text, []  # Ollama's arguments are an object: leave the text as it is
            calls.append({"function": {"index": i, "name": call.name, "arguments": arguments}})
        return (rest.strip() if calls else text), calls

    async def collected() -> AsyncIterator[Delta]:
        if first is not None:
            yield first
        async for delta in deltas:
            yield delta

    if not body.stream:
        text, last = "", Delta("")
        try:
            async for delta in collected():
                text += delta.text
                last = delta
        finally:
            await deltas.aclose()
            await stack.aclose()
        observe(metrics, served.name, last)
        text, calls = tool_calls(text)
        return final(last, text, calls)

    async def lines() -> AsyncIterator[str]:
        last, held = Delta(""), ""
        try:
            async for delta in collected():
                last = delta
                if tools:  # tool calls are parsed from the whole answer
                    held += delta.text
                elif delta.text:
                    yield ndjson_line(piece(delta.text))
            if tools:
                text, calls = tool_calls(held)
                if text or calls:
                    extra = {"tool_calls": calls} if calls else {}
                    yield ndjson_line(piece(text, **extra))
            yield ndjson_line(final(last, "", []))
        except Exception as e:
            yield error_line(e)
        finally:
            observe(metrics, served.name, last)
            await deltas.aclose()
            await stack.aclose()

    return StreamingResponse(lines(), media_type=_NDJSON)
