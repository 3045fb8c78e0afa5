"""The store never loses, changes or serves wrong bytes: empty files, over-long bodies,
damaged blobs, aliases and folder files, pickle-family names, and what a repair restores.

Every case runs the real client path (huggingface_hub metadata, the store's httpx
downloader) against the loopback Hub, and damages real files on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import modelport.api as api
from modelport.errors import IntegrityError, PickleRefusedError
from modelport.hubs.base import PulledModel, PullEvent
from tests.hf_server import HubServer, git_blob_id
from tests.test_pull import CONFIG, hub, store_root, tiny_files

__all__ = ["hub"]  # the loopback Hub fixture, shared with test_pull

MB = 1 << 20


def _files(model: PulledModel) -> dict[str, str]:
    return {path: sha for path, sha, _ in model.files}


def _writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


# ---------------------------------------------------------------- empty files


def test_empty_files_are_valid_files(hub: HubServer) -> None:
    files = {**tiny_files(), "added_tokens.json": b"", "assets/.gitkeep": b""}
    hub.add_repo("acme/empty", files)
    model = api.pull("hf:acme/empty")
    folder = Path(model.path)
    assert (folder / "added_tokens.json").read_bytes() == b""
    assert (folder / "assets" / ".gitkeep").read_bytes() == b""
    assert _files(model)["added_tokens.json"] == _files(model)["assets/.gitkeep"]
    assert hub.file_gets["added_tokens.json"] == 0  # nothing to fetch for no bytes
    assert not list((store_root() / "partial").iterdir())
    assert api.verify_store().corrupt == ()
    # Another repo with an empty file shares the one empty blob.
    hub.add_repo("acme/other", {"config.json": CONFIG, "vocab.txt": b""})
    assert _files(api.pull("hf:acme/other"))["vocab.txt"] == _files(model)["added_tokens.json"]


# ---------------------------------------------------------------- bounded bodies


@pytest.mark.parametrize("omit_length", [False, True], ids=["announced", "close-delimited"])
@pytest.mark.parametrize("path", ["model.safetensors", "config.json"], ids=["lfs", "git"])
def test_a_body_longer_than_listed_is_cut_off_and_discarded(
    hub: HubServer, omit_length: bool, path: str
) -> None:
    files = tiny_files(weights=3 * MB)
    hub.add_repo("acme/long", files)
    hub.knobs.extra_bytes = {path: 64 * MB}
    hub.knobs.omit_length = omit_length
    partial_peak = 0

    def watch(event: PullEvent) -> None:
        nonlocal partial_peak
        if event.file == path and event.completed is not None:
            partial_peak = max(partial_peak, event.completed)

    with pytest.raises(IntegrityError, match=r"sent more than the .* bytes it lists"):
        api.pull("hf:acme/long", progress=watch)
    assert partial_peak <= len(files[path])
    assert hub.file_gets[path] == 1  # an untrusted response is not fetched again
    # The server could push at most a few socket buffers before the client hung up.
    assert hub.bytes_sent[path] < len(files[path]) + 16 * MB
    root = store_root()
    assert not (root / "manifests").exists()
    assert not list((root / "partial").iterdir())
    hub.knobs.extra_bytes = {}
    model = api.pull("hf:acme/long")
    assert (Path(model.path) / path).read_bytes() == files[path]


# ---------------------------------------------------------------- aliases


def test_a_crash_between_blob_and_alias_does_not_fetch_again(hub: HubServer) -> None:
    files = tiny_files()
    hub.add_repo("acme/tiny", files)
    model = api.pull("hf:acme/tiny")
    layout = api.get_store().layout
    alias = layout.alias("git-sha1", git_blob_id(files["tokenizer.json"]))
    assert alias.read_text() == _files(model)["tokenizer.json"]
    # What a crash after the blob's rename left: the blob, but no alias and no manifest.
    alias.unlink()
    layout.manifest("hf", "acme/tiny", model.revision).unlink()
    hub.reset_counts()
    again = api.pull("hf:acme/tiny")
    assert sum(hub.file_gets.values()) == 0
    assert alias.read_text() == _files(model)["tokenizer.json"]
    assert (Path(again.path) / "tokenizer.json").read_bytes() == files["tokenizer.json"]


# ---------------------------------------------------------------- pickle family


@pytest.mark.parametrize(
    "name", ["model.joblib", "model.dill", "model.sav", "model.nemo", "model.pt2", "ckpt.pth.tar"]
)
def test_pickle_family_formats_need_the_same_consent(hub: HubServer, name: str) -> None:
    from modelport.hubs.files import is_pickle

    assert is_pickle(f"sub/{name}")
    hub.add_repo("acme/pkl", {"config.json": CONFIG, name: b"\x80\x04\x95pickle" * 40})
    with pytest.raises(PickleRefusedError, match=name.replace(".", r"\.")):
        api.pull("hf:acme/pkl")
    assert hub.file_gets[name] == 0
    assert not (store_root() / "blobs").exists()
    model = api.pull("hf:acme/pkl", allow_pickle=True)
    assert name in _files(model)


# ---------------------------------------------------------------- verify and repair


def _replace_by_rename(target: Path, data: bytes) -> None:
    fake = target.with_name(".replacement")
    fake.write_bytes(data)
    os.replace(fake, target)


def test_verify_checks_every_blob_kind_alias_and_folder_file(hub: HubServer) -> None:
    files = tiny_files()
    hub.add_repo("acme/tiny", files)
    model = api.pull("hf:acme/tiny")
    key = f"hf/acme/tiny@{model.revision}"
    layout = api.get_store().layout
    folder = Path(model.path)
    assert api.verify_store().ok
    # A folder file replaced by rename: the blob is intact, the model is not.
    _replace_by_rename(folder / "config.json", b'{"model_type": "evil"}')
    # An alias naming another blob, and a git-addressed blob cut short.
    tokenizer_oid = git_blob_id(files["tokenizer.json"])
    layout.alias("git-sha1", tokenizer_oid).write_text(_files(model)["model.safetensors"])
    readme = layout.blob(_files(model)["README.md"])
    os.truncate(_writable(readme), 3)
    report = api.verify_store()
    assert report.corrupt == (_files(model)["README.md"],)
    assert report.damaged_aliases == (f"git-sha1:{tokenizer_oid}",)
    assert (key, "config.json") in report.damaged_files
    assert report.affected == (key,)
    repaired = api.verify_store(repair=True)
    assert repaired.repaired == (key,)
    assert api.verify_store().ok
    for path in ("config.json", "README.md", "tokenizer.json", "model.safetensors"):
        assert (folder / path).read_bytes() == files[path]
    assert layout.alias("git-sha1", tokenizer_oid).read_text() == _files(model)["tokenizer.json"]


def test_verify_repairs_a_folder_file_without_the_network(hub: HubServer) -> None:
    hub.add_repo("acme/tiny", tiny_files())
    model = api.pull("hf:acme/tiny")
    _replace_by_rename(Path(model.path) / "model.safetensors", b"not the weights")
    hub.reset_counts()
    assert api.verify_store(repair=True).repaired == (f"hf/acme/tiny@{model.revision}",)
    assert hub.requests == []
    weights = Path(model.path) / "model.safetensors"
    assert weights.read_bytes() == tiny_files()["model.safetensors"]


def test_pull_of_a_complete_model_mends_it(hub: HubServer) -> None:
    import time

    files = tiny_files()
    hub.add_repo("acme/tiny", files)
    model = api.pull("hf:acme/tiny")
    folder = Path(model.path)
    layout = api.get_store().layout
    # A folder file replaced by rename is linked to its blob again, with no request.
    _replace_by_rename(folder / "config.json", b"{}")
    (folder / "tokenizer.json").unlink()
    hub.reset_counts()
    assert api.pull(f"hf:acme/tiny@{model.revision}").from_store
    assert hub.requests == []
    assert os.path.samefile(folder / "config.json", layout.blob(_files(model)["config.json"]))
    assert (folder / "tokenizer.json").read_bytes() == files["tokenizer.json"]
    # A truncated sha256 blob and a git-addressed blob changed in place, same size, later.
    os.truncate(_writable(layout.blob(_files(model)["model.safetensors"])), 1000)
    time.sleep(0.05)  # a write after the pull, past the file system's clock tick
    with _writable(layout.blob(_files(model)["tokenizer.json"])).open("r+b") as fh:
        fh.write(b"[")
    hub.reset_counts()
    api.pull("hf:acme/tiny")
    assert dict(hub.file_gets) == {"model.safetensors": 1, "tokenizer.json": 1}
    for path in ("config.json", "tokenizer.json", "model.safetensors"):
        assert (folder / path).read_bytes() == files[path]
    assert api.verify_store().ok
    # Sound again: the next pull hashes nothing and fetches nothing.
    hub.reset_counts()
    assert api.pull(f"hf:acme/tiny@{model.revision}").from_store
    assert hub.requests == []


# ---------------------------------------------------------------- the recorded selection


def test_repair_restores_the_files_a_model_was_pulled_with(hub: HubServer) -> None:
    files = {
        **tiny_files(),
        "onnx/model.onnx": b"onnx" * 500,
        "1_Dense/config.json": b"{}",
        "1_Dense/pytorch_model.bin": b"\x80\x04pickle" * 50,
    }
    hub.add_repo("acme/many", files)
    with pytest.raises(PickleRefusedError):
        api.pull("hf:acme/many")
    model = api.pull("hf:acme/many", include=["onnx/*"], exclude=["1_Dense/*", "README.md"])
    chosen = set(_files(model))
    assert "onnx/model.onnx" in chosen and "README.md" not in chosen
    assert not any(p.startswith("1_Dense/") for p in chosen)
    layout = api.get_store().layout
    os.truncate(_writable(layout.blob(_files(model)["onnx/model.onnx"])), 10)
    os.truncate(_writable(layout.blob(_files(model)["config.json"])), 10)
    repaired = api.verify_store(repair=True)
    assert repaired.repaired == (f"hf/acme/many@{model.revision}",)
    after = api.stored_model("hf:acme/many")
    assert {f.path for f in api.get_store().files(after)} == chosen
    assert set(os.listdir(after.path)) == {p.split("/")[0] for p in chosen}
    assert (after.path / "onnx" / "model.onnx").read_bytes() == files["onnx/model.onnx"]
    # A plain pull of the same revision keeps that selection too.
    os.truncate(_writable(layout.blob(_files(model)["onnx/model.onnx"])), 10)
    again = api.pull("hf:acme/many")
    assert set(_files(again)) == chosen


def test_repair_keeps_the_pickle_consent_it_was_given(hub: HubServer) -> None:
    files = {"config.json": CONFIG, "pytorch_model.bin": b"\x80\x04pickle" * 50}
    hub.add_repo("acme/old", files)
    model = api.pull("hf:acme/old", allow_pickle=True)
    manifest = api.get_store().read_manifest("hf", "acme/old", model.revision)
    assert manifest is not None and manifest.selection is not None
    assert manifest.selection.allow_pickle
    blob = api.get_store().layout.blob(_files(model)["pytorch_model.bin"])
    os.truncate(_writable(blob), 5)
    assert api.verify_store(repair=True).repaired == (f"hf/acme/old@{model.revision}",)
    assert (Path(model.path) / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]


def test_cache_verify_names_the_damage_and_repair_exits_zero(
    hub: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import run

    files = {**tiny_files(), "onnx/model.onnx": b"onnx" * 500}
    hub.add_repo("acme/tiny", files)
    model = api.pull("hf:acme/tiny", include=["onnx/*"])
    _replace_by_rename(Path(model.path) / "onnx" / "model.onnx", b"onnx" * 500 + b"!")
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1
    assert f"damaged file hf/acme/tiny@{model.revision}: onnx/model.onnx" in out
    assert "--repair" in out
    code, out, _ = run(capsys, "cache", "verify", "--repair")
    assert code == 0
    assert f"repaired: hf/acme/tiny@{model.revision}" in out
    assert (Path(model.path) / "onnx" / "model.onnx").read_bytes() == files["onnx/model.onnx"]
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0


def test_repair_of_a_manifest_from_before_selections_keeps_its_pickles(hub: HubServer) -> None:
    import json

    files = {"config.json": CONFIG, "pytorch_model.bin": b"\x80\x04pickle" * 50}
    hub.add_repo("acme/old", files)
    model = api.pull("hf:acme/old", allow_pickle=True)
    path = api.get_store().layout.manifest("hf", "acme/old", model.revision)
    legacy = json.loads(path.read_text())
    del legacy["selection"]
    legacy["schema_version"] = 1
    path.write_text(json.dumps(legacy))
    os.truncate(_writable(api.get_store().layout.blob(_files(model)["pytorch_model.bin"])), 5)
    assert api.verify_store(repair=True).repaired == (f"hf/acme/old@{model.revision}",)
    assert (Path(model.path) / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]


def test_a_selection_belongs_to_its_revision(hub: HubServer) -> None:
    files = {**tiny_files(), "onnx/model.onnx": b"onnx" * 500}
    repo = hub.add_repo("acme/tiny", files)
    first = api.pull("hf:acme/tiny", include=["onnx/*"])
    assert "onnx/model.onnx" in _files(first)
    repo.commit({**files, "config.json": CONFIG.replace(b"32", b"64")})
    second = api.pull("hf:acme/tiny")  # the branch moved: the default choice applies
    assert second.revision != first.revision
    assert "onnx/model.onnx" not in _files(second)
    assert "onnx/model.onnx" in _files(api.pull(f"hf:acme/tiny@{first.revision}"))
