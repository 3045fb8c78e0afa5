"""Claude Code's ``claude`` as the Anthropic provider's way in for a signed-in user.

``claude -p`` answers one prompt with the user's subscription, no key. It takes a prompt,
not a message list: earlier turns are written into the prompt as a transcript (the model
reads them as text, not as real turns), and what only the API takes (tools,
``response_format``, images, ``temperature``, ``stop`` ...) is refused with a pointer to
``--access api``. It runs as the bare model: an empty system prompt (or the caller's)
replaces Claude Code's agent prompt, no tools are on, and no session is saved.
``max_tokens`` and ``reasoning_effort`` go through Claude Code's own environment
variables (``CLAUDE_CODE_MAX_OUTPUT_TOKENS``, ``MAX_THINKING_TOKENS``).

Sign-in is read from ``claude auth status`` (JSON with ``loggedIn``; it spends no tokens)
on a CLI new enough to have it; on an older one, from ``ANTHROPIC_API_KEY`` or Claude
Code's credentials file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modelport.errors import InvalidValueError, ProviderError, UnsupportedOperationError
from modelport.providers.anthropic_messages import FINISH_REASONS, THINKING_BUDGETS, usage_of
from modelport.providers.base import ChatChunk, ChatRequest, ChatResponse, content_text
from modelport.providers.cli import find_cli

__all__ = ["chunks", "command", "response_of", "signed_in", "transcript"]

#: The first Claude Code with ``claude auth status`` (an older one takes "auth status" as
#: a prompt).
AUTH_STATUS_SINCE = (2, 1, 41)

#: Options a CLI call honours; every other one is refused.
_CLI_OPTIONS = frozenset({"reasoning_effort", "max_completion_tokens", "stream_options", "n"})


def _version(text: str) -> tuple[int, ...] | None:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in found.groups()) if found else None


def signed_in(path: str) -> bool:
    """Whether the ``claude`` at ``path`` is signed in, asked without spending tokens."""
    try:
        said = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=15, check=False
        )
        version = _version(said.stdout)
        if version is not None and version >= AUTH_STATUS_SINCE:
            said = subprocess.run(
                [path, "auth", "status"], capture_output=True, text=True, timeout=15, check=False
            )
            status = json.loads(said.stdout)
            # The JSON decides, whatever the exit status.
            if isinstance(status, dict) and isinstance(status.get("loggedIn"), bool):
                return bool(status["loggedIn"])
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    # An older CLI: a key in the environment, or its credentials file (Linux, Windows).
    if os.environ.get("ANTHROPIC_API_KEY"):
        return True
    home = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home() / ".claude")
    return (Path(home) / ".credentials.json").is_file()


def _refusal(what: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"Claude Code's CLI cannot take {what}.",
        hint="Use the API with `--access api`.",
    )


def transcript(messages: list[dict[str, Any]]) -> str:
    """The prompt: the last user message, after the earlier turns written out as text."""
    turns: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "tool" or message.get("tool_calls"):
            raise _refusal("tool calls in the conversation")
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") != "text" for p in content):
            raise _refusal("images or other non-text content")
        turns.append(("User" if role == "user" else "Assistant", content_text(content)))
    if not turns:
        raise InvalidValueError("The conversation has no user message.", param="messages")
    if len(turns) == 1 and turns[0][0] == "User":
        return turns[0][1]
    lines = ["The conversation so far (answer its last message as the Assistant):", ""]
    for who, text in turns:
        lines += [f"{who}: {text}", ""]
    return "\n".join(lines).rstrip()


def command(request: ChatRequest, *, output: str) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment of ``claude -p`` for a request (json or stream-json)."""
    if request.tools or request.tool_choice is not None:
        raise _refusal("tools")
    if request.response_format and request.response_format.get("type") != "text":
        raise _refusal("response_format")
    for name in ("temperature", "top_p", "seed"):
        if getattr(request, name) is not None:
            raise _refusal(f"`{name}`")
    if request.stop:
        raise _refusal("`stop`")
    options = request.options
    for name in options:
        if name not in _CLI_OPTIONS:
            raise _refusal(f"`{name}`")
    if options.get("n") not in (None, 1):
        raise _refusal("`n` above 1")
    # A claude started from inside a Claude Code session must not believe it is nested.
    env = {"CLAUDECODE": ""}
    effort = options.get("reasoning_effort")
    if effort is not None and effort != "none":
        if effort not in THINKING_BUDGETS:
            raise InvalidValueError(
                f"reasoning_effort {effort!r} is not low, medium or high.",
                param="reasoning_effort",
            )
        env["MAX_THINKING_TOKENS"] = str(THINKING_BUDGETS[effort])
    if max_tokens := request.max_tokens or options.get("max_completion_tokens"):
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(max_tokens)
    prompt = transcript(request.messages)
    # Values go with `=` and the prompt after `--`: text that starts with "-" is never
    # read as a flag, and no list-taking flag (`--tools`) swallows the prompt.
    argv = [
        find_cli("claude") or "claude",
        "-p",
        f"--output-format={output}",
        f"--model={request.model}",
        f"--system-prompt={request.system_text() or ''}",
        "--tools=",
        "--no-session-persistence",
    ]
    if output == "stream-json":
        # stream-json requires --verbose in print mode; partial messages stream the text.
        argv += ["--verbose", "--include-partial-messages"]
    return [*argv, "--", prompt], env


