"""What a request must carry and may weigh: the API key, and a bound on the body's size."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import AuthenticationError, ModelportError, RequestTooLargeError

__all__ = ["PUBLIC_PATHS", "BodyLimit", "RequireApiKey"]

#: Health checks answer without a key, so that load balancers and Kubernetes probes work.
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/health", "/v2/health/live", "/v2/health/ready", "/healthz"}
)


class RequireApiKey:
    """ASGI middleware refusing requests without ``Authorization: Bearer <key>`` (or
    ``x-api-key``), but for health checks and CORS preflights."""

    def __init__(
        self, app: ASGIApp, *, key: str, respond: Callable[[Request, ModelportError], Response]
    ) -> None:
        self.app = app
        self.expected = key.encode()
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            given = headers.get(b"x-api-key", b"").decode("latin-1")
        if given and hmac.compare_digest(given.strip().encode(), self.expected):
            await self.app(scope, receive, send)
            return
        response = self.respond(Request(scope, receive), AuthenticationError(given=bool(given)))
        await response(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a body past ``limit`` bytes is refused with 413 before it is read."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        respond: Callable[[Request, ModelportError], Response],
    ) -> None:
        self.app = app
        self.limit = limit
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(Request(scope, receive), RequestTooLargeError(self.limit))
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
