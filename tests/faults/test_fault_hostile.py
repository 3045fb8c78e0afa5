"""A hostile Hub's file listing: every name is refused in one sentence before any file is
requested, or stored exactly where it says inside the model folder; nothing else happens.

(Names that escape the folder: tests/test_pull.py; hostile digests, sizes and commits:
tests/test_bad_input.py; stalled hubs: tests/test_timeouts.py.)
``MODELPORT_FAULT_EXAMPLES`` sets how many listings hypothesis tries (default 40).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelport.api as api
from modelport.errors import ModelportError, UnsafeFileError
from modelport.store.layout import safe_relative_path
from tests.hf_server import HubServer

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("MODELPORT_FAULT_EXAMPLES", "40"))
FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": b"w" * 1000}


def _nothing_fetched_or_stored(hub: HubServer, repo: str) -> None:
    assert sum(hub.file_gets.values()) == 0, dict(hub.file_gets)
    root = api.get_store().layout.root
    assert not (root / "manifests" / "hf" / repo).exists()
    assert not (root / "models" / "hf" / repo).exists()
    assert api.list_models() == []


@pytest.mark.parametrize(
    ("listing", "name"),
    [
        ({"config.json/x.json": b"{}"}, "config.json/x.json"),  # a file and a folder at once
        ({"onnx": b"x", "onnx/model.onnx": b"onnx"}, "onnx/model.onnx"),
        ({"a" * 256: b"{}"}, "a" * 256),  # longer than any file system allows a name
        ({"é" * 128 + "/x.json": b"{}"}, "é" * 128 + "/x.json"),  # 256 bytes in UTF-8
    ],
    ids=["file-and-folder", "folder-after-file", "long-name", "long-utf8-folder"],
)
def test_a_listing_no_folder_can_hold_is_refused_before_any_request(
    hub: HubServer, listing: dict[str, bytes], name: str
) -> None:
    hub.add_repo("acme/clash", {**FILES, **listing})
    with pytest.raises(UnsafeFileError) as refused:
        api.pull("hf:acme/clash")
    assert refused.value.name == name
    assert "\n" not in refused.value.one_line()
    _nothing_fetched_or_stored(hub, "acme/clash")


def test_a_name_listed_twice_is_refused_before_any_request(hub: HubServer) -> None:
    repo = hub.add_repo("acme/twice", FILES)
    repo.extra_listing.append("config.json")
    with pytest.raises(UnsafeFileError, match="twice") as refused:
        api.pull("hf:acme/twice")
    assert refused.value.name == "config.json"
    _nothing_fetched_or_stored(hub, "acme/twice")


def test_the_longest_name_a_folder_can_hold_is_stored(hub: HubServer) -> None:
    longest = "n" * 250 + ".json"  # 255 bytes: the limit of ext4, APFS, NTFS
    hub.add_repo("acme/long", {**FILES, longest: b"{}", f"{longest[:200]}/{longest}": b"[]"})
    model = api.pull("hf:acme/long")
    assert (Path(model.path) / longest).read_bytes() == b"{}"
    assert (Path(model.path) / longest[:200] / longest).read_bytes() == b"[]"
    assert api.verify_store().ok


# Segments that break naive path handling, and any text.
_SEGMENTS = st.sampled_from(
    [
        *("..", ".", "", "~", " ", "a b", "%2e%2e", "%2F", "?", "#", "q?x=1", "h#f", "100%"),
        *("\\", "C:", "\x00", "\n", "\u202e", "é", "config.json", "model.safetensors"),
        *("a.bin", "x.py", ".gitattributes", "n" * 255, "n" * 256, "é" * 128),
    ]
) | st.text(max_size=8)
_NAMES = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join) | st.text(max_size=24)


def test_any_listed_name_is_refused_up_front_or_stored_in_place(
    hub: HubServer, tmp_path: Path
) -> None:
    numbers = itertools.count()
    outside = {p for p in tmp_path.rglob("*") if "home" not in p.parts}

    @settings(max_examples=EXAMPLES, database=None)
    @given(name=_NAMES, data=st.binary(max_size=64))
    def check(name: str, data: bytes) -> None:
        repo = f"acme/hostile-{next(numbers)}"
        files = {**FILES, name: data}
        hub.add_repo(repo, files)
        hub.reset_counts()
        try:
            model = api.pull(f"hf:{repo}")
        except UnsafeFileError as e:
            assert e.name == name
            assert "\n" not in e.one_line()
            _nothing_fetched_or_stored(hub, repo)
            return
        except ModelportError as e:  # refused for another reason: a pickle, a 404 …
            assert "\n" not in e.one_line()
            return
        finally:
            assert {p for p in tmp_path.rglob("*") if "home" not in p.parts} == outside
        safe_relative_path(name)  # accepted names are safe ones
        folder = Path(model.path).resolve()
        for path, _, _ in model.files:
            stored = (folder / path).resolve()
            assert stored.is_relative_to(folder)
            assert stored.read_bytes() == files[path]
        api.remove(f"hf:{repo}")

    check()


def test_the_store_refuses_to_commit_a_tree_no_folder_can_hold(hub: HubServer) -> None:
    import dataclasses

    # Whichever hub built it: the store's last guard before anything becomes visible.
    hub.add_repo("acme/tiny", FILES)
    model = api.pull("hf:acme/tiny")
    store = api.get_store()
    manifest = store.read_manifest("hf", "acme/tiny", model.revision)
    assert manifest is not None
    config = next(f for f in manifest.files if f.path == "config.json")
    for extra, reason in (
        (config, "listed twice"),
        (dataclasses.replace(config, path="config.json/inner.json"), "is a file"),
    ):
        bad = dataclasses.replace(manifest, revision="f" * 40, files=(*manifest.files, extra))
        with pytest.raises(UnsafeFileError, match=reason):
            store.commit(bad)
        assert store.read_manifest("hf", "acme/tiny", "f" * 40) is None
        assert not store.layout.model_dir("hf", "acme/tiny", "f" * 40).exists()
