"""OpenAI-shaped chat requests as Gemini ``generateContent`` calls, and Gemini's answers back.

The transformation half of the Gemini provider (``providers/gemini.py``), testable without
the network: ``contents_of`` and ``config_of`` build the SDK's request objects,
``message_of``, ``tool_call``, ``usage_of`` and the two checks read its answers. What
Gemini has no setting for is refused by name (``UnsupportedOperationError``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelport.errors import (
    ContentFilteredError,
    InvalidValueError,
    ProviderError,
    UnsupportedOperationError,
)
from modelport.providers.base import ChatRequest, Usage, content_text

if TYPE_CHECKING:
    from google.genai import types

__all__ = [
    "check_finish",
    "check_prompt",
    "config_of",
    "contents_of",
    "finish_of",
    "message_of",
    "tool_call",
    "usage_of",
]

#: Finish reasons that mean a safety or policy filter stopped the answer.
FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)

#: Finish reasons of a normal end.
STOPPED = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED", "CONTINUATION"})

#: ``reasoning_effort`` as the thinking budget of Gemini 2.5 models: Google's own mapping
#: in its OpenAI compatibility layer.
THINKING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}

#: ``reasoning_effort`` as the thinking level of Gemini 3 and later models.
THINKING_LEVELS = {
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "XHIGH",
}

#: OpenAI parameters with a Gemini generation setting of the same meaning.
SAME_OPTIONS = ("presence_penalty", "frequency_penalty", "top_k")

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*?;base64,(?P<data>.*)$", re.S)
_VERSION = re.compile(r"gemini-(?P<major>\d+)(?:\.(?P<minor>\d+))?")

_HINT_API = "Remove it, or ask another provider that has it."


# -- OpenAI request → generateContent ----------------------------------------------------


def _refuse(parameter: str, why: str = "") -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"Gemini has no `{parameter}` parameter{why}.",
        hint=_HINT_API,
    )


def _image(url: str) -> types.Part:
    from google.genai import types

    match = _DATA_URL.match(url)
    if match is None:
        raise UnsupportedOperationError(
            "Gemini takes images here only as base64 `data:` URLs, not links.",
            hint="Download the image and send it as `data:image/png;base64,...`.",
        )
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(
            "An image `data:` URL is not valid base64.", param="messages"
        ) from None
    return types.Part(inline_data=types.Blob(mime_type=match["mime"], data=data))


def _parts(content: Any) -> list[types.Part]:
    """A message's content (a string or OpenAI content parts) as Gemini parts."""
    from google.genai import types

    if content is None:
        return []
    if isinstance(content, str):
        return [types.Part(text=content)] if content else []
    parts: list[types.Part] = []
    for piece in content:
        kind = piece.get("type")
        if kind == "text":
            parts.append(types.Part(text=str(piece.get("text", ""))))
        elif kind == "image_url":
            image = piece.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_image(str(url or "")))
        else:
            raise UnsupportedOperationError(
                f"Gemini in modelport takes text and image parts, not `{kind}` parts.",
                hint="Send the content as text or `image_url` parts.",
            )
    return parts


def _signature(call: dict[str, Any]) -> bytes | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(
            "A tool call's `extra_content.google.thought_signature` is not base64.",
            param="messages",
        ) from None


def _function_call(call: dict[str, Any]) -> types.Part:
    from google.genai import types

    function = call.get("function") or {}
    name = function.get("name")
    if call.get("type", "function") != "function" or not name:
        raise InvalidValueError(
            "An assistant tool call must be a function call with a name.", param="messages"
        )
    raw = function.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise InvalidValueError(
            f"The arguments of tool call `{name}` are not JSON.", param="messages"
        ) from None
    if not isinstance(args, dict):
        raise InvalidValueError(
            f"The arguments of tool call `{name}` must be a JSON object.", param="messages"
        )
    # The call's id is not sent back: Gemini pairs calls and results by name and order,
    # and an id Gemini never issued (ours are made up) must not reach it.
    return types.Part(
        function_call=types.FunctionCall(name=name, args=args),
        thought_signature=_signature(call),
    )


def _function_response(message: dict[str, Any], names: dict[str, str]) -> types.Part:
    from google.genai import types

    call_id = message.get("tool_call_id")
    name = names.get(str(call_id)) or message.get("name")
    if not name:
        raise InvalidValueError(
            f"A tool message answers `{call_id}`, which no earlier assistant tool call has.",
            param="messages",
            hint="Send the assistant message with that tool call before its result.",
        )
    text = content_text(message.get("content"))
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    # Gemini wants an object: a JSON object result goes as it is, anything else under
    # "output", the key Google documents for a function's output.
    response = value if isinstance(value, dict) else {"output": text}
    return types.Part(function_response=types.FunctionResponse(name=name, response=response))


