"""The Anthropic provider through the real ``anthropic`` SDK against a loopback Messages API,
and through Claude Code's CLI (a stand-in ``claude`` on PATH)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import (
    InvalidValueError,
    KeyRejectedError,
    ModelRetiredError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnsupportedOperationError,
)
from modelport.providers.anthropic import AnthropicProvider
from modelport.providers.anthropic_messages import DEFAULT_MAX_TOKENS
from modelport.providers.base import ChatChunk, ChatRequest, ChatResponse, Credentials, get_provider
from modelport.settings import PROVIDER_URLS
from tests.upstreams.anthropic_server import AnthropicServer
from tests.upstreams.base import running

BIN = Path(__file__).parent / "bin"
KEY = Credentials("test-key", "argument")
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with running(AnthropicServer()) as s:
        yield s


def provider(server: AnthropicServer, **kwargs: Any) -> AnthropicProvider:
    return AnthropicProvider(base_url=server.base_url, **kwargs)


def ask(text: str = "Say hello", **fields: Any) -> ChatRequest:
    return ChatRequest(model="claude-test", messages=[{"role": "user", "content": text}], **fields)


def chat(p: AnthropicProvider, request: ChatRequest, creds: Credentials = KEY) -> ChatResponse:
    return asyncio.run(p.call(lambda: p.chat(request, creds), creds))


def stream(p: AnthropicProvider, request: ChatRequest, creds: Credentials = KEY) -> list[ChatChunk]:
    async def go() -> list[ChatChunk]:
        return [c async for c in p.call_stream(lambda: p.stream_chat(request, creds), creds)]

    return asyncio.run(go())


def body(server: AnthropicServer, n: int = -1) -> dict[str, Any]:
    seen = server.requests("/v1/messages")[n].body
    assert isinstance(seen, dict)
    return seen


def reassembled(chunks: list[ChatChunk]) -> list[dict[str, Any]]:
    """The tool calls a stream's deltas add up to, in OpenAI's message shape."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for piece in chunk.delta.get("tool_calls") or []:
            call = calls.setdefault(
                piece["index"],
                {"id": None, "type": "function", "function": {"name": None, "arguments": ""}},
            )
            call["id"] = piece.get("id") or call["id"]
            function = piece.get("function") or {}
            call["function"]["name"] = function.get("name") or call["function"]["name"]
            call["function"]["arguments"] += function.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


# -- the registry ----------------------------------------------------------------------------


def test_registered_through_the_entry_point() -> None:
    found = get_provider("anthropic")
    assert isinstance(found, AnthropicProvider)
    assert (found.label, found.env_keys, found.cli) == (
        "Anthropic",
        ("ANTHROPIC_API_KEY",),
        "claude",
    )
    # The tests point every provider at a closed port; the default is the vendor's API.
    assert found.base_url == "http://127.0.0.1:9"
    assert PROVIDER_URLS["anthropic"] == "https://api.anthropic.com"


def test_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.settings import reset_settings

    monkeypatch.setenv("MODELPORT_ANTHROPIC_URL", "http://127.0.0.1:9/anthropic")
    reset_settings()
    try:
        assert AnthropicProvider().base_url == "http://127.0.0.1:9/anthropic"
    finally:
        monkeypatch.delenv("MODELPORT_ANTHROPIC_URL")
        reset_settings()


# -- chat --------------------------------------------------------------------------------------


def test_text_chat(server: AnthropicServer) -> None:
    done = chat(provider(server), ask("Say hello to me"))
    assert done.text == "Hello from claude-test."
    assert done.message == {"role": "assistant", "content": "Hello from claude-test."}
    assert (done.finish_reason, done.model, done.id, done.access) == (
        "stop",
        "claude-test",
        "msg_loopback",
        "api",
    )
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.cached_tokens) == (
        4,
        3,
        0,
    )
    seen = server.requests("/v1/messages")[0]
    assert server.key_of(seen) == "test-key"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", seen.headers["anthropic-version"])
    assert seen.body == {
        "model": "claude-test",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello to me"}]}],
    }


