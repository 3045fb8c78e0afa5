"""Three stateless `modelport serve` replicas on one PostgreSQL and one S3 bucket.

Real servers on loopback, started and stopped here: PostgreSQL (tests/postgres.py),
moto's S3 server (tests/s3_server.py), the Hugging Face Hub (tests/hf_server.py, which
counts every file it sends), and three `modelport serve` processes with the same
MODELPORT_DATABASE_URL and MODELPORT_STORE_URL and a MODELPORT_HOME each. The tests run
in order on one cluster: a pull through one replica served by another; concurrent pulls
through all three; a replica killed mid-pull; PostgreSQL restarted under load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, serve

pytestmark = pytest.mark.slow

BIG = {
    "config.json": b'{"model_type": "bert", "hidden_size": 16}',
    "tokenizer.json": b'{"version": "1.0"}',
    "model.safetensors": hashlib.sha256(b"big").digest() * (6_000_000 // 32),
}
SLOW = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "slow.safetensors": hashlib.sha256(b"slow").digest() * (6_000_000 // 32),
}
TEXTS = ["hello world", "paris is the capital of france"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Cluster:
    """The servers the tests drive."""

    hub: HubServer
    replicas: list[ServerProcess]
    database: str
    bucket: str
    s3: Any
    postgres: Any
    encoder: dict[str, bytes]

    def index(self) -> list[str]:
        """The keys of the store index, read from PostgreSQL directly."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.database)
        try:
            with engine.connect() as conn:
                return sorted(
                    conn.execute(sqlalchemy.text("SELECT key FROM store_models")).scalars()
                )
        finally:
            engine.dispose()

    def counter(self, name: str) -> int:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.database)
        try:
            with engine.connect() as conn:
                value = conn.execute(
                    sqlalchemy.text("SELECT value FROM store_counters WHERE name = :n"), {"n": name}
                ).scalar()
                return int(value or 0)
        finally:
            engine.dispose()


def _pull(server: ServerProcess, model: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/pull", json={"model": model, "stream": False}, timeout=timeout
    )


def _listed(server: ServerProcess) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/tags", timeout=30)
    assert response.status_code == 200, response.text
    models: list[dict[str, Any]] = response.json()["models"]
    return models


def _tags(server: ServerProcess) -> set[str]:
    return {m["name"] for m in _listed(server)}


