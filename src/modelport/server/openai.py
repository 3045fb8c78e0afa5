"""/v1: the OpenAI-compatible surface — models, embeddings, chat and text completions.

A client changes its base URL and nothing else: shapes, streaming (SSE ending in
``data: [DONE]``) and errors are OpenAI's. A parameter a local model cannot honour is a
400 naming it, never ignored.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from modelport.api.prompting import ChatResult, ChatStream, Target, record_local_call
from modelport.catalog.entry import ModelEntry
from modelport.errors import (
    InputTooLongError,
    InvalidValueError,
    UnsupportedParameterError,
)
from modelport.providers.base import Usage
from modelport.server.embeddings import embed
from modelport.server.errors import GATEWAY, LOADING, error_responses
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
from modelport.server.pool import keep_alive_seconds
from modelport.server.state import pool_of, record_model
from modelport.settings import get_settings

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_ERRORS = error_responses(*LOADING)
_GATEWAY_ERRORS = error_responses(*GATEWAY)


# -- models --------------------------------------------------------------------------------


def openai_model(entry: ModelEntry) -> dict[str, Any]:
    """A catalog entry in OpenAI's model object format."""
    created = 0
    if entry.release_date is not None:
        created = int(dt.datetime.combine(entry.release_date, dt.time(), dt.UTC).timestamp())
    return {"id": entry.id, "object": "model", "created": created, "owned_by": entry.provider}


async def _local_models(request: Request) -> list[dict[str, Any]]:
    """Runnable models of the store and the models being served, as OpenAI lists them."""
    from anyio import to_thread

    from modelport.api import list_models
    from modelport.runtime.pipelines import SUPPORTED_TASKS

    pool = pool_of(request)  # read on the event loop, where it changes
    rows: dict[str, dict[str, Any]] = {}
    for stored in await to_thread.run_sync(list_models):
        if stored.task is not None and stored.task not in SUPPORTED_TASKS:
            continue
        name = stored.name if stored.registry == "hf" else f"{stored.registry}:{stored.name}"
        rows.setdefault(
            name,
            {
                "id": name,
                "object": "model",
                "created": int(stored.pulled_at.timestamp()),
                "owned_by": stored.name.split("/")[0] if "/" in stored.name else stored.registry,
            },
        )
    for served in pool.models.values():
        rows.setdefault(
            served.name,
            {
                "id": served.name,
                "object": "model",
                "created": int(served.loaded_at),
                "owned_by": "local",
            },
        )
    for name in pool.folders:
        rows.setdefault(
            name, {"id": name, "object": "model", "created": int(time.time()), "owned_by": "local"}
        )
    return list(rows.values())


@router.get("/models", responses=error_responses(401))
async def list_openai_models(request: Request) -> dict[str, Any]:
    """Local models first, then every catalog model, as OpenAI's ``GET /v1/models``."""
    from anyio import to_thread

    from modelport.api import list_catalog

    local = await _local_models(request)
    seen = {m["id"] for m in local}
    entries = await to_thread.run_sync(lambda: list_catalog(sort="id").models)
    catalog = [openai_model(e) for e in entries if e.id not in seen]
    return {"object": "list", "data": local + catalog}


@router.get("/models/{model_id:path}", responses=error_responses(401, 404))
async def get_openai_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model by exact id, as OpenAI's ``GET /v1/models/{id}`` returns it."""
    from anyio import to_thread

    from modelport.api import get_catalog

    for row in await _local_models(request):
        if row["id"] == model_id:
            return row
    return openai_model(await to_thread.run_sync(lambda: get_catalog()[model_id]))


# -- embeddings ----------------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int | None, Field(ge=1)] = None
    user: str | None = None


def _inputs(body: EmbeddingRequest) -> list[str] | list[list[int]]:
    value = body.input
    if isinstance(value, str):
        return [value]
    if not value:
        raise InvalidValueError("input must not be empty.", param="input")
    if all(isinstance(v, int) for v in value):
        return [[int(v) for v in value]]  # type: ignore[arg-type]
    if all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    if all(isinstance(v, list) for v in value):
        return [[int(t) for t in v] for v in value]  # type: ignore[union-attr]
    raise InvalidValueError(
        "input is a text, a list of texts, or token arrays; not a mix.", param="input"
    )