def test_system_and_developer_messages_become_the_system_text(server: AnthropicServer) -> None:
    request = ChatRequest(
        model="claude-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Hi"},
        ],
        max_tokens=50,
        options={"user": "user-7"},
    )
    done = chat(provider(server), request)
    sent = body(server)
    assert sent["system"] == "Be brief.\n\nAnswer in English."
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["max_tokens"] == 50
    assert sent["metadata"] == {"user_id": "user-7"}
    # The system words are counted as input by the server, so they reached it.
    assert done.usage.input_tokens == 2 + 3 + 1


def test_tools_give_tool_calls(server: AnthropicServer) -> None:
    server.tool_input = {"city": "Lyon"}
    done = chat(provider(server), ask("Weather in Lyon?", tools=[WEATHER]))
    assert done.finish_reason == "tool_calls"
    assert done.message["content"] is None
    assert done.message["tool_calls"] == [
        {
            "id": "toolu_loopback0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Lyon"})},
        }
    ]
    assert body(server)["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice(server: AnthropicServer, choice: Any, sent: dict[str, Any]) -> None:
    done = chat(provider(server), ask(tools=[WEATHER], tool_choice=choice))
    assert body(server)["tool_choice"] == sent
    assert done.finish_reason == ("stop" if choice == "none" else "tool_calls")


def test_parallel_tool_calls_off(server: AnthropicServer) -> None:
    chat(provider(server), ask(tools=[WEATHER], options={"parallel_tool_calls": False}))
    assert body(server)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tool_calls_and_results_round_trip(server: AnthropicServer) -> None:
    p = provider(server)
    first = chat(p, ask("Weather in Paris and Rome?", tools=[WEATHER]))
    call = first.message["tool_calls"][0]
    second_call = {
        "id": "toolu_second",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
    }
    history = [
        {"role": "system", "content": "You check the weather."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [call, second_call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C sunny"},
        {
            "role": "tool",
            "tool_call_id": "toolu_second",
            "content": [{"type": "text", "text": "21C"}],
        },
    ]
    done = chat(p, ChatRequest(model="claude-test", messages=history, tools=[WEATHER]))
    assert done.text == "The tool said: 18C sunny 21C."
    assert done.finish_reason == "stop"
    sent = body(server)
    assert sent["system"] == "You check the weather."
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_second",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call["id"], "content": "18C sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_second", "content": "21C"},
            ],
        },
    ]


def test_a_user_message_after_tool_results_shares_their_turn(server: AnthropicServer) -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": "rain"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    chat(provider(server), ChatRequest(model="claude-test", messages=history))
    turns = body(server)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "rain"},
        {"type": "text", "text": "And tomorrow?"},
    ]


def test_images(server: AnthropicServer) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    chat(
        provider(server),
        ChatRequest(model="claude-test", messages=[{"role": "user", "content": content}]),
    )
    assert body(server)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_stop_sequences_and_max_tokens(server: AnthropicServer) -> None:
    p = provider(server)
    server.reply = "one two three four"
    done = chat(p, ask(stop=["three"]))
    assert body(server)["stop_sequences"] == ["three"]
    assert (done.text, done.finish_reason) == ("one two ", "stop")
    done = chat(p, ask(max_tokens=2))
    assert (done.text, done.finish_reason, done.usage.output_tokens) == ("one two", "length", 2)


def test_refusal_is_a_content_filter_finish(server: AnthropicServer) -> None:
    done = chat(
        provider(server), ChatRequest(model="refuse-x", messages=[{"role": "user", "content": "x"}])
    )
    assert done.finish_reason == "content_filter"
    assert done.message["content"] is None
    assert done.message["refusal"] == "I can't help with that."


def test_json_schema_uses_structured_output(server: AnthropicServer) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    done = chat(provider(server), ask(response_format=fmt))
    assert body(server)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert json.loads(done.text) == {"answer": 42}


def test_json_object_is_a_forced_tool_whose_input_is_the_answer(server: AnthropicServer) -> None:
    p = provider(server)
    server.tool_input = {"name": "Ada", "born": 1815}
    done = chat(p, ask("Who? Answer in JSON.", response_format={"type": "json_object"}))
    sent = body(server)
    assert sent["tool_choice"] == {"type": "tool", "name": "json_answer"}
    assert sent["tools"][0]["input_schema"] == {"type": "object"}
    assert json.loads(done.text) == {"name": "Ada", "born": 1815}
    assert done.finish_reason == "stop"
    assert "tool_calls" not in done.message
    chunks = stream(p, ask("Who? Answer in JSON.", response_format={"type": "json_object"}))
    assert json.loads("".join(c.delta.get("content") or "" for c in chunks)) == server.tool_input
    assert not any(c.delta.get("tool_calls") for c in chunks)
    assert chunks[-1].finish_reason == "stop"


