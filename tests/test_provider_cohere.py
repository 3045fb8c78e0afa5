"""The Cohere provider through the real ``cohere`` SDK against a loopback Cohere v2 server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from modelport.errors import (
    KeyRejectedError,
    MissingKeyError,
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
    Embeddings,
    Reranking,
)
from modelport.providers.cohere import CohereProvider
from tests.upstreams.base import running
from tests.upstreams.cohere_server import PREAMBLE_TOKENS, CohereServer
from tests.upstreams.openai_server import vector

# The SDK's own union parsing touches pydantic's deprecated ``__fields__``.
pytestmark = pytest.mark.filterwarnings("ignore:The `__fields__` attribute:DeprecationWarning")

KEY = "co-test-9f3b1d7c5e2a4680"
CREDS = Credentials(KEY, source="$CO_API_KEY")
MODEL = "command-a-03-2025"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.fixture
def server() -> Iterator[CohereServer]:
    with running(CohereServer(key=KEY)) as s:
        yield s


def make(server: CohereServer, **kwargs: Any) -> CohereProvider:
    return CohereProvider(base_url=server.base_url, **kwargs)


def ask(text: str = "Say hello", **fields: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[{"role": "user", "content": text}], **fields)


def chat(
    provider: CohereProvider, request: ChatRequest, creds: Credentials = CREDS
) -> ChatResponse:
    return asyncio.run(provider.call(lambda: provider.chat(request, creds), creds))


def stream(provider: CohereProvider, request: ChatRequest) -> list[ChatChunk]:
    async def collect() -> list[ChatChunk]:
        chunks: AsyncIterator[ChatChunk] = provider.call_stream(
            lambda: provider.stream_chat(request, CREDS), CREDS
        )
        return [c async for c in chunks]

    return asyncio.run(collect())


def embed(provider: CohereProvider, model: str, texts: list[str], **kw: Any) -> Embeddings:
    return asyncio.run(provider.call(lambda: provider.embed(model, texts, CREDS, **kw), CREDS))


def rerank(provider: CohereProvider, query: str, docs: list[str], **kw: Any) -> Reranking:
    return asyncio.run(
        provider.call(lambda: provider.rerank("rerank-v3.5", query, docs, CREDS, **kw), CREDS)
    )


def sent(server: CohereServer, path: str = "/v2/chat") -> dict[str, Any]:
    """The body of the last request to ``path``."""
    body: dict[str, Any] = server.requests(path)[-1].body
    return body


# -- chat --------------------------------------------------------------------------------------


def test_chat_text_with_system_message(server: CohereServer) -> None:
    request = ChatRequest(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": "Say hello"},
        ],
    )
    done = chat(make(server), request)
    assert done.text == f"Hello from {MODEL}."
    assert done.message == {"role": "assistant", "content": f"Hello from {MODEL}."}
    assert done.finish_reason == "stop"
    assert done.model == MODEL
    assert done.id == "c0ffee00-loopback"
    # Billed units (what Cohere charges), not the raw tokens with Cohere's preamble.
    assert (done.usage.input_tokens, done.usage.output_tokens) == (6, 3)
    seen = server.requests("/v2/chat")[-1]
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body["model"] == MODEL
    assert seen.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "No emoji."},
        {"role": "user", "content": "Say hello"},
    ]
    assert "stream" not in seen.body or seen.body["stream"] is False


def test_parameters_reach_cohere_under_its_names(server: CohereServer) -> None:
    request = ask(
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=7,
        options={"frequency_penalty": 0.1, "top_k": 40, "n": 1},
    )
    chat(make(server), request)
    body = sent(server)
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.2
    assert body["p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["seed"] == 7
    assert body["frequency_penalty"] == 0.1
    assert body["k"] == 40
    assert "top_p" not in body and "stop" not in body and "n" not in body
    chat(make(server), ask(top_p=1.0))
    assert sent(server)["p"] == 0.99  # OpenAI's "no cut" at Cohere's widest


def test_finish_reasons_length_and_stop_sequence(server: CohereServer) -> None:
    provider = make(server)
    short = chat(provider, ask(max_tokens=2))
    assert (short.text, short.finish_reason) == ("Hello from", "length")
    stopped = chat(provider, ask(stop=[" from"]))
    assert (stopped.text, stopped.finish_reason) == ("Hello", "stop")


def test_user_images_and_refused_parts(server: CohereServer) -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    request = ChatRequest(model=MODEL, messages=[{"role": "user", "content": parts}])
    chat(make(server), request)
    assert sent(server)["messages"][0]["content"] == parts
    audio = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    with pytest.raises(UnsupportedOperationError, match="input_audio"):
        chat(make(server), ChatRequest(model=MODEL, messages=[{"role": "user", "content": audio}]))
    assert len(server.requests("/v2/chat")) == 1


def test_json_schema_response_format(server: CohereServer) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    done = chat(make(server), ask("Answer in JSON", response_format=fmt))
    assert json.loads(done.text) == {"answer": 42}
    assert sent(server)["response_format"] == {"type": "json_object", "json_schema": schema}
    chat(make(server), ask("Answer in JSON", response_format={"type": "json_object"}))
    assert sent(server)["response_format"] == {"type": "json_object"}


def test_tool_call_and_result_round_trip(server: CohereServer) -> None:
    provider = make(server)
    first = ask("Weather in Paris?", tools=[WEATHER])
    done = chat(provider, first)
    assert done.finish_reason == "tool_calls"
    assert done.message["content"] is None
    assert done.message["reasoning_content"] == "I will call get_weather."
    [call] = done.message["tool_calls"]
    assert call["id"] == "get_weather_k3x9q2"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert sent(server)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["function"]["parameters"],
                "description": "The weather in a city.",
            },
        }
    ]

    follow = ChatRequest(
        model=MODEL,
        messages=[
            *first.messages,
            done.message,
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'},
        ],
        tools=[WEATHER],
    )
    answer = chat(provider, follow)
    assert answer.text == f"Hello from {MODEL}."
    assert answer.finish_reason == "stop"
    messages = sent(server)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "get_weather_k3x9q2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
        "tool_plan": "I will call get_weather.",
    }
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "get_weather_k3x9q2",
        "content": '{"temp": 21}',
    }


def test_tool_choice(server: CohereServer) -> None:
    provider = make(server)
    chat(provider, ask(tools=[WEATHER], tool_choice="required"))
    assert sent(server)["tool_choice"] == "REQUIRED"
    done = chat(provider, ask(tools=[WEATHER], tool_choice="none"))
    assert sent(server)["tool_choice"] == "NONE"
    assert done.finish_reason == "stop" and "tool_calls" not in done.message
    only = {"type": "function", "function": {"name": "get_weather"}}
    chat(provider, ask(tools=[WEATHER], tool_choice=only))
    assert sent(server)["tool_choice"] == "REQUIRED"
    chat(provider, ask(tools=[WEATHER], tool_choice="auto"))
    assert "tool_choice" not in sent(server)
    count = len(server.requests("/v2/chat"))
    with pytest.raises(UnsupportedOperationError, match="get_weather") as refused:
        chat(provider, ask(tools=[WEATHER, CLOCK], tool_choice=only))
    assert "required" in (refused.value.hint or "")
    assert len(server.requests("/v2/chat")) == count  # refused before any request


def test_refused_parameter_is_named_and_never_sent(server: CohereServer) -> None:
    provider = make(server)
    with pytest.raises(UnsupportedOperationError, match="logit_bias"):
        chat(provider, ask(options={"logit_bias": {"50256": -100}}))
    with pytest.raises(UnsupportedOperationError, match="'n'"):
        chat(provider, ask(options={"n": 2}))
    with pytest.raises(UnsupportedOperationError, match="text_and_audio"):
        chat(provider, ask(response_format={"type": "text_and_audio"}))
    assert server.requests("/v2/chat") == []


def test_error_finish_is_a_provider_error(server: CohereServer) -> None:
    server.finish_override = "ERROR"
    with pytest.raises(ProviderError, match="stopped the answer with an error"):
        chat(make(server), ask())
    with pytest.raises(ProviderError, match="internal generation failure"):
        stream(make(server), ask())
    assert len(server.requests("/v2/chat")) == 2  # an answer that failed is not retried


# -- streaming ---------------------------------------------------------------------------------


def test_stream_text(server: CohereServer) -> None:
    chunks = stream(make(server), ask())
    assert chunks[0].delta == {"role": "assistant", "content": ""}
    text = "".join(c.delta.get("content", "") for c in chunks)
    assert text == f"Hello from {MODEL}."
    assert len([c for c in chunks if c.delta.get("content")]) == 3  # word by word
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (2, 3)
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])
    assert all(c.model == MODEL for c in chunks)
    assert sent(server)["stream"] is True


def test_stream_tool_call_reassembled(server: CohereServer) -> None:
    server.tool_arguments = {"city": "Paris", "unit": "celsius", "days": 3}
    chunks = stream(make(server), ask("Weather in Paris?", tools=[WEATHER]))
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for piece in chunk.delta.get("tool_calls", []):
            call = calls.setdefault(piece["index"], {"arguments": ""})
            if "id" in piece:
                call["id"] = piece["id"]
                call["name"] = piece["function"]["name"]
            call["arguments"] += piece["function"].get("arguments", "")
    assert list(calls) == [0]
    assert calls[0]["id"] == "get_weather_k3x9q2"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == server.tool_arguments
    pieces = [c for c in chunks if c.delta.get("tool_calls")]
    assert len(pieces) > 3  # the arguments came in several pieces
    plan = "".join(c.delta.get("reasoning_content", "") for c in chunks)
    assert plan == "I will call get_weather."
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 7


def test_stream_retried_before_its_first_chunk(server: CohereServer) -> None:
    server.fail(503, message="overloaded")
    chunks = stream(make(server), ask())
    assert "".join(c.delta.get("content", "") for c in chunks) == f"Hello from {MODEL}."
    assert len(server.requests("/v2/chat")) == 2


def test_stream_cut_midway_fails_after_what_it_gave(server: CohereServer) -> None:
    server.cut_stream_after = 3  # message-start, content-start, one word

    async def collect() -> tuple[list[ChatChunk], BaseException | None]:
        provider = make(server)
        got: list[ChatChunk] = []
        try:
            async for chunk in provider.call_stream(
                lambda: provider.stream_chat(ask(), CREDS), CREDS
            ):
                got.append(chunk)
        except ProviderError as e:
            return got, e
        return got, None

    chunks, error = asyncio.run(collect())
    assert isinstance(error, ProviderUnavailableError)
    assert "".join(c.delta.get("content", "") for c in chunks) == "Hello"
    assert all(c.finish_reason is None for c in chunks)
    assert len(server.requests("/v2/chat")) == 1  # never replayed once text went out


# -- embed and rerank --------------------------------------------------------------------------


def test_embed_with_dimensions_in_order(server: CohereServer) -> None:
    texts = ["the first text", "second", "a third one here"]
    done = embed(make(server), "embed-v4.0", texts, dimensions=16)
    assert done.vectors == [vector(t, 16) for t in texts]
    assert done.usage.input_tokens == 8
    assert done.model == "embed-v4.0"
    body = sent(server, "/v2/embed")
    assert body["texts"] == texts
    assert body["input_type"] == "search_document"
    assert body["embedding_types"] == ["float"]
    assert body["output_dimension"] == 16


def test_embed_query_type_and_batches(server: CohereServer) -> None:
    texts = [f"text number {i}" for i in range(100)]
    done = embed(make(server), "embed-english-v3.0", texts, input_type="search_query")
    assert done.vectors == [vector(t, 8) for t in texts]
    assert done.usage.input_tokens == 300
    batches = [s.body for s in server.requests("/v2/embed")]
    assert [len(b["texts"]) for b in batches] == [96, 4]
    assert all(b["input_type"] == "search_query" and "output_dimension" not in b for b in batches)
    with pytest.raises(UnsupportedOperationError, match="image"):
        embed(make(server), "embed-v4.0", ["x"], input_type="image")


def test_embed_dimensions_refused_by_the_api(server: CohereServer) -> None:
    with pytest.raises(ProviderError, match="output_dimension is not supported") as refused:
        embed(make(server), "embed-english-v3.0", ["hello"], dimensions=256)
    assert refused.value.status == 400
    assert len(server.requests("/v2/embed")) == 1  # a 400 is not retried


def test_rerank_order_and_top_n(server: CohereServer) -> None:
    docs = [
        "Paris is in France",
        "the capital of France is Paris",
        "bananas are yellow",
        "France has a capital",
    ]
    done = rerank(make(server), "capital of France", docs)
    assert [r.index for r in done.results] == [1, 3, 0, 2]
    scores = [r.relevance_score for r in done.results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0 and scores[-1] == 0.0
    assert done.usage.input_tokens is None  # search units are not tokens
    assert done.model == "rerank-v3.5"
    top = rerank(make(server), "capital of France", docs, top_n=2)
    assert [r.index for r in top.results] == [1, 3]
    assert sent(server, "/v2/rerank") == {
        "model": "rerank-v3.5",
        "query": "capital of France",
        "documents": docs,
        "top_n": 2,
    }


# -- errors and retries ------------------------------------------------------------------------


def test_wrong_key_is_rejected_without_showing_it(server: CohereServer) -> None:
    wrong = Credentials("co-wrong-1a2b3c4d5e6f7a8b", source="the key store")
    with pytest.raises(KeyRejectedError) as rejected:
        chat(make(server), ask(), wrong)
    error = rejected.value
    assert error.status == 401
    assert error.provider == "cohere"
    for text in (str(error), error.hint or "", repr(error), repr(wrong), str(wrong)):
        assert wrong.key not in text
        assert KEY not in text
    assert "the key store" in (error.hint or "")
    assert len(server.requests("/v2/chat")) == 1  # a rejected key is not retried


def test_no_key_is_missing_not_read_by_the_sdk(
    server: CohereServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", KEY)  # the SDK would use it; modelport resolves keys
    provider = make(server)
    with pytest.raises(MissingKeyError, match="No Cohere key"):
        asyncio.run(provider.call(lambda: provider.chat(ask(), None), None))
    assert server.requests() == []


def test_rate_limit_honours_retry_after_then_succeeds(server: CohereServer) -> None:
    server.fail(429, message="too many requests", headers={"Retry-After": "0.4"})
    start = time.monotonic()
    done = chat(make(server), ask())
    assert done.text == f"Hello from {MODEL}."
    assert time.monotonic() - start >= 0.4
    assert len(server.requests("/v2/chat")) == 2


def test_rate_limit_that_lasts_says_when(server: CohereServer) -> None:
    server.fail(429, message="too many requests", headers={"Retry-After": "0"}, times=5)
    with pytest.raises(ProviderRateLimitError, match="too many requests"):
        chat(make(server), ask())
    assert len(server.requests("/v2/chat")) == 3  # the first try and two retries


def test_server_error_then_success(server: CohereServer) -> None:
    server.fail(500, message="internal error")
    done = chat(make(server), ask())
    assert done.text == f"Hello from {MODEL}."
    assert len(server.requests("/v2/chat")) == 2


def test_server_errors_that_last(server: CohereServer) -> None:
    server.fail(500, message="internal error", times=5)
    with pytest.raises(ProviderUnavailableError, match="answered 500 \\(internal error\\)"):
        embed(make(server), "embed-v4.0", ["x"])


def test_timeout(server: CohereServer) -> None:
    server.fail(500, stall=2.0)
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"within 0\.5 s"):
        chat(make(server, timeout=0.5), ask())
    assert time.monotonic() - start < 1.8
    assert len(server.requests("/v2/chat")) == 1  # a timeout already waited: no retry


def test_retired_model(server: CohereServer) -> None:
    with pytest.raises(ModelRetiredError, match="not found"):
        chat(
            make(server),
            ChatRequest(model="retired-command", messages=[{"role": "user", "content": "hi"}]),
        )


def test_unreachable_server_is_unavailable() -> None:
    provider = CohereProvider(base_url="http://127.0.0.1:9", timeout=5)
    provider.retries = 0
    with pytest.raises(ProviderUnavailableError, match="cannot be reached"):
        chat(provider, ask())


def test_billed_units_win_over_raw_tokens(server: CohereServer) -> None:
    # The raw token counts include Cohere's preamble; usage must be what is billed.
    done = chat(make(server), ask("one two three"))
    assert done.usage.input_tokens == 3
    assert done.usage.input_tokens != 3 + PREAMBLE_TOKENS


def test_registered_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.providers.base import get_provider, reset_providers
    from modelport.settings import reset_settings

    monkeypatch.setenv("MODELPORT_COHERE_URL", "http://127.0.0.1:9/cohere")
    reset_settings()
    reset_providers(rescan=True)
    try:
        provider = get_provider("cohere")
        assert isinstance(provider, CohereProvider)
        assert provider.base_url == "http://127.0.0.1:9/cohere"
        assert provider.env_keys == ("CO_API_KEY", "COHERE_API_KEY")
    finally:
        reset_providers(rescan=True)
