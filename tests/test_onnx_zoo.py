"""The ONNX Model Zoo's legacy manifest served on loopback: search → pull → run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import modelport.api as api
from modelport.errors import (
    AmbiguousModelError,
    HubUnavailableError,
    IntegrityError,
    ModelNotFoundError,
    RevisionNotFoundError,
)
from tests.catalog_server import CatalogServer, serve_catalogs

WEIGHTS = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def tiny_classifier(opset: int = 13) -> bytes:
    """data[N,3,H,W] → global average pool → 4 class scores (softmax)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["scores"]),
            helper.make_node("Softmax", ["scores"], ["prob"], axis=1),
        ],
        "tinynet",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def entry(
    name: str, path: str, data: bytes, opset: int, tags: list[str], sha: str | None = None
) -> dict[str, object]:
    return {
        "model": name,
        "model_path": path,
        "onnx_version": "1.14",
        "opset_version": opset,
        "metadata": {
            "model_sha": sha or hashlib.sha256(data).hexdigest(),
            "model_bytes": len(data),
            "tags": tags,
            "io_ports": {
                "inputs": [{"name": "data", "shape": ["N", 3, "H", "W"], "type": "tensor(float)"}],
                "outputs": [{"name": "prob", "shape": ["N", 4], "type": "tensor(float)"}],
            },
        },
    }


@pytest.fixture
def zoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[CatalogServer]:
    v12, v13 = tiny_classifier(12), tiny_classifier(13)
    manifest = [
        entry(
            "TinyNet",
            "vision/classification/tinynet/model/tinynet-12.onnx",
            v12,
            12,
            ["vision", "classification", "tinynet"],
        ),
        entry(
            "TinyNet",
            "vision/classification/tinynet/model/tinynet-13.onnx",
            v13,
            13,
            ["vision", "classification", "tinynet"],
        ),
        entry(
            "TinyNet-Tampered",
            "vision/classification/tampered/model/t.onnx",
            v13,
            13,
            ["vision", "classification"],
            sha="0" * 64,
        ),
        entry(
            "SqueezeNet 1.0",
            "vision/classification/squeezenet/model/s.onnx",
            v12,
            12,
            ["vision", "classification", "squeezenet"],
        ),
        entry(
            "SqueezeNet 1.1",
            "vision/classification/squeezenet/model/s11.onnx",
            v13,
            13,
            ["vision", "classification", "squeezenet"],
        ),
        {"model": "broken entry without metadata"},
    ]
    with serve_catalogs() as server:
        server.routes["/ONNX_HUB_MANIFEST.json"] = (200, json.dumps(manifest).encode())
        server.routes["/vision/classification/tinynet/model/tinynet-12.onnx"] = (200, v12)
        server.routes["/vision/classification/tinynet/model/tinynet-13.onnx"] = (200, v13)
        server.routes["/vision/classification/tampered/model/t.onnx"] = (200, v13)
        monkeypatch.setenv("MODELPORT_ONNX_ZOO_URL", server.url)
        api.reset()
        yield server


def test_search_by_name_and_tag(zoo: CatalogServer) -> None:
    found = api.search_hub("tinynet", hub="onnx")
    assert [m.id for m in found] == ["TinyNet", "TinyNet-Tampered"]
    assert "opset:13" in found[0].tags
    assert {m.id for m in api.search_hub("squeezenet", hub="onnx")} == {
        "SqueezeNet 1.0",
        "SqueezeNet 1.1",
    }
    assert all(m.task == "image-classification" for m in api.search_hub("", hub="onnx"))


def test_pull_verifies_and_picks_the_newest_opset(zoo: CatalogServer) -> None:
    model = api.pull("onnx:tinynet")
    assert model.hub == "onnx"
    assert model.ref == "onnx:TinyNet@13"
    assert (Path(model.path) / "model.onnx").read_bytes() == tiny_classifier(13)
    assert api.pull("onnx:TinyNet").from_store
    old = api.pull("onnx:tinynet@12")
    assert (Path(old.path) / "model.onnx").read_bytes() == tiny_classifier(12)
    assert len(api.list_models(registry="onnx")) == 2
    with pytest.raises(RevisionNotFoundError):
        api.pull("onnx:tinynet@99")


def test_a_tampered_model_is_refused(zoo: CatalogServer) -> None:
    with pytest.raises(IntegrityError, match="does not match its published sha256"):
        api.pull("onnx:tinynet-tampered")
    assert api.list_models(registry="onnx") == []


def test_names_resolve_fuzzily_or_fail_clearly(zoo: CatalogServer) -> None:
    with pytest.raises(AmbiguousModelError) as info:
        api.pull("onnx:squeeznet")
    assert "onnx:SqueezeNet 1.0" in info.value.suggestions
    with pytest.raises(ModelNotFoundError):
        api.pull("onnx:does-not-exist-anywhere")