@router.post("/embeddings", responses=_GATEWAY_ERRORS)
async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
    """Embed texts with a local encoder (batched with concurrent requests) or a hosted model."""
    record_model(request, body.model)
    inputs = _inputs(body)
    target = await _target(body.model)
    if target.kind == "hosted":
        return await _hosted_embeddings(body, inputs, target)
    pool = pool_of(request)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    async with pool.use(body.model) as served:
        done = await embed(pool, served, inputs, model=body.model, dimensions=body.dimensions)
    record_local_call(
        served.name,
        operation="embeddings",
        started=started,
        started_at=started_at,
        input_tokens=done.total_tokens,
    )
    data = []
    for i, row in enumerate(done.vectors):
        value: Any = (
            base64.b64encode(row.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else row.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    total = done.total_tokens
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.count_tokens(served.name, prompt=total)
    # A JSONResponse of plain lists: FastAPI's encoder would walk every float again.
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
    )


async def _hosted_embeddings(
    body: EmbeddingRequest, inputs: list[str] | list[list[int]], target: Target
) -> JSONResponse:
    from modelport.api.prompting import embed_texts

    if not all(isinstance(i, str) for i in inputs):
        raise UnsupportedParameterError("input", "hosted models here take texts, not token ids.")
    done = await embed_texts(
        target.reference, [str(i) for i in inputs], dimensions=body.dimensions, origin="gateway"
    )
    data = []
    for i, row in enumerate(done.vectors):
        value: Any = row
        if body.encoding_format == "base64":
            import numpy as np

            value = base64.b64encode(np.asarray(row, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = done.usage.input_tokens or 0
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": done.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        headers=_served_headers(target, "api", []),
    )


async def _target(model: str) -> Target:
    """What answers a model name (remembered for a few seconds by the use-case)."""
    from modelport.api.prompting import target_of

    return await target_of(model)


def streamed_answer(events: AsyncIterator[str], started: ChatStream) -> StreamingResponse:
    """A streamed gateway answer as server-sent events, saying which model serves it."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **_served_headers(started.target, started.access, started.failed),
        },
    )


def _served_headers(target: Target, access: str, failed: list[tuple[str, str]]) -> dict[str, str]:
    """Which model answered, through which path, after which failed ones."""
    headers = {
        "x-modelport-model": target.name,
        "x-modelport-provider": target.provider or "local",
        "x-modelport-access": access,
    }
    if failed:
        headers["x-modelport-fallback-from"] = ", ".join(name for name, _ in failed)
    return headers


# -- chat and text completions -------------------------------------------------------------


class _StreamOptions(BaseModel):
    include_usage: bool = False


class _GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: Annotated[int | None, Field(ge=1)] = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: Any = None
    user: str | None = None
    #: Accepted as Ollama and vLLM do: keep the model loaded this long after the request.
    keep_alive: str | float | None = None

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > 4:
            raise InvalidValueError("stop holds at most 4 sequences.", param="stop")
        return [s for s in stops if s]

    def refuse_unsupported(self) -> None:
        if self.n is not None and self.n > 1:
            raise UnsupportedParameterError("n", "local models answer one choice per request.")
        refuse("presence_penalty", self.presence_penalty, "local generation has no penalties.")
        refuse("frequency_penalty", self.frequency_penalty, "local generation has no penalties.")
        refuse("logit_bias", self.logit_bias, "local generation does not bias tokens.")
        refuse("logprobs", self.logprobs, "log probabilities are not returned yet.")


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_GenerationRequest):
    """OpenAI's chat completions request."""

    messages: list[_Message]
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    #: modelport's extension (LiteLLM's name): models tried in order when ``model`` fails.
    fallbacks: list[str] | None = None
    #: modelport's extension: how a provider with a vendor CLI is reached (auto, api, cli).
    access: Literal["auto", "api", "cli"] | None = None


class CompletionRequest(_GenerationRequest):
    """OpenAI's (legacy) text completions request."""

    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


def _text_of(content: str | list[dict[str, Any]] | None) -> str | None:
    """Message content as text; image or audio parts are refused (no local vision yet)."""
    if content is None or isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.get("type") != "text":
            raise UnsupportedParameterError(
                "messages", f"content parts of type {part.get('type')!r} are not supported here."
            )
        parts.append(str(part.get("text", "")))
    return "".join(parts)


def _params(body: _GenerationRequest, max_tokens: int | None) -> GenerationParams:
    temperature = 1.0 if body.temperature is None else body.temperature
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=body.stops(),
    )


def _usage(last: Delta) -> dict[str, int]:
    return {
        "prompt_tokens": last.prompt_tokens,
        "completion_tokens": last.completion_tokens,
        "total_tokens": last.prompt_tokens + last.completion_tokens,
    }


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _sse(data: dict[str, Any]) -> str:
    return f"data: {_COMPACT.encode(data)}\n\n"


@router.post("/chat/completions", responses=_GATEWAY_ERRORS)
async def chat_completions(body: ChatRequest, request: Request) -> Any:
    """Chat with a hosted model (``openai:gpt-4o``, ``anthropic:…``, a catalog name) or a
    local one, with fallbacks; the ``x-modelport-model`` header names the one that answered."""
    record_model(request, body.model)
    body.seed = seed_of(request, body.seed)
    ask_simulator(request)
    target = await _target(body.model)
    fallbacks = body.fallbacks if body.fallbacks is not None else get_settings().fallbacks
    if target.kind == "hosted" or fallbacks:
        return await _gateway_chat(body, request, fallbacks)
    return await _local_chat(body, request)


def ask_simulator(request: Request) -> None:
    """Pass the ``x-modelport-sim-fault`` header on to the simulator (only it reads it)."""
    fault = request.headers.get("x-modelport-sim-fault")
    if fault is not None:
        from modelport.providers.base import requested_fault

        requested_fault.set(fault.strip())


def seed_of(request: Request, seed: int | None) -> int | None:
    """The request's seed: its body's, else the ``x-modelport-seed`` header's (so that a
    client whose SDK has no ``seed`` can still make a simulated answer reproducible)."""
    header = request.headers.get("x-modelport-seed")
    if seed is not None or header is None:
        return seed
    try:
        return int(header)
    except ValueError:
        raise InvalidValueError(
            f"The x-modelport-seed header must be an integer, not {header!r}.",
            param="x-modelport-seed",
        ) from None


def _refuse_for_local(body: ChatRequest) -> None:
    """What a local model cannot honour is a 400 naming it (whether asked directly or as a
    fallback)."""
    body.refuse_unsupported()
    refuse("top_logprobs", body.top_logprobs, "log probabilities are not returned yet.")
    refuse("reasoning_effort", body.reasoning_effort, "local models have no reasoning effort.")
    if body.response_format and body.response_format.get("type") not in (None, "text"):
        raise UnsupportedParameterError(
            "response_format", "local generation cannot guarantee JSON output yet."
        )
    if body.tool_choice not in (None, "auto", "none") and not body.tools:
        raise InvalidValueError("tool_choice needs tools.", param="tool_choice")
    if body.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameterError(
            "tool_choice", "local models cannot be forced to call a tool."
        )


async def _local_chat(body: ChatRequest, request: Request) -> Any:
    """Chat with a local text-generation model, rendered with its own chat template."""
    _refuse_for_local(body)
    messages = [
        {**m.model_dump(exclude_none=True), "content": _text_of(m.content) or ""}
        for m in body.messages
    ]
    tools = body.tools if body.tool_choice != "none" else None
    max_tokens = body.max_completion_tokens or body.max_tokens
    return await _generate(
        request,
        body,
        lambda served: chat_prompt(served, messages, tools=tools),
        max_tokens,
        kind="chat",
    )


@router.post("/completions", responses=_ERRORS)
async def completions(body: CompletionRequest, request: Request) -> Any:
    """Continue a prompt with a local text-generation model; a hosted (or simulated) one
    answers it as one user turn of a chat."""
    record_model(request, body.model)
    body.seed = seed_of(request, body.seed)
    ask_simulator(request)
    if (await _target(body.model)).kind == "hosted":
        return await _hosted_completion(body)
    body.refuse_unsupported()
    refuse("suffix", body.suffix, "local models do not fill in the middle.")
    if body.best_of is not None and body.best_of > 1:
        raise UnsupportedParameterError("best_of", "local models answer one choice per request.")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise UnsupportedParameterError("prompt", "send one prompt per request.")
    prompt = prompts[0]
    return await _generate(
        request,
        body,
        lambda served: prompt,
        body.max_tokens if body.max_tokens is not None else 16,  # OpenAI's default
        kind="text",
        echo=prompt if body.echo else None,
    )


async def _hosted_completion(body: CompletionRequest) -> Any:
    """A text completion from a hosted model, through the chat gateway."""
    from modelport.api.prompting import chat_completion, stream_completion

    refuse("suffix", body.suffix, "hosted models here do not fill in the middle.")
    refuse("echo", body.echo or None, "a hosted model's answer does not repeat the prompt.")
    refuse("logit_bias", body.logit_bias, "not passed to hosted models.")
    refuse("logprobs", body.logprobs, "log probabilities are not returned yet.")
    if (body.best_of or 1) > 1 or (body.n or 1) > 1:
        raise UnsupportedParameterError("n", "one choice per request.")
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise UnsupportedParameterError("prompt", "send one prompt per request.")
    messages = [{"role": "user", "content": prompts[0]}]
    penalties = {
        name: value
        for name in ("presence_penalty", "frequency_penalty", "user")
        if (value := getattr(body, name)) is not None
    }
    params: dict[str, Any] = {
        "max_tokens": body.max_tokens if body.max_tokens is not None else 16,  # OpenAI's default
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": body.stops() or None,
        "seed": body.seed,
        "options": penalties,
    }
    ident, created = "cmpl-" + uuid.uuid4().hex, int(time.time())
    if not body.stream:
        result: ChatResult = await chat_completion(body.model, messages, origin="gateway", **params)
        return JSONResponse(
            {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": result.response.model,
                "choices": [_text_choice(result.text, result.response.finish_reason)],
                "usage": result.response.usage.to_openai(),
            },
            headers=_served_headers(result.target, result.response.access, result.failed),
        )
    started: ChatStream = await stream_completion(body.model, messages, origin="gateway", **params)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def events() -> AsyncIterator[str]:
        usage = None
        try:
            async for chunk in started:
                usage = chunk.usage or usage
                text = chunk.delta.get("content") or ""
                if not text and chunk.finish_reason is None:
                    continue
                choice = _text_choice(text, chunk.finish_reason)
                yield _sse(
                    {
                        "id": ident,
                        "object": "text_completion",
                        "created": created,
                        "model": started.target.model,
                        "choices": [choice],
                    }
                )
            if include_usage:
                yield _sse(
                    {
                        "id": ident,
                        "object": "text_completion",
                        "created": created,
                        "model": started.target.model,
                        "choices": [],
                        "usage": (usage or Usage()).to_openai(),
                    }
                )
            yield "data: [DONE]\n\n"
        finally:
            await started.aclose()

    return streamed_answer(events(), started)


async def _generate(
    request: Request,
    body: _GenerationRequest,
    render: Any,
    max_tokens: int | None,
    *,
    kind: Literal["chat", "text"],
    echo: str | None = None,
) -> Any:
    pool = pool_of(request)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    stack = contextlib.AsyncExitStack()
    served = await stack.enter_async_context(
        pool.use(body.model, keep_alive=keep_alive_seconds(body.keep_alive))
    )
    try:
        generator_of(served)
        prompt = render(served)
        max_tokens = _check_context(served, body.model, prompt, max_tokens, kind)
        params = _params(body, max_tokens)
        deltas = stream(pool, served, prompt, params, add_special_tokens=kind == "text")
    except BaseException:
        await stack.aclose()
        raise
    created = int(time.time())
    ident = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex
    metrics = getattr(request.app.state, "metrics", None)

    def chunk(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            **payload,
        }

    if not body.stream:
        try:
            text, last = "", Delta("")
            async for delta in deltas:
                text += delta.text
                last = delta
        finally:
            await stack.aclose()
            _record_generation(served.name, kind, started, started_at, last, None)
        observe(metrics, served.name, last)
        finish = last.finish_reason or "stop"
        if kind == "chat":
            message, finish = _assistant_message(text, finish)
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
            obj = "chat.completion"
        else:
            choice = {
                "index": 0,
                "text": (echo or "") + text,
                "logprobs": None,
                "finish_reason": finish,
            }
            obj = "text_completion"
        return {
            "id": ident,
            "object": obj,
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            "choices": [choice],
            "usage": _usage(last),
        }

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def events() -> AsyncIterator[str]:
        last = Delta("")
        first_at: float | None = None
        try:
            if kind == "chat":
                first = {"index": 0, "delta": {"role": "assistant", "content": ""}}
                yield _sse(chunk({"choices": [{**first, "logprobs": None, "finish_reason": None}]}))
            elif echo:
                yield _sse(chunk({"choices": [_text_choice(echo, None)]}))
            async for delta in deltas:
                last = delta
                if delta.text:
                    if first_at is None:
                        first_at = time.perf_counter()
                    yield _sse(chunk({"choices": [_choice(kind, delta.text, None)]}))
            yield _sse(chunk({"choices": [_choice(kind, "", last.finish_reason or "stop")]}))
            if include_usage:
                yield _sse(chunk({"choices": [], "usage": _usage(last)}))
            yield "data: [DONE]\n\n"
        finally:
            observe(metrics, served.name, last)
            await stack.aclose()
            _record_generation(served.name, kind, started, started_at, last, first_at)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _record_generation(
    name: str,
    kind: str,
    started: float,
    started_at: dt.datetime,
    last: Delta,
    first_at: float | None,
) -> None:
    """The call log's row for a local generation (cut short: status ``cancelled``)."""
    record_local_call(
        name,
        operation="chat" if kind == "chat" else "completion",
        started=started,
        started_at=started_at,
        input_tokens=last.prompt_tokens or None,
        output_tokens=last.completion_tokens,
        ttft_ms=None if first_at is None else (first_at - started) * 1000,
        status="ok" if last.finish_reason not in (None, "cancelled") else "cancelled",
    )


def _choice(kind: str, text: str, finish: str | None) -> dict[str, Any]:
    if kind == "chat":
        delta = {"content": text} if text else {}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return _text_choice(text, finish)


def _text_choice(text: str, finish: str | None) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


def _check_context(
    served: Any, model: str, prompt: str, max_tokens: int | None, kind: str
) -> int | None:
    """Refuse a prompt that, with the tokens asked for, passes the model's context; without
    max_tokens, the answer may take the rest of the context (as OpenAI's does)."""
    tokens, room = context_room(served, prompt, add_special_tokens=kind == "text")
    if room is None:
        return max_tokens
    wanted = tokens + (max_tokens or 1)
    if wanted > tokens + room:
        raise InputTooLongError(
            model,
            wanted,
            tokens + room,
            param="messages" if kind == "chat" else "prompt",
            what=f"prompt ({tokens} tokens) with max_tokens ({max_tokens or 1})",
        )
    return max_tokens or room


def _assistant_message(text: str, finish: str) -> tuple[dict[str, Any], str]:
    """The assistant's message; Hermes-style ``<tool_call>`` blocks become tool calls."""
    rest, found = split_tool_calls(text)
    if not found:
        return {"role": "assistant", "content": text, "refusal": None}, finish
    calls = [
        {
            "id": "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments),
            },
        }
        for call in found
    ]
    content = rest.strip() or None
    message = {"role": "assistant", "content": content, "refusal": None, "tool_calls": calls}
    return message, "tool_calls"


