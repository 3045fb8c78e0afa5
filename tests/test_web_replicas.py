"""A web UI pull is followed and cancelled from any replica: two `modelport serve`
processes on one database (a SQLite file, then PostgreSQL), each with a MODELPORT_HOME of its own, behind
no sticky load balancer. A pull started on the first streams its progress from the
second, a stream that moves from one replica to the other keeps it alive, and a pull
cancelled through the second stops on the first and leaves nothing in its store."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, serve

pytestmark = pytest.mark.slow

STEADY = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "model.safetensors": hashlib.sha256(b"steady").digest() * (3_000_000 // 32),
}
STOPPED = {
    "config.json": b'{"model_type": "bert", "hidden_size": 4}',
    "stopped.safetensors": hashlib.sha256(b"stopped").digest() * (4_000_000 // 32),
}
NOT_FOUND = {"error": {"message": "No such pull on this server.", "code": "not_found"}}


@dataclass
class Pair:
    """Two replicas on one database, and the hub they pull from."""

    hub: HubServer
    first: ServerProcess
    second: ServerProcess
    token: str

    def start(self, ref: str) -> str:
        """Start a pull from the first replica's Store page form; its id."""
        started = httpx.post(
            f"{self.first.url}/ui/store/pulls",
            data={"csrf": self.token, "ref": ref},
            cookies={"modelport_csrf": self.token},
            timeout=30,
        )
        assert started.status_code == 303, started.text[:500]
        found = re.fullmatch(r"/ui/store\?pull=([\w-]+)#pull-status", started.headers["location"])
        assert found is not None
        return found[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("web-replicas")
    if request.param == "postgresql":
        database = str(request.getfixturevalue("postgres").create_database())
    else:
        database = f"sqlite:///{root / 'shared.db'}"
    with serve_hub() as hub, ExitStack() as stack:
        hub.add_repo("acme/steady", STEADY, pipeline_tag="feature-extraction")
        hub.add_repo("acme/stopped", STOPPED, pipeline_tag="feature-extraction")
        env = {
            "MODELPORT_DATABASE_URL": database,
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(root / "hf-home"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": "",
            "MODELPORT_BUNDLED_CATALOG": "false",
        }
        first = stack.enter_context(serve(root / "home-1", env=env))
        second = stack.enter_context(serve(root / "home-2", env=env))
        # The page's token, from the first replica: the second takes it too (it is the
        # browser's own cookie, checked against the form, not a replica's memory).
        page = httpx.get(f"{first.url}/ui/store", timeout=30)
        assert page.status_code == 200
        yield Pair(hub, first, second, page.cookies["modelport_csrf"])


def _events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of a stream as they come: (event name, data)."""
    name, data = "message", None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            yield name, data
            name, data = "message", None


def _store_files(server: ServerProcess) -> set[str]:
    """What a replica's local store holds (blobs, downloads begun, manifests, trees)."""
    kinds = {"blobs", "partial", "manifests", "models"}
    return {
        p.relative_to(server.home).as_posix()
        for p in Path(server.home).rglob("*")
        if p.is_file() and kinds & set(p.relative_to(server.home).parts)
    }


def test_a_pull_started_on_one_replica_streams_to_done_from_another(pair: Pair) -> None:
    size = sum(len(b) for b in STEADY.values())
    pair.hub.knobs.bytes_per_second = 1_000_000  # three seconds for the weights
    try:
        job_id = pair.start("hf:acme/steady")
        # A stream on the first replica, left after its first news: without the one on the
        # second replica, the pull would be cancelled two seconds later.
        with httpx.stream(
            "GET", f"{pair.first.url}/ui/store/pulls/{job_id}/events", timeout=30
        ) as first:
            assert next(_events(first))[0] == "progress"
        got: list[tuple[str, dict[str, Any]]] = []
        with httpx.stream(
            "GET", f"{pair.second.url}/ui/store/pulls/{job_id}/events", timeout=30
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for event in _events(stream):
                got.append(event)
    finally:
        pair.hub.knobs.bytes_per_second = None
    assert got[-1][0] == "done", got[-3:]
    result = got[-1][1]["result"]
    assert result["ref"] == "hf:acme/steady" and result["size"] == size
    assert result["from_store"] is False
    completed = [d["completed"] for name, d in got if name == "progress"]
    assert len(set(completed)) >= 3, "the progress advances"
    assert completed == sorted(completed)
    last = [d for name, d in got if name == "progress"][-1]
    assert last["state"] == "done" and last["completed"] == last["total"] == size
    # It landed in the store of the replica that ran it.
    tags = httpx.get(f"{pair.first.url}/api/tags", timeout=30).json()["models"]
    assert any("acme/steady" in m["name"] for m in tags)
    # The store page of the second replica shows it, as the first one's would.
    shown = httpx.get(f"{pair.second.url}/ui/store?pull={job_id}", timeout=30)
    assert shown.status_code == 200 and f"/ui/store/pulls/{job_id}/events" in shown.text


def test_a_pull_cancelled_through_another_replica_stops_and_leaves_nothing(pair: Pair) -> None:
    size = len(STOPPED["stopped.safetensors"])
    before = _store_files(pair.first)
    pair.hub.knobs.bytes_per_second = 300_000  # thirteen seconds for the weights
    try:
        job_id = pair.start("hf:acme/stopped")
        got: list[tuple[str, dict[str, Any]]] = []
        asked: int | None = None  # bytes received when the cancel was asked
        with httpx.stream(
            "GET", f"{pair.second.url}/ui/store/pulls/{job_id}/events", timeout=30
        ) as stream:
            for event in _events(stream):
                got.append(event)
                name, data = event
                if name == "progress" and data["completed"] >= 100_000 and asked is None:
                    asked = data["completed"]
                    cancelled = httpx.post(
                        f"{pair.second.url}/ui/store/pulls/{job_id}/cancel",
                        headers={"X-CSRF-Token": pair.token, "Accept": "application/json"},
                        cookies={"modelport_csrf": pair.token},
                        timeout=30,
                    )
                    assert cancelled.status_code == 202, cancelled.text
                    assert cancelled.json() == {"cancelling": job_id, "state": "running"}
    finally:
        pair.hub.knobs.bytes_per_second = None
    assert asked is not None
    assert got[-1] == (
        "cancelled",
        {
            "message": "The pull of hf:acme/stopped was cancelled; nothing of it was kept.",
            "result": None,
        },
    )
    assert pair.hub.bytes_sent["stopped.safetensors"] < size
    tags = httpx.get(f"{pair.first.url}/api/tags", timeout=30).json()["models"]
    assert not any("acme/stopped" in m["name"] for m in tags)
    assert _store_files(pair.first) == before
    # An id no replica knows is the same sentence on both.
    for server in (pair.first, pair.second):
        unknown = httpx.get(f"{server.url}/ui/store/pulls/no-such-pull/events", timeout=30)
        assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
        refused = httpx.post(
            f"{server.url}/ui/store/pulls/no-such-pull/cancel",
            headers={"X-CSRF-Token": pair.token, "Accept": "application/json"},
            cookies={"modelport_csrf": pair.token},
            timeout=30,
        )
        assert (refused.status_code, refused.json()) == (404, NOT_FOUND)


def test_a_pull_nobody_watches_on_any_replica_stops(pair: Pair) -> None:
    sent = pair.hub.bytes_sent["stopped.safetensors"]
    pair.hub.knobs.bytes_per_second = 300_000
    try:
        job_id = pair.start("hf:acme/stopped")
        with httpx.stream(
            "GET", f"{pair.first.url}/ui/store/pulls/{job_id}/events", timeout=30
        ) as stream:
            assert next(_events(stream))[0] == "progress"
        # The page (unlike a stream) only looks: the tab left, the pull stops by itself.
        states = []
        for _ in range(150):
            shown = httpx.get(f"{pair.second.url}/ui/store?pull={job_id}", timeout=30).text
            found = re.search(r'data-pull-state="(\w+)"', shown)
            assert found is not None
            states.append(found[1])
            if states[-1] != "running":
                break
            time.sleep(0.1)
    finally:
        pair.hub.knobs.bytes_per_second = None
    assert states[-1] == "cancelled"
    assert pair.hub.bytes_sent["stopped.safetensors"] - sent < len(STOPPED["stopped.safetensors"])
