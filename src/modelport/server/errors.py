"""One JSON error shape for every endpoint, OpenAI-compatible.

{"error": {"message": str, "type": str, "code": str, "param": str | null, "hint": str | null}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelport.errors import AmbiguousModelError, ModelNotFoundError, ModelportError

__all__ = ["ErrorResponse", "error_body", "error_responses", "install_error_handlers"]

_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    409: "conflict_error",
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


_MEANINGS = {
    400: "The request matched the schema but a value cannot be used (unknown task, size…).",
    404: "No model matches the name or id.",
    409: "Several models match the name equally well; the error lists them.",
    422: "The request does not match the schema.",
    503: "The database is locked by another program; try again.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses an endpoint can answer."""
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


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the canonical shape."""

    @app.exception_handler(ModelportError)
    async def _modelport(_: Request, exc: ModelportError) -> JSONResponse:
        extra = None
        if isinstance(exc, ModelNotFoundError | AmbiguousModelError):
            extra = {"suggestions": exc.suggestions}
        return JSONResponse(
            error_body(exc.http_status, exc.code, exc.message, hint=exc.hint, extra=extra),
            status_code=exc.http_status,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        return JSONResponse(
            error_body(422, "invalid_request", message, param=param), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint."
        # Starlette puts Allow on a 405; a 405 without it breaks the HTTP contract.
        return JSONResponse(
            error_body(exc.status_code, code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                500,
                "internal_error",
                f"Unexpected {type(exc).__name__}.",
                hint="See the server log.",
            ),
            status_code=500,
        )
