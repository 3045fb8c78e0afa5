"""The store in an S3 bucket (moto's server on loopback, driven by boto3), with each
MODELPORT_HOME as one machine's cache in front of it and one database as the index.

In one process, "another server" is another MODELPORT_HOME on the same database and
bucket: what one pulled, the other lists and gets from the bucket, never from the hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelport.api as api
from modelport.errors import ConfigError, ObjectStoreError
from tests.hf_server import HubServer, serve_hub

WEIGHTS = hashlib.sha256(b"seed").digest() * (12_000_000 // 32)  # 12 MB: a multipart upload
FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 32}',
    "tokenizer.json": b'{"version": "1.0", "model": {"type": "WordPiece"}}',
    "model.safetensors": WEIGHTS,
}
OTHER = {
    "config.json": b'{"model_type": "bert", "hidden_size": 64}',
    "weights.safetensors": bytes(reversed(WEIGHTS[:3_000_000])),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add_repo("acme/big", FILES, pipeline_tag="feature-extraction")
        server.add_repo("acme/other", OTHER)
        api.reset()
        yield server


@pytest.fixture
def shared_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One SQLite index for every "server" (MODELPORT_HOME) of the test."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    monkeypatch.setenv("MODELPORT_DATABASE_URL", url)
    api.reset()
    return url


def become(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Act as another server: another MODELPORT_HOME (cache), the same index and bucket."""
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    api.reset()


def _revision(hub: HubServer, repo: str = "acme/big") -> str:
    return hub.repos[repo].refs["main"]


