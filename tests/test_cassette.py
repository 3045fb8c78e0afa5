"""Record and replay: `serve --record` keeps real calls (no keys), `--replay` answers them
offline, byte for byte and on their recorded timing, and simulates the rest."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from modelport.errors import InvalidValueError
from modelport.server.cassette import Cassette, Interaction, read_cassette, request_key
from tests.serving import metric, serve
from tests.upstreams.base import running
from tests.upstreams.openai_server import OpenAIServer

KEY = "sk-upstream-secret-0123456789"


def test_requests_match_by_value_not_by_spacing_or_key_order() -> None:
    a = request_key("POST", "/v1/chat/completions", b'{"model":"m","messages":[1, 2]}')
    b = request_key("POST", "/v1/chat/completions", b'{ "messages": [1,2], "model": "m" }')
    c = request_key("POST", "/v1/chat/completions", b'{"model":"m","messages":[2,1]}')
    assert a == b
    assert a != c
    assert a != request_key("POST", "/v1/embeddings", b'{"model":"m","messages":[1,2]}')
    # A body that is not JSON matches by its bytes.
    assert request_key("POST", "/api/chat", b"\xff\x00") == request_key(
        "POST", "/api/chat", b"\xff\x00"
    )


def test_a_cassette_round_trips_and_replays_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    recorder = Cassette.open(replay=None, record=path, secrets=[KEY])
    for n in (1, 2):
        recorder.append(
            Interaction(
                "POST",
                "/v1/chat/completions",
                b'{"model": "m"}',
                200,
                [("content-type", "text/event-stream")],
                [(0.01, f"data: {n} {KEY}\n\n".encode()), (0.02, b"\xff\xfe")],
                0.005,
            ),
            bearer="client-bearer-token-42",
        )
    text = path.read_text()
    assert KEY not in text
    assert "[redacted]" in text
    assert len(text.splitlines()) == 2
    player = Cassette.open(replay=path, record=None)
    assert len(player) == 2
    first = player.find("POST", "/v1/chat/completions", b'{"model":"m"}')
    second = player.find("POST", "/v1/chat/completions", b'{"model":"m"}')
    third = player.find("POST", "/v1/chat/completions", b'{"model":"m"}')
    assert first is not None and second is not None and third is not None
    assert first.chunks[0][1] == b"data: 1 [redacted]\n\n"
    assert second.chunks[0][1] == b"data: 2 [redacted]\n\n"
    assert third.chunks[0][1] == second.chunks[0][1]  # the last answer again
    assert first.chunks[1] == (0.02, b"\xff\xfe")  # bytes that are not UTF-8 survive
    assert first.started == 0.005
    assert player.find("POST", "/v1/chat/completions", b'{"model":"other"}') is None
    assert (player.replayed, player.missed) == (3, 1)


def test_a_malformed_cassette_is_one_clear_sentence(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"request": {"method": "POST"}}\n')
    with pytest.raises(
        InvalidValueError, match=r"Line 1 of the cassette .* is not a recorded call"
    ):
        read_cassette(path)
    with pytest.raises(InvalidValueError, match="There is no cassette at"):
        read_cassette(tmp_path / "missing.jsonl")


def _calls(url: str) -> list[tuple[str, dict[str, object]]]:
    chat = {
        "model": "openai:gpt-4o",
        "messages": [{"role": "user", "content": "Tell me about Paris"}],
    }
    return [
        ("/v1/chat/completions", chat),
        ("/v1/chat/completions", {**chat, "stream": True}),
        ("/v1/embeddings", {"model": "openai:text-embedding-3-small", "input": ["a", "b"]}),
    ]


def _call(url: str, path: str, body: dict[str, object]) -> tuple[int, bytes, float]:
    """Status, raw body and seconds of one call (the body as the client got it)."""
    started = time.perf_counter()
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", url + path, json=body) as response,
    ):
        data = b"".join(response.iter_raw())
        return response.status_code, data, time.perf_counter() - started


@pytest.mark.slow
def test_recorded_calls_replay_byte_identical_offline(tmp_path: Path) -> None:
    import openai

    cassette = tmp_path / "calls.jsonl"
    upstream = OpenAIServer(key=KEY, reply="Paris is the capital of France and its largest city")
    upstream.stream_delay = 0.05  # each streamed piece 50 ms after the last
    live: dict[int, tuple[int, bytes, float]] = {}
    env = {
        "OPENAI_API_KEY": KEY,
        "MODELPORT_PROVIDER_RETRIES": "0",
    }
    with running(upstream):
        env["MODELPORT_OPENAI_URL"] = upstream.base_url
        with serve(tmp_path / "home", "--record", str(cassette), env=env) as server:
            assert f"recording into {cassette}" in server.output()
            for i, (path, body) in enumerate(_calls(server.url)):
                live[i] = _call(server.url, path, body)
                assert live[i][0] == 200, live[i][1]
            assert metric(server, "modelport_cassette_calls_total", ['outcome="recorded"']) == 3
        upstream_calls = len(upstream.requests())
    assert upstream_calls == 3
    recorded = cassette.read_text()
    assert KEY not in recorded
    assert len(recorded.splitlines()) == 3
    streamed = json.loads(recorded.splitlines()[1])
    assert streamed["response"]["headers"]
    assert len(streamed["response"]["chunks"]) > 5

    # The upstream is gone and no key is set: every answer comes from the cassette.
    replay_env = {"MODELPORT_PROVIDER_RETRIES": "0"}
    with serve(tmp_path / "home2", "--replay", str(cassette), env=replay_env) as server:
        assert "(hosted models simulated)" in server.output()
        for i, (path, body) in enumerate(_calls(server.url)):
            status, data, seconds = _call(server.url, path, body)
            assert status == 200
            assert data == live[i][1], f"call {i} differs"
            if body.get("stream"):
                # Recorded timing: the stream takes as long as the live one did.
                assert seconds >= 0.8 * live[i][2]
                assert live[i][2] > 0.3
        # The official client reads the replay as it read the live answer.
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(**_calls(server.url)[0][1])  # type: ignore[arg-type]
        assert raw.headers["x-modelport-replayed"] == "1"
        assert raw.parse().choices[0].message.content == (
            "Paris is the capital of France and its largest city"
        )
        # A call the cassette does not hold is simulated.
        missed = client.chat.completions.with_raw_response.create(
            model="openai:gpt-4o", messages=[{"role": "user", "content": "something else"}]
        )
        assert missed.headers["x-modelport-provider"] == "sim"
        assert "x-modelport-replayed" not in missed.headers
        stats = httpx.get(f"{server.url}/api/v1/sim/stats").json()["meta"]["cassette"]
        assert stats == {"replayed": 4, "missed": 1, "recorded": 0, "interactions": 3}
        assert metric(server, "modelport_cassette_calls_total", ['outcome="replayed"']) == 4
        assert metric(server, "modelport_sim_requests_total", ['model="openai:gpt-4o"']) == 1
