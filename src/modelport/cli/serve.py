"""``modelport serve``: the REST API, the OpenAI-compatible /v1 surface."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

__all__ = ["register"]


def _listen(host: str, port: int) -> socket.socket:
    """Bind the address before the server starts, so a taken port is one clear sentence."""
    import errno

    from modelport.errors import InvalidValueError, PortInUseError

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as e:
        raise InvalidValueError(
            f"Cannot serve on {host}:{port}: {e.strerror or 'unknown host'}.",
            hint="Pass --host with an address of this machine, e.g. 127.0.0.1.",
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port) from None
        raise InvalidValueError(
            f"Cannot serve on {host}:{port}: {(e.strerror or str(e)).lower()}.",
            hint="Pick another --host or --port.",
        ) from None
    return sock


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (MODELPORT_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (MODELPORT_PORT).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the HTTP server on the local catalog (exit code 4: the port is in use)."""
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
    sock = _listen(host, port)
    typer.echo(
        f"modelport serving {len(catalog)} models on http://{host}:{port} (API docs at /docs)"
    )
    config = uvicorn.Config(create_app(), host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(serve)
