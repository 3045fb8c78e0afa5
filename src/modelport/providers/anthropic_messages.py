"""Anthropic's Messages API in OpenAI's terms: requests out, answers and stream events back.

The transformation half of the Anthropic provider, free of the network: system and
developer messages become ``system``; tool calls and tool results become ``tool_use`` and
``tool_result`` blocks (consecutive results share one user turn); ``response_format``
json_schema becomes structured output (``output_config.format``) and json_object a
forced call of a tool whose input is the answer; ``reasoning_effort`` becomes an
extended-thinking budget. Anthropic requires ``max_tokens``: a request without one gets
``DEFAULT_MAX_TOKENS`` (plus the thinking budget when it thinks). What the API lacks is
refused by name: ``seed``, penalties, logprobs..., and ``temperature``, ``top_p`` and
``top_k``, which the Messages API of the SDK's version (2.x, API version 2026-10-21) no
longer has.
"""

from __future__ import annotations

import json
from typing import Any

from modelport.errors import InvalidValueError, UnsupportedOperationError
from modelport.providers.base import ChatChunk, ChatRequest, Usage, content_text

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ERROR_STATUS",
    "FINISH_REASONS",
    "JSON_TOOL",
    "THINKING_BUDGETS",
    "StreamTranslator",
    "arguments_of",
    "json_forced",
    "message_of",
    "messages_of",
    "usage_of",
]

#: ``max_tokens`` of a request that sets none (Anthropic requires one).
DEFAULT_MAX_TOKENS = 4096

#: Extended-thinking budgets (tokens) for OpenAI's ``reasoning_effort``.
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}

#: The tool a json_object answer is forced through; its input is the answer.
JSON_TOOL = "json_answer"

#: Options in ``ChatRequest.options`` this provider honours (everything else is refused).
_KNOWN_OPTIONS = frozenset(
    {
        "reasoning_effort",
        "parallel_tool_calls",
        "user",
        "max_completion_tokens",
        "n",
        "stream_options",  # usage always comes on the last chunk
    }
)

#: Anthropic's stop reasons as OpenAI's finish reasons.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: The HTTP status an error event inside a 200 stream stands for.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _refuse(param: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"Anthropic does not take `{param}`.",
        hint="Leave it out, or use a model of another provider that takes it.",
    )


def usage_of(raw: Any) -> Usage:
    """Anthropic's ``usage`` (a dict or the SDK's model) as a ``Usage``.

    Anthropic counts cached input apart from ``input_tokens``; OpenAI's prompt tokens
    include it, so the three are added.
    """
    if raw is None:
        return Usage()
    data = raw if isinstance(raw, dict) else raw.model_dump()
    read = int(data.get("cache_read_input_tokens") or 0)
    created = int(data.get("cache_creation_input_tokens") or 0)
    fresh = data.get("input_tokens")
    details = data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=None if fresh is None else int(fresh) + read + created,
        output_tokens=data.get("output_tokens"),
        cached_tokens=read,
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


# -- OpenAI's request → the Messages API -----------------------------------------------------


def _image(part: dict[str, Any]) -> dict[str, Any]:
    url = str((part.get("image_url") or {}).get("url") or "")
    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64" or not data:
            raise InvalidValueError(
                "An image data: URL must be base64 (data:image/png;base64,...).", param="messages"
            )
        if media_type not in _IMAGE_TYPES:
            raise UnsupportedOperationError(
                f"Anthropic does not take {media_type or 'untyped'} images.",
                hint="Send JPEG, PNG, GIF or WebP.",
            )
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidValueError("An image_url must be a data: or an http(s) URL.", param="messages")


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A message's content as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            out.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            out.append(_image(part))
        else:
            raise UnsupportedOperationError(
                f"Anthropic does not take `{kind}` content parts through modelport.",
                hint="Send text and images.",
            )
    return out


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidValueError(
            f"The arguments of tool call {call.get('id')!r} are not a JSON object.",
            param="messages",
        )
    name = function.get("name")
    return {"type": "tool_use", "id": call.get("id"), "name": name, "input": arguments}


def messages_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's messages (system ones left out) as Anthropic's alternating turns."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "user":
            blocks = _blocks(message.get("content"))
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            blocks += [_tool_use(c) for c in message.get("tool_calls") or []]
        elif role == "tool":
            if not message.get("tool_call_id"):
                raise InvalidValueError("A tool message needs its tool_call_id.", param="messages")
            role = "user"
            result = content_text(message.get("content"))
            blocks = [
                {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": result}
            ]
        else:
            raise InvalidValueError(f"A message has the unknown role {role!r}.", param="messages")
        if not blocks:
            continue  # an empty turn is refused by Anthropic and says nothing
        if out and out[-1]["role"] == role:
            # Anthropic's turns alternate: tool results (and a user message after them)
            # share one user turn.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise UnsupportedOperationError(
            f"Anthropic takes function tools only, not `{tool.get('type')}`."
        )
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        return {"type": "tool", "name": choice["function"]["name"]}
    raise InvalidValueError(
        f"tool_choice {choice!r} is not one OpenAI defines.", param="tool_choice"
    )


