"""The model layer of a real `modelport serve`: keep-alive, the LRU budget, the queue bound,
the API key, the body bound, `modelport ps`/`stop`, and `run` through a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from tests import tiny_models
from tests.serving import ServerProcess, serve

pytestmark = pytest.mark.slow

KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    return {
        "embedder": tiny_models.build_encoder(root / "embedder", "sentence-similarity"),
        "sentiment": tiny_models.build_encoder(root / "sentiment", "text-classification"),
        "filler": tiny_models.build_encoder(root / "filler", "fill-mask"),
    }


@pytest.fixture(scope="module")
def server(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("serve-home")
    env = {
        "MODELPORT_KEEP_ALIVE": "10m",
        "MODELPORT_MAX_LOADED_MODELS": "2",
        "MODELPORT_MAX_QUEUE": "600",
        "MODELPORT_MAX_BATCH_TOKENS": "16",
        "MODELPORT_MAX_REQUEST_BYTES": "300000",
    }
    # Models given as folders are served under their folder names; they load at start.
    args = [str(folders[name]) for name in ("embedder", "sentiment", "filler")]
    with serve(home, *args, env=env, api_key=KEY) as process:
        yield process


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def _loaded(server: ServerProcess) -> dict[str, dict[str, object]]:
    rows = httpx.get(f"{server.url}/api/v1/ps", headers=_auth(), timeout=10).json()["data"]
    return {row["name"]: row for row in rows if row["state"] == "loaded"}


def _predict(server: ServerProcess, model: str, inputs: object, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/predict/{model}",
        json={"inputs": inputs, **extra},
        headers=_auth(),
        timeout=120,
    )


def test_every_route_but_health_needs_the_key(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/api/v1/health").status_code == 200
    missing = httpx.get(f"{server.url}/api/v1/ps")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "requires an API key" in missing.json()["error"]["message"]
    wrong = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong" in wrong.json()["error"]["message"]
    assert KEY not in wrong.text
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    right = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    assert right.embeddings.create(model="embedder", input="hello").data[0].embedding


def test_least_recently_used_model_makes_room(server: ServerProcess) -> None:
    # MODELPORT_MAX_LOADED_MODELS=2: a third model unloads the least recently used one.
    for name, text in (("embedder", "hi"), ("sentiment", "good"), ("filler", "a [MASK]")):
        assert _predict(server, name, text).status_code == 200
    assert set(_loaded(server)) == {"sentiment", "filler"}
    assert "unloaded embedder: filler needs room (MODELPORT_MAX_LOADED_MODELS is 2)" in (
        server.output()
    )
    assert _predict(server, "embedder", "hello").status_code == 200
    assert set(_loaded(server)) == {"filler", "embedder"}  # sentiment was used least lately
    assert _predict(server, "filler", "the [MASK] dog").status_code == 200
    assert _predict(server, "sentiment", "good movie").status_code == 200
    assert set(_loaded(server)) == {"filler", "sentiment"}
    stopped = httpx.delete(f"{server.url}/api/v1/ps/sentiment", headers=_auth())
    assert stopped.status_code == 200
    assert set(_loaded(server)) == {"filler"}
    assert _predict(server, "sentiment", "good").status_code == 200  # loads again
    assert set(_loaded(server)) == {"filler", "sentiment"}
    unknown = _predict(server, "not-a-served-model", "x")
    assert unknown.status_code == 404


def test_a_full_queue_answers_429_with_retry_after(server: ServerProcess) -> None:
    # 500 texts in batches of 16 tokens keep the encoder busy for a while.
    many = [f"the quick brown fox number {i}" for i in range(500)]
    first: dict[str, httpx.Response] = {}

    def big() -> None:
        first["answer"] = _predict(server, "embedder", many)

    thread = threading.Thread(target=big)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = _loaded(server).get("embedder", {}).get("waiting", 0)
        if isinstance(waiting, int) and waiting > 0:
            break
        time.sleep(0.01)
    # With inputs waiting, 600 more pass MODELPORT_MAX_QUEUE=600.
    refused = _predict(server, "embedder", ["one more text"] * 600)
    thread.join()
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "MODELPORT_MAX_QUEUE" in refused.json()["error"]["hint"]
    assert first["answer"].status_code == 200
    assert len(first["answer"].json()["data"]) == 500
    # Alone, a request as large as the queue is served.
    assert _predict(server, "embedder", ["one more text"] * 600).status_code == 200


def test_a_body_past_the_bound_is_413(server: ServerProcess) -> None:
    answer = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": "embedder", "input": ["word " * 50] * 2000},
        headers=_auth(),
    )
    assert answer.status_code == 413
    assert "300,000 bytes" in answer.json()["error"]["message"]


def test_metrics_count_requests_batches_and_loaded_models(server: ServerProcess) -> None:
    _predict(server, "embedder", ["a", "b"])
    text = httpx.get(f"{server.url}/metrics", headers=_auth()).text
    assert 'modelport_batch_size_count{model="embedder"}' in text
    assert "modelport_loaded_models " in text
    assert "modelport_request_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


def _cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELPORT_PORT": str(server.port),
        "MODELPORT_API_KEY": KEY,
    }
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_ps_and_stop_talk_to_the_running_server(server: ServerProcess) -> None:
    _predict(server, "embedder", "hello")
    listed = _cli(server, "ps", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert "embedder" in names
    table = _cli(server, "ps")
    assert "embedder" in table.stdout and "feature-extraction" in table.stdout
    assert _cli(server, "stop", "embedder").returncode == 0
    assert "embedder" not in _loaded(server)
    again = _cli(server, "stop", "embedder")
    assert again.returncode != 0
    assert "is not loaded" in again.stderr and "Traceback" not in again.stderr


def test_run_uses_the_running_server_and_gives_the_same_answer(
    server: ServerProcess, folders: dict[str, Path], tmp_path: Path
) -> None:
    through_server = _cli(server, "run", "sentiment", "--text", "good movie", "--json")
    assert through_server.returncode == 0, through_server.stderr
    assert "sentiment" in _loaded(server)  # the server answered, and keeps the model
    in_process = subprocess.run(
        [
            *(sys.executable, "-m", "modelport", "run", str(folders["sentiment"])),
            *("--text", "good movie", "--json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPORT_HOME": str(tmp_path / "home")},
        timeout=120,
        check=False,
    )
    assert in_process.returncode == 0, in_process.stderr
    ours, theirs = json.loads(through_server.stdout), json.loads(in_process.stdout)
    assert ours["task"] == theirs["task"] == "text-classification"
    assert ours["result"][0]["label"] == theirs["result"][0]["label"]
    assert ours["result"][0]["score"] == pytest.approx(theirs["result"][0]["score"], abs=1e-6)


def test_ps_without_a_server_is_one_sentence(tmp_path: Path) -> None:
    from tests.serving import free_port

    done = subprocess.run(
        [sys.executable, "-m", "modelport", "ps"],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPORT_PORT": str(free_port())},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "No modelport server answers at http://127.0.0.1:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_keep_alive_ends_and_unloads(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("keepalive-home")
    with serve(home, str(folders["embedder"]), env={"MODELPORT_KEEP_ALIVE": "1s"}) as s:
        ps = f"{s.url}/api/v1/ps"
        deadline = time.monotonic() + 15
        while httpx.get(ps).json()["data"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(ps).json()["data"] == []  # the preloaded model expired
        answer = httpx.post(
            f"{s.url}/api/v1/predict/embedder", json={"inputs": "x", "keep_alive": "30m"}
        )
        assert answer.status_code == 200
        [row] = httpx.get(ps).json()["data"]
        assert row["expires_at"] > time.time() + 25 * 60  # the request's own keep-alive
        httpx.post(f"{s.url}/api/v1/predict/embedder", json={"inputs": "x", "keep_alive": 0})
        assert httpx.get(ps).json()["data"] == []
        assert "unloaded embedder" in s.output()


def test_the_memory_budget_unloads_the_older_model(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("memory-home")
    args = [str(folders["embedder"]), str(folders["sentiment"])]
    # Each tiny model weighs ~0.12 MB: a 0.2 MB budget holds one of them at a time.
    with serve(home, *args, env={"MODELPORT_MAX_MEMORY": "200KB"}) as s:
        ps = f"{s.url}/api/v1/ps"
        assert [r["name"] for r in httpx.get(ps).json()["data"]] == ["sentiment"]
        httpx.post(f"{s.url}/api/v1/predict/embedder", json={"inputs": "x"})
        assert [r["name"] for r in httpx.get(ps).json()["data"]] == ["embedder"]
        assert "MODELPORT_MAX_MEMORY" in s.output()


def test_a_model_that_cannot_load_at_start_is_one_sentence(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "serve", "hf:acme/nothing", "--log-level", "error"],
        capture_output=True,
        text=True,
        env={**os.environ, "MODELPORT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: hf:acme/nothing is not")
