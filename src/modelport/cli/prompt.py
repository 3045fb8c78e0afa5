"""``modelport prompt`` and ``modelport chat``: talk to a hosted or local model."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from modelport.cli._options import JsonOpt

__all__ = ["register"]

SystemOpt = Annotated[
    str | None, typer.Option("--system", "-s", help="A system prompt for the model.")
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        help="A request option as NAME=VALUE, e.g. -o temperature=0.2 -o max_tokens=200 "
        "(JSON values: numbers, true, lists).",
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="Use this API key (beats the environment and the key store); beware of shell "
        "history, prefer `modelport keys set`.",
    ),
]
AccessOpt = Annotated[
    str | None,
    typer.Option(
        "--access",
        help="Reach the provider through its API, its signed-in vendor CLI, or whichever "
        "works (auto; default: MODELPORT_PROVIDER_ACCESS).",
    ),
]
FallbackOpt = Annotated[
    list[str] | None,
    typer.Option("--fallback", help="A model to try when the previous one fails (repeatable)."),
]


#: Names the commands set themselves: an option may not override them.
_RESERVED = frozenset(
    {"model", "messages", "stream", "origin", "key", "access", "fallbacks", "system", "local"}
)


def _options(pairs: list[str] | None) -> dict[str, Any]:
    """``-o name=value`` pairs as request options (values read as JSON when they parse)."""
    from modelport.errors import InvalidValueError

    options: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidValueError(
                f"Option {pair!r} is not NAME=VALUE.", hint="Write it as -o temperature=0.2."
            )
        if name in _RESERVED:
            raise InvalidValueError(
                f"`{name}` is not a request option.",
                hint="Use the flag for it: --stream, --key, --access, --fallback or -s.",
            )
        try:
            options[name] = json.loads(raw)
        except ValueError:
            options[name] = raw
    return options


def _stats_line(response: Any) -> str:
    usage = response.usage
    parts = [f"{response.model} via {response.access}"]
    if usage is not None and usage.input_tokens is not None:
        parts.append(f"{usage.input_tokens} in / {usage.output_tokens or 0} out tokens")
    if response.cost_usd is not None:
        parts.append(f"${response.cost_usd:.6f}")
    else:
        parts.append("cost unknown")
    if response.latency_ms is not None:
        parts.append(f"{response.latency_ms / 1000:.2f} s")
    if response.failed:
        parts.append("after " + ", ".join(name for name, _ in response.failed) + " failed")
    return " · ".join(parts)


def _document(response: Any) -> dict[str, Any]:
    text = response.text()  # the answer first: the bookkeeping fills in as it completes
    usage = response.usage
    return {
        "model": response.model,
        "provider": response.provider,
        "access": response.access,
        "text": text,
        "tool_calls": response.tool_calls,
        "finish_reason": response.finish_reason,
        "usage": None if usage is None else usage.to_openai(),
        "cost_usd": response.cost_usd,
        "latency_ms": response.latency_ms,
        "fallback_from": [name for name, _ in response.failed],
    }


def _show(response: Any, *, stream: bool) -> None:
    """Write an answer: streamed piece by piece, or whole; the stats line on stderr."""
    if stream:
        for piece in response:
            sys.stdout.write(piece)
            sys.stdout.flush()
    else:
        sys.stdout.write(response.text())
    calls = response.tool_calls
    for call in calls:
        function = call.get("function", {})
        sys.stdout.write(f"\n[tool call] {function.get('name')}({function.get('arguments')})")
    sys.stdout.write("\n")
    sys.stdout.flush()
    if sys.stderr.isatty():
        sys.stderr.write(_stats_line(response) + "\n")


def prompt(
    model: Annotated[str, typer.Argument(help="A hosted (openai:gpt-4o) or local model.")],
    text: Annotated[
        str | None, typer.Argument(help="The prompt; read from stdin when left out or piped.")
    ] = None,
    system: SystemOpt = None,
    option: OptionOpt = None,
    key: KeyOpt = None,
    access: AccessOpt = None,
    fallback: FallbackOpt = None,
    stream: Annotated[
        bool | None,
        typer.Option("--stream/--no-stream", help="Stream the answer (default: on a terminal)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Ask a model once: hosted models with their keys, local ones on ONNX Runtime."""
    from modelport.api import prompt as ask
    from modelport.errors import InvalidValueError

    if json_ and stream:
        raise InvalidValueError(
            "--json prints the whole answer at the end; it cannot stream.",
            hint="Leave out --stream, or --json.",
        )
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if piped is not None and piped.strip():
        text = piped.rstrip("\n") + ("\n\n" + text if text else "")
    if not text:
        raise InvalidValueError(
            "There is no prompt.",
            hint='Give it as an argument, or pipe it: echo "hi" | modelport prompt MODEL',
        )
    response = ask(
        model,
        text,
        system=system,
        key=key,
        access=access,
        fallbacks=fallback,
        stream=False if json_ else (sys.stdout.isatty() if stream is None else stream),
        origin="cli",
        **_options(option),
    )
    if json_:
        sys.stdout.write(json.dumps(_document(response), indent=2, ensure_ascii=False) + "\n")
        return
    _show(response, stream=sys.stdout.isatty() if stream is None else stream)


def chat(
    model: Annotated[str, typer.Argument(help="A hosted (anthropic:claude-…) or local model.")],
    system: SystemOpt = None,
    option: OptionOpt = None,
    key: KeyOpt = None,
    access: AccessOpt = None,
) -> None:
    """Talk with a model turn by turn; it sees the whole conversation (`exit` ends it)."""
    from modelport.api import chat as start_chat
    from modelport.errors import ModelportError

    conversation = start_chat(
        model, system=system, key=key, access=access, origin="cli", **_options(option)
    )
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        sys.stderr.write(
            f"Chatting with {model}. Type 'exit' or Ctrl-D to end, '!reset' to forget.\n"
        )
    while True:
        if interactive:
            sys.stderr.write("> ")
            sys.stderr.flush()
        line = sys.stdin.readline() if sys.stdin is not None else ""
        if not line:
            break
        said = line.strip()
        if not said:
            continue
        if said in ("exit", "quit", "!exit"):
            break
        if said == "!reset":
            conversation.messages = [m for m in conversation.messages if m["role"] == "system"]
            continue
        try:
            _show(conversation.prompt(said, stream=True), stream=True)
        except ModelportError as e:  # one failed turn does not end the conversation
            sys.stdout.write("\n")
            sys.stderr.write(f"Error: {e.one_line()}\n")
            if not interactive:
                raise


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("prompt")(prompt)
    app.command("chat")(chat)