def contents_of(messages: Sequence[dict[str, Any]]) -> list[types.Content]:
    """OpenAI messages (less system and developer ones) as Gemini contents."""
    from google.genai import types

    names: dict[str, str] = {}
    out: list[types.Content] = []

    def add(role: str, parts: list[types.Part]) -> None:
        if not parts:
            return
        # Consecutive turns of one role merge: Gemini wants every function response of
        # a turn in one content, and alternating roles.
        if out and out[-1].role == role and out[-1].parts is not None:
            out[-1].parts.extend(parts)
        else:
            out.append(types.Content(role=role, parts=parts))

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "user":
            add("user", _parts(message.get("content")))
        elif role == "assistant":
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or []:
                parts.append(_function_call(call))
                if call.get("id"):
                    names[str(call["id"])] = call["function"]["name"]
            add("model", parts)
        elif role == "tool":
            add("user", [_function_response(message, names)])
        else:
            raise InvalidValueError(
                f"A message has role `{role}`; Gemini takes system, developer, user, "
                "assistant and tool messages.",
                param="messages",
            )
    if not out:
        raise InvalidValueError("The request has no user message.", param="messages")
    return out


def _tools(request: ChatRequest) -> tuple[list[types.Tool] | None, types.ToolConfig | None]:
    from google.genai import types

    choice = request.tool_choice
    if not request.tools:
        if choice in (None, "none", "auto"):
            return None, None
        raise InvalidValueError("`tool_choice` needs `tools`.", param="tool_choice")
    declarations = []
    for tool in request.tools:
        function = tool.get("function") or {}
        if tool.get("type", "function") != "function" or not function.get("name"):
            raise UnsupportedOperationError(
                f"Gemini in modelport takes function tools, not `{tool.get('type')}` tools.",
                hint='Describe the tool as `{"type": "function", "function": {...}}`.',
            )
        declarations.append(
            types.FunctionDeclaration(
                name=function["name"],
                description=function.get("description"),
                # The JSON schema goes as it is (Gemini's own schema type would drop
                # what it does not know).
                parameters_json_schema=function.get("parameters"),
            )
        )
    if choice in (None, "auto"):
        mode, allowed = "AUTO", None
    elif choice == "none":
        mode, allowed = "NONE", None
    elif choice == "required":
        mode, allowed = "ANY", None
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        mode, allowed = "ANY", [choice["function"]["name"]]
    else:
        raise InvalidValueError(
            f"`tool_choice` {choice!r} is not auto, none, required or a named function.",
            param="tool_choice",
        )
    config = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed
        )
    )
    return [types.Tool(function_declarations=declarations)], config


def _thinking(model: str, effort: Any) -> types.ThinkingConfig:
    from google.genai import types

    version = _VERSION.search(model)
    major = int(version["major"]) if version else 0
    minor = int(version["minor"] or 0) if version else 0
    # Only the levels this google-genai knows (MINIMAL and MEDIUM came in 1.56, XHIGH later).
    levels = {k: v for k, v in THINKING_LEVELS.items() if v in types.ThinkingLevel.__members__}
    if major >= 3 and effort in levels:
        return types.ThinkingConfig(
            thinking_level=types.ThinkingLevel(levels[effort]), include_thoughts=True
        )
    if (major, minor) == (2, 5) and effort in THINKING_BUDGETS:
        budget = THINKING_BUDGETS[effort]
        return types.ThinkingConfig(thinking_budget=budget, include_thoughts=budget > 0)
    known = levels if major >= 3 else THINKING_BUDGETS if (major, minor) == (2, 5) else {}
    raise UnsupportedOperationError(
        f"`reasoning_effort` {effort!r} has no Gemini thinking setting for {model}.",
        hint=(f"Use one of {', '.join(known)}." if known else "Leave it out for this model."),
    )


def _response_format(config: dict[str, Any], response_format: dict[str, Any]) -> None:
    kind = response_format.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["response_mime_type"] = "application/json"
        return
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidValueError(
                "`response_format` json_schema needs `json_schema.schema`.",
                param="response_format",
            )
        config["response_mime_type"] = "application/json"
        config["response_json_schema"] = schema
        return
    raise UnsupportedOperationError(
        f"Gemini has no `{kind}` response format.",
        hint="Use `text`, `json_object` or `json_schema`.",
    )


