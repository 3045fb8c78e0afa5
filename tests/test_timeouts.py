"""A hub that accepts the connection and never answers ends the command with one sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog_server import serve_catalogs
from tests.github_server import GitHubServer, Repo, serve_github
from tests.hf_server import HubServer, serve_hub
from tests.kaggle_server import serve_kaggle
from tests.test_pull import tiny_files
from tests.test_torchhub import HUBCONF

# Each test waits out at least one 1 s timeout, in a fresh process.
pytestmark = pytest.mark.slow


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        server.add_repo("acme/tiny", tiny_files())
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("MODELPORT_HTTP_TIMEOUT", "1")
        yield server


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The subprocess timeout is only the safety net: a hang fails the test here.
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
        check=False,
    )


def _one_sentence_about_the_timeout(
    done: subprocess.CompletedProcess[str], source: str = "Hugging Face Hub"
) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "MODELPORT_HTTP_TIMEOUT" in done.stderr
    assert source in done.stderr
    assert "within 1 s." in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    return done.stderr


def test_a_stalled_metadata_request_ends_the_pull(hub: HubServer) -> None:
    hub.knobs.stall = {"metadata"}
    err = _one_sentence_about_the_timeout(_cli("pull", "hf:acme/tiny"))
    assert "did not answer /api/models/acme/tiny" in err


def test_a_stalled_search_ends_the_search(hub: HubServer) -> None:
    hub.knobs.stall = {"search"}
    err = _one_sentence_about_the_timeout(_cli("search", "tiny", "--hub", "hf"))
    assert "did not answer /api/models within" in err


def test_a_body_that_stalls_midway_ends_the_pull_and_keeps_the_partial_file(
    hub: HubServer, tmp_path: Path
) -> None:
    hub.knobs.stall, hub.knobs.stall_after = {"body"}, 50_000
    err = _one_sentence_about_the_timeout(_cli("pull", "hf:acme/tiny"))
    assert "stopped sending" in err
    partials = list((tmp_path / "home").rglob("partial/*"))
    assert any(p.stat().st_size >= 50_000 for p in partials)


def test_a_stalled_remote_catalog_ends_the_update(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_HTTP_TIMEOUT", "1")
    with serve_catalogs() as server:
        server.stall = {"/catalog.json"}
        added = _cli("catalog", "remote", "add", "team", f"{server.url}/catalog.json")
        assert added.returncode == 0, added.stderr
        err = _one_sentence_about_the_timeout(_cli("catalog", "update", "team"), "/catalog.json")
    assert "did not answer within 1 s" in err


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubServer]:
    with serve_github() as server:
        server.add(Repo("acme", "tinyvision", {"main": {"hubconf.py": HUBCONF}}))
        monkeypatch.setenv("MODELPORT_GITHUB_URL", server.url)
        monkeypatch.setenv("MODELPORT_GITHUB_API_URL", server.url + "/api")
        monkeypatch.setenv("MODELPORT_HTTP_TIMEOUT", "1")
        yield server


def test_a_stalled_github_api_ends_the_pull_and_the_search(github: GitHubServer) -> None:
    github.stall = {"api"}
    pulled = _cli("pull", "torch:acme/tinyvision")
    assert "did not answer for" in _one_sentence_about_the_timeout(pulled, "PyTorch Hub")
    found = _cli("search", "tiny", "--hub", "torch")
    assert "did not answer for" in _one_sentence_about_the_timeout(found, "PyTorch Hub")


def test_a_stalled_archive_ends_the_pull(github: GitHubServer) -> None:
    github.stall = {"archive"}
    err = _one_sentence_about_the_timeout(_cli("pull", "torch:acme/tinyvision"), "PyTorch Hub")
    assert "stopped sending acme/tinyvision@" in err


def test_a_stalled_kaggle_api_ends_the_pull_and_the_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("kagglehub")
    monkeypatch.setenv("MODELPORT_HTTP_TIMEOUT", "1")
    with serve_kaggle() as server:
        server.stall = True
        monkeypatch.setenv("MODELPORT_KAGGLE_URL", server.url)
        monkeypatch.setenv("MODELPORT_TFHUB_URL", server.url)
        pulled = _cli("pull", "tfhub:acme/tiny-classifier/tensorFlow2/default")
        found = _cli("search", "tiny", "--hub", "tfhub")
    for done in (pulled, found):
        err = _one_sentence_about_the_timeout(done, "Kaggle Models did not answer for")
        assert "within 1 s." in err
