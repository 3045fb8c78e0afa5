"""Ollama's ``/api/chat`` and ``/api/generate`` for hosted and simulated models: the request
in Ollama's shape goes through the same gateway use-case as ``/v1`` (keys, fallbacks, the
call log), and the answer comes back as Ollama writes it (NDJSON when streamed)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi.responses import StreamingResponse

from modelport.errors import InvalidValueError, UnsupportedParameterError
from modelport.server.generation import refuse as refuse_field
from modelport.server.ollama_protocol import (
    ChatRequest,
    EmbedRequest,
    GenerateRequest,
    GenerationBody,
    error_line,
    generation_options,
    ndjson_line,
    now_iso,
)

if TYPE_CHECKING:
    from modelport.api.prompting import ChatResult, ChatStream, Target
    from modelport.providers.base import Usage

__all__ = ["hosted_chat", "hosted_generate", "hosted_target"]

_NDJSON = "application/x-ndjson"
#: Ollama's options a hosted model takes, by the name OpenAI's shape gives them.
_PASSED = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop"}
#: Ollama's ``think`` levels as OpenAI's ``reasoning_effort``.
_EFFORT = {True: "medium", "low": "low", "medium": "medium", "high": "high"}


async def hosted_target(model: str) -> Target | None:
    """The hosted (or simulated) model an Ollama model name means, or None for a local one."""
    from modelport.api.prompting import provider_registry, target_of
    from modelport.refs import hub_registries

    registry, sep, _ = model.partition(":")
    # ``llama3.2:1b`` is an Ollama name and tag; only a provider's prefix is hosted.
    if sep and registry not in hub_registries() and provider_registry(registry) is None:
        return None
    target = await target_of(model)
    return target if target.kind == "hosted" else None


def _params(body: GenerationBody) -> dict[str, Any]:
    """The request's options in OpenAI's shape; what a hosted model cannot take is refused."""
    given = {k: v for k, v in (body.options or {}).items() if v is not None}
    penalties: dict[str, Any] = {
        k: given.pop(k) for k in ("presence_penalty", "frequency_penalty") if k in given
    }
    if given.pop("repeat_penalty", 1.0) != 1.0:
        raise UnsupportedParameterError(
            "options.repeat_penalty", "hosted models take presence_penalty instead."
        )
    refuse_field("options.num_ctx", given.pop("num_ctx", None), "a hosted model's is its own.")
    generation_options(given)  # the same checks as for a local model, for the rest
    params: dict[str, Any] = {name: given[key] for key, name in _PASSED.items() if key in given}
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    if "num_predict" in given:
        value = int(given["num_predict"])
        params["max_tokens"] = value if value > 0 else None
    options: dict[str, Any] = dict(penalties)
    if "top_k" in given:
        options["top_k"] = given["top_k"]  # by name: a provider that has it honours it
    if body.format == "json":
        params["response_format"] = {"type": "json_object"}
    elif isinstance(body.format, dict):
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": body.format},
        }
    elif body.format not in (None, ""):
        raise InvalidValueError("format is 'json' or a JSON Schema object.", param="format")
    if body.think not in (None, False):
        effort = _EFFORT.get(body.think)
        if effort is None:
            raise InvalidValueError(
                "think is true, false, or one of low, medium, high.", param="think"
            )
        options["reasoning_effort"] = effort
    refuse_field("logprobs", body.logprobs or None, "log probabilities are not returned yet.")
    refuse_field("top_logprobs", body.top_logprobs, "log probabilities are not returned yet.")
    refuse_field("truncate", body.truncate, "prompts are never cut here.")
    refuse_field("shift", body.shift, "the context is never shifted.")
    params["options"] = options
    return params


def _messages(body: ChatRequest) -> list[dict[str, Any]]:
    """Ollama's messages in OpenAI's shape (images as data URLs, arguments as JSON text)."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(body.messages):
        refuse_field(
            f"messages[{i}].thinking", m.thinking, "earlier thinking is not sent to hosted models."
        )
        message: dict[str, Any] = {"role": m.role, "content": m.content or ""}
        if m.images:
            message["content"] = [
                {"type": "text", "text": m.content or ""},
                *(
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}
                    for image in m.images
                ),
            ]
        if m.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}_{n}",
                    "type": "function",
                    "function": {
                        "name": c.function.name,
                        "arguments": json.dumps(c.function.arguments),
                    },
                }
                for n, c in enumerate(m.tool_calls)
            ]
        if m.role == "tool":
            message["tool_call_id"] = m.tool_call_id or _answered_call(out, m.tool_name)
        out.append(message)
    return out