def _options(config: dict[str, Any], request: ChatRequest) -> None:
    for name, value in request.options.items():
        if value is None:
            continue
        if name in SAME_OPTIONS:
            config[name] = value
        elif name == "max_completion_tokens":
            config["max_output_tokens"] = value
        elif name == "reasoning_effort":
            config["thinking_config"] = _thinking(request.model, value)
        elif name == "n":
            if value != 1:
                raise _refuse("n", " above 1 in modelport (one answer per call)")
        elif name == "parallel_tool_calls":
            if value is False:
                raise _refuse("parallel_tool_calls", " switch (it may call several tools)")
        elif name == "logprobs":
            if value:
                raise _refuse("logprobs", " in modelport's answers")
        elif name == "stream_options":
            continue  # usage always comes on the last chunk
        else:
            raise _refuse(name)


def config_of(request: ChatRequest) -> types.GenerateContentConfig:
    """The ``GenerateContentConfig`` of an OpenAI-shaped request; refuses what has none."""
    from google.genai import types

    config: dict[str, Any] = {
        # Only function declarations are passed, so the SDK has nothing to call itself;
        # disabling it also keeps it from looping.
        "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
    }
    system = request.system_text()
    if system:
        config["system_instruction"] = system
    for name, target in (
        ("max_tokens", "max_output_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("seed", "seed"),
    ):
        value = getattr(request, name)
        if value is not None:
            config[target] = value
    if request.stop:
        config["stop_sequences"] = list(request.stop)
    tools, tool_config = _tools(request)
    if tools:
        config["tools"] = tools
        config["tool_config"] = tool_config
    if request.response_format:
        _response_format(config, request.response_format)
    _options(config, request)
    return types.GenerateContentConfig(**config)


# -- generateContent → OpenAI -------------------------------------------------------------


def usage_of(raw: Any) -> Usage:
    """Gemini's ``usage_metadata`` as a ``Usage`` (thoughts counted as output)."""
    if raw is None:
        return Usage()
    prompt = raw.prompt_token_count
    tool_prompt = getattr(raw, "tool_use_prompt_token_count", None) or 0
    answer = raw.candidates_token_count
    thoughts = raw.thoughts_token_count or 0
    return Usage(
        # Tool-use prompt tokens (search results fed back) are billed as input.
        input_tokens=None if prompt is None else prompt + tool_prompt,
        output_tokens=None if answer is None and not thoughts else (answer or 0) + thoughts,
        cached_tokens=raw.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def finish_of(candidate: Any) -> str | None:
    """A candidate's finish reason as Gemini names it (``STOP``, ``SAFETY``), if any."""
    reason = getattr(candidate, "finish_reason", None)
    if reason is None:
        return None
    return str(getattr(reason, "value", reason))


def check_prompt(response: Any) -> None:
    """Raise ``ContentFilteredError`` when Gemini blocked the prompt."""
    feedback = getattr(response, "prompt_feedback", None)
    blocked = getattr(feedback, "block_reason", None) if feedback is not None else None
    if blocked is None:
        return
    reason = str(getattr(blocked, "value", blocked))
    said = getattr(feedback, "block_reason_message", None)
    raise ContentFilteredError(
        f"Gemini refused the prompt ({reason}" + (f": {said}" if said else "") + ").",
        provider="gemini",
        hint="Rephrase the request; Gemini's safety settings apply.",
    )


def check_finish(reason: str | None, answered: bool) -> str | None:
    """OpenAI's finish reason for Gemini's, or an error for a refusal or a failed end."""
    if reason is None:
        return None
    if reason in FILTERED:
        raise ContentFilteredError(
            f"Gemini stopped the answer for {reason}.",
            provider="gemini",
            hint="Rephrase the request; Gemini's safety settings apply.",
        )
    if reason == "MAX_TOKENS":
        return "length"
    if reason in STOPPED or answered:
        return "stop"
    raise ProviderError(
        f"Gemini ended without an answer ({reason}).",
        provider="gemini",
        hint="Try again, or rephrase the request.",
    )


def tool_call(part: Any, index: int) -> dict[str, Any]:
    """A ``function_call`` part as an OpenAI tool call."""
    call = part.function_call
    out: dict[str, Any] = {
        "id": call.id or f"call_{index}",
        "type": "function",
        "function": {"name": call.name or "", "arguments": json.dumps(call.args or {})},
    }
    if part.thought_signature:
        signature = base64.b64encode(part.thought_signature).decode()
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def message_of(response: Any) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason of a whole ``generateContent`` answer."""
    check_prompt(response)
    candidates = response.candidates or []
    if not candidates:
        raise ProviderError("Gemini sent no answer candidate.", provider="gemini")
    candidate = candidates[0]
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.content.parts if candidate.content else None) or []:
        if part.function_call is not None:
            calls.append(tool_call(part, len(calls)))
        elif part.text is not None:
            (thoughts if part.thought else texts).append(part.text)
    finish = check_finish(finish_of(candidate), bool(texts or calls)) or "stop"
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
        if finish == "stop":
            finish = "tool_calls"
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return message, finish
