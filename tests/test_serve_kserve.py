"""KServe / Open Inference Protocol V2 on a real ``modelport serve``, driven by tritonclient.

One server serves three folders: an ONNX graph exported from a tiny torch module (its own
tensors in and out), a tiny sentence-embedding BERT and a tiny BERT classifier (texts in
as BYTES, the task's answer out as tensors).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, serve
from tests.tiny_models import build_encoder

pytestmark = pytest.mark.slow

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

GRAPH, EMBED, CLASSIFY = "tiny-graph", "tiny-embed", "tiny-classify"
STORED = "hf:acme/tiny-graph"
#: The server reaches no registry but the loopback Hub: the others point at a closed port.
OFFLINE = dict.fromkeys(
    (
        "MODELPORT_ONNX_ZOO_URL",
        "MODELPORT_KAGGLE_URL",
        "MODELPORT_TFHUB_URL",
        "MODELPORT_GITHUB_URL",
        "MODELPORT_GITHUB_API_URL",
    ),
    "http://127.0.0.1:9",
)
TEXTS = ["the quick brown fox", "hello world", "paris is the capital of france today"]


def _graph(folder: Path) -> Path:
    """x [n, 4] and bias [3] → y = linear(x) + bias [n, 3], z = relu(x) summed [n]."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: Any, bias: Any) -> Any:
            return self.linear(x) + bias, torch.relu(x).sum(1)

    folder.mkdir()
    torch.manual_seed(0)
    torch.onnx.export(
        Net(),
        (torch.randn(2, 4), torch.randn(3)),
        str(folder / "model.onnx"),
        input_names=["x", "bias"],
        output_names=["y", "z"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}, "z": {0: "n"}},
        dynamo=False,
    )
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kserve-models")
    return {
        GRAPH: _graph(root / GRAPH),
        EMBED: build_encoder(root / EMBED, "sentence-similarity"),
        CLASSIFY: build_encoder(root / CLASSIFY, "text-classification"),
    }


@pytest.fixture(scope="module")
def hub(folders: dict[str, Path]) -> Iterator[HubServer]:
    """A loopback Hub publishing the graph as hf:acme/tiny-graph (pulled into the store)."""
    with serve_hub() as server:
        server.add_folder("acme/tiny-graph", folders[GRAPH])
        yield server


@pytest.fixture(scope="module")
def server(
    folders: dict[str, Path], hub: HubServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("kserve-home")
    with serve(
        home,
        *(str(f) for f in folders.values()),
        STORED,
        env={**OFFLINE, "HF_ENDPOINT": hub.url},
        startup_s=300,
    ) as process:
        yield process
        log = process.output()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def _converted(server: ServerProcess, name: str) -> Path:
    """The converted folder the server loaded for a model (from /api/v1/ps)."""
    rows = httpx.get(f"{server.url}/api/v1/ps", timeout=10).json()["data"]
    return Path(next(r["folder"] for r in rows if name in r["names"]))


def _graph_inputs(x: np.ndarray, bias: np.ndarray, *, binary: bool) -> list[Any]:
    first = httpclient.InferInput("x", list(x.shape), "FP32")
    first.set_data_from_numpy(x, binary_data=binary)
    second = httpclient.InferInput("bias", list(bias.shape), "FP32")
    second.set_data_from_numpy(bias, binary_data=binary)
    return [first, second]


def _texts(texts: list[str], *, binary: bool = True) -> list[Any]:
    tensor = httpclient.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=binary)
    return [tensor]


def _status(error: pytest.ExceptionInfo[InferenceServerException]) -> str:
    return str(error.value.status())


