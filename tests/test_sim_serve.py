"""`modelport serve --simulate` through the official `openai` and `anthropic` clients: the
answers, their schemas, seeds, faults, limits, and timing that keeps to the profile."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import make_entry
from tests.serving import ServerProcess, serve

pytestmark = pytest.mark.slow

#: A model with a profile of its own: at 10x, 200 ms to the first token and 4 ms between
#: (long enough that a loaded machine's few milliseconds per request stay inside 10 %).
TIMED = "acme/timed-chat"
PROFILE = {
    "time_to_first_token_ms": 2000,
    "inter_token_latency_ms_mean": 40,
    "inter_token_latency_ms_std": 8,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def _import_entries(home: Path, tmp: Path, entries: list[Any]) -> None:
    """Add catalog entries to a home as a user would, with `modelport catalog import`."""
    path = tmp / "entries.json"
    path.write_text(json.dumps([e.model_dump(mode="json", exclude_none=True) for e in entries]))
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "catalog", "import", str(path)],
        env={**_env(), "MODELPORT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("sim-serve")
    home = tmp / "home"
    timed = make_entry(
        TIMED,
        source="api",
        capabilities={"chat": True, "tool_calling": True, "structured_outputs": True},
        latency=PROFILE,
    )
    _import_entries(home, tmp, [timed])
    env = {"MODELPORT_PROVIDER_RETRIES": "0"}
    with serve(home, "--simulate", "--speed", "10x", env=env) as running:
        yield running


def _client(server: ServerProcess) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_ttft_and_itl_keep_to_the_profile_over_200_streams(server: ServerProcess) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    # A few streams at once: the client's own parsing of many concurrent streams would delay
    # its clock, and the test measures the server.
    limit = asyncio.Semaphore(4)

    async def one(seed: int) -> tuple[float, list[float]]:
        async with limit:
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model=TIMED,
                messages=[{"role": "user", "content": "Say something."}],
                stream=True,
                max_tokens=12,
                seed=seed,
            )
            stamps = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    stamps.append(time.perf_counter())
            return stamps[0] - started, [b - a for a, b in itertools.pairwise(stamps)]

    async def run_all() -> list[tuple[float, list[float]]]:
        try:
            await asyncio.gather(*(one(seed) for seed in range(-4, 0)))  # warm: first imports
            return await asyncio.gather(*(one(seed) for seed in range(200)))
        finally:
            await client.close()

    results = asyncio.run(run_all())
    ttft_ms = statistics.fmean(t for t, _ in results) * 1000
    itl_ms = statistics.fmean(g for _, gaps in results for g in gaps) * 1000
    # The profile at 10x; the prompt's ~10 tokens add 0.1 % to the first token's wait.
    assert ttft_ms == pytest.approx(200.0, rel=0.10)
    assert itl_ms == pytest.approx(4.0, rel=0.10)
    assert sum(len(gaps) for _, gaps in results) == 200 * 11


def test_whole_and_streamed_answers_agree_for_one_seed(server: ServerProcess) -> None:
    client = _client(server)
    request = {
        "model": "openai:gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7,
    }
    whole = client.chat.completions.create(**request)
    again = client.chat.completions.create(**request)
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**request, stream=True)
        if c.choices
    ]
    text = whole.choices[0].message.content
    assert text and text == again.choices[0].message.content == "".join(pieces)
    assert whole.usage.completion_tokens == len([p for p in pieces if p])
    # The seed as a header, for clients that cannot send one in the body.
    by_header = client.chat.completions.create(
        model="openai:gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-modelport-seed": "7"},
    )
    assert by_header.choices[0].message.content == text
    other = client.chat.completions.create(**{**request, "seed": 8})
    assert other.choices[0].message.content != text


def test_tool_calls_and_structured_output_validate(server: ServerProcess) -> None:
    client = _client(server)
    called = client.chat.completions.create(
        model=TIMED,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        seed=3,
    )
    assert called.choices[0].finish_reason == "tool_calls"
    call = called.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["name", "tags", "score"],
        "additionalProperties": False,
    }
    structured = client.chat.completions.create(
        model="openai:gpt-4o",
        messages=[{"role": "user", "content": "Describe it."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "thing", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(structured.choices[0].message.content or ""), schema)


def test_embeddings_have_each_models_dimension(server: ServerProcess) -> None:
    client = _client(server)
    for model, size in (
        ("openai:text-embedding-3-small", 1536),
        ("openai:text-embedding-3-large", 3072),
    ):
        done = client.embeddings.create(model=model, input=["a cat", "a dog"])
        assert [len(d.embedding) for d in done.data] == [size, size]
        norm = sum(v * v for v in done.data[0].embedding) ** 0.5
        assert norm == pytest.approx(1.0, abs=1e-6)
    short = client.embeddings.create(
        model="openai:text-embedding-3-small", input="a cat", dimensions=256
    )
    assert len(short.data[0].embedding) == 256


def test_each_fault_is_the_sdks_own_exception(server: ServerProcess) -> None:
    import anthropic
    import openai

    client = _client(server)
    ask = {"model": "openai:gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    expected = {
        "429": openai.RateLimitError,
        "500": openai.InternalServerError,
        "503": openai.InternalServerError,
        "timeout": openai.APIStatusError,
    }
    for kind, error in expected.items():
        with pytest.raises(error) as caught:
            client.chat.completions.create(**ask, metadata={"sim_fault": kind})
        status = caught.value.status_code
        # An upstream's 5xx is the gateway's 503 (504 when it timed out), as a proxy says.
        assert status == {"429": 429, "500": 503, "503": 503, "timeout": 504}[kind], kind
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(**ask, metadata={"sim_fault": "429"})
    assert limited.value.response.headers["retry-after"] == "1"
    # A stream cut mid-way: some text, then the SDK raises.
    pieces: list[str] = []

    def read_cut_stream() -> None:
        stream = client.chat.completions.create(**ask, stream=True, metadata={"sim_fault": "cut"})
        pieces.extend(c.choices[0].delta.content or "" for c in stream if c.choices)

    with pytest.raises(openai.APIError):
        read_cut_stream()
    assert "".join(pieces)
    # Anthropic's client gets Anthropic's exception for the same fault.
    claude = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-modelport-sim-fault": "429"},
        )


def test_requests_per_minute_limit_is_enforced(tmp_path: Path) -> None:
    import openai

    env = {"MODELPORT_SIM_SPEED": "instant", "MODELPORT_SIM_RPM": "3"}
    with serve(tmp_path / "home", "--simulate", env=env) as limited:
        client = _client(limited)
        ask = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(3):
            client.chat.completions.create(**ask)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**ask)
        assert int(caught.value.response.headers["retry-after"]) >= 1
        # Another model has its own budget.
        client.chat.completions.create(**{**ask, "model": "openai:gpt-4o"})
        stats = httpx.get(f"{limited.url}/api/v1/sim/stats").json()["data"]
        assert stats["models"]["openai:gpt-4o-mini"]["rate_limited"] == 1


def test_ollama_clients_reach_hosted_models_simulated(server: ServerProcess) -> None:
    import ollama

    client = ollama.Client(host=server.url)
    whole = client.chat(
        model="openai:gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        options={"seed": 4, "num_predict": 12},
    )
    assert whole.done and whole.message.content
    assert whole.done_reason in ("stop", "length")
    assert 1 <= (whole.eval_count or 0) <= 12
    assert (whole.prompt_eval_count or 0) > 0
    streamed = list(
        client.chat(
            model="openai:gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            options={"seed": 4, "num_predict": 12},
            stream=True,
        )
    )
    assert streamed[-1].done
    assert "".join(p.message.content or "" for p in streamed) == whole.message.content

    called = client.chat(
        model=TIMED,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        options={"seed": 1},
    )
    calls = called.message.tool_calls or []
    assert calls and calls[0].function.name == "get_weather"
    arguments = dict(calls[0].function.arguments)
    # Ollama's client keeps type, enum and required of a tool's parameters (not bounds).
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in ("celsius", "fahrenheit")
    assert set(arguments) <= {"city", "unit", "days"}

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
        "required": ["city", "rank"],
    }
    shaped = client.generate(model="openai:gpt-4o", prompt="A city?", format=schema)
    jsonschema.validate(json.loads(shaped.response), schema)

    embedded = client.embed(model="openai:text-embedding-3-small", input=["a", "b"])
    assert [len(v) for v in embedded.embeddings] == [1536, 1536]

    # A local Ollama name with a tag stays local: looked for in the store, then on the Hub
    # (unreachable from the tests), never simulated.
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="llama3.2:1b", messages=[{"role": "user", "content": "hi"}])
    assert "Hugging Face Hub" in str(missing.value)
    # What a hosted model cannot take is refused by name.
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(
            model="openai:gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            options={"num_ctx": 4096},
        )
    assert refused.value.status_code == 400
    assert "num_ctx" in str(refused.value)


def test_text_completions_of_a_hosted_model(server: ServerProcess) -> None:
    client = _client(server)
    whole = client.completions.create(
        model="openai:gpt-4o", prompt="Once upon a time", max_tokens=8, seed=2
    )
    assert whole.object == "text_completion"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 8
    streamed = client.completions.create(
        model="openai:gpt-4o",
        prompt="Once upon a time",
        max_tokens=8,
        seed=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
