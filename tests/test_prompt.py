"""``modelport.prompt`` / ``modelport.chat`` in Python and ``modelport prompt`` / ``chat`` on
the command line, against a loopback server speaking OpenAI's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport
import modelport.api as api
from modelport.errors import (
    BudgetExceededError,
    MissingKeyError,
    ModelportError,
    ModelRetiredError,
    UnknownProviderError,
)
from tests.conftest import make_entry
from tests.upstreams.base import running
from tests.upstreams.openai_server import OpenAIServer

KEY = "sk-prompttest-0123456789abcd"


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    with running(OpenAIServer(key=KEY)) as server:
        monkeypatch.setenv("MODELPORT_OPENAI_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        api.reset()
        yield server


def test_prompt_answers_and_says_what_it_cost(upstream: OpenAIServer) -> None:
    response = modelport.prompt("openai:gpt-4o", "What is two and two", system="Be brief.")
    assert response.text() == "Hello from gpt-4o."
    assert (response.model, response.provider, response.access) == (
        "openai:gpt-4o",
        "openai",
        "api",
    )
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 3)
    pricing = api.get_catalog()["openai/gpt-4o"].pricing
    assert pricing is not None
    assert pricing.input_per_1m_tokens is not None
    assert pricing.output_per_1m_tokens is not None
    expected = (7 * pricing.input_per_1m_tokens + 3 * pricing.output_per_1m_tokens) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    [seen] = upstream.requests("/chat/completions")
    assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_streamed_prompt_yields_pieces(upstream: OpenAIServer) -> None:
    response = modelport.prompt("openai:gpt-4o-mini", "hi", stream=True)
    pieces = list(response)
    assert pieces == ["Hello", " from", " gpt-4o-mini."]
    assert response.text() == "Hello from gpt-4o-mini."
    assert response.usage is not None
    assert response.usage.output_tokens == 3


def test_a_conversation_keeps_its_history(upstream: OpenAIServer) -> None:
    chat = modelport.chat("openai:gpt-4o", system="You are terse.")
    assert chat.prompt("first question").text() == "Hello from gpt-4o."
    chat.prompt("second question", stream=True).text()
    second = upstream.requests("/chat/completions")[-1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == "Hello from gpt-4o."


def test_an_explicit_key_beats_the_environment(upstream: OpenAIServer) -> None:
    upstream.key = "sk-explicit-key-000000000"
    assert modelport.prompt("openai:gpt-4o", "hi", key="sk-explicit-key-000000000").text()
    assert upstream.requests()[-1].headers["authorization"] == "Bearer sk-explicit-key-000000000"


def test_a_stored_key_is_used_when_no_variable_is_set(
    upstream: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingKeyError) as caught:
        modelport.prompt("openai:gpt-4o", "hi").text()
    assert "modelport keys set openai" in caught.value.one_line()
    api.set_key("openai", KEY)
    assert modelport.prompt("openai:gpt-4o", "hi").text() == "Hello from gpt-4o."
    [info] = api.list_keys()
    assert info.last_used is not None


def test_names_that_are_not_models_are_refused() -> None:
    with pytest.raises(UnknownProviderError):
        modelport.prompt("nosuchprovider:model", "hi")
    with pytest.raises(ModelportError):
        modelport.prompt("openai:gpt-4o@v1", "hi")


def _cli(
    *args: str, upstream: OpenAIServer, home: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELPORT_HOME": str(home),
        "MODELPORT_OPENAI_URL": upstream.base_url,
        "OPENAI_API_KEY": KEY,
    }
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_the_prompt_command_reads_stdin_and_prints_json(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    done = _cli(
        "prompt",
        "openai:gpt-4o",
        "Summarise it",
        "-o",
        "temperature=0.2",
        "--json",
        upstream=upstream,
        home=tmp_path / "home",
        stdin="a long text\n",
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["text"] == "Hello from gpt-4o."
    assert document["access"] == "api"
    assert document["usage"]["prompt_tokens"] == 5
    assert document["cost_usd"] > 0
    sent = upstream.requests("/chat/completions")[-1].body
    assert sent["temperature"] == 0.2
    assert sent["messages"][-1]["content"] == "a long text\n\nSummarise it"
    usage = _cli("usage", "--by", "call", "--json", upstream=upstream, home=tmp_path / "home")
    assert usage.returncode == 0, usage.stderr
    assert KEY not in usage.stdout + done.stdout + done.stderr


@pytest.mark.slow
def test_the_chat_command_keeps_history_and_errors_are_one_line(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    done = _cli(
        "chat",
        "openai:gpt-4o",
        upstream=upstream,
        home=tmp_path / "home",
        stdin="hello\nand again\nexit\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Hello from gpt-4o.") == 2
    last = upstream.requests("/chat/completions")[-1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user"]
    upstream.fail(401)
    refused = _cli("prompt", "openai:gpt-4o", "hi", upstream=upstream, home=tmp_path / "home")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: The OpenAI key is rejected (401). Set one with `modelport keys set openai` "
        "(the key came from $OPENAI_API_KEY)."
    )


def test_recommendations_say_which_api_models_have_a_key_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    api.reset()
    picks = api.select_models("text-generation", include_self_hosted=False, limit=400)
    by_provider = {p.entry.provider: p for p in picks}
    assert by_provider["openai"].key == "$OPENAI_API_KEY"
    assert "callable here (key: $OPENAI_API_KEY)" in by_provider["openai"].reasons
    assert by_provider["anthropic"].key is None
    assert "no key here: `modelport keys set anthropic`" in by_provider["anthropic"].reasons
    usable = api.select_models(
        "text-generation", include_self_hosted=False, limit=400, usable_only=True
    )
    assert usable
    assert {p.entry.provider for p in usable} == {"openai"}
    assert KEY not in repr(usable)


BIN = Path(__file__).parent / "bin"


def test_auto_access_uses_a_signed_in_vendor_cli_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_ARGV", str(tmp_path / "argv.jsonl"))
    api.reset()
    response = modelport.prompt("anthropic:claude-sonnet-4-5", "hello", access="auto")
    assert response.text() == "Hello from claude-sonnet-4-5."
    assert response.access == "cli"
    assert (tmp_path / "argv.jsonl").exists()
    report = api.usage_report(since="1h", by="access")
    assert [row.key for row in report.rows] == ["cli"]
    # Signed out: auto falls back to the API, which needs a key.
    monkeypatch.setenv("MODELPORT_FAKE_CLAUDE_SIGNED_IN", "0")
    api.reset()
    with pytest.raises(MissingKeyError):
        modelport.prompt("anthropic:claude-sonnet-4-5", "hello", access="auto").text()


def test_a_daily_budget_refuses_calls_once_spent(
    upstream: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_DAILY_BUDGET", "0.00001")
    api.reset()
    first = modelport.prompt("openai:gpt-4o", "one two three four five six seven eight")
    assert first.text()
    assert first.cost_usd is not None
    assert first.cost_usd > 0.00001
    with pytest.raises(BudgetExceededError) as caught:
        modelport.prompt("openai:gpt-4o", "again").text()
    assert "daily budget" in caught.value.message
    assert len(upstream.requests("/chat/completions")) == 1  # refused before any request


def test_a_retired_model_is_explained_with_the_catalogs_deprecation(
    upstream: OpenAIServer,
) -> None:
    api.add_entries(
        [
            make_entry(
                "openai/retired-davinci",
                source="api",
                provider="openai",
                status="deprecated",
                deprecation={
                    "message": "Shut down on 2024-01-04.",
                    "replacement": "openai/gpt-4o-mini",
                },
            )
        ]
    )
    with pytest.raises(ModelRetiredError) as caught:
        modelport.prompt("openai:retired-davinci", "hi").text()
    assert "The catalog says: Shut down on 2024-01-04." in caught.value.message
    assert caught.value.hint == "Use openai/gpt-4o-mini instead."


def test_an_explicit_key_never_reaches_a_fallbacks_provider(
    upstream: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(OpenAIServer(key="gsk-groq-own-key-0000", reply="Groq here.")) as groq:
        monkeypatch.setenv("MODELPORT_GROQ_URL", groq.base_url)
        monkeypatch.setenv("GROQ_API_KEY", "gsk-groq-own-key-0000")
        api.reset()
        upstream.fail(503, times=3)
        response = modelport.prompt(
            "openai:gpt-4o", "hi", key=KEY, fallbacks=["groq:llama-3.3-70b-versatile"]
        )
        assert response.text() == "Groq here."
        assert response.failed[0][0] == "openai:gpt-4o"
        [seen] = groq.requests("/chat/completions")
        assert seen.headers["authorization"] == "Bearer gsk-groq-own-key-0000"


def test_a_response_read_again_never_calls_again(upstream: OpenAIServer) -> None:
    response = modelport.prompt("openai:gpt-4o", "hi", stream=True)
    pieces = iter(response)
    assert next(pieces) == "Hello"
    pieces.close()  # the caller stopped early
    assert response.text() == "Hello"
    assert len(upstream.requests("/chat/completions")) == 1


def test_a_repeated_turn_stays_in_the_history(upstream: OpenAIServer) -> None:
    chat = modelport.chat("openai:gpt-4o")
    chat.prompt("yes").text()
    chat.prompt("yes").text()
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]


def test_options_a_provider_lacks_are_refused_by_name(upstream: OpenAIServer) -> None:
    with pytest.raises(ModelportError) as caught:
        modelport.prompt("openai:gpt-4o", "hi", frobnicate=1).text()
    assert "`frobnicate`" in caught.value.message
    with pytest.raises(ModelportError) as two:
        modelport.prompt("openai:gpt-4o", "hi", n=2).text()
    assert "`n` above 1" in two.value.message
    assert upstream.requests("/chat/completions") == []


@pytest.mark.slow
def test_reserved_and_unknown_cli_options_are_one_sentence(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    for option, said in (
        ("stream=true", "`stream` is not a request option."),
        ("foo=1", "do not take `foo`"),
    ):
        done = _cli(
            "prompt", "openai:gpt-4o", "hi", "-o", option, upstream=upstream, home=tmp_path / "home"
        )
        assert done.returncode == 2, done.stderr
        assert said in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