def _answered_call(earlier: list[dict[str, Any]], name: str | None) -> str:
    """The id of the call a tool message answers (Ollama names the tool, not the call)."""
    for message in reversed(earlier):
        for call in message.get("tool_calls") or []:
            if name is None or call["function"]["name"] == name:
                return str(call["id"])
    return "call_0"


async def hosted_chat(body: ChatRequest, target: Target) -> Any:
    """``/api/chat`` answered by a hosted or simulated model."""
    params = _params(body)
    if body.tools:
        params["tools"] = body.tools
    return await _answer(body, _messages(body), params, chat=True)


async def hosted_generate(body: GenerateRequest, target: Target) -> Any:
    """``/api/generate`` answered by a hosted or simulated model (one user turn)."""
    refuse_field("raw", body.raw or None, "a hosted model's prompt template is its own.")
    refuse_field("images", body.images, "send images to /api/chat.")
    params = _params(body)
    messages = [{"role": "system", "content": body.system}] if body.system else []
    messages.append({"role": "user", "content": body.prompt or ""})
    return await _answer(body, messages, params, chat=False)


async def hosted_embed(body: EmbedRequest, target: Target, inputs: list[str]) -> dict[str, Any]:
    """``/api/embed`` answered by a hosted or simulated embedding model."""
    from modelport.api.prompting import embed_texts

    refuse_field("options", body.options or None, "a hosted model takes no embedding options.")
    if body.truncate is False:
        raise UnsupportedParameterError(
            "truncate", "hosted models refuse a long input rather than cut it."
        )
    started = time.perf_counter_ns()
    done = await embed_texts(body.model, inputs, dimensions=body.dimensions, origin="gateway")
    return {
        "model": body.model,
        "embeddings": done.vectors,
        "total_duration": time.perf_counter_ns() - started,
        "load_duration": 0,
        "prompt_eval_count": done.usage.input_tokens or 0,
    }


async def _answer(
    body: GenerationBody, messages: list[dict[str, Any]], params: dict[str, Any], *, chat: bool
) -> Any:
    from modelport.api.prompting import chat_completion, stream_completion

    started = time.perf_counter_ns()
    if not body.stream:
        result: ChatResult = await chat_completion(body.model, messages, origin="gateway", **params)
        message = result.response.message
        out = _piece(body.model, message.get("content") or "", chat, _tool_calls(message))
        return _done(out, started, started, result.response.finish_reason, result.response.usage)
    stream: ChatStream = await stream_completion(body.model, messages, origin="gateway", **params)
    return StreamingResponse(_lines(body.model, stream, started, chat), media_type=_NDJSON)


async def _lines(model: str, stream: ChatStream, started: int, chat: bool) -> AsyncIterator[str]:
    first = 0
    calls: dict[int, dict[str, Any]] = {}
    usage: Usage | None = None
    finish: str | None = None
    try:
        async for chunk in stream:
            usage = chunk.usage or usage
            finish = chunk.finish_reason or finish
            for call in chunk.delta.get("tool_calls") or []:
                held = calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": ""})
                function = call.get("function") or {}
                held["name"] += function.get("name") or ""
                held["arguments"] += function.get("arguments") or ""
            text = chunk.delta.get("content")
            if text:
                first = first or time.perf_counter_ns()
                yield ndjson_line(_piece(model, text, chat, []))
        done = _piece(model, "", chat, [_call(i, c) for i, c in sorted(calls.items())])
        yield ndjson_line(_done(done, started, first or started, finish, usage))
    except Exception as e:
        yield error_line(e)
    finally:
        await stream.aclose()


def _call(index: int, call: dict[str, Any]) -> dict[str, Any]:
    try:
        arguments = json.loads(call["arguments"] or "{}")
    except ValueError:
        arguments = {}
    return {"function": {"index": index, "name": call["name"], "arguments": arguments}}


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _call(i, {"name": c["function"]["name"], "arguments": c["function"]["arguments"]})
        for i, c in enumerate(message.get("tool_calls") or [])
    ]


def _piece(model: str, text: str, chat: bool, calls: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": now_iso()}
    if chat:
        out["message"] = {"role": "assistant", "content": text}
        if calls:
            out["message"]["tool_calls"] = calls
    else:
        out["response"] = text
    out["done"] = False
    return out


def _done(
    out: dict[str, Any], started: int, first: int, finish: str | None, usage: Usage | None
) -> dict[str, Any]:
    end = time.perf_counter_ns()
    out.update(
        done=True,
        done_reason="length" if finish == "length" else "stop",
        total_duration=end - started,
        load_duration=0,
        prompt_eval_count=(usage.input_tokens if usage else None) or 0,
        prompt_eval_duration=max(0, first - started),
        eval_count=(usage.output_tokens if usage else None) or 0,
        eval_duration=max(0, end - first),
    )
    return out
