"""One JSON error shape per protocol, chosen by the request's path.

The registry and OpenAI's ``/v1`` answer the full document
``{"error": {"message": str, "type": str, "code": str, "param": str | null, "hint": str | null}}``;
Ollama's ``/api`` and KServe's ``/v2`` answer ``{"error": "message"}`` as their clients read
it; GPUX's ``/predict``, ``/info`` and ``/health`` answer ``{"detail": "message"}``, as
GPUX's own server (FastAPI's ``HTTPException``) does; Anthropic's ``/v1/messages`` answers
``{"type": "error", "error": {"type": str, "message": str}}``, so that Anthropic's SDK raises
its own exception classes.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelport.errors import AmbiguousModelError, ModelNotFoundError, ModelportError

__all__ = [
    "GATEWAY",
    "LOADING",
    "AnthropicErrorResponse",
    "DetailErrorResponse",
    "ErrorResponse",
    "OllamaErrorResponse",
    "PlainErrorResponse",
    "anthropic_error",
    "document_errors",
    "error_body",
    "error_model_of",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "invalid_status",
    "protocol_of",
    "respond_to",
]

log = logging.getLogger("modelport.serve")

_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    401: "authentication_error",
    409: "conflict_error",
    413: "invalid_request_error",
    402: "insufficient_quota",
    429: "rate_limit_error",
    422: "invalid_request_error",
    500: "server_error",
    502: "upstream_error",
    503: "upstream_error",
    504: "timeout_error",
}


#: Anthropic's error types by status (its SDK picks the exception class by the status).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class _ErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None
    hint: str | None = None


class ErrorResponse(BaseModel):
    """The error document of the registry and of OpenAI's /v1."""

    error: _ErrorDetail


class PlainErrorResponse(BaseModel):
    """The error document of KServe V2: one sentence under ``error``."""

    error: str


class OllamaErrorResponse(BaseModel):
    """The error document of Ollama's /api: one sentence saying what was wrong."""

    error: str


class DetailErrorResponse(BaseModel):
    """The error document of GPUX's server: one sentence under ``detail``."""

    detail: str


class _AnthropicErrorDetail(BaseModel):
    type: str
    message: str
    hint: str | None = None


class AnthropicErrorResponse(BaseModel):
    """The error document of Anthropic's Messages API (``/v1/messages``)."""

    type: Literal["error"] = "error"
    error: _AnthropicErrorDetail


_ERROR_MODELS: dict[str, type[BaseModel]] = {
    "openai": ErrorResponse,
    "anthropic": AnthropicErrorResponse,
    "ollama": OllamaErrorResponse,
    "kserve": PlainErrorResponse,
    "gpux": DetailErrorResponse,
}


def error_model_of(path: str) -> type[BaseModel]:
    """The error document a path answers with, for its OpenAPI description."""
    return _ERROR_MODELS[protocol_of(path)]


_MEANINGS = {
    400: "The request matched the schema but a value cannot be used (unknown task, size…).",
    401: "The server requires an API key and the request lacks it or carries another.",
    403: "The model's hub refuses access (gated, private) or its code is not trusted.",
    404: "No model matches the name or id.",
    409: "Several models match the name equally well; the error lists them.",
    413: "The request body is larger than MODELPORT_MAX_REQUEST_BYTES.",
    422: "The request does not match the schema, or the model cannot be converted or run here.",
    429: "The model's queue is full (or its hub rate-limits); Retry-After says when to retry.",
    500: "The server failed, or the key store cannot be read.",
    501: "This server lacks the optional dependencies the model needs (the hint names them).",
    502: "The model's hub answered with an error or something unusable (a wrong digest…).",
    503: "The hub cannot be reached (or offline mode), or the database is locked; try again.",
}

#: What a route that calls hosted providers can answer besides ``LOADING``.
_GATEWAY_MEANINGS = {
    401: "The server requires an API key, or the provider has no usable key or rejected it.",
    402: "Today's recorded spend reached MODELPORT_DAILY_BUDGET.",
    404: "No model matches the name, or the provider no longer serves it.",
    429: "A queue is full, or the provider rate-limits; Retry-After says when to retry.",
    502: "The provider (or a hub) answered with an error.",
    503: "The provider cannot be reached or kept failing; try again.",
    504: "The provider sent no answer within MODELPORT_PROVIDER_TIMEOUT.",
}
_MEANINGS.update({s: m for s, m in _GATEWAY_MEANINGS.items() if s not in _MEANINGS})

#: What a route that names a model to load can answer: the model's name may be invalid,
#: unknown or ambiguous, loading it may pull (hub errors), convert (422) or wait (429).
LOADING = (400, 401, 403, 404, 409, 413, 422, 429, 501, 502, 503)

#: What a route that may call a hosted provider can answer.
GATEWAY = (*LOADING, 402, 500, 504)


#: What a status means on Ollama's /api, where a malformed request is a 400 as in Ollama.
_OLLAMA_MEANINGS = {
    **_MEANINGS,
    400: "The request is malformed, or a value or option cannot be used.",
    422: "The model cannot be converted or run on this machine.",
    502: "The hub answered with an error or with something unusable (a wrong digest…).",
    503: "The hub cannot be reached, or the database is locked by another program.",
}


