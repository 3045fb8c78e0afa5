"""Real use feeds the catalog's ranking: pulls and runs count, in this process and the next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport.api as api
from modelport.api.catalog import USAGE_JOURNAL
from modelport.settings import get_settings
from tests.conftest import make_entry
from tests.hf_server import HubServer, serve_hub
from tests.test_pull import tiny_files

NAMES = ("acme/tiny-echo-a", "acme/tiny-echo-b")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        api.reset()
        api.add_entries(
            [make_entry(n, category="embedding", tasks=["feature-extraction"]) for n in NAMES]
        )
        yield server


def _ranked() -> list[str]:
    return [hit.entry.id for hit in api.get_catalog().search("tiny echo")][:2]


def test_a_pull_counts_and_the_ranking_reads_it(hub: HubServer) -> None:
    first = _ranked()
    assert sorted(first) == sorted(NAMES)
    used = first[1]  # the one that ranks second before anyone used it
    hub.add_repo(used, tiny_files())
    api.pull(f"hf:{used}")
    catalog = api.get_catalog()
    assert catalog.usage(used) == 1
    assert _ranked()[0] == used
    api.pull(used)  # served from the store: still a use
    assert catalog.usage(used) == 2
    api.reset()  # a new process reads the counts from the database
    assert api.get_catalog().usage(used) == 2
    assert _ranked()[0] == used


def test_a_use_without_a_loaded_catalog_is_folded_in_when_it_loads(hub: HubServer) -> None:
    used = _ranked()[1]
    hub.add_repo(used, tiny_files())
    api.reset()  # no catalog in this process: the pull journals its use
    api.pull(f"hf:{used}")
    assert (get_settings().home / USAGE_JOURNAL).exists()
    assert api.get_catalog().usage(used) == 1
    assert not (get_settings().home / USAGE_JOURNAL).exists()
    api.reset()
    assert api.get_catalog().usage(used) == 1  # folded once, not on every load
    assert _ranked()[0] == used


def _tiny_onnx(path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "echo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))


def test_a_run_counts_cold_and_warm(hub: HubServer, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    used = _ranked()[1]
    _tiny_onnx(tmp_path / "model.onnx")
    hub.add_repo(used, {"model.onnx": (tmp_path / "model.onnx").read_bytes()})
    assert api.run(used, [[1.0, 2.0]]) == {"y": [[1.0, 2.0]]}
    assert api.get_catalog().usage(used) == 2  # the pull, and the run
    api.reset()  # a new process: the warm run starts without the catalog
    assert api.run(used, [[3.0, 4.0]]) == {"y": [[3.0, 4.0]]}
    assert api.get_catalog().usage(used) == 3
    assert _ranked()[0] == used
