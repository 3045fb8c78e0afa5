"""/v1/messages: Anthropic's Messages API in front of every model the gateway reaches.

Anthropic's SDK changes its base URL and nothing else: a request in Anthropic's shape
(system apart, content blocks, ``tool_use`` / ``tool_result``, ``max_tokens`` required) is
translated into OpenAI's chat shape and answered through the same use-case as
``/v1/chat/completions`` (hosted providers, local models, fallbacks, the call log); the
answer comes back as a ``message`` or as Anthropic's stream of named events, and errors as
``{"type": "error", "error": {...}}`` so that the SDK raises its own exception classes.
What cannot be carried across is refused by name, never dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from modelport.api.prompting import ChatResult, ChatStream
from modelport.errors import InvalidValueError, ModelportError, UnsupportedParameterError
from modelport.providers.base import Usage
from modelport.server.errors import GATEWAY, anthropic_error, error_responses
from modelport.server.openai import (
    ChatRequest,
    _gateway_params,
    _local_runner,
    _served_headers,
    ask_simulator,
    seed_of,
    streamed_answer,
)
from modelport.server.state import record_model

__all__ = ["MessagesRequest", "router"]

router = APIRouter(prefix="/v1", tags=["anthropic"])

#: OpenAI's finish reasons as Anthropic's stop reasons.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

#: Keys of a block that say how to cache it, not what it means: OpenAI-shaped providers
#: cache prompts on their own, so they are accepted and have nothing to carry.
_CACHE_KEYS = frozenset({"cache_control"})

_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "strict", *_CACHE_KEYS})


class _Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    """Anthropic's Messages request, with modelport's ``fallbacks`` and ``access``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    messages: list[_Turn]
    max_tokens: Annotated[int, Field(ge=1)]
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float | None, Field(ge=0, le=1)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    top_k: Annotated[int | None, Field(ge=1)] = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    #: modelport's extension: models tried in order when ``model`` fails.
    fallbacks: list[str] | None = None
    #: modelport's extension: how a provider with a vendor CLI is reached (auto, api, cli).
    access: Literal["auto", "api", "cli"] | None = None


# -- Anthropic's request → OpenAI's ----------------------------------------------------------