@pytest.fixture(scope="module")
def cluster(postgres: Any, s3: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tests.tiny_models import build_encoder

    root = tmp_path_factory.mktemp("replicas")
    folder = build_encoder(root / "encoder", "sentence-similarity")
    encoder = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    database = postgres.create_database()
    bucket = s3.create_bucket()
    with serve_hub() as hub, ExitStack() as stack:
        hub.add_folder("acme/encoder", folder, pipeline_tag="sentence-similarity")
        hub.add_repo("acme/big", BIG, pipeline_tag="feature-extraction")
        hub.add_repo("acme/slow", SLOW, pipeline_tag="feature-extraction")
        env = {
            "MODELPORT_DATABASE_URL": database,
            **s3.environment(bucket),
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(root / "hf-home"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": "",
            "MODELPORT_BUNDLED_CATALOG": "false",
        }
        replicas: list[ServerProcess] = [None] * 3  # type: ignore[list-item]
        errors: list[BaseException] = []
        lock = threading.Lock()

        def start(i: int) -> None:
            try:
                server = serve(root / f"home-{i + 1}", env=env)
                with lock:
                    replicas[i] = stack.enter_context(server)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        yield Cluster(hub, replicas, database, bucket, s3, postgres, encoder)
        for replica in replicas:  # stopped together, not one after the other
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGINT)


def test_a_model_pulled_through_one_replica_is_listed_and_served_by_all(
    cluster: Cluster,
) -> None:
    one, two, three = cluster.replicas
    response = _pull(one, "hf:acme/encoder")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success"}
    listings = [
        [(m["name"], m["digest"], m["size"], m["modified_at"], m["details"]) for m in _listed(r)]
        for r in cluster.replicas
    ]
    assert [m[0] for m in listings[0]] == ["acme/encoder:latest"]
    # Its details read from its config, which replicas 2 and 3 take from the bucket alone.
    assert listings[0][0][4]["family"] == "bert"
    assert listings[0][0][4]["embedding_length"] == 32
    assert listings[1] == listings[0] and listings[2] == listings[0]
    ids = [
        {m["id"] for m in httpx.get(f"{r.url}/v1/models", timeout=30).json()["data"]}
        for r in cluster.replicas
    ]
    assert all("acme/encoder" in found for found in ids)
    # Served by replica 3, which never pulled it: its files come from the bucket.
    body = {"model": "acme/encoder", "input": TEXTS}
    three_says = httpx.post(f"{three.url}/v1/embeddings", json=body, timeout=120)
    assert three_says.status_code == 200, three_says.text
    vectors = [d["embedding"] for d in three_says.json()["data"]]
    assert [len(v) for v in vectors] == [32, 32]
    # Replica 2 gets the model replica 3 converted from the bucket too, and answers alike.
    two_says = httpx.post(f"{two.url}/v1/embeddings", json=body, timeout=120)
    assert two_says.status_code == 200, two_says.text
    again = [d["embedding"] for d in two_says.json()["data"]]
    assert np.allclose(np.array(again), np.array(vectors), atol=1e-5)
    # Each file crossed from the hub once, for the three of them.
    assert dict(cluster.hub.file_gets) == dict.fromkeys(cluster.encoder, 1)
    keys = set(cluster.s3.objects(cluster.bucket))
    assert any(k.startswith("team/converted/") for k in keys)


def test_concurrent_pulls_through_every_replica_fetch_each_file_once(cluster: Cluster) -> None:
    hub = cluster.hub
    hub.reset_counts()
    hub.knobs.bytes_per_second = 3_000_000  # two seconds of weights: the pulls overlap
    streams: list[list[str]] = []

    def pull(server: ServerProcess) -> None:
        body = {"model": "hf:acme/big", "stream": True}
        with httpx.stream("POST", f"{server.url}/api/pull", json=body, timeout=120) as answer:
            assert answer.status_code == 200
            streams.append([json.loads(line).get("status", "") for line in answer.iter_lines()])

    try:
        threads = [threading.Thread(target=pull, args=(r,)) for r in cluster.replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        hub.knobs.bytes_per_second = None
    assert len(streams) == 3 and all(s[-1] == "success" for s in streams), streams
    # One fetched it; the others waited for it and found it complete.
    waited = [s for s in streams if "waiting for another server's pull of it" in s]
    assert len(waited) == 2, streams
    downloads = [{x for x in s if x.startswith("pulling ")} - {"pulling manifest"} for s in streams]
    assert sorted(map(len, downloads)) == [0, 0, len(BIG)], streams
    assert dict(hub.file_gets) == dict.fromkeys(BIG, 1)
    assert all("acme/big:latest" in _tags(r) for r in cluster.replicas)
    objects = cluster.s3.objects(cluster.bucket, "team/blobs/")
    assert objects[f"team/blobs/sha256/{sha(BIG['model.safetensors'])}"] == BIG["model.safetensors"]


def test_a_replica_killed_mid_pull_leaves_nothing_and_another_completes_it(
    cluster: Cluster,
) -> None:
    one, two, three = cluster.replicas
    hub = cluster.hub
    hub.reset_counts()
    hub.knobs.bytes_per_second = 1_000_000
    pulling = threading.Thread(target=lambda: _safe_pull(one, "hf:acme/slow"), daemon=True)
    pulling.start()
    deadline = time.monotonic() + 60
    while hub.bytes_sent["slow.safetensors"] < 2_000_000:
        assert time.monotonic() < deadline, "the pull did not start"
        time.sleep(0.05)
    one.process.send_signal(signal.SIGKILL)
    one.process.wait()
    hub.knobs.bytes_per_second = None
    # Nothing of it is visible: no index row, no object under a final key.
    assert not any("acme/slow" in key for key in cluster.index())
    keys = set(cluster.s3.objects(cluster.bucket))
    assert not any("acme/slow" in k or sha(SLOW["slow.safetensors"]) in k for k in keys)
    assert "acme/slow:latest" not in _tags(three)
    response = _pull(two, "hf:acme/slow")
    assert response.status_code == 200, response.text
    assert "acme/slow:latest" in _tags(three)
    assert any(key.startswith("hf/acme/slow@") for key in cluster.index())
    blob = f"team/blobs/sha256/{sha(SLOW['slow.safetensors'])}"
    assert cluster.s3.objects(cluster.bucket, blob)[blob] == SLOW["slow.safetensors"]


def _safe_pull(server: ServerProcess, model: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the replica is killed under it
        _pull(server, model)


def test_postgresql_restarted_under_load_fails_cleanly_and_loses_nothing(
    cluster: Cluster,
) -> None:
    live = [r for r in cluster.replicas if r.process.poll() is None]
    assert len(live) == 2
    hits_before = cluster.counter("pull.hit")
    answers: list[tuple[str, int, Any]] = []
    stop = threading.Event()

    def load(server: ServerProcess) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                for kind, send in (
                    ("tags", lambda: client.get("/api/tags")),
                    (
                        "pull",
                        lambda: client.post(
                            "/api/pull", json={"model": "hf:acme/big", "stream": False}
                        ),
                    ),
                ):
                    response = send()
                    answers.append((kind, response.status_code, response.json()))
                time.sleep(0.02)

    threads = [threading.Thread(target=load, args=(r,)) for r in live]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        cluster.postgres.shut_down()
        time.sleep(1.5)
        restarted = len(answers)
        cluster.postgres.start_again()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until every replica answers again
            recent = answers[restarted:]
            if sum(1 for _, status, _ in recent[-8:] if status == 200) == 8 and len(recent) > 8:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    statuses = {status for _, status, _ in answers}
    assert statuses == {200, 503}, statuses
    for _kind, status, body in answers:
        if status == 503:
            message = body["error"]
            assert message.startswith("The database "), message
            assert "cannot be reached" in message and "\n" not in message
    assert [status for _, status, _ in answers[-4:]] == [200] * 4  # recovered
    # Nothing lost: every model, and every pull answered 200 counted.
    assert all(
        {"acme/encoder:latest", "acme/big:latest", "acme/slow:latest"} <= _tags(r) for r in live
    )
    pulled = sum(1 for kind, status, _ in answers if kind == "pull" and status == 200)
    assert cluster.counter("pull.hit") >= hits_before + pulled


def test_a_catalog_import_on_one_is_seen_by_every_replica_within_a_second(
    cluster: Cluster, tmp_path: Any
) -> None:
    """After PostgreSQL's restart too: each replica's listener connected again."""
    import os
    import subprocess
    import sys

    from modelport.catalog.loader import dump_catalog
    from tests.conftest import make_entry

    live = [r for r in cluster.replicas if r.process.poll() is None]
    env = {
        **os.environ,
        "MODELPORT_DATABASE_URL": cluster.database,
        "MODELPORT_HOME": str(tmp_path / "importer"),
        "MODELPORT_BUNDLED_CATALOG": "false",
    }

    def import_entry(name: str) -> None:
        path = tmp_path / "entries.json"
        path.write_text(dump_catalog([make_entry("acme/imported", name=name)]))
        subprocess.run(
            [sys.executable, "-m", "modelport", "catalog", "import", str(path), "--replace"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def names() -> list[str | None]:
        found: list[str | None] = []
        for replica in live:
            answer = httpx.get(f"{replica.url}/api/v1/registry/models/acme/imported", timeout=10)
            found.append(answer.json()["data"]["name"] if answer.status_code == 200 else None)
        return found

    def seen_within_a_second(name: str) -> list[str | None]:
        deadline = time.monotonic() + 1.0
        while (found := names()) != [name] * len(live) and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    assert names() == [None] * len(live)
    import_entry("First Name")
    assert seen_within_a_second("First Name") == ["First Name"] * len(live)
    # Each replica now keeps that entry: a replacement must reach what it keeps.
    import_entry("Second Name")
    assert seen_within_a_second("Second Name") == ["Second Name"] * len(live)
