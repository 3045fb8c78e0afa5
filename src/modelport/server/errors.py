"""One JSON error shape per protocol: OpenAI-compatible for the registry and /v1.

{"error": {"message": str, "type": str, "code": str, "param": str | null, "hint": str | null}}

Ollama's /api, KServe V2 and GPUX answer their own ``{"error": "message and hint"}``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelport.errors import AmbiguousModelError, ModelNotFoundError, ModelportError

__all__ = [
    "ErrorResponse",
    "OllamaErrorResponse",
    "error_body",
    "error_response",
    "error_responses",
    "install_error_handlers",
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
    429: "rate_limit_error",
    422: "invalid_request_error",
    500: "server_error",
    502: "upstream_error",
}


class _ErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None
    hint: str | None = None


class ErrorResponse(BaseModel):
    """The one error document every endpoint answers with."""

    error: _ErrorDetail


class OllamaErrorResponse(BaseModel):
    """The error document of Ollama's /api: one sentence saying what was wrong."""

    error: str


_MEANINGS = {
    400: "The request matched the schema but a value cannot be used (unknown task, size…).",
    401: "The server requires an API key and the request lacks it or carries another.",
    404: "No model matches the name or id.",
    409: "Several models match the name equally well; the error lists them.",
    413: "The request body is larger than MODELPORT_MAX_REQUEST_BYTES.",
    422: "The request does not match the schema.",
    429: "The model's queue is full; Retry-After says when to try again.",
    503: "The database is locked by another program; try again.",
}


#: What a status means on Ollama's /api, where a malformed request is a 400 as in Ollama.
_OLLAMA_MEANINGS = {
    **_MEANINGS,
    400: "The request is malformed, or a value or option cannot be used.",
    422: "The model cannot be converted or run on this machine.",
    502: "The hub answered with an error or with something unusable (a wrong digest…).",
    503: "The hub cannot be reached, or the database is locked by another program.",
}


def error_responses(*statuses: int, shape: str = "openai") -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses an endpoint can answer, in its shape."""
    if shape == "ollama":
        return {
            status: {"model": OllamaErrorResponse, "description": _OLLAMA_MEANINGS[status]}
            for status in statuses
        }
    return {
        status: {"model": ErrorResponse, "description": _MEANINGS[status]} for status in statuses
    }


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


def protocol_of(path: str) -> str:
    """Which protocol's error shape a path answers with: openai, ollama, kserve or gpux."""
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

    Ollama, KServe V2 and GPUX clients read ``{"error": "message"}``; the registry and
    OpenAI's ``/v1`` answer the full document with code, param and hint.
    """
    if protocol_of(request.url.path) != "openai":
        text = f"{message} {hint}" if hint else message
        return JSONResponse({"error": text}, status_code=status, headers=headers)
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
        path = request.url.path
        status = 400 if path.startswith("/v1/") or protocol_of(path) == "ollama" else 422
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
