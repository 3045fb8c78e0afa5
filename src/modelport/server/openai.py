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

from modelport.catalog.entry import ModelEntry
from modelport.errors import (
    InputTooLongError,
    InvalidValueError,
    UnsupportedParameterError,
)
from modelport.server.embeddings import embed
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
from modelport.server.pool import keep_alive_seconds
from modelport.server.state import pool_of, record_model

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_ERRORS = error_responses(*LOADING)


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


@router.post("/embeddings", responses=_ERRORS)
async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
    """Embed texts (or token arrays) with a local encoder, batched with concurrent requests."""
    record_model(request, body.model)
    inputs = _inputs(body)
    pool = pool_of(request)
    async with pool.use(body.model) as served:
        done = await embed(pool, served, inputs, model=body.model, dimensions=body.dimensions)
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


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.post("/chat/completions", responses=_ERRORS)
async def chat_completions(body: ChatRequest, request: Request) -> Any:
    """Chat with a local text-generation model, rendered with its own chat template."""
    record_model(request, body.model)
    body.refuse_unsupported()
    refuse("top_logprobs", body.top_logprobs, "log probabilities are not returned yet.")
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
    """Continue a prompt with a local text-generation model."""
    record_model(request, body.model)
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
        try:
            if kind == "chat":
                first = {"index": 0, "delta": {"role": "assistant", "content": ""}}
                yield _sse(chunk({"choices": [{**first, "logprobs": None, "finish_reason": None}]}))
            elif echo:
                yield _sse(chunk({"choices": [_text_choice(echo, None)]}))
            async for delta in deltas:
                last = delta
                if delta.text:
                    yield _sse(chunk({"choices": [_choice(kind, delta.text, None)]}))
            yield _sse(chunk({"choices": [_choice(kind, "", last.finish_reason or "stop")]}))
            if include_usage:
                yield _sse(chunk({"choices": [], "usage": _usage(last)}))
            yield "data: [DONE]\n\n"
        finally:
            observe(metrics, served.name, last)
            await stack.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
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
