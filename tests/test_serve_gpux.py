"""GPUX's /predict, /info and /health on a real ``modelport serve FOLDER``, driven by httpx.

The folder is GPUX's published image-classification example (its ``gpux.yml`` unchanged)
beside a tiny ONNX classifier with the same inputs and outputs; requests and answers are
shaped as GPUX's own server (``gpux serve``) shapes them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import FIXTURES
from tests.serving import ServerProcess, serve
from tests.test_gpux_spec import _tiny_classifier

pytestmark = pytest.mark.slow

EXAMPLE = "image-classification"
#: The server reaches no registry: the Hub and the others point at a closed port.
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    **dict.fromkeys(
        (
            "HF_ENDPOINT",
            "MODELPORT_ONNX_ZOO_URL",
            "MODELPORT_KAGGLE_URL",
            "MODELPORT_TFHUB_URL",
            "MODELPORT_GITHUB_URL",
            "MODELPORT_GITHUB_API_URL",
        ),
        "http://127.0.0.1:9",
    ),
}


def _example(root: Path) -> Path:
    folder = root / EXAMPLE
    shutil.copytree(FIXTURES / "gpux" / EXAMPLE, folder)
    _tiny_classifier(folder / "resnet50.onnx")
    return folder


def _renamed(root: Path) -> Path:
    """A graph (x, bias → y, z) whose gpux.yml names every tensor otherwise, in order."""
    from onnx import TensorProto, helper, save

    folder = root / "renamed"
    folder.mkdir()
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "bias"], ["y"]),
            helper.make_node("ReduceSum", ["x"], ["z"], keepdims=0),
        ],
        "renamed",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
            # Open, so that a wrong length reaches ONNX Runtime (which refuses to add them).
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["m"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, []),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(folder / "model.onnx"))
    (folder / "gpux.yml").write_text(
        "name: renamed\nversion: 2.0.0\nmodel:\n  source: ./model.onnx\n  format: onnx\n"
        "inputs:\n  features:\n    type: float32\n    shape: [-1, 3]\n"
        "  offset:\n    type: float32\n    shape: [-1]\n"
        "outputs:\n  shifted:\n    type: float32\n  total:\n    type: float32\n"
    )
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpux-models")
    return {EXAMPLE: _example(root), "renamed": _renamed(root)}


def _serving(tmp_path_factory: pytest.TempPathFactory, *folders: Path) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("gpux-home")
    with serve(home, *(str(f) for f in folders), env=OFFLINE) as process:
        yield process
        log = process.output()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def server(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``modelport serve FOLDER``: one model, as ``gpux serve`` has."""
    yield from _serving(tmp_path_factory, folders[EXAMPLE])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, 3, 224, 224)).astype(np.float32)


def test_health_names_the_model_as_its_gpux_yml_does(server: ServerProcess) -> None:
    health = httpx.get(f"{server.url}/health", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "healthy", "model": EXAMPLE}


def test_info_is_shaped_as_gpux_shapes_it(server: ServerProcess, folders: dict[str, Path]) -> None:
    info = httpx.get(f"{server.url}/info", timeout=30).json()
    assert set(info) == {
        "name",
        "version",
        "format",
        "path",
        "size_bytes",
        "size_mb",
        "inputs",
        "outputs",
        "metadata",
    }
    assert (info["name"], info["version"], info["format"]) == (EXAMPLE, "1.0.0", "onnx")
    assert Path(info["path"]) == (folders[EXAMPLE] / "resnet50.onnx").resolve()
    assert info["size_bytes"] == (folders[EXAMPLE] / "resnet50.onnx").stat().st_size
    assert info["inputs"] == [
        {
            "name": "input",
            "type": "float32",
            "shape": [1, 3, 224, 224],
            "required": True,
            "description": "Preprocessed image tensor (RGB, normalized)",
        }
    ]
    assert info["outputs"] == [
        {
            "name": "output",
            "type": "float32",
            "shape": [1, 1000],
            "labels": None,
            "description": "Class probabilities for ImageNet classes",
        }
    ]
    assert set(info["metadata"]) == {
        "producer_name",
        "producer_version",
        "domain",
        "model_version",
        "doc_string",
        "execution_providers",
    }
    assert "CPUExecutionProvider" in info["metadata"]["execution_providers"]


def test_predict_equals_onnx_runtime(
    server: ServerProcess, folders: dict[str, Path], image: np.ndarray
) -> None:
    import onnxruntime

    answer = httpx.post(f"{server.url}/predict", json={"input": image.tolist()}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert list(answer.json()) == ["output"]
    session = onnxruntime.InferenceSession(str(folders[EXAMPLE] / "resnet50.onnx"))
    (expected,) = session.run(None, {"input": image})
    np.testing.assert_allclose(np.asarray(answer.json()["output"]), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "The request body is not JSON"),
        (b"[1, 2, 3]", "must be a JSON object keyed by input name: input."),
        (b'{"pixels": [1]}', "image-classification has no input 'pixels'; it takes input"),
        (b"{}", "needs the input input (float32 [1, 3, 224, 224]); the request lacks it."),
        (b'{"input": [[1, 2], [3]]}', "is not a regular array"),
        (b'{"input": [["a"]]}', "The input input takes float32 values, not 'a'."),
        (b'{"input": [1, 2, 3]}', "The input input has shape [3]; image-classification takes"),
    ],
    ids=["not-json", "not-an-object", "unknown-input", "missing", "ragged", "text", "shape"],
)
def test_a_bad_predict_body_is_400_in_one_sentence(
    server: ServerProcess, content: bytes, words: str
) -> None:
    answer = httpx.post(
        f"{server.url}/predict",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"detail"}  # GPUX's (FastAPI's) error document
    assert words in body["detail"]
    assert "\n" not in body["detail"]