def test_the_server_is_live_ready_and_describes_itself(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "modelport"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_gives_the_graph_tensors_and_the_text_mapping(client: Any) -> None:
    graph = client.get_model_metadata(GRAPH)
    assert graph["name"] == GRAPH
    assert graph["versions"] == ["1"]
    assert graph["platform"] == "onnxruntime_onnx"
    assert graph["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "bias", "datatype": "FP32", "shape": [3]},
    ]
    assert graph["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "z", "datatype": "FP32", "shape": [-1]},
    ]
    embed = client.get_model_metadata(EMBED)
    assert embed["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert embed["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 32]}]
    classify = client.get_model_metadata(CLASSIFY, model_version="1")
    assert classify["outputs"] == [
        {"name": "scores", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]


def test_models_are_ready_in_their_one_version(client: Any) -> None:
    assert client.is_model_ready(GRAPH)
    assert client.is_model_ready(EMBED, "1")
    assert not client.is_model_ready(GRAPH, "2")
    assert not client.is_model_ready("never-loaded")
    with pytest.raises(InferenceServerException) as error:
        client.get_model_metadata(GRAPH, model_version="2")
    assert _status(error) == "404"
    assert "one version, 1" in error.value.message()


def test_a_store_model_answers_to_its_store_revision_too(client: Any, hub: HubServer) -> None:
    revision = hub.repos["acme/tiny-graph"].resolve("main")
    assert revision is not None
    assert client.is_model_ready(STORED, revision)
    assert client.get_model_metadata(STORED, model_version=revision)["name"] == STORED
    x, bias = np.ones((1, 4), np.float32), np.zeros(3, np.float32)
    result = client.infer(STORED, _graph_inputs(x, bias, binary=True), model_version=revision)
    assert result.get_response()["model_version"] == revision
    assert result.as_numpy("z").tolist() == [4.0]
    with pytest.raises(InferenceServerException) as error:
        client.get_model_metadata(STORED, model_version="0" * 40)
    assert _status(error) == "404"
    assert f"one version, 1 (store revision {revision})" in error.value.message()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_on_an_onnx_graph_equals_onnx_runtime(
    client: Any, folders: dict[str, Path], binary: bool
) -> None:
    import onnxruntime

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    session = onnxruntime.InferenceSession(str(folders[GRAPH] / "model.onnx"))
    y, z = session.run(None, {"x": x, "bias": bias})
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("y", "z")]
    result = client.infer(
        GRAPH,
        _graph_inputs(x, bias, binary=binary),
        outputs=outputs,
        request_id="req-7",
        model_version="1",
    )
    np.testing.assert_allclose(result.as_numpy("y"), y, atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("z"), z, atol=1e-6)
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == GRAPH
    # Without named outputs tritonclient asks for every output as binary data.
    every = client.infer(GRAPH, _graph_inputs(x, bias, binary=binary))
    assert {o["name"] for o in every.get_response()["outputs"]} == {"y", "z"}
    np.testing.assert_allclose(every.as_numpy("y"), y, atol=1e-6)


def test_only_the_requested_outputs_come_back(client: Any) -> None:
    x = np.ones((2, 4), dtype=np.float32)
    bias = np.zeros(3, dtype=np.float32)
    result = client.infer(
        GRAPH,
        _graph_inputs(x, bias, binary=True),
        outputs=[httpclient.InferRequestedOutput("z")],
    )
    assert [o["name"] for o in result.get_response()["outputs"]] == ["z"]
    assert result.as_numpy("y") is None
    np.testing.assert_allclose(result.as_numpy("z"), [4.0, 4.0])


def test_embeddings_of_texts_equal_modelport_run(client: Any, server: ServerProcess) -> None:
    import modelport.api as api

    result = client.infer(EMBED, _texts(TEXTS))
    vectors = result.as_numpy("embedding")
    assert vectors.shape == (3, 32)
    assert vectors.dtype == np.float32
    expected = np.asarray(api.run(str(_converted(server, EMBED)), TEXTS))
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    as_json = client.infer(EMBED, _texts(TEXTS[:1], binary=False))
    np.testing.assert_allclose(as_json.as_numpy("embedding"), expected[:1], atol=1e-6)


def test_classification_gives_scores_in_label_order_and_the_best_label(
    client: Any, server: ServerProcess
) -> None:
    import modelport.api as api

    result = client.infer(CLASSIFY, _texts(TEXTS))
    scores, labels = result.as_numpy("scores"), result.as_numpy("label")
    assert scores.shape == (3, 3)
    expected = api.run(str(_converted(server, CLASSIFY)), TEXTS, top_k=None)
    order = ["negative", "neutral", "positive"]
    for row, label, answer in zip(scores, labels, expected, strict=True):
        by_label = {a["label"]: a["score"] for a in answer}
        np.testing.assert_allclose(row, [by_label[n] for n in order], atol=1e-6)
        assert label.decode() == answer[0]["label"]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (
            lambda: _graph_inputs(np.ones((2, 5), np.float32), np.ones(3, np.float32), binary=True),
            "400",
            "The input x has shape [2, 5]; tiny-graph takes [-1, 4]",
        ),
        (
            lambda: [
                _graph_inputs(np.ones((2, 4), np.float32), np.ones(3, np.float32), binary=True)[1],
                _float64_x(),
            ],
            "400",
            "The input x of tiny-graph is FP32; the request sent FP64.",
        ),
        (
            lambda: [
                *_graph_inputs(np.ones((2, 4), np.float32), np.ones(3, np.float32), binary=False),
                _named("q"),
            ],
            "400",
            "tiny-graph has no input 'q'; it takes x (FP32 [-1, 4]), bias (FP32 [3]).",
        ),
        (
            lambda: _graph_inputs(np.ones((2, 4), np.float32), np.ones(3, np.float32), binary=True)[
                :1
            ],
            "400",
            "tiny-graph needs the input bias (FP32 [3]); the request lacks it.",
        ),
    ],
    ids=["wrong-shape", "wrong-datatype", "unknown-input", "missing-input"],
)
def test_bad_inputs_are_400_in_one_sentence(
    client: Any, server: ServerProcess, make: Any, status: str, words: str
) -> None:
    with pytest.raises(InferenceServerException) as error:
        client.infer(GRAPH, make())
    assert _status(error) == status
    assert words in error.value.message()
    assert "\n" not in error.value.message()