def test_json_object_with_tools_is_refused(server: AnthropicServer) -> None:
    with pytest.raises(UnsupportedOperationError, match="json_object"):
        chat(provider(server), ask(tools=[WEATHER], response_format={"type": "json_object"}))
    assert server.requests() == []


def test_reasoning_effort_thinks_with_a_budget(server: AnthropicServer) -> None:
    p = provider(server)
    done = chat(p, ask(options={"reasoning_effort": "high"}))
    sent = body(server)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert sent["max_tokens"] == 16384 + DEFAULT_MAX_TOKENS
    assert done.message["reasoning_content"] == "Let me think it through."
    assert done.text == "Hello from claude-test."
    chat(p, ask(max_tokens=3000, options={"reasoning_effort": "low"}))
    assert (body(server)["thinking"]["budget_tokens"], body(server)["max_tokens"]) == (1024, 3000)
    chunks = stream(p, ask(options={"reasoning_effort": "medium"}))
    assert (
        "".join(c.delta.get("reasoning_content") or "" for c in chunks)
        == "Let me think it through."
    )
    assert "".join(c.delta.get("content") or "" for c in chunks) == "Hello from claude-test."
    with pytest.raises(InvalidValueError, match="must exceed the thinking budget"):
        chat(p, ask(max_tokens=1000, options={"reasoning_effort": "medium"}))


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"seed": 7}, "seed"),
        ({"temperature": 0.2}, "temperature"),
        ({"top_p": 0.9}, "top_p"),
        ({"options": {"top_k": 5}}, "top_k"),
        ({"options": {"presence_penalty": 0.5}}, "presence_penalty"),
        ({"options": {"logprobs": True}}, "logprobs"),
        ({"options": {"n": 2}}, "n"),
    ],
)
def test_parameters_anthropic_lacks_are_refused(
    server: AnthropicServer, fields: dict[str, Any], name: str
) -> None:
    with pytest.raises(UnsupportedOperationError) as caught:
        chat(provider(server), ask(**fields))
    assert str(caught.value) == f"Anthropic does not take `{name}`."
    assert server.requests() == []  # refused before anything was sent


# -- streaming ---------------------------------------------------------------------------------


def test_streaming_text(server: AnthropicServer) -> None:
    server.reply = "A streamed answer in words"
    chunks = stream(provider(server), ask("Say hello"))
    assert chunks[0].delta == {"role": "assistant", "content": ""}
    assert "".join(c.delta.get("content") or "" for c in chunks) == "A streamed answer in words"
    assert len([c for c in chunks if c.delta.get("content")]) == 5
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (2, 5)
    assert body(server)["stream"] is True


def test_streamed_tool_call_reassembles_to_the_whole_one(server: AnthropicServer) -> None:
    p = provider(server)
    server.tool_input = {"city": "Paris", "unit": "celsius", "days": [1, 2, 3]}
    whole = chat(p, ask("Weather?", tools=[WEATHER]))
    chunks = stream(p, ask("Weather?", tools=[WEATHER]))
    pieces = [c for c in chunks if c.delta.get("tool_calls")]
    assert len(pieces) >= 3  # the name first, then the arguments in pieces
    first = pieces[0].delta["tool_calls"][0]
    assert (first["index"], first["id"], first["function"]["name"]) == (
        0,
        "toolu_loopback0",
        "get_weather",
    )
    assert reassembled(chunks) == whole.message["tool_calls"]
    assert chunks[-1].finish_reason == "tool_calls"


def test_usage_counts_cached_input(server: AnthropicServer) -> None:
    p = provider(server)
    server.cached_tokens, server.cache_creation_tokens = 3, 2
    done = chat(p, ask("one two three four five six"))
    assert (done.usage.input_tokens, done.usage.cached_tokens, done.usage.output_tokens) == (
        6,
        3,
        3,
    )
    assert done.usage.to_openai()["prompt_tokens_details"] == {"cached_tokens": 3}
    last = stream(p, ask("one two three four five six"))[-1]
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.cached_tokens, last.usage.output_tokens) == (
        6,
        3,
        3,
    )