def test_metrics_are_served(server: ServerProcess) -> None:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert 'route="/predict"' in metrics.text


def test_with_several_models_predict_asks_which_and_names_renamed_tensors(
    folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, image: np.ndarray
) -> None:
    for several in _serving(tmp_path_factory, folders[EXAMPLE], folders["renamed"]):
        unsure = httpx.post(f"{several.url}/predict", json={"input": image.tolist()}, timeout=30)
        assert unsure.status_code == 400
        assert unsure.json()["detail"] == (
            f"This server serves 2 models ({EXAMPLE}, renamed), so /predict needs "
            "?model=NAME naming one of them."
        )
        assert httpx.get(f"{several.url}/health", timeout=10).json() == {
            "status": "healthy",
            "model": None,
        }
        assert httpx.get(f"{several.url}/info", timeout=10).status_code == 400
        chosen = httpx.post(
            f"{several.url}/predict",
            params={"model": "renamed"},
            json={"features": [[1, 2, 3], [4, 5, 6]], "offset": [0.5, 0, -1]},
            timeout=30,
        )
        assert chosen.status_code == 200, chosen.text
        assert chosen.json() == {"shifted": [[1.5, 2, 2], [4.5, 5, 5]], "total": 21.0}
        info = httpx.get(f"{several.url}/info", params={"model": "renamed"}, timeout=10).json()
        assert [(t["name"], t["type"], t["shape"]) for t in info["inputs"]] == [
            ("features", "float32", [-1, 3]),
            ("offset", "float32", [-1]),
        ]
        assert [t["name"] for t in info["outputs"]] == ["shifted", "total"]
        wrong = httpx.post(
            f"{several.url}/predict", params={"model": "renamed"}, json={"x": [1]}, timeout=30
        )
        assert wrong.json()["detail"].startswith(
            "renamed has no input 'x'; it takes features (float32 [-1, 3]), offset (float32 [-1])."
        )
        refused = httpx.post(
            f"{several.url}/predict",
            params={"model": "renamed"},
            json={"features": [[1, 2, 3]], "offset": [1, 2]},
            timeout=30,
        )
        assert refused.status_code == 400
        assert refused.json()["detail"].startswith(
            "ONNX Runtime cannot run renamed on these inputs: "
        )


def test_a_text_model_whose_spec_declares_a_string_input_takes_texts(tmp_path: Path) -> None:
    import yaml

    import modelport.api as api
    from tests.tiny_models import build_encoder

    converted = api.convert(str(build_encoder(tmp_path / "encoder", "sentence-similarity")))
    folder = tmp_path / "sentences"
    shutil.copytree(converted.path, folder)
    spec = yaml.safe_load((folder / "modelport.yml").read_text())
    spec["inputs"] = {"sentence": {"type": "string", "description": "texts to embed"}}
    spec["outputs"] = {"vector": {"type": "float32", "shape": [-1, 32]}}
    (folder / "modelport.yml").write_text(yaml.safe_dump(spec))
    texts = ["hello world", "the quick brown fox jumps over the lazy dog"]
    expected = np.asarray(api.run(str(converted.path), texts))
    with serve(tmp_path / "home", str(folder), env=OFFLINE) as server:
        answer = httpx.post(f"{server.url}/predict", json={"sentence": texts}, timeout=60)
        one = httpx.post(f"{server.url}/predict", json={"sentence": texts[0]}, timeout=60)
        info = httpx.get(f"{server.url}/info", timeout=30).json()
    assert answer.status_code == 200, answer.text
    assert list(answer.json()) == ["vector"]
    np.testing.assert_allclose(np.asarray(answer.json()["vector"]), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(one.json()["vector"]), expected[:1], atol=1e-6)
    assert info["inputs"] == [
        {
            "name": "sentence",
            "type": "string",
            "shape": [-1],
            "required": True,
            "description": "texts to embed",
        }
    ]
    assert info["outputs"][0]["shape"] == [-1, 32]


@pytest.mark.anyio
async def test_a_server_without_a_model_says_how_to_name_one() -> None:
    from modelport.server.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/predict", json={"input": [1]})
        health = await client.get("/health")
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(
        "This server was started without a model, so /predict does not know which to use: "
        "name one with ?model=NAME"
    )
    assert health.json() == {"status": "healthy", "model": None}