# -- the gateway: hosted models, fallbacks, and local models among them ---------------------

#: Request fields the gateway hands to providers as they are (the rest are modelport's).
_PASSED = (
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "user",
    "reasoning_effort",
    "metadata",
    "store",
    "parallel_tool_calls",
)


def _gateway_params(body: ChatRequest) -> dict[str, Any]:
    """The request's generation parameters, OpenAI-shaped, for ``chat_completion``."""
    options = {name: getattr(body, name) for name in _PASSED if getattr(body, name) is not None}
    return {
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "stop": body.stops() or None,
        "seed": body.seed,
        "tools": body.tools,
        "tool_choice": body.tool_choice,
        "response_format": body.response_format,
        "options": options,
    }


def _local_runner(request: Request, body: ChatRequest) -> Any:
    """Local models of a fallback chain run through the pool, like any local request."""

    async def run(target: Target, chat: Any) -> AsyncIterator[Any]:
        from modelport.providers.base import ChatChunk, Usage

        _refuse_for_local(body)
        messages = [{**m, "content": _text_of(m.get("content")) or ""} for m in chat.messages]
        pool = pool_of(request)
        async with pool.use(target.model, keep_alive=keep_alive_seconds(body.keep_alive)) as served:
            prompt = chat_prompt(served, messages, tools=chat.tools)
            max_tokens = _check_context(served, target.model, prompt, chat.max_tokens, "chat")
            params = GenerationParams(
                max_tokens=max_tokens,
                temperature=1.0 if chat.temperature is None else chat.temperature,
                top_p=1.0 if chat.top_p is None else chat.top_p,
                top_k=int(chat.options.get("top_k") or 0),  # Anthropic's /v1/messages sends it
                seed=chat.seed,
                stop=chat.stop,
            )
            deltas = stream(pool, served, prompt, params, add_special_tokens=False)
            yield ChatChunk(delta={"role": "assistant", "content": ""}, model=target.name)
            async for delta in deltas:
                usage = None
                if delta.finish_reason is not None:
                    usage = Usage(delta.prompt_tokens, delta.completion_tokens)
                yield ChatChunk(
                    delta={"content": delta.text} if delta.text else {},
                    finish_reason=delta.finish_reason,
                    usage=usage,
                    model=target.name,
                )

    return run


