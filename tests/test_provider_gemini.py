"""The Gemini provider: the real google-genai SDK against a loopback Gemini API, and a
stand-in ``gemini`` CLI (``tests/bin/gemini``) for the CLI half."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelport.errors import (
    ContentFilteredError,
    InvalidValueError,
    KeyRejectedError,
    ModelportError,
    ModelRetiredError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnsupportedOperationError,
)
from modelport.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Credentials,
    get_provider,
    provider_for_catalog,
)
from modelport.providers.gemini import GeminiProvider
from modelport.settings import PROVIDER_URLS
from tests.upstreams.base import running
from tests.upstreams.gemini_server import GeminiServer

T = TypeVar("T")

KEY = "AIzaSy-test-key-0123456789"
CREDS = Credentials(KEY, "a test")
BIN = Path(__file__).parent / "bin"
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def server() -> Iterator[GeminiServer]:
    with running(GeminiServer(key=KEY)) as s:
        yield s


def make(server: GeminiServer, **kw: Any) -> GeminiProvider:
    return GeminiProvider(base_url=server.url, **kw)


def ask(provider: GeminiProvider, request: ChatRequest, creds: Credentials = CREDS) -> ChatResponse:
    return asyncio.run(provider.call(lambda: provider.chat(request, creds), creds))


def stream(
    provider: GeminiProvider, request: ChatRequest, creds: Credentials = CREDS
) -> list[ChatChunk]:
    async def go() -> list[ChatChunk]:
        stream = provider.call_stream(lambda: provider.stream_chat(request, creds), creds)
        return [c async for c in stream]

    return asyncio.run(go())


def fails(make_call: Callable[[], Coroutine[Any, Any, T]]) -> ModelportError:
    """The one clear error a call raises."""
    with pytest.raises(ModelportError) as caught:
        asyncio.run(make_call())
    return caught.value


def body(server: GeminiServer, part: str = ":generateContent") -> dict[str, Any]:
    seen = server.requests(part)
    assert seen, f"the server saw no {part} request"
    assert isinstance(seen[-1].body, dict)
    return seen[-1].body


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- chat -------------------------------------------------------------------------------


def test_a_text_answer_with_its_usage_model_and_id(server: GeminiServer) -> None:
    done = ask(make(server), ChatRequest("gemini-2.0-flash", [user("Say hello to me")]))
    assert done.text == "Hello from gemini-2.0-flash."
    assert done.message["role"] == "assistant"
    assert done.finish_reason == "stop"
    assert done.model == "gemini-2.0-flash"
    assert done.id == "loopback-response"
    assert done.access == "api"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (4, 3)
    seen = server.requests(":generateContent")[0]
    assert seen.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert seen.headers["x-goog-api-key"] == KEY
    assert "authorization" not in seen.headers and not seen.query  # never in the URL
    assert seen.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello to me"}]}]


def test_system_and_developer_messages_become_the_system_instruction(
    server: GeminiServer,
) -> None:
    request = ChatRequest(
        "gemini-2.0-flash",
        [
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            user("And now?"),
        ],
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
    )
    ask(make(server), request)
    sent = body(server)
    assert sent["systemInstruction"]["parts"] == [{"text": "Be brief.\n\nAnswer in French."}]
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert [c["parts"][0]["text"] for c in sent["contents"]] == ["Hi", "Hello.", "And now?"]
    config = sent["generationConfig"]
    assert (config["temperature"], config["topP"], config["seed"]) == (0.2, 0.9, 7)
    assert config["stopSequences"] == ["END"]


def test_a_tool_call_comes_back_in_openai_shape_with_its_signature(server: GeminiServer) -> None:
    server.signature = b"\x01signed\xff"
    done = ask(
        make(server), ChatRequest("gemini-3-flash-preview", [user("Weather?")], tools=[WEATHER])
    )
    assert done.finish_reason == "tool_calls"
    assert done.message["content"] is None
    [call] = done.message["tool_calls"]
    assert call["id"] == "call_0" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    signature = call["extra_content"]["google"]["thought_signature"]
    assert base64.b64decode(signature) == b"\x01signed\xff"
    declaration = body(server)["tools"][0]["functionDeclarations"][0]
    # The JSON schema reaches Gemini untouched (minLength, additionalProperties and all).
    assert declaration["parameters_json_schema"] == WEATHER["function"]["parameters"]
    assert declaration["name"] == "get_weather"
    assert body(server)["toolConfig"]["functionCallingConfig"]["mode"] == "AUTO"


def test_a_multi_turn_conversation_with_tool_calls_and_results(server: GeminiServer) -> None:
    signature = base64.b64encode(b"sig-1").decode()
    messages = [
        user("Weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    "extra_content": {"google": {"thought_signature": signature}},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
    ]
    done = ask(make(server), ChatRequest("gemini-2.5-flash", messages, tools=[WEATHER]))
    assert done.text == "Hello from gemini-2.5-flash."  # the last turn is a result: text
    contents = body(server)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    calls = contents[1]["parts"]
    assert calls[0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": signature,
    }
    assert calls[1] == {"functionCall": {"name": "get_time", "args": {"city": "Rome"}}}
    # Both results in one content, each named after its call.
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
    ]


@pytest.mark.parametrize(
    ("choice", "mode", "allowed"),
    [
        ("none", "NONE", None),
        ("required", "ANY", None),
        ({"type": "function", "function": {"name": "get_weather"}}, "ANY", ["get_weather"]),
    ],
)
def test_tool_choice_becomes_the_function_calling_mode(
    server: GeminiServer, choice: Any, mode: str, allowed: list[str] | None
) -> None:
    ask(
        make(server),
        ChatRequest("gemini-2.0-flash", [user("Hi")], tools=[WEATHER], tool_choice=choice),
    )
    config = body(server)["toolConfig"]["functionCallingConfig"]
    assert config["mode"] == mode
    assert config.get("allowedFunctionNames") == allowed


def test_a_tool_result_without_its_call_is_refused_before_any_request(
    server: GeminiServer,
) -> None:
    request = ChatRequest(
        "gemini-2.0-flash", [user("Hi"), {"role": "tool", "tool_call_id": "x", "content": "1"}]
    )
    error = fails(lambda: make(server).chat(request, CREDS))
    assert isinstance(error, InvalidValueError) and "`x`" in str(error)
    assert server.requests() == []


def test_images_go_inline_and_links_are_refused(server: GeminiServer) -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    ask(make(server), ChatRequest("gemini-2.0-flash", [{"role": "user", "content": content}]))
    parts = body(server)["contents"][0]["parts"]
    blob = parts[1]["inlineData"]
    assert blob["data"] == png
    assert blob.get("mimeType", blob.get("mime_type")) == "image/png"  # the SDK sends either
    linked = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    request = ChatRequest("gemini-2.0-flash", [{"role": "user", "content": linked}])
    error = fails(lambda: make(server).chat(request, CREDS))
    assert isinstance(error, UnsupportedOperationError) and "data:" in str(error)


def test_a_json_schema_reaches_gemini_and_the_answer_is_that_json(server: GeminiServer) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    done = ask(
        make(server),
        ChatRequest(
            "gemini-2.0-flash", [user("Six times seven?")], response_format=response_format
        ),
    )
    assert json.loads(done.text) == {"answer": 42}
    config = body(server)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema
    ask(
        make(server),
        ChatRequest("gemini-2.0-flash", [user("JSON")], response_format={"type": "json_object"}),
    )
    config = body(server)["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "responseJsonSchema" not in config


def test_max_tokens_cuts_the_answer_with_finish_length(server: GeminiServer) -> None:
    server.reply = "one two three four five"
    done = ask(make(server), ChatRequest("gemini-2.0-flash", [user("Count")], max_tokens=2))
    assert done.text == "one two" and done.finish_reason == "length"
    assert body(server)["generationConfig"]["maxOutputTokens"] == 2


def test_usage_counts_thoughts_as_output_and_reports_cached_tokens(server: GeminiServer) -> None:
    server.thought = "Let me think."
    server.thoughts_tokens = 5
    server.cached_tokens = 3
    request = ChatRequest(
        "gemini-2.5-flash", [user("Hard question here")], options={"reasoning_effort": "high"}
    )
    done = ask(make(server), request)
    assert done.text == "Hello from gemini-2.5-flash."
    assert done.message["reasoning_content"] == "Let me think."
    usage = done.usage
    assert (usage.input_tokens, usage.output_tokens) == (3, 3 + 5)
    assert (usage.reasoning_tokens, usage.cached_tokens) == (5, 3)
    assert usage.to_openai()["completion_tokens_details"] == {"reasoning_tokens": 5}
    thinking = body(server)["generationConfig"]["thinkingConfig"]
    assert thinking == {"include_thoughts": True, "thinking_budget": 24576}


def test_reasoning_effort_is_a_thinking_level_on_gemini_3_and_refused_where_unclean(
    server: GeminiServer,
) -> None:
    ask(
        make(server),
        ChatRequest("gemini-3-flash-preview", [user("Hi")], options={"reasoning_effort": "low"}),
    )
    assert body(server)["generationConfig"]["thinkingConfig"]["thinking_level"] == "LOW"
    for model, effort in (("gemini-3-pro-preview", "none"), ("gemini-2.0-flash", "high")):
        request = ChatRequest(model, [user("Hi")], options={"reasoning_effort": effort})
        error = fails(lambda: make(server).chat(request, CREDS))  # noqa: B023
        assert isinstance(error, UnsupportedOperationError)
        assert "reasoning_effort" in str(error) and model in str(error)
    assert len(server.requests()) == 1


def test_an_option_gemini_does_not_have_is_refused_by_name(server: GeminiServer) -> None:
    request = ChatRequest("gemini-2.0-flash", [user("Hi")], options={"logit_bias": {"1": 2}})
    error = fails(lambda: make(server).chat(request, CREDS))
    assert isinstance(error, UnsupportedOperationError) and "`logit_bias`" in str(error)
    assert error.hint
    assert server.requests() == []
    ask(make(server), ChatRequest("gemini-2.0-flash", [user("Hi")], options={"top_k": 4}))
    assert body(server)["generationConfig"]["topK"] == 4


def test_the_vertex_settings_and_keys_of_the_environment_are_not_used(
    server: GeminiServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "someone-elses-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSy-environment-google")
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-environment-gemini")
    with caplog.at_level(logging.INFO):
        done = ask(make(server), ChatRequest("gemini-2.0-flash", [user("Hi")]))
    assert done.text == "Hello from gemini-2.0-flash."
    seen = server.requests()[0]
    assert seen.path.startswith("/v1beta/models/")
    assert seen.headers["x-goog-api-key"] == KEY  # the key it was given, not the environment's
    assert "GOOGLE_API_KEY" not in caplog.text  # nor the SDK's notice that it would use one


# -- streaming ---------------------------------------------------------------------------


def test_a_streamed_text_answer(server: GeminiServer) -> None:
    server.reply = "The sky is blue today"
    chunks = stream(make(server), ChatRequest("gemini-2.0-flash", [user("Sky colour?")]))
    assert chunks[0].delta["role"] == "assistant"
    texts = [c.delta.get("content", "") for c in chunks]
    assert "".join(texts) == "The sky is blue today"
    assert len([t for t in texts if t]) == 5  # one delta per word, as the server sent them
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None and (last.usage.input_tokens, last.usage.output_tokens) == (2, 5)
    assert all(c.usage is None for c in chunks[:-1])
    seen = server.requests(":streamGenerateContent")[0]
    assert seen.query == {"alt": ["sse"]}


def test_a_streamed_tool_call(server: GeminiServer) -> None:
    chunks = stream(
        make(server), ChatRequest("gemini-2.0-flash", [user("Weather?")], tools=[WEATHER])
    )
    calls = [c.delta["tool_calls"] for c in chunks if "tool_calls" in c.delta]
    assert len(calls) == 1
    [call] = calls[0]
    assert call["index"] == 0 and call["id"] == "call_0"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert chunks[-1].finish_reason == "tool_calls"


def test_a_stream_cut_midway_is_an_error_after_the_text_that_came(server: GeminiServer) -> None:
    server.reply = "one two three four five"
    server.cut_stream_after = 2
    provider = make(server)
    got: list[ChatChunk] = []

    async def go() -> None:
        request = ChatRequest("gemini-2.0-flash", [user("Count")])
        async for chunk in provider.call_stream(
            lambda: provider.stream_chat(request, CREDS), CREDS
        ):
            got.append(chunk)

    with pytest.raises(ProviderUnavailableError):
        asyncio.run(go())
    assert "".join(c.delta.get("content", "") for c in got) == "one two"
    assert all(c.finish_reason is None for c in got)
    assert len(server.requests()) == 1  # a stream that has begun is not retried


def test_a_streamed_answer_stopped_by_the_safety_filter_is_an_error(
    server: GeminiServer,
) -> None:
    server.finish_reason = "SAFETY"
    with pytest.raises(ContentFilteredError, match="SAFETY"):
        stream(make(server), ChatRequest("gemini-2.0-flash", [user("Something")]))


# -- embeddings --------------------------------------------------------------------------


def test_embeddings_with_dimensions(server: GeminiServer) -> None:
    provider = make(server)
    done = asyncio.run(
        provider.call(
            lambda: provider.embed("text-embedding-004", ["a cat", "a dog"], CREDS, dimensions=4),
            CREDS,
        )
    )
    assert [len(v) for v in done.vectors] == [4, 4]
    assert done.vectors[0] != done.vectors[1]
    assert done.usage.input_tokens is None  # Gemini's batchEmbedContents counts nothing
    assert done.model == "text-embedding-004"
    sent = body(server, ":batchEmbedContents")
    assert [r["outputDimensionality"] for r in sent["requests"]] == [4, 4]
    assert [r["content"]["parts"][0]["text"] for r in sent["requests"]] == ["a cat", "a dog"]
    server.embed_usage = True
    again = asyncio.run(provider.embed("gemini-embedding-2", ["a b c", "d"], CREDS))
    assert again.usage.input_tokens == 4
    assert len(again.vectors) == 2  # one vector per input, not one for all


# -- errors and retries ------------------------------------------------------------------


def test_a_wrong_key_is_a_key_rejected_error_that_never_shows_the_key(
    server: GeminiServer,
) -> None:
    wrong = Credentials("AIzaSy-wrong-key-secret", "$GEMINI_API_KEY")
    provider = make(server)
    with pytest.raises(KeyRejectedError) as caught:
        ask(provider, ChatRequest("gemini-2.0-flash", [user("Hi")]), wrong)
    error = caught.value
    assert "Gemini key is rejected" in str(error)
    assert "$GEMINI_API_KEY" in (error.hint or "")
    for text in (str(error), error.hint or "", repr(error), repr(provider), repr(wrong)):
        assert "wrong-key-secret" not in text
    assert len(server.requests()) == 1  # not retried


def test_a_429_with_retry_after_is_waited_out_then_answered(server: GeminiServer) -> None:
    server.fail(429, headers={"retry-after": "0.4"})
    start = time.monotonic()
    done = ask(make(server), ChatRequest("gemini-2.0-flash", [user("Hi")]))
    assert time.monotonic() - start >= 0.4
    assert done.text == "Hello from gemini-2.0-flash."
    assert len(server.requests()) == 2


def test_a_429_reads_geminis_retry_info_when_the_retries_are_spent(
    server: GeminiServer,
) -> None:
    server.rate_limited("37s")
    provider = make(server)
    provider.retries = 0
    with pytest.raises(ProviderRateLimitError) as caught:
        ask(provider, ChatRequest("gemini-2.0-flash", [user("Hi")]))
    assert caught.value.retry_after == 37.0
    assert "37 s" in str(caught.value)


def test_a_500_is_retried(server: GeminiServer) -> None:
    server.fail(500, message="Internal error encountered.")
    done = ask(make(server), ChatRequest("gemini-2.0-flash", [user("Hi")]))
    assert done.text == "Hello from gemini-2.0-flash."
    assert len(server.requests()) == 2
    server.fail(503, times=5)
    provider = make(server)
    with pytest.raises(ProviderUnavailableError, match="503"):
        ask(provider, ChatRequest("gemini-2.0-flash", [user("Hi")]))
    # One request per try: the SDK's own retries are off, modelport's are the only ones.
    assert len(server.requests()) == 2 + 1 + provider.retries


def test_a_stalled_server_is_a_timeout(server: GeminiServer) -> None:
    server.fail(200, stall=3.0)
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"0\.5 s"):
        ask(make(server, timeout=0.5), ChatRequest("gemini-2.0-flash", [user("Hi")]))
    assert time.monotonic() - start < 2.5
    assert len(server.requests()) == 1


def test_an_unreachable_api_is_unavailable() -> None:
    provider = GeminiProvider(base_url="http://127.0.0.1:9")
    provider.retries = 0
    with pytest.raises(ProviderUnavailableError, match="cannot be reached"):
        ask(provider, ChatRequest("gemini-2.0-flash", [user("Hi")]))


def test_a_model_gemini_does_not_serve(server: GeminiServer) -> None:
    with pytest.raises(ModelRetiredError, match="404"):
        ask(make(server), ChatRequest("retired-gemini-1.0-pro", [user("Hi")]))


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "SPII"])
def test_an_answer_stopped_by_a_filter_is_a_content_filtered_error(
    server: GeminiServer, reason: str
) -> None:
    server.finish_reason = reason
    with pytest.raises(ContentFilteredError, match=reason):
        ask(make(server), ChatRequest("gemini-2.0-flash", [user("Something")]))
    assert len(server.requests()) == 1


def test_a_blocked_prompt_is_a_content_filtered_error(server: GeminiServer) -> None:
    server.block_reason = "PROHIBITED_CONTENT"
    with pytest.raises(ContentFilteredError, match="refused the prompt"):
        ask(make(server), ChatRequest("gemini-2.0-flash", [user("Something")]))


# -- the registry ------------------------------------------------------------------------


def test_registered_for_the_google_catalog_entries() -> None:
    provider = get_provider("gemini")
    assert isinstance(provider, GeminiProvider)
    # The tests point every provider at a closed port; the default is the vendor's API.
    assert provider.base_url == "http://127.0.0.1:9"
    assert PROVIDER_URLS["gemini"] == "https://generativelanguage.googleapis.com"
    assert provider_for_catalog("google") == "gemini"


def test_the_base_url_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_GEMINI_URL", "http://127.0.0.1:4321")
    assert GeminiProvider().base_url == "http://127.0.0.1:4321"


# -- the gemini CLI ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in CLI first on PATH, a home signed in with Google; its argv file."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    home = tmp_path / "user-home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"security": {"auth": {"selectedType": "oauth-personal"}}})
    )
    (home / ".gemini" / "oauth_creds.json").write_text('{"refresh_token": "x"}')
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "GEMINI_CLI_HOME",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_GCA",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "CLOUD_SHELL",
        "GEMINI_CLI_USE_COMPUTE_ADC",
    ):
        monkeypatch.delenv(var, raising=False)
    argv = tmp_path / "argv.jsonl"
    monkeypatch.setenv("GEMINI_STANDIN_ARGV", str(argv))
    return argv


def calls(argv_file: Path) -> list[list[str]]:
    return [json.loads(line) for line in argv_file.read_text().splitlines()]


def test_the_cli_is_ready_only_when_signed_in(
    cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert GeminiProvider().cli_ready()
    (tmp_path / "user-home" / ".gemini" / "oauth_creds.json").unlink()
    assert not GeminiProvider().cli_ready()
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "other"))  # no settings there
    assert not GeminiProvider().cli_ready()
    monkeypatch.setenv("GEMINI_API_KEY", "k")  # the CLI's own fallback: an API key
    assert GeminiProvider().cli_ready()
    monkeypatch.setenv("PATH", str(tmp_path))  # signed in, but no CLI
    assert not GeminiProvider().cli_ready()
    assert not cli.exists()  # readiness never ran the CLI


def test_a_chat_through_the_cli(cli: Path) -> None:
    done = asyncio.run(
        GeminiProvider().cli_chat(ChatRequest("gemini-2.5-pro", [user("-Hi there")]))
    )
    assert done.access == "cli"
    assert done.text == "Hello from the gemini CLI."
    assert done.model == "gemini-2.5-pro"
    assert done.id == "standin-session"
    # Summed over the answering model (2 prompt words, 5 answer words, 2 thoughts, 1 cached)
    # and the CLI's routing model (5 prompt, 1 answer).
    usage = done.usage
    assert (usage.input_tokens, usage.output_tokens) == (2 + 5, 5 + 2 + 1)
    assert (usage.reasoning_tokens, usage.cached_tokens) == (2, 1)
    assert calls(cli) == [
        ["--output-format", "json", "--model", "gemini-2.5-pro", "--prompt=-Hi there"]
    ]


def test_a_conversation_is_rendered_into_the_cli_prompt(cli: Path) -> None:
    request = ChatRequest(
        "gemini-2.5-flash",
        [
            {"role": "system", "content": "Be brief."},
            user("What is 2+2?"),
            {"role": "assistant", "content": "4"},
            user("And times 3?"),
        ],
    )
    asyncio.run(GeminiProvider().cli_chat(request))
    prompt = calls(cli)[0][-1].removeprefix("--prompt=")
    paragraphs = prompt.split("\n\n")
    assert paragraphs[1:] == [
        "System: Be brief.",
        "User: What is 2+2?",
        "Assistant: 4",
        "User: And times 3?",
    ]
    assert "last user message" in paragraphs[0]


def test_a_streamed_chat_through_the_cli(cli: Path) -> None:
    async def go() -> list[ChatChunk]:
        chunks: AsyncIterator[ChatChunk] = GeminiProvider().cli_stream_chat(
            ChatRequest("gemini-2.5-flash", [user("Hi")])
        )
        return [c async for c in chunks]

    chunks = asyncio.run(go())
    assert chunks[0].delta["role"] == "assistant"
    assert "".join(c.delta.get("content", "") for c in chunks) == "Hello from the gemini CLI."
    assert chunks[-1].finish_reason == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    # The stream's stats: input 1+5, output 5+1, total 9+6 (the rest, 2, is thoughts).
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (6, 8, 2)
    assert usage.cached_tokens == 1
    assert calls(cli)[0][:4] == ["--output-format", "stream-json", "--model", "gemini-2.5-flash"]


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest("gemini-2.5-flash", [user("Hi")], tools=[WEATHER]),
        ChatRequest("gemini-2.5-flash", [user("Hi")], response_format={"type": "json_object"}),
        ChatRequest("gemini-2.5-flash", [user("Hi")], temperature=0.1),
        ChatRequest("gemini-2.5-flash", [user("Hi")], options={"reasoning_effort": "low"}),
        ChatRequest("gemini-2.5-flash", [user("word " * 40_000)]),
    ],
)
def test_what_the_cli_cannot_take_is_refused_with_the_api_as_the_way(
    cli: Path, request_: ChatRequest
) -> None:
    with pytest.raises(UnsupportedOperationError) as caught:
        asyncio.run(GeminiProvider().cli_chat(request_))
    assert "--access api" in (caught.value.hint or "")
    assert not cli.exists()


def test_a_failing_cli_is_one_clear_error(cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_STANDIN_FAIL", "1")
    with pytest.raises(ProviderError, match="Quota exceeded"):
        asyncio.run(GeminiProvider().cli_chat(ChatRequest("gemini-2.5-pro", [user("Hi")])))

    async def go() -> list[ChatChunk]:
        chunks = GeminiProvider().cli_stream_chat(ChatRequest("gemini-2.5-pro", [user("Hi")]))
        return [c async for c in chunks]

    with pytest.raises(ProviderError, match="Quota exceeded"):
        asyncio.run(go())


def test_a_silent_cli_times_out(cli: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_STANDIN_SLEEP", "5")
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        asyncio.run(
            GeminiProvider(timeout=0.5).cli_chat(ChatRequest("gemini-2.5-pro", [user("Hi")]))
        )
    assert time.monotonic() - start < 4