def error_responses(
    *statuses: int, model: type[BaseModel] | None = None, shape: str = "openai"
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses an endpoint can answer, in its shape."""
    if shape == "ollama":
        return {
            status: {"model": OllamaErrorResponse, "description": _OLLAMA_MEANINGS[status]}
            for status in statuses
        }
    chosen = model or (AnthropicErrorResponse if shape == "anthropic" else ErrorResponse)
    return {status: {"model": chosen, "description": _MEANINGS[status]} for status in statuses}


def invalid_status(path: str) -> int:
    """The status a request that does not match the schema gets: 400 where the protocol's
    own server answers so (OpenAI's /v1, Ollama's /api), else 422."""
    return 400 if path.startswith("/v1/") or protocol_of(path) == "ollama" else 422


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what validation errors really look like.

    FastAPI documents every schema mismatch as its own 422 shape; here each route's is the
    shape of its protocol, with the status that protocol's server answers.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in {*_ERROR_MODELS.values()}:
        name = model.__name__
        if name not in schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for sub, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(sub, definition)
            schemas[name] = schema
    for path, item in spec.get("paths", {}).items():
        ref = {"$ref": f"#/components/schemas/{error_model_of(path).__name__}"}
        for operation in item.values():
            responses = operation.get("responses", {})
            invalid = responses.pop("422", None)
            if invalid is None:
                continue
            status = str(invalid_status(path))
            meaning = _MEANINGS[400 if status == "400" and "400" in responses else 422]
            responses[status] = {
                "description": responses.get(status, {}).get("description", meaning),
                "content": {"application/json": {"schema": ref}},
            }
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return spec


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    hint: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical error document."""
    body: dict[str, Any] = {
        "message": message,
        "type": _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
        "code": code,
        "param": param,
        "hint": hint,
    }
    if extra:
        body.update(extra)
    return {"error": body}


def anthropic_error(
    status: int, message: str, *, hint: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error document of Anthropic's Messages API (also an ``error`` stream event's)."""
    kind = _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    error: dict[str, Any] = {"type": kind, "message": message}
    if hint:
        error["hint"] = hint
    if extra:
        error.update(extra)
    return {"type": "error", "error": error}


def protocol_of(path: str) -> str:
    """Which protocol's error shape a path answers with: openai, anthropic, ollama, kserve
    or gpux."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "anthropic"
    if path.startswith("/api/") and not path.startswith("/api/v1/"):
        return "ollama"
    if path == "/v2" or path.startswith("/v2/"):
        return "kserve"
    if path in ("/predict", "/info", "/health") or path.startswith("/predict/"):
        return "gpux"
    return "openai"


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    hint: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in the shape of the protocol the request spoke.

    Ollama and KServe V2 clients read ``{"error": "message"}``, GPUX's read
    ``{"detail": "message"}``; the registry and OpenAI's ``/v1`` answer the full document
    with code, param and hint.
    """
    protocol = protocol_of(request.url.path)
    if protocol == "anthropic":
        return JSONResponse(
            anthropic_error(status, message, hint=hint, extra=extra),
            status_code=status,
            headers=headers,
        )
    if protocol != "openai":
        text = f"{message} {hint}" if hint else message
        key = "detail" if protocol == "gpux" else "error"
        return JSONResponse({key: text}, status_code=status, headers=headers)
    return JSONResponse(
        error_body(status, code, message, hint=hint, param=param, extra=extra),
        status_code=status,
        headers=headers,
    )


def respond_to(request: Request, exc: ModelportError) -> JSONResponse:
    """The response for one of modelport's errors."""
    extra = None
    if isinstance(exc, ModelNotFoundError | AmbiguousModelError):
        extra = {"suggestions": exc.suggestions}
    headers = None
    retry_after = getattr(exc, "retry_after", None)
    if exc.http_status in (429, 503) and retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
    if exc.http_status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(
        request,
        exc.http_status,
        exc.code,
        exc.message,
        hint=exc.hint,
        param=getattr(exc, "param", None),
        extra=extra,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the shape of the protocol the request spoke."""

    @app.exception_handler(ModelportError)
    async def _modelport(request: Request, exc: ModelportError) -> JSONResponse:
        return respond_to(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        if first.get("type") == "extra_forbidden" and param:
            message = f"Unrecognized request argument supplied: {param}"
        if first.get("type") == "json_invalid":
            # loc is (body, offset): the character where the JSON breaks.
            where = f" at character {loc[0]}" if loc else ""
            message, param = f"The request body is not valid JSON{where}.", None
        # OpenAI's and Ollama's APIs answer a malformed request 400; so do their routes.
        status = invalid_status(request.url.path)
        return error_response(request, status, "invalid_request", message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint."
        # Starlette puts Allow on a 405; a 405 without it breaks the HTTP contract.
        return error_response(
            request, exc.status_code, code, message, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(
            request,
            500,
            "internal_error",
            f"Unexpected {type(exc).__name__}.",
            hint="See the server log.",
        )
