"""Record the model calls that pass through ``modelport serve``, and replay them offline.

``serve --record FILE`` appends every answered model call (OpenAI's ``/v1`` chat,
completions, embeddings and Responses, Anthropic's ``/v1/messages``, Ollama's ``/api``
chat, generate and embed) to a JSON Lines cassette: the request's method, path and body,
and the response's status, headers and body chunks, each with its time since the request
arrived. No request header is kept (that is where keys travel), and every secret the server
knows (its own key, the providers' keys, the caller's bearer token) is cut from what is kept.

``serve --replay FILE`` answers a request the cassette holds with the recorded bytes, at
their recorded times (divided by ``MODELPORT_SIM_SPEED``); a request it does not hold is
answered by the simulator (or, with ``--record`` too, by the real model, and recorded).
Requests match on method, path and body (JSON compared by value, not by spacing or key
order); a request recorded several times replays its answers in order, then the last again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import InvalidValueError

__all__ = ["RECORDED_PATHS", "Cassette", "CassetteMiddleware", "Interaction"]

#: The routes whose calls are recorded and replayed: the ones that answer with a model.
RECORDED_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/embeddings",
    }
)
#: Response headers a replay would get wrong (they describe one connection or moment).
_DROPPED_HEADERS = frozenset(
    {"date", "server", "content-length", "transfer-encoding", "connection", "set-cookie"}
)
REDACTED = "[redacted]"


def request_key(method: str, path: str, body: bytes) -> str:
    """What two requests must share to be the same call: method, path and body by value."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = "sha256:" + hashlib.sha256(body).hexdigest()
    return f"{method} {path} {canonical}"