def test_run_a_zoo_classifier_end_to_end(zoo: CatalogServer, tmp_path: Path) -> None:
    from PIL import Image

    image_path = tmp_path / "photo.png"
    pixels = np.random.default_rng(1).integers(0, 255, (300, 260, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image_path)
    result = api.run("onnx:tinynet", str(image_path), top_k=4)
    model = api.load_model("onnx:tinynet")
    assert model.task == "image-classification"
    # The same answer by hand: ImageNet preprocessing, average pool, weights, softmax.
    batch = model.pipeline.preprocess(str(image_path))
    assert batch.shape == (1, 3, 224, 224)
    scores = batch.mean(axis=(2, 3)) @ WEIGHTS
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    order = np.argsort(-expected[0])
    assert [r["label"] for r in result] == [f"LABEL_{i}" for i in order]
    # The model ends in a softmax: its probabilities are reported as they are.
    np.testing.assert_allclose([r["score"] for r in result], expected[0][order], atol=1e-5)
    spec = (model.folder / "modelport.yml").read_text()
    assert "task: image-classification" in spec
    assert "name: data" in spec


def test_zoo_down_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_ONNX_ZOO_URL", "http://127.0.0.1:9")
    api.reset()
    with pytest.raises(HubUnavailableError, match="Cannot reach the ONNX Model Zoo"):
        api.search_hub("resnet", hub="onnx")


@pytest.fixture
def zoo_on_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from tests.hf_server import serve_hub

    with serve_hub() as hf:
        for opset in (12, 13):
            hf.add_repo(
                f"onnxmodelzoo/tinynet_Opset{opset}",
                {"tinynet.onnx": tiny_classifier(opset), "README.md": b"# TinyNet"},
                pipeline_tag="image-classification",
                library_name="onnx",
                downloads=10 + opset,
            )
        hf.add_repo("someone-else/tinynet_Opset17", {"x.onnx": tiny_classifier(13)})
        monkeypatch.setenv("HF_ENDPOINT", hf.url)
        api.reset()
        yield hf


def test_zoo_models_come_from_the_hub_organisation(
    zoo_on_hub: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = api.search_hub("tiny", hub="onnx")
    assert [(m.id, m.tags) for m in found] == [("tinynet", ("opset:13",))]
    model = api.pull("onnx:TinyNet")
    assert (model.hub, model.id, model.ref) == ("onnx", "tinynet", "onnx:tinynet@13")
    assert len(model.revision) == 40  # the Hub commit
    assert sorted(f for f, _, _ in model.files) == ["README.md", "tinynet.onnx"]
    assert (Path(model.path) / "tinynet.onnx").read_bytes() == tiny_classifier(13)
    old = api.pull("onnx:tinynet@12")
    assert (Path(old.path) / "tinynet.onnx").read_bytes() == tiny_classifier(12)
    assert api.pull("onnx:tiny-net").from_store  # loose names match

    from PIL import Image

    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((50, 50, 3), dtype=np.uint8)).save(image)
    first = api.run("onnx:tinynet", str(image), top_k=2)
    # Offline, the stored model answers without the Hub.
    monkeypatch.setenv("MODELPORT_OFFLINE", "1")
    api.reset()
    assert api.pull("onnx:tinynet").from_store
    assert api.run("onnx:tinynet", str(image), top_k=2) == first


def test_show_a_hub_model_without_pulling_it(
    zoo_on_hub: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_cli import run

    code, out, _ = run(capsys, "show", "onnx:tinynet", "--json")
    assert code == 0, out
    info = json.loads(out)
    assert (info["ref"], info["task"], info["library"]) == (
        "onnx:tinynet",
        "image-classification",
        "onnx",
    )
    assert "opset:13" in info["tags"]
    assert api.list_models() == []  # nothing was pulled
    code, out, _ = run(capsys, "show", "onnx:tinynet")
    assert code == 0 and "image-classification" in out


@pytest.mark.parametrize("switch", ["MODELPORT_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_the_zoo_is_served_from_the_store_or_refused_without_the_network(
    zoo: CatalogServer, zoo_on_hub: Any, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    from modelport.errors import OfflineError

    api.pull("onnx:tinynet")
    monkeypatch.setenv(switch, "1")
    zoo.requests.clear()
    zoo_on_hub.reset_counts()
    assert api.pull("onnx:tinynet").from_store
    with pytest.raises(OfflineError) as refused:
        api.pull("onnx:squeezenet")
    assert refused.value.one_line().startswith(
        "onnx:squeezenet is not complete in the store and offline mode is on."
    )
    assert zoo.requests == [] and zoo_on_hub.requests == []


@pytest.mark.parametrize(
    ("option", "flag"),
    [({"include": ["*.onnx"]}, "--include"), ({"allow_pickle": True}, "--allow-pickle")],
)
def test_file_options_are_refused_for_the_zoo(
    zoo: CatalogServer, option: dict[str, Any], flag: str
) -> None:
    from modelport.errors import InvalidValueError

    with pytest.raises(InvalidValueError) as refused:
        api.pull("onnx:tinynet", **option)
    assert refused.value.message.startswith(f"{flag} cannot apply to onnx: models: the zoo")
    assert zoo.requests == []


def test_the_preflight_answer_is_not_asked_again(
    zoo_on_hub: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counts = []
    for progress in (None, lambda event: None):
        monkeypatch.setenv("MODELPORT_HOME", str(tmp_path / f"home-{len(counts)}"))
        api.reset()
        zoo_on_hub.reset_counts()
        api.pull("onnx:tinynet", progress=progress)
        counts.append(len([r for r in zoo_on_hub.requests if r[1].startswith("/api/")]))
    # The zoo's search and the repository's metadata are asked once either way.
    assert counts[0] == counts[1], zoo_on_hub.requests