def arguments_of(request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for an OpenAI-shaped request."""
    # The Messages API has no sampling parameters left: they are refused like seed.
    for name in ("seed", "temperature", "top_p"):
        if getattr(request, name) is not None:
            raise _refuse(name)
    for name in request.options:
        if name not in _KNOWN_OPTIONS:
            raise _refuse(name)
    options = request.options
    if options.get("n") not in (None, 1):
        raise _refuse("n")
    args: dict[str, Any] = {"model": request.model, "messages": messages_of(request.messages)}
    if (system := request.system_text()) is not None:
        args["system"] = system
    max_tokens = request.max_tokens or options.get("max_completion_tokens")
    if request.stop:
        args["stop_sequences"] = list(request.stop)
    if options.get("user"):
        args["metadata"] = {"user_id": str(options["user"])}

    if request.tools:
        args["tools"] = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice) if request.tool_choice is not None else None
    if options.get("parallel_tool_calls") is False:
        choice = (choice or {"type": "auto"}) | {"disable_parallel_tool_use": True}
    if choice is not None:
        args["tool_choice"] = choice

    kind = (request.response_format or {}).get("type")
    if kind == "json_schema":
        schema = (request.response_format or {}).get("json_schema", {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidValueError(
                "response_format json_schema needs json_schema.schema.", param="response_format"
            )
        args["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif kind == "json_object":
        if request.tools:
            raise UnsupportedOperationError(
                "Anthropic cannot answer in JSON (response_format json_object) and call tools "
                "in one request.",
                hint="Use response_format json_schema, or leave the tools out.",
            )
        # Anthropic's structured output wants a closed schema; an open object is answered
        # as the input of a tool the model is forced to call.
        args["tools"] = [
            {
                "name": JSON_TOOL,
                "description": "Give the answer as a JSON object.",
                "input_schema": {"type": "object"},
            }
        ]
        args["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    elif kind not in (None, "text"):
        raise InvalidValueError(f"response_format {kind!r} is unknown.", param="response_format")

    effort = options.get("reasoning_effort")
    if effort is not None and effort != "none":
        if effort not in THINKING_BUDGETS:
            raise InvalidValueError(
                f"reasoning_effort {effort!r} is not low, medium or high.", param="reasoning_effort"
            )
        budget = THINKING_BUDGETS[effort]
        if max_tokens is None:
            max_tokens = budget + DEFAULT_MAX_TOKENS
        elif max_tokens <= budget:
            raise InvalidValueError(
                f"max_tokens ({max_tokens}) must exceed the thinking budget of "
                f"reasoning_effort={effort} ({budget} tokens) on Anthropic.",
                param="max_tokens",
            )
        args["thinking"] = {"type": "enabled", "budget_tokens": budget}
    args["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS
    return args


# -- the Messages API's answer → OpenAI's ---------------------------------------------------


def json_forced(args: dict[str, Any]) -> bool:
    """Whether a call's answer is the input of the forced json_object tool."""
    return (args.get("tool_choice") or {}).get("name") == JSON_TOOL


def message_of(done: Any, *, json_forced: bool) -> tuple[dict[str, Any], str]:
    """An SDK ``Message`` as OpenAI's assistant message and finish reason."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in done.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "thinking":
            thoughts.append(block.thinking)
        elif block.type == "tool_use":
            if json_forced and block.name == JSON_TOOL:
                texts.append(json.dumps(block.input))
                continue
            function = {"name": block.name, "arguments": json.dumps(block.input)}
            calls.append({"id": block.id, "type": "function", "function": function})
    finish = FINISH_REASONS.get(done.stop_reason or "end_turn", "stop")
    if json_forced and finish == "tool_calls":
        finish = "stop"  # the forced call was the answer, not a call to make
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if finish == "content_filter":
        message["content"] = None
        message["refusal"] = text or "Anthropic declined to answer."
    return message, finish


class StreamTranslator:
    """What a Messages stream has said so far, to turn its events into OpenAI chunks."""

    def __init__(self, model: str, *, json_forced: bool) -> None:
        self.model = model
        self.json_forced = json_forced
        self.usage = Usage()
        self.finish = "stop"
        #: Content block index → OpenAI tool call index (None: the forced JSON answer).
        self.tools: dict[int, int | None] = {}

    def chunks(self, event: Any) -> list[ChatChunk]:
        """The OpenAI chunks one SDK stream event makes (often none)."""
        kind = event.type
        if kind == "message_start":
            self.model = event.message.model or self.model
            self.usage = usage_of(event.message.usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                if self.json_forced and block.name == JSON_TOOL:
                    self.tools[event.index] = None
                    return []
                index = sum(1 for v in self.tools.values() if v is not None)
                self.tools[event.index] = index
                call = {
                    "index": index,
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            if block.type == "text" and block.text:
                return [self._chunk({"content": block.text})]
            return []
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                return [self._chunk({"content": delta.text})]
            if delta.type == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.thinking})]
            if delta.type == "input_json_delta" and delta.partial_json:
                if event.index not in self.tools:
                    return []
                position = self.tools[event.index]
                if position is None:  # the forced JSON answer is the content
                    return [self._chunk({"content": delta.partial_json})]
                piece = {"index": position, "function": {"arguments": delta.partial_json}}
                return [self._chunk({"tool_calls": [piece]})]
            return []
        if kind == "message_delta":
            reason = FINISH_REASONS.get(event.delta.stop_reason or "end_turn", "stop")
            if self.json_forced and reason == "tool_calls":
                reason = "stop"  # the forced call was the answer, not a call to make
            self.finish = reason
            later = usage_of(event.usage)
            self.usage.output_tokens = later.output_tokens
            self.usage.reasoning_tokens = later.reasoning_tokens or self.usage.reasoning_tokens
            if later.input_tokens:  # the cumulative count, when the API sends it again
                self.usage.input_tokens = later.input_tokens
                self.usage.cached_tokens = later.cached_tokens
            return []
        if kind == "message_stop":
            return [ChatChunk(finish_reason=self.finish, usage=self.usage, model=self.model)]
        return []

    def _chunk(self, delta: dict[str, Any]) -> ChatChunk:
        return ChatChunk(delta=delta, model=self.model)
