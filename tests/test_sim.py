"""The simulator: any catalog model answered offline from its entry, through modelport's
own prompting path and through the provider itself (for timing)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

import modelport
import modelport.api as api
from modelport.errors import (
    ConfigError,
    InputTooLongError,
    InvalidValueError,
    ModelNotFoundError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnsupportedOperationError,
)
from modelport.providers.base import ChatRequest, register_provider, reset_providers
from modelport.providers.sim import SimProvider
from modelport.providers.sim_content import count_tokens, token_pieces
from modelport.providers.sim_tokens import token_rule
from modelport.settings import load_settings
from tests.conftest import make_entry


@pytest.fixture(autouse=True)
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The shared venv's metadata predates the entry point: register it as a plugin would.
    monkeypatch.setenv("MODELPORT_SIM_SPEED", "instant")
    api.reset()
    register_provider("sim", SimProvider)
    yield
    reset_providers(rescan=True)  # the installed providers again, as other tests expect


def _api_entry(model_id: str, **fields: Any) -> Any:
    return make_entry(
        model_id,
        source="api",
        capabilities={"chat": True, "tool_calling": True, "structured_outputs": True},
        **fields,
    )


def test_token_rule_and_pieces() -> None:
    assert count_tokens("hi you") == 2
    assert count_tokens("hi there") == 3  # five characters are two tokens
    assert count_tokens("extraordinary") == 4  # 13 characters
    text = "  Lorem extraordinary, ipsum.  "
    pieces = token_pieces(text)
    assert "".join(pieces) == text
    assert len(pieces) == count_tokens(text)


def test_speed_setting(tmp_path: Any) -> None:
    env = {"MODELPORT_HOME": str(tmp_path)}
    assert load_settings(env).sim_speed == 1.0
    assert load_settings({**env, "MODELPORT_SIM_SPEED": "10x"}).sim_speed == 10.0
    assert load_settings({**env, "MODELPORT_SIM_SPEED": "instant"}).sim_speed == 0.0
    with pytest.raises(ConfigError, match="MODELPORT_SIM_SPEED"):
        load_settings({**env, "MODELPORT_SIM_SPEED": "fast"})


def test_seeded_prompt_is_reproducible_and_recorded_as_sim() -> None:
    first = modelport.prompt("sim:openai:gpt-4o", "hi", seed=7)
    second = modelport.prompt("sim:openai:gpt-4o", "hi", seed=7)
    other = modelport.prompt("sim:openai:gpt-4o", "hi", seed=8)
    assert first.text() == second.text() != other.text()
    assert len(first.text().split()) >= 10
    assert first.access == "sim"
    assert first.provider == "sim"
    # OpenAI's count (tests/test_sim_tokens.py checks it against tiktoken): 3 per message,
    # its role, its text, and 3 priming the answer.
    rule = token_rule(api.get_catalog()["openai/gpt-4o"])
    assert first.usage is not None
    assert first.usage.input_tokens == 3 + 3 + rule.count("user") + rule.count("hi")
    assert first.usage.output_tokens == rule.count(first.text())

    report = api.usage_report(by="access")
    row = next(r for r in report.rows if r.key == "sim")
    assert row.calls == 3
    entry = api.get_catalog()["openai/gpt-4o"]
    assert entry.pricing is not None
    price_in = entry.pricing.input_per_1m_tokens
    price_out = entry.pricing.output_per_1m_tokens
    assert price_in is not None and price_out is not None
    expected = (row.input_tokens * price_in + row.output_tokens * price_out) / 1e6
    assert row.cost_usd == pytest.approx(expected, rel=1e-9)
    assert row.cost_usd > 0
    calls = api.usage_report(by=None).calls
    assert {c.model for c in calls} == {"openai/gpt-4o"}


def test_stream_yields_pieces_that_join_to_the_answer() -> None:
    streamed = list(modelport.prompt("sim:openai:gpt-4o", "hi", seed=3, stream=True))
    whole = modelport.prompt("sim:openai:gpt-4o", "hi", seed=3).text()
    assert len(streamed) > 5
    assert "".join(streamed) == whole


def test_max_tokens_cuts_with_length() -> None:
    response = modelport.prompt("sim:openai:gpt-4o", "hi", seed=1, max_tokens=5)
    text = response.text()
    assert response.finish_reason == "length"
    assert response.usage is not None and response.usage.output_tokens is not None
    assert 1 <= response.usage.output_tokens <= 5
    assert token_rule(api.get_catalog()["openai/gpt-4o"]).count(text) <= 5


def test_stop_sequence_ends_before_it() -> None:
    full = modelport.prompt("sim:openai:gpt-4o", "hi", seed=11).text()
    word = full.split()[5]
    response = modelport.prompt("sim:openai:gpt-4o", "hi", seed=11, stop=[word])
    text = response.text()
    assert response.finish_reason == "stop"
    assert word not in text
    assert full.startswith(text)
    assert text == full[: full.index(word)]


def test_echo_and_fixed_generators() -> None:
    echo = modelport.prompt(
        "sim:openai:gpt-4o", "say it back", options={"metadata": {"sim_generator": "echo"}}
    )
    assert echo.text() == "say it back"
    fixed = modelport.prompt(
        "sim:openai:gpt-4o",
        "anything",
        options={"metadata": {"sim_generator": "fixed", "sim_reply": "Forty-two."}},
    )
    assert fixed.text() == "Forty-two."


def test_template_and_scripted_conversation_generators() -> None:
    filled = modelport.prompt(
        "sim:openai:gpt-4o",
        "ping",
        options={
            "metadata": {"sim_generator": "template", "sim_reply": "{model} heard {last_user!r}"}
        },
    )
    assert filled.text() == "openai:gpt-4o heard 'ping'"
    script = ["First.", "Second.", "Last."]
    meta = {"metadata": {"sim_generator": "script", "sim_script": json.dumps(script)}}
    conversation = modelport.chat("sim:openai:gpt-4o", options=meta)
    replies = [conversation.prompt(f"turn {n}").text() for n in range(4)]
    assert replies == ["First.", "Second.", "Last.", "Last."]
    with pytest.raises(InvalidValueError, match="sim_script"):
        modelport.prompt(
            "sim:openai:gpt-4o",
            "x",
            options={"metadata": {"sim_generator": "script", "sim_script": "not json"}},
        ).text()
    with pytest.raises(InvalidValueError, match="cannot be filled"):
        modelport.prompt(
            "sim:openai:gpt-4o",
            "x",
            options={"metadata": {"sim_generator": "template", "sim_reply": "{nope}"}},
        ).text()


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "due": {"type": "string", "format": "date"},
        "owner": {"$ref": "#/$defs/person"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
        "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "minItems": 1},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
    },
    "required": ["title", "status", "due", "owner", "tags", "steps", "score", "note"],
    "additionalProperties": False,
    "$defs": {
        "person": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer", "minimum": 18, "maximum": 99},
                "active": {"type": "boolean"},
            },
            "required": ["email", "age", "active"],
            "additionalProperties": False,
        },
        "step": {
            "type": "object",
            "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}, "kind": {"const": "x"}},
            "required": ["n", "kind"],
        },
    },
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_json_schema_answer_validates(seed: int) -> None:
    response = modelport.prompt(
        "sim:openai:gpt-4o",
        "plan it",
        seed=seed,
        response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": SCHEMA}},
    )
    value = json.loads(response.text())
    jsonschema.validate(value, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert value["owner"]["age"] >= 18
    assert value["steps"][0]["kind"] == "x"


def test_json_object_answer_is_json() -> None:
    response = modelport.prompt(
        "sim:openai:gpt-4o", "json please", response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(response.text()), dict)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
NOTE = {
    "type": "function",
    "function": {
        "name": "add_note",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "pinned": {"type": "boolean"}},
            "required": ["text", "pinned"],
        },
    },
}


def test_tool_call_arguments_validate() -> None:
    response = modelport.prompt("sim:openai:gpt-4o", "weather?", tools=[WEATHER, NOTE], seed=5)
    calls = response.tool_calls
    assert response.finish_reason == "tool_calls"
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"].startswith("call_")
    jsonschema.validate(
        json.loads(calls[0]["function"]["arguments"]), WEATHER["function"]["parameters"]
    )

    named = modelport.prompt(
        "sim:openai:gpt-4o",
        "note it",
        tools=[WEATHER, NOTE],
        tool_choice={"type": "function", "function": {"name": "add_note"}},
        stream=True,
    )
    assert list(named) == []  # a tool call streams no text
    call = named.tool_calls[0]
    assert call["function"]["name"] == "add_note"
    jsonschema.validate(json.loads(call["function"]["arguments"]), NOTE["function"]["parameters"])

    none = modelport.prompt("sim:openai:gpt-4o", "hi", tools=[WEATHER], tool_choice="none")
    assert none.text() and none.tool_calls == []


def test_after_a_tool_result_the_answer_is_text() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    response = modelport.prompt("sim:openai:gpt-4o", messages=messages, tools=[WEATHER])
    assert response.text()
    assert response.finish_reason == "stop"
    assert response.tool_calls == []


def test_tools_refused_by_a_model_without_tool_calling() -> None:
    entry = api.get_catalog()["deepseek/deepseek-reasoner"]
    assert entry.capabilities.tool_calling is False
    response = modelport.prompt("sim:deepseek:deepseek-reasoner", "hi", tools=[WEATHER])
    with pytest.raises(UnsupportedOperationError, match="does not support tools"):
        response.text()


def test_reasoning_model_reports_reasoning_tokens() -> None:
    quick = modelport.prompt("sim:deepseek:deepseek-reasoner", "think", seed=2)
    quick.text()
    assert quick.usage is not None
    assert quick.usage.reasoning_tokens == 0  # thinking is asked for, not assumed
    response = modelport.prompt(
        "sim:deepseek:deepseek-reasoner", "think", seed=2, reasoning_effort="high"
    )
    response.text()
    assert response.usage is not None and response.usage.reasoning_tokens > 0
    assert response.usage.output_tokens == response.usage.reasoning_tokens + count_tokens(
        response.text()
    )


def _embed(model: str, texts: list[str], **options: Any) -> Any:
    return asyncio.run(api.embed_texts(model, texts, **options))


def test_embeddings_size_norm_and_determinism() -> None:
    done = _embed("sim:openai:text-embedding-3-small", ["a", "b", "a"])
    vectors = done.vectors
    assert [len(v) for v in vectors] == [1536] * 3
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    again = _embed("sim:openai:text-embedding-3-small", ["a"])
    assert again.vectors[0] == vectors[0]
    short = _embed("sim:openai:text-embedding-3-small", ["a"], dimensions=256)
    assert len(short.vectors[0]) == 256
    assert len(_embed("sim:openai:text-embedding-3-large", ["a"]).vectors[0]) == 3072
    with pytest.raises(UnsupportedOperationError, match="does not make embeddings"):
        _embed("sim:openai:gpt-4o", ["a"])
    report = api.usage_report(by="access")
    assert [r.key for r in report.rows] == ["sim"]


def test_unknown_model_is_one_clear_error() -> None:
    response = modelport.prompt("sim:acme/nothing", "hi")
    with pytest.raises(ModelNotFoundError) as caught:
        response.text()
    assert str(caught.value) == "The catalog has no model 'acme/nothing' to simulate."
    assert "modelport models" in (caught.value.hint or "")


def test_context_window_enforced() -> None:
    api.add_entries([_api_entry("acme/tiny-chat", context_window=64, max_output_tokens=32)])
    ok = modelport.prompt("sim:acme/tiny-chat", "short", max_tokens=16)
    assert ok.text()
    long = modelport.prompt("sim:acme/tiny-chat", "word " * 40, max_tokens=30)
    with pytest.raises(InputTooLongError) as caught:
        long.text()
    assert caught.value.limit == 64 and caught.value.tokens == 4 + 40 + 30


def test_speed_and_profile_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_SIM_SPEED", "10x")
    api.reset()
    entry = _api_entry(
        "acme/timed",
        latency={
            "time_to_first_token_ms": 400,
            "inter_token_latency_ms_mean": 40,
            "inter_token_latency_ms_std": 5,
        },
    )
    provider = SimProvider()
    reply = "one two four five six nine ten red cat dog"

    async def measure(seed: int) -> tuple[float, list[float]]:
        request = ChatRequest(
            model="acme/timed",
            messages=[{"role": "user", "content": "hi"}],
            seed=seed,
            options={"metadata": {"sim_generator": "fixed", "sim_reply": reply}},
            entry=entry,
        )
        started = time.perf_counter()
        stamps: list[float] = []
        async for chunk in provider.stream_chat(request, None):
            if chunk.delta.get("content"):
                stamps.append(time.perf_counter())
        assert len(stamps) == 10
        return stamps[0] - started, [b - a for a, b in itertools.pairwise(stamps)]

    async def run_all() -> list[tuple[float, list[float]]]:
        return [await measure(seed) for seed in range(30)]

    results = asyncio.run(run_all())
    ttft = statistics.fmean(t for t, _ in results) * 1000
    itl = statistics.fmean(g for _, gaps in results for g in gaps) * 1000
    assert ttft == pytest.approx(40.0, rel=0.10)
    assert itl == pytest.approx(4.0, rel=0.10)


@pytest.mark.slow
def test_serve_simulate_answers_every_hosted_model_without_a_key(tmp_path: Path) -> None:
    import anthropic
    import openai

    from tests.serving import serve

    env = {"MODELPORT_SIM_SPEED": "instant", "MODELPORT_PROVIDER_RETRIES": "0"}
    with serve(tmp_path / "home", "--simulate", env=env) as server:
        assert "(hosted models simulated)" in server.output()
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="openai:gpt-4o", messages=[{"role": "user", "content": "hi"}], seed=1
        )
        assert raw.headers["x-modelport-provider"] == "sim"
        assert raw.headers["x-modelport-access"] == "sim"
        assert raw.parse().choices[0].message.content
        claude = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        message = claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        embedded = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        assert [len(d.embedding) for d in embedded.data] == [1536, 1536]
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(
                model="openai:gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                metadata={"sim_fault": "429"},
            )
        assert limited.value.response.headers["retry-after"] == "1"
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="openai:gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                metadata={"sim_fault": "503"},
            )
        stats = httpx.get(f"{server.url}/api/v1/sim/stats").json()["data"]
        assert stats["models"]["openai:gpt-4o"]["faults"] == {"429": 1, "503": 1}
        assert stats["requests"] >= 4


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each fault reaches the caller as is (retries would hide a drawn 429 or 500).
    monkeypatch.setenv("MODELPORT_PROVIDER_RETRIES", "0")
    monkeypatch.setenv("MODELPORT_SIM_SPEED", "instant")
    api.reset()


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", ProviderRateLimitError),
        ("500", ProviderUnavailableError),
        ("503", ProviderUnavailableError),
        ("timeout", ProviderTimeoutError),
    ],
)
def test_each_fault_is_the_error_a_real_provider_gives(
    no_retries: None, kind: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        modelport.prompt("sim:openai:gpt-4o", "hi", metadata={"sim_fault": kind}).text()
    if kind == "429":
        assert caught.value.retry_after == 1.0  # type: ignore[attr-defined]
    assert "(simulated)" in str(caught.value) or kind == "timeout"


def test_a_cut_stream_ends_with_an_error_after_some_text(no_retries: None) -> None:
    response = modelport.prompt(
        "sim:openai:gpt-4o", "hi", stream=True, seed=4, metadata={"sim_fault": "cut"}
    )
    pieces: list[str] = []

    def read() -> None:
        pieces.extend(response)

    with pytest.raises(ProviderUnavailableError):
        read()
    assert pieces  # some text came before the cut


def test_a_retried_fault_is_invisible_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_SIM_SPEED", "instant")
    monkeypatch.setenv("MODELPORT_SIM_FAULTS", "500=1")
    api.reset()
    with pytest.raises(ProviderUnavailableError):  # every try fails: the retries give up
        modelport.prompt("sim:openai:gpt-4o", "hi").text()
    stats = api.prompting.sim_stats().models["openai:gpt-4o"]
    assert stats.faults == {"500": 3}  # the first try and two retries


def test_requests_per_minute_are_limited_with_a_retry_after(
    no_retries: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_SIM_RPM", "2")
    api.reset()
    for _ in range(2):
        assert modelport.prompt("sim:openai:gpt-4o-mini", "hi").text()
    with pytest.raises(ProviderRateLimitError) as caught:
        modelport.prompt("sim:openai:gpt-4o-mini", "hi").text()
    assert 50 < caught.value.retry_after <= 60  # type: ignore[operator]
    stats = api.prompting.sim_stats().models["openai:gpt-4o-mini"]
    assert (stats.requests, stats.rate_limited) == (3, 1)


def test_fault_rates_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.settings import load_settings

    rates = load_settings({"MODELPORT_SIM_FAULTS": "429=0.1,cut=0.2"}).sim_faults
    assert rates == {"429": 0.1, "cut": 0.2}
    for bad in ("404=0.1", "500=2", "500=0.6,503=0.6"):
        with pytest.raises(ConfigError):
            load_settings({"MODELPORT_SIM_FAULTS": bad})
