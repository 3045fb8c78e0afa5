"""Cohere's v2 chat shapes to OpenAI's and back: the translation, with no network in it.

Cohere's v2 chat takes messages close to OpenAI's (system, user, assistant, tool; a
developer message is a system one). What differs is translated here: ``top_p`` is ``p``,
``stop`` is ``stop_sequences``, ``tool_choice`` is ``REQUIRED`` or ``NONE`` (a named tool is
only accepted when it is the only tool), a JSON answer is ``{"type": "json_object",
"json_schema": ...}``; a parameter Cohere lacks is refused by name. Answers come back as a
list of text and thinking items: the text is the message's content, the thinking and the
``tool_plan`` (Cohere's note on why it calls a tool) are its ``reasoning_content``, and a
``reasoning_content`` sent back beside tool calls returns to Cohere as their ``tool_plan``.

Usage is Cohere's billed units when it sends them (what it charges), else its raw token
counts (which include the preamble Cohere puts before every prompt).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelport.errors import ProviderError, ProviderTimeoutError, UnsupportedOperationError
from modelport.providers.base import ChatChunk, ChatRequest, Usage, content_text

__all__ = [
    "StreamTranslation",
    "chat_arguments",
    "cohere_messages",
    "cohere_response_format",
    "cohere_tool_choice",
    "cohere_tools",
    "finish_reason",
    "openai_message",
    "usage_of",
]

#: Parameters v2 chat takes under the name given (OpenAI's or Cohere's own) → its name.
_OPTIONS = {
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "top_k": "k",
    "k": "k",
    "safety_mode": "safety_mode",
    "thinking": "thinking",
    "priority": "priority",
    "strict_tools": "strict_tools",
}

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


def _refuse(message: str, hint: str | None = None) -> UnsupportedOperationError:
    return UnsupportedOperationError(message, hint=hint)


# -- OpenAI's request → Cohere's ------------------------------------------------------------


def _system_content(content: Any, role: str) -> str:
    if isinstance(content, list):
        for part in content:
            if part.get("type") != "text":
                raise _refuse(
                    f"Cohere takes only text in a {role} message, not {part.get('type')!r}."
                )
    return content_text(content)


def _user_content(content: Any) -> Any:
    if not isinstance(content, list):
        return content_text(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            image = {"url": image} if isinstance(image, str) else dict(image or {})
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _refuse(
                f"Cohere takes text and images in a user message, not {kind!r}.",
                hint="Send the content as text or an image_url part.",
            )
    return parts


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {})
    return {
        "id": str(call.get("id", "")),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": arguments},
    }


def cohere_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages as Cohere v2 messages (a message's ``name`` has no place there)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _system_content(m.get("content"), role)})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(m.get("content"))})
        elif role == "assistant":
            message: dict[str, Any] = {"role": "assistant"}
            calls = m.get("tool_calls") or []
            text = content_text(m.get("content"))
            if calls:
                message["tool_calls"] = [_tool_call(c) for c in calls]
                # Cohere wants its own plan back beside the calls it made.
                if m.get("reasoning_content"):
                    message["tool_plan"] = str(m["reasoning_content"])
            if text or not calls:
                message["content"] = text
            out.append(message)
        elif role == "tool":
            if not m.get("tool_call_id"):
                raise _refuse(
                    "A tool message needs the tool_call_id of the call it answers.",
                    hint="Set tool_call_id to the id of the assistant's tool call.",
                )
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": str(m["tool_call_id"]),
                    "content": content_text(m.get("content")),
                }
            )
        else:
            raise _refuse(
                f"Cohere takes no {role!r} messages.",
                hint="Use system, developer, user, assistant and tool messages.",
            )
    return out


def cohere_tools(tools: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """OpenAI function tools as Cohere v2 tools, and whether any asked to be strict."""
    out: list[dict[str, Any]] = []
    strict = False
    for tool in tools:
        kind = tool.get("type", "function")
        function = tool.get("function") or {}
        if kind != "function" or not function.get("name"):
            raise _refuse(
                f"Cohere takes function tools with a name, not {kind!r} tools.",
                hint='Send {"type": "function", "function": {"name": ..., "parameters": ...}}.',
            )
        spec: dict[str, Any] = {
            "name": function["name"],
            "parameters": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        # Cohere's strictness is one switch for every tool of the request.
        strict = strict or bool(function.get("strict"))
        out.append({"type": "function", "function": spec})
    return out, strict


def cohere_tool_choice(choice: Any, tools: Sequence[dict[str, Any]]) -> str | None:
    """OpenAI's ``tool_choice`` as Cohere's (None: let the model choose)."""
    if choice is None or choice == "auto":
        return None
    if choice == "required":
        return "REQUIRED"
    if choice == "none":
        return "NONE"
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        names = [(t.get("function") or {}).get("name") for t in tools]
        if names == [name]:
            return "REQUIRED"  # the only tool, so requiring a tool is requiring this one
        raise _refuse(
            f"Cohere cannot be told to call one named tool ({name!r}) among several.",
            hint='Send only that tool with tool_choice "required".',
        )
    raise _refuse(
        f"Cohere takes no tool_choice {choice!r}.",
        hint='Use "auto", "required", "none" or the only tool by name.',
    )


def cohere_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` as Cohere's."""
    kind = fmt.get("type")
    if kind == "text":
        return {"type": "text"}
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        out: dict[str, Any] = {"type": "json_object"}
        if schema:
            out["json_schema"] = schema
        return out
    raise _refuse(
        f"Cohere takes no response_format {kind!r}.",
        hint="Use text, json_object or json_schema.",
    )


