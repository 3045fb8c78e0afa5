"""Talking to a running ``modelport serve`` from the CLI: ``ps``, ``stop`` and ``run``.

The standard library's ``http.client`` is used on purpose: a ``run`` that a running
server answers should cost no more than starting Python and one loopback request.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote

from modelport.errors import ModelportError, ServerNotRunningError

__all__ = ["ServerAnswer", "find_server", "request"]

#: Every response of ``modelport serve`` carries this header; another program on the
#: port does not, and ``run`` then works in-process instead.
SERVER_HEADER = "x-modelport-version"


class ServerAnswer:
    """A decoded answer of the server."""

    def __init__(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


def _address() -> tuple[str, int]:
    from modelport.settings import get_settings

    settings = get_settings()
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # listening everywhere: reach it on loopback
    return host, settings.port


def url() -> str:
    """The base URL of the configured server."""
    host, port = _address()
    return f"http://{host}:{port}"


def find_server(timeout: float = 0.2) -> bool:
    """Whether something accepts connections at the configured address (fast when not)."""
    host, port = _address()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def request(
    method: str, path: str, body: Any = None, *, timeout: float | None = 600
) -> ServerAnswer:
    """One request to the configured server; a refused connection is ServerNotRunningError."""
    host, port = _address()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    key = os.environ.get("MODELPORT_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    except (TimeoutError, ConnectionError, OSError):
        raise ServerNotRunningError(url()) from None
    finally:
        connection.close()
    answer_headers = {k.lower(): v for k, v in response.getheaders()}
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return ServerAnswer(response.status, decoded, answer_headers)


def quoted(name: str) -> str:
    """A model name as a path segment (slashes kept, as the routes take them)."""
    return quote(name, safe="/:@")


def raise_for(answer: ServerAnswer) -> None:
    """Turn an error answer back into the error the server raised (same exit code)."""
    if answer.status < 400:
        return
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    if not isinstance(error, dict):
        raise ModelportError(f"The server answered {answer.status}: {answer.body}.")
    exc = ModelportError(str(error.get("message")), hint=error.get("hint"))
    code = str(error.get("code") or "error")
    for cls in _error_classes():
        if cls.code == code:
            exc.exit_code = cls.exit_code
            break
    exc.code = code
    raise exc


def _error_classes() -> list[type[ModelportError]]:
    found: list[type[ModelportError]] = []
    pending: list[type[ModelportError]] = [ModelportError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
