"""``modelport serve``: the REST API, the OpenAI-compatible /v1 surface."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (MODELPORT_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (MODELPORT_PORT).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the HTTP server on the local catalog."""
    import importlib.util

    from modelport.errors import MissingExtraError
    from modelport.settings import get_settings

    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise MissingExtraError("server", feature="modelport serve")
    import uvicorn

    from modelport.api import get_catalog
    from modelport.server.app import create_app

    settings = get_settings()
    catalog = get_catalog()  # load before listening, so a bad catalog fails fast
    host = host or settings.host
    port = port or settings.port
    typer.echo(
        f"modelport serving {len(catalog)} models on http://{host}:{port} (API docs at /docs)"
    )
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(serve)