def _text_of_blocks(blocks: str | list[dict[str, Any]], where: str) -> str:
    """Text blocks' text (a system prompt, a tool result); other blocks are refused."""
    if isinstance(blocks, str):
        return blocks
    parts = []
    for block in blocks:
        if block.get("type") != "text":
            raise UnsupportedParameterError(
                where, f"blocks of type {block.get('type')!r} are not supported here."
            )
        parts.append(str(block.get("text", "")))
    return "".join(parts)


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise UnsupportedParameterError(
            where, f"image sources of type {source.get('type')!r} are not supported here."
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _user_turn(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """A user turn: its tool results as OpenAI tool messages (they answer the previous
    turn's calls, so they come first), then its text and images as one user message."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_result":
            text = _text_of_blocks(block.get("content") or "", f"{where}.tool_result")
            if block.get("is_error"):
                text = f"Error: {text}"  # OpenAI's tool messages have no error flag
            results.append(
                {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}
            )
        else:
            raise UnsupportedParameterError(
                where, f"content blocks of type {kind!r} are not supported here."
            )
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _assistant_turn(blocks: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """An assistant turn: its text, and its ``tool_use`` blocks as OpenAI tool calls."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            function = {"name": str(block.get("name", "")), "arguments": arguments}
            calls.append({"id": str(block.get("id", "")), "type": "function", "function": function})
        else:
            raise UnsupportedParameterError(
                where, f"assistant blocks of type {kind!r} are not supported here."
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _messages(body: MessagesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if body.system:
        out.append({"role": "system", "content": _text_of_blocks(body.system, "system")})
    for i, turn in enumerate(body.messages):
        where = f"messages.{i}.content"
        if isinstance(turn.content, str):
            out.append({"role": turn.role, "content": turn.content})
        elif turn.role == "assistant":
            out.append(_assistant_turn(turn.content, where))
        else:
            out.extend(_user_turn(turn.content, where))
    return out


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") or "custom"
        if kind != "custom":
            raise UnsupportedParameterError(
                f"tools.{i}", f"server tools ({kind}) run only on Anthropic's own API."
            )
        unknown = sorted(set(tool) - _TOOL_KEYS)
        if unknown:
            raise UnsupportedParameterError(f"tools.{i}.{unknown[0]}", "is not supported here.")
        if not tool.get("name"):
            raise InvalidValueError(f"tools.{i}.name is required.", param=f"tools.{i}.name")
        function: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: dict[str, Any]) -> tuple[Any, bool | None]:
    """OpenAI's tool_choice, and parallel_tool_calls when the choice disables them."""
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool":
        if not choice.get("name"):
            raise InvalidValueError("tool_choice.name is required.", param="tool_choice.name")
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise InvalidValueError(
        f"tool_choice.type is auto, any, tool or none, not {kind!r}.", param="tool_choice.type"
    )


def _output_config(config: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """OpenAI's response_format and reasoning_effort for Anthropic's output_config."""
    unknown = sorted(set(config) - {"format", "effort"})
    if unknown:
        raise UnsupportedParameterError(f"output_config.{unknown[0]}", "is not supported here.")
    response_format = None
    fmt = config.get("format")
    if fmt is not None:
        if fmt.get("type") != "json_schema":
            raise UnsupportedParameterError(
                "output_config.format", f"formats of type {fmt.get('type')!r} are not supported."
            )
        schema = {"name": "output", "schema": fmt.get("schema") or {}}
        response_format = {"type": "json_schema", "json_schema": schema}
    effort = config.get("effort")
    if effort not in (None, "low", "medium", "high"):
        raise UnsupportedParameterError(
            "output_config.effort", f"{effort!r} has no equal here; use low, medium or high."
        )
    return response_format, effort


def openai_request(body: MessagesRequest) -> ChatRequest:
    """The request in OpenAI's chat shape, as ``/v1/chat/completions`` would receive it."""
    tool_choice, parallel = (None, None)
    if body.tool_choice is not None:
        tool_choice, parallel = _tool_choice(body.tool_choice)
    response_format, effort = (None, None)
    if body.output_config is not None:
        response_format, effort = _output_config(body.output_config)
    user = None
    if body.metadata:
        unknown = sorted(set(body.metadata) - {"user_id"})
        if unknown:
            raise UnsupportedParameterError(f"metadata.{unknown[0]}", "is not supported here.")
        user = body.metadata.get("user_id")
    return ChatRequest.model_validate(
        {
            "model": body.model,
            "messages": _messages(body),
            "max_tokens": body.max_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "stop": body.stop_sequences or None,
            "stream": body.stream,
            "tools": _tools(body.tools) if body.tools else None,
            "tool_choice": tool_choice,
            "parallel_tool_calls": parallel,
            "response_format": response_format,
            "reasoning_effort": effort,
            "user": user,
            "fallbacks": body.fallbacks,
            "access": body.access,
        }
    )


# -- the route -------------------------------------------------------------------------------


@router.post("/messages", responses=error_responses(*GATEWAY, shape="anthropic"))
async def create_message(body: MessagesRequest, request: Request) -> Any:
    """Anthropic's ``POST /v1/messages`` for any model: hosted (``openai:gpt-4o``,
    ``anthropic:…``, a catalog name) or local, with fallbacks; the ``x-modelport-model``
    header names the one that answered."""
    from modelport.api.prompting import chat_completion, stream_completion

    record_model(request, body.model)
    chat = openai_request(body)
    params = _gateway_params(chat)
    params["seed"] = seed_of(request, params["seed"])
    ask_simulator(request)
    if body.top_k is not None:
        # Passed by name: a provider (or a local model) that has it honours it, others refuse.
        params["options"]["top_k"] = body.top_k
    common: dict[str, Any] = {
        "access": chat.access,
        "origin": "gateway",
        "fallbacks": chat.fallbacks,
        "local": _local_runner(request, chat),
    }
    messages = [m.model_dump(exclude_none=True) for m in chat.messages]
    if not body.stream:
        result: ChatResult = await chat_completion(body.model, messages, **common, **params)
        return JSONResponse(
            _message_body(result),
            headers=_served_headers(result.target, result.response.access, result.failed),
        )
    started: ChatStream = await stream_completion(body.model, messages, **common, **params)
    return streamed_answer(_events(started), started)


# -- OpenAI's answer → Anthropic's -----------------------------------------------------------


def _usage(usage: Usage | None) -> dict[str, int]:
    """Anthropic's usage: its input_tokens leave out what was read from the cache."""
    usage = usage or Usage()
    cached = usage.cached_tokens
    return {
        "input_tokens": max(0, (usage.input_tokens or 0) - cached),
        "output_tokens": usage.output_tokens or 0,
        "cache_read_input_tokens": cached,
    }


def _input_of(arguments: Any, name: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the ``input`` object of a ``tool_use`` block."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        from modelport.errors import ProviderError

        raise ProviderError(
            f"The model called the tool {name} with arguments that are not a JSON object.",
            provider="gateway",
        )
    return value


def _message_body(result: ChatResult) -> dict[str, Any]:
    response = result.response
    message = response.message
    content: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name", ""))
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + uuid.uuid4().hex[:24],
                "name": name,
                "input": _input_of(function.get("arguments"), name),
            }
        )
    return {
        "id": "msg_" + uuid.uuid4().hex,
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": STOP_REASONS.get(response.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": _usage(response.usage),
        "modelport": {
            "model": result.target.name,
            "provider": result.target.provider or "local",
            "access": response.access,
            "cost_usd": result.cost_usd,
            "fallback_from": [name for name, _ in result.failed],
        },
    }


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _block_start(index: int, block: dict[str, Any]) -> str:
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return _event("content_block_start", payload)


def _block_delta(index: int, delta: dict[str, Any]) -> str:
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return _event("content_block_delta", payload)


def _block_stop(index: int) -> str:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


async def _events(started: ChatStream) -> AsyncIterator[str]:
    """OpenAI-shaped chunks as Anthropic's events: a text block for text, one ``tool_use``
    block per tool call (its arguments as ``input_json_delta``), each closed before the next
    opens; an error after the first event is an ``error`` event, as Anthropic sends it."""
    usage: Usage | None = None
    finish: str | None = None
    index, open_block = -1, None  # the open block: "text", or a tool call's OpenAI index
    tools: dict[int, int] = {}  # a tool call's OpenAI index → its block's index
    start: dict[str, Any] = {
        "id": "msg_" + uuid.uuid4().hex,
        "type": "message",
        "role": "assistant",
        "model": started.target.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    try:
        yield _event("message_start", {"type": "message_start", "message": start})
        yield _event("ping", {"type": "ping"})
        async for chunk in started:
            usage = chunk.usage or usage
            finish = chunk.finish_reason or finish
            delta = chunk.delta
            text = delta.get("content") or delta.get("refusal")
            if text:
                if open_block != "text":
                    if open_block is not None:
                        yield _block_stop(index)
                    index, open_block = index + 1, "text"
                    yield _block_start(index, {"type": "text", "text": ""})
                yield _block_delta(index, {"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or []:
                n = int(call.get("index", 0))
                function = call.get("function") or {}
                if n not in tools:
                    if open_block is not None:
                        yield _block_stop(index)
                    index, open_block = index + 1, str(n)
                    tools[n] = index
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": call.get("id") or "toolu_" + uuid.uuid4().hex[:24],
                        "name": function.get("name") or "",
                        "input": {},
                    }
                    yield _block_start(index, block)
                if function.get("arguments"):
                    partial = {"type": "input_json_delta", "partial_json": function["arguments"]}
                    yield _block_delta(tools[n], partial)
        if open_block is not None:
            yield _block_stop(index)
        stop_reason = STOP_REASONS.get(finish or "stop", "end_turn")
        yield _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": _usage(usage),
            },
        )
        yield _event("message_stop", {"type": "message_stop"})
    except ModelportError as error:
        yield _event("error", anthropic_error(error.http_status, error.message, hint=error.hint))
    finally:
        await started.aclose()