async def _gateway_chat(body: ChatRequest, request: Request, fallbacks: Any) -> Any:
    from modelport.api.prompting import chat_completion, stream_completion

    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    params = _gateway_params(body)
    common: dict[str, Any] = {
        "access": body.access,
        "origin": "gateway",
        "fallbacks": fallbacks,
        "local": _local_runner(request, body),
    }
    if not body.stream:
        result: ChatResult = await chat_completion(body.model, messages, **common, **params)
        return JSONResponse(
            _completion_body(result),
            headers=_served_headers(result.target, result.response.access, result.failed),
        )
    started: ChatStream = await stream_completion(body.model, messages, **common, **params)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return streamed_answer(_gateway_events(started, include_usage), started)


def _completion_body(result: ChatResult) -> dict[str, Any]:
    response = result.response
    message = {"role": "assistant", "content": None, "refusal": None, **response.message}
    return {
        "id": response.id or "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": response.created or int(time.time()),
        "model": response.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": response.finish_reason,
            }
        ],
        "usage": response.usage.to_openai(),
        "modelport": {
            "model": result.target.name,
            "provider": result.target.provider or "local",
            "access": response.access,
            "cost_usd": result.cost_usd,
            "fallback_from": [name for name, _ in result.failed],
        },
    }


async def _gateway_events(started: ChatStream, include_usage: bool) -> AsyncIterator[str]:
    ident = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    model = started.target.model
    usage = None
    try:
        async for chunk in started:
            model = chunk.model or model
            if chunk.usage is not None:
                usage = chunk.usage
            if not chunk.delta and chunk.finish_reason is None:
                continue  # a usage-only chunk: sent below, when asked for
            choice = {
                "index": 0,
                "delta": chunk.delta,
                "logprobs": None,
                "finish_reason": chunk.finish_reason,
            }
            yield _sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [choice],
                }
            )
        if include_usage:
            yield _sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": (usage or Usage()).to_openai(),
                }
            )
        yield "data: [DONE]\n\n"
    finally:
        await started.aclose()