@dataclass
class Interaction:
    """One recorded call: the request, and the response as it was sent, chunk by chunk."""

    method: str
    path: str
    body: bytes
    status: int
    headers: list[tuple[str, str]]
    #: The response's body chunks with their times (seconds since the request arrived).
    chunks: list[tuple[float, bytes]]
    #: When the response's status line was sent (seconds since the request arrived).
    started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The cassette line: readable JSON, bodies as text (base64 when not UTF-8)."""
        return {
            "request": {"method": self.method, "path": self.path, **_encoded(self.body)},
            "response": {
                "status": self.status,
                "headers": [list(pair) for pair in self.headers],
                "started_s": round(self.started, 6),
                "chunks": [_chunk_json(at, chunk) for at, chunk in self.chunks],
            },
        }

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> Interaction:
        """Read back a cassette line (``KeyError``/``ValueError``/``TypeError`` if malformed)."""
        request, response = line["request"], line["response"]
        return cls(
            method=str(request["method"]),
            path=str(request["path"]),
            body=_decoded(request),
            status=int(response["status"]),
            headers=[(str(k), str(v)) for k, v in response["headers"]],
            started=float(response.get("started_s", 0.0)),
            chunks=[
                (float(at), base64.b64decode(data) if is_b64 else str(data).encode())
                for at, data, is_b64 in (_chunk_fields(c) for c in response["chunks"])
            ],
        )


def _encoded(data: bytes) -> dict[str, Any]:
    try:
        return {"body": data.decode()}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(data).decode()}


def _chunk_json(at: float, chunk: bytes) -> list[Any]:
    """``[seconds, text]``, or ``[seconds, base64, true]`` for bytes that are not UTF-8."""
    try:
        return [round(at, 6), chunk.decode()]
    except UnicodeDecodeError:
        return [round(at, 6), base64.b64encode(chunk).decode(), True]


def _decoded(request: dict[str, Any]) -> bytes:
    if "body_base64" in request:
        return base64.b64decode(request["body_base64"])
    return str(request["body"]).encode()


def _chunk_fields(chunk: list[Any]) -> tuple[float, str, bool]:
    at, data = chunk[0], chunk[1]
    return float(at), str(data), False if len(chunk) == 2 else bool(chunk[2])


@dataclass
class Cassette:
    """A cassette file: the interactions to replay, and where new ones are appended."""

    replay_from: Path | None = None
    record_to: Path | None = None
    secrets: tuple[str, ...] = ()
    replayed: int = 0
    missed: int = 0
    recorded: int = 0
    _tapes: dict[str, list[Interaction]] = field(default_factory=dict)
    _played: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls, *, replay: str | Path | None, record: str | Path | None, secrets: Iterable[str] = ()
    ) -> Cassette:
        """Load the cassette to replay and check the one to record into can be written."""
        cassette = cls(
            replay_from=Path(replay).expanduser() if replay else None,
            record_to=Path(record).expanduser() if record else None,
            secrets=tuple(sorted({s for s in secrets if s and len(s) >= 8}, key=len)[::-1]),
        )
        if cassette.replay_from is not None:
            for interaction in read_cassette(cassette.replay_from):
                key = request_key(interaction.method, interaction.path, interaction.body)
                cassette._tapes.setdefault(key, []).append(interaction)
        if cassette.record_to is not None:
            try:
                with cassette.record_to.open("a", encoding="utf-8"):
                    pass
            except OSError as e:
                raise InvalidValueError(
                    f"Cannot record into {cassette.record_to}: {e.strerror or e}.",
                    hint="Pass --record a file in a folder you can write to.",
                ) from None
        return cassette

    def __len__(self) -> int:
        return sum(len(tape) for tape in self._tapes.values())

    def find(self, method: str, path: str, body: bytes) -> Interaction | None:
        """The next recorded answer to this request (the last one again once all are used)."""
        key = request_key(method, path, body)
        with self._lock:
            tape = self._tapes.get(key)
            if not tape:
                self.missed += 1
                return None
            turn = self._played.get(key, 0)
            self._played[key] = turn + 1
            self.replayed += 1
            return tape[min(turn, len(tape) - 1)]

    def redact(self, data: bytes) -> bytes:
        """The bytes with every secret the server knows cut out."""
        for secret in self.secrets:
            data = data.replace(secret.encode(), REDACTED.encode())
        return data

    def append(self, interaction: Interaction, bearer: str | None) -> None:
        """Add one call to the cassette being recorded, as one whole line."""
        if self.record_to is None:
            return
        secrets = [s.encode() for s in ((bearer,) if bearer and len(bearer) >= 8 else ())]

        def clean(data: bytes) -> bytes:
            for secret in secrets:
                data = data.replace(secret, REDACTED.encode())
            return self.redact(data)

        kept = Interaction(
            method=interaction.method,
            path=interaction.path,
            body=clean(interaction.body),
            status=interaction.status,
            headers=[(k, clean(v.encode()).decode()) for k, v in interaction.headers],
            chunks=[(at, clean(chunk)) for at, chunk in interaction.chunks],
            started=interaction.started,
        )
        line = json.dumps(kept.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            # One write of one whole line: a reader never sees half an interaction.
            with self.record_to.open("a", encoding="utf-8") as out:
                out.write(line)
                out.flush()
            self.recorded += 1


def read_cassette(path: Path) -> list[Interaction]:
    """Every interaction in a cassette file; a malformed line is one clear sentence."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidValueError(
            f"There is no cassette at {path}.",
            hint="Record one with `modelport serve --record FILE` first.",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidValueError(f"Cannot read the cassette {path}: {e}.") from None
    interactions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            interactions.append(Interaction.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise InvalidValueError(
                f"Line {number} of the cassette {path} is not a recorded call.",
                hint="A cassette is what `modelport serve --record FILE` wrote; remove the "
                "line or record again.",
            ) from None
    return interactions


class CassetteMiddleware:
    """ASGI middleware: replay recorded calls, record answered ones."""

    def __init__(self, app: ASGIApp, *, cassette: Cassette, speed: float = 1.0) -> None:
        self.app = app
        self.cassette = cassette
        self.speed = speed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in RECORDED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        body, more = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        if self.cassette.replay_from is not None:
            found = self.cassette.find(method, path, body)
            if found is not None:
                await self._replay(found, arrived, send)
                return
        replayed_body = _replayed(body, more, receive)
        if self.cassette.record_to is None:
            await self.app(scope, replayed_body, send)
            return
        await self._record(scope, replayed_body, send, arrived, body)

    async def _replay(self, interaction: Interaction, arrived: float, send: Send) -> None:
        await self._wait_until(arrived, interaction.started)
        headers = [(k.encode(), v.encode()) for k, v in interaction.headers]
        headers.append((b"x-modelport-replayed", b"1"))
        start = {"type": "http.response.start", "status": interaction.status, "headers": headers}
        await send(start)
        for at, chunk in interaction.chunks:
            await self._wait_until(arrived, at)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _wait_until(self, arrived: float, at: float) -> None:
        if self.speed <= 0:
            return
        delay = arrived + at / self.speed - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _record(
        self, scope: Scope, receive: Receive, send: Send, arrived: float, body: bytes
    ) -> None:
        status, headers, started = 500, [], 0.0
        chunks: list[tuple[float, bytes]] = []

        async def recording(message: Message) -> None:
            nonlocal status, headers, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = time.perf_counter() - arrived
                headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in _DROPPED_HEADERS
                ]
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if data:
                    chunks.append((time.perf_counter() - arrived, data))
                if not message.get("more_body", False):
                    # Only a response sent to its end is kept: a cut one is not the call.
                    self.cassette.append(
                        Interaction(
                            scope["method"], scope["path"], body, status, headers, chunks, started
                        ),
                        _bearer(scope),
                    )
            await send(message)

        await self.app(scope, receive, recording)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole request body, and any non-body message read past it (a disconnect)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), [message]
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), []


def _replayed(body: bytes, extra: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then the real messages."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *extra]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() in (b"authorization", b"x-api-key", b"api-key"):
            text = value.decode("latin-1")
            return str(text.split(" ", 1)[1] if text.lower().startswith("bearer ") else text)
    return None


def known_secrets() -> list[str]:
    """The secrets this process knows: the server's key and every provider key variable."""
    values = [value for name, value in os.environ.items() if _is_secret_name(name)]
    return [v.strip() for v in values if v.strip()]


def _is_secret_name(name: str) -> bool:
    return name.upper().endswith(("_TOKEN", "_SECRET", "_KEY"))  # _API_KEY ends in _KEY
