"""What a request must carry and may weigh: the API key, and a bound on the body's size."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import AuthenticationError, ModelportError, RequestTooLargeError

__all__ = ["PUBLIC_PATHS", "BodyLimit", "require_api_key"]

#: Health checks answer without a key, so that load balancers and Kubernetes probes work.
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/health", "/v2/health/live", "/v2/health/ready", "/healthz"}
)


def require_api_key(
    key: str, respond: Callable[[Request, ModelportError], Response]
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Middleware refusing requests without ``Authorization: Bearer <key>`` (or ``x-api-key``)."""
    expected = key.encode()

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path in PUBLIC_PATHS or request.method == "OPTIONS":
            return await call_next(request)
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            given = request.headers.get("x-api-key", "")
        if not given:
            return respond(request, AuthenticationError(given=False))
        if not hmac.compare_digest(given.strip().encode(), expected):
            return respond(request, AuthenticationError(given=True))
        return await call_next(request)

    return middleware


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
        too_large = False

        async def bounded() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_large = True
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
