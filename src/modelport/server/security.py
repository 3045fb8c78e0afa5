"""What a request must carry and may weigh: the API key (or a web UI session issued for it),
and a bound on the body's size."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.errors import AuthenticationError, ModelportError, RequestTooLargeError

__all__ = [
    "LOGIN_PATH",
    "PUBLIC_PATHS",
    "PUBLIC_PREFIXES",
    "SESSION_COOKIE",
    "BodyLimit",
    "RequireApiKey",
    "Sessions",
]

#: Health checks answer without a key, so that load balancers and Kubernetes probes work;
#: so does the web UI's sign-in form, which asks for the key.
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/health", "/v2/health/live", "/v2/health/ready", "/healthz", "/ui/login"}
)
#: The web UI's static files (its style, scripts and the vendored libraries) hold no data.
PUBLIC_PREFIXES = ("/ui/static/",)
LOGIN_PATH = "/ui/login"
SESSION_COOKIE = "modelport_session"


class Sessions:
    """Web UI sessions for a server's API key: a browser that gave the key once carries a
    signed, expiring token in an HttpOnly cookie instead of the key itself.

    The token is signed with a key derived from the API key, so every replica started with
    the same key accepts it, and changing the key ends every session.
    """

    #: A session lasts at most this long (the cookie itself ends with the browser session).
    LIFETIME_S = 12 * 3600

    def __init__(self, key: str) -> None:
        self._expected = key.encode()
        self._signing = hmac.new(self._expected, b"modelport web ui session", "sha256").digest()

    def __repr__(self) -> str:
        return "Sessions(<key hidden>)"

    def key_matches(self, given: str) -> bool:
        """Whether ``given`` is the server's API key (compared in constant time)."""
        return bool(given) and hmac.compare_digest(given.strip().encode(), self._expected)

    def issue(self, *, now: float | None = None) -> str:
        """A new session token."""
        expires = int((time.time() if now is None else now) + self.LIFETIME_S)
        body = f"v1.{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, token: str, *, now: float | None = None) -> bool:
        """Whether ``token`` is a session this key issued and that has not expired."""
        body, _, signature = token.rpartition(".")
        version, _, rest = body.partition(".")
        expires, _, _nonce = rest.partition(".")
        if version != "v1" or not expires.isdigit():
            return False
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return False
        return int(expires) > (time.time() if now is None else now)

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._signing, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def session_token(headers: dict[bytes, bytes]) -> str | None:
    """The web UI session token a request's cookies carry, if any."""
    raw = headers.get(b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # a malformed Cookie header is no session, never a crash
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


class RequireApiKey:
    """ASGI middleware refusing requests without ``Authorization: Bearer <key>`` (or
    ``x-api-key``, or a web UI session cookie), but for health checks, the UI's sign-in
    form and static files, and CORS preflights. A browser asking for a page without a key
    is sent to the sign-in form instead of a JSON refusal."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        key: str,
        respond: Callable[[Request, ModelportError], Response],
        sessions: Sessions | None = None,
    ) -> None:
        self.app = app
        self.expected = key.encode()
        self.respond = respond
        self.sessions = sessions or Sessions(key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in PUBLIC_PATHS
            or path.startswith(PUBLIC_PREFIXES)
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
        token = session_token(headers)
        if not given and token and self.sessions.valid(token):
            await self.app(scope, receive, send)
            return
        response = _to_sign_in(scope, headers) if not given else None
        if response is None:
            response = self.respond(Request(scope, receive), AuthenticationError(given=bool(given)))
        await response(scope, receive, send)


def _to_sign_in(scope: Scope, headers: dict[bytes, bytes]) -> Response | None:
    """A browser's way to the sign-in form, or None for an API client (which gets the
    JSON refusal): a page request accepting HTML, or one of htmx's requests."""
    if scope.get("method") not in ("GET", "HEAD", "POST"):
        return None
    accept = headers.get(b"accept", b"").decode("latin-1")
    from_htmx = headers.get(b"hx-request") == b"true"
    if not from_htmx and (scope.get("method") != "GET" or "text/html" not in accept):
        return None
    here = scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    if from_htmx:
        # The page htmx is on, not the fragment it asked for, is where to come back to.
        current = headers.get(b"hx-current-url", b"").decode("latin-1")
        here, query = _local_path(current), ""
    target = f"{LOGIN_PATH}?next={quote(here + ('?' + query if query else ''), safe='')}"
    if from_htmx:
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _local_path(url: str) -> str:
    """The path and query of a URL of this server (``/`` for anything else)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path if parts.path.startswith("/") and not parts.path.startswith("//") else "/"
    return path + (f"?{parts.query}" if parts.query else "")


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
