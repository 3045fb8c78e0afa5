"""Damage a pulled model at random (blobs cut short or changed in place, folder files
replaced, removed, turned into folders or links, aliases naming the wrong blob), then
mend it with ``cache verify --repair`` or a plain ``pull``: the model comes back exactly,
with the files it was pulled with (its include/exclude selection kept), nothing outside
the store is touched, and the models pulled before it stay whole.

(One damage at a time, with exact counts: tests/test_store_integrity.py.)
``MODELPORT_FAULT_ROUNDS`` sets how many rounds run (default 4).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from pathlib import Path

import pytest

import modelport.api as api
from tests.hf_server import HubServer, git_blob_id, is_lfs
from tests.test_cli import run

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("MODELPORT_FAULT_ROUNDS", "4"))
SELECTIONS: list[tuple[list[str], list[str]]] = [
    ([], []),
    (["onnx/*"], []),
    ([], ["README.md", "2_Dense/*"]),
    (["onnx/*"], ["vocab.txt"]),
]


def _seen(kind: str, path: str, data: dict[str, bytes]) -> bool:
    """Whether ``cache verify`` reports this damage. It may miss two that harm nothing: a
    lost LFS blob whose folder file (a hard link) still holds its bytes, and a lost alias
    (the next pull finds it again from its blob)."""
    return kind != "alias removed" and not (kind == "blob removed" and is_lfs(path, data[path]))


def _files(rng: random.Random) -> dict[str, bytes]:
    tag = b"%d" % rng.getrandbits(48)
    return {
        "config.json": b'{"model_type": "bert", "tag": ' + tag + b"}",
        "tokenizer.json": b'{"version": "1.0", "tag": ' + tag + b"}",
        "vocab.txt": b"[PAD]\n[UNK]\nhello\n" + tag,
        "README.md": b"# faults " + tag,
        "model.safetensors": rng.randbytes(300_000),
        "onnx/model.onnx": rng.randbytes(100_000),
        "2_Dense/config.json": b'{"in": 32, "tag": ' + tag + b"}",
        "2_Dense/model.safetensors": rng.randbytes(50_000),
    }


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _writable(path: Path) -> Path:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


def _damage(
    rng: random.Random,
    path: str,
    folder: Path,
    files: dict[str, str],
    data: dict[str, bytes],
    outside: Path,
) -> str:
    """One random damage to ``path`` of the model in ``folder``; returns what it was."""
    layout = api.get_store().layout
    blob = layout.blob(files[path])
    target = folder / path
    kinds = ["blob cut", "blob changed", "blob removed", "file replaced", "file removed"]
    kinds += ["file is a folder", "file is a link"]
    if "/" in path:
        kinds += ["folder is a file", "folder is a link"]
    if not is_lfs(path, data[path]):  # a git-addressed file: its alias names its blob
        kinds += ["alias wrong", "alias garbage", "alias removed"]
    kind = rng.choice(kinds)
    if kind == "blob cut":
        os.truncate(_writable(blob), rng.randrange(blob.stat().st_size))
    elif kind == "blob changed":
        with _writable(blob).open("r+b") as fh:
            at = rng.randrange(len(data[path]))
            fh.seek(at)
            fh.write(bytes([data[path][at] ^ 0xFF]))
    elif kind == "blob removed":
        blob.unlink()
    elif kind == "file replaced":
        fake = target.with_name(".fake")
        fake.write_bytes(rng.randbytes(64))
        os.replace(fake, target)
    elif kind == "file removed":
        target.unlink()
    elif kind == "file is a folder":
        target.unlink()
        target.mkdir()
        (target / "inside.txt").write_text("a note")
    elif kind == "file is a link":
        target.unlink()
        target.symlink_to(outside / "file.txt")
    elif kind in ("folder is a file", "folder is a link"):
        shutil.rmtree(target.parent)
        if kind == "folder is a file":
            target.parent.write_text("a note")
        else:
            target.parent.symlink_to(outside, target_is_directory=True)
    else:
        alias = layout.alias("git-sha1", git_blob_id(data[path]))
        if kind == "alias wrong":
            alias.write_text(files[rng.choice([p for p in sorted(files) if p != path])])
        elif kind == "alias garbage":
            alias.write_text("not a digest")
        else:
            alias.unlink()
    return kind


def test_random_damage_is_found_and_mended_with_the_selection_kept(
    hub: HubServer,
    rng: random.Random,
    seed: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path / "a-users-folder"
    outside.mkdir()
    (outside / "file.txt").write_text("mine")
    repo = hub.add_repo("acme/faulty", {})
    earlier: list[tuple[Path, dict[str, bytes]]] = []
    for number in range(ROUNDS):
        data = _files(rng)
        repo.commit(data)
        include, exclude = rng.choice(SELECTIONS)
        model = api.pull("hf:acme/faulty", include=include, exclude=exclude)
        folder = Path(model.path)
        chosen = {path: sha for path, sha, _ in model.files}
        # Up to three files, one damage each (in different folders: a folder's damage
        # removes the files in it).
        by_folder = {path.rpartition("/")[0]: path for path in rng.sample(sorted(chosen), 3)}
        damage = [
            (_damage(rng, path, folder, chosen, data, outside), path)
            for path in list(by_folder.values())[: rng.randint(1, 3)]
        ]
        where = f"seed {seed}, round {number + 1}, {include=} {exclude=}, {damage}"

        code, out, err = run(capsys, "cache", "verify")
        assert "Traceback" not in out + err, where
        assert code == int(any(_seen(kind, path, data) for kind, path in damage)), (where, out)
        mend = rng.choice(["repair", "pull"])
        if mend == "repair":
            code, out, err = run(capsys, "cache", "verify", "--repair")
        else:
            code, out, err = run(capsys, "pull", "hf:acme/faulty", "--quiet")
        assert code == 0, (where, mend, out, err)
        # The model has exactly the files it was pulled with, each with its bytes.
        found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert found == set(chosen), (where, mend)
        for path in chosen:
            assert not (folder / path).is_symlink(), (where, mend, path)
            assert (folder / path).read_bytes() == data[path], (where, mend, path)
        assert _tree(outside) == {"file.txt": b"mine"}, where
        stored = api.stored_model(f"hf:acme/faulty@{model.revision}")
        assert {f.path for f in api.get_store().files(stored)} == set(chosen), where
        code, out, err = run(capsys, "cache", "verify", "--repair")
        assert code == 0, (where, out, err)
        assert api.verify_store().ok, where
        for old_folder, old_files in earlier:
            for path, content in old_files.items():
                assert (old_folder / path).read_bytes() == content, (where, old_folder, path)
        earlier.append((folder, {path: data[path] for path in chosen}))


@pytest.mark.parametrize("damage", ["alias wrong", "blob cut"])
def test_damage_never_reaches_a_new_revision_that_shares_the_file(
    hub: HubServer, rng: random.Random, damage: str
) -> None:
    data = _files(rng)
    repo = hub.add_repo("acme/faulty", data)
    model = api.pull("hf:acme/faulty")
    chosen = {path: sha for path, sha, _ in model.files}
    layout = api.get_store().layout
    if damage == "alias wrong":  # config.json's git id now names the README's blob
        shared = "config.json"
        layout.alias("git-sha1", git_blob_id(data[shared])).write_text(chosen["README.md"])
    else:  # the weights' blob lost its tail after the pull
        shared = "model.safetensors"
        os.truncate(_writable(layout.blob(chosen[shared])), 1000)
    # The next commit changes another file; the damaged one is the same on the Hub.
    repo.commit({**data, "tokenizer.json": b'{"version": "2.0"}'})
    hub.reset_counts()
    newer = api.pull("hf:acme/faulty")
    assert newer.revision != model.revision
    assert (Path(newer.path) / shared).read_bytes() == data[shared]
    assert {path: sha for path, sha, _ in newer.files}[shared] == chosen[shared]
    assert hub.file_gets[shared] == (1 if damage == "blob cut" else 0)  # found again locally
    api.verify_store(repair=True)
    assert api.verify_store().ok
