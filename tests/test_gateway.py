"""The gateway: the official ``openai`` client, pointed at a real ``modelport serve``, reaches
hosted models (loopback upstreams speaking OpenAI's API) through the same ``/v1`` as local
ones, with keys, retries, fallbacks, and every call recorded with its cost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import modelport.api as api
from tests.serving import ServerProcess, serve
from tests.upstreams.anthropic_server import AnthropicServer
from tests.upstreams.base import running
from tests.upstreams.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

#: Recognisable keys: the leak test greps for them everywhere.
OPENAI_KEY = "sk-leakcheck-OPENAI-4f9c2a7e1b"
GROQ_KEY = "gsk_leakcheck-GROQ-8d3e6b0c5a"
ANTHROPIC_KEY = "sk-ant-leakcheck-ANTHROPIC-77aa01"


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[AnthropicServer]:
    with running(AnthropicServer(key=ANTHROPIC_KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    with (
        running(OpenAIServer(key=OPENAI_KEY)) as primary,
        running(OpenAIServer(key=GROQ_KEY, reply="Groq answers.")) as second,
    ):
        yield primary, second


@pytest.fixture(scope="module")
def gateway(
    upstreams: tuple[OpenAIServer, OpenAIServer],
    anthropic_upstream: AnthropicServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    primary, second = upstreams
    home = tmp_path_factory.mktemp("gateway-home")
    env = {
        "MODELPORT_OPENAI_URL": primary.base_url,
        "MODELPORT_GROQ_URL": second.base_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "GROQ_API_KEY": GROQ_KEY,
        "MODELPORT_ANTHROPIC_URL": anthropic_upstream.url,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "MODELPORT_PROVIDER_ACCESS": "api",
        "MODELPORT_SIM_SPEED": "instant",
        "MODELPORT_PROVIDER_TIMEOUT": "5",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    with serve(home, env=env) as server:
        yield server


@pytest.fixture
def client(gateway: ServerProcess, upstreams: tuple[OpenAIServer, OpenAIServer]) -> openai.OpenAI:
    for upstream in upstreams:
        upstream.faults.clear()
        upstream.seen.clear()
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def _price(model_id: str) -> tuple[float, float]:
    pricing = api.get_catalog()[model_id].pricing
    assert pricing is not None
    assert pricing.input_per_1m_tokens is not None
    assert pricing.output_per_1m_tokens is not None
    return pricing.input_per_1m_tokens, pricing.output_per_1m_tokens


def test_a_hosted_model_answers_through_the_gateway_with_its_cost(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="openai:gpt-4o", messages=[{"role": "user", "content": "Say hello to me"}]
    )
    done = raw.parse()
    assert done.choices[0].message.content == "Hello from gpt-4o."
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (4, 3)
    assert raw.headers["x-modelport-model"] == "openai:gpt-4o"
    assert raw.headers["x-modelport-access"] == "api"
    inp, out = _price("openai/gpt-4o")
    extra = done.model_extra or {}
    assert extra["modelport"]["cost_usd"] == pytest.approx((4 * inp + 3 * out) / 1e6)
    [seen] = upstreams[0].requests("/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.body["model"] == "gpt-4o"


def test_a_bare_catalog_name_reaches_its_provider(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-modelport-model"] == "openai:gpt-4o"
    assert raw.parse().choices[0].message.content == "Hello from gpt-4o."


def test_a_stream_arrives_in_pieces_with_usage_at_the_end(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="openai:gpt-4o-mini",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from gpt-4o-mini."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 3
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2


def test_tools_come_back_as_tool_calls(client: openai.OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    done = client.chat.completions.create(
        model="openai:gpt-4o", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = done.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert done.choices[0].finish_reason == "tool_calls"


def test_a_rate_limit_is_waited_out_and_a_5xx_retried(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    upstreams[0].fail(429, headers={"retry-after": "0.2"})
    upstreams[0].fail(500)
    started = time.monotonic()
    done = client.chat.completions.create(
        model="openai:gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert done.choices[0].message.content == "Hello from gpt-4o."
    assert len(upstreams[0].requests("/chat/completions")) == 3
    assert time.monotonic() - started >= 0.2


def test_a_rejected_key_is_one_clear_sentence(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    upstreams[0].fail(401)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="openai:gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    message = caught.value.body["message"]  # type: ignore[index]
    assert message == "The OpenAI key is rejected (401)."
    assert "modelport keys set openai" in caught.value.body["hint"]  # type: ignore[index]
    assert OPENAI_KEY not in str(caught.value.body)


def test_a_failing_provider_falls_back_to_the_next_model(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    upstreams[0].fail(503, times=10)
    raw = client.chat.completions.with_raw_response.create(
        model="openai:gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"fallbacks": ["groq:llama-3.3-70b-versatile"]},
    )
    done = raw.parse()
    assert done.choices[0].message.content == "Groq answers."
    assert raw.headers["x-modelport-model"] == "groq:llama-3.3-70b-versatile"
    assert raw.headers["x-modelport-fallback-from"] == "openai:gpt-4o"
    assert (done.model_extra or {})["modelport"]["fallback_from"] == ["openai:gpt-4o"]
    assert len(upstreams[0].requests("/chat/completions")) == 3  # the first try and 2 retries
    upstreams[0].faults.clear()


def test_a_model_the_provider_retired_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="openai:retired-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert "does not serve this model" in caught.value.body["message"]  # type: ignore[index]


def test_hosted_embeddings_through_the_gateway(client: openai.OpenAI) -> None:
    done = client.embeddings.create(
        model="openai:text-embedding-3-small", input=["one two", "three"], dimensions=6
    )
    assert [len(d.embedding) for d in done.data] == [6, 6]
    assert done.usage.prompt_tokens == 3


def test_every_call_is_in_the_usage_log(client: openai.OpenAI, gateway: ServerProcess) -> None:
    client.chat.completions.create(
        model="openai:gpt-4o", messages=[{"role": "user", "content": "count me please now friend"}]
    )
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        report = httpx.get(f"{gateway.url}/api/v1/usage", params={"by": "call"}).json()
        rows = [r for r in report["data"]["calls"] if r.get("input_tokens") == 5]
        if rows:
            break
        time.sleep(0.3)
    [row] = rows
    inp, out = _price("openai/gpt-4o")
    assert row["model"] == "openai/gpt-4o"
    assert row["provider"] == "openai"
    assert row["origin"] == "gateway"
    assert row["cost_usd"] == pytest.approx((5 * inp + 3 * out) / 1e6)


def test_no_key_appears_anywhere(
    client: openai.OpenAI,
    gateway: ServerProcess,
    upstreams: tuple[OpenAIServer, OpenAIServer],
) -> None:
    bodies = []
    upstreams[0].fail(401)
    upstreams[0].fail(500, times=6)  # two calls of three tries each
    for _ in range(3):
        with pytest.raises(openai.APIError) as caught:
            client.chat.completions.create(
                model="openai:gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
        bodies.append(str(caught.value.body))
    bodies.append(httpx.get(f"{gateway.url}/api/v1/usage", params={"by": "call"}).text)
    bodies.append(httpx.get(f"{gateway.url}/v1/models").text)
    bodies.append(gateway.output())
    for body in bodies:
        for key in (OPENAI_KEY, GROQ_KEY, ANTHROPIC_KEY):
            assert key not in body
    for path in Path(gateway.home).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for key in (OPENAI_KEY, GROQ_KEY, ANTHROPIC_KEY):
                assert key.encode() not in data, path


def test_an_anthropic_model_answers_in_openai_shapes(
    client: openai.OpenAI, anthropic_upstream: AnthropicServer
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="anthropic:claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "hello there"},
        ],
        max_tokens=50,
    )
    done = raw.parse()
    assert done.choices[0].message.content == "Hello from claude-sonnet-4-5."
    assert raw.headers["x-modelport-provider"] == "anthropic"
    seen = anthropic_upstream.requests("/v1/messages")[-1]
    assert seen.body["system"] in ("Be kind.", [{"type": "text", "text": "Be kind."}])
    assert seen.body["max_tokens"] == 50
    stream = client.chat.completions.create(
        model="anthropic:claude-sonnet-4-5",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from claude-sonnet-4-5."


def test_what_cannot_come_back_is_refused_not_dropped(
    client: openai.OpenAI, upstreams: tuple[OpenAIServer, OpenAIServer]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="openai:gpt-4o", messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert "`n` above 1" in caught.value.body["message"]  # type: ignore[index]
    assert upstreams[0].requests("/chat/completions") == []


def test_a_simulated_model_answers_through_both_sdks(gateway: ServerProcess) -> None:
    import anthropic

    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    ask: Any = {"model": "sim:openai:gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    first = client.chat.completions.with_raw_response.create(**ask, seed=3)
    again = client.chat.completions.create(**ask, seed=3)
    assert first.headers["x-modelport-access"] == "sim"
    assert first.parse().choices[0].message.content == again.choices[0].message.content
    assert (first.parse().model_extra or {})["modelport"]["cost_usd"] > 0
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    message = claude.messages.create(
        model="sim:anthropic:claude-sonnet-4-5",
        max_tokens=400,  # a reasoning model spends some of it thinking, as the real one does
        messages=[{"role": "user", "content": "hi"}],
    )
    assert message.content[0].type == "text"
    assert message.usage.output_tokens > 0
