"""The store's commands: pull, ls, inspect, rm, cache prune/verify/stats, search --hub."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

import modelport.api as api
from tests.hf_server import HubServer, serve_hub
from tests.test_cli import run
from tests.test_pull import tiny_files


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add_repo(
            "acme/tiny",
            tiny_files(),
            pipeline_tag="feature-extraction",
            library_name="transformers",
            downloads=10,
            likes=1,
        )
        server.add_repo(
            "acme/other",
            tiny_files(seed=2),
            pipeline_tag="text-classification",
            library_name="transformers",
            downloads=50,
            likes=9,
        )
        api.reset()
        yield server


def test_pull_json_events_like_ollama(hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pull", "hf:acme/tiny", "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0] == {"status": "pulling manifest"}
    assert events[-1] == {"status": "success"}
    statuses = {e["status"] for e in events}
    assert {"downloading", "verifying sha256 digest", "writing manifest"} <= statuses
    weights = [
        e for e in events if e.get("file") == "model.safetensors" and e["status"] == "downloading"
    ]
    assert weights[-1]["completed"] == weights[-1]["total"] == 200_000


def test_pull_ls_inspect_rm(hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pull", "hf:acme/tiny", "-q")
    assert code == 0
    folder = out.strip()
    assert os.path.isfile(os.path.join(folder, "config.json"))
    code, out, _ = run(capsys, "pull", "hf:acme/tiny")
    assert "already in the store" in out
    code, out, _ = run(capsys, "ls")
    assert "hf:acme/tiny" in out
    assert "feature-extraction" in out
    code, out, _ = run(capsys, "ls", "--json")
    [row] = json.loads(out)
    assert row["name"] == "acme/tiny"
    assert row["size"] > 200_000
    code, out, _ = run(capsys, "inspect", "hf:acme/tiny", "--json")
    doc = json.loads(out)
    assert doc["config"]["model_type"] == "bert"
    assert {f["path"] for f in doc["files"]} >= {"config.json", "model.safetensors"}
    code, out, _ = run(capsys, "rm", "hf:acme/tiny", "--dry-run")
    assert "Would remove" in out
    assert api.list_models()
    code, out, _ = run(capsys, "rm", "hf:acme/tiny")
    assert code == 0
    assert "Freed" in out
    assert api.list_models() == []
    code, _, err = run(capsys, "rm", "hf:acme/tiny")
    assert code == 1
    assert "not in the local store" in err
    code, _, err = run(capsys, "inspect", "hf:acme/tiny")
    assert "modelport pull hf:acme/tiny" in err


def test_cache_commands(hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    api.pull("hf:acme/tiny")
    api.pull("hf:acme/other")
    code, out, _ = run(capsys, "cache", "stats", "--json")
    stats = json.loads(out)
    assert stats["models"] == 2
    assert stats["pull_misses"] == 2
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0
    assert "Checked" in out
    code, out, _ = run(capsys, "cache", "prune", "--max-size", "0", "--dry-run", "--json")
    plan = json.loads(out)
    assert plan["dry_run"] is True
    assert len(plan["removed"]) == 2
    assert len(api.list_models()) == 2
    code, out, _ = run(capsys, "cache", "prune", "--older-than", "30d")
    assert "Nothing to prune" in out
    code, _, err = run(capsys, "cache", "prune", "--older-than", "soon")
    assert code == 2
    assert "Invalid duration" in err
    code, _, err = run(capsys, "cache", "prune")
    assert code == 2
    code, out, _ = run(capsys, "cache", "prune", "--max-size", "0")
    assert "Freed" in out
    assert api.list_models() == []


def test_search_the_hub(hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "acme", "--hub", "hf", "--json")
    assert code == 0
    assert [m["id"] for m in json.loads(out)] == ["acme/other", "acme/tiny"]
    code, out, _ = run(capsys, "search", "acme", "--hub", "hf", "--task", "embeddings", "-q")
    assert out.split() == ["hf:acme/tiny"]
    code, _, err = run(capsys, "search", "acme", "--hub", "nowhere")
    assert code == 2
    assert "No hub named" in err


def test_pull_errors_are_one_line(hub: HubServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pull", "hf:acme/missing")
    assert code == 1
    assert err.count("\n") == 1
    assert "does not exist on the Hub" in err
    code, _, err = run(capsys, "pull", "openai:gpt-4o")
    assert code == 2
    assert "hosted API model" in err


def test_show_says_whether_a_catalog_model_is_in_the_store(
    hub: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_pull import tiny_files as files

    hub.add_repo("sentence-transformers/all-MiniLM-L6-v2", files())
    code, out, _ = run(capsys, "show", "minilm")
    assert code == 0
    assert "pull it: modelport pull minilm" in out
    api.pull("minilm")
    code, out, _ = run(capsys, "show", "minilm")
    assert "1 revision(s)" in out