def test_a_pull_keeps_blobs_and_manifest_in_the_bucket(
    hub: HubServer, bucket: str, s3: Any, shared_db: str, _isolated_home: Path
) -> None:
    model = api.pull("hf:acme/big")
    assert not model.from_store
    objects = s3.objects(bucket)
    blobs = {k: v for k, v in objects.items() if "/blobs/" in k}
    assert blobs == {f"team/blobs/sha256/{sha(data)}": data for data in FILES.values()}
    manifest = json.loads(objects[f"team/manifests/hf/acme/big/{_revision(hub)}.json"])
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        path: sha(data) for path, data in FILES.items()
    }
    # The weights went up in parts, each checked by its sha256; the object keeps theirs.
    head = s3.client().head_object(
        Bucket=bucket, Key=f"team/blobs/sha256/{sha(WEIGHTS)}", ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"]
    # This machine's cache holds the folder the runtime reads.
    assert (Path(model.path) / "model.safetensors").read_bytes() == WEIGHTS
    assert str(Path(model.path)).startswith(str(_isolated_home / "store"))
    stats = api.store_stats()
    assert (stats.models, stats.blobs, stats.size) == (1, 3, sum(map(len, FILES.values())))


def test_another_server_lists_it_and_gets_it_from_the_bucket_not_the_hub(
    hub: HubServer, bucket: str, shared_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.pull("hf:acme/big")
    become(monkeypatch, tmp_path / "server-2")
    hub.reset_counts()
    [listed] = api.list_models()
    assert listed.key == f"hf/acme/big@{_revision(hub)}"
    assert not listed.path.exists()  # listed from the index; not on this machine yet
    model = api.pull("hf:acme/big")
    assert model.from_store and model.downloaded_bytes == 0
    assert dict(hub.file_gets) == {}  # every file came from the bucket
    folder = Path(model.path)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == FILES
    assert api.verify_store().ok


def test_servers_pulling_at_once_on_one_sqlite_index_fetch_each_file_once(
    hub: HubServer, bucket: str, shared_db: str, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelport.db import get_engine
    from modelport.hubs.base import Ref, get_hub
    from modelport.store.store import Store

    remote = api.get_store().remote
    stores = [
        Store(tmp_path / f"server-{i}" / "store", get_engine(shared_db), remote=remote)
        for i in range(3)
    ]
    hub.knobs.bytes_per_second = 6_000_000  # two seconds of weights: the pulls overlap
    with ThreadPoolExecutor(3) as pool:
        pulled = list(
            pool.map(lambda s: get_hub("hf").pull(Ref("acme/big", "hf"), store=s), stores)
        )
    assert dict(hub.file_gets) == dict.fromkeys(FILES, 1)
    assert sorted(m.from_store for m in pulled) == [False, True, True]
    for model in pulled:
        assert (Path(model.path) / "model.safetensors").read_bytes() == WEIGHTS


def test_a_stored_model_is_brought_to_this_machine_when_it_is_used(
    hub: HubServer, bucket: str, shared_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.api.running import model_source

    api.pull("hf:acme/big")
    become(monkeypatch, tmp_path / "server-2")
    hub.reset_counts()
    source = model_source("hf:acme/big", pull_missing=False)
    assert (source.folder / "model.safetensors").read_bytes() == WEIGHTS
    assert dict(hub.file_gets) == {}


def test_a_corrupt_object_in_the_bucket_is_fetched_again_from_the_hub_and_mended(
    hub: HubServer,
    bucket: str,
    s3: Any,
    shared_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.pull("hf:acme/big")
    key = f"team/blobs/sha256/{sha(FILES['config.json'])}"
    s3.client().put_object(Bucket=bucket, Key=key, Body=b'{"model_type": "gpt2", "hidden": 1}')
    become(monkeypatch, tmp_path / "server-2")
    hub.reset_counts()
    model = api.pull("hf:acme/big")
    # Found by its sha256: only that file came from the hub again.
    assert dict(hub.file_gets) == {"config.json": 1}
    assert (Path(model.path) / "config.json").read_bytes() == FILES["config.json"]
    assert s3.objects(bucket, key)[key] == FILES["config.json"]  # the bucket is mended
    become(monkeypatch, tmp_path / "server-3")
    hub.reset_counts()
    api.pull("hf:acme/big")
    assert dict(hub.file_gets) == {}


def test_a_corrupt_blob_in_the_cache_is_fetched_again_from_the_bucket(
    hub: HubServer, bucket: str, shared_db: str, _isolated_home: Path
) -> None:
    model = api.pull("hf:acme/big")
    blob = _isolated_home / "store" / "blobs" / "sha256" / sha(WEIGHTS)
    os.chmod(blob, 0o644)
    with blob.open("r+b") as fh:
        fh.write(b"\0" * 64)
    hub.reset_counts()
    again = api.pull("hf:acme/big")
    assert again.from_store
    assert dict(hub.file_gets) == {}  # from the bucket
    assert (Path(model.path) / "model.safetensors").read_bytes() == WEIGHTS


def test_the_cache_keeps_to_its_size_and_the_bucket_keeps_everything(
    hub: HubServer,
    bucket: str,
    s3: Any,
    shared_db: str,
    _isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPORT_STORE_CACHE_SIZE", "13MB")
    api.reset()
    big = api.pull("hf:acme/big")
    # Used an hour ago: the least recently used model leaves the cache first.
    os.utime(big.path, (1e9, 1e9))
    other = api.pull("hf:acme/other")
    blobs = _isolated_home / "store" / "blobs" / "sha256"
    cached = {p.name for p in blobs.iterdir()}
    assert cached == {sha(data) for data in OTHER.values()}
    assert not Path(big.path).exists() and Path(other.path).exists()
    # Still in the store for every server: listed, in the bucket.
    assert {m.name for m in api.list_models()} == {"acme/big", "acme/other"}
    assert f"team/blobs/sha256/{sha(WEIGHTS)}" in s3.objects(bucket)
    assert api.verify_store().ok  # what the cache holds is sound; the rest is not missed
    hub.reset_counts()
    os.utime(other.path, (1e9, 1e9))
    again = api.pull("hf:acme/big")
    assert again.from_store and dict(hub.file_gets) == {}
    assert (Path(again.path) / "model.safetensors").read_bytes() == WEIGHTS


def test_remove_deletes_the_manifest_and_the_blobs_no_other_model_uses(
    hub: HubServer, bucket: str, s3: Any, shared_db: str
) -> None:
    hub.add_repo("acme/twin", {"model.safetensors": WEIGHTS, "config.json": b"{}"})
    api.pull("hf:acme/big")
    api.pull("hf:acme/twin")
    api.remove("hf:acme/big")
    keys = set(s3.objects(bucket))
    assert f"team/manifests/hf/acme/big/{_revision(hub)}.json" not in keys
    assert f"team/blobs/sha256/{sha(WEIGHTS)}" in keys  # the twin uses it
    assert f"team/blobs/sha256/{sha(FILES['tokenizer.json'])}" not in keys
    assert [m.name for m in api.list_models()] == ["acme/twin"]


def test_a_removal_racing_a_pull_keeps_the_blob_the_pull_now_names(
    hub: HubServer, bucket: str, s3: Any, shared_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin's pull found the weights in the bucket (big's) and uploaded nothing; big is
    removed while the twin's rows are being written. The weights must stay."""
    import threading

    from modelport.store.store import Store

    hub.add_repo("acme/twin", {"model.safetensors": WEIGHTS, "config.json": b"{}"})
    api.pull("hf:acme/big")
    index = Store._index
    removal = threading.Thread(target=api.remove, args=("hf:acme/big",))

    def index_while_removing(store: Store, manifest: Any) -> None:
        if manifest.name == "acme/twin" and not removal.is_alive():
            removal.start()
            # Unlocked, the removal deletes the weights now; locked, it waits for this commit.
            removal.join(timeout=2)
        index(store, manifest)

    monkeypatch.setattr(Store, "_index", index_while_removing)
    twin = api.pull("hf:acme/twin")
    removal.join()
    keys = set(s3.objects(bucket))
    assert f"team/blobs/sha256/{sha(WEIGHTS)}" in keys  # the twin's row names it
    assert f"team/blobs/sha256/{sha(FILES['tokenizer.json'])}" not in keys
    assert [m.name for m in api.list_models()] == ["acme/twin"]
    assert (Path(twin.path) / "model.safetensors").read_bytes() == WEIGHTS


def test_an_unknown_bucket_and_an_unreachable_service_are_one_sentence(
    hub: HubServer, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in s3.environment("no-such-bucket").items():
        monkeypatch.setenv(variable, value)
    api.reset()
    with pytest.raises(ObjectStoreError) as info:
        api.pull("hf:acme/big")
    assert info.value.message == f"The bucket no-such-bucket at {s3.url} does not exist."
    monkeypatch.setenv("MODELPORT_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    api.reset()
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "pull", "hf:acme/big"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Cannot ") and "s3://no-such-bucket/team" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "test-secret-key-never-shown" not in done.stderr + done.stdout


def test_aws_endpoint_url_names_the_service_too(
    hub: HubServer, bucket: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELPORT_S3_ENDPOINT_URL")
    # A host name, not an address: the bucket is reached by path, not as a host of its own.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url.replace("127.0.0.1", "localhost"))
    api.reset()
    api.pull("hf:acme/big")
    assert f"team/blobs/sha256/{sha(WEIGHTS)}" in s3.objects(bucket)


@pytest.mark.parametrize(
    "url", ["s3://", "gs://bucket", "s3://Bucket_Name", "s3://bucket/../x", "/tmp/store"]
)
def test_a_store_url_that_is_no_bucket_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.settings import load_settings

    monkeypatch.setenv("MODELPORT_STORE_URL", url)
    with pytest.raises(ConfigError, match="MODELPORT_STORE_URL must be s3://BUCKET"):
        load_settings()


def test_the_local_store_never_imports_boto3() -> None:
    code = (
        "import sys, modelport.api as api\n"
        "api.list_models(); api.store_stats()\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_converted_model_is_kept_in_the_bucket_and_not_converted_again(
    hub: HubServer,
    bucket: str,
    s3: Any,
    shared_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("optimum.exporters.onnx")
    from tests.tiny_models import build_encoder

    hub.add_folder(
        "acme/encoder",
        build_encoder(tmp_path / "encoder", "sentence-similarity"),
        pipeline_tag="sentence-similarity",
    )
    first = api.convert("hf:acme/encoder")
    assert not first.cached
    assert any(k.startswith("team/converted/") for k in s3.objects(bucket))
    vector = api.run("hf:acme/encoder", "hello world")
    become(monkeypatch, tmp_path / "server-2")
    again = api.convert("hf:acme/encoder")
    assert again.cached and again.key == first.key  # fetched whole, not converted here
    assert str(again.path).startswith(str(tmp_path / "server-2"))

    def files(folder: Path) -> dict[str, bytes]:
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }

    assert files(again.path) == files(first.path)
    assert "model.onnx" in files(again.path)
    assert api.run("hf:acme/encoder", "hello world") == pytest.approx(vector)
