"""Gemini through Google's ``gemini`` CLI a user is signed in to (``gemini -p``).

``gemini --output-format json --model M --prompt=TEXT`` prints one JSON document,
``{"session_id", "response", "stats": {"models": {M: {"tokens": {"prompt", "candidates",
"cached", "thoughts", "tool", ...}}}}}``; with ``--output-format stream-json`` it prints
JSON lines: ``init`` (session id, model), ``message`` (``role``, ``content``, ``delta``),
``tool_use`` / ``tool_result`` (its own tools), ``error`` (warnings) and a last ``result``
(``status``, ``error``, ``stats`` with ``input_tokens``, ``output_tokens``, ``cached``,
``total_tokens``).

The CLI takes one prompt, so a conversation is rendered into it: the system text first,
then each turn as ``User:`` / ``Assistant:`` paragraphs, ending with the user's last
message (a single user message goes as it is). Tools, images, ``response_format`` and
sampling settings have no CLI flag and are refused with a pointer to ``--access api``.

"Signed in" is read from the CLI's own files, never by spending tokens: the auth type
selected in ``~/.gemini/settings.json`` (``security.auth.selectedType``, or the older
``selectedAuthType``), else the one its environment variables select, and for a Google
sign-in its cached credentials (``oauth_creds.json``). ``GEMINI_CLI_HOME`` moves the home
the CLI reads, as it does for the CLI.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from modelport.errors import ProviderError, UnsupportedOperationError
from modelport.providers.base import ChatChunk, ChatRequest, ChatResponse, Usage, content_text
from modelport.providers.cli import cli_json, cli_json_lines, find_cli

__all__ = [
    "chat",
    "ready",
    "render_prompt",
    "signed_in",
    "stream_chat",
    "usage_of_result",
    "usage_of_stats",
]

NAME = "gemini"

#: The auth types of the CLI that need nothing more than being selected.
_AMBIENT = frozenset({"cloud-shell", "compute-default-credentials"})

_HINT = "Use the Gemini API with `--access api`."

#: The longest prompt passed as an argument: Linux refuses one argument over 128 KiB.
MAX_PROMPT_BYTES = 120_000


def _settings(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _selected(settings: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    security = settings.get("security")
    auth = security.get("auth") if isinstance(security, dict) else None
    if isinstance(auth, dict) and auth.get("selectedType"):
        return str(auth["selectedType"])
    if settings.get("selectedAuthType"):
        return str(settings["selectedAuthType"])
    # What the CLI itself falls back to in headless mode.
    if env.get("GOOGLE_GENAI_USE_GCA") == "true":
        return "oauth-personal"
    if env.get("GOOGLE_GENAI_USE_VERTEXAI") == "true":
        return "vertex-ai"
    if env.get("GEMINI_API_KEY"):
        return "gemini-api-key"
    if env.get("CLOUD_SHELL") == "true" or env.get("GEMINI_CLI_USE_COMPUTE_ADC") == "true":
        return "compute-default-credentials"
    return None


def signed_in(env: Mapping[str, str] | None = None) -> bool:
    """Whether the ``gemini`` CLI has a sign-in it can use, from its own files."""
    env = os.environ if env is None else env
    home = Path(env.get("GEMINI_CLI_HOME") or env.get("HOME") or Path.home())
    folder = home / ".gemini"
    settings = _settings(folder)
    security = settings.get("security")
    auth = security.get("auth") if isinstance(security, dict) else None
    if isinstance(auth, dict) and auth.get("useExternal"):
        return True
    selected = _selected(settings, env)
    if selected == "oauth-personal":
        return any((folder / n).is_file() for n in ("oauth_creds.json", "gemini-credentials.json"))
    if selected == "gemini-api-key":
        return bool(env.get("GEMINI_API_KEY"))
    if selected == "vertex-ai":
        return bool(env.get("GOOGLE_API_KEY")) or bool(
            env.get("GOOGLE_CLOUD_PROJECT") and env.get("GOOGLE_CLOUD_LOCATION")
        )
    return selected in _AMBIENT


def ready() -> bool:
    """Whether ``gemini`` is on PATH and signed in."""
    return find_cli(NAME) is not None and signed_in()


def _refuse(what: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(f"The gemini CLI cannot take {what}.", hint=_HINT)


def _check(request: ChatRequest) -> None:
    if request.tools or request.tool_choice not in (None, "none", "auto"):
        raise _refuse("tools")
    if request.response_format and request.response_format.get("type") != "text":
        raise _refuse("`response_format`")
    for name in ("max_tokens", "temperature", "top_p", "seed"):
        if getattr(request, name) is not None:
            raise _refuse(f"`{name}`")
    if request.stop:
        raise _refuse("`stop`")
    for name, value in request.options.items():
        if value is not None and name != "stream_options":
            raise _refuse(f"`{name}`")


def render_prompt(request: ChatRequest) -> str:
    """The conversation as the one prompt the CLI takes (see the module's docstring)."""
    _check(request)
    turns: list[tuple[str, str]] = []
    for message in request.messages:
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            continue
        if role not in ("user", "assistant") or message.get("tool_calls"):
            raise _refuse("tool calls or tool results")
        if isinstance(content, list) and any(p.get("type") != "text" for p in content):
            raise _refuse("images or other non-text parts")
        turns.append(("User" if role == "user" else "Assistant", content_text(content)))
    if not turns or turns[-1][0] != "User":
        raise UnsupportedOperationError(
            "The gemini CLI answers a user message: the last message must be the user's.",
            hint=_HINT,
        )
    system = request.system_text()
    if len(turns) == 1 and not system:
        return turns[0][1]
    lines = ["Continue this conversation: write the assistant's answer to the last user message."]
    if system:
        lines.append(f"System: {system}")
    lines.extend(f"{who}: {text}" for who, text in turns)
    return "\n\n".join(lines)


def _argv(request: ChatRequest, output: str) -> list[str]:
    path = find_cli(NAME)
    if path is None:
        raise ProviderError(
            "The gemini CLI is not on PATH.",
            provider=NAME,
            hint="Install it (`npm install -g @google/gemini-cli`), or use `--access api`.",
        )
    prompt = render_prompt(request)
    if len(prompt.encode()) > MAX_PROMPT_BYTES:
        raise UnsupportedOperationError(
            f"The conversation is too long for the gemini CLI's prompt argument "
            f"({len(prompt.encode()) // 1000} kB; at most {MAX_PROMPT_BYTES // 1000} kB).",
            hint=_HINT,
        )
    # `--prompt=` keeps a prompt that starts with "-" from being read as a flag.
    return [path, "--output-format", output, "--model", request.model, f"--prompt={prompt}"]


def _failed(error: Any) -> ProviderError:
    said = error.get("message") if isinstance(error, dict) else error
    return ProviderError(
        f"The gemini CLI failed: {str(said or 'no message').strip()[:300]}",
        provider=NAME,
        hint="Run `gemini` by hand to see why, or use the API with `--access api`.",
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _tokens(metrics: Any) -> dict[str, Any]:
    tokens = metrics.get("tokens") if isinstance(metrics, dict) else None
    return tokens if isinstance(tokens, dict) else {}


def usage_of_stats(stats: Any) -> tuple[Usage, str | None]:
    """The usage in ``--output-format json`` stats (summed over models), and the model."""
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict) or not models:
        return Usage(), None
    prompt = answer = thoughts = cached = tool = 0
    for tokens in (_tokens(metrics) for metrics in models.values()):
        prompt += _int(tokens.get("prompt"))
        answer += _int(tokens.get("candidates"))
        thoughts += _int(tokens.get("thoughts"))
        cached += _int(tokens.get("cached"))
        tool += _int(tokens.get("tool"))
    usage = Usage(
        input_tokens=prompt + tool,
        output_tokens=answer + thoughts,
        cached_tokens=cached,
        reasoning_tokens=thoughts,
    )
    # The CLI may call a second, small model for itself (routing); the answer is the
    # model with the most output.
    main = max(models, key=lambda m: _int(_tokens(models[m]).get("candidates")))
    return usage, str(main)


def usage_of_result(stats: Any) -> Usage | None:
    """The usage in a stream-json ``result`` event's stats.

    These stats do not count thoughts apart: the part of ``total_tokens`` that is neither
    input nor output (Gemini's total is prompt + answer + thoughts + tool-use prompt) is
    counted as reasoning, inside the output, as the API path counts it.
    """
    if not isinstance(stats, dict):
        return None
    prompt, answer = _int(stats.get("input_tokens")), _int(stats.get("output_tokens"))
    rest = max(0, _int(stats.get("total_tokens")) - prompt - answer)
    return Usage(
        input_tokens=prompt,
        output_tokens=answer + rest,
        cached_tokens=_int(stats.get("cached")),
        reasoning_tokens=rest,
    )


async def chat(request: ChatRequest, *, timeout: float) -> ChatResponse:
    """One whole answer from ``gemini --output-format json``."""
    payload = await cli_json(NAME, _argv(request, "json"), timeout=timeout)
    if not isinstance(payload, dict):
        raise _failed("it printed JSON that is not an object")
    if payload.get("error"):
        raise _failed(payload["error"])
    usage, model = usage_of_stats(payload.get("stats"))
    return ChatResponse(
        message={"role": "assistant", "content": str(payload.get("response") or "")},
        finish_reason="stop",
        usage=usage,
        model=model or request.model,
        id=str(payload.get("session_id") or ""),
        access="cli",
    )


async def stream_chat(request: ChatRequest, *, timeout: float) -> AsyncIterator[ChatChunk]:
    """The answer as ``gemini --output-format stream-json`` prints it."""
    argv = _argv(request, "stream-json")
    model = request.model
    first = True
    usage: Usage | None = None
    async for event in cli_json_lines(NAME, argv, timeout=timeout):
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "init":
            model = str(event.get("model") or model)
        elif kind == "message" and event.get("role") == "assistant" and event.get("content"):
            delta: dict[str, Any] = {"content": str(event["content"])}
            if first:
                delta = {"role": "assistant", **delta}
                first = False
            yield ChatChunk(delta=delta, model=model)
        elif kind == "result":
            if event.get("status") == "error":
                raise _failed(event.get("error"))
            usage = usage_of_result(event.get("stats"))
    yield ChatChunk(
        delta={"role": "assistant"} if first else {},
        finish_reason="stop",
        usage=usage,
        model=model,
    )
