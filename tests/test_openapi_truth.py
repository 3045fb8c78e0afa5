"""The OpenAPI document tells the truth: each route documents the statuses it answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelport.server.app import create_app
from modelport.server.errors import error_model_of, invalid_status

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> Any:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    spec = create_app().openapi()
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_route_documents_the_errors_it_can_answer() -> None:
    ops = _operations()
    assert len(ops) >= 9
    for path, method, op in ops:
        documented = set(op["responses"])
        where = f"{method.upper()} {path}"
        params = op.get("parameters", [])
        if any(p["in"] == "path" for p in params):
            # Every path parameter here names a model (or resolves one), which may not exist.
            assert "404" in documented, where
        # OpenAI's and Ollama's routes answer a request that does not match the schema 400,
        # as their own servers do; every other route answers it 422.
        invalid = str(invalid_status(path))
        if "requestBody" in op:
            assert {"400", invalid} <= documented, where
        if params or "requestBody" in op:
            assert invalid in documented, where
        for status in documented - {"200"}:
            content = op["responses"][status].get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            # Each protocol's own error document: OpenAI's, Ollama's and KServe's
            # {"error": …}, or GPUX's {"detail": …}.
            assert ref.endswith("/" + error_model_of(path).__name__), (where, status)


def test_the_validate_body_schema_says_a_model_is_required() -> None:
    schema = create_app().openapi()["components"]["schemas"]["ValidateRequest"]
    for field in ("model", "model_id"):
        # Present and a string: {"model": null} does not name a model.
        assert {"required": [field], "properties": {field: {"type": "string"}}} in schema["anyOf"]


# Requests that match the schema but carry a value that cannot be used, and what they answer.
_SCHEMA_VALID_BUT_UNUSABLE = [
    ("GET", "/api/v1/registry/models?sort=colour", None),
    ("GET", "/api/v1/registry/models?task=levitation", None),
    ("GET", "/api/v1/registry/models?capability=telepathy", None),
    ("GET", "/api/v1/system?gpu_memory=lots", None),
    ("POST", "/api/v1/registry/select", {"task": "levitation"}),
    ("POST", "/api/v1/registry/select", {"task": "text-generation", "gpu_memory": "lots"}),
    ("POST", "/api/v1/registry/validate/inference", {"model": "minilm", "gpu_memory": "x"}),
    ("POST", "/api/v1/registry/validate/inference", {"model": "zzzz-not-a-model"}),
    ("POST", "/api/v1/registry/validate/training", {"model": "claude sonnet"}),
    ("POST", "/api/v1/registry/validate/inference", {"model": "minilm", "model_id": "gpt-4o"}),
    ("GET", "/api/v1/registry/models/bad%00name", None),
    ("GET", "/api/v1/registry/models/claude sonnet", None),
    ("GET", "/v1/models/nope/nope", None),
    ("POST", "/api/show", {"model": "zzzz-not-a-model"}),
    ("POST", "/api/embed", {"model": "minilm", "input": "hi", "options": {"num_gpu": 1}}),
    ("POST", "/api/generate", {"model": "minilm", "prompt": "hi", "format": "json"}),
    ("DELETE", "/api/delete", {"model": "zzzz-not-a-model"}),
]


@pytest.mark.parametrize(("method", "url", "payload"), _SCHEMA_VALID_BUT_UNUSABLE)
async def test_answers_are_documented_and_schema_valid_values_are_not_422(
    client: httpx.AsyncClient, method: str, url: str, payload: Any
) -> None:
    spec = (await client.get("/openapi.json")).json()
    r = await client.request(method, url, json=payload)
    assert r.status_code != 422, r.text
    assert r.status_code < 500, r.text
    path = url.split("?", 1)[0]
    template = next(
        p
        for p in spec["paths"]
        if p == path
        or (p.endswith("{model_id}") and path.startswith(p[: -len("{model_id}")]))
        or (p.endswith("{purpose}") and path.startswith(p[: -len("{purpose}")]))
    )
    assert str(r.status_code) in spec["paths"][template][method.lower()]["responses"], (
        url,
        r.status_code,
    )


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", "/v1/models", "GET"),
        ("PUT", "/api/v1/registry/select", "POST"),
        ("GET", "/api/v1/registry/validate/inference", "POST"),
    ],
)
async def test_a_405_carries_allow(
    client: httpx.AsyncClient, method: str, url: str, allowed: str
) -> None:
    r = await client.request(method, url)
    assert r.status_code == 405
    assert allowed in r.headers.get("allow", ""), dict(r.headers)
    assert r.json()["error"]["code"] == "method_not_allowed"
