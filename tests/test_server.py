"""The HTTP server in-process: registry API, OpenAI /v1, one error shape everywhere."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio


def assert_error_shape(body: dict[str, Any]) -> None:
    assert set(body) == {"error"}
    err = body["error"]
    assert {"message", "type", "code", "param", "hint"} <= set(err)
    assert isinstance(err["message"], str)
    assert err["message"]


async def test_list_models_with_filters_and_pagination(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/v1/registry/models",
        params={
            "source": "api",
            "provider": "openai",
            "capability": ["vision", "tool_calling"],
            "min_context": 100000,
            "sort": "price",
            "limit": 3,
            "offset": 1,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "meta"}
    assert body["meta"]["limit"] == 3
    assert body["meta"]["offset"] == 1
    assert body["meta"]["total"] >= len(body["data"]) > 0
    assert all(m["capabilities"]["vision"] for m in body["data"])
    r = await client.get("/api/v1/registry/models", params={"q": "minilm", "limit": 1})
    assert r.json()["data"][0]["id"] == "sentence-transformers/all-MiniLM-L6-v2"


async def test_get_model_with_slashes_and_fuzzy(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/registry/models/sentence-transformers/all-MiniLM-L6-v2")
    assert r.status_code == 200
    assert r.json()["meta"]["match"]["method"] == "exact"
    r = await client.get("/api/v1/registry/models/minilm")
    assert r.json()["data"]["id"] == "sentence-transformers/all-MiniLM-L6-v2"


async def test_categories_tasks_system(client: httpx.AsyncClient) -> None:
    cats = (await client.get("/api/v1/registry/categories")).json()["data"]
    assert {"name": "embedding", "models": pytest.approx(cats[2]["models"])} in cats
    tasks = (await client.get("/api/v1/registry/tasks")).json()["data"]
    assert len(tasks) >= 40
    system = (await client.get("/api/v1/system", params={"gpu_memory": "24GB"})).json()["data"]
    assert system["gpus"][0]["memory_gb"] == 24
    health = (await client.get("/api/v1/health")).json()["data"]
    assert health["status"] == "ok"
    assert health["models"] >= 150


async def test_validate_and_select(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/registry/validate/inference",
        json={"model": "meta-llama/Llama-3.1-8B-Instruct", "gpu_memory": "8GB"},
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["fit"] == "does-not-fit"
    assert data["estimate"]["total_gb"] > 8
    r = await client.post(
        "/api/v1/registry/validate/training", json={"model": "minilm", "gpu_memory": "16GB"}
    )
    assert r.json()["data"]["fit"] == "fits"
    r = await client.post(
        "/api/v1/registry/select", json={"task": "embedding", "include_api": False, "limit": 2}
    )
    assert len(r.json()["data"]) == 2


async def test_validate_for_training_honours_the_method_the_capability_and_deprecation(
    client: httpx.AsyncClient,
) -> None:
    from modelport import api
    from tests.conftest import make_entry

    url = "/api/v1/registry/validate/training"
    body = {"model_id": "meta-llama/Llama-3.1-8B-Instruct", "gpu_memory": "24GB"}
    r = await client.post(url, json={**body, "method": "qlora"})
    assert r.status_code == 200, r.text
    assert (
        r.json()["data"]["defaults"]["method"],
        r.json()["data"]["defaults"]["load_in_4bit"],
    ) == (
        "qlora",
        True,
    )
    r = await client.post(url, json={**body, "method": "lora"})
    assert r.json()["data"]["defaults"]["load_in_4bit"] is False
    api.add_entries(
        [
            make_entry("acme/frozen", parameters=100_000_000, capabilities={"training": False}),
            make_entry(
                "acme/old",
                parameters=100_000_000,
                status="deprecated",
                deprecation={"message": "superseded", "replacement": "acme/new"},
            ),
        ]
    )
    data = (await client.post(url, json={"model_id": "acme/frozen", "gpu_memory": "80GB"})).json()
    assert data["data"]["fit"] == "does-not-fit"
    assert any("capabilities.training" in reason for reason in data["data"]["reasons"])
    data = (await client.post(url, json={"model_id": "acme/old", "gpu_memory": "80GB"})).json()
    assert data["data"]["warnings"] == ["deprecated: superseded"]


async def test_openai_models(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    first = body["data"][0]
    assert set(first) == {"id", "object", "created", "owned_by"}
    assert first["object"] == "model"
    one = (await client.get("/v1/models/openai/gpt-4o")).json()
    assert one["id"] == "openai/gpt-4o"
    assert one["owned_by"] == "openai"


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "code"),
    [
        ("GET", "/api/v1/registry/models/zzzz-not-a-model", None, 404, "model_not_found"),
        ("GET", "/api/v1/registry/models/claude sonnet", None, 409, "ambiguous_model"),
        ("GET", "/api/v1/registry/models?limit=0", None, 422, "invalid_request"),
        ("GET", "/api/v1/registry/models?sort=colour", None, 400, "invalid_value"),
        ("GET", "/api/v1/registry/models?task=levitation", None, 400, "unknown_task"),
        ("GET", "/api/v1/registry/models?capability=telepathy", None, 400, "invalid_value"),
        ("GET", "/api/v1/system?gpu_memory=lots", None, 400, "invalid_value"),
        (
            "POST",
            "/api/v1/registry/validate/inference",
            {"model": "minilm", "extra": 1},
            422,
            "invalid_request",
        ),
        ("POST", "/api/v1/registry/validate/dreaming", {"model": "minilm"}, 422, "invalid_request"),
        (
            "POST",
            "/api/v1/registry/validate/inference",
            {"model": "minilm", "overrides": {"nonsense": 1}},
            400,
            "invalid_value",
        ),
        ("GET", "/v1/models/nope/nope", None, 404, "model_not_found"),
        ("GET", "/no/such/endpoint", None, 404, "not_found"),
        ("DELETE", "/v1/models", None, 405, "method_not_allowed"),
    ],
)
async def test_one_error_shape_everywhere(
    client: httpx.AsyncClient, method: str, url: str, payload: Any, status: int, code: str
) -> None:
    r = await client.request(method, url, json=payload)
    assert r.status_code == status, r.text
    assert_error_shape(r.json())
    assert r.json()["error"]["code"] == code


async def test_openapi_is_published(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/registry/models" in spec["paths"]
    assert "/v1/models" in spec["paths"]


async def test_a_full_id_not_in_the_catalog_is_404_never_another_model(
    client: httpx.AsyncClient,
) -> None:
    missing = "meta-llama/Meta-Llama-3.1-70B-Instruct"
    r = await client.get(f"/api/v1/registry/models/{missing}")
    assert r.status_code == 404
    assert_error_shape(r.json())
    assert "Did you mean meta-llama/Llama-3.1-70B-Instruct" in r.json()["error"]["hint"]
    for purpose in ("inference", "training"):
        r = await client.post(f"/api/v1/registry/validate/{purpose}", json={"model": missing})
        assert r.status_code == 404, r.text
        assert_error_shape(r.json())
    # A hub reference names that hub's model: the catalog's namesake of another registry
    # (an alias here, an API model there) is not it.
    for ref in ("onnx:minilm", "onnx:gpt-4o", "hf:openai/gpt-4o"):
        r = await client.get(f"/api/v1/registry/models/{ref}")
        assert r.status_code == 404, (ref, r.text)
        r = await client.post("/api/v1/registry/validate/inference", json={"model_id": ref})
        assert r.status_code == 404, (ref, r.text)


async def test_validate_accepts_model_id(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/registry/validate/inference",
        json={"model_id": "meta-llama/Llama-3.1-8B-Instruct", "gpu_memory": "80GB"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["model_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    r = await client.post("/api/v1/registry/validate/inference", json={"gpu_memory": "80GB"})
    assert r.status_code == 422
    assert_error_shape(r.json())
    # The schema accepts both fields; two different models is a value that cannot be used.
    r = await client.post(
        "/api/v1/registry/validate/inference", json={"model": "minilm", "model_id": "gpt-4o"}
    )
    assert r.status_code == 400
    assert "different models" in r.json()["error"]["message"]