def test_an_error_event_mid_stream_is_the_overload_it_names(server: AnthropicServer) -> None:
    server.stream_error_after = 3
    with pytest.raises(ProviderUnavailableError, match="529") as caught:
        stream(provider(server), ask())
    assert caught.value.status == 529


# -- errors and retries --------------------------------------------------------------------------


def test_wrong_key_is_rejected_without_showing_it(server: AnthropicServer) -> None:
    secret = "sk-ant-api03-wrong-secret-value"
    creds = Credentials(secret, "$ANTHROPIC_API_KEY")
    with pytest.raises(KeyRejectedError) as caught:
        chat(provider(server), ask(), creds)
    error = caught.value
    assert str(error) == "The Anthropic key is rejected (401)."
    assert "$ANTHROPIC_API_KEY" in error.one_line()
    for text in (str(error), error.one_line(), repr(error), repr(creds), str(creds)):
        assert secret not in text
    assert len(server.requests()) == 1  # a rejected key is not retried


def test_429_waits_out_retry_after_then_succeeds(server: AnthropicServer) -> None:
    server.fail(
        429,
        message="Number of request tokens has exceeded your rate limit.",
        headers={"retry-after": "0.3"},
    )
    started = time.monotonic()
    done = chat(provider(server), ask())
    assert done.text == "Hello from claude-test."
    assert time.monotonic() - started >= 0.3
    assert len(server.requests()) == 2


def test_429_through_every_retry_says_so(server: AnthropicServer) -> None:
    server.fail(429, message="Rate limited.", headers={"retry-after": "0.05"}, times=5)
    with pytest.raises(ProviderRateLimitError) as caught:
        chat(provider(server), ask())
    assert (
        str(caught.value)
        == "Anthropic is rate-limiting this key (429: Rate limited). Retry after 0.05 s."
    )
    assert caught.value.retry_after == 0.05


def test_529_overloaded_is_retried(server: AnthropicServer) -> None:
    server.fail(529, message="Overloaded")
    chunks = stream(provider(server), ask())
    assert "".join(c.delta.get("content") or "" for c in chunks) == "Hello from claude-test."
    assert len(server.requests()) == 2
    server.fail(529, message="Overloaded", times=5)
    with pytest.raises(ProviderUnavailableError) as caught:
        chat(provider(server), ask())
    assert str(caught.value) == "Anthropic answered 529 (Overloaded)."


