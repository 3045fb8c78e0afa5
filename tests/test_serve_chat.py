"""OpenAI's chat and text completions as the official `openai` client sees them, against a
real `modelport serve` that pulls a tiny Qwen2 chat model from a loopback Hub."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import tiny_models
from tests.hf_server import serve_hub
from tests.serving import ServerProcess, serve

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow

CHAT = "acme/tiny-chat"
PLAIN = "acme/tiny-gpt2"  # a decoder without a chat template
MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "who wrote this book"},
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decoders")
    return {
        CHAT: tiny_models.build_chat_decoder(root / "chat"),
        PLAIN: tiny_models.build_decoder(root / "gpt2", "gpt2"),
    }


@pytest.fixture(scope="module")
def server(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with serve_hub() as hub:
        for name, folder in folders.items():
            hub.add_folder(name, folder, pipeline_tag="text-generation")
        home = tmp_path_factory.mktemp("chat-home")
        with serve(home, env={"HF_ENDPOINT": hub.url}) as process:
            yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def _reference(folder: Path, messages: list[dict[str, str]], new: int) -> tuple[str, list[int]]:
    """transformers' greedy answer to a conversation rendered with its template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=new, do_sample=False)
    tokens = out[0, ids["input_ids"].shape[1] :].tolist()
    return tokenizer.decode(tokens, skip_special_tokens=True), tokens


def test_greedy_chat_equals_transformers_generate(client: Any, folders: dict[str, Path]) -> None:
    answer = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=24, temperature=0
    )
    expected, tokens = _reference(folders[CHAT], MESSAGES, 24)
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected
    # transformers counts the end-of-turn token it stopped on; so does the usage.
    assert answer.usage.completion_tokens == len(tokens)
    assert choice.finish_reason == ("length" if len(tokens) == 24 else "stop")
    assert answer.usage.prompt_tokens > 10
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer.model == CHAT and answer.id.startswith("chatcmpl-")


def test_streaming_joins_to_the_same_answer_and_ends_with_usage(client: Any) -> None:
    whole = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=20, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=CHAT,
            messages=MESSAGES,
            max_tokens=20,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert (
        finishes[-1] == whole.choices[0].finish_reason and finishes.count(None) == len(finishes) - 1
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_the_raw_stream_is_sse_ending_in_done(server: ServerProcess) -> None:
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={"model": CHAT, "messages": MESSAGES, "max_tokens": 5, "stream": True},
        timeout=120,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_max_tokens_stop_and_seeds(client: Any) -> None:
    short = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_completion_tokens=3, temperature=0
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 3
    full = (
        client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=30, temperature=0)
        .choices[0]
        .message.content
    )
    words = full.split()
    assert len(words) >= 3, full  # the tiny model's greedy answer has words to stop at
    stop = " " + words[2]
    stopped = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=30, temperature=0, stop=[stop]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == full[: full.index(stop)]
    sampled = [
        client.chat.completions.create(
            model=CHAT, messages=MESSAGES, max_tokens=12, temperature=1.0, seed=7
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]


def test_text_completions_with_echo(client: Any) -> None:
    answer = client.completions.create(
        model=PLAIN, prompt="the quick brown fox", max_tokens=5, temperature=0, echo=True
    )
    assert answer.choices[0].text.startswith("the quick brown fox")
    assert answer.object == "text_completion"
    default = client.completions.create(model=PLAIN, prompt="hello world", temperature=0)
    assert default.usage.completion_tokens <= 16  # OpenAI's default max_tokens


def test_what_a_local_model_cannot_do_is_a_400_naming_the_parameter(client: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=CHAT, messages=MESSAGES, **extra)
        assert refused.value.body["param"] == param, (extra, refused.value.body)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as no_template:
        client.chat.completions.create(model=PLAIN, messages=MESSAGES, tools=tools)
    assert "chat template" in str(no_template.value)
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "hello " * 400}], max_tokens=200
        )
    assert too_long.value.body["code"] == "context_length_exceeded"
    assert re.search(r"at most 512 tokens", too_long.value.body["message"])


def test_tools_reach_a_template_that_reads_them(client: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "the weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    answer = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, tools=tools, max_tokens=8, temperature=0
    )
    assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")
    without = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, max_tokens=8, temperature=0
    )
    # The template wrote the tool's schema into the prompt: it is longer by that much.
    assert answer.usage.prompt_tokens > without.usage.prompt_tokens + 20
    none = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, tools=tools, tool_choice="none", max_tokens=8
    )
    assert none.usage.prompt_tokens == without.usage.prompt_tokens


def test_a_client_that_goes_away_stops_its_generation(server: ServerProcess) -> None:
    body = {
        "model": CHAT,
        "messages": MESSAGES,
        "max_tokens": 400,
        "temperature": 1.0,
        "seed": 3,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, timeout=120
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                break  # one token arrived: go away
    deadline = time.monotonic() + 20
    pattern = re.compile(r"the client went away; generation stopped after (\d+) tokens")
    while not (found := pattern.search(server.output())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found, server.output()[-2000:]
    assert int(found.group(1)) < 400


def test_a_hosted_model_that_fails_falls_back_to_a_local_one(
    client: Any, folders: dict[str, Path]
) -> None:
    # The OpenAI URL of the server is a closed port: the hosted model cannot answer.
    raw = client.chat.completions.with_raw_response.create(
        model="openai:gpt-4o",
        messages=MESSAGES,
        max_tokens=6,
        temperature=0,
        extra_body={"fallbacks": [CHAT]},
    )
    done = raw.parse()
    assert raw.headers["x-modelport-model"] == CHAT
    assert raw.headers["x-modelport-fallback-from"] == "openai:gpt-4o"
    expected, _ = _reference(folders[CHAT], MESSAGES, 6)
    assert done.choices[0].message.content == expected


def test_local_calls_are_in_the_call_log(client: Any, server: ServerProcess) -> None:
    import time

    import httpx

    client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=3)
    deadline = time.monotonic() + 10
    local: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not local:
        report = httpx.get(f"{server.url}/api/v1/usage", params={"by": "access"}).json()
        local = [row for row in report["data"]["rows"] if row["key"] == "local"]
        time.sleep(0.2)
    assert local
    assert local[0]["calls"] >= 1
    assert local[0]["cost_usd"] == 0.0
