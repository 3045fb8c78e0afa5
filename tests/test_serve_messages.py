"""Anthropic's Messages API on ``modelport serve``: the official ``anthropic`` client, pointed at
a real server, reaches hosted models (a loopback upstream speaking OpenAI's API) through
``/v1/messages``, with Anthropic's shapes, stream events and error classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.serving import ServerProcess, serve
from tests.upstreams.base import running
from tests.upstreams.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

OPENAI_KEY = "sk-leakcheck-OPENAI-msgs-5e1d"
GROQ_KEY = "gsk_leakcheck-GROQ-msgs-0b7a"

WEATHER: Any = [
    {
        "name": "weather",
        "description": "The weather of a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    with (
        running(OpenAIServer(key=OPENAI_KEY)) as primary,
        running(OpenAIServer(key=GROQ_KEY, reply="Groq answers.")) as second,
    ):
        yield primary, second


def _env(upstreams: tuple[OpenAIServer, OpenAIServer]) -> dict[str, str]:
    primary, second = upstreams
    return {
        "MODELPORT_OPENAI_URL": primary.base_url,
        "MODELPORT_GROQ_URL": second.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "GROQ_API_KEY": GROQ_KEY,
        "MODELPORT_PROVIDER_ACCESS": "api",
        "MODELPORT_PROVIDER_TIMEOUT": "5",
    }


@pytest.fixture(scope="module")
def gateway(
    upstreams: tuple[OpenAIServer, OpenAIServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with serve(tmp_path_factory.mktemp("messages-home"), env=_env(upstreams)) as server:
        yield server


@pytest.fixture
def client(
    gateway: ServerProcess, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> anthropic.Anthropic:
    for upstream in upstreams:
        upstream.faults.clear()
        upstream.seen.clear()
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def test_a_hosted_model_answers_in_anthropic_shapes(
    client: anthropic.Anthropic, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    raw = client.messages.with_raw_response.create(
        model="openai:gpt-4o",
        max_tokens=50,
        system="Be kind.",
        messages=[{"role": "user", "content": "Say hello to me"}],
    )
    done = raw.parse()
    assert done.type == "message"
    assert done.role == "assistant"
    assert done.id.startswith("msg_")
    assert [(b.type, getattr(b, "text", None)) for b in done.content] == [
        ("text", "Hello from gpt-4o.")
    ]
    assert done.stop_reason == "end_turn"
    assert done.stop_sequence is None
    # The upstream counts words: "Be kind." + "Say hello to me" in, three words out.
    assert (done.usage.input_tokens, done.usage.output_tokens) == (6, 3)
    assert done.usage.cache_read_input_tokens == 0
    assert raw.headers["x-modelport-model"] == "openai:gpt-4o"
    [seen] = upstreams[0].requests("/chat/completions")
    assert seen.body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Say hello to me"},
    ]
    assert seen.body.get("max_completion_tokens", seen.body.get("max_tokens")) == 50


def test_a_stream_sends_anthropics_events_and_the_same_text(
    client: anthropic.Anthropic, gateway: ServerProcess
) -> None:
    with client.messages.stream(
        model="openai:gpt-4o",
        max_tokens=50,
        messages=[{"role": "user", "content": "stream please"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from gpt-4o."
    assert final.stop_reason == "end_turn"
    assert [b.type for b in final.content] == ["text"]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 3)
    # The raw sequence, event names included, as Anthropic's API sends it.
    body = {
        "model": "openai:gpt-4o",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "stream please"}],
    }
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, timeout=30) as r:
        names = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names.count("content_block_delta") == 3
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tools_come_back_as_tool_use_and_results_go_back_as_tool_messages(
    client: anthropic.Anthropic, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    done = client.messages.create(
        model="openai:gpt-4o",
        max_tokens=50,
        tools=WEATHER,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    assert done.stop_reason == "tool_use"
    [call] = [b for b in done.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("weather", {"city": "Paris"})
    [seen] = upstreams[0].requests("/chat/completions")
    assert seen.body["tool_choice"] == "required"
    assert seen.body["tools"][0]["function"]["name"] == "weather"
    assert seen.body["tools"][0]["function"]["parameters"] == WEATHER[0]["input_schema"]

    after = client.messages.create(
        model="openai:gpt-4o",
        max_tokens=50,
        tools=WEATHER,
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in done.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert after.content[0].type == "text"
    assert after.content[0].text == "Hello from gpt-4o."
    seen = upstreams[0].requests("/chat/completions")[-1]
    assistant, result = seen.body["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert result == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


def test_a_streamed_tool_call_arrives_as_input_json(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="openai:gpt-4o",
        max_tokens=50,
        tools=WEATHER,
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    [call] = final.content
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use"


def test_an_unknown_model_is_the_sdks_own_error_with_one_sentence(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises((anthropic.NotFoundError, anthropic.BadRequestError)) as caught:
        client.messages.create(
            model="nosuchvendor:some-model",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
        )
    body: Any = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] in ("not_found_error", "invalid_request_error")
    assert "nosuchvendor" in body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]


def test_a_rejected_key_is_the_sdks_authentication_error(
    client: anthropic.Anthropic, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    upstreams[0].fail(401)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(
            model="openai:gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.api_message == "The OpenAI key is rejected (401)."
    assert caught.value.type == "authentication_error"
    assert OPENAI_KEY not in str(caught.value.body)


def test_what_cannot_be_carried_is_refused_by_name(
    client: anthropic.Anthropic, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="openai:gpt-4o",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"top_k": 5},
        )
    assert "top_k" in str(caught.value.api_message)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="openai:gpt-4o",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    assert caught.value.api_message == "Unrecognized request argument supplied: thinking"
    assert upstreams[0].requests("/chat/completions") == []


def test_a_failing_provider_falls_back_to_the_next_model(
    client: anthropic.Anthropic, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    upstreams[0].fail(503, times=10)
    raw = client.messages.with_raw_response.create(
        model="openai:gpt-4o",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"fallbacks": ["groq:llama-3.3-70b-versatile"]},
    )
    done = raw.parse()
    assert done.content[0].type == "text"
    assert done.content[0].text == "Groq answers."
    assert raw.headers["x-modelport-model"] == "groq:llama-3.3-70b-versatile"
    assert raw.headers["x-modelport-fallback-from"] == "openai:gpt-4o"
    upstreams[0].faults.clear()


def test_a_server_with_a_key_accepts_the_sdks(
    upstreams: tuple[OpenAIServer, OpenAIServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("messages-key-home")
    with serve(home, env=_env(upstreams), api_key="sk-modelport-msgs") as server:
        good = anthropic.Anthropic(base_url=server.url, api_key="sk-modelport-msgs", max_retries=0)
        done = good.messages.create(
            model="openai:gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert done.content[0].type == "text"
        # A client that sends the key as x-api-key, as Anthropic's own API takes it.
        r = httpx.post(
            f"{server.url}/v1/messages",
            headers={"x-api-key": "sk-modelport-msgs", "anthropic-version": "2023-06-01"},
            json={
                "model": "openai:gpt-4o",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        bad = anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            bad.messages.create(
                model="openai:gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.type == "authentication_error"


CHAT = "acme/tiny-chat"


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    pytest.importorskip("torch")
    pytest.importorskip("optimum.exporters.onnx")
    from tests import tiny_models
    from tests.hf_server import serve_hub

    folder = tiny_models.build_chat_decoder(tmp_path_factory.mktemp("decoder") / "chat")
    with serve_hub() as hub:
        hub.add_folder(CHAT, folder, pipeline_tag="text-generation")
        home = tmp_path_factory.mktemp("messages-local-home")
        with serve(home, env={"HF_ENDPOINT": hub.url}) as process:
            yield process


def test_a_local_model_answers_as_through_the_openai_route(local_server: ServerProcess) -> None:
    client = anthropic.Anthropic(base_url=local_server.url, api_key="unused", max_retries=0)
    messages: Any = [{"role": "user", "content": "who wrote this book"}]
    openai_answer = httpx.post(
        f"{local_server.url}/v1/chat/completions",
        json={
            "model": CHAT,
            "max_tokens": 12,
            "temperature": 0,
            "messages": [{"role": "system", "content": "You are helpful."}, *messages],
        },
        timeout=300,
    ).json()
    expected = openai_answer["choices"][0]["message"]["content"]
    done = client.messages.create(
        model=CHAT,
        max_tokens=12,
        system="You are helpful.",
        messages=messages,
        extra_body={"temperature": 0},  # this SDK's Messages API has no sampling parameters
    )
    assert done.content[0].type == "text"
    assert done.content[0].text == expected
    assert done.usage.output_tokens == openai_answer["usage"]["completion_tokens"]
    assert done.usage.input_tokens == openai_answer["usage"]["prompt_tokens"]
    # top_k is honoured locally: top_k=1 samples the most likely token, as greedy does.
    with client.messages.stream(
        model=CHAT,
        max_tokens=12,
        system="You are helpful.",
        messages=messages,
        extra_body={"top_k": 1},
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == expected