def _float64_x() -> Any:
    tensor = httpclient.InferInput("x", [2, 4], "FP64")
    tensor.set_data_from_numpy(np.ones((2, 4), np.float64))
    return tensor


def _named(name: str) -> Any:
    tensor = httpclient.InferInput(name, [1], "FP32")
    tensor.set_data_from_numpy(np.ones(1, np.float32), binary_data=False)
    return tensor


def test_unknown_models_and_outputs_are_refused(client: Any) -> None:
    x = np.ones((1, 4), np.float32)
    bias = np.ones(3, np.float32)
    with pytest.raises(InferenceServerException) as error:
        client.infer("no-such-model-anywhere", _graph_inputs(x, bias, binary=True))
    assert _status(error) == "404"
    assert "no-such-model-anywhere" in error.value.message()
    with pytest.raises(InferenceServerException) as error:
        client.get_model_metadata("no-such-model-anywhere")
    assert _status(error) == "404"
    with pytest.raises(InferenceServerException) as error:
        client.infer(
            GRAPH,
            _graph_inputs(x, bias, binary=True),
            outputs=[httpclient.InferRequestedOutput("w")],
        )
    assert _status(error) == "400"
    assert "tiny-graph has no output 'w'; it gives y, z." in error.value.message()
    with pytest.raises(InferenceServerException) as error:
        client.get_model_config(GRAPH)
    assert _status(error) == "400"
    assert "does not serve Triton's model configuration" in error.value.message()
    with pytest.raises(InferenceServerException) as error:
        client.infer(EMBED, [_named("text")])
    assert _status(error) == "400"
    assert "The input text of tiny-embed is BYTES; the request sent FP32." in error.value.message()


def test_plain_json_requests_and_their_errors(server: ServerProcess) -> None:
    url = f"{server.url}/v2/models/{GRAPH}/infer"
    body = {
        "id": "42",
        "inputs": [
            # Nested rows and a flat list are both row-major data.
            {
                "name": "x",
                "shape": [2, 4],
                "datatype": "FP32",
                "data": [[1, 2, 3, 4], [0, 0, 0, 0]],
            },
            {"name": "bias", "shape": [3], "datatype": "FP32", "data": [0, 0, 0]},
        ],
        "outputs": [{"name": "z"}],
    }
    answer = httpx.post(url, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model_name": GRAPH,
        "model_version": "1",
        "id": "42",
        "outputs": [{"name": "z", "datatype": "FP32", "shape": [2], "data": [10.0, 0.0]}],
    }
    packed = httpx.post(
        url,
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=30,
    )
    assert packed.json() == answer.json()
    text = httpx.post(
        f"{server.url}/v2/models/{EMBED}/infer",
        json={
            "inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["hello"]}]
        },
        timeout=30,
    )
    assert text.status_code == 200, text.text
    assert text.json()["outputs"][0]["shape"] == [1, 32]

    def refused(payload: Any, **kwargs: Any) -> str:
        r = httpx.post(url, json=payload, timeout=30, **kwargs)
        assert r.status_code == 400, r.text
        assert set(r.json()) == {"error"}
        return str(r.json()["error"])

    x = body["inputs"][0]  # type: ignore[index]
    bias = body["inputs"][1]  # type: ignore[index]
    assert "not JSON" in refused(None, content=b"{nope")
    assert "inputs" in refused({"outputs": []})
    assert "'FLOAT'" in refused({"inputs": [{**x, "datatype": "FLOAT"}, bias]})
    assert "takes FP32 values, not 'a'" in refused({"inputs": [{**x, "data": ["a"] * 8}, bias]})
    assert "takes FP32 values, not None" in refused({"inputs": [{**x, "data": [None] * 8}, bias]})
    assert "shape [2, 4] (8 elements) but 3 values" in refused(
        {"inputs": [{**x, "data": [1, 2, 3]}, bias]}
    )
    assert "parameters.priority" in refused({**body, "parameters": {"priority": 1}})
    assert "classification" in refused(
        {**body, "outputs": [{"name": "y", "parameters": {"classification": 2}}]}
    )
    missing = httpx.post(f"{server.url}/v2/models/nope-not-here/infer", json=body, timeout=30)
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