def chat_arguments(request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of the SDK's v2 ``chat`` for an OpenAI-shaped request."""
    args: dict[str, Any] = {
        "model": request.model,
        "messages": cohere_messages(request.messages),
    }
    if request.tools:
        tools, strict = cohere_tools(request.tools)
        args["tools"] = tools
        if strict:
            args["strict_tools"] = True
    choice = cohere_tool_choice(request.tool_choice, request.tools or [])
    if choice is not None:
        args["tool_choice"] = choice
    for name in ("max_tokens", "temperature", "seed"):
        value = getattr(request, name)
        if value is not None:
            args[name] = value
    if request.top_p is not None:
        # OpenAI's default 1 (no cut) is past Cohere's widest p, 0.99.
        args["p"] = min(request.top_p, 0.99)
    if request.stop:
        args["stop_sequences"] = list(request.stop)
    if request.response_format is not None:
        args["response_format"] = cohere_response_format(request.response_format)
    for name, value in request.options.items():
        if value is None:
            continue
        if name in _OPTIONS:
            args[_OPTIONS[name]] = value
        elif (
            (name == "n" and value == 1)
            or (name == "parallel_tool_calls" and value is True)
            or name == "stream_options"
        ):
            continue  # what Cohere does anyway: one answer, parallel calls, usage at the end
        else:
            raise _refuse(
                f"Cohere has no {name!r} parameter.",
                hint="Leave it out, or use a model of a provider that has it.",
            )
    return args


# -- Cohere's answer → OpenAI's ---------------------------------------------------------------


def usage_of(raw: Any) -> Usage:
    """Cohere's ``usage`` (or embed's ``meta``): billed units first, raw tokens otherwise."""
    if raw is None:
        return Usage()
    billed = getattr(raw, "billed_units", None)
    tokens = getattr(raw, "tokens", None)

    def pick(name: str) -> int | None:
        for source in (billed, tokens):
            value = getattr(source, name, None) if source is not None else None
            if value is not None:
                return int(value)
        return None

    input_tokens = pick("input_tokens")
    cached = int(getattr(raw, "cached_tokens", None) or 0)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=pick("output_tokens"),
        cached_tokens=min(cached, input_tokens or 0),
    )


def finish_reason(raw: Any, error: str | None = None) -> str:
    """Cohere's ``finish_reason`` as OpenAI's; ERROR and TIMEOUT are errors."""
    reason = str(raw or "COMPLETE")
    if reason == "ERROR":
        said = (error or "").strip().rstrip(".") or "no message"
        raise ProviderError(f"Cohere stopped the answer with an error ({said}).", provider="cohere")
    if reason == "TIMEOUT":
        raise ProviderTimeoutError(
            "Cohere ran out of time generating the answer.",
            provider="cohere",
            hint="Try again, or ask for a shorter answer (max_tokens).",
        )
    return _FINISH.get(reason, "stop")


def openai_message(raw: Any) -> dict[str, Any]:
    """Cohere's assistant message as OpenAI's."""
    texts: list[str] = []
    thoughts: list[str] = []
    for item in getattr(raw, "content", None) or []:
        kind = getattr(item, "type", None)
        if kind == "text" and getattr(item, "text", None):
            texts.append(item.text)
        elif kind == "thinking" and getattr(item, "thinking", None):
            thoughts.append(item.thinking)
    if getattr(raw, "tool_plan", None):
        thoughts.append(raw.tool_plan)
    calls = []
    for call in getattr(raw, "tool_calls", None) or []:
        function = call.function
        calls.append(
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": getattr(function, "name", None) or "",
                    "arguments": getattr(function, "arguments", None) or "{}",
                },
            }
        )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    return message


class StreamTranslation:
    """Cohere's stream events as OpenAI chunks (it remembers each tool call's OpenAI index)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.tools: dict[Any, int] = {}

    def chunk(self, event: Any) -> ChatChunk | None:
        """The chunk for one Cohere stream event, or None for an event that adds nothing."""
        kind = getattr(event, "type", None)
        delta = getattr(event, "delta", None)
        message = getattr(delta, "message", None)
        if kind == "message-start":
            return self._out({"role": "assistant", "content": ""})
        if kind in ("content-start", "content-delta"):
            content = getattr(message, "content", None)
            out: dict[str, Any] = {}
            text = getattr(content, "text", None)
            thinking = getattr(content, "thinking", None)
            if text:
                out["content"] = text
            if thinking:
                out["reasoning_content"] = thinking
            return self._out(out) if out else None
        if kind == "tool-plan-delta":
            plan = getattr(message, "tool_plan", None)
            return self._out({"reasoning_content": plan}) if plan else None
        if kind == "tool-call-start":
            call = getattr(message, "tool_calls", None)
            key = event.index if event.index is not None else f"#{len(self.tools)}"
            index = self.tools.setdefault(key, len(self.tools))
            function = getattr(call, "function", None)
            return self._out(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": getattr(call, "id", None) or "",
                            "type": "function",
                            "function": {
                                "name": getattr(function, "name", None) or "",
                                "arguments": getattr(function, "arguments", None) or "",
                            },
                        }
                    ]
                }
            )
        if kind == "tool-call-delta":
            call = getattr(message, "tool_calls", None)
            piece = getattr(getattr(call, "function", None), "arguments", None)
            if not piece:
                return None
            index = self.tools.get(event.index, max(len(self.tools) - 1, 0))
            return self._out({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        if kind == "message-end":
            reason = finish_reason(
                getattr(delta, "finish_reason", None), getattr(delta, "error", None)
            )
            return ChatChunk(
                finish_reason=reason,
                usage=usage_of(getattr(delta, "usage", None)),
                model=self.model,
            )
        return None  # content-end, tool-call-end, citations, debug events

    def _out(self, delta: dict[str, Any]) -> ChatChunk:
        return ChatChunk(delta=delta, model=self.model)
