"""/api/v1/predict for the tasks OpenAI has no verb for, and CORS, on the app in-process."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelport.api as api
from tests import tiny_models

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    return {
        "qa": tiny_models.build_encoder(root / "qa", "question-answering"),
        "ner": tiny_models.build_encoder(root / "ner", "token-classification"),
        "vit": tiny_models.build_vit(root / "vit"),
    }


@pytest.fixture
async def client(folders: dict[str, Path]) -> AsyncIterator[httpx.AsyncClient]:
    from modelport.server.app import create_app

    app = create_app(folders={name: str(path) for name, path in folders.items()})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=300) as c:
        yield c
    await app.state.pool.close()


async def _predict(client: httpx.AsyncClient, model: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/predict/{model}", json=body)


async def test_question_answering_and_entities_equal_the_in_process_run(
    client: httpx.AsyncClient, folders: dict[str, Path]
) -> None:
    question = {"question": "who wrote this book", "context": "ada lovelace wrote this book"}
    answer = await _predict(client, "qa", inputs=question)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == pytest.approx(api.run(str(folders["qa"]), question))
    assert answer.json()["meta"]["task"] == "question-answering"
    text = "ada lovelace lives in london"
    entities = await _predict(client, "ner", inputs=text, parameters={"aggregation": "none"})
    assert entities.status_code == 200, entities.text
    expected = api.load_model(str(folders["ner"]))(text, aggregation="none")
    assert [e["entity"] for e in entities.json()["data"]] == [e["entity"] for e in expected]
    bad = await _predict(client, "qa", inputs="no context")
    assert bad.status_code == 400
    assert "question" in bad.json()["error"]["message"]


async def test_an_image_travels_as_base64_never_as_a_path(
    client: httpx.AsyncClient, folders: dict[str, Path], tmp_path: Path
) -> None:
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    answer = await _predict(
        client, "vit", inputs="data:image/png;base64," + encoded, parameters={"top_k": 2}
    )
    assert answer.status_code == 200, answer.text
    path = tmp_path / "cat.png"
    path.write_bytes(buffer.getvalue())
    expected = api.run(str(folders["vit"]), str(path), top_k=2)
    assert [r["label"] for r in answer.json()["data"]] == [r["label"] for r in expected]
    assert answer.json()["data"][0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
    as_path = await _predict(client, "vit", inputs=str(path))
    assert as_path.status_code == 400
    assert "base64" in as_path.json()["error"]["message"]
    not_an_image = await _predict(client, "vit", inputs=base64.b64encode(b"nope").decode())
    assert not_an_image.status_code == 400
    assert "cannot be read" in not_an_image.json()["error"]["message"]


async def test_rerank_needs_a_cross_encoder(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/rerank", json={"model": "qa", "query": "q", "documents": ["a", "b"]}
    )
    assert answer.status_code == 400
    assert "cross-encoder" in answer.json()["error"]["message"]


async def test_cors_is_off_unless_origins_are_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelport.server.app import create_app
    from modelport.settings import reset_settings

    preflight = {
        "Origin": "http://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.options("/v1/embeddings", headers=preflight)

    closed = await ask()
    assert "access-control-allow-origin" not in closed.headers
    monkeypatch.setenv("MODELPORT_CORS_ORIGINS", "http://app.example, http://other.example")
    reset_settings()
    opened = await ask()
    assert opened.status_code == 200
    assert opened.headers["access-control-allow-origin"] == "http://app.example"


async def test_dimensions_shorten_only_a_model_trained_for_it(tmp_path: Path) -> None:
    from modelport.server.app import create_app

    folder = tiny_models.build_encoder(tmp_path / "mrl", "sentence-similarity")
    (folder / "README.md").write_text(
        "---\ntags:\n- sentence-transformers\n- matryoshka\n---\nTrained with MatryoshkaLoss.\n"
    )
    plain = tiny_models.build_encoder(tmp_path / "plain", "sentence-similarity")
    app = create_app(folders={"mrl": str(folder), "plain": str(plain)})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=300) as c:
        full = await c.post("/v1/embeddings", json={"model": "mrl", "input": "hello world"})
        short = await c.post(
            "/v1/embeddings", json={"model": "mrl", "input": "hello world", "dimensions": 8}
        )
        refused = await c.post(
            "/v1/embeddings", json={"model": "plain", "input": "hello world", "dimensions": 8}
        )
    await app.state.pool.close()
    vector = np.array(full.json()["data"][0]["embedding"])
    shortened = np.array(short.json()["data"][0]["embedding"])
    assert shortened.shape == (8,)
    np.testing.assert_allclose(shortened, vector[:8] / np.linalg.norm(vector[:8]), atol=1e-6)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "dimensions"
    assert "Matryoshka" in refused.json()["error"]["message"]


async def test_a_name_no_file_system_could_hold_is_an_answer_not_a_crash() -> None:
    from modelport.server.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        long = await c.post("/v1/embeddings", json={"model": "a" * 400, "input": "x"})
        odd = await c.post("/api/chat", json={"model": "0" * 27 + "\x80" * 60})
    assert long.status_code == 404  # never an OSError (file name too long) as a 500
    assert odd.status_code == 400 and "model name may hold only" in odd.json()["error"]