def test_timeout(server: AnthropicServer) -> None:
    server.fail(500, stall=3.0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        chat(provider(server, timeout=0.5), ask())
    assert time.monotonic() - started < 2.5
    assert str(caught.value) == "Anthropic sent no answer within 0.5 s."


def test_unknown_model(server: AnthropicServer) -> None:
    with pytest.raises(ModelRetiredError, match="404"):
        chat(
            provider(server),
            ChatRequest(model="retired-1", messages=[{"role": "user", "content": "x"}]),
        )


def test_unreachable() -> None:
    p = AnthropicProvider(base_url="http://127.0.0.1:9", timeout=5)
    p.retries = 0
    with pytest.raises(ProviderUnavailableError, match="cannot be reached"):
        chat(p, ask())


def test_no_embeddings_or_rerank() -> None:
    p = AnthropicProvider(base_url="http://127.0.0.1:9")
    with pytest.raises(UnsupportedOperationError, match="no embeddings"):
        asyncio.run(p.embed("m", ["a"], KEY))
    with pytest.raises(UnsupportedOperationError, match="no rerank"):
        asyncio.run(p.rerank("m", "q", ["a"], KEY))


# -- Claude Code's CLI -----------------------------------------------------------------------------


@pytest.fixture
def claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in ``claude`` first on PATH; returns the file its runs are recorded in."""
    log = tmp_path / "claude-argv.jsonl"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_ARGV", str(log))
    monkeypatch.delenv("MODELPORT_FAKE_CLAUDE_SIGNED_IN", raising=False)
    monkeypatch.delenv("MODELPORT_FAKE_CLAUDE_VERSION", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    return log


def runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_cli_ready_when_signed_in(claude: Path) -> None:
    p = AnthropicProvider()
    assert p.cli_ready() is True
    assert [r["argv"] for r in runs(claude)] == [["--version"], ["auth", "status"]]
    assert p.cli_ready() is True
    assert len(runs(claude)) == 2  # asked once per process


def test_cli_not_ready_when_signed_out(claude: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_SIGNED_IN", "0")
    assert AnthropicProvider().cli_ready() is False


def test_cli_not_ready_without_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert AnthropicProvider().cli_ready() is False


def test_an_older_cli_is_judged_by_its_credentials_file(
    claude: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_VERSION", "2.0.14")
    assert AnthropicProvider().cli_ready() is False
    (tmp_path / "claude-config").mkdir()
    (tmp_path / "claude-config" / ".credentials.json").write_text("{}")
    assert AnthropicProvider().cli_ready() is True
    # An older CLI would take "auth status" as a prompt: it is never asked.
    assert all(r["argv"] == ["--version"] for r in runs(claude))


def test_cli_chat_json(claude: Path) -> None:
    request = ChatRequest(
        model="sonnet",
        messages=[
            {"role": "system", "content": "-Be brief."},
            {"role": "user", "content": "--help me out"},
        ],
        max_tokens=100,
    )
    done = asyncio.run(AnthropicProvider().cli_chat(request))
    assert done.message == {"role": "assistant", "content": "Hello from sonnet."}
    assert (done.access, done.finish_reason, done.model) == (
        "cli",
        "stop",
        "claude-sonnet-4-5-20250929",
    )
    assert done.id == "3f1c2a90-5b7d-4e8f-9a10-loopback0001"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (5, 3)
    [run] = runs(claude)
    assert run["argv"] == [
        "-p",
        "--output-format=json",
        "--model=sonnet",
        "--system-prompt=-Be brief.",
        "--tools=",
        "--no-session-persistence",
        "--",
        "--help me out",
    ]
    assert run["env"]["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "100"


def test_cli_stream_json(claude: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_CACHED", "1")

    async def go() -> list[ChatChunk]:
        p = AnthropicProvider()
        return [
            c
            async for c in p.cli_stream_chat(
                ask("Say hello there", options={"reasoning_effort": "low"})
            )
        ]

    chunks = asyncio.run(go())
    assert chunks[0].delta["role"] == "assistant"
    texts = [c.delta["content"] for c in chunks if c.delta.get("content")]
    assert texts == ["Hello", " from", " claude-test."]  # token by token, and only once
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.cached_tokens, last.usage.output_tokens) == (
        3,
        1,
        3,
    )
    assert last.model == "claude-test"
    [run] = runs(claude)
    assert run["argv"][:2] == ["-p", "--output-format=stream-json"]
    assert {"--verbose", "--include-partial-messages", "--system-prompt="} <= set(run["argv"])
    assert run["argv"][-2:] == ["--", "Say hello there"]
    assert run["env"]["MAX_THINKING_TOKENS"] == "1024"


def test_cli_renders_earlier_turns_as_a_transcript(claude: Path) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    asyncio.run(AnthropicProvider().cli_chat(ChatRequest(model="sonnet", messages=history)))
    prompt = runs(claude)[0]["argv"][-1]
    assert prompt == (
        "The conversation so far (answer its last message as the Assistant):\n\n"
        "User: My name is Ada.\n\nAssistant: Hello Ada.\n\nUser: What is my name?"
    )


def test_cli_signed_out_fails_in_one_sentence(
    claude: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_SIGNED_IN", "0")

    async def go() -> list[ChatChunk]:
        return [c async for c in AnthropicProvider().cli_stream_chat(ask())]

    with pytest.raises(ProviderError, match="Not logged in"):
        asyncio.run(go())
    with pytest.raises(ProviderError, match="claude"):
        asyncio.run(AnthropicProvider().cli_chat(ask()))


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER]},
        {"response_format": {"type": "json_object"}},
        {"temperature": 0.3},
        {"seed": 1},
        {"options": {"presence_penalty": 1.0}},
    ],
)
def test_cli_refuses_what_only_the_api_takes(claude: Path, fields: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOperationError) as caught:
        asyncio.run(AnthropicProvider().cli_chat(ask(**fields)))
    assert "--access api" in caught.value.one_line()
    assert not claude.exists()  # nothing was run
