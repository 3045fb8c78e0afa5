"""The FastAPI application: the registry, the protocols, one model pool behind them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from modelport import __version__
from modelport.server.errors import document_errors, install_error_handlers, respond_to

__all__ = ["create_app"]

log = logging.getLogger("modelport.serve")


def create_app(
    *,
    preload: Sequence[str] = (),
    folders: dict[str, str] | None = None,
    api_key: str | None = None,
    record: str | None = None,
    replay: str | None = None,
) -> FastAPI:
    """Build the app: /api/v1 (registry), /v1 (OpenAI-compatible, and Anthropic's
    /v1/messages), /api (Ollama), /v2 (KServe), GPUX's /predict, /metrics, OpenAPI, and
    the web UI (/ui) with the API docs (/docs, /redoc) served from the package.

    ``preload`` names models loaded before the first request (GPUX's /predict answers for
    the one model given); ``folders`` maps names to model folders the operator serves
    (requests can reach no other folder). ``record`` appends every model call to a cassette
    file; ``replay`` answers the calls a cassette holds from it (``server/cassette.py``).
    """
    from modelport.server import anthropic, gpux, kserve, ollama, openai, registry, serving, web
    from modelport.server.metrics import Metrics
    from modelport.server.pool import ModelPool
    from modelport.server.security import BodyLimit, RequireApiKey, Sessions
    from modelport.settings import get_settings

    settings = get_settings()
    cassette = None
    if record or replay:
        from modelport.server.cassette import Cassette, known_secrets

        secrets = [*known_secrets(), *([api_key] if api_key else [])]
        cassette = Cassette.open(replay=replay, record=record, secrets=secrets)
    metrics = Metrics(cassette=cassette)
    pool = ModelPool(settings, metrics=metrics)
    for name, folder in (folders or {}).items():
        pool.register_folder(name, folder)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()
        if settings.simulate:
            # OpenAI's encodings take a second to load: not on the first simulated call.
            from modelport.providers.sim_tokens import warm_up

            asyncio.get_running_loop().run_in_executor(None, warm_up)
        for name in preload:
            if pool.find(name) is None:  # `modelport serve` loads them before it starts
                await pool.get(name)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="modelport",
        version=__version__,
        description="The modelport registry API, and the models of the local store served "
        "over OpenAI's /v1, Anthropic's /v1/messages, Ollama's /api, KServe's V2 (/v2) and "
        "GPUX's /predict protocols.",
        lifespan=lifespan,
        # Served by the web UI from the package's own copies, so they work offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.pool = pool
    key = api_key if api_key is not None else settings.api_key
    sessions = Sessions(key) if key else None

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.metrics = metrics
    app.state.cassette = cassette
    app.state.preload = tuple(preload)
    install_error_handlers(app)
    app.include_router(registry.router)
    app.include_router(openai.router)
    app.include_router(anthropic.router)
    app.include_router(ollama.router)
    app.include_router(serving.router)
    app.include_router(kserve.router)
    app.include_router(gpux.router)
    web.install(app, sessions=sessions)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Any:
        if web.wants_page(request):  # a browser: the web UI; a JSON client: the links
            return RedirectResponse(web.HOME, status_code=307)
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
                "kserve_v2": "/v2",
                "metrics": "/metrics",
            },
        }

    @app.head("/", include_in_schema=False)
    def alive() -> Response:
        # Ollama's clients probe HEAD / before they talk (`ollama` CLI's heartbeat); GET /
        # keeps answering modelport's JSON links.
        return Response(status_code=200)

    # Added innermost first: the cassette, CORS, then the key, then the body bound, then the
    # metrics (outermost), so that every refusal is counted, logged and marked as
    # modelport's, and a replay needs the key as a live call does.
    if cassette is not None:
        from modelport.server.cassette import CassetteMiddleware

        app.add_middleware(CassetteMiddleware, cassette=cassette, speed=settings.sim_speed)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    if key:
        app.add_middleware(RequireApiKey, key=key, respond=_respond, sessions=sessions)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, respond=_respond)
    app.add_middleware(_Measured, metrics=metrics)
    return app


def _respond(request: Request, exc: Any) -> Response:
    return respond_to(request, exc)


class _Measured:
    """The metrics' ASGI middleware, in the form ``add_middleware`` takes."""

    def __init__(self, app: Any, *, metrics: Any) -> None:
        self.app = metrics.asgi(app, version=__version__)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
