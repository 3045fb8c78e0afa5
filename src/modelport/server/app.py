"""The FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from modelport import __version__
from modelport.server.errors import install_error_handlers

__all__ = ["create_app"]


def create_app() -> FastAPI:
    """Build the app: /api/v1 (registry), /v1 (OpenAI-compatible), OpenAPI at /openapi.json."""
    from modelport.server import openai_compat, registry

    app = FastAPI(
        title="modelport",
        version=__version__,
        description="The modelport registry API and an OpenAI-compatible /v1 surface.",
    )
    install_error_handlers(app)
    app.include_router(registry.router)
    app.include_router(openai_compat.router)

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
            },
        }

    return app
