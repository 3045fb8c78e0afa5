"""The FastAPI application: the registry, the protocols, one model pool behind them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from modelport import __version__
from modelport.server.errors import install_error_handlers, respond_to

__all__ = ["create_app"]

log = logging.getLogger("modelport.serve")


def create_app(
    *,
    preload: Sequence[str] = (),
    folders: dict[str, str] | None = None,
    api_key: str | None = None,
) -> FastAPI:
    """Build the app: /api/v1 (registry), /v1 (OpenAI-compatible), /api (Ollama), /metrics.

    ``preload`` names models loaded before the first request; ``folders`` maps names to
    model folders the operator serves (requests can reach no other folder).
    """
    from modelport.server import ollama, openai, registry, serving
    from modelport.server.metrics import Metrics
    from modelport.server.pool import ModelPool
    from modelport.server.security import BodyLimit, require_api_key
    from modelport.settings import get_settings

    settings = get_settings()
    metrics = Metrics()
    pool = ModelPool(settings, metrics=metrics)
    for name, folder in (folders or {}).items():
        pool.register_folder(name, folder)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()
        for name in preload:
            await pool.get(name)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="modelport",
        version=__version__,
        description="The modelport registry API, and the models of the local store served "
        "over OpenAI's /v1 and Ollama's /api protocols.",
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(registry.router)
    app.include_router(openai.router)
    app.include_router(ollama.router)
    app.include_router(serving.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def root() -> dict[str, Any]:
        return {
            "name": "modelport",
            "version": __version__,
            "links": {
                "docs": "/docs",
                "openapi": "/openapi.json",
                "models": "/api/v1/registry/models",
                "openai_models": "/v1/models",
                "loaded_models": "/api/v1/ps",
                "ollama_models": "/api/tags",
                "metrics": "/metrics",
            },
        }

    @app.head("/", include_in_schema=False)
    def alive() -> Response:
        # Ollama's clients probe HEAD / before they talk (`ollama` CLI's heartbeat); GET /
        # keeps answering modelport's JSON links.
        return Response(status_code=200)

    # Outermost last: the body bound and the key are checked before anything else runs.
    app.middleware("http")(metrics.middleware)
    key = api_key if api_key is not None else settings.api_key
    if key:
        app.middleware("http")(require_api_key(key, respond_to))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, respond=_respond)
    return app


def _respond(request: Request, exc: Any) -> Response:
    return respond_to(request, exc)
