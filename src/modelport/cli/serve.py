"""``modelport serve``: the REST API, the OpenAI-compatible /v1 surface."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer

from modelport.cli._options import JsonOpt

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
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to load before the first request: names, refs or model folders "
            "(a folder is served under its folder name, e.g. GPUX's /predict)."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (MODELPORT_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (MODELPORT_PORT).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="MODELPORT_API_KEY",
            show_envvar=False,
            help="Require `Authorization: Bearer KEY` on every route but health checks "
            "(prefer the MODELPORT_API_KEY variable: an argument lands in shell history).",
        ),
    ] = None,
    keep_alive: Annotated[
        str | None,
        typer.Option(
            help="Keep idle models loaded this long, e.g. 10m or -1 (MODELPORT_KEEP_ALIVE)."
        ),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Answer every hosted model with its simulation: offline, no key needed "
            "(MODELPORT_SIMULATE; speed: MODELPORT_SIM_SPEED).",
        ),
    ] = False,
    speed: Annotated[
        str | None,
        typer.Option(
            "--speed",
            metavar="FACTOR",
            help="How fast simulated models answer: 1x (their profile), 10x, or instant "
            "(MODELPORT_SIM_SPEED).",
        ),
    ] = None,
    record: Annotated[
        str | None,
        typer.Option(
            "--record",
            metavar="CASSETTE",
            help="Append every model call that passes through (request, response and its "
            "timing; no keys) to this JSON Lines file.",
        ),
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay",
            metavar="CASSETTE",
            help="Answer the calls this cassette holds from it, with their recorded timing; "
            "others are simulated (or, with --record, answered live and recorded).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the catalog and the local models over REST, OpenAI /v1 and the other protocols
    (exit code 4: the port is in use)."""
    import importlib.util
    import os

    from modelport.errors import InvalidValueError, MissingExtraError
    from modelport.settings import get_settings, parse_keep_alive, reset_settings

    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise MissingExtraError("server", feature="modelport serve")
    import uvicorn

    from modelport.api import get_catalog
    from modelport.server.app import create_app

    if keep_alive is not None:
        parse_keep_alive(keep_alive, name="--keep-alive")  # refuse a bad value before starting
        os.environ["MODELPORT_KEEP_ALIVE"] = keep_alive
        reset_settings()
    if speed is not None:
        from modelport.errors import ConfigError
        from modelport.settings import parse_speed

        try:
            parse_speed(speed)  # refuse a bad value before starting
        except ConfigError:
            raise InvalidValueError(
                f"--speed must be a factor like 1x, 10x or 100x, or instant, not {speed!r}.",
                param="--speed",
            ) from None
        os.environ["MODELPORT_SIM_SPEED"] = speed
        reset_settings()
    if simulate or (replay and not record):
        # A replay is offline: what the cassette misses is answered by the simulator.
        os.environ["MODELPORT_SIMULATE"] = "1"
        reset_settings()
    settings = get_settings()
    catalog = get_catalog()  # load before listening, so a bad catalog fails fast
    folders, preload = _served_models(models or [])
    host = host or settings.host
    port = port or settings.port
    sock = _listen(host, port)
    _configure_logging(log_level)
    app = create_app(
        preload=preload, folders=folders, api_key=api_key, record=record, replay=replay
    )
    if preload:
        import asyncio

        # Loaded before the server starts: a model that cannot load is one sentence here.
        asyncio.run(_load_all(app.state.pool, preload))
    typer.echo(
        f"modelport serving {len(catalog)} catalog models"
        + (f" and {', '.join(preload)}" if preload else "")
        + (" (hosted models simulated)" if settings.simulate else "")
        + (f", replaying {replay}" if replay else "")
        + (f", recording into {record}" if record else "")
        + f" on http://{host}:{port} (API docs at /docs)"
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, log_config=None
    )
    uvicorn.Server(config).run(sockets=[sock])


async def _load_all(pool: Any, names: list[str]) -> None:
    for name in names:
        await pool.get(name)


def _served_models(models: list[str]) -> tuple[dict[str, str], list[str]]:
    """Model folders the operator serves (by folder name) and the names to preload."""
    from pathlib import Path

    from modelport.errors import FolderNotFoundError
    from modelport.refs import is_path

    folders: dict[str, str] = {}
    preload: list[str] = []
    for ref in models:
        path = Path(ref).expanduser()
        if path.is_dir():
            name = path.resolve().name
            folders[name] = str(path.resolve())
            preload.append(name)
        elif is_path(ref):
            raise FolderNotFoundError(ref, is_file=path.exists())
        else:
            preload.append(ref)
    return folders, preload


def _configure_logging(level: str) -> None:
    """One line per event on stderr: model loads and unloads, and one per request."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("modelport", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        known = isinstance(logging.getLevelName(level.upper()), int)
        logger.setLevel(level.upper() if known else "INFO")
        logger.propagate = False


def ps(json_: JsonOpt = False) -> None:
    """List the models a running `modelport serve` has loaded."""
    import datetime as dt

    from modelport import units as fmt
    from modelport.cli import _client
    from modelport.cli._output import Output

    answer = _client.request("GET", "/api/v1/ps", timeout=10)
    _client.raise_for(answer)
    rows = answer.body["data"]
    out = Output(json_mode=json_)

    def until(row: dict[str, object]) -> str:
        if row["state"] != "loaded":
            return ""
        expires = row.get("expires_at")
        if not isinstance(expires, int | float):
            return "forever"
        seconds = max(0, round(expires - dt.datetime.now(dt.UTC).timestamp()))
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

    def human() -> None:
        if not rows:
            out.message(f"No model is loaded in the server at {_client.url()}.")
            return
        out.table(
            ["NAME", "TASK", "SIZE", "PROCESSOR", "UNTIL", "STATE"],
            [
                [
                    row["name"],
                    row["task"] or "?",
                    fmt.size(row["size"]),
                    (row["provider"] or "").removesuffix("ExecutionProvider"),
                    until(row),
                    row["state"],
                ]
                for row in rows
            ],
        )

    out.result(rows, human)


def stop(
    model: Annotated[str, typer.Argument(help="A loaded model, as `modelport ps` names it.")],
) -> None:
    """Unload a model from a running `modelport serve`."""
    from modelport.cli import _client

    answer = _client.request("DELETE", "/api/v1/ps/" + _client.quoted(model), timeout=10)
    _client.raise_for(answer)
    typer.echo(f"stopped {model}")


def register(app: typer.Typer) -> None:
    """Add these commands to the app."""
    app.command()(serve)
    app.command()(ps)
    app.command()(stop)