def _failed(result: dict[str, Any]) -> ProviderError:
    said = str(result.get("result") or result.get("subtype") or "no message").rstrip(".")
    status = result.get("api_error_status")
    return ProviderError(
        f"`claude` failed: {said}.",
        provider="anthropic",
        status=status if isinstance(status, int) else None,
        hint="Run `claude` to check its sign-in, or use the API with `--access api`.",
    )


def _finish(result: dict[str, Any]) -> str:
    return FINISH_REASONS.get(str(result.get("stop_reason") or "end_turn"), "stop")


def response_of(result: Any, request: ChatRequest) -> ChatResponse:
    """What ``--output-format json`` printed, as a ``ChatResponse``."""
    if not isinstance(result, dict) or result.get("type", "result") != "result":
        raise ProviderError(
            "`claude` printed JSON that is not a result.",
            provider="anthropic",
            hint="Check that the CLI is recent enough to print its answer as JSON.",
        )
    if result.get("is_error"):
        raise _failed(result)
    return ChatResponse(
        message={"role": "assistant", "content": str(result.get("result") or "")},
        finish_reason=_finish(result),
        usage=usage_of(result.get("usage")),
        # modelUsage is keyed by the full name of the model the alias reached.
        model=next(iter(result.get("modelUsage") or {}), request.model),
        id=str(result.get("session_id") or ""),
        access="cli",
    )


def _pieces(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI deltas one stream-json line carries.

    Only the partial messages (``stream_event``) are read: the whole ``assistant``
    message that follows them repeats their text.
    """
    if line.get("type") != "stream_event":
        return []
    event = line.get("event") or {}
    delta = event.get("delta") or {}
    if event.get("type") != "content_block_delta":
        return []
    if delta.get("type") == "text_delta":
        return [{"content": delta.get("text", "")}]
    if delta.get("type") == "thinking_delta":
        return [{"reasoning_content": delta.get("thinking", "")}]
    return []


async def chunks(lines: AsyncIterator[Any], request: ChatRequest) -> AsyncIterator[ChatChunk]:
    """What ``--output-format stream-json`` prints, as OpenAI chunks (usage on the last)."""
    model = request.model
    started = False
    async for line in lines:
        if not isinstance(line, dict):
            continue
        kind = line.get("type")
        if kind == "system" and line.get("subtype") == "init":
            model = str(line.get("model") or model)
            continue
        if kind == "result":
            if line.get("is_error"):
                raise _failed(line)
            if not started:
                yield ChatChunk(delta={"role": "assistant", "content": ""}, model=model)
            usage = usage_of(line.get("usage"))
            yield ChatChunk(finish_reason=_finish(line), usage=usage, model=model)
            return
        for delta in _pieces(line):
            if not started:
                delta = {"role": "assistant", **delta}
                started = True
            yield ChatChunk(delta=delta, model=model)
    raise ProviderError(
        "`claude` ended without a result.",
        provider="anthropic",
        hint="Run it by hand to see why, or use the API with `--access api`.",
    )
